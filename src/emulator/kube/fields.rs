//! Field sets, the currency of server-side apply: which fields of an object a
//! manager owns, in the `FieldsV1` trie encoding of `managedFields`
//! (`{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`), plus the two ways the
//! real server derives them (structured-merge-diff's `ToFieldSet` for applied
//! configurations and `Compare` for updates).
//!
//! Lists are treated as atomic (a whole list is one field). The real server
//! merges some lists by key (`ownerReferences`, pod `containers`); the objects
//! this emulator serves are only ever managed through maps and scalars.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths stored as a trie. A node is a *member* when its own
/// path is in the set; intermediate nodes exist only to reach members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    member: bool,
    /// Keyed by the encoded path element (`f:name`).
    children: BTreeMap<String, FieldSet>,
}

/// One path, as encoded path elements (`["f:metadata", "f:labels", "f:app"]`).
pub(crate) type FieldPath = Vec<String>;

impl FieldSet {
    /// The empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// True when no path is a member.
    pub(crate) fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds one path.
    pub(crate) fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((head, rest)) => self.children.entry(head.clone()).or_default().insert(rest),
        }
    }

    /// True when `path` is a member.
    pub(crate) fn contains(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((head, rest)) => self.children.get(head).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Every member path, in sorted order.
    pub(crate) fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<FieldPath>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Members of either set.
    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for p in other.paths() {
            out.insert(&p);
        }
        out
    }

    /// Members of `self` that are not members of `other`.
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for p in self.paths() {
            if !other.contains(&p) {
                out.insert(&p);
            }
        }
        out
    }

    /// Members of both sets.
    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for p in self.paths() {
            if other.contains(&p) {
                out.insert(&p);
            }
        }
        out
    }

    /// Removes `path` and everything below it.
    pub(crate) fn remove_subtree(&mut self, path: &[String]) {
        match path.split_first() {
            None => *self = FieldSet::new(),
            Some((head, rest)) => {
                if rest.is_empty() {
                    self.children.remove(head);
                } else if let Some(c) = self.children.get_mut(head) {
                    c.remove_subtree(rest);
                }
            }
        }
    }

    /// Removes only the membership of `path`, keeping its descendants.
    pub(crate) fn remove_member(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = false,
            Some((head, rest)) => {
                if let Some(c) = self.children.get_mut(head) {
                    c.remove_member(rest);
                }
            }
        }
    }

    /// True when some member lies strictly below `path`.
    pub(crate) fn has_descendants(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.children.values().any(|c| !c.is_empty()),
            Some((head, rest)) => self
                .children
                .get(head)
                .is_some_and(|c| c.has_descendants(rest)),
        }
    }

    /// The `fieldsV1` JSON form.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        let pruned: Vec<(&String, &FieldSet)> = self
            .children
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if self.member && !pruned.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in pruned {
            map.insert(k.clone(), c.to_json());
        }
        Value::Object(map)
    }

    /// Parses the `fieldsV1` JSON form. The root of the trie is never a member.
    pub(crate) fn from_json(value: &Value) -> Result<FieldSet, String> {
        let mut out = Self::parse_node(value)?;
        out.member = false;
        Ok(out)
    }

    fn parse_node(value: &Value) -> Result<FieldSet, String> {
        let map = value
            .as_object()
            .ok_or_else(|| format!("fieldsV1 node must be an object, got {value}"))?;
        let mut out = FieldSet {
            member: true,
            children: BTreeMap::new(),
        };
        let mut has_dot = false;
        for (k, v) in map {
            if k == "." {
                has_dot = true;
                continue;
            }
            let prefix = k.get(..2).unwrap_or("");
            if !matches!(prefix, "f:" | "k:" | "v:" | "i:") {
                return Err(format!("unknown path element {k:?} in fieldsV1"));
            }
            out.children.insert(k.clone(), Self::parse_node(v)?);
        }
        // A node with children is a member only when it says so with ".".
        if !out.children.is_empty() {
            out.member = has_dot;
        }
        Ok(out)
    }
}

/// Encodes an object key as a path element.
pub(crate) fn field(name: &str) -> String {
    format!("f:{name}")
}

/// `.metadata.annotations.iam.gke.io/x`, as `fieldpath.Path.String()` renders it.
pub(crate) fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for el in path {
        if let Some(name) = el.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = el.strip_prefix("k:") {
            let rendered = serde_json::from_str::<Map<String, Value>>(key)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|_| key.to_string());
            out.push_str(&format!("[{rendered}]"));
        } else if let Some(v) = el.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = el.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

/// `ToFieldSet` of an applied configuration: every scalar, null, list and
/// empty map is a member; non-empty maps only lead to their members.
pub(crate) fn to_field_set(value: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    if let Value::Object(map) = value {
        walk_config(map, &mut Vec::new(), &mut set);
    }
    set
}

fn walk_config(map: &Map<String, Value>, prefix: &mut Vec<String>, set: &mut FieldSet) {
    for (k, v) in map {
        prefix.push(field(k));
        match v {
            Value::Object(child) if !child.is_empty() => walk_config(child, prefix, set),
            _ => set.insert(prefix),
        }
        prefix.pop();
    }
}

/// The outcome of comparing two versions of an object (`typed.Comparison`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// True when nothing changed.
    pub(crate) fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// `Compare(old, new)`: leaves that appeared, changed or disappeared, plus maps
/// that appeared or disappeared as a whole (the source of `".": {}` entries).
pub(crate) fn compare(old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    compare_node(Some(old), Some(new), &mut Vec::new(), &mut out);
    out
}

fn compare_node(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Vec<String>,
    out: &mut Comparison,
) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(field(k));
                compare_node(a.get(k), b.get(k), path, out);
                path.pop();
            }
        }
        (None, Some(Value::Object(b))) => {
            out.added.insert(path);
            for (k, v) in b {
                path.push(field(k));
                compare_node(None, Some(v), path, out);
                path.pop();
            }
        }
        (Some(Value::Object(a)), None) => {
            out.removed.insert(path);
            for (k, v) in a {
                path.push(field(k));
                compare_node(Some(v), None, path, out);
                path.pop();
            }
        }
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(a), Some(b)) => {
            if a != b {
                out.modified.insert(path);
            }
        }
        (None, None) => {}
    }
}

/// Paths the real server never tracks (`stripMetaManager`), plus `status` for
/// resources whose status is reset on writes to the main resource.
pub(crate) fn strip(set: &mut FieldSet, strip_status: bool) {
    for name in ["apiVersion", "kind"] {
        set.remove_subtree(&[field(name)]);
    }
    set.remove_member(&[field("metadata")]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        set.remove_subtree(&[field("metadata"), field(name)]);
    }
    if strip_status {
        set.remove_subtree(&[field("status")]);
    }
}

/// Strips all three sets of a comparison.
pub(crate) fn strip_comparison(cmp: &mut Comparison, strip_status: bool) {
    strip(&mut cmp.added, strip_status);
    strip(&mut cmp.modified, strip_status);
    strip(&mut cmp.removed, strip_status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(parts: &[&str]) -> FieldPath {
        parts.iter().map(|s| field(s)).collect()
    }

    #[test]
    fn added_map_gets_a_dot() {
        let old = json!({"metadata": {"name": "a"}});
        let new = json!({"metadata": {"name": "a", "annotations": {"k": "v"}}});
        let mut cmp = compare(&old, &new);
        strip_comparison(&mut cmp, false);
        assert_eq!(
            cmp.added.to_json(),
            json!({"f:metadata": {"f:annotations": {".": {}, "f:k": {}}}})
        );
    }

    #[test]
    fn applied_config_has_no_dots() {
        let mut set = to_field_set(&json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "a", "namespace": "n", "labels": {"x": "y"}}
        }));
        strip(&mut set, false);
        assert_eq!(
            set.to_json(),
            json!({"f:metadata": {"f:labels": {"f:x": {}}}})
        );
    }

    #[test]
    fn json_round_trip_and_set_algebra() {
        let j = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}, "f:b": {}}}});
        let s = FieldSet::from_json(&j).expect("parses");
        assert_eq!(s.to_json(), j);
        assert!(s.contains(&p(&["metadata", "labels"])));
        let mut only_a = FieldSet::new();
        only_a.insert(&p(&["metadata", "labels", "a"]));
        assert_eq!(
            s.difference(&only_a).to_json(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:b": {}}}})
        );
        assert_eq!(
            path_string(&p(&[
                "metadata",
                "annotations",
                "iam.gke.io/gcp-service-account"
            ])),
            ".metadata.annotations.iam.gke.io/gcp-service-account"
        );
    }
}
