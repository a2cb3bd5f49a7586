//! Clusters: list, create (with GKE's defaults and validation), update,
//! setResourceLabels, delete; and clusters built from a seed file.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::emulator::core::Core;
use crate::emulator::request::Req;
use crate::emulator::time::rfc3339;
use crate::emulator::wire::{
    self, GoogleApiError, GoogleApiResult, check_keys, opt_array, opt_i64, opt_object, opt_str,
};
use crate::emulator::world::{GkeClusterRecord, OnDone, cluster_key};

use super::node_pools::{default_node_config, normalize_pool, set_mode};
use super::operations::{busy_error, new_op, respond_with_op};
use super::render::{add_cluster_defaults, render_cluster, render_operation};
use super::validate::{
    API, VERSION, check_mode, check_parent, find_cluster, find_pool_mut, is_autopilot, is_zone,
    lower_first, merge, name_error, new_etag, pool_error, proto3_defaults_dropped, region_of,
    valid_location, valid_name, zone_word, zones_of,
};

pub(super) fn list_clusters(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
) -> GoogleApiResult {
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

pub(super) async fn create_cluster(
    core: &Arc<Core>,
    req: &Req,
    project: &str,
    location: &str,
) -> GoogleApiResult {
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
            return Err(GoogleApiError::invalid_field(
                "cluster",
                "Missing required field \"cluster\".",
            ));
        }
    };
    if !valid_location(location) {
        return Err(GoogleApiError::invalid_field(
            "parent",
            format!("Location \"{location}\" does not exist."),
        ));
    }
    let name = opt_str(&body, "cluster.name")?.unwrap_or("").to_string();
    if !valid_name(&name) {
        return Err(name_error("cluster.name", &name));
    }
    let autopilot = input["autopilot"]["enabled"].as_bool() == Some(true);
    if autopilot && is_zone(location) {
        return Err(GoogleApiError::invalid_field(
            "parent",
            format!("Autopilot clusters must be regional clusters: \"{location}\" is a zone."),
        ));
    }
    let mut pool = opt_str(&body, "cluster.workloadIdentityConfig.workloadPool")?
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let Some(p) = &pool
        && p != &format!("{project}.svc.id.goog")
    {
        return Err(pool_error(project, p));
    }
    // Autopilot always runs Workload Identity: the project's pool, every
    // node on the GKE metadata server.
    if autopilot {
        pool = Some(format!("{project}.svc.id.goog"));
    }
    let wi = pool.is_some();
    let mut node_config = default_node_config();
    if let Some(nc) = opt_object(&input, "nodeConfig")? {
        let nc = Value::Object(nc.clone());
        let mode = check_mode(&nc, "cluster.nodeConfig.workloadMetadataConfig", wi)?;
        merge(&mut node_config, &nc);
        set_mode(&mut node_config, mode.as_deref());
    }
    if wi && (autopilot || node_config.get("workloadMetadataConfig").is_none()) {
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
                return Err(GoogleApiError::invalid_field(
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
    if autopilot {
        for p in &mut pools {
            set_mode(&mut p["config"], Some("GKE_METADATA"));
            p["autoscaling"] = json!({"enabled": true, "autoprovisioned": true});
        }
    }
    let key = cluster_key(project, location, &name);
    let now = req.now;
    let op = {
        let mut world = core.world();
        if !world.projects.contains_key(project) {
            return Err(GoogleApiError::forbidden(format!(
                "Required \"container.clusters.create\" permission(s) for \"projects/{project}\"."
            )));
        }
        if world.clusters.contains_key(&key) {
            return Err(GoogleApiError::already_exists(format!(
                "Already exists: projects/{project}/{}/{location}/clusters/{name}.",
                zone_word(location)
            )));
        }
        let mut resource = input.clone();
        let obj = resource
            .as_object_mut()
            .ok_or_else(|| GoogleApiError::invalid("cluster must be an object"))?;
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
            GkeClusterRecord {
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

pub(super) fn update_cluster(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    name: &str,
) -> GoogleApiResult {
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
            return Err(GoogleApiError::invalid_field(
                &format!("update.{k}"),
                format!(
                    "Invalid JSON payload received. Unknown name \"{k}\" at 'update': Cannot find field."
                ),
            ));
        }
    }
    let settings: Vec<(&String, &Value)> = update.iter().filter(|(k, _)| *k != "etag").collect();
    if settings.is_empty() {
        return Err(GoogleApiError::invalid("Must specify a field to update."));
    }
    let key = cluster_key(project, location, name);
    let now = req.now;
    let mut world = core.world();
    let cluster = find_cluster(&world, project, location, name)?.clone();
    if let Some(etag) = update.get("etag").and_then(Value::as_str)
        && !etag.is_empty()
        && cluster.resource.get("etag").and_then(Value::as_str) != Some(etag)
    {
        return Err(GoogleApiError::aborted(format!(
            "Cluster \"{name}\" has been modified since the etag \"{etag}\" was read; retry with the current etag."
        )));
    }
    busy_error(&world, &key, now)?;
    let autopilot = is_autopilot(&cluster);
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
                    .ok_or_else(|| GoogleApiError::invalid("bad cluster"))?;
                if pool.is_empty() && autopilot {
                    return Err(GoogleApiError::invalid_field(
                        "update.desiredWorkloadIdentityConfig.workloadPool",
                        "Workload Identity cannot be disabled on Autopilot clusters.",
                    ));
                } else if pool.is_empty() {
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
                if autopilot {
                    return Err(super::validate::autopilot_pools_error());
                }
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
                            return Err(GoogleApiError::invalid_field(
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

pub(super) fn set_labels(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    name: &str,
) -> GoogleApiResult {
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

pub(super) fn delete_cluster(
    core: &Core,
    req: &Req,
    project: &str,
    location: &str,
    name: &str,
) -> GoogleApiResult {
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

/// A cluster built from a seed file: RUNNING, no operations.
pub(crate) fn seeded_cluster(
    project: &str,
    location: &str,
    name: &str,
    workload_pool: Option<&str>,
    pools: &[(String, i64, Option<String>)],
    now: i64,
) -> Result<GkeClusterRecord, String> {
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
    Ok(GkeClusterRecord {
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
