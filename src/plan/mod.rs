//! The plan: a pure function of the validated model and the observed live
//! state. A plan is data — addresses, actions, attribute-level before/after,
//! reasons, dependencies and the fingerprints of the live objects it was
//! computed from — so it can be rendered (`render`), saved, checked for
//! staleness and executed (`apply`) by others.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::live::Fingerprint;
use crate::spec::ClusterKey;

mod codes;
mod compute;
mod desired;
mod error;
pub mod file;
pub use codes::{ReasonCode, UnknownCode, WarningCode};
pub use compute::{PlanOptions, compute};
pub(crate) use desired::ClusterCreateValues;
pub use error::{PlanError, PlanProblem};

/// Version of the saved / JSON plan format. Minor bumps are additive.
pub const FORMAT_VERSION: &str = "1.0";

/// What happens to one resource. A closed set, as in Terraform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Delete,
}

impl Action {
    /// Terraform's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
        }
    }
}

/// The thing a change is about, with everything `apply` needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    /// A Google API enabled in a project (`iamcredentials.googleapis.com`).
    ProjectService { project: String, service: String },
    /// A GKE cluster (its workload pool). Never deleted by `wi`.
    Cluster { cluster: ClusterKey },
    /// A node pool (its workload metadata mode). Never deleted by `wi`.
    NodePool { cluster: ClusterKey, pool: String },
    /// A Google service account.
    ServiceAccount { project: String, account_id: String },
    /// One member of one role on a service account's IAM policy.
    ServiceAccountIamMember {
        project: String,
        email: String,
        role: String,
        member: String,
    },
    /// One member of one role on a project's IAM policy.
    ProjectIamMember {
        project: String,
        role: String,
        member: String,
    },
    /// A Kubernetes namespace.
    Namespace { cluster: ClusterKey, name: String },
    /// A Kubernetes service account (its `iam.gke.io/gcp-service-account` annotation).
    KubernetesServiceAccount {
        cluster: ClusterKey,
        namespace: String,
        name: String,
    },
}

impl Resource {
    /// Stable, sortable address, e.g. `google_service_account["p/app"]`.
    pub fn address(&self) -> String {
        match self {
            Resource::ProjectService { project, service } => {
                format!("project_service[\"{project}/{service}\"]")
            }
            Resource::Cluster { cluster } => format!("cluster[\"{cluster}\"]"),
            Resource::NodePool { cluster, pool } => format!("node_pool[\"{cluster}/{pool}\"]"),
            Resource::ServiceAccount {
                project,
                account_id,
            } => format!("google_service_account[\"{project}/{account_id}\"]"),
            Resource::ServiceAccountIamMember {
                email,
                role,
                member,
                ..
            } => format!("service_account_iam_member[\"{email}/{role}/{member}\"]"),
            Resource::ProjectIamMember {
                project,
                role,
                member,
            } => format!("project_iam_member[\"{project}/{role}/{member}\"]"),
            Resource::Namespace { cluster, name } => {
                format!("kubernetes_namespace[\"{cluster}/{name}\"]")
            }
            Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            } => format!("kubernetes_service_account[\"{cluster}/{namespace}/{name}\"]"),
        }
    }

    /// The rendering group: project first, then cluster, then namespace.
    pub fn group(&self) -> Group {
        match self {
            Resource::ProjectService { project, .. }
            | Resource::ServiceAccount { project, .. }
            | Resource::ServiceAccountIamMember { project, .. }
            | Resource::ProjectIamMember { project, .. } => Group::Project {
                project: project.clone(),
            },
            Resource::Cluster { cluster } | Resource::NodePool { cluster, .. } => Group::Cluster {
                cluster: cluster.clone(),
            },
            Resource::Namespace { cluster, name } => Group::Namespace {
                cluster: cluster.clone(),
                namespace: name.clone(),
            },
            Resource::KubernetesServiceAccount {
                cluster, namespace, ..
            } => Group::Namespace {
                cluster: cluster.clone(),
                namespace: namespace.clone(),
            },
        }
    }

    /// The resource type as it appears in addresses and rendered blocks
    /// (`google_service_account`, `service_account_iam_member`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Resource::ProjectService { .. } => "project_service",
            Resource::Cluster { .. } => "cluster",
            Resource::NodePool { .. } => "node_pool",
            Resource::ServiceAccount { .. } => "google_service_account",
            Resource::ServiceAccountIamMember { .. } => "service_account_iam_member",
            Resource::ProjectIamMember { .. } => "project_iam_member",
            Resource::Namespace { .. } => "kubernetes_namespace",
            Resource::KubernetesServiceAccount { .. } => "kubernetes_service_account",
        }
    }

    /// Short labels naming the resource inside its group, shown in a rendered
    /// block header (`+ node_pool "c1" "default-pool" {`). The group heading
    /// and the address carry the rest of the identity.
    pub fn labels(&self) -> Vec<&str> {
        match self {
            Resource::ProjectService { service, .. } => vec![service],
            Resource::Cluster { cluster } => vec![&cluster.name],
            Resource::NodePool { cluster, pool } => vec![&cluster.name, pool],
            Resource::ServiceAccount { account_id, .. } => vec![account_id],
            Resource::ServiceAccountIamMember { role, .. } => vec![role],
            Resource::ProjectIamMember { role, .. } => vec![role],
            Resource::Namespace { name, .. } => vec![name],
            Resource::KubernetesServiceAccount { name, .. } => vec![name],
        }
    }

    /// Order of kinds inside a group (dependencies first).
    fn kind_rank(&self) -> u8 {
        match self {
            Resource::ProjectService { .. } => 0,
            Resource::ServiceAccount { .. } => 1,
            Resource::ServiceAccountIamMember { .. } => 2,
            Resource::ProjectIamMember { .. } => 3,
            Resource::Cluster { .. } => 4,
            Resource::NodePool { .. } => 5,
            Resource::Namespace { .. } => 6,
            Resource::KubernetesServiceAccount { .. } => 7,
        }
    }

    /// The deterministic sort key of a change.
    pub fn sort_key(&self) -> (Group, u8, String) {
        (self.group(), self.kind_rank(), self.address())
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// Where a change is shown: grouped by project, cluster, namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Group {
    Project {
        project: String,
    },
    Cluster {
        cluster: ClusterKey,
    },
    Namespace {
        cluster: ClusterKey,
        namespace: String,
    },
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Project { project } => write!(f, "project {project}"),
            Group::Cluster { cluster } => write!(f, "cluster {cluster}"),
            Group::Namespace { cluster, namespace } => {
                write!(f, "namespace {namespace} in cluster {cluster}")
            }
        }
    }
}

/// Attribute values, before or after. Keys are stable attribute names
/// (`workload_pool`, `display_name`, `annotations["iam.gke.io/gcp-service-account"]`).
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// Why a change is needed: a stable code plus a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// `missing`, `drift`, `not_in_spec`, `declared_absent`, `orphan_pruned`, `in_sync`, ...
    pub code: ReasonCode,
    pub message: String,
}

/// A warning attached to a change or the whole plan (disruption, delays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// `rolls_nodes`, `revocation_delay`, `identity_sameness`, `orphan`, `host_network`, ...
    pub code: WarningCode,
    pub message: String,
    /// The address it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: String,
    pub resource: Resource,
    pub action: Action,
    /// Attributes as they are (`None` when the resource does not exist).
    pub before: Option<Attributes>,
    /// Attributes as they will be (`None` when the resource goes away).
    pub after: Option<Attributes>,
    pub reason: Reason,
    /// Addresses this change must wait for during apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// The whole plan. `changes` is sorted by [`Resource::sort_key`] and includes
/// no-op entries for declared resources already in sync (the human renderer
/// hides them; JSON keeps them, as Terraform does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// sha256 of the spec file the plan was made from.
    pub spec_digest: String,
    pub changes: Vec<ResourceChange>,
    /// Plan-level warnings (orphans not pruned, identity sameness, ...).
    pub warnings: Vec<Warning>,
    /// Live inputs, sorted by source.
    pub fingerprints: Vec<Fingerprint>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    /// Counts of create, update and delete changes (no-ops are not counted).
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    /// True when applying would change something.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// The changes that do something, in order.
    pub fn actionable(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }
}
