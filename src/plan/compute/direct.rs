//! Direct mode: IAM roles granted to Kubernetes identities themselves
//! (`principal://…/subject/ns/NS/sa/KSA`, or a namespace or cluster
//! principal set), with no Google service account.
//!
//! Ownership is stateless, as for GSA mappings: a live direct member of a
//! pool is this run's owner's when a declared cluster of that pool has the
//! KSA (namespace, for sets) whose `wi.dev/direct-roles` record, written by
//! the owner's field manager, lists `RESOURCE=ROLE`. Owned members the spec
//! no longer declares are removed (the member first, then the record);
//! unowned ones never are. Nothing is planned for a pool whose project
//! number could not be read (that project is an unknown of the plan).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{Planner, create, delete, has_member, noop, reason};
use crate::gcp::types::IamPolicy;
use crate::ids::ClusterKey;
use crate::live::KubeObject;
use crate::ownership::Owner;
use crate::plan::{Action, ReasonCode, Resource, Warning, WarningCode};
use crate::spec::{
    DIRECT_ROLES_ANNOTATION, DirectGrant, DirectPrincipal, DirectResource, DirectRole,
    parse_direct_record,
};

/// The attribute name of the direct-roles record.
pub(super) fn record_key() -> crate::plan::AttributeName {
    crate::plan::desired::annotation_attr(DIRECT_ROLES_ANNOTATION)
}

/// A Namespace object's wanted record: its owner, the entries, and the
/// principal-set members it records.
type WantedRecord = (Owner, BTreeSet<String>, Vec<String>);

/// The IAM member change for one direct role of one member.
pub(super) fn member_resource(role: &DirectRole, member: &str) -> Resource {
    match &role.resource {
        DirectResource::Project(project) => Resource::ProjectIamMember {
            project: project.clone(),
            role: role.role.clone(),
            member: member.to_string(),
        },
        DirectResource::ServiceAccount { email, project } => Resource::ServiceAccountIamMember {
            project: project.clone(),
            email: email.clone(),
            role: role.role.clone(),
            member: member.to_string(),
        },
    }
}

/// The record entry (`RESOURCE=ROLE`) of an IAM member change.
fn entry_of(resource: &Resource) -> Option<String> {
    match resource {
        Resource::ProjectIamMember { project, role, .. } => {
            Some(format!("projects/{project}={role}"))
        }
        Resource::ServiceAccountIamMember {
            project,
            email,
            role,
            ..
        } => Some(format!("projects/{project}/serviceAccounts/{email}={role}")),
        _ => None,
    }
}

/// The attributes of an IAM member change.
fn member_attrs(resource: &Resource) -> super::Attributes {
    match resource {
        Resource::ProjectIamMember {
            project,
            role,
            member,
        } => attrs!({"project": project, "role": role, "member": member}),
        Resource::ServiceAccountIamMember {
            email,
            role,
            member,
            ..
        } => attrs!({"service_account": email, "role": role, "member": member}),
        _ => super::Attributes::new(),
    }
}

/// The owner whose field manager wrote an object's direct-roles record,
/// and the record's entries.
pub(super) fn record_of(object: &KubeObject) -> Option<(Option<Owner>, BTreeSet<String>)> {
    let value = object.annotation(DIRECT_ROLES_ANNOTATION)?;
    let owner = object
        .field_managers
        .iter()
        .filter(|entry| entry.owns_annotation(DIRECT_ROLES_ANNOTATION))
        .find_map(|entry| Owner::from_field_manager(&entry.manager));
    Some((owner, parse_direct_record(value)))
}

/// What a pool's principal names, parsed back from a live member.
enum Parsed<'m> {
    Ksa(&'m str, &'m str),
    Namespace(&'m str),
    Cluster(ClusterKey),
}

fn parse_member<'m>(member: &'m str, prefixes: &[(String, String)]) -> Option<(usize, Parsed<'m>)> {
    for (i, (principal, set)) in prefixes.iter().enumerate() {
        if let Some(rest) = member.strip_prefix(principal.as_str()) {
            let rest = rest.strip_prefix("subject/ns/")?;
            let (ns, sa) = rest.split_once("/sa/")?;
            return Some((i, Parsed::Ksa(ns, sa)));
        }
        if let Some(rest) = member.strip_prefix(set.as_str()) {
            if let Some(ns) = rest.strip_prefix("namespace/") {
                return Some((i, Parsed::Namespace(ns)));
            }
            let path = rest
                .strip_prefix("kubernetes.cluster/https://container.googleapis.com/v1/projects/")?;
            let parts: Vec<&str> = path.split('/').collect();
            if let [project, "locations", location, "clusters", name] = parts.as_slice() {
                return Some((
                    i,
                    Parsed::Cluster(ClusterKey {
                        project: (*project).to_string(),
                        location: (*location).to_string(),
                        name: (*name).to_string(),
                    }),
                ));
            }
            return None;
        }
    }
    None
}

impl Planner<'_> {
    /// The policy a direct member change edits, as read.
    fn direct_policy(&self, resource: &Resource) -> Option<&IamPolicy> {
        match resource {
            Resource::ProjectIamMember { project, .. } => self.live.project_policy(project),
            Resource::ServiceAccountIamMember { email, .. } => {
                self.live.account_policies.get(email)
            }
            _ => None,
        }
    }

    /// The member of a grant, when its pool project's number is known.
    pub(super) fn direct_member(&self, g: &DirectGrant) -> Option<String> {
        let number = self.live.project_numbers.get(&g.cluster.project)?;
        Some(g.principal.member(number, &g.cluster))
    }

    /// Adds and removals of direct members.
    pub(super) fn direct(&mut self) {
        // Desired members: resource → the grants that want it.
        let mut desired: BTreeMap<Resource, Vec<&DirectGrant>> = BTreeMap::new();
        for g in &self.model.direct {
            let Some(member) = self.direct_member(g) else {
                continue; // the pool project is unknown
            };
            for role in &g.roles {
                desired
                    .entry(member_resource(role, &member))
                    .or_default()
                    .push(g);
            }
        }
        for (resource, grants) in &desired {
            let a = member_attrs(resource);
            if has_member(
                self.direct_policy(resource),
                resource_role(resource),
                resource_member(resource),
            ) {
                self.push(noop(
                    resource.clone(),
                    a.clone(),
                    a,
                    reason(ReasonCode::InSync, "granted"),
                ));
                continue;
            }
            if let Resource::ServiceAccountIamMember { project, email, .. } = resource
                && self.live.account(project, email).is_none()
                && !self.planned(&Resource::ServiceAccount {
                    project: project.clone(),
                    account_id: crate::ids::gsa_account_id(email).to_string(),
                })
            {
                self.problem(
                    resource.address(),
                    format!(
                        "service account {email} does not exist and the spec does not declare it"
                    ),
                    Some("declare it under `serviceAccounts` so wi creates it, or fix the email"),
                );
                continue;
            }
            let mut deps = Vec::new();
            for g in grants {
                deps.extend(self.cluster_creation(&g.cluster));
            }
            if let Resource::ServiceAccountIamMember { project, email, .. } = resource {
                let account = Resource::ServiceAccount {
                    project: project.clone(),
                    account_id: crate::ids::gsa_account_id(email).to_string(),
                };
                if self.planned(&account) {
                    deps.push(account.address());
                }
            }
            let mut warnings = Vec::new();
            if let Some(set) = grants.iter().find(|g| g.principal.is_set()) {
                let what = match &set.principal {
                    DirectPrincipal::Namespace { namespace } => format!(
                        "every KSA of namespace {namespace} in every cluster of project {}",
                        set.cluster.project
                    ),
                    _ => format!("every KSA of cluster {}", set.cluster),
                };
                warnings.push(Warning {
                    code: WarningCode::BroadPrincipalSet,
                    message: format!(
                        "{} goes to a principal set: {what} gets it, including KSAs created later",
                        resource_role(resource)
                    ),
                    address: Some(resource.address()),
                });
            }
            let owner = grants[0].owner.clone();
            let why = if grants.iter().any(|g| g.principal.is_set()) {
                "the spec grants this role to the principal set"
            } else {
                "the spec grants this role to the Kubernetes identity itself"
            };
            self.push(
                create(resource.clone(), a, reason(ReasonCode::Missing, why))
                    .with_deps(deps)
                    .with_warnings(warnings)
                    .for_owner(&owner),
            );
        }
        self.direct_removals(&desired.keys().cloned().collect());
    }

    /// The cluster creation a grant waits for (its pool must exist).
    fn cluster_creation(&self, key: &ClusterKey) -> Vec<String> {
        let live_pool = self.live.clusters.iter().any(|(k, c)| {
            k.project == key.project && c.gke.as_ref().and_then(|g| g.workload_pool()).is_some()
        });
        if live_pool {
            return Vec::new();
        }
        self.changes
            .iter()
            .filter(|c| {
                matches!(&c.resource, Resource::Cluster { cluster } if cluster.project == key.project)
                    && matches!(c.action, Action::Create | Action::Update)
            })
            .map(|c| c.address.clone())
            .collect()
    }

    /// Owned live direct members no grant declares any more.
    fn direct_removals(&mut self, desired: &BTreeSet<Resource>) {
        let pools: Vec<(String, String)> = self
            .live
            .project_numbers
            .iter()
            .map(|(p, n)| (p.clone(), n.clone()))
            .collect();
        let prefixes: Vec<(String, String)> = pools
            .iter()
            .map(|(project, number)| {
                let pool = format!(
                    "iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{}/",
                    crate::ids::workload_pool(project)
                );
                (format!("principal://{pool}"), format!("principalSet://{pool}"))
            })
            .collect();
        let mut policies: Vec<(Resource, &IamPolicy)> = Vec::new();
        for (project, live) in &self.live.projects {
            if let Some(p) = &live.policy {
                policies.push((project_probe(project), p));
            }
        }
        for (project, p) in &self.live.direct_policies {
            policies.push((project_probe(project), p));
        }
        for (email, p) in &self.live.account_policies {
            policies.push((
                Resource::ServiceAccountIamMember {
                    project: self.account_project(email),
                    email: email.clone(),
                    role: String::new(),
                    member: String::new(),
                },
                p,
            ));
        }
        let owners = self.owners();
        let mut removals = Vec::new();
        for (probe, policy) in policies {
            for binding in policy.bindings.iter().filter(|b| b.condition.is_none()) {
                for member in &binding.members {
                    let Some((pool, parsed)) = parse_member(member, &prefixes) else {
                        continue;
                    };
                    let resource = with_member(&probe, &binding.role, member);
                    if desired.contains(&resource) {
                        continue;
                    }
                    let Some(entry) = entry_of(&resource) else {
                        continue;
                    };
                    let Some((owner, holder)) =
                        self.recorded_owner(&pools[pool].0, &parsed, &entry, &owners)
                    else {
                        continue;
                    };
                    removals.push((resource, owner, holder));
                }
            }
        }
        for (resource, owner, holder) in removals {
            let address = resource.address();
            let a = member_attrs(&resource);
            self.push(
                delete(
                    resource,
                    a,
                    reason(
                        ReasonCode::NotInSpec,
                        format!("recorded by wi on {holder}, and no mapping declares it any more"),
                    ),
                )
                .with_warnings(vec![Warning {
                    code: WarningCode::RevocationDelay,
                    message: "a removed role keeps working for tokens already issued, for up to 30 minutes".into(),
                    address: Some(address),
                }])
                .for_owner(&owner),
            );
        }
    }

    /// The owner of this run whose record (on a declared cluster of the
    /// pool) lists `entry` for the parsed principal, and where it is.
    fn recorded_owner(
        &self,
        pool_project: &str,
        parsed: &Parsed<'_>,
        entry: &str,
        owners: &[Owner],
    ) -> Option<(Owner, String)> {
        for cluster in self
            .model
            .clusters
            .iter()
            .filter(|c| c.key.project == pool_project)
        {
            if let Parsed::Cluster(key) = parsed
                && key != &cluster.key
            {
                continue;
            }
            let Some(kube) = self
                .live
                .clusters
                .get(&cluster.key)
                .and_then(|c| c.kube.as_ref())
            else {
                continue;
            };
            let (meta, holder) = match parsed {
                Parsed::Ksa(ns, sa) => (
                    kube.service_accounts
                        .get(&((*ns).to_string(), (*sa).to_string())),
                    format!("KSA {ns}/{sa} of cluster {}", cluster.key),
                ),
                Parsed::Namespace(ns) => (
                    kube.namespaces.get(*ns),
                    format!("namespace {ns} of cluster {}", cluster.key),
                ),
                Parsed::Cluster(_) => (
                    kube.namespaces.get("kube-system"),
                    format!("namespace kube-system of cluster {}", cluster.key),
                ),
            };
            let Some((Some(owner), entries)) = meta.and_then(record_of) else {
                continue;
            };
            if entries.contains(entry) && owners.contains(&owner) {
                return Some((owner, holder));
            }
        }
        None
    }

    /// The record a KSA's grants leave, and what the KSA write waits for:
    /// the members it records are granted first; the members it drops are
    /// removed first (a crash between leaves an unrecorded grant the next
    /// plan records, or a recorded one the next plan removes: no loss).
    /// `keep_removed`: the write cannot wait for the removals (it annotates
    /// the KSA with its GSA, and the removals wait for that): the removed
    /// entries stay in the record (they own nothing once removed).
    pub(super) fn ksa_record(
        &self,
        key: &ClusterKey,
        namespace: &str,
        ksa: &str,
        live_record: Option<&BTreeSet<String>>,
        keep_removed: bool,
    ) -> (Option<String>, Vec<String>) {
        let grant = self.model.direct.iter().find(|g| {
            &g.cluster == key
                && matches!(&g.principal, DirectPrincipal::Ksa { namespace: n, ksa: k } if n == namespace && k == ksa)
        });
        // A KSA with no direct grant and no record records nothing and
        // waits for nothing: return before scanning the plan's changes
        // (called for every mapped KSA, the scan would make the planner
        // quadratic on fleets without direct grants).
        if grant.is_none() && live_record.is_none() {
            return (None, Vec::new());
        }
        let principal = DirectPrincipal::Ksa {
            namespace: namespace.to_string(),
            ksa: ksa.to_string(),
        };
        let member = self
            .live
            .project_numbers
            .get(&key.project)
            .map(|n| principal.member(n, key));
        // Only what wi grants, or recorded before, is recorded: a declared
        // member that already existed unrecorded (made by hand, by
        // Terraform, or found by `wi import`) is left alone and never
        // claimed, so wi will not remove it when the spec drops it.
        let declared: BTreeSet<String> = grant
            .map(|g| g.roles.iter().map(DirectRole::entry).collect())
            .unwrap_or_default();
        let mut entries: BTreeSet<String> = declared
            .iter()
            .filter(|e| live_record.is_some_and(|r| r.contains(*e)))
            .cloned()
            .collect();
        let mut deps = Vec::new();
        for c in &self.changes {
            let (Some(entry), Some(member)) = (entry_of(&c.resource), member.as_deref()) else {
                continue;
            };
            if resource_member(&c.resource) != member {
                continue;
            }
            match c.action {
                Action::Create => {
                    deps.push(c.address.clone());
                    if declared.contains(&entry) {
                        entries.insert(entry);
                    }
                }
                Action::Delete if keep_removed => {
                    entries.insert(entry);
                }
                Action::Delete => deps.push(c.address.clone()),
                _ => {}
            }
        }
        // Recorded entries that own no live member (a move to GSA mode
        // kept them) stay as they are: rewriting the record for them alone
        // would be a change with no effect.
        for e in live_record.into_iter().flatten() {
            if !entries.contains(e)
                && let Some(member) = member.as_deref()
                && let Some(resource) = entry_resource(e, member)
                && !has_member(
                    self.direct_policy(&resource),
                    resource_role(&resource),
                    member,
                )
                && !self.changes.iter().any(|c| c.resource == resource)
            {
                entries.insert(e.clone());
            }
        }
        let record =
            (!entries.is_empty()).then(|| entries.into_iter().collect::<Vec<_>>().join(","));
        (record, deps)
    }
}

/// A project-policy probe: the resource shape of members found in it.
fn project_probe(project: &str) -> Resource {
    Resource::ProjectIamMember {
        project: project.to_string(),
        role: String::new(),
        member: String::new(),
    }
}

fn with_member(probe: &Resource, role: &str, member: &str) -> Resource {
    match probe {
        Resource::ProjectIamMember { project, .. } => Resource::ProjectIamMember {
            project: project.clone(),
            role: role.to_string(),
            member: member.to_string(),
        },
        Resource::ServiceAccountIamMember { project, email, .. } => {
            Resource::ServiceAccountIamMember {
                project: project.clone(),
                email: email.clone(),
                role: role.to_string(),
                member: member.to_string(),
            }
        }
        other => other.clone(),
    }
}

fn resource_role(resource: &Resource) -> &str {
    match resource {
        Resource::ProjectIamMember { role, .. }
        | Resource::ServiceAccountIamMember { role, .. } => role,
        _ => "",
    }
}

fn resource_member(resource: &Resource) -> &str {
    match resource {
        Resource::ProjectIamMember { member, .. }
        | Resource::ServiceAccountIamMember { member, .. } => member,
        _ => "",
    }
}

/// The IAM member resource a record entry names for `member`.
fn entry_resource(entry: &str, member: &str) -> Option<Resource> {
    let (path, role) = entry.split_once('=')?;
    let rest = path.strip_prefix("projects/")?;
    Some(match rest.split_once("/serviceAccounts/") {
        Some((project, email)) => Resource::ServiceAccountIamMember {
            project: project.to_string(),
            email: email.to_string(),
            role: role.to_string(),
            member: member.to_string(),
        },
        None => Resource::ProjectIamMember {
            project: rest.to_string(),
            role: role.to_string(),
            member: member.to_string(),
        },
    })
}

impl Planner<'_> {
    /// The move from direct mode to GSA mode: the direct members of a KSA
    /// whose write annotates it with its GSA go after that write (1 the
    /// binding, 2 the annotation, 3 the direct roles).
    pub(super) fn direct_order(&mut self) {
        let key_attr = super::annotation_key();
        let mut extra: Vec<(usize, String)> = Vec::new();
        let mut warned: BTreeSet<String> = BTreeSet::new();
        for (j, c) in self.changes.iter().enumerate() {
            let Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            } = &c.resource
            else {
                continue;
            };
            if c.action == Action::NoOp || c.action == Action::Delete {
                continue;
            }
            let after = c.after.as_ref().and_then(|a| a.get(&key_attr));
            let before = c.before.as_ref().and_then(|a| a.get(&key_attr));
            if after.is_none() || after == before {
                continue;
            }
            let Some(number) = self.live.project_numbers.get(&cluster.project) else {
                continue;
            };
            let member = DirectPrincipal::Ksa {
                namespace: namespace.clone(),
                ksa: name.clone(),
            }
            .member(number, cluster);
            for (i, d) in self.changes.iter().enumerate() {
                if i != j && d.action == Action::Delete && resource_member(&d.resource) == member {
                    extra.push((i, c.address.clone()));
                    warned.insert(c.address.clone());
                }
            }
        }
        for (i, dep) in extra {
            let d = &mut self.changes[i];
            d.depends_on.push(dep);
            d.depends_on.sort();
            d.depends_on.dedup();
        }
        for address in warned {
            self.warnings.push(Warning {
                code: WarningCode::ModeMigration,
                message: "this KSA moves from direct mode to GSA mode: its binding is added first, then its annotation, then its direct roles go; tokens already issued keep the direct roles for up to 30 minutes".to_string(),
                address: Some(address),
            });
        }
    }
}

impl Planner<'_> {
    /// The records of principal sets, on Namespace objects: the namespace
    /// of a namespace set in each listed cluster, `kube-system` for a
    /// cluster set. Written after the members they record are granted, and
    /// after the members they stop recording are removed; a namespace the
    /// plan creates gets its record in that creation.
    pub(super) fn namespace_records(&mut self) {
        // (cluster, namespace) → (owner, entries, origin file).
        let mut wanted: BTreeMap<(ClusterKey, String), WantedRecord> = BTreeMap::new();
        for g in &self.model.direct {
            if !g.principal.is_set() {
                continue;
            }
            let Some(member) = self.direct_member(g) else {
                continue; // the pool project is unknown
            };
            let e = wanted
                .entry((
                    g.cluster.clone(),
                    g.principal.record_namespace().to_string(),
                ))
                .or_insert_with(|| (g.owner.clone(), BTreeSet::new(), Vec::new()));
            e.1.extend(g.roles.iter().map(DirectRole::entry));
            e.2.push(member);
        }
        // Namespaces holding one of this run's owners' records that no set
        // declares any more.
        let owners = self.owners();
        for cluster in &self.model.clusters {
            let Some(kube) = self
                .live
                .clusters
                .get(&cluster.key)
                .and_then(|c| c.kube.as_ref())
            else {
                continue;
            };
            for (name, ns) in &kube.namespaces {
                if let Some((Some(owner), _)) = record_of(ns)
                    && owners.contains(&owner)
                {
                    wanted
                        .entry((cluster.key.clone(), name.clone()))
                        .or_insert_with(|| (owner, BTreeSet::new(), Vec::new()));
                }
            }
        }
        let record_attr = record_key();
        for ((key, name), (owner, mut entries, members)) in wanted {
            let Some(number) = self.live.project_numbers.get(&key.project) else {
                continue;
            };
            let set_members: BTreeSet<String> = if name == "kube-system" {
                [DirectPrincipal::Cluster.member(number, &key)].into()
            } else {
                [DirectPrincipal::Namespace {
                    namespace: name.clone(),
                }
                .member(number, &key)]
                .into()
            };
            let set_members: BTreeSet<String> = set_members.into_iter().chain(members).collect();
            let mut deps = Vec::new();
            let mut created = BTreeSet::new();
            for c in &self.changes {
                let Some(entry) = entry_of(&c.resource) else {
                    continue;
                };
                if !set_members.contains(resource_member(&c.resource)) {
                    continue;
                }
                if matches!(c.action, Action::Create | Action::Delete) {
                    deps.push(c.address.clone());
                }
                if matches!(c.action, Action::Create) {
                    created.insert(entry);
                }
            }
            let resource = Resource::Namespace {
                cluster: key.clone(),
                name: name.clone(),
            };
            let address = resource.address();
            let live = self
                .live
                .clusters
                .get(&key)
                .and_then(|c| c.kube.as_ref())
                .and_then(|k| k.namespaces.get(&name));
            let live_record = live
                .and_then(record_of)
                .filter(|(o, _)| o.as_ref() == Some(&owner))
                .map(|(_, e)| e);
            // As for a KSA: only what wi grants, or recorded before.
            entries.retain(|e| {
                created.contains(e) || live_record.as_ref().is_some_and(|r| r.contains(e))
            });
            // Entries that own no live member stay as they are.
            for e in live_record.iter().flatten() {
                let stale = set_members.iter().all(|m| {
                    entry_resource(e, m).is_none_or(|r| {
                        !has_member(self.direct_policy(&r), resource_role(&r), m)
                            && !self.changes.iter().any(|c| c.resource == r)
                    })
                });
                if stale {
                    entries.insert(e.clone());
                }
            }
            let record = entries.into_iter().collect::<Vec<_>>().join(",");
            if let Some(c) = self.changes.iter_mut().find(|c| c.address == address)
                && c.action == Action::Create
            {
                if !record.is_empty()
                    && let Some(after) = c.after.as_mut()
                {
                    after.insert(record_attr.clone(), json!(record));
                }
                c.depends_on.extend(deps);
                c.depends_on.sort();
                c.depends_on.dedup();
                continue;
            }
            // A mapping's "exists" no-op for this namespace gives way.
            self.changes
                .retain(|c| !(c.address == address && c.action == Action::NoOp));
            let before_record = live_record
                .as_ref()
                .map(|e| e.iter().cloned().collect::<Vec<_>>().join(","));
            if before_record.as_deref().unwrap_or("") == record {
                continue;
            }
            let mut before = super::Attributes::new();
            let mut after = super::Attributes::new();
            if let Some(b) = &before_record {
                before.insert(record_attr.clone(), json!(b));
            }
            if !record.is_empty() {
                after.insert(record_attr.clone(), json!(record));
            }
            // The labels of a namespace this owner created are its
            // apply's too: an apply without them would release them.
            if let Some(ns) = live
                && ns.created_by().as_ref() == Some(&owner)
            {
                for (k, v) in Self::created_labels(&owner) {
                    before.insert(k.clone(), v.clone());
                    after.insert(k, v);
                }
            }
            let change = match live {
                Some(_) => super::update(
                    resource,
                    before,
                    after,
                    if record.is_empty() {
                        reason(
                            ReasonCode::NotInSpec,
                            "no principal set declares these roles any more: wi removes its record of them",
                        )
                    } else {
                        reason(
                            ReasonCode::Missing,
                            "the namespace records the direct roles wi grants its principal set",
                        )
                    },
                ),
                None => {
                    let mut after = after;
                    after.extend(Self::created_labels(&owner));
                    after.insert("name", json!(name));
                    create(
                        resource,
                        after,
                        reason(
                            ReasonCode::Missing,
                            "the namespace that records a principal set's roles does not exist",
                        ),
                    )
                }
            };
            self.push(change.with_deps(deps).for_owner(&owner));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ClusterKey {
        ClusterKey {
            project: "wi-dir".into(),
            location: "us-central1-a".into(),
            name: "c1".into(),
        }
    }

    #[test]
    fn members_are_built_from_typed_fields_and_parse_back() {
        let prefixes = vec![(
            "principal://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/wi-dir.svc.id.goog/".to_string(),
            "principalSet://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/wi-dir.svc.id.goog/".to_string(),
        )];
        let ksa = DirectPrincipal::Ksa {
            namespace: "apps".into(),
            ksa: "api".into(),
        }
        .member("42", &key());
        assert_eq!(
            ksa,
            "principal://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/wi-dir.svc.id.goog/subject/ns/apps/sa/api"
        );
        assert!(matches!(
            parse_member(&ksa, &prefixes),
            Some((0, Parsed::Ksa("apps", "api")))
        ));
        let ns = DirectPrincipal::Namespace {
            namespace: "batch".into(),
        }
        .member("42", &key());
        assert!(matches!(
            parse_member(&ns, &prefixes),
            Some((0, Parsed::Namespace("batch")))
        ));
        let cluster = DirectPrincipal::Cluster.member("42", &key());
        assert!(matches!(
            parse_member(&cluster, &prefixes),
            Some((0, Parsed::Cluster(k))) if k == key()
        ));
        // Case-sensitive, and another pool's members are not ours.
        assert!(parse_member(&ksa.replace("principal://", "Principal://"), &prefixes).is_none());
        assert!(parse_member(&ksa.replace("/42/", "/43/"), &prefixes).is_none());
    }

    #[test]
    fn record_entries_name_their_resource() {
        let r = entry_resource(
            "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com=roles/x",
            "m",
        )
        .expect("parses");
        assert_eq!(
            entry_of(&r).as_deref(),
            Some("projects/p/serviceAccounts/a@p.iam.gserviceaccount.com=roles/x")
        );
        let r = entry_resource("projects/p=roles/y", "m").expect("parses");
        assert_eq!(entry_of(&r).as_deref(), Some("projects/p=roles/y"));
    }
}
