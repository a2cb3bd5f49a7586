//! Resource Manager (projects get/create/delete, the project IAM policy with
//! etags; v1 and v3). The policy semantics live in `policy`, shared with IAM.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::permissions;
use super::policy;
use crate::emulator::core::Core;
use crate::emulator::request::Req;
use crate::emulator::time::rfc3339;
use crate::emulator::wire::{
    self, GoogleApiError, GoogleApiResult, check_keys, opt_array, parse_body,
};
use crate::emulator::world::{self, EmulatorWorld, Principal, ProjectRecord};

/// CRM method id.
pub(crate) fn method_id(req: &Req) -> Option<&'static str> {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (s.as_slice(), req.verb.as_deref(), &req.method) {
        (["projects"], None, &Method::POST) if req.version == "v1" => Some("projects.create"),
        (["projects", _], None, &Method::DELETE) if req.version == "v1" => Some("projects.delete"),
        (["operations", _], None, &Method::GET) => Some("operations.get"),
        (["projects", _], None, &Method::GET) => Some("projects.get"),
        (["projects", _], Some("getIamPolicy"), &Method::POST) => Some("projects.getIamPolicy"),
        (["projects", _], Some("setIamPolicy"), &Method::POST) => Some("projects.setIamPolicy"),
        (["projects", _], Some("testIamPermissions"), &Method::POST) => {
            Some("projects.testIamPermissions")
        }
        _ => None,
    }
}

fn crm_denied() -> GoogleApiError {
    GoogleApiError::forbidden_bare("The caller does not have permission")
}

/// A project by id or number.
pub(crate) fn find_project<'a>(world: &'a EmulatorWorld, id: &str) -> Option<&'a ProjectRecord> {
    world
        .projects
        .get(id)
        .or_else(|| world.projects.values().find(|p| p.number == id))
}

/// Serves one Resource Manager call.
pub(crate) fn call(core: &Arc<Core>, req: &Req, who: &Principal, method: &str) -> GoogleApiResult {
    match method {
        "projects.create" => return create_project(core, req, who),
        "operations.get" => {
            let name = format!("operations/{}", req.segs[1]);
            return core
                .world()
                .su_operations
                .get(&name)
                .cloned()
                .ok_or_else(|| GoogleApiError::not_found(format!("Operation {name} not found.")));
        }
        _ => {}
    }
    let id = req.segs[1].clone();
    let v3 = req.version == "v3";
    match method {
        "projects.get" => {
            let world = core.world();
            let p = find_project(&world, &id).ok_or_else(crm_denied)?;
            if !permissions::allowed_on_project(&world, who, &p.id, "resourcemanager.projects.get")
            {
                return Err(crm_denied());
            }
            Ok(render_project(p, v3))
        }
        "projects.delete" => {
            let mut world = core.world();
            let p = find_project(&world, &id).ok_or_else(crm_denied)?;
            let pid = p.id.clone();
            if !permissions::allowed_on_project(
                &world,
                who,
                &pid,
                "resourcemanager.projects.delete",
            ) {
                return Err(crm_denied());
            }
            world.projects.remove(&pid);
            world.service_accounts.retain(|_, sa| sa.project != pid);
            drop(world);
            core.persist();
            Ok(json!({}))
        }
        "projects.getIamPolicy" => {
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &["options"])?;
            let (etag_before, out, pid) = {
                let world = core.world();
                let p = find_project(&world, &id).ok_or_else(crm_denied)?;
                if !permissions::allowed_on_project(
                    &world,
                    who,
                    &p.id,
                    "resourcemanager.projects.getIamPolicy",
                ) {
                    return Err(crm_denied());
                }
                (p.policy.etag.clone(), p.policy.to_json(), p.id.clone())
            };
            if core.roll_concurrent_writer() {
                let mut world = core.world();
                if let Some(p) = world.projects.get_mut(&pid)
                    && p.policy.etag == etag_before
                {
                    p.policy.etag = world::new_policy_etag();
                }
                drop(world);
                core.persist();
            }
            Ok(out)
        }
        "projects.setIamPolicy" => {
            let body = parse_body(&req.body)?;
            let mut world = core.world();
            let p = find_project(&world, &id).ok_or_else(crm_denied)?;
            let pid = p.id.clone();
            if !permissions::allowed_on_project(
                &world,
                who,
                &pid,
                "resourcemanager.projects.setIamPolicy",
            ) {
                return Err(crm_denied());
            }
            let next = policy::set_policy(&world, &p.policy, &body, req.now)?;
            let out = next.to_json();
            if let Some(p) = world.projects.get_mut(&pid) {
                p.policy = next;
            }
            drop(world);
            core.persist();
            Ok(out)
        }
        "projects.testIamPermissions" => {
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &["permissions"])?;
            let world = core.world();
            let p = find_project(&world, &id).ok_or_else(crm_denied)?;
            let perms: Vec<Value> = opt_array(&body, "permissions")?
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|x| {
                    x.as_str()
                        .is_some_and(|x| permissions::allowed_on_project(&world, who, &p.id, x))
                })
                .collect();
            if perms.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "permissions": perms }))
        }
        _ => Err(GoogleApiError::not_found("Method not found.")),
    }
}

fn create_project(core: &Arc<Core>, req: &Req, who: &Principal) -> GoogleApiResult {
    let body = parse_body(&req.body)?;
    check_keys(
        &body,
        "",
        &[
            "projectId",
            "name",
            "parent",
            "labels",
            "projectNumber",
            "lifecycleState",
            "createTime",
        ],
    )?;
    let id = wire::opt_str(&body, "projectId")?.unwrap_or("").to_string();
    let valid = (6..=30).contains(&id.len())
        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-');
    if !valid {
        return Err(GoogleApiError::invalid_field(
            "project_id",
            format!(
                "Field [projectId] has illegal value \"{id}\": must be 6 to 30 lowercase letters, digits or hyphens, starting with a letter."
            ),
        ));
    }
    let mut world = core.world();
    if world.projects.contains_key(&id) {
        return Err(GoogleApiError::already_exists(
            "Requested entity already exists",
        ));
    }
    let mut project = world::new_project(&world, &id, None, req.now);
    if let Some(n) = wire::opt_str(&body, "name")? {
        project.name = n.to_string();
    }
    project.labels = body.get("labels").cloned();
    project.parent = body.get("parent").cloned();
    // The creator owns what it creates.
    let creator = who.members().into_iter().next().unwrap_or_default();
    if let Some(b) = project
        .policy
        .bindings
        .iter_mut()
        .find(|b| b["role"] == "roles/owner")
        && let Some(ms) = b["members"].as_array_mut()
        && !ms.iter().any(|m| m.as_str() == Some(creator.as_str()))
    {
        ms.push(json!(creator));
    }
    let op_name = format!("operations/cp.{}", project.number);
    let mut resp = render_project(&project, false);
    resp["@type"] = json!("type.googleapis.com/google.cloudresourcemanager.v1.Project");
    world.su_operations.insert(
        op_name.clone(),
        json!({"name": op_name, "done": true,
               "metadata": {"@type": "type.googleapis.com/google.cloudresourcemanager.v1.ProjectCreationStatus", "gettable": true, "ready": true},
               "response": resp}),
    );
    world.projects.insert(id, project);
    drop(world);
    core.persist();
    Ok(json!({ "name": op_name }))
}

fn render_project(p: &ProjectRecord, v3: bool) -> Value {
    if v3 {
        json!({
            "name": format!("projects/{}", p.number),
            "projectId": p.id,
            "state": "ACTIVE",
            "displayName": p.name,
            "createTime": rfc3339(p.create_ms),
            "updateTime": rfc3339(p.create_ms),
            "etag": format!("W/\"{}\"", &p.number),
        })
    } else {
        let mut v = json!({
            "projectNumber": p.number,
            "projectId": p.id,
            "lifecycleState": "ACTIVE",
            "name": p.name,
            "createTime": rfc3339(p.create_ms),
        });
        if let Some(l) = &p.labels {
            v["labels"] = l.clone();
        }
        if let Some(parent) = &p.parent {
            v["parent"] = parent.clone();
        }
        v
    }
}
