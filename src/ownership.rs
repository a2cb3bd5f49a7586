//! Stateless ownership: how `wi` knows, without a state file, what is its own.
//!
//! - A Google service account is `wi`'s when its description carries
//!   [`OWNERSHIP_MARKER`]; so are its [`WORKLOAD_IDENTITY_USER`] members and
//!   its own project-role grants (undeclared ones are drift). On accounts `wi`
//!   does not own it only adds, and removes a member only when the spec lists
//!   it under `absent`.
//! - A Kubernetes field is `wi`'s when its field manager [`FIELD_MANAGER`]
//!   owns it through server-side apply (`managedFields`, read by
//!   [`ksa_field_owners`]); a namespace or KSA `wi` created carries
//!   [`MANAGED_BY_LABEL`]` = wi`.
//!
//! Every layer that asks "is this mine?" (live reads, the planner, apply's
//! re-checks, the Kubernetes writes) asks it here, so the rule is changed in
//! one file.

use std::fmt;

use k8s_openapi::api::core::v1::ServiceAccount as K8sServiceAccount;
use serde::{Deserialize, Serialize};

/// The role that lets a KSA act as a GSA.
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// Marks, in a service account's description, an account `wi` owns.
pub const OWNERSHIP_MARKER: &str = "[managed-by: wi]";
/// The field manager of every server-side apply `wi` sends.
pub const FIELD_MANAGER: &str = "wi";
/// The annotation that maps a KSA to its GSA.
pub const GSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// The label on Kubernetes objects `wi` created (its value is [`FIELD_MANAGER`]).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The label naming the owner on Kubernetes objects a named owner created or manages.
pub const OWNER_LABEL: &str = "wi.dev/owner";
/// The annotation naming the spec file that declares a KSA's mapping
/// (informational: named in collision diagnostics, never diffed).
pub const DECLARED_IN_ANNOTATION: &str = "wi.dev/declared-in";

/// Who a spec's objects belong to. Every file of a spec set names its owner
/// with a top-level `owner:`; a file without one is [`Owner::Unnamed`], the
/// owner older `wi` versions wrote (`[managed-by: wi]`, field manager `wi`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// No `owner:` in the spec, or an object marked by an older `wi`.
    #[default]
    Unnamed,
    /// `owner: NAME`.
    Named(String),
}

impl Owner {
    /// The marker written into a service account's description.
    pub fn marker(&self) -> String {
        match self {
            Owner::Unnamed => OWNERSHIP_MARKER.to_string(),
            Owner::Named(n) => format!("[managed-by: wi owner={n}]"),
        }
    }

    /// The server-side-apply field manager of this owner's writes.
    pub fn field_manager(&self) -> String {
        match self {
            Owner::Unnamed => FIELD_MANAGER.to_string(),
            Owner::Named(n) => format!("{FIELD_MANAGER}/{n}"),
        }
    }

    /// The owner named by a field manager, when it is one of `wi`'s.
    pub fn from_field_manager(manager: &str) -> Option<Owner> {
        if manager == FIELD_MANAGER {
            return Some(Owner::Unnamed);
        }
        manager
            .strip_prefix(FIELD_MANAGER)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|n| !n.is_empty())
            .map(|n| Owner::Named(n.to_string()))
    }

    /// The owner a service account's description records, if any.
    pub fn from_description(description: Option<&str>) -> Option<Owner> {
        let d = description?;
        let start = d.find("[managed-by: wi")?;
        let rest = &d[start + "[managed-by: wi".len()..];
        let end = rest.find(']')?;
        let inner = rest[..end].trim();
        if inner.is_empty() {
            return Some(Owner::Unnamed);
        }
        inner
            .strip_prefix("owner=")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| Owner::Named(n.to_string()))
    }

    /// The owner's name as users read it.
    pub fn name(&self) -> &str {
        match self {
            Owner::Unnamed => "(unnamed)",
            Owner::Named(n) => n,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Unnamed => f.write_str("an unnamed owner (no `owner:`)"),
            Owner::Named(n) => write!(f, "`{n}`"),
        }
    }
}

/// Whether a description carries `wi`'s ownership marker.
pub fn is_owned(description: Option<&str>) -> bool {
    description.is_some_and(|d| d.contains(OWNERSHIP_MARKER))
}

/// The description `wi` writes: the user's text followed by the marker.
pub fn owned_description(user: Option<&str>) -> String {
    match user.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => format!("{d} {OWNERSHIP_MARKER}"),
        None => OWNERSHIP_MARKER.to_string(),
    }
}

/// Which metadata fields of a Kubernetes object the `wi` field manager owns.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WiFields {
    pub(crate) annotation: bool,
    pub(crate) managed_by_label: bool,
}

/// Who owns a KSA's GSA annotation and managed-by label, from its
/// `managedFields`: what `wi`'s own server-side applies own, and the other
/// managers (sorted, deduplicated) that own the annotation.
pub(crate) fn ksa_field_owners(sa: &K8sServiceAccount) -> (WiFields, Vec<String>) {
    let mut mine = WiFields::default();
    let mut others = Vec::new();
    for entry in sa.metadata.managed_fields.iter().flatten() {
        let Some(fields) = entry.fields_v1.as_ref() else {
            continue;
        };
        let meta = fields.0.get("f:metadata");
        let owns_annotation = meta
            .and_then(|m| m.get("f:annotations"))
            .and_then(|a| a.get(format!("f:{GSA_ANNOTATION}")))
            .is_some();
        let owns_label = meta
            .and_then(|m| m.get("f:labels"))
            .and_then(|l| l.get(format!("f:{MANAGED_BY_LABEL}")))
            .is_some();
        let manager = entry.manager.clone().unwrap_or_default();
        if manager == FIELD_MANAGER && entry.operation.as_deref() == Some("Apply") {
            mine.annotation |= owns_annotation;
            mine.managed_by_label |= owns_label;
        } else if owns_annotation {
            others.push(manager);
        }
    }
    others.sort();
    others.dedup();
    (mine, others)
}

/// Whether `wi` created this KSA (it carries `MANAGED_BY_LABEL = wi`).
pub(crate) fn created_by_wi(sa: &K8sServiceAccount) -> bool {
    sa.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == FIELD_MANAGER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_decides_ownership() {
        assert_eq!(owned_description(None), OWNERSHIP_MARKER);
        assert_eq!(owned_description(Some("  ")), OWNERSHIP_MARKER);
        assert_eq!(owned_description(Some("app")), "app [managed-by: wi]");
        assert!(is_owned(Some(&owned_description(Some("app")))));
        assert!(!is_owned(Some("app")));
        assert!(!is_owned(None));
    }

    #[test]
    fn owners_round_trip_through_markers_and_managers() {
        let named = Owner::Named("payments".into());
        for owner in [Owner::Unnamed, named.clone()] {
            let description = format!("app {}", owner.marker());
            assert_eq!(
                Owner::from_description(Some(&description)),
                Some(owner.clone())
            );
            assert_eq!(
                Owner::from_field_manager(&owner.field_manager()),
                Some(owner)
            );
        }
        assert_eq!(named.marker(), "[managed-by: wi owner=payments]");
        assert_eq!(named.field_manager(), "wi/payments");
        assert_eq!(Owner::from_description(Some("plain")), None);
        assert_eq!(Owner::from_field_manager("helm"), None);
        assert_eq!(Owner::from_field_manager("wizard"), None);
    }
}
