//! The four PATCH flavours kube-apiserver accepts: JSON merge patch (RFC 7386,
//! what `kubectl annotate` and `kubectl label` send), strategic merge patch
//! (`kubectl patch`'s default), JSON patch (RFC 6902), and the merge step of
//! server-side apply.
//!
//! Strategic merge patch is implemented as merge patch plus its `$patch`
//! directives on maps; lists are replaced as a whole (the objects served here
//! have no merge-keyed lists that clients patch).

use serde_json::{Map, Value};

/// RFC 7386: `null` deletes, objects merge recursively, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_map) = target.as_object_mut() else {
        return;
    };
    for (k, v) in patch_map {
        if v.is_null() {
            target_map.remove(k);
        } else {
            let slot = target_map.entry(k.clone()).or_insert(Value::Null);
            merge_patch(slot, v);
        }
    }
}

/// How strategic merge patch merges a list (`patchStrategy`/`patchMergeKey`
/// of the Go types); lists not named here are replaced.
enum ListStrategy {
    /// Merge items by this key.
    Keyed(&'static str),
    /// Union of primitive values.
    Primitive,
}

fn list_strategy(path: &str) -> Option<ListStrategy> {
    match path {
        "secrets"
        | "imagePullSecrets"
        | "spec.containers"
        | "spec.initContainers"
        | "spec.ephemeralContainers"
        | "spec.volumes"
        | "spec.imagePullSecrets" => Some(ListStrategy::Keyed("name")),
        "metadata.ownerReferences" => Some(ListStrategy::Keyed("uid")),
        "metadata.finalizers" => Some(ListStrategy::Primitive),
        _ => None,
    }
}

/// Strategic merge patch for core objects: merge-patch semantics for maps,
/// `$patch: replace|delete`, merge-keyed lists (`secrets`, `imagePullSecrets`,
/// `ownerReferences`, pod containers and volumes; `$patch: delete` on an item),
/// union of `finalizers` with `$deleteFromPrimitiveList/finalizers`; ordering
/// directives (`$setElementOrder/...`, `$retainKeys`) are accepted and ignored.
pub(crate) fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    smp(target, patch, &mut Vec::new())
}

fn smp(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), String> {
    let Value::Object(patch_map) = patch else {
        if let (Value::Array(items), Value::Array(current)) = (patch, &mut *target)
            && let Some(strategy) = list_strategy(&path.join("."))
        {
            return merge_list(current, items, &strategy, path);
        }
        *target = strip_value(patch.clone());
        return Ok(());
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            *target = Value::Object(strip_directives(replaced));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other}")),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_map) = target.as_object_mut() else {
        return Ok(());
    };
    for (k, v) in patch_map {
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(current)), Some(remove)) =
                (target_map.get_mut(list), v.as_array())
            {
                current.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            target_map.remove(k);
            continue;
        }
        path.push(k.clone());
        let slot = target_map.entry(k.clone()).or_insert(Value::Null);
        let result = smp(slot, v, path);
        path.pop();
        result?;
        if slot.is_null() {
            target_map.remove(k);
        }
    }
    Ok(())
}

fn merge_list(
    current: &mut Vec<Value>,
    items: &[Value],
    strategy: &ListStrategy,
    path: &mut Vec<String>,
) -> Result<(), String> {
    match strategy {
        ListStrategy::Primitive => {
            for item in items {
                if !current.contains(item) {
                    current.push(item.clone());
                }
            }
        }
        ListStrategy::Keyed(key) => {
            for item in items {
                let Some(id) = item.get(*key) else {
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let pos = current.iter().position(|c| c.get(*key) == Some(id));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        current.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => smp(&mut current[i], item, path)?,
                    (None, false) => current.push(strip_value(item.clone())),
                }
            }
        }
    }
    Ok(())
}

fn strip_value(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives(m)),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_value).collect()),
        other => other,
    }
}

fn strip_directives(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| match v {
            Value::Object(m) => (k, Value::Object(strip_directives(m))),
            other => (k, other),
        })
        .collect()
}

/// RFC 6902 JSON patch. Errors carry the real server's wording where it has one.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let Some(ops) = ops.as_array() else {
        return Err("json: cannot unmarshal object into Go value of type jsonpatch.Patch".into());
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        match kind {
            "add" => add(target, path, value_of(op)?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value_of(op)?)?;
            }
            "test" => {
                let want = value_of(op)?;
                if target.pointer(path) != Some(&want) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                let value = if kind == "move" {
                    remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("doc is missing from path: {from}"))?
                };
                add(target, path, value)?;
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn value_of(op: &Value) -> Result<Value, String> {
    op.get("value")
        .cloned()
        .ok_or_else(|| "missing value".to_string())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    let last = path[idx + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..idx].to_string(), last))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let node = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("doc is missing path: {path}: missing value"))?;
    match node {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index {last:?} in {path}"))?;
            if i > a.len() {
                return Err(format!(
                    "add operation does not apply: doc is missing path: {path}"
                ));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: {path}: missing value")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    let node = target.pointer_mut(&parent).ok_or_else(missing)?;
    match node {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

/// The merge step of server-side apply: maps merge recursively, the applied
/// value wins for scalars and (atomic) lists, an explicit `null` clears.
pub(crate) fn ssa_merge(target: &mut Value, config: &Value) {
    let Value::Object(config_map) = config else {
        *target = config.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_map) = target.as_object_mut() else {
        return;
    };
    for (k, v) in config_map {
        if v.is_null() {
            target_map.remove(k);
        } else {
            let slot = target_map.entry(k.clone()).or_insert(Value::Null);
            ssa_merge(slot, v);
        }
    }
}

/// Go drops empty maps tagged `omitempty` when it stores an object, so an
/// object whose last label or annotation went away has no `labels` at all.
pub(crate) fn normalize_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["labels", "annotations"] {
            if meta
                .get(key)
                .is_some_and(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty))
            {
                meta.remove(key);
            }
        }
        for key in ["finalizers", "ownerReferences"] {
            if meta
                .get(key)
                .is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
            {
                meta.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_null_deletes() {
        let mut v = json!({"metadata": {"annotations": {"a": "1", "b": "2"}}});
        merge_patch(
            &mut v,
            &json!({"metadata": {"annotations": {"a": null, "c": "3"}}}),
        );
        assert_eq!(
            v,
            json!({"metadata": {"annotations": {"b": "2", "c": "3"}}})
        );
    }

    #[test]
    fn strategic_ignores_directives() {
        let mut v = json!({"metadata": {"labels": {"a": "1"}}});
        strategic_merge_patch(
            &mut v,
            &json!({"$setElementOrder/x": [], "metadata": {"labels": {"b": "2"}}}),
        )
        .expect("patch");
        assert_eq!(v, json!({"metadata": {"labels": {"a": "1", "b": "2"}}}));
    }

    #[test]
    fn strategic_merges_keyed_and_primitive_lists() {
        let mut v = json!({"metadata": {"finalizers": ["a"]},
                           "imagePullSecrets": [{"name": "x"}, {"name": "y"}]});
        strategic_merge_patch(
            &mut v,
            &json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
                    "imagePullSecrets": [{"name": "z"}, {"name": "x", "$patch": "delete"}]}),
        )
        .expect("patch");
        assert_eq!(
            v,
            json!({"metadata": {"finalizers": ["b"]},
                   "imagePullSecrets": [{"name": "y"}, {"name": "z"}]})
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut v = json!({"metadata": {"labels": {"a": "1"}}});
        json_patch(
            &mut v,
            &json!([
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "test", "path": "/metadata/labels/b", "value": "2"}
            ]),
        )
        .expect("patch");
        assert_eq!(v, json!({"metadata": {"labels": {"b": "2"}}}));
        assert!(json_patch(&mut v, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
