//! IAM v1: service accounts, their keys and their IAM policies
//! (getIamPolicy / setIamPolicy through the shared `policy` semantics).

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use super::permissions;
use super::policy::set_policy;
use crate::emulator::core::Core;
use crate::emulator::crypto;
use crate::emulator::request::Req;
use crate::emulator::time::rfc3339_seconds;
use crate::emulator::wire::{
    GoogleApiError, GoogleApiResult, check_keys, opt_array, opt_object, opt_str, parse_body,
};
use crate::emulator::world::{
    self, EmulatorWorld, IamPolicyRecord, Principal, ServiceAccountRecord, new_policy_etag,
    new_service_account,
};
use base64::Engine;

/// The discovery method id (without `iam.`).
pub(crate) fn method_id(req: &Req) -> Option<&'static str> {
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let m = &req.method;
    match (s.as_slice(), req.verb.as_deref()) {
        (["roles", _], None) if *m == Method::GET => Some("roles.get"),
        (["projects", _, "serviceAccounts"], None) => match *m {
            Method::GET => Some("projects.serviceAccounts.list"),
            Method::POST => Some("projects.serviceAccounts.create"),
            _ => None,
        },
        (["projects", _, "serviceAccounts", _], None) => match *m {
            Method::GET => Some("projects.serviceAccounts.get"),
            Method::PATCH => Some("projects.serviceAccounts.patch"),
            Method::PUT => Some("projects.serviceAccounts.update"),
            Method::DELETE => Some("projects.serviceAccounts.delete"),
            _ => None,
        },
        (["projects", _, "serviceAccounts", _, "keys"], None) => match *m {
            Method::GET => Some("projects.serviceAccounts.keys.list"),
            Method::POST => Some("projects.serviceAccounts.keys.create"),
            _ => None,
        },
        (["projects", _, "serviceAccounts", _, "keys", _], None) => match *m {
            Method::GET => Some("projects.serviceAccounts.keys.get"),
            Method::DELETE => Some("projects.serviceAccounts.keys.delete"),
            _ => None,
        },
        (["projects", _, "roles"], None) => match *m {
            Method::GET => Some("projects.roles.list"),
            Method::POST => Some("projects.roles.create"),
            _ => None,
        },
        (["projects", _, "roles", _], None) => match *m {
            Method::GET => Some("projects.roles.get"),
            Method::PATCH => Some("projects.roles.patch"),
            Method::DELETE => Some("projects.roles.delete"),
            _ => None,
        },
        (["projects", _, "serviceAccounts", _], Some(verb)) if m == Method::POST => match verb {
            "getIamPolicy" => Some("projects.serviceAccounts.getIamPolicy"),
            "setIamPolicy" => Some("projects.serviceAccounts.setIamPolicy"),
            "testIamPermissions" => Some("projects.serviceAccounts.testIamPermissions"),
            "disable" => Some("projects.serviceAccounts.disable"),
            "enable" => Some("projects.serviceAccounts.enable"),
            "undelete" => Some("projects.serviceAccounts.undelete"),
            _ => None,
        },
        _ => None,
    }
}

fn denied(permission: &str) -> GoogleApiError {
    GoogleApiError::forbidden(format!(
        "Permission '{permission}' denied on resource (or it may not exist)."
    ))
    .with_error_info(
        "IAM_PERMISSION_DENIED",
        "iam.googleapis.com",
        json!({"permission": permission}),
    )
}

fn unknown_sa() -> GoogleApiError {
    GoogleApiError::not_found("Unknown service account")
}

/// Finds a visible live service account by email or uniqueId.
pub(crate) fn resolve<'a>(
    world: &'a EmulatorWorld,
    project: &str,
    id: &str,
    now: i64,
) -> Option<&'a ServiceAccountRecord> {
    let sa = world
        .service_accounts
        .get(id)
        .or_else(|| world.service_accounts.values().find(|s| s.unique_id == id))?;
    let project_ok = project == "-"
        || project == sa.project
        || world
            .projects
            .get(&sa.project)
            .is_some_and(|p| p.number == project);
    (project_ok && sa.visible_ms <= now).then_some(sa)
}

/// The ServiceAccount resource.
pub(crate) fn render_sa(sa: &ServiceAccountRecord) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "name".into(),
        json!(format!(
            "projects/{}/serviceAccounts/{}",
            sa.project, sa.email
        )),
    );
    m.insert("projectId".into(), json!(sa.project));
    m.insert("uniqueId".into(), json!(sa.unique_id));
    m.insert("email".into(), json!(sa.email));
    if let Some(d) = &sa.display_name {
        m.insert("displayName".into(), json!(d));
    }
    if let Some(d) = &sa.description {
        m.insert("description".into(), json!(d));
    }
    m.insert("etag".into(), json!(sa.etag));
    m.insert("oauth2ClientId".into(), json!(sa.unique_id));
    if sa.disabled {
        m.insert("disabled".into(), json!(true));
    }
    Value::Object(m)
}

fn valid_account_id(id: &str) -> bool {
    (6..=30).contains(&id.len())
        && id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
}

/// Serves one IAM call.
pub(crate) async fn call(
    core: &Arc<Core>,
    req: &Req,
    who: &Principal,
    method: &str,
) -> GoogleApiResult {
    if method == "roles.get" {
        // Predefined roles are public: any authenticated caller reads them.
        let name = format!("roles/{}", req.segs[1]);
        let included = permissions::predefined_role_permissions(&name);
        if included.is_empty() {
            return Err(GoogleApiError::not_found(format!(
                "The role named {name} was not found."
            )));
        }
        return Ok(json!({
            "name": name,
            "title": name,
            "includedPermissions": included,
            "stage": "GA",
            "etag": "AA==",
        }));
    }
    let project = req.segs[1].clone();
    let now = req.now;
    match method {
        "projects.roles.create"
        | "projects.roles.get"
        | "projects.roles.list"
        | "projects.roles.patch"
        | "projects.roles.delete" => return roles(core, req, who, &project, method),
        _ => {}
    }
    match method {
        "projects.serviceAccounts.create" => create(core, req, who, &project),
        "projects.serviceAccounts.list" => list(core, req, who, &project),
        "projects.serviceAccounts.get" => {
            let world = core.world();
            let sa = resolve(&world, &project, &req.segs[3], now).ok_or_else(unknown_sa)?;
            if !permissions::allowed_on_sa(&world, who, &sa.email, "iam.serviceAccounts.get") {
                return Err(denied("iam.serviceAccounts.get"));
            }
            Ok(render_sa(sa))
        }
        "projects.serviceAccounts.patch" | "projects.serviceAccounts.update" => {
            patch(core, req, who, &project, method.ends_with("update"))
        }
        "projects.serviceAccounts.delete" => delete(core, req, who, &project),
        "projects.serviceAccounts.disable" | "projects.serviceAccounts.enable" => {
            let disable = method.ends_with("disable");
            let perm = if disable {
                "iam.serviceAccounts.disable"
            } else {
                "iam.serviceAccounts.enable"
            };
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &[])?;
            let mut world = core.world();
            let email = resolve(&world, &project, &req.segs[3], now)
                .ok_or_else(unknown_sa)?
                .email
                .clone();
            if !permissions::allowed_on_sa(&world, who, &email, perm) {
                return Err(denied(perm));
            }
            if let Some(sa) = world.service_accounts.get_mut(&email) {
                sa.disabled = disable;
            }
            drop(world);
            core.persist();
            Ok(json!({}))
        }
        "projects.serviceAccounts.undelete" => undelete(core, req, who, &project),
        "projects.serviceAccounts.keys.create"
        | "projects.serviceAccounts.keys.list"
        | "projects.serviceAccounts.keys.get"
        | "projects.serviceAccounts.keys.delete" => keys(core, req, who, &project, method),
        "projects.serviceAccounts.getIamPolicy" => {
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &["options"])?;
            let (etag_before, result, email) = {
                let world = core.world();
                let sa = resolve(&world, &project, &req.segs[3], now).ok_or_else(unknown_sa)?;
                if !permissions::allowed_on_sa(
                    &world,
                    who,
                    &sa.email,
                    "iam.serviceAccounts.getIamPolicy",
                ) {
                    return Err(denied("iam.serviceAccounts.getIamPolicy"));
                }
                (
                    sa.policy.etag.clone(),
                    sa.policy.to_json(),
                    sa.email.clone(),
                )
            };
            // Concurrent-writer mode: someone else writes right after this read.
            if core.roll_concurrent_writer() {
                let mut world = core.world();
                if let Some(sa) = world.service_accounts.get_mut(&email)
                    && sa.policy.etag == etag_before
                {
                    sa.policy.etag = new_policy_etag();
                }
                drop(world);
                core.persist();
            }
            Ok(result)
        }
        "projects.serviceAccounts.setIamPolicy" => {
            let body = parse_body(&req.body)?;
            let mut world = core.world();
            let email = resolve(&world, &project, &req.segs[3], now)
                .ok_or_else(unknown_sa)?
                .email
                .clone();
            if !permissions::allowed_on_sa(&world, who, &email, "iam.serviceAccounts.setIamPolicy")
            {
                return Err(denied("iam.serviceAccounts.setIamPolicy"));
            }
            let current = world
                .service_accounts
                .get(&email)
                .map(|s| s.policy.clone())
                .unwrap_or_else(IamPolicyRecord::empty);
            let next = set_policy(&world, &current, &body, now)?;
            let out = next.to_json();
            if let Some(sa) = world.service_accounts.get_mut(&email) {
                sa.policy = next;
            }
            drop(world);
            core.persist();
            Ok(out)
        }
        "projects.serviceAccounts.testIamPermissions" => {
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &["permissions"])?;
            let world = core.world();
            let sa = resolve(&world, &project, &req.segs[3], now).ok_or_else(unknown_sa)?;
            let perms: Vec<Value> = opt_array(&body, "permissions")?
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| {
                    p.as_str()
                        .is_some_and(|p| permissions::allowed_on_sa(&world, who, &sa.email, p))
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

/// The Role resource of a custom role.
fn render_role(name: &str, r: &world::CustomRoleRecord) -> Value {
    let mut v = json!({
        "name": name,
        "title": r.title,
        "includedPermissions": r.permissions,
        "stage": r.stage,
        "etag": r.etag,
    });
    if !r.description.is_empty() {
        v["description"] = json!(r.description);
    }
    if r.deleted {
        v["deleted"] = json!(true);
    }
    v
}

/// Reads `title`, `description`, `stage` and `includedPermissions` of a Role
/// body into `r` (only the fields `mask` names, when it is given).
fn read_role(
    body: &Value,
    mask: Option<&str>,
    r: &mut world::CustomRoleRecord,
) -> Result<(), GoogleApiError> {
    check_keys(
        body,
        "",
        &[
            "name",
            "title",
            "description",
            "includedPermissions",
            "stage",
            "etag",
        ],
    )?;
    let wanted = |f: &str| mask.is_none_or(|m| m.split(',').any(|x| x.trim() == f));
    if wanted("title") {
        r.title = opt_str(body, "title")?.unwrap_or("").to_string();
    }
    if wanted("description") {
        r.description = opt_str(body, "description")?.unwrap_or("").to_string();
    }
    if wanted("stage") {
        r.stage = opt_str(body, "stage")?.unwrap_or("GA").to_string();
    }
    if wanted("includedPermissions") {
        r.permissions = opt_array(body, "includedPermissions")?
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                p.as_str().map(str::to_string).ok_or_else(|| {
                    GoogleApiError::invalid_field(
                        "included_permissions",
                        "Invalid value at 'role.included_permissions' (TYPE_STRING)",
                    )
                })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// `projects.roles.*`: custom roles, so a caller can hold exactly the
/// permissions a command needs (`gcloud iam roles create --file`).
fn roles(core: &Core, req: &Req, who: &Principal, project: &str, method: &str) -> GoogleApiResult {
    let perm = match method {
        "projects.roles.create" => "iam.roles.create",
        "projects.roles.list" => "iam.roles.list",
        "projects.roles.patch" => "iam.roles.update",
        "projects.roles.delete" => "iam.roles.delete",
        _ => "iam.roles.get",
    };
    let mut world = core.world();
    if !world.projects.contains_key(project)
        || !permissions::allowed_on_project(&world, who, project, perm)
    {
        return Err(denied(perm));
    }
    let prefix = format!("projects/{project}/roles/");
    match method {
        "projects.roles.list" => {
            let roles: Vec<Value> = world
                .custom_roles
                .iter()
                .filter(|(n, r)| n.starts_with(&prefix) && !r.deleted)
                .map(|(n, r)| render_role(n, r))
                .collect();
            if roles.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "roles": roles }))
        }
        "projects.roles.create" => {
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &["roleId", "role"])?;
            let id = opt_str(&body, "roleId")?.unwrap_or("");
            let valid = (3..=64).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                return Err(GoogleApiError::invalid_field(
                    "role_id",
                    format!("The role_id \"{id}\" is invalid."),
                ));
            }
            let name = format!("{prefix}{id}");
            if world.custom_roles.contains_key(&name) {
                return Err(GoogleApiError::already_exists(format!(
                    "A role named {id} in projects/{project} already exists."
                )));
            }
            let mut role = world::CustomRoleRecord {
                stage: "GA".into(),
                etag: new_policy_etag(),
                ..Default::default()
            };
            let role_body = opt_object(&body, "role")?
                .cloned()
                .map(Value::Object)
                .unwrap_or(json!({}));
            read_role(&role_body, None, &mut role)?;
            let out = render_role(&name, &role);
            world.custom_roles.insert(name, role);
            drop(world);
            core.persist();
            Ok(out)
        }
        _ => {
            let name = format!("{prefix}{}", req.segs[3]);
            let Some(role) = world.custom_roles.get_mut(&name) else {
                return Err(GoogleApiError::not_found(format!(
                    "The role named {name} was not found."
                )));
            };
            match method {
                "projects.roles.patch" => {
                    let body = parse_body(&req.body)?;
                    read_role(&body, req.query_get("updateMask"), role)?;
                    role.etag = new_policy_etag();
                }
                "projects.roles.delete" => {
                    role.deleted = true;
                    role.etag = new_policy_etag();
                }
                _ => return Ok(render_role(&name, role)),
            }
            let out = render_role(&name, role);
            drop(world);
            core.persist();
            Ok(out)
        }
    }
}

fn create(core: &Core, req: &Req, who: &Principal, project: &str) -> GoogleApiResult {
    let body = parse_body(&req.body)?;
    check_keys(&body, "", &["accountId", "serviceAccount"])?;
    if let Some(sa) = opt_object(&body, "serviceAccount")? {
        check_keys(
            &Value::Object(sa.clone()),
            "service_account",
            &[
                "displayName",
                "description",
                "name",
                "projectId",
                "etag",
                "email",
                "uniqueId",
                "oauth2ClientId",
                "disabled",
            ],
        )?;
    }
    let account_id = opt_str(&body, "accountId")?.unwrap_or("");
    if account_id.is_empty() {
        return Err(GoogleApiError::invalid_field(
            "account_id",
            "Missing required field \"accountId\".",
        ));
    }
    if !valid_account_id(account_id) {
        return Err(GoogleApiError::invalid_field(
            "account_id",
            format!(
                "Invalid value for field \"accountId\": \"{account_id}\". Account ID must be between 6 and 30 characters, start with a lowercase letter, and contain only lowercase letters, digits and hyphens (regex [a-z]([-a-z0-9]*[a-z0-9])).",
            ),
        ));
    }
    let display_name = opt_str(&body, "serviceAccount.displayName")?.map(str::to_string);
    let description = opt_str(&body, "serviceAccount.description")?.map(str::to_string);
    if display_name
        .as_ref()
        .is_some_and(|d| d.chars().count() > 100)
    {
        return Err(GoogleApiError::invalid_field(
            "service_account.display_name",
            "Invalid value for field \"serviceAccount.displayName\": must be at most 100 characters.",
        ));
    }
    let mut world = core.world();
    if !permissions::allowed_on_project(&world, who, project, "iam.serviceAccounts.create") {
        return Err(denied("iam.serviceAccounts.create"));
    }
    let email = format!("{account_id}@{project}.iam.gserviceaccount.com");
    if world.service_accounts.contains_key(&email) {
        return Err(GoogleApiError::already_exists(format!(
            "Service account {account_id} already exists within project projects/{project}."
        ))
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceName": format!("projects/{project}/serviceAccounts/{email}")
        })));
    }
    let sa = new_service_account(
        project,
        account_id,
        display_name,
        description,
        req.now,
        req.now + core.visibility_ms(),
    );
    let out = render_sa(&sa);
    world.service_accounts.insert(email, sa);
    drop(world);
    core.persist();
    Ok(out)
}

fn list(core: &Core, req: &Req, who: &Principal, project: &str) -> GoogleApiResult {
    let world = core.world();
    if !permissions::allowed_on_project(&world, who, project, "iam.serviceAccounts.list") {
        return Err(denied("iam.serviceAccounts.list"));
    }
    let page_size = match req.query_get("pageSize") {
        None => 20,
        Some(s) => s.parse::<usize>().map_err(|_| {
            GoogleApiError::invalid_field(
                "page_size",
                format!("Invalid value at 'page_size' (TYPE_INT32), \"{s}\""),
            )
        })?,
    };
    let page_size = if page_size == 0 {
        20
    } else {
        page_size.min(100)
    };
    let start = match req.query_get("pageToken") {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| GoogleApiError::invalid_field("page_token", "Invalid page token."))?,
    };
    let all: Vec<&ServiceAccountRecord> = world
        .service_accounts
        .values()
        .filter(|s| s.project == project && s.visible_ms <= req.now)
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(page_size)
        .map(|s| render_sa(s))
        .collect();
    let mut out = serde_json::Map::new();
    if !page.is_empty() {
        out.insert("accounts".into(), Value::Array(page));
    }
    if start.saturating_add(page_size) < all.len() {
        out.insert(
            "nextPageToken".into(),
            json!(start.saturating_add(page_size).to_string()),
        );
    }
    Ok(Value::Object(out))
}

fn patch(
    core: &Core,
    req: &Req,
    who: &Principal,
    project: &str,
    legacy_put: bool,
) -> GoogleApiResult {
    let body = parse_body(&req.body)?;
    let (sa_in, mask): (Value, Vec<String>) = if legacy_put {
        let fields: Vec<String> = ["displayName", "description"]
            .iter()
            .filter(|f| body.get(**f).is_some())
            .map(|f| f.to_string())
            .collect();
        (body.clone(), fields)
    } else {
        check_keys(&body, "", &["serviceAccount", "updateMask"])?;
        let sa_in = opt_object(&body, "serviceAccount")?
            .cloned()
            .map(Value::Object)
            .unwrap_or(json!({}));
        let mask = opt_str(&body, "updateMask")?.unwrap_or("");
        let paths: Vec<String> = mask
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if paths.is_empty() {
            return Err(GoogleApiError::invalid_field(
                "update_mask",
                "Invalid field mask for ServiceAccount. Field mask paths cannot be empty.",
            ));
        }
        (sa_in, paths)
    };
    let mut world = core.world();
    let email = resolve(&world, project, &req.segs[3], req.now)
        .ok_or_else(unknown_sa)?
        .email
        .clone();
    if !permissions::allowed_on_sa(&world, who, &email, "iam.serviceAccounts.update") {
        return Err(denied("iam.serviceAccounts.update"));
    }
    let Some(sa) = world.service_accounts.get_mut(&email) else {
        return Err(unknown_sa());
    };
    let mut out = serde_json::Map::new();
    out.insert(
        "name".into(),
        json!(format!(
            "projects/{}/serviceAccounts/{}",
            sa.project, sa.email
        )),
    );
    for path in &mask {
        match path.as_str() {
            "display_name" | "displayName" => {
                let v = opt_str(&sa_in, "displayName")?.map(str::to_string);
                sa.display_name = v.clone().filter(|s| !s.is_empty());
                if let Some(v) = v {
                    out.insert("displayName".into(), json!(v));
                }
            }
            "description" => {
                let v = opt_str(&sa_in, "description")?.map(str::to_string);
                sa.description = v.clone().filter(|s| !s.is_empty());
                if let Some(v) = v {
                    out.insert("description".into(), json!(v));
                }
            }
            other => {
                return Err(GoogleApiError::invalid_field(
                    "update_mask",
                    format!(
                        "Invalid field mask for ServiceAccount. Unknown or immutable field \"{other}\"."
                    ),
                ));
            }
        }
    }
    let result = if legacy_put {
        render_sa(sa)
    } else {
        Value::Object(out)
    };
    drop(world);
    core.persist();
    Ok(result)
}

fn render_key(sa: &ServiceAccountRecord, id: &str, created_ms: i64) -> Value {
    json!({
        "name": format!("projects/{}/serviceAccounts/{}/keys/{id}", sa.project, sa.email),
        "keyAlgorithm": "KEY_ALG_RSA_2048",
        "keyOrigin": "GOOGLE_PROVIDED",
        "keyType": "USER_MANAGED",
        "validAfterTime": rfc3339_seconds(created_ms),
        "validBeforeTime": "9999-12-31T23:59:59Z"
    })
}

/// Service-account keys: real RSA keys whose JSON key file works with the
/// emulator's OAuth endpoint.
fn keys(core: &Core, req: &Req, who: &Principal, project: &str, method: &str) -> GoogleApiResult {
    let perm = match method.rsplit('.').next().unwrap_or("") {
        "create" => "iam.serviceAccountKeys.create",
        "delete" => "iam.serviceAccountKeys.delete",
        "list" => "iam.serviceAccountKeys.list",
        _ => "iam.serviceAccountKeys.get",
    };
    let sa = {
        let world = core.world();
        let sa = resolve(&world, project, &req.segs[3], req.now)
            .ok_or_else(unknown_sa)?
            .clone();
        if !permissions::allowed_on_sa(&world, who, &sa.email, perm) {
            return Err(denied(perm));
        }
        sa
    };
    let key_missing = |id: &str| {
        GoogleApiError::not_found(format!(
            "Service account key projects/{}/serviceAccounts/{}/keys/{id} does not exist.",
            sa.project, sa.email
        ))
    };
    match method {
        "projects.serviceAccounts.keys.create" => {
            let body = parse_body(&req.body)?;
            check_keys(&body, "", &["keyAlgorithm", "privateKeyType"])?;
            let alg = opt_str(&body, "keyAlgorithm")?.unwrap_or("KEY_ALG_RSA_2048");
            if !matches!(alg, "KEY_ALG_RSA_2048" | "KEY_ALG_UNSPECIFIED") {
                return Err(GoogleApiError::invalid_field(
                    "key_algorithm",
                    format!(
                        "Invalid value at 'key_algorithm': the emulator issues KEY_ALG_RSA_2048 keys only, not {alg}."
                    ),
                ));
            }
            let ty = opt_str(&body, "privateKeyType")?.unwrap_or("TYPE_GOOGLE_CREDENTIALS_FILE");
            if !matches!(ty, "TYPE_GOOGLE_CREDENTIALS_FILE" | "TYPE_UNSPECIFIED") {
                return Err(GoogleApiError::invalid_field(
                    "private_key_type",
                    format!(
                        "Invalid value at 'private_key_type': the emulator issues TYPE_GOOGLE_CREDENTIALS_FILE keys only, not {ty}."
                    ),
                ));
            }
            let generated = crypto::generate_rsa_key().map_err(|e| {
                GoogleApiError::injected(500).with_detail(
                    json!({"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": e}),
                )
            })?;
            let id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..])
                + &hex::encode(&uuid::Uuid::new_v4().as_bytes()[..4]);
            let file = core.key_file_json(
                &sa.project,
                &id,
                &sa.email,
                &sa.unique_id,
                &generated.private_pkcs8_pem,
            );
            let mut out = render_key(&sa, &id, req.now);
            out["privateKeyType"] = json!("TYPE_GOOGLE_CREDENTIALS_FILE");
            out["privateKeyData"] =
                json!(base64::engine::general_purpose::STANDARD.encode(file.to_string()));
            core.world().keys.insert(
                id,
                world::IssuedKey {
                    email: sa.email.clone(),
                    public_pkcs1_hex: generated.public_pkcs1_hex,
                    created_ms: req.now,
                },
            );
            core.persist();
            Ok(out)
        }
        "projects.serviceAccounts.keys.list" => {
            let world = core.world();
            let keys: Vec<Value> = world
                .keys
                .iter()
                .filter(|(_, k)| k.email == sa.email)
                .map(|(id, k)| render_key(&sa, id, k.created_ms))
                .collect();
            if keys.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "keys": keys }))
        }
        "projects.serviceAccounts.keys.get" => {
            let id = &req.segs[5];
            let world = core.world();
            match world.keys.get(id) {
                Some(k) if k.email == sa.email => Ok(render_key(&sa, id, k.created_ms)),
                _ => Err(key_missing(id)),
            }
        }
        _ => {
            let id = req.segs[5].clone();
            let mut world = core.world();
            match world.keys.get(&id) {
                Some(k) if k.email == sa.email => {
                    world.keys.remove(&id);
                }
                _ => return Err(key_missing(&id)),
            }
            drop(world);
            core.persist();
            Ok(json!({}))
        }
    }
}

fn delete(core: &Core, req: &Req, who: &Principal, project: &str) -> GoogleApiResult {
    let mut world = core.world();
    let sa = resolve(&world, project, &req.segs[3], req.now)
        .ok_or_else(unknown_sa)?
        .clone();
    if !permissions::allowed_on_sa(&world, who, &sa.email, "iam.serviceAccounts.delete") {
        return Err(denied("iam.serviceAccounts.delete"));
    }
    world.service_accounts.remove(&sa.email);
    world.keys.retain(|_, k| k.email != sa.email);
    // IAM rewrites the deleted account's memberships.
    let old = format!("serviceAccount:{}", sa.email);
    let new = format!("deleted:serviceAccount:{}?uid={}", sa.email, sa.unique_id);
    let rewrite = |p: &mut IamPolicyRecord| {
        for b in p.bindings.iter_mut() {
            if let Some(ms) = b.get_mut("members").and_then(Value::as_array_mut) {
                for m in ms.iter_mut() {
                    if m.as_str() == Some(old.as_str()) {
                        *m = json!(new.clone());
                    }
                }
            }
        }
    };
    for p in world.projects.values_mut() {
        rewrite(&mut p.policy);
    }
    for s in world.service_accounts.values_mut() {
        rewrite(&mut s.policy);
    }
    world.deleted_service_accounts.push(sa);
    drop(world);
    core.persist();
    Ok(json!({}))
}

fn undelete(core: &Core, req: &Req, who: &Principal, project: &str) -> GoogleApiResult {
    let mut world = core.world();
    let id = &req.segs[3];
    let idx = world
        .deleted_service_accounts
        .iter()
        .rposition(|s| &s.unique_id == id || &s.email == id)
        .ok_or_else(unknown_sa)?;
    let sa = world.deleted_service_accounts[idx].clone();
    if !permissions::allowed_on_project(&world, who, &sa.project, "iam.serviceAccounts.undelete")
        || (project != "-" && project != sa.project)
    {
        return Err(denied("iam.serviceAccounts.undelete"));
    }
    if world.service_accounts.contains_key(&sa.email) {
        return Err(GoogleApiError::failed_precondition(format!(
            "Account {} already exists; cannot undelete.",
            sa.email
        )));
    }
    world.deleted_service_accounts.remove(idx);
    let out = json!({ "restoredAccount": render_sa(&sa) });
    world.service_accounts.insert(sa.email.clone(), sa);
    drop(world);
    core.persist();
    Ok(out)
}
