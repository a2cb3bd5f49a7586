//! The object store and the registry semantics of each verb: defaults the
//! server fills in, validation, namespace lifecycle, optimistic concurrency on
//! `resourceVersion`, managed fields, dry runs. Pure functions over
//! [`KubeClusterState`]; the HTTP layer only parses and renders.

use serde_json::{Value, json};

use super::KubeClusterState;
use super::errors::{ApiError, FieldError};
use super::managed::{self, Entry};
use super::objects::{self, FieldSelector, KubeResource, LabelSelector};
use super::patch;
use super::validation::{
    NAMESPACE_LABEL, check_apply_schema, check_kind, check_name, check_namespace, invalid,
    json_type, keep_system_fields, labels_mut, meta, meta_mut, random_suffix, set_managed_fields,
    without_managed_fields,
};

/// `fieldValidation`: what to do with fields the typed object does not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in `Warning` headers (the server default).
    #[default]
    Warn,
    /// Refuse the request (kubectl's default).
    Strict,
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub(crate) struct WriteOptions {
    /// Run admission plugins that need other objects (pods need their
    /// service account); off for seeds, which may come in any order.
    pub admission: bool,
    /// What to do with unknown fields.
    pub field_validation: FieldValidation,
    /// Field manager of the write (`fieldManager` or the User-Agent prefix).
    pub manager: String,
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// RFC 3339 time of the request, to the second.
    pub now: String,
}

/// The body format of a PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Strategic,
    Json,
}

/// `limit` and `continue` of a list request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// The continue token kube-apiserver hands out: base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`.
fn encode_continue(last_key: &str, rv: u64) -> String {
    use base64::Engine as _;
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{last_key}\u{0}")});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| invalid(&e.to_string()))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(invalid("server does not recognize this encoded key"));
    }
    v.get("start")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| invalid("encoded key has no start"))
}

/// One change, as a watcher sees it.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub resource: KubeResource,
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The object after the change (before it, for `DELETED`), canonical.
    pub object: Value,
}

/// Outcome of a write: the object to return and whether it was created.
pub(crate) struct Written {
    pub object: Value,
    pub created: bool,
    pub changed: bool,
    /// `Warning` header texts (dropped unknown fields).
    pub warnings: Vec<String>,
}

/// The manager kube-apiserver gives the fields of an object that had no
/// managed fields when it was first applied to.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Drops unknown fields per `fieldValidation`; returns the warnings to send.
fn check_unknown_fields(
    resource: KubeResource,
    obj: &mut Value,
    opts: &WriteOptions,
    patching: bool,
) -> Result<Vec<String>, ApiError> {
    let dropped = objects::drop_unknown_fields(resource, obj);
    if dropped.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = dropped
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match opts.field_validation {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(list),
        FieldValidation::Strict => {
            let detail = format!("strict decoding error: {}", list.join(", "));
            let kind = resource.kind();
            Err(ApiError::bad_request(if patching {
                detail
            } else {
                format!("{kind} in version \"v1\" cannot be handled as a {kind}: {detail}")
            }))
        }
    }
}

impl KubeClusterState {
    /// Stores an object (whose resourceVersion is already set) and records
    /// the change for watchers.
    fn put(&mut self, resource: KubeResource, key: String, obj: Value, added: bool) {
        let rv = meta(&obj, "resourceVersion")
            .parse()
            .unwrap_or(self.resource_version);
        self.pending.push(Event {
            kind: if added { "ADDED" } else { "MODIFIED" },
            resource,
            rv,
            object: objects::canonicalize(resource, &obj),
        });
        self.objects.insert(key, obj);
    }

    /// Removes an object as its own change and records it for watchers.
    fn take(&mut self, resource: KubeResource, key: &str) {
        if let Some(mut obj) = self.objects.remove(key) {
            let rv = self.next_rv();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
            self.pending.push(Event {
                kind: "DELETED",
                resource,
                rv: self.resource_version,
                object: objects::canonicalize(resource, &obj),
            });
        }
    }

    /// Changes recorded since the last call, oldest first.
    pub(crate) fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.pending)
    }

    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// The current list resourceVersion.
    pub(crate) fn current_rv(&self) -> String {
        self.resource_version.to_string()
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&KubeResource::Namespaces.key(None, ns))
    }

    /// GET one object.
    pub(crate) fn get(
        &self,
        resource: KubeResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.objects
            .get(&resource.key(namespace, name))
            .map(|o| objects::canonicalize(resource, o))
            .ok_or_else(|| ApiError::not_found(resource.plural(), name))
    }

    /// LIST, filtered by selectors and paged by `limit`/`continue`; items come
    /// in key order, without `kind`/`apiVersion`, as the real server returns them.
    pub(crate) fn list(
        &self,
        resource: KubeResource,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        page: &Page,
    ) -> Result<Value, ApiError> {
        let prefix = resource.prefix(namespace);
        let start = match &page.continue_token {
            Some(token) => decode_continue(token)?,
            None => prefix.clone(),
        };
        let filtered = labels.is_empty() && fields.is_empty();
        let matching = self
            .objects
            .range(start..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, o)| {
                labels.matches(o.pointer("/metadata/labels").and_then(Value::as_object))
                    && fields.matches(resource, o)
            });
        let mut items = Vec::new();
        let mut last_key = None;
        let limit = page.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        for (k, o) in matching {
            if items.len() == limit {
                break;
            }
            let mut c = objects::canonicalize(resource, o);
            if let Some(m) = c.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            items.push(c);
            last_key = Some(k.clone());
        }
        let remaining = if items.len() == limit {
            self.objects
                .range(format!("{}\u{0}", last_key.clone().unwrap_or_default())..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, o)| {
                    labels.matches(o.pointer("/metadata/labels").and_then(Value::as_object))
                        && fields.matches(resource, o)
                })
                .count()
        } else {
            0
        };
        let mut metadata = json!({"resourceVersion": self.current_rv()});
        if remaining > 0
            && let Some(last) = last_key
        {
            metadata["continue"] = json!(encode_continue(&last, self.resource_version));
            if filtered {
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        Ok(json!({
            "kind": format!("{}List", resource.kind()),
            "apiVersion": "v1",
            "metadata": metadata,
            "items": items,
        }))
    }

    /// POST: create an object.
    pub(crate) fn create(
        &mut self,
        resource: KubeResource,
        namespace: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_kind(resource, &body)?;
        check_namespace(resource, &mut body, namespace)?;
        let warnings = check_unknown_fields(resource, &mut body, opts, false)?;
        if meta(&body, "name").is_empty() {
            let generate = meta(&body, "generateName");
            if !generate.is_empty() {
                let name = format!("{generate}{}", random_suffix());
                meta_mut(&mut body).insert("name".into(), json!(name));
            }
        }
        let name = meta(&body, "name");
        if !meta(&body, "resourceVersion").is_empty() {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let initial = match body.pointer("/metadata/managedFields") {
            Some(_) => managed::decode(&body).map_err(ApiError::bad_request)?,
            None => Vec::new(),
        };
        if let Some(o) = body.as_object_mut() {
            o.insert("apiVersion".into(), json!("v1"));
            o.insert("kind".into(), json!(resource.kind()));
        }
        if resource == KubeResource::Namespaces && !name.is_empty() {
            labels_mut(&mut body).insert(NAMESPACE_LABEL.into(), json!(name));
        }
        patch::normalize_metadata(&mut body);
        // Mutating admission (NamespaceLifecycle, ServiceAccount) runs before
        // the strategy's validation, so a missing namespace wins over a bad name.
        if let Some(ns) = namespace
            && resource.namespaced()
            && !self.namespace_exists(ns)
        {
            return Err(ApiError::not_found("namespaces", ns));
        }
        if resource == KubeResource::Pods && opts.admission {
            self.admit_pod(namespace.unwrap_or(""), &name, &mut body)?;
        }
        let errs = objects::validate(resource, &body);
        if !errs.is_empty() {
            return Err(invalid(resource, &name, errs));
        }
        let key = resource.key(namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(resource.plural(), &name));
        }
        let entries = managed::record_update(
            initial,
            &json!({}),
            &without_managed_fields(&body),
            &opts.manager,
            resource.resets_status(),
            &opts.now,
        );
        let mut obj = without_managed_fields(&body);
        self.fill_create_defaults(resource, &mut obj, &opts.now);
        set_managed_fields(&mut obj, &entries);
        if !opts.dry_run {
            let rv = self.next_rv();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
            self.put(resource, key, obj.clone(), true);
            if resource == KubeResource::Namespaces {
                self.ensure_default_service_account(&name, &opts.now);
            }
        }
        Ok(Written {
            object: objects::canonicalize(resource, &obj),
            created: true,
            changed: !opts.dry_run,
            warnings,
        })
    }

    /// The ServiceAccount admission plugin for a new pod: default
    /// `serviceAccountName` to `default` and refuse a pod whose account is missing.
    fn admit_pod(&self, namespace: &str, name: &str, pod: &mut Value) -> Result<(), ApiError> {
        if !pod.get("spec").is_some_and(Value::is_object)
            && let Some(o) = pod.as_object_mut()
        {
            o.insert("spec".into(), json!({}));
        }
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let account = spec
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string();
        spec.insert("serviceAccountName".into(), json!(account));
        spec.insert("serviceAccount".into(), json!(account));
        let key = KubeResource::ServiceAccounts.key(Some(namespace), &account);
        if !self.objects.contains_key(&key) {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "pods \"{name}\" is forbidden: error looking up service account {namespace}/{account}: serviceaccount \"{account}\" not found"
                ),
                details: Some(Box::new(super::errors::Details {
                    name: name.to_string(),
                    kind: "pods".into(),
                    ..Default::default()
                })),
            });
        }
        Ok(())
    }

    /// What kube-controller-manager's serviceaccount controller does right
    /// after a namespace appears: give it a `default` service account.
    fn ensure_default_service_account(&mut self, namespace: &str, now: &str) {
        let key = KubeResource::ServiceAccounts.key(Some(namespace), "default");
        if self.objects.contains_key(&key) {
            return;
        }
        let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": "default", "namespace": namespace}});
        self.fill_create_defaults(KubeResource::ServiceAccounts, &mut sa, now);
        let rv = self.next_rv();
        meta_mut(&mut sa).insert("resourceVersion".into(), json!(rv));
        self.put(KubeResource::ServiceAccounts, key, sa, true);
    }

    fn fill_create_defaults(&self, resource: KubeResource, obj: &mut Value, now: &str) {
        let m = meta_mut(obj);
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now));
        m.remove("generation");
        m.remove("selfLink");
        m.remove("deletionTimestamp");
        let Some(o) = obj.as_object_mut() else {
            return;
        };
        match resource {
            KubeResource::Namespaces => {
                o.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
                o.insert("status".into(), json!({"phase": "Active"}));
            }
            KubeResource::Pods => {
                if !o.contains_key("status") {
                    o.insert(
                        "status".into(),
                        json!({"phase": "Pending", "qosClass": "BestEffort"}),
                    );
                }
            }
            KubeResource::ServiceAccounts => {}
        }
    }

    /// Stores `new` in place of `old` (both without managed fields) with the
    /// given entries, unless nothing changed; bumps the resourceVersion.
    fn commit(
        &mut self,
        resource: KubeResource,
        key: String,
        old: &Value,
        mut new: Value,
        entries: &[Entry],
        dry_run: bool,
    ) -> Written {
        set_managed_fields(&mut new, entries);
        let mut old_cmp = old.clone();
        if let Some(m) = old_cmp.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        if new == old_cmp {
            return Written {
                object: objects::canonicalize(resource, old),
                created: false,
                changed: false,
                warnings: Vec::new(),
            };
        }
        let rv = if dry_run {
            meta(old, "resourceVersion")
        } else {
            self.next_rv()
        };
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
        if !dry_run {
            self.put(resource, key, new.clone(), false);
        }
        Written {
            object: objects::canonicalize(resource, &new),
            created: false,
            changed: !dry_run,
            warnings: Vec::new(),
        }
    }

    fn existing(
        &self,
        resource: KubeResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(String, Value), ApiError> {
        let key = resource.key(namespace, name);
        let obj = self
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource.plural(), name))?;
        Ok((key, obj))
    }

    /// PUT: replace an object, guarded by `resourceVersion` when given.
    pub(crate) fn update(
        &mut self,
        resource: KubeResource,
        namespace: Option<&str>,
        name: &str,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_kind(resource, &body)?;
        check_name(&body, name)?;
        check_namespace(resource, &mut body, namespace)?;
        let (key, old) = self.existing(resource, namespace, name)?;
        let warnings = check_unknown_fields(resource, &mut body, opts, false)?;
        let rv = meta(&body, "resourceVersion");
        if !rv.is_empty() && rv != meta(&old, "resourceVersion") {
            return Err(ApiError::conflict_modified(resource.plural(), name));
        }
        let mut written = self.finish_update(resource, key, old, body, opts)?;
        written.warnings = warnings;
        Ok(written)
    }

    fn finish_update(
        &mut self,
        resource: KubeResource,
        key: String,
        old: Value,
        mut new: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let name = meta(&old, "name");
        let entries = match new.pointer("/metadata/managedFields") {
            Some(Value::Array(a)) if a.is_empty() => Vec::new(),
            Some(Value::Null) | None => managed::decode(&old).map_err(ApiError::internal)?,
            Some(_) => managed::decode(&new).map_err(|e| {
                invalid(
                    resource,
                    &name,
                    vec![FieldError::invalid("metadata.managedFields", "", &e)],
                )
            })?,
        };
        if let Some(o) = new.as_object_mut() {
            o.insert("apiVersion".into(), json!("v1"));
            o.insert("kind".into(), json!(resource.kind()));
        }
        keep_system_fields(resource, &mut new, &old);
        let mut new = without_managed_fields(&new);
        patch::normalize_metadata(&mut new);
        let errs = objects::validate(resource, &new);
        if !errs.is_empty() {
            return Err(invalid(resource, &name, errs));
        }
        let mut old_plain = without_managed_fields(&old);
        if let Some(m) = old_plain.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        // kube-apiserver's skipNonAppliedManager: an update of an object that
        // has no managed fields (never applied, created without fields, or
        // reset with `managedFields: []`) is not tracked.
        let entries = if entries.is_empty() {
            entries
        } else {
            managed::record_update(
                entries,
                &old_plain,
                &new,
                &opts.manager,
                resource.resets_status(),
                &opts.now,
            )
        };
        Ok(self.commit(resource, key, &old, new, &entries, opts.dry_run))
    }

    /// PATCH with a merge, strategic merge or JSON patch.
    pub(crate) fn patch(
        &mut self,
        resource: KubeResource,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (key, old) = self.existing(resource, namespace, name)?;
        let mut patched = old.clone();
        match kind {
            PatchKind::Merge => patch::merge_patch(&mut patched, body),
            PatchKind::Strategic => {
                patch::strategic_merge_patch(&mut patched, body).map_err(ApiError::bad_request)?
            }
            PatchKind::Json => patch::json_patch(&mut patched, body).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: "the server rejected our request due to an error in our request".into(),
                details: Some(Box::new(super::errors::Details {
                    causes: vec![super::errors::Cause {
                        kind: "UnexpectedServerResponse".into(),
                        message: e,
                        field: String::new(),
                    }],
                    ..Default::default()
                })),
            })?,
        }
        let warnings = check_unknown_fields(resource, &mut patched, opts, true)?;
        let rv = meta(&patched, "resourceVersion");
        if rv != meta(&old, "resourceVersion") {
            return Err(ApiError::conflict_modified(resource.plural(), name));
        }
        let mut written = self.finish_update(resource, key, old, patched, opts)?;
        written.warnings = warnings;
        Ok(written)
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        resource: KubeResource,
        namespace: Option<&str>,
        name: &str,
        mut config: Value,
        force: bool,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let Some(map) = config.as_object() else {
            return Err(ApiError::bad_request(format!(
                "error decoding YAML: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(&config)
            )));
        };
        // kube-apiserver's versionCheckManager: the applied object must be
        // exactly this resource's group/version/kind (a missing apiVersion or
        // kind included), before any name or schema check.
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != "v1" || kind != resource.kind() {
            let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
            return Err(ApiError::bad_request(format!(
                "invalid object type: {group}/{version}, Kind={kind}"
            )));
        }
        check_name(&config, name)?;
        check_namespace(resource, &mut config, namespace)?;
        check_apply_schema(resource, namespace, name, &config)?;
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let key = resource.key(namespace, name);
        let existing = self.objects.get(&key).cloned();
        let rv = meta(&config, "resourceVersion");
        if !rv.is_empty()
            && existing
                .as_ref()
                .is_none_or(|o| meta(o, "resourceVersion") != rv)
        {
            return Err(ApiError::conflict_modified(resource.plural(), name));
        }
        if let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        match existing {
            None => {
                if let Some(ns) = namespace
                    && resource.namespaced()
                    && !self.namespace_exists(ns)
                {
                    return Err(ApiError::not_found("namespaces", ns));
                }
                let applied = managed::record_apply(
                    Vec::new(),
                    &json!({}),
                    &config,
                    &opts.manager,
                    force,
                    resource.resets_status(),
                    &opts.now,
                )?;
                let mut obj = applied.object;
                if let Some(o) = obj.as_object_mut() {
                    o.insert("apiVersion".into(), json!("v1"));
                    o.insert("kind".into(), json!(resource.kind()));
                }
                if resource == KubeResource::Namespaces {
                    labels_mut(&mut obj).insert(NAMESPACE_LABEL.into(), json!(name));
                }
                let errs = objects::validate(resource, &obj);
                if !errs.is_empty() {
                    return Err(invalid(resource, name, errs));
                }
                self.fill_create_defaults(resource, &mut obj, &opts.now);
                set_managed_fields(&mut obj, &applied.entries);
                if !opts.dry_run {
                    let rv = self.next_rv();
                    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
                    self.put(resource, key, obj.clone(), true);
                    if resource == KubeResource::Namespaces {
                        self.ensure_default_service_account(name, &opts.now);
                    }
                }
                Ok(Written {
                    object: objects::canonicalize(resource, &obj),
                    created: true,
                    changed: !opts.dry_run,
                    warnings: Vec::new(),
                })
            }
            Some(old) => {
                let mut entries = managed::decode(&old).map_err(ApiError::internal)?;
                let mut live = without_managed_fields(&old);
                if let Some(m) = live.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                if entries.is_empty() {
                    // kube-apiserver's skipNonAppliedManager: before the first
                    // apply to an object without managed fields, its fields
                    // go to the manager `before-first-apply` (so an apply that
                    // changes them conflicts with it).
                    entries = managed::record_update(
                        entries,
                        &json!({}),
                        &live,
                        BEFORE_FIRST_APPLY,
                        resource.resets_status(),
                        &opts.now,
                    );
                }
                let applied = managed::record_apply(
                    entries,
                    &live,
                    &config,
                    &opts.manager,
                    force,
                    resource.resets_status(),
                    &opts.now,
                )?;
                let mut new = applied.object;
                keep_system_fields(resource, &mut new, &old);
                patch::normalize_metadata(&mut new);
                let errs = objects::validate(resource, &new);
                if !errs.is_empty() {
                    return Err(invalid(resource, name, errs));
                }
                Ok(self.commit(resource, key, &old, new, &applied.entries, opts.dry_run))
            }
        }
    }

    /// DELETE. Deleting a namespace removes everything in it at once (the
    /// real namespace controller does it asynchronously, after a
    /// `Terminating` phase this emulator skips).
    pub(crate) fn delete(
        &mut self,
        resource: KubeResource,
        namespace: Option<&str>,
        name: &str,
        preconditions: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let (key, obj) = self.existing(resource, namespace, name)?;
        if let Some(uid) = preconditions.get("uid").and_then(Value::as_str)
            && uid != meta(&obj, "uid")
        {
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    resource.plural(),
                    meta(&obj, "uid")
                ),
                details: Some(Box::new(super::errors::Details {
                    name: name.into(),
                    kind: resource.plural().into(),
                    ..Default::default()
                })),
            });
        }
        if let Some(rv) = preconditions.get("resourceVersion").and_then(Value::as_str)
            && rv != meta(&obj, "resourceVersion")
        {
            return Err(ApiError::conflict_modified(resource.plural(), name));
        }
        let mut out = obj.clone();
        if resource == KubeResource::Namespaces {
            meta_mut(&mut out).insert("deletionTimestamp".into(), json!(opts.now));
            if let Some(o) = out.as_object_mut() {
                o.insert("status".into(), json!({"phase": "Terminating"}));
            }
        }
        if !opts.dry_run {
            if resource == KubeResource::Namespaces {
                for inner in [KubeResource::Pods, KubeResource::ServiceAccounts] {
                    let prefix = inner.prefix(Some(name));
                    let inside: Vec<String> = self
                        .objects
                        .keys()
                        .filter(|k| k.starts_with(&prefix))
                        .cloned()
                        .collect();
                    for k in inside {
                        self.take(inner, &k);
                    }
                }
            }
            self.take(resource, &key);
            meta_mut(&mut out).insert("resourceVersion".into(), json!(self.current_rv()));
        }
        Ok(Written {
            object: objects::canonicalize(resource, &out),
            created: false,
            changed: !opts.dry_run,
            warnings: Vec::new(),
        })
    }
}
