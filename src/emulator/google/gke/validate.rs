//! GKE's request rules shared by clusters and node pools: cluster and pool
//! lookups with GKE's not-found errors, name and location rules, zones and
//! regions, parent checks, workload-metadata modes, proto3 JSON shaping.

use serde_json::Value;

use crate::emulator::wire::{self, GoogleApiError, GoogleApiResult, check_keys, opt_str};
use crate::emulator::world::{EmulatorWorld, GkeClusterRecord, cluster_key};

pub(super) const VERSION: &str = "1.33.5-gke.1080000";

pub(super) const API: &str = "https://container.googleapis.com";

fn not_found_cluster(project: &str, location: &str, name: &str) -> GoogleApiError {
    GoogleApiError::not_found(format!(
        "Not found: projects/{project}/{}/{location}/clusters/{name}.",
        zone_word(location)
    ))
}

pub(super) fn find_cluster<'a>(
    world: &'a EmulatorWorld,
    project: &str,
    location: &str,
    name: &str,
) -> Result<&'a GkeClusterRecord, GoogleApiError> {
    world
        .clusters
        .get(&cluster_key(project, location, name))
        .ok_or_else(|| not_found_cluster(project, location, name))
}

pub(super) fn find_pool_json(cluster: &Value, pool: &str) -> GoogleApiResult {
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
pub(super) fn find_pool_mut<'a>(
    cluster: &'a mut Value,
    pool: &str,
) -> Result<&'a mut Value, GoogleApiError> {
    cluster
        .get_mut("nodePools")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| pool_not_found(pool))?
        .iter_mut()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(pool))
        .ok_or_else(|| pool_not_found(pool))
}

fn pool_not_found(pool: &str) -> GoogleApiError {
    GoogleApiError::not_found(format!("Not found: node pool \"{pool}\" not found."))
}

/// `zones` for a zone (`us-central1-a`), `locations` for a region.
pub(super) fn zone_word(location: &str) -> &'static str {
    if is_zone(location) {
        "zones"
    } else {
        "locations"
    }
}

pub(super) fn is_zone(location: &str) -> bool {
    let parts: Vec<&str> = location.split('-').collect();
    parts.len() == 3 && parts[2].len() == 1
}

pub(super) fn valid_location(location: &str) -> bool {
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

pub(super) fn name_error(field: &str, name: &str) -> GoogleApiError {
    GoogleApiError::invalid_field(
        field,
        format!(
            "Invalid value for field \"{field}\": \"{name}\". Must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,38}}[a-z0-9])?)' (only alphanumerics and '-' allowed, must start with a letter and end with an alphanumeric, and must be no longer than 40 characters)."
        ),
    )
}

pub(super) fn pool_error(project: &str, pool: &str) -> GoogleApiError {
    GoogleApiError::invalid_field(
        "cluster.workloadIdentityConfig.workloadPool",
        format!(
            "Workload pool \"{pool}\" is invalid: the only supported workload pool of project \"{project}\" is \"{project}.svc.id.goog\"."
        ),
    )
}

fn gke_metadata_without_wi(field: &str) -> GoogleApiError {
    GoogleApiError::invalid_field(
        field,
        "Workload Identity must be enabled on the cluster (workloadIdentityConfig.workloadPool) to use workload metadata mode GKE_METADATA.",
    )
}

pub(super) fn check_mode(
    value: &Value,
    field: &str,
    wi: bool,
) -> Result<Option<String>, GoogleApiError> {
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
        other => Err(GoogleApiError::invalid_field(
            &path,
            format!(
                "Invalid value at '{}' (type.googleapis.com/google.container.v1.WorkloadMetadataConfig.Mode), \"{other}\"",
                wire::snake_path(&path)
            ),
        )),
    }
}

pub(super) fn check_parent(
    body: &Value,
    field: &str,
    expected: &str,
) -> Result<(), GoogleApiError> {
    // The full resource name, or (as GKE also accepts) its last segment.
    let last = expected.rsplit('/').next().unwrap_or(expected);
    if let Some(parent) = opt_str(body, field)?
        && !parent.is_empty()
        && parent != expected
        && (field == "parent" || parent != last)
    {
        return Err(GoogleApiError::invalid_field(
            field,
            format!(
                "Invalid value for field \"{field}\": \"{parent}\" does not match the request URL ({expected})."
            ),
        ));
    }
    Ok(())
}

pub(super) fn zones_of(location: &str) -> Vec<String> {
    if is_zone(location) {
        vec![location.to_string()]
    } else {
        ["a", "b", "c"]
            .iter()
            .map(|z| format!("{location}-{z}"))
            .collect()
    }
}

pub(super) fn region_of(location: &str) -> String {
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

pub(super) fn new_etag() -> String {
    hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8])
}

pub(super) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Proto3 JSON never prints default scalars: a stored request echoes back
/// without `false`, `0`, `""` and `[]` (empty messages stay, as GKE prints them).
pub(super) fn proto3_defaults_dropped(v: &Value) -> Value {
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

pub(super) fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Whether a stored cluster is an Autopilot cluster (`autopilot.enabled`).
pub(super) fn is_autopilot(cluster: &GkeClusterRecord) -> bool {
    cluster.resource["autopilot"]["enabled"].as_bool() == Some(true)
}

/// GKE's answer to any node-pool call on an Autopilot cluster (as recorded:
/// 400 `badRequest`, for reads as well as writes): GKE manages those pools.
pub(super) fn autopilot_pools_error() -> GoogleApiError {
    GoogleApiError::invalid("Autopilot node pools cannot be accessed or modified.")
}

/// Refuses a node-pool call on an Autopilot cluster.
pub(super) fn refuse_on_autopilot(cluster: &GkeClusterRecord) -> Result<(), GoogleApiError> {
    if is_autopilot(cluster) {
        return Err(autopilot_pools_error());
    }
    Ok(())
}
