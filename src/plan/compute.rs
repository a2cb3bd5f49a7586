//! Planning: (model, live) → Plan. Pure: no I/O, no clock, no environment.
//!
//! Ownership without a state file follows [`crate::ownership`]: an account
//! whose description carries the ownership marker is `wi`'s, and so are its
//! `roles/iam.workloadIdentityUser` members and its own project-role grants
//! (undeclared ones are drift). On accounts `wi` does not own it only adds,
//! and removes a member only when the spec lists it under `absent`.
//! Kubernetes fields belong to `wi` when its field manager owns them
//! (server-side apply `managedFields`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ServiceAccount as KubeServiceAccount;
use serde_json::{Value, json};

use super::{
    Action, Attributes, FORMAT_VERSION, Plan, Reason, ReasonCode, Resource, ResourceChange,
    Warning, WarningCode,
};
use crate::gcp::types::Policy;
use crate::live::{IAM_CREDENTIALS_SERVICE, LiveKube, LiveState};
use crate::ownership::{
    GSA_ANNOTATION, MANAGED_BY_LABEL, WORKLOAD_IDENTITY_USER, created_by_wi, is_owned,
    ksa_field_owners, owned_description,
};
use crate::spec::{ClusterKey, KsaManagement, Model, PoolSelection};

/// Choices that change what the plan does.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Delete owned accounts that left the spec, and KSAs `wi` created whose mapping left.
    pub prune: bool,
    /// Take over Kubernetes fields another field manager owns.
    pub force_conflicts: bool,
}

/// Something in the live world that makes the spec impossible to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub address: String,
    pub message: String,
    pub help: Option<String>,
}

/// Planning failed: every problem found, at once.
#[derive(Debug, thiserror::Error)]
#[error("planning failed: {} problem(s)", problems.len())]
pub struct PlanError {
    pub problems: Vec<Problem>,
}

impl miette::Diagnostic for PlanError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("wi::plan::failed"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let lines: Vec<String> = self
            .problems
            .iter()
            .map(|p| match &p.help {
                Some(h) => format!("{}: {}\n    {}", p.address, p.message, h),
                None => format!("{}: {}", p.address, p.message),
            })
            .collect();
        Some(Box::new(lines.join("\n")))
    }
}

/// Computes the plan.
pub fn compute(
    model: &Model,
    live: &LiveState,
    options: &PlanOptions,
    spec_digest: String,
) -> Result<Plan, PlanError> {
    let mut planner = Planner {
        model,
        live,
        options,
        changes: Vec::new(),
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    planner.services();
    planner.clusters();
    planner.accounts();
    planner.account_members();
    planner.project_roles();
    planner.kubernetes();
    planner.identity_sameness();
    if !planner.problems.is_empty() {
        return Err(PlanError {
            problems: planner.problems,
        });
    }
    let mut changes = planner.changes;
    changes.sort_by_cached_key(|c| c.resource.sort_key());
    changes.dedup_by(|a, b| a.address == b.address);
    let mut warnings = planner.warnings;
    warnings.sort_by(|a, b| {
        (&a.address, a.code.as_str(), &a.message).cmp(&(&b.address, b.code.as_str(), &b.message))
    });
    warnings.dedup();
    Ok(Plan {
        format_version: FORMAT_VERSION.to_string(),
        spec_digest,
        changes,
        warnings,
        fingerprints: live.fingerprints(),
    })
}

struct Planner<'a> {
    model: &'a Model,
    live: &'a LiveState,
    options: &'a PlanOptions,
    changes: Vec<ResourceChange>,
    warnings: Vec<Warning>,
    problems: Vec<Problem>,
}

fn attrs(value: Value) -> Attributes {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        _ => Attributes::new(),
    }
}

fn reason(code: ReasonCode, message: impl Into<String>) -> Reason {
    Reason {
        code,
        message: message.into(),
    }
}

/// Whether `member` holds `role` through an unconditional binding.
fn has_member(policy: Option<&Policy>, role: &str, member: &str) -> bool {
    policy.is_some_and(|p| {
        p.bindings.iter().any(|b| {
            b.role == role && b.condition.is_none() && b.members.iter().any(|m| m == member)
        })
    })
}

/// Members of `role` in unconditional bindings.
fn unconditional_members<'p>(policy: &'p Policy, role: &str) -> BTreeSet<&'p str> {
    policy
        .bindings
        .iter()
        .filter(|b| b.role == role && b.condition.is_none())
        .flat_map(|b| b.members.iter().map(String::as_str))
        .collect()
}

fn annotation_key() -> String {
    format!("annotations[\"{GSA_ANNOTATION}\"]")
}

fn label_key() -> String {
    format!("labels[\"{MANAGED_BY_LABEL}\"]")
}

/// A change of `action` to `resource`, with no dependencies or warnings yet.
fn change(
    resource: Resource,
    action: Action,
    before: Option<Attributes>,
    after: Option<Attributes>,
    reason: Reason,
) -> ResourceChange {
    ResourceChange {
        address: resource.address(),
        resource,
        action,
        before,
        after,
        reason,
        depends_on: Vec::new(),
        warnings: Vec::new(),
    }
}

/// A declared resource already as declared.
fn noop(resource: Resource, before: Attributes, after: Attributes, why: Reason) -> ResourceChange {
    change(resource, Action::NoOp, Some(before), Some(after), why)
}

/// A resource to create.
fn create(resource: Resource, after: Attributes, why: Reason) -> ResourceChange {
    change(resource, Action::Create, None, Some(after), why)
}

/// A resource to change in place.
fn update(
    resource: Resource,
    before: Attributes,
    after: Attributes,
    why: Reason,
) -> ResourceChange {
    change(resource, Action::Update, Some(before), Some(after), why)
}

/// A resource to remove.
fn delete(resource: Resource, before: Attributes, why: Reason) -> ResourceChange {
    change(resource, Action::Delete, Some(before), None, why)
}

impl ResourceChange {
    /// The addresses this change waits for during apply.
    fn with_deps(mut self, deps: Vec<String>) -> Self {
        self.depends_on.extend(deps);
        self
    }

    /// Warnings about this change.
    fn with_warnings(mut self, warnings: Vec<Warning>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}

impl Planner<'_> {
    /// Records a change; its dependencies are kept sorted and unique.
    fn push(&mut self, mut change: ResourceChange) {
        change.depends_on.sort();
        change.depends_on.dedup();
        self.changes.push(change);
    }

    fn problem(&mut self, address: String, message: String, help: Option<&str>) {
        self.problems.push(Problem {
            address,
            message,
            help: help.map(str::to_string),
        });
    }

    fn planned(&self, resource: &Resource) -> bool {
        self.changes
            .iter()
            .any(|c| &c.resource == resource && c.action != Action::NoOp)
    }

    /// iamcredentials.googleapis.com in every project holding a mapped account.
    fn services(&mut self) {
        let projects: BTreeSet<&str> = self
            .model
            .service_accounts
            .iter()
            .map(|g| g.project.as_str())
            .chain(self.model.mappings.iter().map(|m| m.gsa_project.as_str()))
            .collect();
        for project in projects {
            let Some(enabled) = self
                .live
                .projects
                .get(project)
                .and_then(|p| p.iam_credentials_enabled)
            else {
                continue;
            };
            let resource = Resource::ProjectService {
                project: project.to_string(),
                service: IAM_CREDENTIALS_SERVICE.to_string(),
            };
            let state = |on: bool| attrs(json!({"state": if on { "ENABLED" } else { "DISABLED" }}));
            if enabled {
                self.push(noop(
                    resource,
                    state(true),
                    state(true),
                    reason(ReasonCode::InSync, "enabled"),
                ));
            } else {
                self.push(change(resource, Action::Create, Some(state(false)), Some(state(true)), reason(ReasonCode::Missing,
                        "Workload Identity exchanges tokens through the IAM Service Account Credentials API, which is disabled",
                    )));
            }
        }
    }

    fn clusters(&mut self) {
        for cluster in &self.model.clusters {
            let resource = Resource::Cluster {
                cluster: cluster.key.clone(),
            };
            let address = resource.address();
            let desired_pool = cluster
                .workload_identity
                .then(|| cluster.key.workload_pool());
            let live = self
                .live
                .clusters
                .get(&cluster.key)
                .and_then(|c| c.gke.as_ref());
            let Some(live) = live else {
                match &cluster.create {
                    Some(block) => {
                        let after = attrs(json!({
                            "name": cluster.key.name,
                            "location": cluster.key.location,
                            "workload_pool": desired_pool,
                            "initial_node_count": block.initial_node_count,
                            "machine_type": block.machine_type,
                            "release_channel": block.release_channel,
                        }));
                        self.push(create(resource, after, reason(ReasonCode::Missing, "the cluster does not exist and the spec has a create block")));
                    }
                    None => self.problem(
                        address,
                        format!("cluster {} does not exist", cluster.key.path()),
                        Some("check the name, project and location, or add a `create` block to let wi create it"),
                    ),
                }
                continue;
            };
            let live_pool = live.workload_pool().map(str::to_string);
            let before = attrs(json!({"workload_pool": live_pool}));
            let after = attrs(json!({"workload_pool": desired_pool}));
            if live_pool == desired_pool {
                self.push(noop(
                    resource,
                    before,
                    after,
                    reason(ReasonCode::InSync, "workload pool as declared"),
                ));
            } else {
                let why = if desired_pool.is_some() {
                    "Workload Identity is off: the cluster has no workload pool"
                } else {
                    "the spec turns Workload Identity off"
                };
                let mut warnings = vec![];
                if desired_pool.is_none() {
                    warnings.push(Warning {
                        code: WarningCode::DisablesWorkloadIdentity,
                        message: "pods of this cluster lose their Google identities".into(),
                        address: Some(address.clone()),
                    });
                }
                self.push(
                    update(resource, before, after, reason(ReasonCode::Drift, why))
                        .with_warnings(warnings),
                );
            }
            self.node_pools(cluster, live, &address);
        }
    }

    fn node_pools(
        &mut self,
        cluster: &crate::spec::Cluster,
        live: &crate::gcp::types::Cluster,
        cluster_address: &str,
    ) {
        if !cluster.workload_identity {
            return;
        }
        let selected: Vec<&str> = match &cluster.metadata_server {
            PoolSelection::None => return,
            PoolSelection::All => live.node_pools.iter().map(|p| p.name.as_str()).collect(),
            PoolSelection::Only(pools) => pools.iter().map(String::as_str).collect(),
        };
        let cluster_changes = self.planned(&Resource::Cluster {
            cluster: cluster.key.clone(),
        });
        for pool_name in selected {
            let resource = Resource::NodePool {
                cluster: cluster.key.clone(),
                pool: pool_name.to_string(),
            };
            let Some(pool) = live.node_pools.iter().find(|p| p.name == pool_name) else {
                self.problem(
                    resource.address(),
                    format!(
                        "node pool {pool_name} does not exist in cluster {}",
                        cluster.key
                    ),
                    Some("wi never creates node pools; list existing pools under `metadataServer`"),
                );
                continue;
            };
            let mode = pool.metadata_mode().unwrap_or("GCE_METADATA").to_string();
            let before = attrs(json!({"workload_metadata_mode": mode}));
            let after = attrs(json!({"workload_metadata_mode": "GKE_METADATA"}));
            if mode == "GKE_METADATA" {
                self.push(noop(
                    resource,
                    before,
                    after,
                    reason(ReasonCode::InSync, "runs the GKE metadata server"),
                ));
            } else {
                let address = resource.address();
                let deps = if cluster_changes {
                    vec![cluster_address.to_string()]
                } else {
                    vec![]
                };
                self.push(update(resource, before, after, reason(ReasonCode::Drift, "pods on this pool get the node's identity instead of their KSA's: the pool does not run the GKE metadata server")).with_deps(deps).with_warnings(vec![Warning {
                        code: WarningCode::RollsNodes,
                        message: "switching to GKE_METADATA recreates every node of the pool; pods are rescheduled and the operation can take a long time".into(),
                        address: Some(address),
                    }]));
            }
        }
    }

    fn accounts(&mut self) {
        for gsa in &self.model.service_accounts {
            let email = gsa.email();
            let resource = Resource::ServiceAccount {
                project: gsa.project.clone(),
                account_id: gsa.account_id.clone(),
            };
            let address = resource.address();
            let desired = attrs(json!({
                "email": email,
                "display_name": gsa.display_name,
                "description": owned_description(gsa.description.as_deref()),
            }));
            match self.live.account(&gsa.project, &email) {
                None => self.push(create(
                    resource,
                    desired,
                    reason(ReasonCode::Missing, "the account does not exist"),
                )),
                Some(live) => {
                    let owned = is_owned(live.description.as_deref());
                    let before = attrs(json!({
                        "email": email,
                        "display_name": live.display_name,
                        "description": live.description,
                    }));
                    if owned || gsa.adopt {
                        if before == desired {
                            self.push(noop(
                                resource,
                                before,
                                desired,
                                reason(ReasonCode::InSync, "as declared"),
                            ));
                        } else {
                            let why = if owned {
                                reason(
                                    ReasonCode::Drift,
                                    "display name or description differ from the spec",
                                )
                            } else {
                                reason(
                                    ReasonCode::Adopt,
                                    "adopt: true marks the account as managed by wi",
                                )
                            };
                            self.push(update(resource, before, desired, why));
                        }
                    } else {
                        self.push(noop(
                            resource,
                            before.clone(),
                            before,
                            reason(
                                ReasonCode::NotOwned,
                                "exists and is not managed by wi: only bindings are added",
                            ),
                        ));
                        if live.display_name != gsa.display_name {
                            self.warnings.push(Warning {
                                code: WarningCode::NotOwned,
                                message: format!("{email} is not managed by wi, so its display name and description are left as they are; set `adopt: true` to manage it"),
                                address: Some(address),
                            });
                        }
                    }
                }
            }
        }
        // Orphans: owned accounts in the spec's projects that the spec no longer declares.
        let declared: BTreeSet<String> = self
            .model
            .service_accounts
            .iter()
            .map(|g| g.email())
            .collect();
        for (project, live) in &self.live.projects {
            for (email, sa) in &live.service_accounts {
                if !is_owned(sa.description.as_deref()) || declared.contains(email) {
                    continue;
                }
                let account_id = email.split('@').next().unwrap_or_default().to_string();
                let resource = Resource::ServiceAccount {
                    project: project.clone(),
                    account_id,
                };
                if self.options.prune {
                    let before = attrs(json!({
                        "email": email,
                        "display_name": sa.display_name,
                        "description": sa.description,
                    }));
                    // Its project grants go first (IAM would keep them as `deleted:` members).
                    let grants: Vec<String> = live
                        .policy
                        .iter()
                        .flat_map(|p| p.bindings.iter())
                        .filter(|b| {
                            b.condition.is_none()
                                && b.members
                                    .iter()
                                    .any(|m| m == &format!("serviceAccount:{email}"))
                        })
                        .map(|b| b.role.clone())
                        .collect();
                    let mut deps = Vec::new();
                    for role in grants {
                        let grant = Resource::ProjectIamMember {
                            project: project.clone(),
                            role: role.clone(),
                            member: format!("serviceAccount:{email}"),
                        };
                        deps.push(grant.address());
                        let a = attrs(
                            json!({"project": project, "role": role, "member": format!("serviceAccount:{email}")}),
                        );
                        self.push(delete(
                            grant,
                            a,
                            reason(ReasonCode::OrphanPruned, "the account is pruned"),
                        ));
                    }
                    self.push(delete(resource, before, reason(ReasonCode::OrphanPruned, "managed by wi, no longer in the spec, and --prune was given")).with_deps(deps).with_warnings(vec![Warning {
                            code: WarningCode::AccountRevocationDelay,
                            message: "tokens already issued for this account keep working until they expire (up to 1 hour)".into(),
                            address: None,
                        }]));
                } else {
                    self.warnings.push(Warning {
                        code: WarningCode::Orphan,
                        message: format!("{email} is managed by wi but no longer in the spec; run with --prune to delete it"),
                        address: Some(resource.address()),
                    });
                }
            }
        }
    }

    /// Addresses of planned cluster changes that create the workload pool of `project`,
    /// when no live cluster of that project has one yet.
    fn pool_dependencies(&self, pool_project: &str) -> Vec<String> {
        let live_pool = self.live.clusters.iter().any(|(key, c)| {
            key.project == pool_project && c.gke.as_ref().and_then(|g| g.workload_pool()).is_some()
        });
        if live_pool {
            return vec![];
        }
        self.changes
            .iter()
            .filter(|c| {
                matches!(&c.resource, Resource::Cluster { cluster } if cluster.project == pool_project)
                    && matches!(c.action, Action::Create | Action::Update)
                    && c.after.as_ref().and_then(|a| a.get("workload_pool")).is_some_and(|v| !v.is_null())
            })
            .map(|c| c.address.clone())
            .collect()
    }

    fn account_members(&mut self) {
        // Desired members per account.
        let mut desired: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
        for m in &self.model.mappings {
            desired
                .entry((m.gsa_project.clone(), m.gsa_email.clone()))
                .or_default()
                .insert((m.member(), m.cluster.project.clone()));
        }
        for ((project, email), members) in &desired {
            let account_planned = self.planned(&Resource::ServiceAccount {
                project: project.clone(),
                account_id: email.split('@').next().unwrap_or_default().to_string(),
            });
            let account_exists = self.live.account(project, email).is_some();
            if !account_exists && !account_planned {
                self.problem(
                    format!("service_account[\"{email}\"]"),
                    format!(
                        "service account {email} does not exist and the spec does not declare it"
                    ),
                    Some("declare it under `serviceAccounts` so wi creates it, or fix the email"),
                );
                continue;
            }
            let policy = self.live.account_policies.get(email);
            for (member, pool_project) in members {
                let resource = Resource::ServiceAccountIamMember {
                    project: project.clone(),
                    email: email.clone(),
                    role: WORKLOAD_IDENTITY_USER.to_string(),
                    member: member.clone(),
                };
                let a = attrs(
                    json!({"service_account": email, "role": WORKLOAD_IDENTITY_USER, "member": member}),
                );
                if has_member(policy, WORKLOAD_IDENTITY_USER, member) {
                    self.push(noop(
                        resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "bound"),
                    ));
                    continue;
                }
                let mut deps = self.pool_dependencies(pool_project);
                if account_planned {
                    deps.push(
                        Resource::ServiceAccount {
                            project: project.clone(),
                            account_id: email.split('@').next().unwrap_or_default().to_string(),
                        }
                        .address(),
                    );
                }
                self.push(
                    create(
                        resource,
                        a,
                        reason(
                            ReasonCode::Missing,
                            "the KSA cannot act as the GSA without this binding",
                        ),
                    )
                    .with_deps(deps),
                );
            }
        }
        // Removals: undeclared members on owned accounts, and declared-absent members anywhere.
        let declared_members: BTreeMap<&str, BTreeSet<String>> = desired
            .iter()
            .map(|((_, email), ms)| (email.as_str(), ms.iter().map(|(m, _)| m.clone()).collect()))
            .collect();
        let absent: BTreeSet<(&str, &str)> = self
            .model
            .absent
            .iter()
            .map(|a| (a.gsa_email.as_str(), a.member.as_str()))
            .collect();
        for (email, policy) in &self.live.account_policies {
            let Some(project) = email
                .split('@')
                .nth(1)
                .and_then(|d| d.strip_suffix(".iam.gserviceaccount.com"))
            else {
                continue;
            };
            let owned = self
                .live
                .account(project, email)
                .is_some_and(|sa| is_owned(sa.description.as_deref()));
            let declared = declared_members.get(email.as_str());
            let pruned_account = self.options.prune
                && owned
                && !self
                    .model
                    .service_accounts
                    .iter()
                    .any(|g| &g.email() == email);
            if pruned_account {
                continue; // the account itself goes
            }
            for member in unconditional_members(policy, WORKLOAD_IDENTITY_USER) {
                let is_declared = declared.is_some_and(|d| d.contains(member));
                let why = if absent.contains(&(email.as_str(), member)) {
                    reason(
                        ReasonCode::DeclaredAbsent,
                        "the spec lists this member under `absent`",
                    )
                } else if owned && !is_declared {
                    reason(
                        ReasonCode::NotInSpec,
                        "the account is managed by wi and no mapping declares this member",
                    )
                } else {
                    continue;
                };
                let resource = Resource::ServiceAccountIamMember {
                    project: project.to_string(),
                    email: email.clone(),
                    role: WORKLOAD_IDENTITY_USER.to_string(),
                    member: member.to_string(),
                };
                let address = resource.address();
                let a = attrs(
                    json!({"service_account": email, "role": WORKLOAD_IDENTITY_USER, "member": member}),
                );
                self.push(delete(resource, a, why).with_warnings(vec![Warning {
                    code: WarningCode::RevocationDelay,
                    message: "a removed binding keeps working for tokens already issued, for up to 30 minutes".into(),
                    address: Some(address),
                }]));
            }
        }
    }

    fn project_roles(&mut self) {
        for gsa in &self.model.service_accounts {
            let email = gsa.email();
            let member = format!("serviceAccount:{email}");
            let live_project = self.live.projects.get(&gsa.project);
            let policy = live_project.and_then(|p| p.policy.as_ref());
            let account_address = Resource::ServiceAccount {
                project: gsa.project.clone(),
                account_id: gsa.account_id.clone(),
            };
            let account_planned = self.planned(&account_address);
            for role in &gsa.roles {
                let resource = Resource::ProjectIamMember {
                    project: gsa.project.clone(),
                    role: role.clone(),
                    member: member.clone(),
                };
                let a = attrs(json!({"project": gsa.project, "role": role, "member": member}));
                if has_member(policy, role, &member) {
                    self.push(noop(
                        resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "granted"),
                    ));
                } else {
                    let deps =
                        if account_planned && self.live.account(&gsa.project, &email).is_none() {
                            vec![account_address.address()]
                        } else {
                            vec![]
                        };
                    self.push(
                        create(
                            resource,
                            a,
                            reason(
                                ReasonCode::Missing,
                                "the spec grants this role to the account",
                            ),
                        )
                        .with_deps(deps),
                    );
                }
            }
            let owned = self
                .live
                .account(&gsa.project, &email)
                .is_some_and(|sa| is_owned(sa.description.as_deref()));
            if !owned {
                continue;
            }
            let Some(policy) = policy else { continue };
            for binding in &policy.bindings {
                if binding.condition.is_some()
                    || !binding.members.contains(&member)
                    || gsa.roles.contains(&binding.role)
                {
                    continue;
                }
                let resource = Resource::ProjectIamMember {
                    project: gsa.project.clone(),
                    role: binding.role.clone(),
                    member: member.clone(),
                };
                let a =
                    attrs(json!({"project": gsa.project, "role": binding.role, "member": member}));
                self.push(delete(
                    resource,
                    a,
                    reason(
                        ReasonCode::NotInSpec,
                        "the account is managed by wi and the spec does not grant it this role",
                    ),
                ));
            }
        }
    }

    fn kubernetes(&mut self) {
        let mut by_cluster: BTreeMap<&ClusterKey, Vec<&crate::spec::Mapping>> = BTreeMap::new();
        for m in &self.model.mappings {
            by_cluster.entry(&m.cluster).or_default().push(m);
        }
        for cluster in &self.model.clusters {
            let key = &cluster.key;
            let cluster_created = self.changes.iter().any(|c| {
                matches!(&c.resource, Resource::Cluster { cluster } if cluster == key)
                    && c.action == Action::Create
            });
            let cluster_dep = if cluster_created {
                vec![
                    Resource::Cluster {
                        cluster: key.clone(),
                    }
                    .address(),
                ]
            } else {
                vec![]
            };
            let live_cluster = self.live.clusters.get(key);
            if live_cluster.and_then(|c| c.gke.as_ref()).is_none() && !cluster_created {
                continue; // already reported as a problem
            }
            let empty = LiveKube::default();
            let kube = live_cluster.and_then(|c| c.kube.as_ref()).unwrap_or(&empty);
            let mappings = by_cluster.get(key).cloned().unwrap_or_default();
            let mut namespaces_done = BTreeSet::new();
            let mut declared = BTreeSet::new();
            for m in &mappings {
                declared.insert((m.namespace.clone(), m.ksa.clone()));
                let ns_resource = Resource::Namespace {
                    cluster: key.clone(),
                    name: m.namespace.clone(),
                };
                let ns_exists = kube.namespaces.contains_key(&m.namespace);
                let mut ksa_deps = cluster_dep.clone();
                if !ns_exists {
                    if m.management == KsaManagement::AnnotateExisting {
                        self.problem(
                            ns_resource.address(),
                            format!("namespace {} does not exist in cluster {key}, and the mapping only annotates an existing KSA", m.namespace),
                            Some("set `manage: create` to let wi create the namespace and the KSA"),
                        );
                        continue;
                    }
                    ksa_deps.push(ns_resource.address());
                    if namespaces_done.insert(m.namespace.clone()) {
                        let after = attrs(json!({"name": m.namespace, label_key(): "wi"}));
                        self.push(
                            create(
                                ns_resource,
                                after,
                                reason(
                                    ReasonCode::Missing,
                                    "the namespace of a mapped KSA does not exist",
                                ),
                            )
                            .with_deps(cluster_dep.clone()),
                        );
                    }
                } else if namespaces_done.insert(m.namespace.clone()) {
                    let a = attrs(json!({"name": m.namespace}));
                    self.push(noop(
                        ns_resource,
                        a.clone(),
                        a,
                        reason(ReasonCode::InSync, "exists"),
                    ));
                }
                self.ksa(key, m, kube, ksa_deps);
            }
            // Release wi's annotation where the mapping left the spec.
            for ((ns, name), sa) in &kube.service_accounts {
                if declared.contains(&(ns.clone(), name.clone())) {
                    continue;
                }
                let (mine, _) = ksa_field_owners(sa);
                if !mine.annotation && !mine.managed_by_label {
                    continue;
                }
                let created_by_wi = created_by_wi(sa);
                let resource = Resource::KubernetesServiceAccount {
                    cluster: key.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                };
                let before = ksa_attributes(sa);
                if created_by_wi && self.options.prune {
                    self.push(delete(
                        resource,
                        before,
                        reason(
                            ReasonCode::OrphanPruned,
                            "created by wi, no mapping declares it, and --prune was given",
                        ),
                    ));
                } else if mine.annotation {
                    let mut after = Attributes::new();
                    if mine.managed_by_label {
                        after.insert(label_key(), json!("wi"));
                    }
                    self.push(update(
                        resource,
                        before,
                        after,
                        reason(
                            ReasonCode::NotInSpec,
                            "no mapping declares this KSA any more: wi releases its annotation",
                        ),
                    ));
                }
            }
        }
    }

    fn ksa(
        &mut self,
        key: &ClusterKey,
        m: &crate::spec::Mapping,
        kube: &LiveKube,
        deps: Vec<String>,
    ) {
        let resource = Resource::KubernetesServiceAccount {
            cluster: key.clone(),
            namespace: m.namespace.clone(),
            name: m.ksa.clone(),
        };
        let address = resource.address();
        let live = kube
            .service_accounts
            .get(&(m.namespace.clone(), m.ksa.clone()));
        let Some(live) = live else {
            if m.management == KsaManagement::AnnotateExisting {
                self.problem(
                    address,
                    format!("KSA {}/{} does not exist in cluster {key}, and the mapping only annotates an existing KSA", m.namespace, m.ksa),
                    Some("create it first (Helm, kubectl) or set `manage: create`"),
                );
                return;
            }
            let after = attrs(json!({annotation_key(): m.gsa_email, label_key(): "wi"}));
            self.push(
                create(
                    resource,
                    after,
                    reason(ReasonCode::Missing, "the KSA does not exist"),
                )
                .with_deps(deps),
            );
            return;
        };
        let (mine, other_owners) = ksa_field_owners(live);
        let current = live
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GSA_ANNOTATION))
            .cloned();
        let before = ksa_attributes(live);
        let mut after = Attributes::new();
        after.insert(annotation_key(), json!(m.gsa_email));
        let created_by_wi = created_by_wi(live);
        if mine.managed_by_label || (created_by_wi && m.management == KsaManagement::Create) {
            after.insert(label_key(), json!("wi"));
        }
        // Pods of this KSA on the host network cannot use Workload Identity.
        for pod in &kube.pods {
            let Some(spec) = &pod.spec else { continue };
            if pod.metadata.namespace.as_deref() == Some(m.namespace.as_str())
                && spec.service_account_name.as_deref() == Some(m.ksa.as_str())
                && spec.host_network == Some(true)
            {
                self.warnings.push(Warning {
                    code: WarningCode::HostNetwork,
                    message: format!(
                        "pod {}/{} runs as this KSA on the host network: it gets the node's identity, not {}",
                        m.namespace,
                        pod.metadata.name.clone().unwrap_or_default(),
                        m.gsa_email
                    ),
                    address: Some(address.clone()),
                });
            }
        }
        if current.as_deref() == Some(m.gsa_email.as_str())
            && (!after.contains_key(&label_key())
                || before.get(&label_key()) == after.get(&label_key()))
        {
            self.push(noop(
                resource,
                before,
                after,
                reason(ReasonCode::InSync, "annotated"),
            ));
            return;
        }
        let mut warnings = Vec::new();
        if current.is_some() && !other_owners.is_empty() && !self.options.force_conflicts {
            warnings.push(Warning {
                code: WarningCode::FieldConflict,
                message: format!(
                    "the annotation is owned by field manager {}: apply stops with a conflict unless --force-conflicts is given",
                    other_owners.join(", ")
                ),
                address: Some(address.clone()),
            });
        }
        let why = match current {
            None => reason(ReasonCode::Missing, "the KSA is not annotated with its GSA"),
            Some(other) if other != m.gsa_email => reason(
                ReasonCode::Drift,
                format!("the KSA is annotated with {other}"),
            ),
            Some(_) => reason(ReasonCode::Drift, "wi's label is missing"),
        };
        self.push(
            update(resource, before, after, why)
                .with_deps(deps)
                .with_warnings(warnings),
        );
    }

    /// The identity `P.svc.id.goog[NS/KSA]` is shared by every cluster of P.
    fn identity_sameness(&mut self) {
        let mut targets: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
        for m in &self.model.mappings {
            targets
                .entry((
                    m.cluster.project.clone(),
                    m.namespace.clone(),
                    m.ksa.clone(),
                ))
                .or_default()
                .insert(m.cluster.to_string());
        }
        for ((project, ns, ksa), clusters) in targets {
            let others: Vec<String> = self
                .model
                .clusters
                .iter()
                .filter(|c| c.key.project == project && !clusters.contains(&c.key.to_string()))
                .map(|c| c.key.to_string())
                .collect();
            if others.is_empty() {
                continue;
            }
            self.warnings.push(Warning {
                code: WarningCode::IdentitySameness,
                message: format!(
                    "serviceAccount:{project}.svc.id.goog[{ns}/{ksa}] is one identity for every cluster of project {project}: a {ns}/{ksa} KSA in {} gets the same access",
                    others.join(", ")
                ),
                address: None,
            });
        }
    }
}

/// The attributes of a live KSA that `wi` may manage.
fn ksa_attributes(sa: &KubeServiceAccount) -> Attributes {
    let mut a = Attributes::new();
    if let Some(v) = sa
        .metadata
        .annotations
        .as_ref()
        .and_then(|x| x.get(GSA_ANNOTATION))
    {
        a.insert(annotation_key(), json!(v));
    }
    if let Some(v) = sa
        .metadata
        .labels
        .as_ref()
        .and_then(|x| x.get(MANAGED_BY_LABEL))
    {
        a.insert(label_key(), json!(v));
    }
    a
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
