//! `wi verify --pod`: which Google identity one pod gets, and why, read from
//! live state the way the node decides it: a pod on the host network, or on
//! a node pool without the GKE metadata server, talks to the node's own
//! metadata server and gets the node's identity; otherwise the GKE metadata
//! server acts for the pod's KSA, as the annotated Google service account or,
//! without an annotation, as the KSA's federated principal.

use k8s_openapi::api::core::v1::Pod;

use crate::gcp::types::{GkeCluster, NodePool};
use crate::live::LiveState;
use crate::ownership::{GSA_ANNOTATION, WORKLOAD_IDENTITY_USER};
use crate::spec::ClusterKey;

/// Why a pod gets the node's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeReason {
    /// `spec.hostNetwork: true`: the GKE metadata server does not see it.
    HostNetwork,
    /// The cluster has no workload pool.
    NoWorkloadPool,
    /// The pod's node pool does not run the GKE metadata server.
    PoolOnGceMetadata { pool: String, mode: String },
}

/// The identity a pod gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodIdentity {
    /// The node's service account (`node_account`: the pool's, or `None`
    /// for the Compute Engine default account).
    Node {
        reason: NodeReason,
        node_account: Option<String>,
    },
    /// The annotated Google service account; `bound`: whether the KSA's
    /// principal holds roles/iam.workloadIdentityUser on it (`None`: its
    /// policy was not read).
    ServiceAccount { email: String, bound: Option<bool> },
    /// The KSA's federated principal (no annotation): what IAM grants to
    /// `member` directly.
    Federated { member: String },
}

/// What `--pod` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodExplanation {
    pub cluster: ClusterKey,
    pub namespace: String,
    pub name: String,
    pub ksa: String,
    /// The node pool the pod runs on, when it can be told.
    pub pool: Option<String>,
    pub host_network: bool,
    pub identity: PodIdentity,
}

/// Why a pod cannot be explained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodProblem {
    #[error("cluster {0} does not exist")]
    ClusterMissing(ClusterKey),
    #[error("pod {namespace}/{name} does not exist in cluster {cluster}")]
    PodMissing {
        cluster: ClusterKey,
        namespace: String,
        name: String,
    },
}

/// GKE's label of a node's pool, also usable as a pod's node selector.
const NODE_POOL_LABEL: &str = "cloud.google.com/gke-nodepool";

/// The pool of a pod: its node selector, else the pool its node's name
/// carries (`gke-CLUSTER-POOL-...`), else the only pool of the cluster.
fn pod_pool<'a>(gke: &'a GkeCluster, pod: &Pod) -> Option<&'a NodePool> {
    let spec = pod.spec.as_ref();
    let selected = spec
        .and_then(|s| s.node_selector.as_ref())
        .and_then(|s| s.get(NODE_POOL_LABEL));
    if let Some(name) = selected {
        return gke.node_pools.iter().find(|p| &p.name == name);
    }
    if let Some(node) = spec.and_then(|s| s.node_name.as_deref()) {
        let prefix = format!("gke-{}-", gke.name);
        let rest = node.strip_prefix(&prefix).unwrap_or("");
        let mut pools: Vec<&NodePool> = gke
            .node_pools
            .iter()
            .filter(|p| rest.starts_with(&format!("{}-", p.name)))
            .collect();
        pools.sort_by_key(|p| std::cmp::Reverse(p.name.len()));
        if let Some(p) = pools.first() {
            return Some(p);
        }
    }
    match gke.node_pools.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// The pool's node service account, `None` for the Compute Engine default.
fn node_account(pool: Option<&NodePool>) -> Option<String> {
    pool.and_then(|p| p.config.as_ref())
        .and_then(|c| c.rest.get("serviceAccount"))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty() && *s != "default")
        .map(str::to_string)
}

/// Explains which identity `namespace/name` of `cluster` gets, from live state.
pub fn explain_pod(
    live: &LiveState,
    pod: Option<&Pod>,
    cluster: &ClusterKey,
    namespace: &str,
    name: &str,
) -> Result<PodExplanation, PodProblem> {
    let live_cluster = live.clusters.get(cluster);
    let Some(gke) = live_cluster.and_then(|c| c.gke.as_ref()) else {
        return Err(PodProblem::ClusterMissing(cluster.clone()));
    };
    let missing = || PodProblem::PodMissing {
        cluster: cluster.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    let pod = pod.ok_or_else(missing)?;
    let spec = pod.spec.as_ref();
    let ksa = spec
        .and_then(|s| s.service_account_name.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let pool = pod_pool(gke, pod);
    let node = |reason| PodIdentity::Node {
        reason,
        node_account: node_account(pool),
    };
    let identity = if host_network {
        node(NodeReason::HostNetwork)
    } else if gke.workload_pool().is_none() {
        node(NodeReason::NoWorkloadPool)
    } else if let Some(p) = pool.filter(|p| p.metadata_mode() != Some("GKE_METADATA")) {
        node(NodeReason::PoolOnGceMetadata {
            pool: p.name.clone(),
            mode: p.metadata_mode().unwrap_or("GCE_METADATA").to_string(),
        })
    } else {
        let member = crate::ids::ksa_member(&cluster.project, namespace, &ksa);
        let annotation = live_cluster
            .and_then(|c| c.kube.as_ref())
            .and_then(|k| {
                k.service_accounts
                    .get(&(namespace.to_string(), ksa.clone()))
            })
            .and_then(|sa| sa.annotation(GSA_ANNOTATION))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        match annotation {
            Some(email) => {
                let bound = live.account_policies.get(&email).map(|p| {
                    p.bindings
                        .iter()
                        .any(|b| b.role == WORKLOAD_IDENTITY_USER && b.members.contains(&member))
                });
                PodIdentity::ServiceAccount { email, bound }
            }
            None => PodIdentity::Federated { member },
        }
    };
    Ok(PodExplanation {
        cluster: cluster.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        ksa,
        pool: pool.map(|p| p.name.clone()),
        host_network,
        identity,
    })
}
