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

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    Action, Attributes, FORMAT_VERSION, KubeWrite, Owner, Plan, PlanError, PlanProblem, Reason,
    ReasonCode, Resource, ResourceChange, Warning,
};
use crate::gcp::types::IamPolicy;
use crate::live::LiveState;
use crate::ownership::{GSA_ANNOTATION, MANAGED_BY_LABEL, OWNER_LABEL};
use crate::spec::Model;

mod accounts;
mod clusters;
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
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    planner.services();
    planner.clusters();
    planner.accounts();
    planner.account_members();
    planner.project_roles();
    planner.kubernetes();
    planner.access_order();
    planner.identity_sameness();
    if !planner.problems.is_empty() {
        return Err(PlanError {
            problems: planner.problems,
        });
    }
    let mut changes = planner.changes;
    changes.sort_by_cached_key(|c| c.resource.sort_key());
    changes.dedup_by(|a, b| a.address == b.address);
    let selection = targeting::select(
        changes,
        planner.warnings,
        &options.target,
        &options.exclude,
        &targeting::Groups::of(&model.clusters),
    );
    if !selection.problems.is_empty() {
        return Err(PlanError {
            problems: selection.problems,
        });
    }
    let changes = selection.changes;
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
    })
}

struct Planner<'a> {
    model: &'a Model,
    live: &'a LiveState,
    options: &'a PlanOptions,
    changes: Vec<ResourceChange>,
    warnings: Vec<Warning>,
    problems: Vec<PlanProblem>,
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
fn annotation_key() -> String {
    super::desired::annotation_attr(GSA_ANNOTATION)
}

/// The attribute name of `wi`'s managed-by label.
fn label_key() -> String {
    super::desired::label_attr(MANAGED_BY_LABEL)
}

/// The attribute name of the owner label.
fn owner_label_key() -> String {
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
        self.model
            .service_accounts
            .iter()
            .find(|g| g.email() == email)
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

    fn planned(&self, resource: &Resource) -> bool {
        self.changes
            .iter()
            .any(|c| &c.resource == resource && c.action != Action::NoOp)
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
mod owner_tests;
#[cfg(test)]
mod tests;
