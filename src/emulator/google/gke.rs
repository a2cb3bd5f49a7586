//! GKE (container v1, `locations` paths): clusters, node pools, operations.
//! Mutations return Operations that move PENDING → RUNNING → DONE over the
//! configured duration (computed from timestamps); while any operation on a
//! cluster is not DONE, another mutation gets GKE's 400 FAILED_PRECONDITION.

use std::sync::{Arc, MutexGuard};

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::permissions;
use crate::emulator::core::Core;
use crate::emulator::request::Req;
use crate::emulator::time::rfc3339;
use crate::emulator::wire::{
    self, ApiError, ApiResult, check_keys, opt_array, opt_i64, opt_object, opt_str,
};
use crate::emulator::world::{Cluster, GkeOperation, OnDone, Principal, World, cluster_key};

const VERSION: &str = "1.33.5-gke.1080000";
const API: &str = "https://container.googleapis.com";

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
pub(crate) async fn call(core: &Arc<Core>, req: &Req, who: &Principal, method: &str) -> ApiResult {
    let project = req.segs[1].clone();
    let location = req.segs[3].clone();
    {
        let world = core.world();
        let perm = permission_of(method);
        if !permissions::allowed_on_project(&world, who, &project, perm) {
            return Err(ApiError::forbidden(format!(
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
            let rendered = render_cluster(&world, c, req.now, &req.version);
            let pools = rendered.get("nodePools").cloned().unwrap_or(json!([]));
            Ok(json!({ "nodePools": pools }))
        }
        "projects.locations.clusters.nodePools.get" => {
            let world = core.world();
            let c = find_cluster(&world, &project, &location, &req.segs[5])?;
            let rendered = render_cluster(&world, c, req.now, &req.version);
            find_pool_json(&rendered, &req.segs[7])
        }
        "projects.locations.clusters.nodePools.create" => {
            create_node_pool(core, req, &project, &location, &req.segs[5])
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
                    ApiError::not_found(format!(
                        "Not found: projects/{project}/locations/{location}/operations/{name}."
                    ))
                })?;
            Ok(render_operation(&world, op, req.now, &req.version))
        }
        _ => Err(ApiError::not_found("Method not found.")),
    }
}

fn not_found_cluster(project: &str, location: &str, name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Not found: projects/{project}/{}/{location}/clusters/{name}.",
        zone_word(location)
    ))
}

fn find_cluster<'a>(
    world: &'a World,
    project: &str,
    location: &str,
    name: &str,
) -> Result<&'a Cluster, ApiError> {
    world
        .clusters
        .get(&cluster_key(project, location, name))
        .ok_or_else(|| not_found_cluster(project, location, name))
}

fn find_pool_json(cluster: &Value, pool: &str) -> ApiResult {
    cluster
        .get("nodePools")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(pool))
        })
        .cloned()
        .ok_or_else(|| pool_not_found(pool))
}

/// The node pool called `pool` inside a cluster resource, for editing.
fn find_pool_mut<'a>(cluster: &'a mut Value, pool: &str) -> Result<&'a mut Value, ApiError> {
    cluster
        .get_mut("nodePools")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| pool_not_found(pool))?
        .iter_mut()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(pool))
        .ok_or_else(|| pool_not_found(pool))
}

fn pool_not_found(pool: &str) -> ApiError {
    ApiError::not_found(format!("Not found: node pool \"{pool}\" not found."))
}

/// `zones` for a zone (`us-central1-a`), `locations` for a region.
fn zone_word(location: &str) -> &'static str {
    if is_zone(location) {
        "zones"
    } else {
        "locations"
    }
}

fn is_zone(location: &str) -> bool {
    let parts: Vec<&str> = location.split('-').collect();
    parts.len() == 3 && parts[2].len() == 1
}

fn valid_location(location: &str) -> bool {
    let parts: Vec<&str> = location.split('-').collect();
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase());
    let region = parts.len() >= 2
        && word(parts[0])
        && parts[1].len() >= 2
        && parts[1].chars().last().is_some_and(|c| c.is_ascii_digit())
        && parts[1]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase());
    match parts.len() {
        2 => region,
        3 => region && parts[2].len() == 1 && word(parts[2]),
        _ => false,
    }
}

/// GKE's name rule: lowercase letters, digits and hyphens, starting with a
/// letter, ending with a letter or digit, at most 40 characters.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

fn name_error(field: &str, name: &str) -> ApiError {
    ApiError::invalid_field(
        field,
        format!(
            "Invalid value for field \"{field}\": \"{name}\". Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,38}}[a-z0-9])?)' (only alphanumerics and '-' allowed, must start with a letter and end with an alphanumeric, and must be no longer than 40 characters)."
        ),
    )
}

fn busy_error(world: &World, key: &str, now: i64) -> Result<(), ApiError> {
    if let Some(op) = world
        .operations
        .iter()
        .find(|o| o.cluster == key && o.is_active(now))
    {
        return Err(ApiError::failed_precondition(format!(
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

fn pool_error(project: &str, pool: &str) -> ApiError {
    ApiError::invalid_field(
        "cluster.workloadIdentityConfig.workloadPool",
        format!(
            "Workload pool \"{pool}\" is invalid: the only supported workload pool of project \"{project}\" is \"{project}.svc.id.goog\"."
        ),
    )
}

fn gke_metadata_without_wi(field: &str) -> ApiError {
    ApiError::invalid_field(
        field,
        "Workload Identity must be enabled on the cluster (workloadIdentityConfig.workloadPool) to use workload metadata mode GKE_METADATA.",
    )
}

fn check_mode(value: &Value, field: &str, wi: bool) -> Result<Option<String>, ApiError> {
    let path = format!("{field}.mode");
    let Some(wmc) = value.get("workloadMetadataConfig") else {
        return Ok(None);
    };
    if !wmc.is_object() {
        return Err(wire::type_error(field, "TYPE_MESSAGE", wmc));
    }
    check_keys(wmc, field, &["mode", "nodeMetadata"])?;
    let mode = opt_str(wmc, "mode")?.unwrap_or("MODE_UNSPECIFIED");
    match mode {
        "GKE_METADATA" if !wi => Err(gke_metadata_without_wi(&path)),
        "GKE_METADATA" | "GCE_METADATA" | "MODE_UNSPECIFIED" => Ok(Some(mode.to_string())),
        other => Err(ApiError::invalid_field(
            &path,
            format!(
                "Invalid value at '{}' (type.googleapis.com/google.container.v1.WorkloadMetadataConfig.Mode), \"{other}\"",
                wire::snake_path(&path)
            ),
        )),
    }
}

/// Proto3 JSON never prints default scalars: a stored request echoes back
/// without `false`, `0`, `""` and `[]` (empty messages stay, as GKE prints them).
fn proto3_defaults_dropped(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| match x {
                    Value::Bool(b) => *b,
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    Value::Null => false,
                    Value::Object(_) => true,
                })
                .map(|(k, x)| (k.clone(), proto3_defaults_dropped(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(proto3_defaults_dropped).collect()),
        other => other.clone(),
    }
}

fn default_node_config() -> Value {
    json!({
        "machineType": "e2-medium",
        "diskSizeGb": 100,
        "diskType": "pd-balanced",
        "imageType": "COS_CONTAINERD",
        "metadata": {"disable-legacy-endpoints": "true"},
        "oauthScopes": [
            "https://www.googleapis.com/auth/devstorage.read_only",
            "https://www.googleapis.com/auth/logging.write",
            "https://www.googleapis.com/auth/monitoring",
            "https://www.googleapis.com/auth/service.management.readonly",
            "https://www.googleapis.com/auth/servicecontrol",
            "https://www.googleapis.com/auth/trace.append"
        ],
        "serviceAccount": "default",
        "shieldedInstanceConfig": {"enableIntegrityMonitoring": true},
        "windowsNodeConfig": {}
    })
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn set_mode(config: &mut Value, mode: Option<&str>) {
    if let Some(obj) = config.as_object_mut() {
        match mode {
            Some("GKE_METADATA") | Some("GCE_METADATA") => {
                obj.insert("workloadMetadataConfig".into(), json!({"mode": mode}));
            }
            _ => {
                obj.remove("workloadMetadataConfig");
            }
        }
    }
}

/// A node pool as stored, from a request's NodePool.
fn normalize_pool(
    input: &Value,
    field: &str,
    project: &str,
    location: &str,
    cluster: &str,
    wi: bool,
    cluster_config: &Value,
) -> Result<Value, ApiError> {
    if !input.is_object() {
        return Err(wire::type_error(field, "TYPE_MESSAGE", input));
    }
    let name = opt_str(input, "name")?.unwrap_or("");
    if !valid_name(name) {
        return Err(name_error(&format!("{field}.name"), name));
    }
    let count = opt_i64(input, "initialNodeCount")?.unwrap_or(3);
    if !(0..=1000).contains(&count) {
        return Err(ApiError::invalid_field(
            &format!("{field}.initialNodeCount"),
            format!(
                "Invalid value for field \"{field}.initialNodeCount\": {count}. Must be between 0 and 1000."
            ),
        ));
    }
    let mut config = cluster_config.clone();
    if let Some(c) = opt_object(input, "config")? {
        let c = Value::Object(c.clone());
        let mode = check_mode(&c, &format!("{field}.config.workloadMetadataConfig"), wi)?;
        merge(&mut config, &c);
        set_mode(&mut config, mode.as_deref());
    }
    if wi && config.get("workloadMetadataConfig").is_none() {
        set_mode(&mut config, Some("GKE_METADATA"));
    }
    let mut pool = input.clone();
    let obj = pool
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid(format!("{field} must be an object")))?;
    obj.insert("config".into(), config);
    obj.insert("initialNodeCount".into(), json!(count));
    obj.entry("management")
        .or_insert(json!({"autoRepair": true, "autoUpgrade": true}));
    obj.entry("maxPodsConstraint")
        .or_insert(json!({"maxPodsPerNode": "110"}));
    obj.entry("podIpv4CidrSize").or_insert(json!(24));
    obj.entry("networkConfig").or_insert(json!({
        "enablePrivateNodes": false,
        "podIpv4CidrBlock": "10.92.0.0/14",
        "podIpv4RangeUtilization": 0.001,
        "podRange": format!("gke-{cluster}-pods-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    }));
    obj.entry("upgradeSettings")
        .or_insert(json!({"maxSurge": 1, "strategy": "SURGE"}));
    obj.entry("locations").or_insert(json!(zones_of(location)));
    obj.insert("version".into(), json!(VERSION));
    obj.insert(
        "selfLink".into(),
        json!(format!(
            "{API}/v1/projects/{project}/{}/{location}/clusters/{cluster}/nodePools/{name}",
            zone_word(location)
        )),
    );
    obj.insert("etag".into(), json!(uuid::Uuid::new_v4().to_string()));
    obj.remove("status");
    Ok(pool)
}

fn zones_of(location: &str) -> Vec<String> {
    if is_zone(location) {
        vec![location.to_string()]
    } else {
        ["a", "b", "c"]
            .iter()
            .map(|z| format!("{location}-{z}"))
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn new_op(
    world: &mut World,
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
fn respond_with_op(
    core: &Core,
    req: &Req,
    world: MutexGuard<'_, World>,
    op: &GkeOperation,
) -> ApiResult {
    let rendered = render_operation(&world, op, req.now, &req.version);
    drop(world);
    core.persist();
    Ok(rendered)
}

fn project_number(world: &World, project: &str) -> String {
    world
        .projects
        .get(project)
        .map(|p| p.number.clone())
        .unwrap_or_else(|| project.to_string())
}

/// The Operation resource at `now`.
pub(crate) fn render_operation(world: &World, op: &GkeOperation, now: i64, version: &str) -> Value {
    let number = project_number(world, &op.project);
    let base = format!(
        "{API}/{version}/projects/{number}/{}/{}",
        zone_word(&op.location),
        op.location
    );
    let cluster_name = op.cluster.rsplit('/').next().unwrap_or("");
    let mut target = format!("{base}/clusters/{cluster_name}");
    if let Some(np) = &op.node_pool {
        target.push_str(&format!("/nodePools/{np}"));
    }
    let status = op.status_at(now);
    let mut m = Map::new();
    m.insert("name".into(), json!(op.name));
    m.insert("zone".into(), json!(op.location));
    m.insert("operationType".into(), json!(op.op_type));
    m.insert("status".into(), json!(status));
    m.insert(
        "selfLink".into(),
        json!(format!("{base}/operations/{}", op.name)),
    );
    m.insert("targetLink".into(), json!(target));
    m.insert("startTime".into(), json!(rfc3339(op.start_ms)));
    if status == "DONE" {
        m.insert(
            "endTime".into(),
            json!(rfc3339(op.start_ms + op.duration_ms)),
        );
        if op.op_type == "CREATE_CLUSTER" {
            m.insert(
                "progress".into(),
                json!({"metrics": [
                    {"name": "CLUSTER_CONFIGURING", "intValue": "10"},
                    {"name": "CLUSTER_CONFIGURING_TOTAL", "intValue": "10"},
                    {"name": "CLUSTER_DEPLOYING", "intValue": "12"},
                    {"name": "CLUSTER_DEPLOYING_TOTAL", "intValue": "12"}
                ]}),
            );
        }
    }
    Value::Object(m)
}

/// The Cluster resource at `now` (statuses derived from running operations).
pub(crate) fn render_cluster(world: &World, c: &Cluster, now: i64, version: &str) -> Value {
    let key = c.key();
    let active: Vec<&GkeOperation> = world
        .operations
        .iter()
        .filter(|o| o.cluster == key && o.is_active(now))
        .collect();
    let cluster_status = if active.iter().any(|o| o.op_type == "CREATE_CLUSTER") {
        "PROVISIONING"
    } else if active.iter().any(|o| o.op_type == "DELETE_CLUSTER") {
        "STOPPING"
    } else if !active.is_empty() {
        "RECONCILING"
    } else {
        "RUNNING"
    };
    let mut out = c.resource.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.insert("status".into(), json!(cluster_status));
        if let Some(link) = obj.get("selfLink").and_then(Value::as_str) {
            let fixed = link.replacen("/v1/", &format!("/{version}/"), 1);
            obj.insert("selfLink".into(), json!(fixed));
        }
        if let Some(pools) = obj.get_mut("nodePools").and_then(Value::as_array_mut) {
            for pool in pools.iter_mut() {
                let name = pool
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let status = if cluster_status == "PROVISIONING" {
                    "PROVISIONING"
                } else if cluster_status == "STOPPING" {
                    "STOPPING"
                } else {
                    match active
                        .iter()
                        .find(|o| o.node_pool.as_deref() == Some(name.as_str()))
                        .map(|o| o.op_type.as_str())
                    {
                        Some("CREATE_NODE_POOL") => "PROVISIONING",
                        Some("DELETE_NODE_POOL") => "STOPPING",
                        Some(_) => "RECONCILING",
                        None => "RUNNING",
                    }
                };
                if let Some(p) = pool.as_object_mut() {
                    p.insert("status".into(), json!(status));
                    if let Some(link) = p.get("selfLink").and_then(Value::as_str) {
                        let fixed = link.replacen("/v1/", &format!("/{version}/"), 1);
                        p.insert("selfLink".into(), json!(fixed));
                    }
                }
            }
            let count: i64 = pools
                .iter()
                .filter_map(|p| p.get("initialNodeCount").and_then(Value::as_i64))
                .sum();
            obj.insert("currentNodeCount".into(), json!(count));
        }
        if version == "v1beta1" {
            beta_fields(obj, c);
        }
    }
    out
}

/// What the v1beta1 surface adds (as recorded): the deprecated
/// `identityNamespace`/`identityProvider` and each metadata mode's legacy
/// `nodeMetadata` twin.
fn beta_fields(obj: &mut Map<String, Value>, c: &Cluster) {
    if let Some(wi) = obj
        .get_mut("workloadIdentityConfig")
        .and_then(Value::as_object_mut)
        && let Some(pool) = wi.get("workloadPool").cloned()
    {
        wi.insert("identityNamespace".into(), pool);
        wi.insert(
            "identityProvider".into(),
            json!(format!(
                "https://container.googleapis.com/v1/projects/{}/locations/{}/clusters/{}",
                c.project, c.location, c.name
            )),
        );
    }
    let legacy = |config: &mut Value| {
        if let Some(wmc) = config
            .get_mut("workloadMetadataConfig")
            .and_then(Value::as_object_mut)
        {
            let twin = match wmc.get("mode").and_then(Value::as_str) {
                Some("GKE_METADATA") => "GKE_METADATA_SERVER",
                Some("GCE_METADATA") => "EXPOSE",
                _ => return,
            };
            wmc.insert("nodeMetadata".into(), json!(twin));
        }
    };
    if let Some(nc) = obj.get_mut("nodeConfig") {
        legacy(nc);
    }
    if let Some(pools) = obj.get_mut("nodePools").and_then(Value::as_array_mut) {
        for p in pools {
            if let Some(cfg) = p.get_mut("config") {
                legacy(cfg);
            }
        }
    }
}

fn list_clusters(core: &Core, req: &Req, project: &str, location: &str) -> ApiResult {
    let world = core.world();
    let clusters: Vec<Value> = world
        .clusters
        .values()
        .filter(|c| c.project == project && (location == "-" || c.location == location))
        .map(|c| render_cluster(&world, c, req.now, &req.version))
        .collect();
    if clusters.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({ "clusters": clusters }))
}

fn check_parent(body: &Value, field: &str, expected: &str) -> Result<(), ApiError> {
    // The full resource name, or (as GKE also accepts) its last segment.
    let last = expected.rsplit('/').next().unwrap_or(expected);
    if let Some(parent) = opt_str(body, field)?
        && !parent.is_empty()
        && parent != expected
        && (field == "parent" || parent != last)
    {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "Invalid value for field \"{field}\": \"{parent}\" does not match the request URL ({expected})."
            ),
        ));
    }
    Ok(())
}

async fn create_cluster(core: &Arc<Core>, req: &Req, project: &str, location: &str) -> ApiResult {
    let body = wire::parse_body(&req.body)?;
    check_keys(&body, "", &["cluster", "parent", "projectId", "zone"])?;
    check_parent(
        &body,
        "parent",
        &format!("projects/{project}/locations/{location}"),
    )?;
    let input = match body.get("cluster") {
        Some(Value::Object(_)) => proto3_defaults_dropped(&body["cluster"]),
        Some(other) => return Err(wire::type_error("cluster", "TYPE_MESSAGE", other)),
        None => {
            return Err(ApiError::invalid_field(
                "cluster",
                "Missing required field \"cluster\".",
            ));
        }
    };
    if !valid_location(location) {
        return Err(ApiError::invalid_field(
            "parent",
            format!("Location \"{location}\" does not exist."),
        ));
    }
    let name = opt_str(&body, "cluster.name")?.unwrap_or("").to_string();
    if !valid_name(&name) {
        return Err(name_error("cluster.name", &name));
    }
    let pool = opt_str(&body, "cluster.workloadIdentityConfig.workloadPool")?
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let Some(p) = &pool
        && p != &format!("{project}.svc.id.goog")
    {
        return Err(pool_error(project, p));
    }
    let wi = pool.is_some();
    let mut node_config = default_node_config();
    if let Some(nc) = opt_object(&input, "nodeConfig")? {
        let nc = Value::Object(nc.clone());
        let mode = check_mode(&nc, "cluster.nodeConfig.workloadMetadataConfig", wi)?;
        merge(&mut node_config, &nc);
        set_mode(&mut node_config, mode.as_deref());
    }
    if wi && node_config.get("workloadMetadataConfig").is_none() {
        set_mode(&mut node_config, Some("GKE_METADATA"));
    }
    let mut pools = Vec::new();
    if let Some(ps) = opt_array(&input, "nodePools")? {
        for (i, p) in ps.iter().enumerate() {
            let np = normalize_pool(
                p,
                &format!("cluster.nodePools[{i}]"),
                project,
                location,
                &name,
                wi,
                &node_config,
            )?;
            if pools.iter().any(|x: &Value| x["name"] == np["name"]) {
                return Err(ApiError::invalid_field(
                    &format!("cluster.nodePools[{i}].name"),
                    format!(
                        "Node pool names must be unique; \"{}\" is repeated.",
                        np["name"].as_str().unwrap_or("")
                    ),
                ));
            }
            pools.push(np);
        }
    }
    if pools.is_empty() {
        let count = opt_i64(&input, "initialNodeCount")?.unwrap_or(3);
        let np = json!({"name": "default-pool", "initialNodeCount": count});
        pools.push(normalize_pool(
            &np,
            "cluster.nodePools[0]",
            project,
            location,
            &name,
            wi,
            &node_config,
        )?);
    }
    let key = cluster_key(project, location, &name);
    let now = req.now;
    let op = {
        let mut world = core.world();
        if !world.projects.contains_key(project) {
            return Err(ApiError::forbidden(format!(
                "Required \"container.clusters.create\" permission(s) for \"projects/{project}\"."
            )));
        }
        if world.clusters.contains_key(&key) {
            return Err(ApiError::already_exists(format!(
                "Already exists: projects/{project}/{}/{location}/clusters/{name}.",
                zone_word(location)
            )));
        }
        let mut resource = input.clone();
        let obj = resource
            .as_object_mut()
            .ok_or_else(|| ApiError::invalid("cluster must be an object"))?;
        obj.remove("initialNodeCount");
        obj.remove("status");
        obj.insert("name".into(), json!(name));
        obj.insert("location".into(), json!(location));
        obj.insert("zone".into(), json!(location));
        obj.insert("locations".into(), json!(zones_of(location)));
        obj.insert(
            "selfLink".into(),
            json!(format!(
                "{API}/v1/projects/{project}/{}/{location}/clusters/{name}",
                zone_word(location)
            )),
        );
        obj.insert(
            "id".into(),
            json!(hex::encode(uuid::Uuid::new_v4().as_bytes())),
        );
        obj.insert("createTime".into(), json!(rfc3339(now)));
        obj.insert("currentMasterVersion".into(), json!(VERSION));
        obj.insert("currentNodeVersion".into(), json!(VERSION));
        obj.insert("initialClusterVersion".into(), json!(VERSION));
        obj.insert("endpoint".into(), json!(""));
        let mut master_auth = json!({"clientCertificateConfig": {}});
        if let Some(ma) = obj.get("masterAuth") {
            merge(&mut master_auth, ma);
        }
        obj.insert("masterAuth".into(), master_auth);
        obj.entry("network").or_insert(json!("default"));
        obj.entry("subnetwork").or_insert(json!("default"));
        obj.insert(
            "networkConfig".into(),
            json!({"network": format!("projects/{project}/global/networks/default"),
                   "subnetwork": format!("projects/{project}/regions/{}/subnetworks/default", region_of(location))}),
        );
        obj.entry("clusterIpv4Cidr")
            .or_insert(json!("10.92.0.0/14"));
        obj.entry("servicesIpv4Cidr")
            .or_insert(json!("34.118.224.0/20"));
        obj.entry("loggingService")
            .or_insert(json!("logging.googleapis.com/kubernetes"));
        obj.entry("monitoringService")
            .or_insert(json!("monitoring.googleapis.com/kubernetes"));
        obj.entry("releaseChannel")
            .or_insert(json!({"channel": "REGULAR"}));
        add_cluster_defaults(obj, project, location, &name);
        obj.insert("nodeConfig".into(), node_config);
        obj.insert("nodePools".into(), Value::Array(pools));
        obj.insert("etag".into(), json!(new_etag()));
        obj.insert("labelFingerprint".into(), json!("a9dc16a7"));
        match &pool {
            Some(p) => {
                obj.insert("workloadIdentityConfig".into(), json!({"workloadPool": p}));
            }
            None => {
                obj.remove("workloadIdentityConfig");
            }
        }
        if wi && let Some(p) = world.projects.get_mut(project) {
            p.workload_pool_exists = true;
        }
        world.clusters.insert(
            key.clone(),
            Cluster {
                project: project.to_string(),
                location: location.to_string(),
                name: name.clone(),
                resource,
            },
        );
        new_op(
            &mut world,
            core,
            &key,
            project,
            location,
            None,
            "CREATE_CLUSTER",
            OnDone::Nothing,
            now,
        )
    };
    // The control plane: its own Kubernetes API on a loopback TLS port. The
    // operation's clock starts once it is up (generating its keys takes a
    // moment), so a create is never DONE before it is answered.
    core.start_cluster_api(&key).await;
    let started = core.now_ms().max(now);
    let mut world = core.world();
    let mut op = op;
    if let Some(o) = world.operations.iter_mut().find(|o| o.name == op.name) {
        o.start_ms = started;
        op = o.clone();
    }
    let rendered = render_operation(&world, &op, started, &req.version);
    drop(world);
    core.persist();
    Ok(rendered)
}

/// Fields real GKE fills in on every cluster (values from recorded responses).
fn add_cluster_defaults(obj: &mut Map<String, Value>, project: &str, location: &str, name: &str) {
    let defaults = json!({
        "addonsConfig": {
            "gcePersistentDiskCsiDriverConfig": {"enabled": true},
            "kubernetesDashboard": {"disabled": true},
            "networkPolicyConfig": {"disabled": true}
        },
        "autoscaling": {
            "autoprovisioningNodePoolDefaults": {
                "management": {"autoRepair": true, "autoUpgrade": true},
                "oauthScopes": ["https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/cloud-platform"],
                "upgradeSettings": {"strategy": "SURGE"}
            },
            "autoscalingProfile": "BALANCED"
        },
        "binaryAuthorization": {},
        "databaseEncryption": {"currentState": "CURRENT_STATE_DECRYPTED", "state": "DECRYPTED"},
        "defaultMaxPodsConstraint": {"maxPodsPerNode": "110"},
        "enterpriseConfig": {"clusterTier": "STANDARD"},
        "instanceGroupUrls": [format!(
            "https://www.googleapis.com/compute/v1/projects/{project}/zones/{}/instanceGroupManagers/gke-{name}-default-pool-grp",
            zones_of(location).first().cloned().unwrap_or_default()
        )],
        "loggingConfig": {"componentConfig": {"enableComponents": ["SYSTEM_COMPONENTS", "WORKLOADS"]}},
        "masterAuthorizedNetworksConfig": {"gcpPublicCidrsAccessEnabled": true},
        "monitoringConfig": {
            "advancedDatapathObservabilityConfig": {},
            "componentConfig": {"enableComponents": ["SYSTEM_COMPONENTS"]},
            "managedPrometheusConfig": {"enabled": true}
        },
        "securityPostureConfig": {"mode": "BASIC", "vulnerabilityMode": "VULNERABILITY_MODE_UNSPECIFIED"}
    });
    if let Value::Object(d) = defaults {
        for (k, v) in d {
            obj.entry(k).or_insert(v);
        }
    }
}

fn region_of(location: &str) -> String {
    if is_zone(location) {
        location
            .rsplit_once('-')
            .map(|x| x.0)
            .unwrap_or(location)
            .to_string()
    } else {
        location.to_string()
    }
}

fn new_etag() -> String {
    hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8])
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn update_cluster(core: &Core, req: &Req, project: &str, location: &str, name: &str) -> ApiResult {
    let body = wire::parse_body(&req.body)?;
    check_keys(
        &body,
        "",
        &["clusterId", "name", "projectId", "update", "zone"],
    )?;
    check_parent(
        &body,
        "name",
        &format!("projects/{project}/locations/{location}/clusters/{name}"),
    )?;
    let update = match body.get("update") {
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(wire::type_error("update", "TYPE_MESSAGE", other)),
        None => Map::new(),
    };
    for k in update.keys() {
        let known = k.starts_with("desired")
            || matches!(
                k.as_str(),
                "etag"
                    | "additionalPodRangesConfig"
                    | "removedAdditionalPodRangesConfig"
                    | "enableK8sBetaApis"
                    | "gkeAutoUpgradeConfig"
                    | "userManagedKeysConfig"
            );
        if !known {
            return Err(ApiError::invalid_field(
                &format!("update.{k}"),
                format!(
                    "Invalid JSON payload received. Unknown name \"{k}\" at 'update': Cannot find field."
                ),
            ));
        }
    }
    let settings: Vec<(&String, &Value)> = update.iter().filter(|(k, _)| *k != "etag").collect();
    if settings.is_empty() {
        return Err(ApiError::invalid("Must specify a field to update."));
    }
    let key = cluster_key(project, location, name);
    let now = req.now;
    let mut world = core.world();
    let cluster = find_cluster(&world, project, location, name)?.clone();
    if let Some(etag) = update.get("etag").and_then(Value::as_str)
        && !etag.is_empty()
        && cluster.resource.get("etag").and_then(Value::as_str) != Some(etag)
    {
        return Err(ApiError::aborted(format!(
            "Cluster \"{name}\" has been modified since the etag \"{etag}\" was read; retry with the current etag."
        )));
    }
    busy_error(&world, &key, now)?;
    let mut resource = cluster.resource.clone();
    let mut target_pool: Option<String> = None;
    let pool_id = update
        .get("desiredNodePoolId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut enable_pool = false;
    for (k, v) in &settings {
        match k.as_str() {
            "desiredWorkloadIdentityConfig" => {
                if !v.is_object() {
                    return Err(wire::type_error(
                        "update.desiredWorkloadIdentityConfig",
                        "TYPE_MESSAGE",
                        v,
                    ));
                }
                check_keys(v, "update.desiredWorkloadIdentityConfig", &["workloadPool"])?;
                let pool = opt_str(v, "workloadPool")?.unwrap_or("");
                let obj = resource
                    .as_object_mut()
                    .ok_or_else(|| ApiError::invalid("bad cluster"))?;
                if pool.is_empty() {
                    obj.remove("workloadIdentityConfig");
                } else if pool != format!("{project}.svc.id.goog") {
                    return Err(pool_error(project, pool));
                } else {
                    obj.insert(
                        "workloadIdentityConfig".into(),
                        json!({"workloadPool": pool}),
                    );
                    enable_pool = true;
                }
            }
            "desiredNodePoolId" => {}
            k if k.starts_with("desiredNodePool")
                && !k.starts_with("desiredNodePoolAutoConfig")
                || k == "desiredNodeVersion"
                || k == "desiredImageType" =>
            {
                let pid = match &pool_id {
                    Some(p) => p.clone(),
                    None => {
                        // GKE applies node settings without an id to the only pool.
                        let pools = resource["nodePools"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        if pools.len() == 1 {
                            pools[0]["name"].as_str().unwrap_or("").to_string()
                        } else {
                            return Err(ApiError::invalid_field(
                                "update.desiredNodePoolId",
                                "Missing required field \"update.desiredNodePoolId\": the cluster has more than one node pool.",
                            ));
                        }
                    }
                };
                let pool = find_pool_mut(&mut resource, &pid)?;
                match k {
                    "desiredNodeVersion" => pool["version"] = (*v).clone(),
                    "desiredImageType" => pool["config"]["imageType"] = (*v).clone(),
                    _ => {
                        let field = lower_first(k.trim_start_matches("desiredNodePool"));
                        pool[field.as_str()] = (*v).clone();
                    }
                }
                target_pool = Some(pid);
            }
            "desiredMasterVersion" => {
                resource["currentMasterVersion"] = (*v).clone();
            }
            "desiredAddonsConfig" => {
                let mut cur = resource.get("addonsConfig").cloned().unwrap_or(json!({}));
                merge(&mut cur, v);
                let cur = proto3_defaults_dropped(&cur);
                resource["addonsConfig"] = cur;
            }
            other => {
                let field = lower_first(other.trim_start_matches("desired"));
                if field.is_empty() {
                    continue;
                }
                resource[field.as_str()] = proto3_defaults_dropped(v);
            }
        }
    }
    resource["etag"] = json!(new_etag());
    if let Some(c) = world.clusters.get_mut(&key) {
        c.resource = resource;
    }
    if enable_pool && let Some(p) = world.projects.get_mut(project) {
        p.workload_pool_exists = true;
    }
    let op = new_op(
        &mut world,
        core,
        &key,
        project,
        location,
        target_pool.as_deref(),
        "UPDATE_CLUSTER",
        OnDone::Nothing,
        now,
    );
    // Cluster updates start RUNNING even when they target a pool.
    if let Some(o) = world.operations.last_mut() {
        o.starts_pending = false;
    }
    let mut rendered = render_operation(&world, &op, now, &req.version);
    rendered["status"] = json!("RUNNING");
    drop(world);
    core.persist();
    Ok(rendered)
}

fn set_labels(core: &Core, req: &Req, project: &str, location: &str, name: &str) -> ApiResult {
    let body = wire::parse_body(&req.body)?;
    check_keys(
        &body,
        "",
        &[
            "resourceLabels",
            "labelFingerprint",
            "name",
            "projectId",
            "zone",
            "clusterId",
        ],
    )?;
    let labels = opt_object(&body, "resourceLabels")?
        .cloned()
        .unwrap_or_default();
    let key = cluster_key(project, location, name);
    let now = req.now;
    let mut world = core.world();
    find_cluster(&world, project, location, name)?;
    busy_error(&world, &key, now)?;
    if let Some(c) = world.clusters.get_mut(&key) {
        c.resource["resourceLabels"] = Value::Object(labels);
        c.resource["labelFingerprint"] = json!(new_etag());
    }
    let op = new_op(
        &mut world,
        core,
        &key,
        project,
        location,
        None,
        "UPDATE_CLUSTER",
        OnDone::Nothing,
        now,
    );
    respond_with_op(core, req, world, &op)
}

fn delete_cluster(core: &Core, req: &Req, project: &str, location: &str, name: &str) -> ApiResult {
    let key = cluster_key(project, location, name);
    let now = req.now;
    let mut world = core.world();
    find_cluster(&world, project, location, name)?;
    busy_error(&world, &key, now)?;
    let op = new_op(
        &mut world,
        core,
        &key,
        project,
        location,
        None,
        "DELETE_CLUSTER",
        OnDone::DeleteCluster,
        now,
    );
    respond_with_op(core, req, world, &op)
}

fn create_node_pool(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
) -> ApiResult {
    let body = wire::parse_body(&req.body)?;
    check_keys(
        &body,
        "",
        &["clusterId", "nodePool", "parent", "projectId", "zone"],
    )?;
    check_parent(
        &body,
        "parent",
        &format!("projects/{project}/locations/{location}/clusters/{cluster}"),
    )?;
    let input = match body.get("nodePool") {
        Some(v @ Value::Object(_)) => proto3_defaults_dropped(v),
        Some(other) => return Err(wire::type_error("nodePool", "TYPE_MESSAGE", other)),
        None => {
            return Err(ApiError::invalid_field(
                "nodePool",
                "Missing required field \"nodePool\".",
            ));
        }
    };
    let key = cluster_key(project, location, cluster);
    let now = req.now;
    let mut world = core.world();
    let c = find_cluster(&world, project, location, cluster)?;
    let wi = c.workload_pool().is_some();
    let base_config = c
        .resource
        .get("nodeConfig")
        .cloned()
        .unwrap_or_else(default_node_config);
    let mut base_config = base_config;
    set_mode(&mut base_config, None);
    let pool = normalize_pool(
        &input,
        "nodePool",
        project,
        location,
        cluster,
        wi,
        &base_config,
    )?;
    let pname = pool["name"].as_str().unwrap_or("").to_string();
    if c.resource["nodePools"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == pool["name"]))
    {
        return Err(ApiError::already_exists(format!(
            "Already exists: projects/{project}/{}/{location}/clusters/{cluster}/nodePools/{pname}.",
            zone_word(location)
        )));
    }
    busy_error(&world, &key, now)?;
    if let Some(c) = world.clusters.get_mut(&key) {
        match c
            .resource
            .get_mut("nodePools")
            .and_then(Value::as_array_mut)
        {
            Some(ps) => ps.push(pool),
            None => c.resource["nodePools"] = json!([pool]),
        }
    }
    let op = new_op(
        &mut world,
        core,
        &key,
        project,
        location,
        Some(&pname),
        "CREATE_NODE_POOL",
        OnDone::Nothing,
        now,
    );
    respond_with_op(core, req, world, &op)
}

const POOL_LEVEL: &[&str] = &[
    "locations",
    "upgradeSettings",
    "queuedProvisioning",
    "maintenancePolicy",
];
const IDENTITY: &[&str] = &[
    "name",
    "nodePoolId",
    "projectId",
    "zone",
    "clusterId",
    "etag",
];

fn update_node_pool(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
    pool_name: &str,
) -> ApiResult {
    let body = wire::parse_body(&req.body)?;
    check_keys(
        &body,
        "",
        &[
            "accelerators",
            "bootDisk",
            "clusterId",
            "confidentialNodes",
            "consolidationDelay",
            "containerdConfig",
            "diskSizeGb",
            "diskType",
            "etag",
            "fastSocket",
            "flexStart",
            "gcfsConfig",
            "gvnic",
            "image",
            "imageProject",
            "imageType",
            "kubeletConfig",
            "labels",
            "linuxNodeConfig",
            "locations",
            "loggingConfig",
            "machineType",
            "maintenancePolicy",
            "maxRunDuration",
            "name",
            "nodeConfigUpdateMode",
            "nodeDrainConfig",
            "nodeNetworkConfig",
            "nodePoolId",
            "nodeVersion",
            "projectId",
            "queuedProvisioning",
            "resourceLabels",
            "resourceManagerTags",
            "storagePools",
            "tags",
            "taintConfig",
            "taints",
            "upgradeSettings",
            "windowsNodeConfig",
            "workloadMetadataConfig",
            "zone",
        ],
    )?;
    check_parent(
        &body,
        "name",
        &format!(
            "projects/{project}/locations/{location}/clusters/{cluster}/nodePools/{pool_name}"
        ),
    )?;
    let key = cluster_key(project, location, cluster);
    let now = req.now;
    let mut world = core.world();
    let c = find_cluster(&world, project, location, cluster)?;
    let wi = c.workload_pool().is_some();
    let mut resource = c.resource.clone();
    let pool = find_pool_mut(&mut resource, pool_name)?;
    let mode = check_mode(&body, "workloadMetadataConfig", wi)?;
    let obj = body.as_object().cloned().unwrap_or_default();
    let settings: Vec<(&String, &Value)> = obj
        .iter()
        .filter(|(k, _)| !IDENTITY.contains(&k.as_str()))
        .collect();
    if settings.is_empty() {
        return Err(ApiError::invalid("Must specify a field to update."));
    }
    busy_error(&world, &key, now)?;
    for (k, v) in settings {
        match k.as_str() {
            "workloadMetadataConfig" => set_mode(&mut pool["config"], mode.as_deref()),
            "nodeVersion" => pool["version"] = v.clone(),
            "nodeNetworkConfig" => pool["networkConfig"] = v.clone(),
            // Wrapper messages in the request, plain fields in NodeConfig.
            "taints" => pool["config"]["taints"] = v.get("taints").cloned().unwrap_or(json!([])),
            "labels" => pool["config"]["labels"] = v.get("labels").cloned().unwrap_or(json!({})),
            "tags" => pool["config"]["tags"] = v.get("tags").cloned().unwrap_or(json!([])),
            "resourceLabels" => {
                pool["config"]["resourceLabels"] = v.get("labels").cloned().unwrap_or(json!({}))
            }
            "resourceManagerTags" => pool["config"]["resourceManagerTags"] = v.clone(),
            k if POOL_LEVEL.contains(&k) => pool[k] = v.clone(),
            k => pool["config"][k] = v.clone(),
        }
    }
    pool["etag"] = json!(uuid::Uuid::new_v4().to_string());
    if let Some(c) = world.clusters.get_mut(&key) {
        c.resource = resource;
    }
    let op = new_op(
        &mut world,
        core,
        &key,
        project,
        location,
        Some(pool_name),
        "UPGRADE_NODES",
        OnDone::Nothing,
        now,
    );
    respond_with_op(core, req, world, &op)
}

fn delete_node_pool(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
    pool_name: &str,
) -> ApiResult {
    let key = cluster_key(project, location, cluster);
    let now = req.now;
    let mut world = core.world();
    let c = find_cluster(&world, project, location, cluster)?;
    let rendered = render_cluster(&world, c, now, &req.version);
    find_pool_json(&rendered, pool_name)?;
    busy_error(&world, &key, now)?;
    let op = new_op(
        &mut world,
        core,
        &key,
        project,
        location,
        Some(pool_name),
        "DELETE_NODE_POOL",
        OnDone::DeleteNodePool(pool_name.to_string()),
        now,
    );
    respond_with_op(core, req, world, &op)
}

/// Applies the effects of finished operations; returns the keys of deleted clusters.
pub(crate) fn finish_operations(world: &mut World, now: i64) -> Vec<String> {
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

/// A cluster built from a seed file: RUNNING, no operations.
pub(crate) fn seeded_cluster(
    project: &str,
    location: &str,
    name: &str,
    workload_pool: Option<&str>,
    pools: &[(String, i64, Option<String>)],
    now: i64,
) -> Result<Cluster, String> {
    if !valid_location(location) {
        return Err(format!(
            "cluster {name}: location \"{location}\" is not a zone or region"
        ));
    }
    if !valid_name(name) {
        return Err(format!("cluster name \"{name}\" is not a valid GKE name"));
    }
    if let Some(p) = workload_pool
        && p != format!("{project}.svc.id.goog")
    {
        return Err(format!(
            "cluster {name}: workloadPool must be \"{project}.svc.id.goog\""
        ));
    }
    let wi = workload_pool.is_some();
    let mut node_config = default_node_config();
    if wi {
        set_mode(&mut node_config, Some("GKE_METADATA"));
    }
    let mut np = Vec::new();
    for (pname, count, mode) in pools {
        if mode.as_deref() == Some("GKE_METADATA") && !wi {
            return Err(format!(
                "cluster {name}, node pool {pname}: GKE_METADATA needs the cluster's workloadPool"
            ));
        }
        let mut input = json!({"name": pname, "initialNodeCount": count});
        if let Some(m) = mode {
            input["config"] = json!({"workloadMetadataConfig": {"mode": m}});
        }
        let mut base = node_config.clone();
        set_mode(&mut base, None);
        np.push(
            normalize_pool(&input, "nodePool", project, location, name, wi, &base)
                .map_err(|e| format!("cluster {name}, node pool {pname}: {}", e.message))?,
        );
    }
    let mut resource = json!({
        "name": name,
        "location": location,
        "zone": location,
        "locations": zones_of(location),
        "selfLink": format!("{API}/v1/projects/{project}/{}/{location}/clusters/{name}", zone_word(location)),
        "id": hex::encode(uuid::Uuid::new_v4().as_bytes()),
        "createTime": rfc3339(now),
        "currentMasterVersion": VERSION,
        "currentNodeVersion": VERSION,
        "initialClusterVersion": VERSION,
        "endpoint": "",
        "masterAuth": {"clientCertificateConfig": {}},
        "network": "default",
        "subnetwork": "default",
        "networkConfig": {"network": format!("projects/{project}/global/networks/default"),
                          "subnetwork": format!("projects/{project}/regions/{}/subnetworks/default", region_of(location))},
        "clusterIpv4Cidr": "10.92.0.0/14",
        "servicesIpv4Cidr": "34.118.224.0/20",
        "loggingService": "logging.googleapis.com/kubernetes",
        "monitoringService": "monitoring.googleapis.com/kubernetes",
        "releaseChannel": {"channel": "REGULAR"},
        "nodeConfig": node_config,
        "nodePools": np,
        "etag": new_etag(),
        "labelFingerprint": "a9dc16a7"
    });
    if let Some(p) = workload_pool {
        resource["workloadIdentityConfig"] = json!({"workloadPool": p});
    }
    if let Some(obj) = resource.as_object_mut() {
        add_cluster_defaults(obj, project, location, name);
    }
    Ok(Cluster {
        project: project.to_string(),
        location: location.to_string(),
        name: name.to_string(),
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_locations() {
        assert!(valid_name("alpha"));
        assert!(valid_name("c-1"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("abc-"));
        assert!(!valid_name("Abc"));
        assert!(valid_location("us-central1-a"));
        assert!(valid_location("europe-west1"));
        assert!(!valid_location("nowhere"));
        assert_eq!(zone_word("us-central1-a"), "zones");
        assert_eq!(zone_word("us-central1"), "locations");
        assert_eq!(region_of("europe-west1-b"), "europe-west1");
    }

    #[test]
    fn seeded_cluster_modes() {
        let c = seeded_cluster(
            "p",
            "us-central1-a",
            "c",
            Some("p.svc.id.goog"),
            &[
                ("a".into(), 1, None),
                ("b".into(), 1, Some("GCE_METADATA".into())),
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            c.resource["nodePools"][0]["config"]["workloadMetadataConfig"]["mode"],
            "GKE_METADATA"
        );
        assert_eq!(
            c.resource["nodePools"][1]["config"]["workloadMetadataConfig"]["mode"],
            "GCE_METADATA"
        );
        assert!(
            seeded_cluster(
                "p",
                "us-central1-a",
                "c",
                None,
                &[("a".into(), 1, Some("GKE_METADATA".into()))],
                0
            )
            .is_err()
        );
    }
}
