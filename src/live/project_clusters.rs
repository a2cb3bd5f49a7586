//! Every cluster of a project, declared or not: the workload pool
//! `P.svc.id.goog` is shared by all of them, so a cluster the spec does not
//! list still gets the identity of every mapped namespace/KSA it has (or
//! lets someone create). One `clusters.list` per project (`locations/-`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::gcp::GcpClient;
use crate::gcp::types::GkeCluster;
use crate::ids::ClusterKey;

use super::{LiveError, ReadFailure};

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

/// Each project's `clusters.list`, read once and shared by everything that
/// needs it: the project's summaries and its declared clusters' GKE objects
/// (endpoint, CA, node pools) come from the same answer, so a declared
/// cluster costs no `clusters.get` of its own.
#[derive(Default)]
pub(crate) struct Lists {
    cells: Mutex<BTreeMap<String, Arc<Listed>>>,
}

type Listed = OnceCell<Result<Vec<GkeCluster>, ReadFailure>>;

impl Lists {
    /// The list of `project`: read by `read` the first time it is asked
    /// for, the same answer afterwards (callers that ask while it is being
    /// read wait for it).
    pub(crate) async fn get<F, Fut>(
        &self,
        project: &str,
        read: F,
    ) -> Result<Vec<GkeCluster>, ReadFailure>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<GkeCluster>, ReadFailure>>,
    {
        let cell = {
            // A panic elsewhere cannot leave the map half-written: take it anyway.
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(cells.entry(project.to_owned()).or_default())
        };
        cell.get_or_init(read).await.clone()
    }
}

/// The cluster `key` in its project's list (`None`: it does not exist).
pub(crate) fn find(listed: &[GkeCluster], key: &ClusterKey) -> Option<GkeCluster> {
    listed
        .iter()
        .find(|c| c.name == key.name && c.location == key.location)
        .cloned()
}
