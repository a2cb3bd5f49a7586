//! Every cluster of a project, declared or not: the workload pool
//! `P.svc.id.goog` is shared by all of them, so a cluster the spec does not
//! list still gets the identity of every mapped namespace/KSA it has (or
//! lets someone create). One `clusters.list` per project (`locations/-`).

use crate::gcp::GcpClient;
use crate::gcp::types::GkeCluster;
use crate::ids::ClusterKey;

use super::LiveError;

/// What the plan and audit need to know about a cluster of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    pub key: ClusterKey,
    /// The workload pool, when Workload Identity is on.
    pub workload_pool: Option<String>,
    /// Node pools still on `GCE_METADATA` (their pods get the node's identity).
    pub gce_metadata_pools: Vec<String>,
}

impl ClusterSummary {
    /// The summary of a listed cluster of `project`.
    pub fn of(project: &str, cluster: &GkeCluster) -> Self {
        ClusterSummary {
            key: ClusterKey {
                project: project.to_owned(),
                location: cluster.location.clone(),
                name: cluster.name.clone(),
            },
            workload_pool: cluster.workload_pool().map(str::to_owned),
            gce_metadata_pools: cluster
                .node_pools
                .iter()
                .filter(|p| p.metadata_mode() != Some("GKE_METADATA"))
                .map(|p| p.name.clone())
                .collect(),
        }
    }
}

/// Every cluster of `project`, as GKE lists them.
pub async fn list(gcp: &GcpClient, project: &str) -> Result<Vec<GkeCluster>, LiveError> {
    gcp.list_clusters(project)
        .await
        .map_err(|source| LiveError::Gcp {
            what: format!("clusters of project {project}"),
            source,
        })
}

/// Summaries of the clusters GKE listed for `project`, sorted by key.
pub fn summaries(project: &str, listed: &[GkeCluster]) -> Vec<ClusterSummary> {
    let mut out: Vec<ClusterSummary> = listed
        .iter()
        .map(|c| ClusterSummary::of(project, c))
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}
