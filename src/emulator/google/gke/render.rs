//! Cluster and Operation resources as GKE prints them: statuses derived from
//! running operations, the v1beta1 extras, and the fields real GKE fills in
//! on every cluster.

use serde_json::{Map, Value, json};

use crate::emulator::time::rfc3339;
use crate::emulator::world::{EmulatorWorld, GkeClusterRecord, GkeOperation};

use super::validate::{API, zone_word, zones_of};

fn project_number(world: &EmulatorWorld, project: &str) -> String {
    world
        .projects
        .get(project)
        .map(|p| p.number.clone())
        .unwrap_or_else(|| project.to_string())
}

/// The Operation resource at `now`.
pub(crate) fn render_operation(
    world: &EmulatorWorld,
    op: &GkeOperation,
    now: i64,
    version: &str,
) -> Value {
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
pub(crate) fn render_cluster(
    world: &EmulatorWorld,
    c: &GkeClusterRecord,
    now: i64,
    version: &str,
) -> Value {
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
fn beta_fields(obj: &mut Map<String, Value>, c: &GkeClusterRecord) {
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

/// Fields real GKE fills in on every cluster (values from recorded responses).
pub(super) fn add_cluster_defaults(
    obj: &mut Map<String, Value>,
    project: &str,
    location: &str,
    name: &str,
) {
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
