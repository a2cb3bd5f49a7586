//! What `wi` keeps of a live namespace or KSA: the few fields the planner,
//! ownership, verify and drift read, instead of the whole Kubernetes object
//! (a fleet has tens of thousands of KSAs; each object with its metadata,
//! maps and `managedFields` costs kilobytes, this a few hundred bytes).
//!
//! Kept: the resource version (the plan's fingerprint), the annotations
//! and labels `wi` reads ([`KEPT_ANNOTATIONS`], [`KEPT_LABELS`]), and of
//! each `managedFields` entry its manager, whether it is an apply, and
//! which of those annotations and labels it owns.

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};

use crate::ownership::{
    DECLARED_IN_ANNOTATION, FIELD_MANAGER, GSA_ANNOTATION, KsaFields, MANAGED_BY_LABEL,
    OWNER_LABEL, Owner, WiFields,
};
use crate::spec::DIRECT_ROLES_ANNOTATION;

/// The annotations `wi` reads of a live object.
pub const KEPT_ANNOTATIONS: [&str; 3] = [
    GSA_ANNOTATION,
    DECLARED_IN_ANNOTATION,
    DIRECT_ROLES_ANNOTATION,
];
/// The labels `wi` reads of a live object.
pub const KEPT_LABELS: [&str; 2] = [MANAGED_BY_LABEL, OWNER_LABEL];

/// A live namespace or KSA, as far as `wi` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeObject {
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
    /// The values of [`KEPT_ANNOTATIONS`], in that order.
    annotations: [Option<String>; 3],
    /// The values of [`KEPT_LABELS`], in that order.
    labels: [Option<String>; 2],
    /// Its `managedFields` entries, in order.
    pub field_managers: Vec<FieldManager>,
}

/// One `managedFields` entry, as far as ownership reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldManager {
    /// The manager (`wi`, `wi/O`, `helm`, ...; empty when unnamed).
    pub manager: String,
    /// Whether the entry is a server-side apply (`operation: Apply`).
    pub applied: bool,
    /// Whether the entry has a field set at all (`fieldsV1`).
    pub has_fields: bool,
    /// Whether that field set owns any field.
    pub owns_any: bool,
    /// Which of [`KEPT_ANNOTATIONS`] it owns, in that order.
    pub owns_annotations: [bool; 3],
    /// Which of [`KEPT_LABELS`] it owns, in that order.
    pub owns_labels: [bool; 2],
}

impl KubeObject {
    /// Keeps of `meta` what `wi` reads.
    pub fn of_meta(meta: ObjectMeta) -> Self {
        let mut annotations = meta.annotations.unwrap_or_default();
        let mut labels = meta.labels.unwrap_or_default();
        KubeObject {
            resource_version: meta.resource_version,
            annotations: KEPT_ANNOTATIONS.map(|k| annotations.remove(k)),
            labels: KEPT_LABELS.map(|k| labels.remove(k)),
            field_managers: meta
                .managed_fields
                .unwrap_or_default()
                .iter()
                .map(FieldManager::of_entry)
                .collect(),
        }
    }

    /// The value of a kept annotation (`None` for any other key).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        let i = KEPT_ANNOTATIONS.iter().position(|k| *k == key)?;
        self.annotations[i].as_deref()
    }

    /// The value of a kept label (`None` for any other key).
    pub fn label(&self, key: &str) -> Option<&str> {
        let i = KEPT_LABELS.iter().position(|k| *k == key)?;
        self.labels[i].as_deref()
    }
}

/// What `wi` reads of a live object's ownership.
impl KubeObject {
    /// Who owns a KSA's GSA annotation and `wi`'s labels, from its
    /// `managedFields`: what each `wi` owner's server-side applies own, and the
    /// other managers.
    pub(crate) fn ksa_fields(&self) -> KsaFields {
        let mut out = KsaFields::default();
        for entry in self.field_managers.iter().filter(|e| e.has_fields) {
            let owns = WiFields {
                annotation: entry.owns_annotation(GSA_ANNOTATION),
                managed_by_label: entry.owns_label(MANAGED_BY_LABEL),
                owner_label: entry.owns_label(OWNER_LABEL),
                declared_in: entry.owns_annotation(DECLARED_IN_ANNOTATION),
            };
            let manager = &entry.manager;
            let wi_owner = Owner::from_field_manager(manager).filter(|_| entry.applied);
            match wi_owner {
                Some(owner) => {
                    let f = out.wi.entry(owner).or_default();
                    f.annotation |= owns.annotation;
                    f.managed_by_label |= owns.managed_by_label;
                    f.owner_label |= owns.owner_label;
                    f.declared_in |= owns.declared_in;
                }
                None => {
                    if owns.annotation {
                        out.annotation_others.push(manager.clone());
                    }
                    if entry.owns_any {
                        out.co_managers.push(manager.clone());
                    }
                }
            }
        }
        out.annotation_others.sort();
        out.annotation_others.dedup();
        out.co_managers.sort();
        out.co_managers.dedup();
        out
    }

    /// The owner that created this Kubernetes object, from its labels
    /// (`app.kubernetes.io/managed-by: wi`, plus `wi.dev/owner: O` for a named
    /// owner); `None` when `wi` did not create it.
    pub(crate) fn created_by(&self) -> Option<Owner> {
        if self.label(MANAGED_BY_LABEL) != Some(FIELD_MANAGER) {
            return None;
        }
        Some(match self.label(OWNER_LABEL) {
            Some(n) if !n.is_empty() => Owner::Named(n.to_string()),
            _ => Owner::Unnamed,
        })
    }

    /// The spec file a KSA's mapping was declared in, from [`DECLARED_IN_ANNOTATION`].
    pub(crate) fn declared_in(&self) -> Option<&str> {
        self.annotation(DECLARED_IN_ANNOTATION)
            .filter(|f| !f.is_empty())
    }
}

impl FieldManager {
    fn of_entry(entry: &ManagedFieldsEntry) -> Self {
        let fields = entry.fields_v1.as_ref().map(|f| &f.0);
        let meta = fields.and_then(|f| f.get("f:metadata"));
        let owns = |map: &str, key: &str| {
            meta.and_then(|m| m.get(map))
                .and_then(|m| m.get(format!("f:{key}")))
                .is_some()
        };
        FieldManager {
            manager: entry.manager.clone().unwrap_or_default(),
            applied: entry.operation.as_deref() == Some("Apply"),
            has_fields: fields.is_some(),
            owns_any: fields
                .and_then(|f| f.as_object())
                .is_some_and(|o| !o.is_empty()),
            owns_annotations: KEPT_ANNOTATIONS.map(|k| owns("f:annotations", k)),
            owns_labels: KEPT_LABELS.map(|k| owns("f:labels", k)),
        }
    }

    /// Whether it owns a kept annotation.
    pub fn owns_annotation(&self, key: &str) -> bool {
        KEPT_ANNOTATIONS
            .iter()
            .position(|k| *k == key)
            .is_some_and(|i| self.owns_annotations[i])
    }

    /// Whether it owns a kept label.
    pub fn owns_label(&self, key: &str) -> bool {
        KEPT_LABELS
            .iter()
            .position(|k| *k == key)
            .is_some_and(|i| self.owns_labels[i])
    }
}

impl From<ServiceAccount> for KubeObject {
    fn from(sa: ServiceAccount) -> Self {
        KubeObject::of_meta(sa.metadata)
    }
}

impl From<Namespace> for KubeObject {
    fn from(ns: Namespace) -> Self {
        KubeObject::of_meta(ns.metadata)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;

    use super::*;

    #[test]
    fn it_keeps_what_wi_reads_and_nothing_else() {
        let entry =
            |manager: &str, operation: &str, fields: serde_json::Value| ManagedFieldsEntry {
                manager: Some(manager.into()),
                operation: Some(operation.into()),
                fields_v1: Some(FieldsV1(fields)),
                ..Default::default()
            };
        let meta = ObjectMeta {
            name: Some("api".into()),
            resource_version: Some("7".into()),
            annotations: Some(
                [
                    (
                        GSA_ANNOTATION.to_string(),
                        "a@p.iam.gserviceaccount.com".into(),
                    ),
                    ("other".to_string(), "x".into()),
                ]
                .into(),
            ),
            labels: Some([(MANAGED_BY_LABEL.to_string(), "wi".to_string())].into()),
            managed_fields: Some(vec![
                entry(
                    "wi/team-a",
                    "Apply",
                    serde_json::json!({"f:metadata": {
                        "f:annotations": {format!("f:{GSA_ANNOTATION}"): {}},
                        "f:labels": {format!("f:{OWNER_LABEL}"): {}},
                    }}),
                ),
                entry("helm", "Update", serde_json::json!({"f:secrets": {}})),
                entry("kubectl", "Update", serde_json::json!({})),
                ManagedFieldsEntry::default(),
            ]),
            ..Default::default()
        };
        let o = KubeObject::of_meta(meta);
        assert_eq!(o.resource_version.as_deref(), Some("7"));
        assert_eq!(
            o.annotation(GSA_ANNOTATION),
            Some("a@p.iam.gserviceaccount.com")
        );
        assert_eq!(o.annotation("other"), None);
        assert_eq!(o.label(MANAGED_BY_LABEL), Some("wi"));
        assert_eq!(o.label(OWNER_LABEL), None);
        let m = &o.field_managers;
        assert_eq!(m.len(), 4);
        assert!(m[0].applied && m[0].owns_any && m[0].owns_annotation(GSA_ANNOTATION));
        assert!(m[0].owns_label(OWNER_LABEL) && !m[0].owns_label(MANAGED_BY_LABEL));
        assert!(!m[1].applied && m[1].owns_any && !m[1].owns_annotation(GSA_ANNOTATION));
        assert!(m[2].has_fields && !m[2].owns_any);
        assert!(!m[3].has_fields && m[3].manager.is_empty());
    }
}
