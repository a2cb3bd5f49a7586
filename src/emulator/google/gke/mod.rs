//! GKE (container v1, `locations` paths): clusters, node pools, operations.
//! Mutations return Operations that move PENDING → RUNNING → DONE over the
//! configured duration (computed from timestamps); while any operation on a
//! cluster is not DONE, another mutation gets GKE's 400 FAILED_PRECONDITION.
//!
//! This file routes a method to its handler; `clusters` and `node_pools`
//! serve the mutations, `operations` is the LRO state machine, `render`
//! prints resources as GKE does, `validate` holds the name, location and
//! lookup rules they share.

mod clusters;
mod node_pools;
mod operations;
mod render;
mod validate;

pub(crate) use clusters::seeded_cluster;
pub(crate) use operations::finish_operations;

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use crate::emulator::core::Core;
use crate::emulator::google::permissions;
use crate::emulator::request::Req;
use crate::emulator::wire::{GoogleApiError, GoogleApiResult};
use crate::emulator::world::Principal;

use self::clusters::{create_cluster, delete_cluster, list_clusters, set_labels, update_cluster};
use self::node_pools::{
    create_node_pool, delete_node_pool, set_node_pool_management, update_node_pool,
};
use self::render::{render_cluster, render_operation};
use self::validate::{find_cluster, find_pool_json, refuse_on_autopilot};

/// The discovery method id (without `container.`) of a request, or `None` when no method has this path.
pub(crate) fn method_id(req: &Req) -> Option<&'static str> {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let verb = req.verb.as_deref();
    let m = &req.method;
    match (s.as_slice(), verb) {
        (["projects", _, "locations", _, "clusters"], None) if m == Method::GET => {
            Some("projects.locations.clusters.list")
        }
        (["projects", _, "locations", _, "clusters"], None) if m == Method::POST => {
            Some("projects.locations.clusters.create")
        }
        (["projects", _, "locations", _, "clusters", _], None) => match *m {
            Method::GET => Some("projects.locations.clusters.get"),
            Method::PUT => Some("projects.locations.clusters.update"),
            Method::DELETE => Some("projects.locations.clusters.delete"),
            _ => None,
        },
        (["projects", _, "locations", _, "clusters", _], Some("setResourceLabels"))
            if m == Method::POST =>
        {
            Some("projects.locations.clusters.setResourceLabels")
        }
        (["projects", _, "locations", _, "clusters", _, "nodePools"], None) => match *m {
            Method::GET => Some("projects.locations.clusters.nodePools.list"),
            Method::POST => Some("projects.locations.clusters.nodePools.create"),
            _ => None,
        },
        (["projects", _, "locations", _, "clusters", _, "nodePools", _], None) => match *m {
            Method::GET => Some("projects.locations.clusters.nodePools.get"),
            Method::PUT => Some("projects.locations.clusters.nodePools.update"),
            Method::DELETE => Some("projects.locations.clusters.nodePools.delete"),
            _ => None,
        },
        (["projects", _, "locations", _, "clusters", _, "nodePools", _], Some("setManagement"))
            if m == Method::POST =>
        {
            Some("projects.locations.clusters.nodePools.setManagement")
        }
        (["projects", _, "locations", _, "operations"], None) if m == Method::GET => {
            Some("projects.locations.operations.list")
        }
        (["projects", _, "locations", _, "operations", _], None) if m == Method::GET => {
            Some("projects.locations.operations.get")
        }
        _ => None,
    }
}

fn permission_of(method: &str) -> &'static str {
    match method.rsplit('.').next().unwrap_or("") {
        "list" if method.contains("operations") => "container.operations.list",
        "get" if method.contains("operations") => "container.operations.get",
        "list" => "container.clusters.list",
        "get" => "container.clusters.get",
        "create" => "container.clusters.create",
        "delete" => "container.clusters.delete",
        _ => "container.clusters.update",
    }
}

/// Serves one GKE call.
pub(crate) async fn call(
    core: &Arc<Core>,
    req: &Req,
    who: &Principal,
    method: &str,
) -> GoogleApiResult {
    let project = req.segs[1].clone();
    let location = req.segs[3].clone();
    {
        let world = core.world();
        let perm = permission_of(method);
        if !permissions::allowed_on_project(&world, who, &project, perm) {
            return Err(GoogleApiError::forbidden(format!(
                "Required \"{perm}\" permission(s) for \"projects/{project}\"."
            ))
            .with_error_info(
                "IAM_PERMISSION_DENIED",
                "container.googleapis.com",
                json!({"permission": perm, "resource": format!("projects/{project}")}),
            ));
        }
    }
    match method {
        "projects.locations.clusters.list" => list_clusters(core, req, &project, &location),
        "projects.locations.clusters.get" => {
            let world = core.world();
            let c = find_cluster(&world, &project, &location, &req.segs[5])?;
            Ok(render_cluster(&world, c, req.now, &req.version))
        }
        "projects.locations.clusters.create" => {
            create_cluster(core, req, &project, &location).await
        }
        "projects.locations.clusters.update" => {
            update_cluster(core, req, &project, &location, &req.segs[5])
        }
        "projects.locations.clusters.setResourceLabels" => {
            set_labels(core, req, &project, &location, &req.segs[5])
        }
        "projects.locations.clusters.delete" => {
            delete_cluster(core, req, &project, &location, &req.segs[5])
        }
        "projects.locations.clusters.nodePools.list" => {
            let world = core.world();
            let c = find_cluster(&world, &project, &location, &req.segs[5])?;
            refuse_on_autopilot(c)?;
            let rendered = render_cluster(&world, c, req.now, &req.version);
            let pools = rendered.get("nodePools").cloned().unwrap_or(json!([]));
            Ok(json!({ "nodePools": pools }))
        }
        "projects.locations.clusters.nodePools.get" => {
            let world = core.world();
            let c = find_cluster(&world, &project, &location, &req.segs[5])?;
            refuse_on_autopilot(c)?;
            let rendered = render_cluster(&world, c, req.now, &req.version);
            find_pool_json(&rendered, &req.segs[7])
        }
        "projects.locations.clusters.nodePools.create" => {
            create_node_pool(core, req, &project, &location, &req.segs[5])
        }
        "projects.locations.clusters.nodePools.setManagement" => {
            set_node_pool_management(core, req, &project, &location, &req.segs[5], &req.segs[7])
        }
        "projects.locations.clusters.nodePools.update" => {
            update_node_pool(core, req, &project, &location, &req.segs[5], &req.segs[7])
        }
        "projects.locations.clusters.nodePools.delete" => {
            delete_node_pool(core, req, &project, &location, &req.segs[5], &req.segs[7])
        }
        "projects.locations.operations.list" => {
            let world = core.world();
            let ops: Vec<Value> = world
                .operations
                .iter()
                .filter(|o| o.project == project && (location == "-" || o.location == location))
                .map(|o| render_operation(&world, o, req.now, &req.version))
                .collect();
            Ok(json!({ "operations": ops }))
        }
        "projects.locations.operations.get" => {
            let world = core.world();
            let name = &req.segs[5];
            let op = world
                .operations
                .iter()
                .find(|o| &o.name == name && o.project == project)
                .ok_or_else(|| {
                    GoogleApiError::not_found(format!(
                        "Not found: projects/{project}/locations/{location}/operations/{name}."
                    ))
                })?;
            Ok(render_operation(&world, op, req.now, &req.version))
        }
        _ => Err(GoogleApiError::not_found("Method not found.")),
    }
}
