//! The per-cluster Kubernetes API servers: one TLS listener per cluster with
//! the cluster's own CA, the `KubeHost` bridge through which the Kubernetes
//! side authenticates, authorizes and persists via the core, and the latency
//! and fault middleware in front of each.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response};
use axum::middleware::Next;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::json;

use super::core::{Core, KubeRuntime};
use super::google::permissions;
use super::kube::{ClusterIdentity, KubeAccess, KubeCluster, KubeClusterState, KubeHost};
use super::wire::json_response;

impl Core {
    /// Starts (or restarts) the Kubernetes API of cluster `key` and records its endpoint and CA.
    pub(crate) async fn start_cluster_api(self: &Arc<Self>, key: &str) {
        let (identity, state, port) = {
            let w = self.world();
            let Some(c) = w.clusters.get(key) else {
                return;
            };
            let identity = ClusterIdentity {
                project: c.project.clone(),
                location: c.location.clone(),
                name: c.name.clone(),
            };
            (
                identity,
                w.kube.get(key).cloned(),
                w.kube_ports.get(key).copied().unwrap_or(0),
            )
        };
        let state = match state {
            Some(s) => s,
            None => {
                let id = identity.clone();
                let s = tokio::task::spawn_blocking(move || KubeClusterState::generate(&id))
                    .await
                    .unwrap_or_default();
                self.world().kube.insert(key.to_string(), s.clone());
                s
            }
        };
        let host: Arc<dyn KubeHost> = Arc::new(Host {
            core: self.me.clone(),
            project: identity.project.clone(),
        });
        let cluster = KubeCluster::new(identity, state, host);
        let (mut cert, mut key_pem) = cluster.serving_cert_and_key_pem();
        let mut ca = cluster.ca_pem();
        if cert.is_empty() || key_pem.is_empty() || ca.is_empty() {
            // The Kubernetes side gave no certificate: serve with the Google listener's.
            if let Some(t) = self.world().tls.clone() {
                cert = t.cert_pem;
                key_pem = t.key_pem;
                ca = t.ca_cert_pem;
            }
        }
        let listener = bind_loopback(port).or_else(|_| bind_loopback(0));
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot bind the Kubernetes API of {key}: {e}");
                return;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let config = match RustlsConfig::from_pem(cert.into_bytes(), key_pem.into_bytes()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("bad TLS material for {key}: {e}");
                return;
            }
        };
        let handle = axum_server::Handle::new();
        let router = cluster.router().layer(axum::middleware::from_fn_with_state(
            (self.clone(), Arc::<str>::from(key)),
            kube_middleware,
        ));
        match axum_server::from_tcp_rustls(listener, config) {
            Ok(server) => {
                let server = server.handle(handle.clone());
                tokio::spawn(async move {
                    let _ = server.serve(router.into_make_service()).await;
                });
            }
            Err(e) => {
                tracing::error!("cannot serve the Kubernetes API of {key}: {e}");
                return;
            }
        }
        {
            use base64::Engine;
            let mut w = self.world();
            let redirect = self
                .redirects
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned();
            let (endpoint, ca_b64) = redirect.unwrap_or_else(|| {
                (
                    format!("127.0.0.1:{port}"),
                    base64::engine::general_purpose::STANDARD.encode(ca.as_bytes()),
                )
            });
            w.kube_ports.insert(key.to_string(), port);
            if let Some(c) = w.clusters.get_mut(key) {
                c.resource["endpoint"] = json!(endpoint);
                c.resource["masterAuth"]["clusterCaCertificate"] = json!(ca_b64);
            }
        }
        let old = self
            .kube
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), KubeRuntime { cluster, handle });
        if let Some(old) = old {
            old.handle.shutdown();
        }
        self.write_kubeconfig();
    }
}

fn bind_loopback(port: u16) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The emulator core as seen by each cluster's Kubernetes API.
struct Host {
    core: Weak<Core>,
    /// The project of the cluster (GKE's IAM authorizer checks this project's policy).
    project: String,
}

impl KubeHost for Host {
    fn authenticate(&self, bearer: &str) -> Option<String> {
        self.core.upgrade()?.authenticate(bearer).map(|p| p.email())
    }

    /// Called after the cluster's lock is released: persist before the
    /// response goes out, as the Google side does, so a `kill -9` right after
    /// a Kubernetes write loses nothing.
    fn changed(&self) {
        if let Some(core) = self.core.upgrade() {
            core.persist();
        }
    }

    /// GKE's IAM authorizer: the caller needs `container.<resource>.<verb>`
    /// on the cluster's project (RBAC, GKE's second authorizer, is not emulated).
    fn authorize(&self, user: &str, access: &KubeAccess<'_>) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let w = core.world();
        permissions::kube_allowed(
            &w,
            &self.project,
            user,
            access.verb,
            access.resource,
            access.subresource,
        )
    }
}

/// What a Kubernetes request does, for the call counts: `k8s list pods`,
/// `k8s patch serviceaccounts`, `k8s create serviceaccounts/token`, `k8s discovery`.
fn kube_call(method: &Method, path: &str, query: Option<&str>) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let watch = query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    // Core API only: `/api/v1/...`.
    let rest = match segs.as_slice() {
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] => {
            return "k8s create selfsubjectaccessreviews".to_string();
        }
        ["api", "v1", rest @ ..] if !rest.is_empty() => rest,
        _ => return "k8s discovery".to_string(),
    };
    // (resource, named object?, subresource)
    let (resource, named, sub) = match rest {
        ["namespaces", _ns, res, name, sub, ..] => (*res, Some(*name), Some(*sub)),
        ["namespaces", _ns, res, name] => (*res, Some(*name), None),
        ["namespaces", _ns, res] => (*res, None, None),
        ["namespaces", name] => ("namespaces", Some(*name), None),
        [res] => (*res, None, None),
        _ => return "k8s other".to_string(),
    };
    let verb = match (method, named.is_some()) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "other",
    };
    match sub {
        Some(sub) => format!("k8s {verb} {resource}/{sub}"),
        None => format!("k8s {verb} {resource}"),
    }
}

/// The body kube-apiserver sends past `--max-requests-inflight`.
fn too_many_requests() -> Response<Body> {
    let mut resp = json_response(
        429,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Too many requests, please try again later.",
                "reason": "TooManyRequests", "details": {"retryAfterSeconds": 1}, "code": 429}),
    );
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    resp
}

/// Call counts, the in-flight quota, latency and faults in front of each
/// cluster's Kubernetes API.
async fn kube_middleware(
    State((core, key)): State<(Arc<Core>, Arc<str>)>,
    req: Request,
    next: Next,
) -> Response<Body> {
    core.count_call(&kube_call(
        req.method(),
        req.uri().path(),
        req.uri().query(),
    ));
    // Held until the answer is ready, like the apiserver's in-flight count.
    let Some(_slot) = core.quota.enter_kube(&key) else {
        core.count_throttled("kubernetes");
        return too_many_requests();
    };
    core.delay_and_count().await;
    let verb = match *req.method() {
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    };
    if let Some(code) = core.pick_fault("kubernetes", verb) {
        let reason = match code {
            429 => "TooManyRequests",
            409 => "Conflict",
            503 => "ServiceUnavailable",
            500 => "InternalError",
            404 => "NotFound",
            403 => "Forbidden",
            401 => "Unauthorized",
            _ => "BadRequest",
        };
        let mut resp = json_response(
            code,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("injected fault ({code})"), "reason": reason, "code": code}),
        );
        if code == 429
            && let Ok(v) = "1".parse()
        {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        return resp;
    }
    let path = req.uri().path().to_string();
    let logged =
        *req.method() != Method::GET && path.starts_with("/api/v1/") && !path.ends_with("/token");
    if !logged {
        return next.run(req).await;
    }
    let method = kube_call(req.method(), &path, req.uri().query());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let (resp, error) = if status >= 400 {
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let error = format!(
            "{}: {}",
            v["reason"].as_str().unwrap_or(""),
            v["message"].as_str().unwrap_or("")
        );
        (Response::from_parts(parts, Body::from(bytes)), Some(error))
    } else {
        (resp, None)
    };
    core.requests.push(super::request_log::LoggedRequest {
        seq: 0,
        api: "kubernetes".into(),
        method: method.trim_start_matches("k8s ").to_string(),
        resource: format!("{key} {}", super::request_log::kube_object(&path)),
        status,
        added: vec![],
        removed: vec![],
        error,
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_calls_are_named_by_verb_and_resource() {
        let c = |m: Method, p: &str, q: Option<&str>| kube_call(&m, p, q);
        assert_eq!(c(Method::GET, "/api/v1/pods", None), "k8s list pods");
        assert_eq!(
            c(
                Method::GET,
                "/api/v1/namespaces/a/pods",
                Some("fieldSelector=x")
            ),
            "k8s list pods"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces", None),
            "k8s list namespaces"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/a", None),
            "k8s get namespaces"
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/api/v1/namespaces/a/serviceaccounts/x",
                None
            ),
            "k8s patch serviceaccounts"
        );
        assert_eq!(
            c(
                Method::POST,
                "/api/v1/namespaces/a/serviceaccounts/x/token",
                None
            ),
            "k8s create serviceaccounts/token"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/serviceaccounts", Some("watch=true")),
            "k8s watch serviceaccounts"
        );
        assert_eq!(c(Method::GET, "/apis", None), "k8s discovery");
    }
}
