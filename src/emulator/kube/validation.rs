//! The rules the registry applies to every write, apart from the store
//! itself: object metadata access, schema checks for server-side apply,
//! kind / namespace / name validation, the system fields a write cannot
//! change, and generated names.

use serde_json::{Map, Value, json};

use super::errors::{ApiError, FieldError};
use super::managed::{self, Entry};
use super::objects::{self, KubeResource};

pub(crate) const NAMESPACE_LABEL: &str = "kubernetes.io/metadata.name";

const GENERATE_NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub(crate) fn meta(obj: &Value, key: &str) -> String {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("just made an object");
    let m = map.entry("metadata").or_insert_with(|| json!({}));
    if !m.is_object() {
        *m = json!({});
    }
    m.as_object_mut().expect("just made an object")
}

pub(crate) fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

pub(crate) fn set_managed_fields(obj: &mut Value, entries: &[Entry]) {
    let m = meta_mut(obj);
    if entries.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), managed::encode(entries));
    }
}

/// Server-side apply refuses fields outside the schema outright.
pub(crate) fn check_apply_schema(
    resource: KubeResource,
    namespace: Option<&str>,
    name: &str,
    config: &Value,
) -> Result<(), ApiError> {
    let mut copy = config.clone();
    let dropped = objects::drop_unknown_fields(resource, &mut copy);
    if dropped.is_empty() {
        return Ok(());
    }
    let errs: Vec<String> = dropped
        .iter()
        .map(|p| format!(".{p}: field not declared in schema"))
        .collect();
    let detail = if errs.len() == 1 {
        errs[0].clone()
    } else {
        format!("errors:\n  {}", errs.join("\n  "))
    };
    Err(ApiError {
        code: 500,
        reason: "",
        message: format!(
            "failed to create typed patch object ({}/{name}; /v1, Kind={}): {detail}",
            namespace.unwrap_or(""),
            resource.kind()
        ),
        details: None,
    })
}

pub(crate) fn invalid(resource: KubeResource, name: &str, errs: Vec<FieldError>) -> ApiError {
    ApiError::invalid("", resource.kind(), name, errs)
}

pub(crate) fn check_kind(resource: KubeResource, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {})",
            resource.kind()
        )));
    }
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != resource.kind()
    {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: kind {kind} does not match {}",
            resource.kind(),
            resource.kind()
        )));
    }
    if let Some(v) = body.get("apiVersion").and_then(Value::as_str)
        && !v.is_empty()
        && v != "v1"
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version (v1)"
        )));
    }
    Ok(())
}

pub(crate) fn check_namespace(
    resource: KubeResource,
    body: &mut Value,
    namespace: Option<&str>,
) -> Result<(), ApiError> {
    if !resource.namespaced() {
        return Ok(());
    }
    let given = meta(body, "namespace");
    let ns = namespace.unwrap_or("");
    if !given.is_empty() && given != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    meta_mut(body).insert("namespace".into(), json!(ns));
    Ok(())
}

pub(crate) fn check_name(body: &Value, name: &str) -> Result<(), ApiError> {
    let given = meta(body, "name");
    if given != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// Server-set fields an update may not change.
pub(crate) fn keep_system_fields(resource: KubeResource, new: &mut Value, old: &Value) {
    let m = meta_mut(new);
    for k in [
        "uid",
        "creationTimestamp",
        "name",
        "namespace",
        "deletionTimestamp",
    ] {
        match old.get("metadata").and_then(|o| o.get(k)) {
            Some(v) => {
                m.insert(k.into(), v.clone());
            }
            None => {
                m.remove(k);
            }
        }
    }
    m.remove("resourceVersion");
    m.remove("generation");
    m.remove("selfLink");
    if resource == KubeResource::Namespaces {
        let name = meta(old, "name");
        labels_mut(new).insert(NAMESPACE_LABEL.into(), json!(name));
        if let Some(o) = old.as_object()
            && let Some(n) = new.as_object_mut()
        {
            for k in ["spec", "status"] {
                match o.get(k) {
                    Some(v) => n.insert(k.into(), v.clone()),
                    None => n.remove(k),
                };
            }
        }
    }
    if resource == KubeResource::Pods
        && let (Some(o), Some(n)) = (old.as_object(), new.as_object_mut())
    {
        match o.get("status") {
            Some(v) => n.insert("status".into(), v.clone()),
            None => n.remove("status"),
        };
    }
}

pub(crate) fn labels_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let m = meta_mut(obj);
    let l = m.entry("labels").or_insert_with(|| json!({}));
    if !l.is_object() {
        *l = json!({});
    }
    l.as_object_mut().expect("just made an object")
}

pub(crate) fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| GENERATE_NAME_CHARS[rng.gen_range(0..GENERATE_NAME_CHARS.len())] as char)
        .collect()
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
