//! What a plan is about: the resources `wi` manages, their stable sortable
//! addresses (`google_service_account["p/app"]`) and the groups a rendered
//! plan shows them in (project, then cluster, then namespace).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ClusterKey;

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
    pub(crate) fn kind_rank(&self) -> u8 {
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
