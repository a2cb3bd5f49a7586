//! What the emulated API serves: the resource kinds, their validation (with the
//! real validators' messages), the canonical JSON layout of a stored object,
//! and label / field selectors for lists.

use serde_json::{Map, Value};

use super::errors::FieldError;

/// A resource this API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KubeResource {
    Namespaces,
    ServiceAccounts,
    Pods,
}

impl KubeResource {
    /// Every served resource.
    pub(crate) const ALL: [KubeResource; 3] = [
        KubeResource::Namespaces,
        KubeResource::Pods,
        KubeResource::ServiceAccounts,
    ];

    /// Lower-case plural, as in paths and error messages.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            KubeResource::Namespaces => "namespaces",
            KubeResource::ServiceAccounts => "serviceaccounts",
            KubeResource::Pods => "pods",
        }
    }

    /// The object kind.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            KubeResource::Namespaces => "Namespace",
            KubeResource::ServiceAccounts => "ServiceAccount",
            KubeResource::Pods => "Pod",
        }
    }

    /// True for resources that live in a namespace.
    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, KubeResource::Namespaces)
    }

    /// Resources whose `status` is reset on writes to the main resource and
    /// therefore never owned by a field manager.
    pub(crate) fn resets_status(self) -> bool {
        matches!(self, KubeResource::Namespaces | KubeResource::Pods)
    }

    /// Parses a plural path segment.
    pub(crate) fn from_plural(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.plural() == s)
    }

    /// Parses a kind.
    pub(crate) fn from_kind(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.kind() == s)
    }

    /// Storage key of one object.
    pub(crate) fn key(self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced() => format!("{}/{ns}/{name}", self.plural()),
            _ => format!("{}/{name}", self.plural()),
        }
    }

    /// Storage key prefix of a list (`None` namespace = all namespaces).
    pub(crate) fn prefix(self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced() => format!("{}/{ns}/", self.plural()),
            _ => format!("{}/", self.plural()),
        }
    }
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `validation.RegexError`: the message, examples and the regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(is_dns_label)
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Errors of `ValidateObjectMeta`'s name check for this resource.
pub(crate) fn validate_name(resource: KubeResource, name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let field = "metadata.name";
    match resource {
        KubeResource::Namespaces => {
            if name.len() > 63 {
                errs.push(FieldError::invalid(
                    field,
                    name,
                    "must be no more than 63 characters",
                ));
            }
            if !is_dns_label(name) {
                errs.push(FieldError::invalid(
                    field,
                    name,
                    &regex_error(
                        DNS1123_LABEL_MSG,
                        DNS1123_LABEL_FMT,
                        &["my-name", "123-abc"],
                    ),
                ));
            }
        }
        KubeResource::ServiceAccounts | KubeResource::Pods => {
            if name.len() > 253 {
                errs.push(FieldError::invalid(
                    field,
                    name,
                    "must be no more than 253 characters",
                ));
            }
            if !is_dns_subdomain(name) {
                errs.push(FieldError::invalid(
                    field,
                    name,
                    &regex_error(
                        DNS1123_SUBDOMAIN_MSG,
                        &format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"),
                        &["example.com"],
                    ),
                ));
            }
        }
    }
    errs
}

/// `ValidateQualifiedName` of a label or annotation key.
fn validate_key(key: &str, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push(FieldError::invalid(
                field,
                key,
                "prefix part must be non-empty",
            ));
        } else if !is_dns_subdomain(p) {
            errs.push(FieldError::invalid(
                field,
                key,
                &format!(
                    "prefix part {}",
                    regex_error(
                        DNS1123_SUBDOMAIN_MSG,
                        &format!("{DNS1123_LABEL_FMT}(\\.{DNS1123_LABEL_FMT})*"),
                        &["example.com"],
                    )
                ),
            ));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::invalid(
            field,
            key,
            "name part must be non-empty",
        ));
    } else {
        if name.len() > 63 {
            errs.push(FieldError::invalid(
                field,
                key,
                "name part must be no more than 63 characters",
            ));
        }
        if !is_qualified_name_part(name) {
            errs.push(FieldError::invalid(
                field,
                key,
                &format!(
                    "name part {}",
                    regex_error(
                        QUALIFIED_NAME_MSG,
                        QUALIFIED_NAME_FMT,
                        &["MyName", "my.name", "123-abc"]
                    )
                ),
            ));
        }
    }
    errs
}

/// Validates what the real strategies validate for the fields we model:
/// name, label keys and values, annotation keys, and value types.
pub(crate) fn validate(resource: KubeResource, obj: &Value) -> Vec<FieldError> {
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        errs.extend(validate_name(resource, name));
    }
    if let Some(labels) = meta
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
    {
        for (k, v) in labels {
            errs.extend(validate_key(k, "metadata.labels"));
            match v.as_str() {
                Some(s) => {
                    if s.len() > 63 {
                        errs.push(FieldError::invalid(
                            "metadata.labels",
                            s,
                            "must be no more than 63 characters",
                        ));
                    }
                    if !(s.is_empty() || is_qualified_name_part(s)) {
                        errs.push(FieldError::invalid(
                            "metadata.labels",
                            s,
                            &regex_error(
                                LABEL_VALUE_MSG,
                                LABEL_VALUE_FMT,
                                &["MyValue", "my_value", "12345"],
                            ),
                        ));
                    }
                }
                None => errs.push(FieldError::invalid(
                    "metadata.labels",
                    &v.to_string(),
                    "must be a string",
                )),
            }
        }
    }
    if let Some(annotations) = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
    {
        for k in annotations.keys() {
            let lower = k.to_ascii_lowercase();
            errs.extend(validate_key(&lower, "metadata.annotations"));
        }
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total > 256 * 1024 {
            errs.push(FieldError {
                kind: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                body: format!("Too long: may not be more than 262144 bytes (was {total})"),
            });
        }
    }
    errs
}

/// Go's `ObjectMeta` field order.
const META_ORDER: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn body_order(resource: KubeResource) -> &'static [&'static str] {
    match resource {
        KubeResource::ServiceAccounts => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        KubeResource::Namespaces | KubeResource::Pods => &["spec", "status"],
    }
}

fn sorted_map(m: &Map<String, Value>) -> Value {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    Value::Object(
        keys.into_iter()
            .map(|k| (k.clone(), m[k].clone()))
            .collect(),
    )
}

/// Lays an object out the way the real server serialises it: `kind`,
/// `apiVersion`, `metadata` (in Go field order, map keys sorted), then the body.
pub(crate) fn canonicalize(resource: KubeResource, obj: &Value) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(resource.kind().into()));
    out.insert("apiVersion".into(), Value::String("v1".into()));
    if let Some(meta) = map.get("metadata").and_then(Value::as_object) {
        let mut m = Map::new();
        for k in META_ORDER {
            if let Some(v) = meta.get(k) {
                let v = match (k, v) {
                    ("labels" | "annotations", Value::Object(inner)) => sorted_map(inner),
                    _ => v.clone(),
                };
                m.insert(k.to_string(), v);
            }
        }
        for (k, v) in meta {
            if !m.contains_key(k) {
                m.insert(k.clone(), v.clone());
            }
        }
        out.insert("metadata".into(), Value::Object(m));
    }
    for k in body_order(resource) {
        if let Some(v) = map.get(*k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in map {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` (`a=b,c!=d,e in (f,g),!h`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

impl LabelSelector {
    /// Parses the selector syntax of `labels.Parse`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top_level(s) {
            let part = part.trim();
            let bad =
                || format!("unable to parse requirement: found '{part}', expected: identifier");
            if part.is_empty() {
                return Err(bad());
            }
            let req = if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), parse_set(rest).ok_or_else(bad)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), parse_set(rest).ok_or_else(bad)?)
            } else if part.contains(char::is_whitespace) {
                return Err(bad());
            } else {
                Requirement::Exists(part.to_string())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// True when the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the labels satisfy every requirement.
    pub(crate) fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed `fieldSelector` (`metadata.name=x,spec.serviceAccountName!=y`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

/// The field labels kube-apiserver lets a list select on (the v1 field
/// label conversions), with how each reads its value from the object.
#[derive(Clone, Copy)]
enum Selectable {
    /// A string at this JSON pointer (missing: empty).
    Str(&'static str),
    /// A boolean at this pointer, compared as Go's `strconv.FormatBool` (missing: `false`).
    Bool(&'static str),
    /// The first `status.podIPs[].ip` (what `status.podIP` selects on).
    FirstPodIp,
}

fn selectable(resource: KubeResource, field: &str) -> Option<Selectable> {
    use Selectable::*;
    match (resource, field) {
        (_, "metadata.name") => Some(Str("/metadata/name")),
        (_, "metadata.namespace") => Some(Str("/metadata/namespace")),
        (KubeResource::Namespaces, "status.phase") => Some(Str("/status/phase")),
        (KubeResource::Pods, "spec.serviceAccountName") => Some(Str("/spec/serviceAccountName")),
        (KubeResource::Pods, "spec.nodeName") => Some(Str("/spec/nodeName")),
        (KubeResource::Pods, "spec.restartPolicy") => Some(Str("/spec/restartPolicy")),
        (KubeResource::Pods, "spec.schedulerName") => Some(Str("/spec/schedulerName")),
        (KubeResource::Pods, "spec.hostNetwork") => Some(Bool("/spec/hostNetwork")),
        (KubeResource::Pods, "status.phase") => Some(Str("/status/phase")),
        (KubeResource::Pods, "status.podIP") => Some(FirstPodIp),
        (KubeResource::Pods, "status.nominatedNodeName") => Some(Str("/status/nominatedNodeName")),
        _ => None,
    }
}

impl Selectable {
    fn value(self, obj: &Value) -> String {
        match self {
            Selectable::Str(p) => obj
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            Selectable::Bool(p) => obj
                .pointer(p)
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            Selectable::FirstPodIp => obj
                .pointer("/status/podIPs/0/ip")
                .or_else(|| obj.pointer("/status/podIP"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    }
}

impl FieldSelector {
    /// Parses and checks that every field is selectable on this resource.
    pub(crate) fn parse(resource: KubeResource, s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(out));
        }
        for part in s.split(',') {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if selectable(resource, field).is_none() {
                return Err(format!("field label not supported: {field}"));
            }
            out.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(Self(out))
    }

    /// True when the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the object satisfies every term.
    pub(crate) fn matches(&self, resource: KubeResource, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, want)| {
            let got = selectable(resource, field)
                .map(|s| s.value(obj))
                .unwrap_or_default();
            (got == *want) == *eq
        })
    }
}

/// The fields a typed Go object has; anything else is an unknown field that
/// the real server drops (or refuses, with `fieldValidation=Strict` or in a
/// server-side apply). `None` means any shape is accepted (pods, maps).
fn known_fields(resource: KubeResource, path: &[&str]) -> Option<&'static [&'static str]> {
    // ObjectMeta's fields are the ones [`META_ORDER`] sorts.
    const META: &[&str] = &META_ORDER;
    const OBJECT_REFERENCE: &[&str] = &[
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ];
    match (resource, path) {
        (KubeResource::Pods, [] | ["spec" | "status", ..]) => None,
        (_, ["metadata"]) => Some(META),
        (KubeResource::ServiceAccounts, []) => Some(&[
            "apiVersion",
            "kind",
            "metadata",
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ]),
        (KubeResource::ServiceAccounts, ["secrets"]) => Some(OBJECT_REFERENCE),
        (KubeResource::ServiceAccounts, ["imagePullSecrets"]) => Some(&["name"]),
        (KubeResource::Namespaces, []) => {
            Some(&["apiVersion", "kind", "metadata", "spec", "status"])
        }
        (KubeResource::Namespaces, ["spec"]) => Some(&["finalizers"]),
        (KubeResource::Namespaces, ["status"]) => Some(&["phase", "conditions"]),
        _ => None,
    }
}

/// Removes fields the typed object does not have; returns their dotted paths
/// (`spec.foo`, `metadata.bogus`) in document order.
pub(crate) fn drop_unknown_fields(resource: KubeResource, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    prune(resource, obj, &mut Vec::new(), &mut dropped);
    dropped
}

fn prune(
    resource: KubeResource,
    value: &mut Value,
    path: &mut Vec<String>,
    dropped: &mut Vec<String>,
) {
    let borrowed: Vec<&str> = path.iter().map(String::as_str).collect();
    let known = known_fields(resource, &borrowed);
    match value {
        Value::Object(map) => {
            let Some(known) = known else {
                return;
            };
            // Report in document order, as Go's strict decoder does.
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                path.push(k.clone());
                if known.contains(&k.as_str()) {
                    if let Some(v) = map.get_mut(&k) {
                        prune(resource, v, path, dropped);
                    }
                } else {
                    map.remove(&k);
                    dropped.push(path.join("."));
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for item in items {
                prune(resource, item, path, dropped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_sa_name_message_matches_apimachinery() {
        let errs = validate_name(KubeResource::ServiceAccounts, "Bad_Name");
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].body,
            "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        let ns = validate_name(KubeResource::Namespaces, "a.b");
        assert!(ns[0].body.contains("(e.g. 'my-name',  or '123-abc', regex"));
    }

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front"});
        let l = labels.as_object();
        let ok = |s: &str| LabelSelector::parse(s).expect("parses").matches(l);
        assert!(ok("app=web"));
        assert!(ok("app==web,tier!=back"));
        assert!(ok("tier in (front, back)"));
        assert!(!ok("tier notin (front)"));
        assert!(ok("app,!missing"));
        assert!(!ok("missing"));
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn unknown_fields_are_dropped_and_named() {
        let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "bogus": 1,
            "metadata": {"name": "a", "annotation": {"x": "y"}, "labels": {"free": "form"}},
            "imagePullSecrets": [{"name": "s", "extra": true}]});
        let dropped = drop_unknown_fields(KubeResource::ServiceAccounts, &mut sa);
        assert_eq!(
            dropped,
            ["bogus", "metadata.annotation", "imagePullSecrets.extra"]
        );
        assert_eq!(sa["metadata"]["labels"]["free"], "form");
        let mut pod = json!({"spec": {"anything": 1}});
        assert!(drop_unknown_fields(KubeResource::Pods, &mut pod).is_empty());
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "sa"}});
        let sel =
            FieldSelector::parse(KubeResource::Pods, "spec.serviceAccountName=sa").expect("ok");
        assert!(sel.matches(KubeResource::Pods, &pod));
        let host = json!({"metadata": {"name": "h"}, "spec": {"hostNetwork": true}});
        let sel = FieldSelector::parse(KubeResource::Pods, "spec.hostNetwork=true").expect("ok");
        assert!(sel.matches(KubeResource::Pods, &host));
        assert!(!sel.matches(KubeResource::Pods, &pod));
        let sel =
            FieldSelector::parse(KubeResource::Pods, "spec.hostNetwork!=true,metadata.name=p")
                .expect("ok");
        assert!(sel.matches(KubeResource::Pods, &pod));
        assert!(
            FieldSelector::parse(KubeResource::Pods, "spec.hostNetwork=false")
                .expect("ok")
                .matches(KubeResource::Pods, &pod)
        );
        assert_eq!(
            FieldSelector::parse(KubeResource::ServiceAccounts, "spec.x=y").err(),
            Some("field label not supported: spec.x".to_string())
        );
    }
}
