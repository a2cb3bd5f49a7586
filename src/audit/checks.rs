//! The audit's checks: a pure function of the model and what was read.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;

use super::read::{AuditCluster, AuditState};
use super::{AuditReport, ClusterRow, Finding, FindingCode, PolicyEditor, Severity};
use crate::gcp::types::IamPolicy;
use crate::ids::{ksa_member, workload_pool};
use crate::ownership::GSA_ANNOTATION;
use crate::spec::{Mapping, Model};

/// The role that lets a member act as an account through Workload Identity.
const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";

/// Roles that carry `iam.serviceAccounts.setIamPolicy` on an account (on
/// the account or its project), or `resourcemanager.projects.setIamPolicy`
/// (a member can grant itself any of the others): who can change who acts
/// as an account. `roles/editor` has neither.
const POLICY_EDITOR_ROLES: &[&str] = &[
    "roles/owner",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.securityAdmin",
    "roles/resourcemanager.projectIamAdmin",
];

/// Of [`POLICY_EDITOR_ROLES`], those that count on an account's own policy.
const ACCOUNT_EDITOR_ROLES: &[&str] = &[
    "roles/owner",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.securityAdmin",
];

/// The node-pool label GKE sets on every node (pods select pools by it).
const NODE_POOL_LABEL: &str = "cloud.google.com/gke-nodepool";

/// A mapped identity: (project, namespace, KSA) → the mappings giving it.
type Identities<'a> = BTreeMap<(&'a str, &'a str, &'a str), Vec<&'a Mapping>>;

pub(super) fn run(model: &Model, state: &AuditState) -> AuditReport {
    let mut identities: Identities<'_> = BTreeMap::new();
    for m in &model.mappings {
        identities
            .entry((&m.cluster.project, &m.namespace, &m.ksa))
            .or_default()
            .push(m);
    }
    let mut findings = Vec::new();
    undeclared_clusters(state, &identities, &mut findings);
    broad_mappings(&identities, &mut findings);
    principal_sets(state, &mut findings);
    pods(state, &identities, &mut findings);
    annotations(state, &mut findings);
    bindings(model, state, &mut findings);
    disabled(model, state, &mut findings);
    for c in &state.clusters {
        if let Some(e) = &c.kube_error {
            findings.push(Finding {
                severity: Severity::Warning,
                code: FindingCode::UnreadableCluster,
                subject: c.key.to_string(),
                message: format!(
                    "its Kubernetes API could not be read ({e}): its KSAs and pods are not audited"
                ),
            });
        }
    }
    findings.sort_by(|a, b| {
        (b.severity, a.code, &a.subject, &a.message)
            .cmp(&(a.severity, b.code, &b.subject, &b.message))
    });
    findings.dedup();
    AuditReport {
        clusters: state.clusters.iter().map(row).collect(),
        findings,
        policy_editors: editors(model, state),
    }
}

fn row(c: &AuditCluster) -> ClusterRow {
    let summary = c
        .gke
        .as_ref()
        .map(|g| crate::live::ClusterSummary::of(&c.key.project, g));
    ClusterRow {
        cluster: c.key.to_string(),
        declared: c.declared,
        exists: c.gke.is_some(),
        workload_pool: summary.as_ref().and_then(|s| s.workload_pool.clone()),
        gce_metadata_pools: summary.map(|s| s.gce_metadata_pools).unwrap_or_default(),
    }
}

/// Whether a cluster is in project `project`'s workload pool.
fn in_pool(c: &AuditCluster, project: &str) -> bool {
    c.key.project == project
        && c.gke.as_ref().and_then(|g| g.workload_pool()) == Some(workload_pool(project).as_str())
}

/// "as `a@p` (mapped at wi.yaml:12)".
fn mapped_as(mappings: &[&Mapping]) -> String {
    let accounts: BTreeSet<&str> = mappings.iter().map(|m| m.gsa_email.as_str()).collect();
    let at: BTreeSet<String> = mappings.iter().map(|m| m.origin.to_string()).collect();
    format!(
        "{} (mapped at {})",
        accounts.into_iter().collect::<Vec<_>>().join(", "),
        at.into_iter().collect::<Vec<_>>().join(", ")
    )
}

/// Clusters the spec does not declare, in the pool of a mapped identity.
fn undeclared_clusters(state: &AuditState, ids: &Identities<'_>, out: &mut Vec<Finding>) {
    for c in state.clusters.iter().filter(|c| !c.declared) {
        let mut creatable = Vec::new();
        for (&(project, ns, ksa), mappings) in ids {
            if !in_pool(c, project) {
                continue;
            }
            let Some(kube) = &c.kube else { continue };
            if kube
                .service_accounts
                .contains_key(&(ns.to_owned(), ksa.to_owned()))
            {
                out.push(Finding {
                    severity: Severity::Error,
                    code: FindingCode::UndeclaredClusterHasKsa,
                    subject: format!("{} {ns}/{ksa}", c.key),
                    message: format!(
                        "this cluster is not in the spec but shares the workload pool {}: its {ns}/{ksa} KSA acts as {}; declare the cluster, or delete the KSA there",
                        workload_pool(project),
                        mapped_as(mappings)
                    ),
                });
            } else if kube.namespaces.contains_key(ns) {
                creatable.push(format!("{ns}/{ksa} (namespace exists)"));
            } else {
                creatable.push(format!("{ns}/{ksa}"));
            }
        }
        if !creatable.is_empty() {
            out.push(Finding {
                severity: Severity::Warning,
                code: FindingCode::UndeclaredClusterCanCreate,
                subject: c.key.to_string(),
                message: format!(
                    "this cluster is not in the spec but shares the workload pool {}: whoever can create these KSAs there gets their accounts: {}",
                    c.gke.as_ref().and_then(|g| g.workload_pool()).unwrap_or_default(),
                    creatable.join(", ")
                ),
            });
        }
    }
}

/// Mappings of the `default` namespace or KSA.
fn broad_mappings(ids: &Identities<'_>, out: &mut Vec<Finding>) {
    for (&(project, ns, ksa), mappings) in ids {
        let why = match (ns == "default", ksa == "default") {
            (true, true) => {
                "every pod of the default namespace that names no service account runs as default/default"
            }
            (false, true) => {
                "every pod of the namespace that names no service account runs as its `default` KSA"
            }
            (true, false) => {
                "the `default` namespace is where workloads land when nobody chose one"
            }
            (false, false) => continue,
        };
        out.push(Finding {
            severity: Severity::Warning,
            code: FindingCode::BroadMapping,
            subject: format!("{project} {ns}/{ksa}"),
            message: format!(
                "{why}, so all of them act as {}; map a dedicated namespace and KSA instead",
                mapped_as(mappings)
            ),
        });
    }
}

/// `principalSet://` members naming a whole namespace or pool.
fn principal_sets(state: &AuditState, out: &mut Vec<Finding>) {
    let policies = state
        .account_policies
        .iter()
        .map(|(e, p)| (e.clone(), p))
        .chain(
            state
                .project_policies
                .iter()
                .map(|(id, p)| (format!("project {id}"), p)),
        );
    for (on, policy) in policies {
        for b in &policy.bindings {
            for member in &b.members {
                if !(member.starts_with("principalSet://") && member.contains(".svc.id.goog")) {
                    continue;
                }
                let scope = if member.contains("/namespace/") {
                    "every KSA of a namespace"
                } else if member.contains("/kubernetes.cluster/") {
                    "every KSA of one cluster"
                } else {
                    "every KSA of the workload pool (every cluster of the project)"
                };
                out.push(Finding {
                    severity: Severity::Warning,
                    code: FindingCode::BroadPrincipalSet,
                    subject: on.clone(),
                    message: format!("{member} holds {} here: {scope} gets it", b.role),
                });
            }
        }
    }
}

/// The node pool a pod runs (or will run) on, when it can be told.
fn pod_pool<'a>(pod: &'a Pod, pools: &'a [String]) -> Option<&'a str> {
    let spec = pod.spec.as_ref()?;
    if let Some(p) = spec
        .node_selector
        .as_ref()
        .and_then(|s| s.get(NODE_POOL_LABEL))
    {
        return Some(p);
    }
    let node = spec.node_name.as_deref()?;
    pools
        .iter()
        .find(|p| node.contains(&format!("-{p}-")))
        .map(String::as_str)
}

/// Pods of mapped KSAs that get the node's identity instead.
fn pods(state: &AuditState, ids: &Identities<'_>, out: &mut Vec<Finding>) {
    for c in &state.clusters {
        let (Some(kube), Some(gke)) = (&c.kube, &c.gke) else {
            continue;
        };
        let pools: Vec<String> = gke.node_pools.iter().map(|p| p.name.clone()).collect();
        let gce: BTreeSet<&str> = gke
            .node_pools
            .iter()
            .filter(|p| p.metadata_mode() != Some("GKE_METADATA"))
            .map(|p| p.name.as_str())
            .collect();
        for pod in &kube.pods {
            let Some(spec) = &pod.spec else { continue };
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let ksa = spec.service_account_name.as_deref().unwrap_or("default");
            let Some(mappings) = ids.get(&(c.key.project.as_str(), ns, ksa)) else {
                continue;
            };
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let subject = format!("{} {ns}/{name}", c.key);
            if spec.host_network == Some(true) {
                out.push(Finding {
                    severity: Severity::Error,
                    code: FindingCode::HostNetworkPod,
                    subject,
                    message: format!(
                        "pod of KSA {ns}/{ksa} on the host network: it reaches the node's metadata server and gets the node's identity, not {}; drop hostNetwork or give it another KSA",
                        mapped_as(mappings)
                    ),
                });
                continue;
            }
            let on_gce = match pod_pool(pod, &pools) {
                Some(p) => gce.contains(p).then(|| p.to_owned()),
                None if !gce.is_empty() && gce.len() == pools.len() => {
                    Some(gce.iter().copied().collect::<Vec<_>>().join(", "))
                }
                None => None,
            };
            if let Some(pool) = on_gce {
                out.push(Finding {
                    severity: Severity::Error,
                    code: FindingCode::GceMetadataPod,
                    subject,
                    message: format!(
                        "pod of KSA {ns}/{ksa} on node pool {pool}, still on GCE_METADATA: it gets the node's identity, not {}; switch the pool to GKE_METADATA",
                        mapped_as(mappings)
                    ),
                });
            }
        }
    }
}

/// Whether `policy` lets `member` act as its account through Workload Identity.
fn binds(policy: &IamPolicy, member: &str) -> bool {
    policy.bindings.iter().any(|b| {
        b.role == WORKLOAD_IDENTITY_USER
            && b.condition.is_none()
            && b.members.iter().any(|m| m == member)
    })
}

/// KSA annotations naming an account whose policy does not bind that KSA.
fn annotations(state: &AuditState, out: &mut Vec<Finding>) {
    for c in &state.clusters {
        let Some(kube) = &c.kube else { continue };
        for ((ns, name), sa) in &kube.service_accounts {
            let Some(email) = sa
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(GSA_ANNOTATION))
            else {
                continue;
            };
            let member = ksa_member(&c.key.project, ns, name);
            let subject = format!("{} {ns}/{name}", c.key);
            match state.account_policies.get(email) {
                Some(policy) if binds(policy, &member) => {}
                Some(_) => out.push(Finding {
                    severity: Severity::Warning,
                    code: FindingCode::AnnotationWithoutBinding,
                    subject,
                    message: format!(
                        "the KSA is annotated with {email}, but that account's policy does not grant {member} {WORKLOAD_IDENTITY_USER}: its pods get a 403 for tokens; add the mapping or remove the annotation"
                    ),
                }),
                None if !state.accounts.contains_key(email) && email.contains('@') => {
                    out.push(Finding {
                        severity: Severity::Warning,
                        code: FindingCode::AnnotationWithoutBinding,
                        subject,
                        message: format!(
                            "the KSA is annotated with {email}, an account that does not exist (or cannot be read)"
                        ),
                    });
                }
                None => {}
            }
        }
    }
}

/// `serviceAccount:P.svc.id.goog[NS/KSA]` → (P, NS, KSA).
fn parse_ksa_member(member: &str) -> Option<(&str, &str, &str)> {
    let rest = member.strip_prefix("serviceAccount:")?;
    let (pool, rest) = rest.split_once('[')?;
    let project = pool.strip_suffix(".svc.id.goog")?;
    let (ns, ksa) = rest.strip_suffix(']')?.split_once('/')?;
    Some((project, ns, ksa))
}

/// Workload Identity bindings on the spec's accounts: those the spec does
/// not map, and those whose KSA exists in no cluster of its pool.
fn bindings(model: &Model, state: &AuditState, out: &mut Vec<Finding>) {
    let mapped: BTreeSet<(&str, String)> = model
        .mappings
        .iter()
        .map(|m| (m.gsa_email.as_str(), m.member()))
        .collect();
    let spec_accounts: BTreeSet<String> = model
        .service_accounts
        .iter()
        .map(|g| g.email())
        .chain(model.mappings.iter().map(|m| m.gsa_email.clone()))
        .collect();
    for email in &spec_accounts {
        let Some(policy) = state.account_policies.get(email) else {
            continue;
        };
        for b in policy
            .bindings
            .iter()
            .filter(|b| b.role == WORKLOAD_IDENTITY_USER)
        {
            for member in &b.members {
                let Some((project, ns, ksa)) = parse_ksa_member(member) else {
                    continue;
                };
                if !mapped.contains(&(email.as_str(), member.clone())) {
                    out.push(Finding {
                        severity: Severity::Warning,
                        code: FindingCode::UnmanagedWorkloadIdentityUser,
                        subject: email.clone(),
                        message: format!(
                            "{member} can act as this account, but no mapping of the spec says so: map it, or list it under `absent` to remove it"
                        ),
                    });
                }
                // Only projects whose every cluster was read can tell "nowhere".
                if !model.projects.iter().any(|p| p == project) {
                    continue;
                }
                let pool: Vec<&AuditCluster> = state
                    .clusters
                    .iter()
                    .filter(|c| in_pool(c, project))
                    .collect();
                if pool.iter().any(|c| c.kube.is_none()) {
                    continue;
                }
                let exists = pool.iter().any(|c| {
                    c.kube.as_ref().is_some_and(|k| {
                        k.service_accounts
                            .contains_key(&(ns.to_owned(), ksa.to_owned()))
                    })
                });
                if !exists {
                    out.push(Finding {
                        severity: Severity::Warning,
                        code: FindingCode::BindingWithoutKsa,
                        subject: email.clone(),
                        message: format!(
                            "{member} is bound, but no cluster of project {project} has a {ns}/{ksa} KSA: whoever creates it first, in any cluster of the pool, gets this account"
                        ),
                    });
                }
            }
        }
    }
}

/// Accounts mappings name that are disabled.
fn disabled(model: &Model, state: &AuditState, out: &mut Vec<Finding>) {
    let named: BTreeSet<&str> = model
        .mappings
        .iter()
        .map(|m| m.gsa_email.as_str())
        .collect();
    for email in named {
        if state.accounts.get(email).is_some_and(|a| a.disabled) {
            out.push(Finding {
                severity: Severity::Error,
                code: FindingCode::DisabledAccount,
                subject: email.to_owned(),
                message: format!(
                    "the account is disabled: no KSA mapped to it gets a token; `wi apply` enables an account wi owns, else `gcloud iam service-accounts enable {email}`"
                ),
            });
        }
    }
}

/// Who can edit the policies of the spec's accounts.
fn editors(model: &Model, state: &AuditState) -> BTreeMap<String, Vec<PolicyEditor>> {
    let emails: BTreeSet<String> = model
        .service_accounts
        .iter()
        .map(|g| g.email())
        .chain(model.mappings.iter().map(|m| m.gsa_email.clone()))
        .collect();
    let mut out = BTreeMap::new();
    for email in emails {
        // Only accounts of the spec's projects: another project's policy is not read.
        let project = crate::ids::gsa_project(&email);
        let Some(project_policy) = project.and_then(|id| state.project_policies.get(id)) else {
            continue;
        };
        if !state.accounts.contains_key(&email) {
            continue;
        }
        let mut list = BTreeSet::new();
        {
            let p = project_policy;
            for b in p
                .bindings
                .iter()
                .filter(|b| POLICY_EDITOR_ROLES.contains(&b.role.as_str()))
            {
                for m in &b.members {
                    list.insert(PolicyEditor {
                        member: m.clone(),
                        role: b.role.clone(),
                        on: format!("project {}", project.unwrap_or_default()),
                    });
                }
            }
        }
        if let Some(p) = state.account_policies.get(&email) {
            for b in p
                .bindings
                .iter()
                .filter(|b| ACCOUNT_EDITOR_ROLES.contains(&b.role.as_str()))
            {
                for m in &b.members {
                    list.insert(PolicyEditor {
                        member: m.clone(),
                        role: b.role.clone(),
                        on: email.clone(),
                    });
                }
            }
        }
        out.insert(email, list.into_iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ksa_members_parse() {
        assert_eq!(
            parse_ksa_member("serviceAccount:p.svc.id.goog[ns/app]"),
            Some(("p", "ns", "app"))
        );
        assert_eq!(parse_ksa_member("user:a@b.c"), None);
        assert_eq!(
            parse_ksa_member("serviceAccount:x@p.iam.gserviceaccount.com"),
            None
        );
    }
}
