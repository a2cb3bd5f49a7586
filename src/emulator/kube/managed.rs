//! `metadata.managedFields`: who owns which field, and how every write changes
//! that. Follows the real server's field manager (structured-merge-diff's
//! `Updater.Update`/`Updater.Apply` behind apimachinery's `managedFieldsUpdater`
//! and `stripMetaManager`) so that ownership, conflicts and the removal of
//! fields an applier stops applying behave as on a real cluster.

use serde_json::{Map, Value, json};

use super::errors::{ApiError, Cause};
use super::fields::{self, Comparison, FieldSet};
use super::patch;

/// `Apply` or `Update`, the two operations a manager entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub set: FieldSet,
    pub subresource: String,
}

impl Entry {
    fn is(&self, manager: &str, op: Operation) -> bool {
        self.manager == manager && self.operation == op && self.subresource.is_empty()
    }

    /// How a conflict message names this manager (`printManager`).
    fn printed(&self) -> String {
        let name = serde_json::to_string(&self.manager).unwrap_or_default();
        let name = if self.subresource.is_empty() {
            name
        } else {
            format!("{name} with subresource {:?}", self.subresource)
        };
        match self.operation {
            Operation::Apply => name,
            Operation::Update => format!("{name} using {}", self.api_version),
        }
    }
}

/// Reads the entries of an object's `metadata.managedFields`.
pub(crate) fn decode(obj: &Value) -> Result<Vec<Entry>, String> {
    let Some(list) = obj.pointer("/metadata/managedFields") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err("metadata.managedFields must be a list".into());
    };
    let mut out = Vec::new();
    for item in list {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let operation = match text("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(format!("unknown managedFields operation {other:?}")),
        };
        let set = match item.get("fieldsV1") {
            Some(v) => FieldSet::from_json(v)?,
            None => FieldSet::new(),
        };
        out.push(Entry {
            manager: text("manager"),
            operation,
            api_version: text("apiVersion"),
            time: item.get("time").and_then(Value::as_str).map(str::to_string),
            set,
            subresource: text("subresource"),
        });
    }
    Ok(out)
}

/// Writes entries back in the real server's order: Apply before Update, then
/// by time, manager and apiVersion.
pub(crate) fn encode(entries: &[Entry]) -> Value {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| {
                a.time
                    .clone()
                    .unwrap_or_default()
                    .cmp(&b.time.clone().unwrap_or_default())
            })
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation.as_str()));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.set.to_json());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), json!(e.subresource));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

fn stripped_compare(old: &Value, new: &Value, strip_status: bool) -> Comparison {
    let mut cmp = fields::compare(old, new);
    fields::strip_comparison(&mut cmp, strip_status);
    cmp
}

/// Records a non-apply write (create, update, patch) by `manager`: it takes
/// every field it added or changed from whoever owned it, nobody keeps fields
/// that disappeared, and its entry's time moves only if it gained fields.
pub(crate) fn record_update(
    mut entries: Vec<Entry>,
    live: &Value,
    new: &Value,
    manager: &str,
    strip_status: bool,
    now: &str,
) -> Vec<Entry> {
    let cmp = stripped_compare(live, new, strip_status);
    let changed = cmp.added.union(&cmp.modified);
    for e in &mut entries {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    let gained = changed.difference(&cmp.removed);
    if !gained.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.is(manager, Operation::Update))
        {
            Some(e) => {
                e.set = gained.union(&e.set);
                e.api_version = "v1".into();
                e.time = Some(now.to_string());
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version: "v1".into(),
                time: Some(now.to_string()),
                set: gained,
                subresource: String::new(),
            }),
        }
    }
    entries.retain(|e| !e.set.is_empty());
    entries
}

/// The result of a server-side apply.
pub(crate) struct Applied {
    pub object: Value,
    pub entries: Vec<Entry>,
}

/// Server-side apply of `config` by `manager` onto `live` (an empty object when
/// the apply creates it). Fields the manager applied before and omits now are
/// removed unless someone else owns them; changing a field another manager
/// owns is a conflict unless `force`.
pub(crate) fn record_apply(
    mut entries: Vec<Entry>,
    live: &Value,
    config: &Value,
    manager: &str,
    force: bool,
    strip_status: bool,
    now: &str,
) -> Result<Applied, ApiError> {
    let mut merged = live.clone();
    patch::ssa_merge(&mut merged, config);

    let mut new_set = fields::to_field_set(config);
    fields::strip(&mut new_set, strip_status);
    let last_set = entries
        .iter()
        .find(|e| e.is(manager, Operation::Apply))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !e.is(manager, Operation::Apply))
        .fold(FieldSet::new(), |acc, e| acc.union(&e.set));
    let kept = new_set.union(&others);
    let released = last_set.difference(&kept);
    for path in released.paths() {
        if kept.has_descendants(&path) {
            continue;
        }
        remove_path(&mut merged, &path);
    }
    patch::normalize_metadata(&mut merged);

    let cmp = stripped_compare(live, &merged, strip_status);
    let changed = cmp.added.union(&cmp.modified);
    let mut conflicts: Vec<(String, String, String)> = Vec::new();
    for e in entries.iter().filter(|e| !e.is(manager, Operation::Apply)) {
        for p in e.set.intersection(&changed).paths() {
            conflicts.push((e.manager.clone(), e.printed(), fields::path_string(&p)));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(conflicts));
    }
    for e in entries
        .iter_mut()
        .filter(|e| !e.is(manager, Operation::Apply))
    {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    let object_changed = !cmp.is_same();
    match entries.iter_mut().find(|e| e.is(manager, Operation::Apply)) {
        Some(e) => {
            e.set = new_set;
            e.api_version = config
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("v1")
                .to_string();
            if object_changed || e.time.is_none() {
                e.time = Some(now.to_string());
            }
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: Operation::Apply,
            api_version: config
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("v1")
                .to_string(),
            time: Some(now.to_string()),
            set: new_set,
            subresource: String::new(),
        }),
    }
    entries.retain(|e| !e.set.is_empty());
    Ok(Applied {
        object: merged,
        entries,
    })
}

fn conflict_error(mut conflicts: Vec<(String, String, String)>) -> ApiError {
    conflicts.sort();
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(_, printed, path)| Cause {
            kind: "FieldManagerConflict".into(),
            message: format!("conflict with {printed}"),
            field: path.clone(),
        })
        .collect();
    let message = if conflicts.len() == 1 {
        let (_, printed, path) = &conflicts[0];
        format!("Apply failed with 1 conflict: conflict with {printed}: {path}")
    } else {
        let mut lines = Vec::new();
        let mut current = String::new();
        for (_, printed, path) in &conflicts {
            if *printed != current {
                lines.push(format!("conflicts with {printed}:"));
                current = printed.clone();
            }
            lines.push(format!("- {path}"));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(message, causes)
}

/// Removes the value at an encoded path, if present.
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for el in parents {
        let Some(name) = el.strip_prefix("f:") else {
            return;
        };
        match node.get_mut(name) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let (Some(name), Some(map)) = (last.strip_prefix("f:"), node.as_object_mut()) {
        map.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn sa(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "a", "namespace": "n", "annotations": annotations}})
    }

    #[test]
    fn conflict_then_force_then_release() {
        let base = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                          "metadata": {"name": "a", "namespace": "n"}});
        let annotated = sa(json!({"k": "other"}));
        let entries = record_update(
            Vec::new(),
            &base,
            &annotated,
            "kubectl-annotate",
            false,
            NOW,
        );
        let err = record_apply(
            entries.clone(),
            &annotated,
            &sa(json!({"k": "mine"})),
            "wi",
            false,
            false,
            NOW,
        )
        .err()
        .expect("conflict");
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-annotate\" using v1: .metadata.annotations.k"
        );
        let forced = record_apply(
            entries,
            &annotated,
            &sa(json!({"k": "mine"})),
            "wi",
            true,
            false,
            NOW,
        )
        .expect("forced");
        assert_eq!(
            forced.object.pointer("/metadata/annotations/k"),
            Some(&json!("mine"))
        );
        let released = record_apply(
            forced.entries,
            &forced.object,
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "n"}}),
            "wi",
            false,
            false,
            NOW,
        )
        .expect("release");
        assert_eq!(released.object.pointer("/metadata/annotations/k"), None);
    }

    #[test]
    fn same_value_is_shared_not_conflicting() {
        let base = json!({"metadata": {"name": "a"}});
        let annotated = sa(json!({"k": "v"}));
        let entries = record_update(
            Vec::new(),
            &base,
            &annotated,
            "kubectl-annotate",
            false,
            NOW,
        );
        let applied = record_apply(
            entries,
            &annotated,
            &sa(json!({"k": "v"})),
            "wi",
            false,
            false,
            NOW,
        )
        .expect("no conflict");
        assert_eq!(applied.entries.len(), 2);
        let released = record_apply(
            applied.entries,
            &applied.object,
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}),
            "wi",
            false,
            false,
            NOW,
        )
        .expect("release");
        assert_eq!(
            released.object.pointer("/metadata/annotations/k"),
            Some(&json!("v"))
        );
    }
}
