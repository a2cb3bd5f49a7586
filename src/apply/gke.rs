//! GKE steps: create a cluster, and run one cluster-level mutation (workload
//! pool, node-pool metadata mode) without colliding with operations already
//! running on the cluster. Operation progress is reported as notes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Context, OperationEvent, OperationTarget, StepError};
use crate::gcp::GcpError;
use crate::gcp::types::{GkeCluster, Operation};
use crate::ids::ClusterKey;
use crate::plan::{ClusterCreateValues, Resource, ResourceChange};

/// The body of `projects.locations.clusters.create` for what the plan holds.
fn create_body(key: &ClusterKey, values: &ClusterCreateValues) -> serde_json::Value {
    if values.autopilot {
        // What `gcloud container clusters create-auto` sends: GKE picks the
        // nodes and always turns Workload Identity on, so no pool settings.
        let mut cluster = serde_json::json!({
            "name": key.name,
            "autopilot": {"enabled": true},
        });
        if let Some(channel) = &values.release_channel {
            cluster["releaseChannel"] = serde_json::json!({"channel": channel});
        }
        return cluster;
    }
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
    /// It waits only for operations that are not its own.
    Never,
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
        let own = matches!(own, Own::Always);
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

/// What an operation that makes `change` targets: the cluster or one node pool.
fn target_of(change: &ResourceChange) -> OperationTarget {
    match &change.resource {
        Resource::NodePool { pool, .. } => OperationTarget::NodePool(pool.clone()),
        Resource::Cluster { cluster } => OperationTarget::Cluster(cluster.name.clone()),
        _ => OperationTarget::Unknown,
    }
}

/// Waits for the operations running on the cluster that are not this step's
/// (another apply's, a sibling step's, a user's), reporting each; the last
/// one that targets what `change` changes is remembered in `waited`. True
/// when there was any.
async fn wait_for_others(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
    waited: &Arc<Mutex<Option<String>>>,
    left: Duration,
) -> Result<bool, StepError> {
    let report = operation_progress(ctx, change, Own::Never);
    let seen = waited.clone();
    let target = target_of(change);
    let any = Arc::new(AtomicBool::new(false));
    let saw = any.clone();
    let progress = move |op: &Operation| {
        if OperationEvent::of(op, false).target == target
            && let Ok(mut name) = seen.lock()
        {
            *name = Some(op.name.clone());
        }
        saw.store(true, Ordering::Relaxed);
        report(op);
    };
    ctx.gcp.wait_cluster_idle(key, left, &progress).await?;
    Ok(any.load(Ordering::Relaxed))
}

/// Waits for the running operations that target what `change` changes
/// (GKE shows a change as soon as its operation starts: it is done only
/// when that operation is), remembering the last in `waited`.
async fn wait_for_the_change(
    ctx: &Context,
    key: &ClusterKey,
    change: &ResourceChange,
    waited: &Arc<Mutex<Option<String>>>,
    left: impl Fn() -> Duration,
) -> Result<(), StepError> {
    let target = target_of(change);
    let progress = operation_progress(ctx, change, Own::Never);
    for op in ctx.gcp.running_operations(key).await? {
        if OperationEvent::of(&op, false).target != target {
            continue;
        }
        if let Ok(mut name) = waited.lock() {
            *name = Some(op.name.clone());
        }
        match ctx
            .gcp
            .wait_operation(&key.project, &key.location, &op, left(), &progress)
            .await
        {
            // Someone else's failed operation: the re-read decided already.
            Ok(_) | Err(GcpError::OperationFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs one cluster-level mutation so that two applies never do it twice:
/// reads the cluster, and when the change already shows (another apply made
/// it) waits only for the operation that makes it and says "already done by
/// OPERATION"; otherwise waits for the operations running on the cluster
/// (naming them), re-reads if any ran, and starts the change. When GKE
/// refuses because an operation started in between ("incompatible
/// operation"), it waits for that one and reads again. Then it waits for its
/// own operation. All within the step's operation deadline.
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
    let deadline = Instant::now() + ctx.options.operation_deadline;
    let left = || deadline.saturating_duration_since(Instant::now());
    let waited: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    // Read first, wait second: when the change already shows, only the
    // operation that makes it is waited for, not every later one on the cluster.
    let mut idle = false;
    let mut refused = false;
    loop {
        let Some(current) = ctx.gcp.get_cluster(key).await? else {
            return Err(StepError::ClusterGone {
                cluster: key.clone(),
            });
        };
        if already_done(&current) {
            // The operation that makes it (another apply's) may still run,
            // and what depends on this step must wait for it too.
            wait_for_the_change(ctx, key, change, &waited, left).await?;
            let by = waited.lock().ok().and_then(|n| n.clone());
            let note = match by {
                Some(op) => format!("already done by {op}"),
                None => "already done".to_string(),
            };
            ctx.progress.note(&change.address, &note);
            return Ok(());
        }
        if !idle {
            let others = wait_for_others(ctx, key, change, &waited, left()).await?;
            if refused && !others {
                // GKE refused for an operation its list does not show yet:
                // pause rather than spin on the refusal.
                if left().is_zero() {
                    return Err(StepError::Gcp(GcpError::Timeout {
                        what: format!("cluster {key} to accept the change"),
                        after: ctx.options.operation_deadline,
                    }));
                }
                tokio::time::sleep(REFUSAL_PAUSE.min(left())).await;
            }
            idle = true;
            // Re-read when something ran meanwhile: it may have made the change.
            if others || refused {
                continue;
            }
        }
        match mutate().await {
            Ok(op) => {
                let progress = operation_progress(ctx, change, Own::Always);
                ctx.gcp
                    .wait_operation(&key.project, &key.location, &op, left(), &progress)
                    .await?;
                return Ok(());
            }
            Err(e) if e.is_incompatible_operation() && !left().is_zero() => {
                tracing::info!(cluster = %key, error = %e, "waiting for the running operation");
                refused = true;
                idle = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long to wait before re-reading a cluster that refused a change for an
/// operation its operation list did not show.
const REFUSAL_PAUSE: Duration = Duration::from_secs(1);

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
            autopilot: false,
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
            autopilot: false,
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
        let auto = ClusterCreateValues {
            autopilot: true,
            ..full
        };
        assert_eq!(
            create_body(&key, &auto),
            serde_json::json!({
                "name": "c",
                "autopilot": {"enabled": true},
                "releaseChannel": {"channel": "REGULAR"},
            })
        );
    }
}
