//! Node pools: create, update (pool-level fields, workload metadata mode),
//! delete, and the normalisation of a request's NodePool into the stored shape.

use serde_json::{Value, json};

use crate::emulator::core::Core;
use crate::emulator::request::Req;
use crate::emulator::wire::{
    self, GoogleApiError, GoogleApiResult, check_keys, opt_i64, opt_object, opt_str,
};
use crate::emulator::world::{OnDone, cluster_key};

use super::operations::{busy_error, new_op, respond_with_op};
use super::render::render_cluster;
use super::validate::{
    API, VERSION, check_mode, check_parent, find_cluster, find_pool_json, find_pool_mut, merge,
    name_error, proto3_defaults_dropped, refuse_on_autopilot, valid_name, zone_word, zones_of,
};

pub(super) fn default_node_config() -> Value {
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

pub(super) fn set_mode(config: &mut Value, mode: Option<&str>) {
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
pub(super) fn normalize_pool(
    input: &Value,
    field: &str,
    project: &str,
    location: &str,
    cluster: &str,
    wi: bool,
    cluster_config: &Value,
) -> Result<Value, GoogleApiError> {
    if !input.is_object() {
        return Err(wire::type_error(field, "TYPE_MESSAGE", input));
    }
    let name = opt_str(input, "name")?.unwrap_or("");
    if !valid_name(name) {
        return Err(name_error(&format!("{field}.name"), name));
    }
    let count = opt_i64(input, "initialNodeCount")?.unwrap_or(3);
    if !(0..=1000).contains(&count) {
        return Err(GoogleApiError::invalid_field(
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
        .ok_or_else(|| GoogleApiError::invalid(format!("{field} must be an object")))?;
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

pub(super) fn create_node_pool(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
) -> GoogleApiResult {
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
            return Err(GoogleApiError::invalid_field(
                "nodePool",
                "Missing required field \"nodePool\".",
            ));
        }
    };
    let key = cluster_key(project, location, cluster);
    let now = req.now;
    let mut world = core.world();
    let c = find_cluster(&world, project, location, cluster)?;
    refuse_on_autopilot(c)?;
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
        return Err(GoogleApiError::already_exists(format!(
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

pub(super) fn update_node_pool(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
    pool_name: &str,
) -> GoogleApiResult {
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
    refuse_on_autopilot(c)?;
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
        return Err(GoogleApiError::invalid("Must specify a field to update."));
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

pub(super) fn delete_node_pool(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
    pool_name: &str,
) -> GoogleApiResult {
    let key = cluster_key(project, location, cluster);
    let now = req.now;
    let mut world = core.world();
    let c = find_cluster(&world, project, location, cluster)?;
    refuse_on_autopilot(c)?;
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

/// `nodePools.setManagement`: the pool's auto-repair and auto-upgrade.
pub(super) fn set_node_pool_management(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    cluster: &str,
    pool_name: &str,
) -> GoogleApiResult {
    let body = wire::parse_body(&req.body)?;
    check_keys(
        &body,
        "",
        &[
            "clusterId",
            "management",
            "name",
            "nodePoolId",
            "projectId",
            "zone",
        ],
    )?;
    let key = cluster_key(project, location, cluster);
    let now = req.now;
    let mut world = core.world();
    let c = find_cluster(&world, project, location, cluster)?;
    refuse_on_autopilot(c)?;
    let mut resource = c.resource.clone();
    let pool = find_pool_mut(&mut resource, pool_name)?;
    let management = opt_object(&body, "management")?
        .cloned()
        .unwrap_or_default();
    pool["management"] = proto3_defaults_dropped(&Value::Object(management));
    busy_error(&world, &key, now)?;
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
        "SET_NODE_POOL_MANAGEMENT",
        OnDone::Nothing,
        now,
    );
    respond_with_op(core, req, world, &op)
}
