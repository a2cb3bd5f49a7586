//! The one route table of the Google listeners: `/token` (OAuth),
//! `/authn/tokenreview`, `/emulator/stats`, then `google::APIS` (prefix →
//! method id → handler) with latency, fault injection and authentication in
//! front. Every request first ticks the world (finishes due operations).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Response};

use super::core::Core;
use super::google::{self, Serve, gke, tokens};
use super::quota;
use super::request::Req;
use super::request_log::{self, LoggedRequest};
use super::time::now_ms;
use super::wire::{GoogleApiError, json_response};

/// The router of the Google API listeners (HTTPS and plain HTTP).
pub(crate) fn router(core: Arc<Core>) -> Router {
    Router::new().fallback(dispatch).with_state(core)
}

/// Finishes due operations, stops the APIs of deleted clusters, rewrites the kubeconfig.
pub(crate) async fn tick(core: &Core) {
    let deleted = {
        let mut w = core.world();
        let has_due = w
            .operations
            .iter()
            .any(|o| !o.finished && !o.is_active(now_ms()));
        if !has_due {
            return;
        }
        gke::finish_operations(&mut w, now_ms())
    };
    core.stop_cluster_apis(&deleted);
    core.write_kubeconfig();
    core.persist();
}

async fn dispatch(State(core): State<Arc<Core>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 8 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return GoogleApiError::invalid(
                "Request payload size exceeds the limit: 8388608 bytes.",
            )
            .into_response();
        }
    };
    core.delay_and_count().await;
    tick(&core).await;
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let service = raw.first().copied().unwrap_or("");
    match (service, &parts.method) {
        ("token", &Method::POST) if raw.len() == 1 => {
            core.count_call("oauth.token");
            return tokens::oauth_token(&core, &parts.headers, &body);
        }
        ("authn", &Method::POST) if raw.get(1) == Some(&"tokenreview") => {
            core.count_call("authn.tokenreview");
            return tokens::token_review(&core, &body);
        }
        ("emulator", &Method::GET) if raw.get(1) == Some(&"stats") => {
            // `?format=text`: the per-method table of `Stats::calls_report`.
            if parts.uri.query() == Some("format=text") {
                return text_response(core.stats_snapshot().calls_report());
            }
            let stats = core.stats_snapshot();
            return json_response(200, &serde_json::to_value(stats).unwrap_or_default());
        }
        ("emulator", &Method::GET) if raw.get(1) == Some(&"requests") => {
            let since = query
                .iter()
                .find(|(k, _)| k == "since")
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0);
            let (requests, next) = core.requests.since(since);
            return json_response(
                200,
                &serde_json::json!({"requests": requests, "next": next}),
            );
        }
        _ => {}
    }
    google(
        &core,
        service,
        &raw,
        parts.method,
        &parts.headers,
        query,
        body,
    )
    .await
}

fn text_response(text: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[allow(clippy::too_many_arguments)]
async fn google(
    core: &Arc<Core>,
    service: &str,
    raw: &[&str],
    method: Method,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
    body: Bytes,
) -> Response<Body> {
    let not_found = || {
        GoogleApiError::not_found(format!(
            "The requested URL /{} was not found on this server.",
            raw.join("/")
        ))
        .into_response()
    };
    let Some(api) = google::api(service) else {
        return not_found();
    };
    let (method_id, call) = match &api.serve {
        Serve::Methods { method_id, call } => (method_id, call),
        Serve::TokenEndpoint(serve) => {
            if method == Method::POST && raw.get(1) == Some(&"v1") && raw.get(2) == Some(&"token") {
                core.count_call(&format!("{service}.token"));
                return serve(core, headers, &body);
            }
            return not_found();
        }
    };
    let Some(req) = Req::parse(method, raw, query, body, now_ms()) else {
        return not_found();
    };
    let api_host = api.host;
    let Some(method_id) = method_id(&req) else {
        return not_found();
    };
    core.count_call(&format!("{service}.{method_id}"));
    if let Some(code) = core.pick_fault(service, method_id) {
        return GoogleApiError::injected(code).into_response();
    }
    let full_method = format!("google.{service}.{}.{method_id}", req.version);
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let who = match bearer {
        None | Some("") => {
            return GoogleApiError::missing_credentials(api_host, &full_method).into_response();
        }
        Some(t) => match core.authenticate(t) {
            Some(p) => p,
            None => {
                return GoogleApiError::invalid_credentials(api_host, &full_method).into_response();
            }
        },
    };
    // Quota is charged once the caller is known, as Google charges its consumer.
    if !core.quota.is_off() {
        let project = quota::project_of(&req.segs);
        if let Err(e) = core
            .quota
            .admit(service, &project, std::time::Instant::now())
        {
            core.count_throttled(service);
            let number = core
                .world()
                .projects
                .get(&project)
                .map(|p| p.number.clone())
                .unwrap_or_else(|| project.clone());
            return GoogleApiError::quota_exceeded(
                api_host,
                quota::is_read(method_id),
                &number,
                (e.rate * 60.0).round() as u64,
            )
            .into_response();
        }
    }
    if !request_log::is_mutating(&req.method, method_id) {
        return match call(core, &req, &who, method_id).await {
            Ok(v) => json_response(200, &v),
            Err(e) => e.into_response(),
        };
    }
    let before = method_id
        .ends_with("setIamPolicy")
        .then(|| request_log::current_policy(&core.world(), service, &req.segs))
        .flatten();
    let result = call(core, &req, &who, method_id).await;
    let (status, added, removed, error) = match (&result, &before) {
        (Ok(v), Some(before)) => {
            let (added, removed) = request_log::policy_diff(&before.bindings, v);
            (200, added, removed, None)
        }
        (Ok(_), None) => (200, vec![], vec![], None),
        (Err(e), _) => (
            e.code,
            vec![],
            vec![],
            Some(format!("{}: {}", e.status, e.message)),
        ),
    };
    core.requests.push(LoggedRequest {
        seq: 0,
        api: service.to_string(),
        method: method_id.to_string(),
        resource: req.segs.join("/"),
        status,
        added,
        removed,
        error,
    });
    match result {
        Ok(v) => json_response(200, &v),
        Err(e) => e.into_response(),
    }
}
