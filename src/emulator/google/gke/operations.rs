//! GKE long-running operations: creating them, refusing a mutation while one
//! runs (400 FAILED_PRECONDITION), and applying their effects once DONE.

use std::sync::MutexGuard;

use serde_json::{Value, json};

use crate::emulator::core::Core;
use crate::emulator::request::Req;
use crate::emulator::wire::{GoogleApiError, GoogleApiResult};
use crate::emulator::world::{EmulatorWorld, GkeOperation, OnDone};

use super::render::render_operation;

pub(super) fn busy_error(world: &EmulatorWorld, key: &str, now: i64) -> Result<(), GoogleApiError> {
    if let Some(op) = world
        .operations
        .iter()
        .find(|o| o.cluster == key && o.is_active(now))
    {
        return Err(GoogleApiError::failed_precondition(format!(
            "Cluster is running incompatible operation {}.",
            op.name
        ))
        .with_error_info(
            "CLUSTER_ALREADY_HAS_OPERATION",
            "container.googleapis.com",
            json!({}),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn new_op(
    world: &mut EmulatorWorld,
    core: &Core,
    key: &str,
    project: &str,
    location: &str,
    node_pool: Option<&str>,
    op_type: &str,
    on_done: OnDone,
    now: i64,
) -> GkeOperation {
    world.counter += 1;
    let op = GkeOperation {
        name: format!("operation-{now}-{}", &uuid::Uuid::new_v4().to_string()),
        project: project.to_string(),
        location: location.to_string(),
        cluster: key.to_string(),
        node_pool: node_pool.map(str::to_string),
        op_type: op_type.to_string(),
        start_ms: now,
        duration_ms: core.operation_ms(),
        starts_pending: node_pool.is_some(),
        on_done,
        finished: false,
    };
    world.operations.push(op.clone());
    op
}

/// Answers with the rendered `op`, after releasing the world and persisting it.
pub(super) fn respond_with_op(
    core: &Core,
    req: &Req,
    world: MutexGuard<'_, EmulatorWorld>,
    op: &GkeOperation,
) -> GoogleApiResult {
    let rendered = render_operation(&world, op, req.now, &req.version);
    drop(world);
    core.persist();
    Ok(rendered)
}

/// Applies the effects of finished operations; returns the keys of deleted clusters.
pub(crate) fn finish_operations(world: &mut EmulatorWorld, now: i64) -> Vec<String> {
    let mut deleted = Vec::new();
    let mut pool_deletes = Vec::new();
    for op in world.operations.iter_mut() {
        if op.finished || op.is_active(now) {
            continue;
        }
        op.finished = true;
        match &op.on_done {
            OnDone::Nothing => {}
            OnDone::DeleteCluster => deleted.push(op.cluster.clone()),
            OnDone::DeleteNodePool(np) => pool_deletes.push((op.cluster.clone(), np.clone())),
        }
    }
    for (key, np) in pool_deletes {
        if let Some(c) = world.clusters.get_mut(&key)
            && let Some(ps) = c
                .resource
                .get_mut("nodePools")
                .and_then(Value::as_array_mut)
        {
            ps.retain(|p| p.get("name").and_then(Value::as_str) != Some(np.as_str()));
        }
    }
    for key in &deleted {
        world.clusters.remove(key);
        world.kube.remove(key);
    }
    deleted
}
