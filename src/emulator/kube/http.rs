//! The HTTP face of a cluster: kube-apiserver's paths, authentication with the
//! host's Google tokens, query parameters (`fieldManager`, `force`, `dryRun`,
//! selectors), content types of the four patch flavours, discovery documents,
//! TokenRequest, and `Status` bodies for every failure.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::access_review::self_subject_access_review;
use super::discovery::{
    api_groups, api_resources, api_versions, group_resources, openapi_v3_core, openapi_v3_root,
    version,
};
use super::errors::{ApiError, FieldError};
use super::objects::{FieldSelector, KubeResource, LabelSelector};
use super::store::{FieldValidation, Page, PatchKind, WriteOptions, Written};
use super::tables;
use super::token_request::token_request;
use super::watch;
use super::{KubeAccess, KubeCluster};
use crate::emulator::time::{now_rfc3339_unix, now_unix};

pub(super) fn router(cluster: Arc<KubeCluster>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(cluster)
}

/// The only representation of `/openid/v1/jwks`.
const JWKS_MEDIA_TYPE: &str = "application/jwk-set+json";

/// Whether an `Accept` header admits `media` (no header, `*/*`, `type/*` or the type itself).
fn accepts(accept: &str, media: &str) -> bool {
    if accept.trim().is_empty() {
        return true;
    }
    let major = media.split('/').next().unwrap_or("");
    accept.split(',').any(|range| {
        let range = range.split(';').next().unwrap_or("").trim();
        range == "*/*"
            || range.eq_ignore_ascii_case(media)
            || range
                .strip_suffix("/*")
                .is_some_and(|m| m.eq_ignore_ascii_case(major))
    })
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut resp = (code, body.to_string()).into_response();
    decorate(&mut resp);
    resp
}

fn decorate(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("audit-id", v);
    }
}

fn error_response(e: ApiError) -> Response {
    let mut resp = e.into_response();
    decorate(&mut resp);
    resp
}

fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// Parsed query parameters the API understands.
#[derive(Default)]
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(uri: &Uri) -> Self {
        let pairs = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v == "true" || v == "1")
    }
}

/// What a request addresses, after the path is parsed.
enum Target {
    Collection {
        resource: KubeResource,
        namespace: Option<String>,
    },
    Object {
        resource: KubeResource,
        namespace: Option<String>,
        name: String,
    },
    Token {
        namespace: String,
        name: String,
    },
}

fn parse_target(segments: &[&str]) -> Option<Target> {
    match segments {
        [plural] => Some(Target::Collection {
            resource: KubeResource::from_plural(plural)?,
            namespace: None,
        }),
        ["namespaces", name] => Some(Target::Object {
            resource: KubeResource::Namespaces,
            namespace: None,
            name: (*name).to_string(),
        }),
        ["namespaces", ns, plural] => {
            let resource = KubeResource::from_plural(plural).filter(|r| r.namespaced())?;
            Some(Target::Collection {
                resource,
                namespace: Some((*ns).to_string()),
            })
        }
        ["namespaces", ns, plural, name] => {
            let resource = KubeResource::from_plural(plural).filter(|r| r.namespaced())?;
            Some(Target::Object {
                resource,
                namespace: Some((*ns).to_string()),
                name: (*name).to_string(),
            })
        }
        ["namespaces", ns, "serviceaccounts", name, "token"] => Some(Target::Token {
            namespace: (*ns).to_string(),
            name: (*name).to_string(),
        }),
        _ => None,
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

async fn handle(
    State(cluster): State<Arc<KubeCluster>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().trim_end_matches('/').to_string();
    let public = matches!(
        path.as_str(),
        "/version" | "/healthz" | "/readyz" | "/livez"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/readyz/")
        || path.starts_with("/livez/");
    let user = match bearer(&headers) {
        Some(token) => match cluster
            .host
            .authenticate(&token)
            .or_else(|| super::tokens::authenticate(&cluster, &token))
        {
            Some(user) => user,
            None => return error_response(ApiError::unauthorized()),
        },
        None if public => "system:anonymous".to_string(),
        None => return error_response(ApiError::unauthorized()),
    };
    tracing::debug!(%method, %path, %user, "kube request");
    match path.as_str() {
        "/healthz" | "/readyz" | "/livez" => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "ok",
            )
                .into_response();
        }
        "/version" => return json_response(StatusCode::OK, &version()),
        "/api" => return json_response(StatusCode::OK, &api_versions()),
        "/api/v1" => return json_response(StatusCode::OK, &api_resources()),
        "/.well-known/openid-configuration" => {
            let issuer = cluster.identity.issuer();
            return json_response(
                StatusCode::OK,
                &json!({
                    "issuer": issuer,
                    "jwks_uri": format!("{issuer}/jwks"),
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }),
            );
        }
        "/openid/v1/jwks" => {
            // Served only as application/jwk-set+json: an Accept that rules it
            // out (e.g. plain application/json) is refused, as kube-apiserver does.
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !accepts(accept, JWKS_MEDIA_TYPE) {
                return error_response(ApiError {
                    code: 406,
                    reason: "NotAcceptable",
                    message: format!(
                        "406: Not Acceptable\n\nAvailable representations: {JWKS_MEDIA_TYPE}"
                    ),
                    details: Some(Box::default()),
                });
            }
            let mut resp = json_response(StatusCode::OK, &cluster.jwks());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(JWKS_MEDIA_TYPE),
            );
            return resp;
        }
        "/openapi/v3" => return json_response(StatusCode::OK, &openapi_v3_root()),
        "/openapi/v3/api/v1" => return json_response(StatusCode::OK, &openapi_v3_core()),
        "/apis" => return json_response(StatusCode::OK, &api_groups()),
        "/apis/authorization.k8s.io/v1" => {
            return json_response(
                StatusCode::OK,
                &group_resources(
                    "authorization.k8s.io/v1",
                    "selfsubjectaccessreviews",
                    "SelfSubjectAccessReview",
                ),
            );
        }
        "/apis/authentication.k8s.io/v1" => {
            return json_response(
                StatusCode::OK,
                &group_resources(
                    "authentication.k8s.io/v1",
                    "selfsubjectreviews",
                    "SelfSubjectReview",
                ),
            );
        }
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" if method == Method::POST => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let review = parse_body(content_type.split(';').next().unwrap_or("").trim(), &body)
                .and_then(|review| self_subject_access_review(&cluster, &user, review));
            return match review {
                Ok(v) => json_response(StatusCode::CREATED, &v),
                Err(e) => error_response(e),
            };
        }
        "/apis/authentication.k8s.io/v1/selfsubjectreviews" if method == Method::POST => {
            return json_response(
                StatusCode::CREATED,
                &json!({
                    "kind": "SelfSubjectReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": now_rfc3339_unix()},
                    "status": {"userInfo": {"username": user, "groups": ["system:authenticated"]}},
                }),
            );
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return not_found_page();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let Some(target) = parse_target(&segments) else {
        // Inside a served group version, an unknown resource is a NotFound Status.
        return error_response(ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(Box::default()),
        });
    };
    let query = Query::parse(&uri);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let dry_run = query.all("dryRun").contains(&"All");
    let field_validation = match query.get("fieldValidation").unwrap_or("") {
        "" | "Warn" => FieldValidation::Warn,
        "Ignore" => FieldValidation::Ignore,
        "Strict" => FieldValidation::Strict,
        other => {
            return error_response(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn, Strict; got {other:?}"
            )));
        }
    };
    let mut warnings: Vec<String> = Vec::new();
    let opts = WriteOptions {
        admission: true,
        field_validation,
        manager: query
            .get("fieldManager")
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| user_agent.split('/').next().unwrap_or("").to_string()),
        dry_run,
        now: now_rfc3339_unix(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();

    let access = match &target {
        Target::Token { namespace, name } => KubeAccess {
            verb: "create",
            resource: "serviceaccounts",
            subresource: "token",
            namespace: Some(namespace),
            name,
        },
        Target::Collection {
            resource,
            namespace,
        } => KubeAccess {
            verb: if method == Method::POST {
                "create"
            } else if query.flag("watch") {
                "watch"
            } else {
                "list"
            },
            resource: resource.plural(),
            subresource: "",
            namespace: namespace.as_deref(),
            name: "",
        },
        Target::Object {
            resource,
            namespace,
            name,
        } => KubeAccess {
            verb: match method {
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "get",
            },
            resource: resource.plural(),
            subresource: "",
            namespace: if *resource == KubeResource::Namespaces {
                Some(name.as_str())
            } else {
                namespace.as_deref()
            },
            name,
        },
    };
    if !cluster.host.authorize(&user, &access) {
        return error_response(ApiError::forbidden(&access, &user));
    }
    // A server-side apply that creates the object also needs `create`, as
    // the real API server checks it.
    if let Target::Object {
        resource,
        namespace,
        name,
    } = &target
        && method == Method::PATCH
        && content_type == "application/apply-patch+yaml"
        && cluster
            .lock()
            .get(*resource, namespace.as_deref(), name)
            .is_err()
    {
        let create = KubeAccess {
            verb: "create",
            namespace: if *resource == KubeResource::Namespaces {
                None
            } else {
                namespace.as_deref()
            },
            ..access
        };
        if !cluster.host.authorize(&user, &create) {
            return error_response(ApiError::forbidden(&create, &user));
        }
    }
    let table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(tables::wants_table);
    let result = match target {
        Target::Token { namespace, name } => {
            if method != Method::POST {
                Err(ApiError::method_not_allowed())
            } else {
                let request = if body.is_empty() {
                    Ok(json!({}))
                } else {
                    parse_body(&content_type, &body)
                };
                match request.and_then(|req| token_request(&cluster, &namespace, &name, &req)) {
                    Ok((v, warning)) => {
                        let mut resp = json_response(StatusCode::CREATED, &v);
                        if let Some(w) = warning
                            && let Ok(h) = HeaderValue::from_str(&format!("299 - {w:?}"))
                        {
                            resp.headers_mut().insert("warning", h);
                        }
                        return resp;
                    }
                    Err(e) => Err(e),
                }
            }
        }
        Target::Collection {
            resource,
            namespace,
        } => {
            if !resource.namespaced() && namespace.is_some() {
                return not_found_page();
            }
            match method {
                Method::GET if query.flag("watch") => {
                    return match watch(&cluster, resource, namespace, &query, table) {
                        Ok(resp) => resp,
                        Err(e) => error_response(e),
                    };
                }
                Method::GET => list(&cluster, resource, namespace.as_deref(), &query)
                    .map(|(code, v)| (code, if table { list_table(resource, &v) } else { v })),
                Method::POST => {
                    if namespace.is_none() && resource.namespaced() {
                        Err(ApiError::method_not_allowed())
                    } else {
                        parse_body(&content_type, &body).and_then(|b| {
                            write(&cluster, &mut warnings, |s| {
                                s.create(resource, namespace.as_deref(), b, &opts)
                            })
                        })
                    }
                }
                _ => Err(ApiError::method_not_allowed()),
            }
        }
        Target::Object {
            resource,
            namespace,
            name,
        } => {
            let ns = namespace.as_deref();
            match method {
                Method::GET => {
                    let (found, rv) = {
                        let state = cluster.lock();
                        (state.get(resource, ns, &name), state.current_rv())
                    };
                    found.map(|v| {
                        if table {
                            (
                                StatusCode::OK,
                                tables::table(resource, &[v], &rv, now_unix()),
                            )
                        } else {
                            (StatusCode::OK, v)
                        }
                    })
                }
                Method::PUT => parse_body(&content_type, &body).and_then(|b| {
                    write(&cluster, &mut warnings, |s| {
                        s.update(resource, ns, &name, b, &opts)
                    })
                }),
                Method::DELETE => {
                    let pre = if body.is_empty() {
                        Value::Null
                    } else {
                        parse_json(&body).unwrap_or(Value::Null)
                    };
                    let pre = pre.get("preconditions").cloned().unwrap_or(Value::Null);
                    write(&cluster, &mut warnings, |s| {
                        s.delete(resource, ns, &name, &pre, &opts)
                    })
                    .map(|(_, v)| (StatusCode::OK, v))
                }
                Method::PATCH => patch(
                    &cluster,
                    &mut warnings,
                    resource,
                    ns,
                    &name,
                    &content_type,
                    &query,
                    &body,
                    &opts,
                ),
                _ => Err(ApiError::method_not_allowed()),
            }
        }
    };
    match result {
        Ok((code, v)) => {
            let mut resp = json_response(code, &v);
            for w in warnings {
                if let Ok(h) = HeaderValue::from_str(&format!("299 - {w:?}")) {
                    resp.headers_mut().append("warning", h);
                }
            }
            resp
        }
        Err(e) => error_response(e),
    }
}

/// 422 for a bad `PatchOptions` query parameter.
fn invalid_patch_options(e: FieldError) -> ApiError {
    ApiError::invalid("meta.k8s.io", "PatchOptions", "", vec![e])
}

/// A POST/PUT body: JSON, or protobuf as kubectl's typed clients send it.
fn parse_body(content_type: &str, body: &Bytes) -> Result<Value, ApiError> {
    if content_type == "application/vnd.kubernetes.protobuf" {
        return super::proto::decode(body).map_err(ApiError::bad_request);
    }
    parse_json(body)
}

fn list_table(resource: KubeResource, list: &Value) -> Value {
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    tables::table(resource, &items, rv, now_unix())
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type object): couldn't get version/kind; json parse error: {e}"
        ))
    })
}

/// Runs a store write under the lock and tells the host when something changed.
fn write(
    cluster: &KubeCluster,
    warnings: &mut Vec<String>,
    op: impl FnOnce(&mut super::KubeClusterState) -> Result<Written, ApiError>,
) -> Result<(StatusCode, Value), ApiError> {
    let written = {
        let mut state = cluster.lock();
        let result = op(&mut state);
        cluster.hub.publish(state.drain_events());
        result?
    };
    warnings.extend(written.warnings);
    if written.changed {
        cluster.host.changed();
    }
    let code = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, written.object))
}

fn list(
    cluster: &KubeCluster,
    resource: KubeResource,
    namespace: Option<&str>,
    query: &Query,
) -> Result<(StatusCode, Value), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(resource, query.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let limit = match query.get("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid value for limit: {l:?}")))?,
        ),
        None => None,
    };
    let page = Page {
        limit,
        continue_token: query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    };
    let list = cluster
        .lock()
        .list(resource, namespace, &labels, &fields, &page)?;
    Ok((StatusCode::OK, list))
}

/// GET with `watch=true`: a streaming response of change events.
fn watch(
    cluster: &KubeCluster,
    resource: KubeResource,
    namespace: Option<String>,
    query: &Query,
    table: bool,
) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(resource, query.get("fieldSelector").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1800)
        .min(3600);
    let requested = query.get("resourceVersion").unwrap_or("");
    let (rx, start, start_rv) = {
        let state = cluster.lock();
        let rx = cluster.hub.subscribe();
        let current = state.resource_version;
        let start = match requested {
            "" | "0" => {
                let list = state.list(
                    resource,
                    namespace.as_deref(),
                    &labels,
                    &fields,
                    &Page::default(),
                )?;
                let items = list
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut o| {
                        if let Some(m) = o.as_object_mut() {
                            let mut full = serde_json::Map::new();
                            full.insert("kind".into(), json!(resource.kind()));
                            full.insert("apiVersion".into(), json!("v1"));
                            full.extend(std::mem::take(m));
                            *m = full;
                        }
                        o
                    })
                    .collect();
                watch::Start::Initial(items)
            }
            rv => {
                let rv: u64 = rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                })?;
                match cluster.hub.since(rv) {
                    Some(events) => watch::Start::Replay(events),
                    None => watch::Start::Expired {
                        requested: rv,
                        current,
                    },
                }
            }
        };
        (rx, start, current)
    };
    let filter = watch::Filter {
        resource,
        namespace,
        labels,
        fields,
        table,
    };
    let body = watch::body(
        filter,
        start,
        rx,
        start_rv,
        std::time::Duration::from_secs(timeout),
    );
    let mut resp = Response::new(body);
    decorate(&mut resp);
    Ok(resp)
}

#[allow(clippy::too_many_arguments)]
fn patch(
    cluster: &KubeCluster,
    warnings: &mut Vec<String>,
    resource: KubeResource,
    namespace: Option<&str>,
    name: &str,
    content_type: &str,
    query: &Query,
    body: &Bytes,
    opts: &WriteOptions,
) -> Result<(StatusCode, Value), ApiError> {
    let kind = match content_type {
        "application/apply-patch+yaml" => None,
        "application/merge-patch+json" => Some(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
        "application/json-patch+json" => Some(PatchKind::Json),
        _ => return Err(ApiError::unsupported_patch_type()),
    };
    let force = query.get("force");
    match kind {
        None => {
            let manager = query.get("fieldManager").unwrap_or("");
            if manager.is_empty() {
                return Err(invalid_patch_options(FieldError::required(
                    "fieldManager",
                    "is required for apply patch",
                )));
            }
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            let config: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => serde_saphyr::from_str(text)
                    .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
            };
            let force = force.is_some_and(|v| v == "true" || v == "1");
            let opts = WriteOptions {
                manager: manager.to_string(),
                ..opts.clone()
            };
            write(cluster, warnings, |s| {
                s.apply(resource, namespace, name, config, force, &opts)
            })
        }
        Some(kind) => {
            if force.is_some() {
                return Err(invalid_patch_options(FieldError::forbidden(
                    "force",
                    "may not be specified for non-apply patch",
                )));
            }
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            write(cluster, warnings, |s| {
                s.patch(resource, namespace, name, kind, &patch, opts)
            })
        }
    }
}
