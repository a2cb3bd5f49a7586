//! The values `apply` writes, typed. The planner records them in a change's
//! `after` attributes (that is also what people and `wi plan --json` read);
//! this module is the one place that reads them back, next to the attribute
//! names it shares with the planner, so `apply` works with typed values and
//! never parses display keys such as `labels["k"]`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use super::{AttributeName, ResourceChange};
use crate::ownership::{DECLARED_IN_ANNOTATION, GSA_ANNOTATION, MANAGED_BY_LABEL, OWNER_LABEL};

// The attribute names the planner writes and apply's values are read from.
/// A cluster's workload pool (`null`: Workload Identity off).
pub(crate) const WORKLOAD_POOL: &str = "workload_pool";
/// A node pool's workload metadata mode.
pub(crate) const METADATA_MODE: &str = "workload_metadata_mode";
/// Node count of a cluster `wi` creates.
pub(crate) const INITIAL_NODE_COUNT: &str = "initial_node_count";
/// Machine type of a cluster `wi` creates.
pub(crate) const MACHINE_TYPE: &str = "machine_type";
/// Release channel of a cluster `wi` creates.
pub(crate) const RELEASE_CHANNEL: &str = "release_channel";
/// Whether a cluster `wi` creates is an Autopilot cluster.
pub(crate) const AUTOPILOT: &str = "autopilot";
/// A service account's display name.
pub(crate) const DISPLAY_NAME: &str = "display_name";
/// A service account's description.
pub(crate) const DESCRIPTION: &str = "description";

// The names of the labels and annotations `wi` writes, spelled out once so
// that the tens of thousands of KSA changes of a fleet's plan share them.
const MANAGED_BY_LABEL_ATTR: &str = "labels[\"app.kubernetes.io/managed-by\"]";
const OWNER_LABEL_ATTR: &str = "labels[\"wi.dev/owner\"]";
const GSA_ANNOTATION_ATTR: &str = "annotations[\"iam.gke.io/gcp-service-account\"]";
const DECLARED_IN_ANNOTATION_ATTR: &str = "annotations[\"wi.dev/declared-in\"]";
const DIRECT_ROLES_ANNOTATION_ATTR: &str = "annotations[\"wi.dev/direct-roles\"]";

/// The attribute name of a label: `labels["KEY"]`.
pub(crate) fn label_attr(key: &str) -> AttributeName {
    match key {
        MANAGED_BY_LABEL => Cow::Borrowed(MANAGED_BY_LABEL_ATTR),
        OWNER_LABEL => Cow::Borrowed(OWNER_LABEL_ATTR),
        _ => Cow::Owned(format!("labels[\"{key}\"]")),
    }
}

/// The attribute name of an annotation: `annotations["KEY"]`.
pub(crate) fn annotation_attr(key: &str) -> AttributeName {
    match key {
        GSA_ANNOTATION => Cow::Borrowed(GSA_ANNOTATION_ATTR),
        DECLARED_IN_ANNOTATION => Cow::Borrowed(DECLARED_IN_ANNOTATION_ATTR),
        crate::spec::DIRECT_ROLES_ANNOTATION => Cow::Borrowed(DIRECT_ROLES_ANNOTATION_ATTR),
        _ => Cow::Owned(format!("annotations[\"{key}\"]")),
    }
}

/// What a cluster `wi` creates looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterCreateValues {
    pub(crate) workload_pool: Option<String>,
    pub(crate) initial_node_count: u64,
    pub(crate) machine_type: Option<String>,
    pub(crate) release_channel: Option<String>,
    pub(crate) autopilot: bool,
}

/// The fields `wi` sets on a Google service account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct AccountValues {
    pub(crate) display_name: Option<String>,
    pub(crate) description: Option<String>,
}

/// The labels and annotations `wi` server-side applies on a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KubeMetadata {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

impl ResourceChange {
    fn after_str(&self, key: &str) -> Option<&str> {
        self.after.as_ref()?.get(key)?.as_str()
    }

    /// The workload pool a cluster change leaves (`None`: Workload Identity off).
    pub fn workload_pool(&self) -> Option<&str> {
        self.after_str(WORKLOAD_POOL)
    }

    /// The workload metadata mode a node-pool change sets.
    pub fn metadata_mode(&self) -> Option<&str> {
        self.after_str(METADATA_MODE)
    }

    /// The cluster a cluster creation asks GKE for.
    pub(crate) fn cluster_create(&self) -> ClusterCreateValues {
        ClusterCreateValues {
            workload_pool: self.workload_pool().map(str::to_string),
            initial_node_count: self
                .after
                .as_ref()
                .and_then(|a| a.get(INITIAL_NODE_COUNT))
                .and_then(Value::as_u64)
                .unwrap_or(1),
            machine_type: self.after_str(MACHINE_TYPE).map(str::to_string),
            release_channel: self.after_str(RELEASE_CHANNEL).map(str::to_string),
            autopilot: self
                .after
                .as_ref()
                .and_then(|a| a.get(AUTOPILOT))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The display name and description an account change sets.
    pub(crate) fn account_values(&self) -> AccountValues {
        AccountValues {
            display_name: self.after_str(DISPLAY_NAME).map(str::to_string),
            description: self.after_str(DESCRIPTION).map(str::to_string),
        }
    }

    /// The labels and annotations a Kubernetes change applies: the GSA
    /// annotation, `wi`'s managed-by and owner labels, where the plan sets
    /// them, and the informational declared-in annotation beside the GSA
    /// annotation.
    pub(crate) fn kube_metadata(&self) -> KubeMetadata {
        let mut out = KubeMetadata::default();
        for key in [MANAGED_BY_LABEL, OWNER_LABEL] {
            if let Some(v) = self.after_str(&label_attr(key)) {
                out.labels.insert(key.to_string(), v.to_string());
            }
        }
        let record = crate::spec::DIRECT_ROLES_ANNOTATION;
        if let Some(v) = self.after_str(&annotation_attr(record)) {
            out.annotations.insert(record.to_string(), v.to_string());
        }
        if let Some(v) = self.after_str(&annotation_attr(GSA_ANNOTATION)) {
            out.annotations
                .insert(GSA_ANNOTATION.to_string(), v.to_string());
            if let Some(file) = &self.kube.declared_in {
                out.annotations
                    .insert(DECLARED_IN_ANNOTATION.to_string(), file.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::ClusterKey;
    use crate::plan::{Action, Reason, ReasonCode, Resource};

    #[test]
    fn the_fixed_attribute_names_are_the_formatted_ones() {
        for key in [MANAGED_BY_LABEL, OWNER_LABEL] {
            assert_eq!(label_attr(key), format!("labels[\"{key}\"]"));
            assert!(matches!(label_attr(key), Cow::Borrowed(_)));
        }
        for key in [
            GSA_ANNOTATION,
            DECLARED_IN_ANNOTATION,
            crate::spec::DIRECT_ROLES_ANNOTATION,
        ] {
            assert_eq!(annotation_attr(key), format!("annotations[\"{key}\"]"));
            assert!(matches!(annotation_attr(key), Cow::Borrowed(_)));
        }
        assert_eq!(label_attr("team"), "labels[\"team\"]");
    }

    fn ksa_change(after: serde_json::Value) -> ResourceChange {
        let resource = Resource::KubernetesServiceAccount {
            cluster: ClusterKey {
                project: "p".into(),
                location: "l".into(),
                name: "c".into(),
            },
            namespace: "ns".into(),
            name: "app".into(),
        };
        ResourceChange {
            address: resource.address(),
            resource,
            action: Action::Update,
            before: None,
            after: serde_json::from_value(after).ok(),
            reason: Reason {
                code: ReasonCode::Drift,
                message: String::new(),
            },
            depends_on: vec![],
            warnings: vec![],
            owner: Default::default(),
            kube: Default::default(),
            not_managed: None,
        }
    }

    #[test]
    fn kube_metadata_reads_what_the_planner_writes() {
        let c = ksa_change(json!({
            annotation_attr(GSA_ANNOTATION): "a@p.iam.gserviceaccount.com",
            label_attr(MANAGED_BY_LABEL): "wi",
        }));
        let m = c.kube_metadata();
        assert_eq!(m.annotations[GSA_ANNOTATION], "a@p.iam.gserviceaccount.com");
        assert_eq!(m.labels[MANAGED_BY_LABEL], "wi");
        // Releasing the annotation: only the label stays.
        let released = ksa_change(json!({label_attr(MANAGED_BY_LABEL): "wi"})).kube_metadata();
        assert!(released.annotations.is_empty());
        assert_eq!(released.labels.len(), 1);
    }
}
