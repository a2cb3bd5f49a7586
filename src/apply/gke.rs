//! GKE steps: create a cluster, and run one cluster-level mutation (workload
//! pool, node-pool metadata mode) without colliding with operations already
//! running on the cluster. Operation progress is reported as notes.

use std::sync::{Arc, Mutex};

use super::{Context, StepError};
use crate::gcp::GcpError;
use crate::gcp::types::{GkeCluster, Operation};
use crate::ids::ClusterKey;
use crate::plan::{ClusterCreateValues, ResourceChange};

/// The body of `projects.locations.clusters.create` for what the plan holds.
fn create_body(key: &ClusterKey, values: &ClusterCreateValues) -> serde_json::Value {
    let mut cluster = serde_json::json!({
        "name": key.name,
        "initialNodeCount": values.initial_node_count,
    });
    if let Some(pool) = &values.workload_pool {
        cluster["workloadIdentityConfig"] = serde_json::json!({"workloadPool": pool});
    }
    if let Some(machine) = &values.machine_type {
        cluster["nodeConfig"] = serde_json::json!({"machineType": machine});
    }
    if let Some(channel) = &values.release_channel {
        cluster["releaseChannel"] = serde_json::json!({"channel": channel});
    }
    cluster
}

pub(super) async fn create_cluster(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
) -> Result<(), StepError> {
    let body = create_body(key, &change.cluster_create());
    let op = match ctx.gcp.create_cluster(key, body).await {
        Ok(op) => op,
        Err(e) if e.is_already_exists() => {
            // Another apply created it: wait for whatever is running on it.
            return wait_running_operations(ctx, key, change).await;
        }
        Err(e) => return Err(e.into()),
    };
    let progress = operation_progress(ctx, change, Own::Always);
    ctx.gcp
        .wait_operation(
            &key.project,
            &key.location,
            &op,
            ctx.options.operation_deadline,
            &progress,
        )
        .await?;
    Ok(())
}

/// Which operations a progress callback sees are the step's own.
enum Own {
    /// It waits only for the operation it started.
    Always,
    /// It waits only for operations that were running before it started.
    Never,
    /// The one whose name `start` recorded; the others it waits out.
    Named(Arc<Mutex<Option<String>>>),
}

/// Reports every poll of a GKE operation, the step's own or one it waits
/// for, as an [`OperationEvent`](super::OperationEvent) of the change.
fn operation_progress(
    ctx: &Context,
    change: &ResourceChange,
    own: Own,
) -> impl Fn(&Operation) + Send + Sync + use<> {
    let progress = ctx.progress.clone();
    let change = change.clone();
    move |op: &Operation| {
        let own = match &own {
            Own::Always => true,
            Own::Never => false,
            Own::Named(name) => name
                .lock()
                .ok()
                .is_some_and(|n| n.as_deref() == Some(op.name.as_str())),
        };
        progress.operation(&change, &super::OperationEvent::of(op, own));
    }
}

/// Waits for operations already running on this cluster (another apply's,
/// or a user's), so we neither collide nor start a duplicate.
async fn wait_running_operations(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
) -> Result<(), StepError> {
    let progress = operation_progress(ctx, change, Own::Never);
    ctx.gcp
        .wait_cluster_idle(key, ctx.options.operation_deadline, &progress)
        .await?;
    Ok(())
}

/// Runs one cluster-level mutation: waits out running operations, re-reads
/// the cluster (another apply may have done the work already), then starts the
/// change, waiting out "incompatible operation" refusals, and waits for it.
pub(super) async fn cluster_mutation<F, Fut, Done>(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
    already_done: Done,
    mutate: F,
) -> Result<(), StepError>
where
    Done: Fn(&GkeCluster) -> bool,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Operation, GcpError>>,
{
    wait_running_operations(ctx, key, change).await?;
    let Some(current) = ctx.gcp.get_cluster(key).await? else {
        return Err(StepError::ClusterGone {
            cluster: key.clone(),
        });
    };
    if already_done(&current) {
        return Ok(());
    }
    let started = Arc::new(Mutex::new(None));
    let progress = operation_progress(ctx, change, Own::Named(started.clone()));
    let start = || {
        let started = started.clone();
        let op = mutate();
        async move {
            let op = op.await?;
            if let Ok(mut name) = started.lock() {
                *name = Some(op.name.clone());
            }
            Ok(op)
        }
    };
    ctx.gcp
        .run_cluster_operation(key, ctx.options.operation_deadline, &progress, start)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_carries_only_what_the_plan_sets() {
        let key = ClusterKey {
            project: "p".into(),
            location: "l".into(),
            name: "c".into(),
        };
        let minimal = ClusterCreateValues {
            workload_pool: None,
            initial_node_count: 1,
            machine_type: None,
            release_channel: None,
        };
        assert_eq!(
            create_body(&key, &minimal),
            serde_json::json!({"name": "c", "initialNodeCount": 1})
        );
        let full = ClusterCreateValues {
            workload_pool: Some("p.svc.id.goog".into()),
            initial_node_count: 3,
            machine_type: Some("e2-small".into()),
            release_channel: Some("REGULAR".into()),
        };
        assert_eq!(
            create_body(&key, &full),
            serde_json::json!({
                "name": "c",
                "initialNodeCount": 3,
                "workloadIdentityConfig": {"workloadPool": "p.svc.id.goog"},
                "nodeConfig": {"machineType": "e2-small"},
                "releaseChannel": {"channel": "REGULAR"},
            })
        );
    }
}
