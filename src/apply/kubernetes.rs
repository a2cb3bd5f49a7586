//! Kubernetes steps: namespaces and KSAs, server-side applied with field
//! manager `wi`, over one connection per cluster per apply.
//!
//! The connection cache holds one `OnceCell` per cluster: the map's lock is
//! held only to find the cell, so connecting to one cluster never blocks
//! steps on another.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::{Context, StepError};
use crate::ids::ClusterKey;
use crate::kube::{ClusterConnection, KubeError};
use crate::ownership::{FIELD_MANAGER, MANAGED_BY_LABEL};
use crate::plan::ResourceChange;

/// One Kubernetes connection per cluster, made on first use.
#[derive(Default)]
pub(super) struct Connections {
    cells: Mutex<HashMap<ClusterKey, Arc<OnceCell<Arc<ClusterConnection>>>>>,
}

impl Connections {
    fn cell(&self, key: &ClusterKey) -> Arc<OnceCell<Arc<ClusterConnection>>> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(key.clone()).or_default().clone()
    }
}

/// A Kubernetes connection to a cluster, made once per apply.
async fn connection(ctx: &Context, key: &ClusterKey) -> Result<Arc<ClusterConnection>, StepError> {
    let cell = ctx.connections.cell(key);
    let conn = cell
        .get_or_try_init(|| async {
            let gke =
                match ctx.clusters.get(key).cloned().flatten() {
                    Some(c) if c.endpoint.is_some() => c,
                    _ => ctx.gcp.get_cluster(key).await?.ok_or_else(|| {
                        StepError::ClusterMissing {
                            cluster: key.clone(),
                        }
                    })?,
                };
            let token = ctx.gcp.access_token().await?;
            let context = ctx.kube_context.get(key).cloned().flatten();
            let conn = crate::live::connect_cluster(&gke, token, context.as_deref())
                .await
                .map_err(|source| StepError::Connect {
                    cluster: key.clone(),
                    source,
                })?;
            Ok::<_, StepError>(Arc::new(conn))
        })
        .await?;
    Ok(conn.clone())
}

/// Retries a Kubernetes call while its error is retryable, within the step deadline.
async fn kube_retry<T, F, Fut>(ctx: &Context, address: &str, mut call: F) -> Result<T, KubeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, KubeError>>,
{
    let deadline = Instant::now() + ctx.options.step_deadline;
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && Instant::now() + delay < deadline => {
                ctx.progress.note(address, &format!("retrying after {e}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates a namespace, labelled as its owner's (as field manager `wi/O`),
/// or applies its direct-roles record (an update).
pub(super) async fn create_namespace(
    ctx: &Context,
    cluster: &ClusterKey,
    name: &str,
    change: &ResourceChange,
) -> Result<(), StepError> {
    let conn = connection(ctx, cluster).await?;
    let metadata = change.kube_metadata();
    let mut labels = metadata.labels;
    if labels.is_empty() && change.action == crate::plan::Action::Create {
        labels.insert(MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string());
    }
    let manager = change.owner.field_manager();
    kube_retry(ctx, &change.address, || {
        conn.apply_namespace_annotated_as(
            &manager,
            name,
            &labels,
            &metadata.annotations,
            ctx.options.force_conflicts,
        )
    })
    .await?;
    Ok(())
}

/// Applies a KSA's annotation (and `wi`'s labels) as the plan sets them, as
/// the owner's field manager; then releases the fields of the managers the
/// plan takes over (an older `wi`'s), by an empty apply as each.
pub(super) async fn apply_service_account(
    ctx: &Context,
    cluster: &ClusterKey,
    namespace: &str,
    name: &str,
    change: &ResourceChange,
) -> Result<(), StepError> {
    let conn = connection(ctx, cluster).await?;
    let fields = change.kube_metadata();
    let manager = change.owner.field_manager();
    let conflict = |e: KubeError| {
        if e.is_conflict() {
            StepError::FieldConflict { source: e }
        } else {
            StepError::Kube(e)
        }
    };
    kube_retry(ctx, &change.address, || {
        conn.apply_service_account_as(
            &manager,
            namespace,
            name,
            &fields.labels,
            &fields.annotations,
            ctx.options.force_conflicts,
        )
    })
    .await
    .map_err(conflict)?;
    let none = BTreeMap::new();
    for legacy in &change.kube.release_managers {
        kube_retry(ctx, &change.address, || {
            conn.apply_service_account_as(legacy, namespace, name, &none, &none, false)
        })
        .await
        .map_err(conflict)?;
    }
    Ok(())
}

/// Deletes a KSA `wi` created; one already gone is success.
pub(super) async fn delete_service_account(
    ctx: &Context,
    cluster: &ClusterKey,
    namespace: &str,
    name: &str,
    change: &ResourceChange,
) -> Result<(), StepError> {
    let conn = connection(ctx, cluster).await?;
    kube_retry(ctx, &change.address, || {
        conn.delete_service_account(namespace, name)
    })
    .await?;
    Ok(())
}
