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
            self.clone(),
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

/// Latency and faults in front of each cluster's Kubernetes API.
async fn kube_middleware(
    State(core): State<Arc<Core>>,
    req: Request,
    next: Next,
) -> Response<Body> {
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
    next.run(req).await
}
