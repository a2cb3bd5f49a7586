//! Planning: (model, live) → Plan. Pure: no I/O, no clock, no environment.
//!
//! Ownership without a state file follows [`crate::ownership`]: an account
//! belongs to the owner its description marker names, and so do its
//! `roles/iam.workloadIdentityUser` members and its own project-role grants
//! (undeclared ones are drift for that owner only). On accounts no owner of
//! this run owns it only adds, and removes a member only when the spec lists
//! it under `absent`. Kubernetes fields belong to the owner whose field
//! manager (`wi/O`) owns them (server-side apply `managedFields`). A claim
//! that collides with another owner's (an account, a KSA, a mapping to
//! another owner's account) is a [`PlanProblem`]: nothing is planned.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Action, Attributes, FORMAT_VERSION, KubeWrite, Owner, Plan, PlanError, PlanProblem, Reason,
    ReasonCode, Resource, ResourceChange, Unknown, UnknownReason, UnknownScope, Warning,
};
use crate::gcp::types::IamPolicy;
use crate::live::{FailureKind, LiveState, Scope};
use crate::ownership::{GSA_ANNOTATION, MANAGED_BY_LABEL, OWNER_LABEL};
use crate::spec::Model;

/// Attributes with fixed names, written as a JSON object:
/// `attrs!({"role": role, WORKLOAD_POOL: pool})`. The names are `&'static
/// str` (literals or constants), so no entry of a fleet's plan allocates one.
macro_rules! attrs {
    ({ $($key:tt : $value:expr),* $(,)? }) => {
        [$(($key, serde_json::json!($value))),*]
            .into_iter()
            .collect::<$crate::plan::Attributes>()
    };
}

mod accounts;
mod clusters;
mod direct;
mod iam;
mod kubernetes;
mod order;
mod services;
mod targeting;
mod warnings;

/// Choices that change what the plan does.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Delete owned accounts that left the spec, and KSAs `wi` created whose mapping left.
    pub prune: bool,
    /// Take over Kubernetes fields another field manager owns.
    pub force_conflicts: bool,
    /// `--target`: plan only the changes these patterns name (and what they
    /// depend on); empty: every change.
    pub target: Vec<String>,
    /// `--exclude`: leave out the changes these patterns name.
    pub exclude: Vec<String>,
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
        actionable: std::collections::HashSet::new(),
        warnings: Vec::new(),
        problems: Vec::new(),
        declared_by_email: model
            .service_accounts
            .iter()
            .enumerate()
            .rev()
            .map(|(i, g)| (g.email(), i))
            .collect(),
    };
    planner.services();
    planner.clusters();
    planner.accounts();
    planner.account_members();
    planner.project_roles();
    planner.direct();
    planner.kubernetes();
    planner.namespace_records();
    planner.direct_order();
    planner.access_order();
    planner.identity_sameness();
    // What the planner made of a project or cluster it could not read
    // (a cluster that "does not exist") is no problem: it is an unknown.
    let problems: Vec<PlanProblem> = std::mem::take(&mut planner.problems)
        .into_iter()
        .filter(|p| !in_unknown_scope(&p.address, live))
        .collect();
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    let mut changes = planner.changes;
    sort_changes(&mut changes);
    changes.dedup_by(|a, b| a.address == b.address);
    let (mut changes, warnings, unknowns) = hold_back(changes, planner.warnings, live);
    // Each unknown stands in the selection as a placeholder no-op of its
    // cluster or project, so `--target`/`--exclude` name it as they name
    // the changes it would have had: an excluded (or untargeted) unknown
    // is not an unknown of the targeted plan.
    let placeholders: Vec<(String, Unknown)> = unknowns
        .into_iter()
        .map(|u| {
            let p = placeholder(&u.scope);
            let address = p.address.clone();
            changes.push(p);
            (address, u)
        })
        .collect();
    let selection = targeting::select(
        changes,
        warnings,
        &options.target,
        &options.exclude,
        &targeting::Groups::of(&model.clusters),
    );
    if !selection.problems.is_empty() {
        return Err(PlanError {
            problems: selection.problems,
        });
    }
    let kept: BTreeSet<&str> = selection
        .changes
        .iter()
        .map(|c| c.address.as_str())
        .collect();
    let mut unknowns: Vec<Unknown> = placeholders
        .iter()
        .filter(|(address, _)| kept.contains(address.as_str()))
        .map(|(_, u)| u.clone())
        .collect();
    unknowns.sort_by(|a, b| a.scope.cmp(&b.scope));
    let placeholder_addresses: BTreeSet<&str> =
        placeholders.iter().map(|(a, _)| a.as_str()).collect();
    let changes: Vec<ResourceChange> = selection
        .changes
        .into_iter()
        .filter(|c| !placeholder_addresses.contains(c.address.as_str()))
        .collect();
    let mut warnings = selection.warnings;
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
        unknowns,
    })
}

/// Whether an address names something in a project or cluster that could
/// not be read (`cluster["p/l/c"]`, `kubernetes_namespace["p/l/c/ns"]`,
/// `google_service_account["p/id"]`, an account `…@p.iam.gserviceaccount.com`).
fn in_unknown_scope(address: &str, live: &LiveState) -> bool {
    live.unreadable.keys().any(|scope| match scope {
        Scope::Cluster(key) => {
            address.contains(&format!("[\"{key}\"]")) || address.contains(&format!("[\"{key}/"))
        }
        Scope::Project(project) => {
            address.contains(&format!("[\"{project}/"))
                || address.contains(&format!("[\"{project}\"]"))
                || address.contains(&format!("@{project}.iam.gserviceaccount.com"))
        }
    })
}

/// The cluster or project of a resource, as the live read scopes it.
fn scope_of(resource: &Resource) -> Scope {
    match resource {
        Resource::Cluster { cluster }
        | Resource::NodePool { cluster, .. }
        | Resource::Namespace { cluster, .. }
        | Resource::KubernetesServiceAccount { cluster, .. } => Scope::Cluster(cluster.clone()),
        Resource::ProjectService { project, .. }
        | Resource::ServiceAccount { project, .. }
        | Resource::ServiceAccountIamMember { project, .. }
        | Resource::ProjectIamMember { project, .. } => Scope::Project(project.clone()),
    }
}

/// The no-op that stands for an unknown in `--target`/`--exclude` selection.
fn placeholder(scope: &UnknownScope) -> ResourceChange {
    let resource = match scope {
        UnknownScope::Cluster { cluster } => Resource::Cluster {
            cluster: cluster.clone(),
        },
        UnknownScope::Project { project } => Resource::ProjectService {
            project: project.clone(),
            service: crate::live::IAM_CREDENTIALS_SERVICE.to_string(),
        },
    };
    change(
        resource,
        Action::NoOp,
        None,
        None,
        reason(ReasonCode::InSync, "not read"),
    )
}

/// Partial plans. Nothing is planned in a project or cluster that could
/// not be read (what the planner made of its missing state is dropped), nor
/// anything that waits for a dropped change (an annotation waiting for its
/// binding in an unknown project), nor the removal of a workload-identity
/// binding whose KSA may run in an unknown cluster of the pool's project (a
/// removal is never planned from what could not be read). Returns the
/// changes and warnings that stay and the unknowns, each with the changes
/// elsewhere it held back.
fn hold_back(
    changes: Vec<ResourceChange>,
    warnings: Vec<Warning>,
    live: &LiveState,
) -> (Vec<ResourceChange>, Vec<Warning>, Vec<Unknown>) {
    if live.unreadable.is_empty() {
        return (changes, warnings, Vec::new());
    }
    let unknown_pools: BTreeMap<&str, &Scope> = live
        .unreadable
        .keys()
        .filter_map(|s| match s {
            Scope::Cluster(key) => Some((key.project.as_str(), s)),
            Scope::Project(_) => None,
        })
        .collect();
    // Address -> (the unknown that drops it, whether it lies outside it).
    let mut dropped: BTreeMap<String, (Scope, bool)> = BTreeMap::new();
    for c in &changes {
        let scope = scope_of(&c.resource);
        if live.unreadable.contains_key(&scope) {
            dropped.insert(c.address.clone(), (scope, false));
            continue;
        }
        if let Resource::ServiceAccountIamMember { role, member, .. } = &c.resource
            && c.action == Action::Delete
            && role == crate::ownership::WORKLOAD_IDENTITY_USER
            && let Some(pool) = member
                .strip_prefix("serviceAccount:")
                .and_then(|m| m.split_once(".svc.id.goog["))
                .map(|(p, _)| p)
            && let Some(cause) = unknown_pools.get(pool)
        {
            dropped.insert(c.address.clone(), ((*cause).clone(), true));
        }
    }
    // What waits for a dropped change is dropped too, to a fixed point.
    loop {
        let mut more = Vec::new();
        for c in &changes {
            if dropped.contains_key(&c.address) {
                continue;
            }
            if let Some((cause, _)) = c.depends_on.iter().find_map(|d| dropped.get(d)) {
                more.push((c.address.clone(), cause.clone()));
            }
        }
        if more.is_empty() {
            break;
        }
        for (address, cause) in more {
            dropped.insert(address, (cause, true));
        }
    }
    let unknowns = live
        .unreadable
        .iter()
        .map(|(scope, failure)| Unknown {
            scope: match scope {
                Scope::Project(project) => UnknownScope::Project {
                    project: project.clone(),
                },
                Scope::Cluster(cluster) => UnknownScope::Cluster {
                    cluster: cluster.clone(),
                },
            },
            code: match failure.kind {
                FailureKind::Unreachable => UnknownReason::Unreachable,
                FailureKind::Forbidden => UnknownReason::Forbidden,
                FailureKind::ServerError => UnknownReason::ServerError,
                FailureKind::Configuration => UnknownReason::Configuration,
                FailureKind::Other => UnknownReason::ReadFailed,
            },
            reason: failure.message.clone(),
            help: failure.help.clone(),
            held_back: changes
                .iter()
                .filter(|c| c.action != Action::NoOp)
                .filter(|c| {
                    dropped
                        .get(&c.address)
                        .is_some_and(|(cause, outside)| *outside && cause == scope)
                })
                .map(|c| c.address.clone())
                .collect(),
        })
        .collect();
    let changes = changes
        .into_iter()
        .filter(|c| !dropped.contains_key(&c.address))
        .collect();
    let warnings = warnings
        .into_iter()
        .filter(|w| w.address.as_ref().is_none_or(|a| !dropped.contains_key(a)))
        .collect();
    (changes, warnings, unknowns)
}

struct Planner<'a> {
    model: &'a Model,
    live: &'a LiveState,
    options: &'a PlanOptions,
    changes: Vec<ResourceChange>,
    /// The resources of `changes` that do something (what `planned` asks).
    actionable: std::collections::HashSet<Resource>,
    warnings: Vec<Warning>,
    problems: Vec<PlanProblem>,
    /// The declared accounts by email (the first declaration of each):
    /// asked for every mapping, so indexed once.
    declared_by_email: std::collections::HashMap<String, usize>,
}

fn reason(code: ReasonCode, message: impl Into<String>) -> Reason {
    Reason {
        code,
        message: message.into(),
    }
}

/// ` for `O`` in messages about a named owner's objects; nothing for the
/// unnamed owner (its messages read as they did before owners existed).
fn owner_suffix(owner: &Owner) -> String {
    match owner {
        Owner::Unnamed => String::new(),
        Owner::Named(_) => format!(" for {owner}"),
    }
}

/// Whether `member` holds `role` through an unconditional binding.
fn has_member(policy: Option<&IamPolicy>, role: &str, member: &str) -> bool {
    policy.is_some_and(|p| {
        p.bindings.iter().any(|b| {
            b.role == role && b.condition.is_none() && b.members.iter().any(|m| m == member)
        })
    })
}

/// Members of `role` in unconditional bindings.
fn unconditional_members<'p>(policy: &'p IamPolicy, role: &str) -> BTreeSet<&'p str> {
    policy
        .bindings
        .iter()
        .filter(|b| b.role == role && b.condition.is_none())
        .flat_map(|b| b.members.iter().map(String::as_str))
        .collect()
}

/// The attribute name of the GSA annotation.
fn annotation_key() -> super::AttributeName {
    super::desired::annotation_attr(GSA_ANNOTATION)
}

/// The attribute name of `wi`'s managed-by label.
fn label_key() -> super::AttributeName {
    super::desired::label_attr(MANAGED_BY_LABEL)
}

/// The attribute name of the owner label.
fn owner_label_key() -> super::AttributeName {
    super::desired::label_attr(OWNER_LABEL)
}

/// A spec file name as compared with a recorded file (a KSA's
/// `wi.dev/declared-in`, an account's file tag).
fn file_key(file: &str) -> &str {
    file.trim_start_matches("./")
}

/// Whether two spec paths name the same file as far as a path tells: equal,
/// or one ends with the other at a path boundary (`specs/a.yaml` and
/// `/ci/checkout/specs/a.yaml`, the same file checked out elsewhere).
fn same_file(a: &str, b: &str) -> bool {
    let (a, b) = (file_key(a), file_key(b));
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    long == short || (long.ends_with(short) && long[..long.len() - short.len()].ends_with('/'))
}

/// Sorts the planner's changes by [`Resource::sort_key`], stably, without
/// the key's copy of each address (a change's `address` is its resource's):
/// a fleet's plan has about 100,000 changes, their keys tens of megabytes.
fn sort_changes(changes: &mut [ResourceChange]) {
    let mut order: Vec<(super::Group, u8, usize)> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.resource.group(), c.resource.kind_rank(), i))
        .collect();
    order.sort_by(|a, b| {
        (&a.0, a.1, &changes[a.2].address).cmp(&(&b.0, b.1, &changes[b.2].address))
    });
    crate::permute::permute(changes, order.into_iter().map(|(_, _, i)| i).collect());
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
        owner: Owner::Unnamed,
        kube: KubeWrite::default(),
        not_managed: None,
    }
}

/// A declared resource already as declared. Equal sides share one
/// allocation: most of a fleet's plan is no-ops.
fn noop(resource: Resource, before: Attributes, after: Attributes, why: Reason) -> ResourceChange {
    let after = if after == before {
        before.clone()
    } else {
        after
    };
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

    /// The owner the change is made for.
    fn for_owner(mut self, owner: &Owner) -> Self {
        self.owner = owner.clone();
        self
    }
}

impl Planner<'_> {
    /// Records a change; its dependencies are kept sorted and unique.
    fn push(&mut self, mut change: ResourceChange) {
        change.depends_on.sort();
        change.depends_on.dedup();
        if change.action != Action::NoOp {
            self.actionable.insert(change.resource.clone());
        }
        self.changes.push(change);
    }

    fn problem(&mut self, address: String, message: String, help: Option<&str>) {
        self.problems.push(PlanProblem {
            address,
            message,
            help: help.map(str::to_string),
        });
    }

    /// The owners this run plans removals, releases and prunes for (the
    /// model's; a model that names none is the unnamed owner's).
    fn owners(&self) -> Vec<Owner> {
        if self.model.owners.is_empty() {
            vec![Owner::Unnamed]
        } else {
            self.model.owners.clone()
        }
    }

    /// Whether `owner` is one of this run's owners.
    fn loaded(&self, owner: &Owner) -> bool {
        if self.model.owners.is_empty() {
            owner.is_unnamed()
        } else {
            self.model.owners.contains(owner)
        }
    }

    /// The live account with this email, wherever it was read.
    fn live_account(&self, email: &str) -> Option<&crate::gcp::types::GoogleServiceAccount> {
        self.live
            .projects
            .values()
            .find_map(|p| p.service_accounts.get(email))
            .or_else(|| {
                self.live
                    .external_accounts
                    .get(email)
                    .and_then(|a| a.as_ref())
            })
    }

    /// The declared account with this email.
    fn declared_gsa(&self, email: &str) -> Option<&crate::spec::Gsa> {
        self.declared_by_email
            .get(email)
            .map(|&i| &self.model.service_accounts[i])
    }

    /// The owner a live account's marker records.
    fn marked_owner(&self, email: &str) -> Option<Owner> {
        self.live_account(email)
            .and_then(|sa| Owner::from_description(sa.description.as_deref()))
    }

    /// Whether a declared account is owned by another named owner (a
    /// collision: nothing is planned for it).
    fn account_collision(&self, gsa: &crate::spec::Gsa) -> Option<Owner> {
        self.marked_owner(&gsa.email())
            .filter(|m| m != &gsa.owner && !m.is_unnamed())
    }

    /// Who owns an account once this plan is applied: the declaring owner
    /// when it creates, already owns, adopts (`adopt: true`, an account
    /// nobody owns) or claims it (a named owner declaring an older `wi`'s
    /// account); otherwise whoever its marker names (`None`: nobody).
    fn account_owner(&self, email: &str) -> Option<Owner> {
        let marker = self.marked_owner(email);
        let Some(gsa) = self.declared_gsa(email) else {
            return marker;
        };
        let exists = self.live_account(email).is_some();
        match marker {
            Some(m) if m == gsa.owner => Some(m),
            Some(Owner::Unnamed) if !gsa.owner.is_unnamed() => Some(gsa.owner.clone()),
            Some(m) => Some(m),
            None if !exists || gsa.adopt => Some(gsa.owner.clone()),
            None => None,
        }
    }

    /// Whether this run manages the account's members and grants: its
    /// owner (after this plan) is one of this run's owners.
    fn manages_account(&self, email: &str) -> bool {
        self.account_owner(email).is_some_and(|o| self.loaded(&o))
    }

    /// The spec files of this run, as origins name them.
    fn run_files(&self) -> BTreeSet<String> {
        let m = self.model;
        m.clusters
            .iter()
            .map(|c| &c.origin)
            .chain(m.service_accounts.iter().map(|g| &g.origin))
            .chain(m.mappings.iter().map(|x| &x.origin))
            .chain(m.absent.iter().map(|a| &a.origin))
            .map(|o| o.file.clone())
            .collect()
    }

    /// Whether a recorded spec file is one of this run's.
    fn in_run(&self, file: &str) -> bool {
        self.run_files().iter().any(|f| same_file(f, file))
    }

    /// Whether a change that does something is planned for `resource`
    /// (a set lookup: the planner asks once per mapping).
    fn planned(&self, resource: &Resource) -> bool {
        self.actionable.contains(resource)
    }
}

#[cfg(test)]
mod file_tests {
    use super::same_file;

    #[test]
    fn a_file_checked_out_elsewhere_is_the_same_file() {
        assert!(same_file("specs/a.yaml", "./specs/a.yaml"));
        assert!(same_file("/ci/repo/specs/a.yaml", "specs/a.yaml"));
        assert!(same_file("/ci/repo/specs/a.yaml", "a.yaml"));
        assert!(!same_file("/ci/repo/xspecs/a.yaml", "specs/a.yaml"));
        assert!(!same_file("specs/b.yaml", "specs/a.yaml"));
    }
}

#[cfg(test)]
mod sort_tests {
    use super::{change, reason, sort_changes};
    use crate::ids::ClusterKey;
    use crate::plan::{Action, ReasonCode, Resource};

    #[test]
    fn changes_come_out_in_sort_key_order_equal_keys_in_push_order() {
        let cluster = |name: &str| ClusterKey {
            project: "p".into(),
            location: "l".into(),
            name: name.into(),
        };
        let mut changes = Vec::new();
        // A fixed shuffle of clusters, namespaces, KSAs and accounts, with
        // repeated resources (the planner's duplicates, deduplicated later).
        for i in [7usize, 3, 11, 0, 5, 3, 9, 1, 7, 2, 10, 4, 8, 6, 0] {
            let resource = match i % 4 {
                0 => Resource::ServiceAccount {
                    project: format!("p{}", i % 3),
                    account_id: format!("a{i}"),
                },
                1 => Resource::Cluster {
                    cluster: cluster(&format!("c{}", i % 2)),
                },
                2 => Resource::Namespace {
                    cluster: cluster("c0"),
                    name: format!("n{}", i % 3),
                },
                _ => Resource::KubernetesServiceAccount {
                    cluster: cluster("c1"),
                    namespace: "n".into(),
                    name: format!("k{i}"),
                },
            };
            let why = reason(ReasonCode::InSync, format!("pushed {}", changes.len()));
            changes.push(change(resource, Action::NoOp, None, None, why));
        }
        let mut expected = changes.clone();
        expected.sort_by_cached_key(|c| c.resource.sort_key());
        sort_changes(&mut changes);
        let messages = |v: &[crate::plan::ResourceChange]| {
            v.iter()
                .map(|c| c.reason.message.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(&changes), messages(&expected));
        assert_ne!(
            messages(&changes)[0],
            "pushed 0",
            "the input was not already sorted"
        );
    }
}
#[cfg(test)]
mod partial_tests {
    use super::tests::{converged_world, key, model, plan};
    use super::*;
    use crate::live::ReadFailure;

    fn failure() -> ReadFailure {
        ReadFailure {
            kind: FailureKind::Unreachable,
            message: "reading Kubernetes objects: refused".into(),
            help: "try again".into(),
        }
    }

    /// The model of `tests`, with a second cluster `beta` beside `alpha`.
    fn two_clusters() -> Model {
        let mut m = model();
        let mut beta = m.clusters[0].clone();
        beta.key = key("beta");
        m.clusters.push(beta);
        m
    }

    #[test]
    fn a_binding_whose_ksa_may_run_in_an_unknown_cluster_is_not_removed() {
        let mut m = two_clusters();
        m.mappings.clear();
        let mut live = converged_world();
        live.unreadable
            .insert(Scope::Cluster(key("beta")), failure());
        let p = plan(&m, &live, &PlanOptions::default());
        let binding = p
            .changes
            .iter()
            .find(|c| matches!(c.resource, Resource::ServiceAccountIamMember { .. }));
        assert!(binding.is_none(), "{:#?}", p.changes);
        assert_eq!(p.unknowns.len(), 1);
        assert_eq!(
            p.unknowns[0].scope,
            UnknownScope::Cluster {
                cluster: key("beta")
            }
        );
        assert_eq!(p.unknowns[0].code, UnknownReason::Unreachable);
        assert!(
            p.unknowns[0]
                .held_back
                .iter()
                .any(|a| a.starts_with("service_account_iam_member[")),
            "{:?}",
            p.unknowns[0].held_back
        );
        // With only the cluster that was read, the binding goes.
        let mut m = model();
        m.mappings.clear();
        let p = plan(&m, &converged_world(), &PlanOptions::default());
        assert!(p.changes.iter().any(|c| c.action == Action::Delete
            && matches!(c.resource, Resource::ServiceAccountIamMember { .. })));
    }

    #[test]
    fn an_excluded_unknown_is_not_an_unknown_of_the_plan() {
        let m = two_clusters();
        let mut live = converged_world();
        live.unreadable
            .insert(Scope::Cluster(key("beta")), failure());
        let options = PlanOptions {
            exclude: vec!["beta".into()],
            ..Default::default()
        };
        let p = plan(&m, &live, &options);
        assert!(p.unknowns.is_empty(), "{:?}", p.unknowns);
        let options = PlanOptions {
            target: vec!["alpha".into()],
            ..Default::default()
        };
        assert!(plan(&m, &live, &options).unknowns.is_empty());
        let options = PlanOptions {
            target: vec!["beta".into()],
            ..Default::default()
        };
        assert_eq!(plan(&m, &live, &options).unknowns.len(), 1);
    }

    #[test]
    fn nothing_is_planned_in_an_unknown_project_nor_what_waits_for_it() {
        let m = model();
        let mut live = converged_world();
        live.projects.clear();
        live.account_policies.clear();
        live.unreadable
            .insert(Scope::Project(super::tests::P.into()), failure());
        let p = plan(&m, &live, &PlanOptions::default());
        let actionable: Vec<&str> = p.actionable().map(|c| c.address.as_str()).collect();
        assert!(actionable.is_empty(), "{actionable:?}");
        assert_eq!(p.unknowns.len(), 1);
    }
}
#[cfg(test)]
mod owner_tests;
#[cfg(test)]
mod tests;
