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

use k8s_openapi::api::core::v1::ServiceAccount as K8sServiceAccount;

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
}
