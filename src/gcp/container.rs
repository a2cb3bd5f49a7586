//! GKE (`container.v1`): clusters, node pools and operations, and the waits
//! `wi` needs around them (an operation to finish, a cluster to be idle, a
//! change refused for a running operation to be started again).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GcpClient;
use super::error::GcpError;
use super::retry::Pacer;
use super::transport::{Api, Call, not_found_as_none};
use super::types::{GkeCluster, Operation};
use crate::ids::ClusterKey;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListClustersResponse {
    clusters: Vec<GkeCluster>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListOperationsResponse {
    operations: Vec<Operation>,
}

/// The cluster a GKE operation targets, from its `targetLink`
/// (`.../clusters/C` or `.../clusters/C/nodePools/NP`).
fn operation_cluster(op: &Operation) -> Option<&str> {
    let link = op.target_link.as_deref()?;
    let (_, rest) = link.split_once("/clusters/")?;
    rest.split('/').next().filter(|c| !c.is_empty())
}

fn operation_error(op: &Operation) -> Option<String> {
    if let Some(err) = &op.error {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        if !message.is_empty() || code != 0 {
            return Some(if message.is_empty() {
                format!("error code {code}")
            } else {
                message.to_owned()
            });
        }
    }
    op.status_message.clone().filter(|m| !m.trim().is_empty())
}

impl GkeCluster {
    /// Whether GKE manages the cluster's nodes (`autopilot.enabled`): Workload
    /// Identity is always on there and its node pools cannot be changed.
    pub fn autopilot(&self) -> bool {
        self.rest
            .get("autopilot")
            .and_then(|a| a.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

impl GcpClient {
    fn operation_segments<'a>(project: &'a str, location: &'a str) -> [&'a str; 6] {
        [
            "v1",
            "projects",
            project,
            "locations",
            location,
            "operations",
        ]
    }

    fn cluster_segments(key: &ClusterKey) -> [&str; 7] {
        [
            "v1",
            "projects",
            &key.project,
            "locations",
            &key.location,
            "clusters",
            &key.name,
        ]
    }

    /// `clusters.get`; `None` when the cluster does not exist.
    pub async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<GkeCluster>, GcpError> {
        let call = Call::new(
            Api::Container,
            "clusters.get",
            Method::GET,
            &Self::cluster_segments(key),
        );
        not_found_as_none(self.send(call).await)
    }

    /// `clusters.list` of every location of a project (`locations/-`): the
    /// clusters a spec does not declare share its workload pool too.
    pub async fn list_clusters(&self, project: &str) -> Result<Vec<GkeCluster>, GcpError> {
        let call = Call::new(
            Api::Container,
            "clusters.list",
            Method::GET,
            &["v1", "projects", project, "locations", "-", "clusters"],
        );
        let r: ListClustersResponse = self.send(call).await?;
        Ok(r.clusters)
    }

    /// `clusters.create` with `cluster` as the Cluster body (its `name` is set
    /// from `key` when absent). Returns the operation to wait for.
    pub async fn create_cluster(
        &self,
        key: &ClusterKey,
        mut cluster: Value,
    ) -> Result<Operation, GcpError> {
        let Some(obj) = cluster.as_object_mut() else {
            return Err(GcpError::Config(
                "cluster body must be a JSON object".into(),
            ));
        };
        obj.entry("name")
            .or_insert_with(|| Value::String(key.name.clone()));
        let parent = format!("projects/{}/locations/{}", key.project, key.location);
        let call = Call::new(
            Api::Container,
            "clusters.create",
            Method::POST,
            &[
                "v1",
                "projects",
                &key.project,
                "locations",
                &key.location,
                "clusters",
            ],
        )
        .body(json!({ "cluster": cluster, "parent": parent }));
        self.send(call).await
    }

    /// `clusters.update` with `desiredWorkloadIdentityConfig`; `None` sends
    /// `workloadPool: ""`, which disables Workload Identity.
    pub async fn set_workload_pool(
        &self,
        key: &ClusterKey,
        pool: Option<&str>,
    ) -> Result<Operation, GcpError> {
        let call = Call::new(
            Api::Container,
            "clusters.update",
            Method::PUT,
            &Self::cluster_segments(key),
        )
        .body(json!({
            "name": key.path(),
            "update": { "desiredWorkloadIdentityConfig": { "workloadPool": pool.unwrap_or("") } },
        }));
        self.send(call).await
    }

    /// `nodePools.update` with `workloadMetadataConfig.mode` (`GKE_METADATA` or
    /// `GCE_METADATA`). GKE recreates the pool's nodes (`UPGRADE_NODES`).
    pub async fn set_node_pool_metadata_mode(
        &self,
        key: &ClusterKey,
        pool: &str,
        mode: &str,
    ) -> Result<Operation, GcpError> {
        let mut segs = Self::cluster_segments(key).to_vec();
        segs.extend(["nodePools", pool]);
        let call = Call::new(Api::Container, "nodePools.update", Method::PUT, &segs).body(json!({
            "name": format!("{}/nodePools/{pool}", key.path()),
            "workloadMetadataConfig": { "mode": mode },
        }));
        self.send(call).await
    }

    /// `operations.list` of one location.
    pub async fn list_operations(
        &self,
        project: &str,
        location: &str,
    ) -> Result<Vec<Operation>, GcpError> {
        let call = Call::new(
            Api::Container,
            "operations.list",
            Method::GET,
            &Self::operation_segments(project, location),
        );
        let r: ListOperationsResponse = self.send(call).await?;
        Ok(r.operations)
    }

    /// `operations.get` by bare name (`operation-...`).
    pub async fn get_operation(
        &self,
        project: &str,
        location: &str,
        name: &str,
    ) -> Result<Operation, GcpError> {
        let mut segs = Self::operation_segments(project, location).to_vec();
        segs.push(name);
        let call = Call::new(Api::Container, "operations.get", Method::GET, &segs);
        self.send(call).await
    }

    /// Operations of `key`'s location that target the cluster (or one of its
    /// node pools) and are not `DONE`: what another `wi apply`, gcloud or GKE
    /// itself is doing to the cluster right now.
    pub async fn running_operations(&self, key: &ClusterKey) -> Result<Vec<Operation>, GcpError> {
        let ops = self.list_operations(&key.project, &key.location).await?;
        Ok(ops
            .into_iter()
            .filter(|op| op.status != "DONE" && operation_cluster(op) == Some(key.name.as_str()))
            .collect())
    }

    /// Polls a GKE operation with backoff until `DONE`, calling `progress` after
    /// every poll. Transport errors and 5xx between polls are survived (the
    /// operation runs server-side regardless). `DONE` with `error` or
    /// `statusMessage` is [`GcpError::OperationFailed`]; past `deadline`,
    /// [`GcpError::Timeout`].
    pub async fn wait_operation(
        &self,
        project: &str,
        location: &str,
        op: &Operation,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
    ) -> Result<Operation, GcpError> {
        let mut pacer = Pacer::poll(&self.inner.retry, deadline);
        let mut current = op.clone();
        progress(&current);
        loop {
            if current.status == "DONE" {
                return match operation_error(&current) {
                    Some(message) => Err(GcpError::OperationFailed {
                        operation: current.name.clone(),
                        operation_type: current.operation_type.clone(),
                        message,
                    }),
                    None => Ok(current),
                };
            }
            if !pacer.pause().await {
                return Err(GcpError::Timeout {
                    what: format!("GKE operation {} ({})", op.name, op.operation_type),
                    after: deadline,
                });
            }
            match self.get_operation(project, location, &op.name).await {
                Ok(next) => {
                    current = next;
                    progress(&current);
                }
                Err(e) if e.is_retryable() => {
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(operation = %op.name, error = %e, "polling failed; polling on");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until no operation runs on the cluster (see
    /// [`Self::running_operations`]); used before and after "incompatible
    /// operation" refusals, and to pick up an operation a previous run started.
    pub async fn wait_cluster_idle(
        &self,
        key: &ClusterKey,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
    ) -> Result<(), GcpError> {
        let mut pacer = Pacer::poll(&self.inner.retry, deadline);
        loop {
            let running = self.running_operations(key).await?;
            let Some(op) = running.first() else {
                return Ok(());
            };
            match self
                .wait_operation(&key.project, &key.location, op, pacer.left(), progress)
                .await
            {
                // Someone else's failed operation is not ours to report.
                Ok(_) | Err(GcpError::OperationFailed { .. }) => {}
                Err(e) => return Err(e),
            }
            // The list may still show the operation for a moment after it is
            // DONE: never spin on it.
            if !pacer.pause().await {
                return Err(GcpError::Timeout {
                    what: format!("cluster {key} to have no running operation"),
                    after: deadline,
                });
            }
        }
    }

    /// Starts a GKE change with `start` and sees it through: when GKE refuses
    /// because another operation runs on the cluster ("incompatible
    /// operation"), waits for that operation (reported through `progress`) and
    /// starts again; then waits for the new operation. All within `deadline`.
    pub async fn run_cluster_operation<F, Fut>(
        &self,
        key: &ClusterKey,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
        start: F,
    ) -> Result<Operation, GcpError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Operation, GcpError>>,
    {
        let mut pacer = Pacer::poll(&self.inner.retry, deadline);
        loop {
            match start().await {
                Ok(op) => {
                    return self
                        .wait_operation(&key.project, &key.location, &op, pacer.left(), progress)
                        .await;
                }
                Err(e) if e.is_incompatible_operation() => {
                    tracing::info!(cluster = %key, error = %e, "waiting for the running operation");
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    self.wait_cluster_idle(key, pacer.left(), progress).await?;
                    // The operation list can trail the refusal by a moment.
                    if !pacer.pause().await {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_of_operation() {
        let op = |link: &str| Operation {
            target_link: Some(link.into()),
            ..Default::default()
        };
        assert_eq!(
            operation_cluster(&op(
                "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1"
            )),
            Some("c1")
        );
        assert_eq!(
            operation_cluster(&op(
                "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1/nodePools/np"
            )),
            Some("c1")
        );
        assert_eq!(operation_cluster(&op("https://x/other")), None);
    }
}
