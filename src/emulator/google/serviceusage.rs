//! Service Usage (services get/list/enable/disable/batchGet, `operations/...`)
//! and the catalogue of services the emulator knows.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::crm::find_project;
use super::permissions;
use crate::emulator::core::Core;
use crate::emulator::request::Req;
use crate::emulator::wire::{
    self, GoogleApiError, GoogleApiResult, check_keys, opt_array, parse_body,
};
use crate::emulator::world::{EmulatorWorld, Principal, ProjectRecord};

/// Services the emulator knows, with their titles.
pub(crate) const CATALOG: &[(&str, &str)] = &[
    ("container.googleapis.com", "Kubernetes Engine API"),
    (
        "iam.googleapis.com",
        "Identity and Access Management (IAM) API",
    ),
    (
        "iamcredentials.googleapis.com",
        "IAM Service Account Credentials API",
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "Cloud Resource Manager API",
    ),
    ("serviceusage.googleapis.com", "Service Usage API"),
    ("sts.googleapis.com", "Security Token Service API"),
    ("compute.googleapis.com", "Compute Engine API"),
    ("storage.googleapis.com", "Cloud Storage API"),
    ("logging.googleapis.com", "Cloud Logging API"),
    ("monitoring.googleapis.com", "Cloud Monitoring API"),
    ("artifactregistry.googleapis.com", "Artifact Registry API"),
    ("secretmanager.googleapis.com", "Secret Manager API"),
    ("pubsub.googleapis.com", "Cloud Pub/Sub API"),
    ("cloudapis.googleapis.com", "Google Cloud APIs"),
    ("cloudbilling.googleapis.com", "Cloud Billing API"),
];

/// The service's title; any well-formed `NAME.googleapis.com` exists (the
/// real catalogue is far larger than the emulator's list of titles).
pub(crate) fn title(service: &str) -> Option<&str> {
    if let Some((_, t)) = CATALOG.iter().find(|(s, _)| *s == service) {
        return Some(t);
    }
    let name = service.strip_suffix(".googleapis.com")?;
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then_some(service)
}

/// Service Usage method id.
pub(crate) fn method_id(req: &Req) -> Option<&'static str> {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (s.as_slice(), req.verb.as_deref(), &req.method) {
        (["projects", _, "services"], None, &Method::GET) => Some("services.list"),
        (["projects", _, "services"], Some("batchEnable"), &Method::POST) => {
            Some("services.batchEnable")
        }
        (["projects", _, "services"], Some("batchGet"), &Method::GET) => Some("services.batchGet"),
        (["projects", _, "services", _], None, &Method::GET) => Some("services.get"),
        (["projects", _, "services", _], Some("enable"), &Method::POST) => Some("services.enable"),
        (["projects", _, "services", _], Some("disable"), &Method::POST) => {
            Some("services.disable")
        }
        (["operations", _], None, &Method::GET) => Some("operations.get"),
        _ => None,
    }
}

fn render_service(p: &ProjectRecord, service: &str) -> Value {
    let enabled = p.services.contains(service);
    // As recorded: no `config`, and `parent` only while enabled.
    let mut v = json!({
        "name": format!("projects/{}/services/{service}", p.number),
        "state": if enabled { "ENABLED" } else { "DISABLED" },
    });
    if enabled {
        v["parent"] = json!(format!("projects/{}", p.number));
    }
    v
}

fn su_denied(permission: &str, resource: &str) -> GoogleApiError {
    GoogleApiError::forbidden(format!(
        "Permission denied to {permission} on resource {resource} (or it may not exist)."
    ))
    .with_error_info(
        "AUTH_PERMISSION_DENIED",
        "serviceusage.googleapis.com",
        json!({"permission": permission}),
    )
}

fn unknown_service(service: &str) -> GoogleApiError {
    GoogleApiError::forbidden(format!(
        "Not found or permission denied for service(s): {service}."
    ))
    .with_error_info(
        "SERVICE_CONFIG_NOT_FOUND_OR_PERMISSION_DENIED",
        "serviceusage.googleapis.com",
        json!({"services": service}),
    )
}

/// Serves one Service Usage call.
pub(crate) fn call(core: &Arc<Core>, req: &Req, who: &Principal, method: &str) -> GoogleApiResult {
    if method == "operations.get" {
        let name = format!("operations/{}", req.segs[1]);
        let world = core.world();
        return world
            .su_operations
            .get(&name)
            .cloned()
            .ok_or_else(|| GoogleApiError::not_found(format!("Operation {name} not found.")));
    }
    let id = req.segs[1].clone();
    let perm = match method {
        "services.list" => "serviceusage.services.list",
        "services.get" | "services.batchGet" => "serviceusage.services.get",
        "services.disable" => "serviceusage.services.disable",
        _ => "serviceusage.services.enable",
    };
    let mut world = core.world();
    let p = find_project(&world, &id).ok_or_else(|| su_denied(perm, &format!("projects/{id}")))?;
    let pid = p.id.clone();
    if !permissions::allowed_on_project(&world, who, &pid, perm) {
        return Err(su_denied(perm, &format!("projects/{id}")));
    }
    match method {
        "services.get" => {
            let service = &req.segs[3];
            if title(service).is_none() {
                return Err(unknown_service(service));
            }
            Ok(render_service(p, service))
        }
        "services.batchGet" => {
            let names: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| k == "names")
                .map(|(_, v)| v.rsplit('/').next().unwrap_or("").to_string())
                .collect();
            let mut out = Vec::new();
            for n in names {
                if title(&n).is_none() {
                    return Err(unknown_service(&n));
                }
                out.push(render_service(p, &n));
            }
            Ok(json!({ "services": out }))
        }
        "services.list" => {
            let filter = req.query_get("filter").unwrap_or("");
            let want = if filter.contains("ENABLED") && !filter.contains("DISABLED") {
                Some(true)
            } else if filter.contains("DISABLED") {
                Some(false)
            } else {
                None
            };
            let services: Vec<Value> = CATALOG
                .iter()
                .filter(|(s, _)| want.is_none_or(|w| p.services.contains(*s) == w))
                .map(|(s, _)| render_service(p, s))
                .collect();
            if services.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "services": services }))
        }
        "services.enable" | "services.disable" | "services.batchEnable" => {
            let body = parse_body(&req.body)?;
            let services: Vec<String> = if method == "services.batchEnable" {
                check_keys(&body, "", &["serviceIds"])?;
                let ids = opt_array(&body, "serviceIds")?.cloned().unwrap_or_default();
                if ids.is_empty() {
                    return Err(GoogleApiError::invalid_field(
                        "service_ids",
                        "Missing required field \"serviceIds\".",
                    ));
                }
                ids.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            wire::type_error(&format!("serviceIds[{i}]"), "TYPE_STRING", v)
                        })
                    })
                    .collect::<Result<_, _>>()?
            } else {
                check_keys(
                    &body,
                    "",
                    &["disableDependentServices", "checkIfServiceHasUsage"],
                )?;
                vec![req.segs[3].clone()]
            };
            for s in &services {
                if title(s).is_none() {
                    return Err(unknown_service(s));
                }
            }
            let enable = method != "services.disable";
            let number = p.number.clone();
            world.counter += 1;
            let op_name = format!("operations/acat.p2-{number}-{}", uuid::Uuid::new_v4());
            let proj = world
                .projects
                .get_mut(&pid)
                .ok_or_else(|| su_denied(perm, &format!("projects/{id}")))?;
            for s in &services {
                if enable {
                    proj.services.insert(s.clone());
                } else {
                    proj.services.remove(s);
                }
            }
            // Operation results name the parent whatever the new state (as recorded).
            let rendered: Vec<Value> = services
                .iter()
                .map(|s| {
                    let mut v = render_service(proj, s);
                    v["parent"] = json!(format!("projects/{}", proj.number));
                    v
                })
                .collect();
            let (meta, response) = match method {
                "services.batchEnable" => (
                    json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata"}),
                    json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse",
                           "services": rendered}),
                ),
                "services.enable" => (
                    json!({"@type": "type.googleapis.com/google.protobuf.Empty", "value": {}}),
                    json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
                           "service": rendered[0]}),
                ),
                _ => (
                    json!({"@type": "type.googleapis.com/google.protobuf.Empty", "value": {}}),
                    json!({"@type": "type.googleapis.com/google.api.serviceusage.v1.DisableServiceResponse",
                           "service": rendered[0]}),
                ),
            };
            world.su_operations.insert(
                op_name.clone(),
                json!({"name": op_name, "done": true, "metadata": meta, "response": response}),
            );
            drop(world);
            core.persist();
            if method == "services.disable" {
                // As recorded: the disable answer carries its (empty) metadata.
                return Ok(json!({"name": op_name,
                    "metadata": {"@type": "type.googleapis.com/google.protobuf.Empty", "value": {}}}));
            }
            Ok(json!({ "name": op_name }))
        }
        _ => Err(GoogleApiError::not_found("Method not found.")),
    }
}

/// 403 SERVICE_DISABLED when `service` is off in `project`.
pub(crate) fn require_enabled(
    world: &EmulatorWorld,
    project: &str,
    service: &str,
) -> Result<(), GoogleApiError> {
    let Some(p) = find_project(world, project) else {
        return Ok(());
    };
    if p.services.contains(service) {
        return Ok(());
    }
    let t = title(service).unwrap_or(service);
    let msg = format!(
        "{t} has not been used in project {} before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/{service}/overview?project={} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.",
        p.number, p.number
    );
    let mut e = GoogleApiError::forbidden(msg.clone());
    e.reason = Some("accessNotConfigured");
    Err(e
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Google developers console API activation",
                       "url": format!("https://console.developers.google.com/apis/api/{service}/overview?project={}", p.number)}]
        }))
        .with_error_info(
            "SERVICE_DISABLED",
            "googleapis.com",
            json!({"consumer": format!("projects/{}", p.number), "service": service}),
        ))
}
