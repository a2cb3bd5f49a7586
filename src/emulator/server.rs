//! The running emulator: shared state, listeners, request dispatch (latency,
//! faults, authentication), persistence, the per-cluster Kubernetes API
//! servers and the files it writes (credentials, kubeconfig, env file).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Response};
use axum::middleware::Next;
use axum_server::tls_rustls::RustlsConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use super::faults::{self, FaultRule};
use super::http::{ApiError, json_response};
use super::kube::{ClusterIdentity, KubeCluster, KubeClusterState, KubeHost};
use super::world::{
    self, AdminIdentity, IssuedKey, IssuedToken, Principal, Project, TlsMaterial, World,
};
use super::{EmulatorConfig, EmulatorError, auth, gke, iam, kubeconfig, projects, seed, tokens};

/// Default project of a world without seed.
pub const DEFAULT_PROJECT: &str = "wi-emulator";
/// The admin user principal.
pub const ADMIN_USER: &str = "admin@wi-emulator.local";

/// Counters exposed at `GET /emulator/stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    /// Requests served (all listeners).
    pub requests: u64,
    /// Faults injected in total.
    pub faults_injected: u64,
    /// Faults injected per `service.method`.
    pub faults_by_method: BTreeMap<String, u64>,
    /// Policies changed by the concurrent writer.
    pub concurrent_writes: u64,
}

/// Files the emulator writes into its work dir.
pub(crate) struct Paths {
    pub token_file: PathBuf,
    pub key_file: PathBuf,
    pub kubeconfig: PathBuf,
    pub ca_file: PathBuf,
}

struct KubeRuntime {
    cluster: Arc<KubeCluster>,
    handle: axum_server::Handle<SocketAddr>,
    port: u16,
    ca_pem: String,
}

/// Shared state of one emulator.
pub(crate) struct Core {
    world: Mutex<World>,
    cfg: EmulatorConfig,
    rules: Vec<FaultRule>,
    rng: Mutex<StdRng>,
    stats: Mutex<Stats>,
    kube: Mutex<BTreeMap<String, KubeRuntime>>,
    /// Clusters whose `endpoint` / CA point at another Kubernetes API server
    /// (`Emulator::redirect_cluster_api`): key → (`endpoint`, base64 CA PEM).
    redirects: Mutex<BTreeMap<String, (String, String)>>,
    persist_lock: Mutex<()>,
    kubeconfig_lock: Mutex<String>,
    dirty: tokio::sync::Notify,
    stopping: AtomicBool,
    me: Weak<Core>,
    pub base_url: String,
    pub http_url: String,
    pub paths: Paths,
}

/// Handles of the Google API listeners and background tasks.
pub(crate) struct StartedListeners {
    tls: axum_server::Handle<SocketAddr>,
    http_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One parsed Google API request.
pub(crate) struct Req {
    pub method: Method,
    /// `v1`, `v1beta1`, `v3`.
    pub version: String,
    /// Path segments after the version, percent-decoded, custom verb removed.
    pub segs: Vec<String>,
    /// Custom method (`getIamPolicy` in `...:getIamPolicy`).
    pub verb: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    pub now: i64,
}

impl Req {
    /// First query value of `key`.
    pub fn query_get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with microseconds, as Google prints timestamps.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// RFC 3339 UTC with whole seconds (key validity times).
pub(crate) fn rfc3339_seconds(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `export K='V'` lines.
pub(crate) fn env_script(env: &[(String, String)]) -> String {
    env.iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
        .collect()
}

impl Core {
    /// The configured latency, then one more request in the stats.
    async fn delay_and_count(&self) {
        if let Some(l) = self.cfg.latency {
            tokio::time::sleep(l).await;
        }
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests += 1;
    }

    /// The world, locked. Never hold it across an `.await` or while calling into a cluster.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_ms(&self) -> i64 {
        now_ms()
    }

    pub fn operation_ms(&self) -> i64 {
        self.cfg.operation_duration.as_millis() as i64
    }

    pub fn visibility_ms(&self) -> i64 {
        self.cfg.visibility_delay.as_millis() as i64
    }

    pub fn default_project(&self) -> String {
        self.world().default_project.clone()
    }

    pub fn admin_token(&self) -> String {
        self.world()
            .admin
            .as_ref()
            .map(|a| a.user_token.clone())
            .unwrap_or_default()
    }

    /// A service-account key file (JSON) whose `token_uri` is this emulator.
    pub fn key_file_json(
        &self,
        project: &str,
        key_id: &str,
        email: &str,
        client_id: &str,
        private_pem: &str,
    ) -> serde_json::Value {
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": key_id,
            "private_key": private_pem,
            "client_email": email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{}/token", self.http_url),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{email}"),
            "universe_domain": "googleapis.com"
        })
    }

    /// Issues a token valid for the standard lifetime.
    pub fn issue_token(&self, principal: Principal) -> String {
        self.issue_token_for(principal, auth::TOKEN_LIFETIME_SECS)
    }

    /// Issues a token valid for `secs` seconds.
    pub fn issue_token_for(&self, principal: Principal, secs: i64) -> String {
        let token = auth::new_token();
        {
            let mut w = self.world();
            let now = now_ms();
            w.tokens.retain(|_, t| t.expires_ms > now);
            w.tokens.insert(
                auth::token_hash(&token),
                IssuedToken {
                    principal,
                    expires_ms: now + secs * 1000,
                },
            );
        }
        self.persist();
        token
    }

    /// The principal of a token, if the emulator issued it and it is valid.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        auth::principal_of(&self.world(), token, now_ms())
    }

    /// Rolls the concurrent-writer dice.
    pub fn roll_concurrent_writer(&self) -> bool {
        let Some(p) = self.cfg.concurrent_writer else {
            return false;
        };
        let hit = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .r#gen::<f64>()
            < p;
        if hit {
            self.stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .concurrent_writes += 1;
        }
        hit
    }

    pub fn stats_snapshot(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn pick_fault(&self, service: &str, method: &str) -> Option<u16> {
        if self.rules.is_empty() {
            return None;
        }
        let code = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            faults::pick(&self.rules, service, method, || rng.r#gen::<f64>()).map(|r| r.code)
        }?;
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.faults_injected += 1;
        *s.faults_by_method
            .entry(format!("{service}.{method}"))
            .or_default() += 1;
        Some(code)
    }

    /// The cluster whose service-account tokens carry issuer `iss`.
    pub fn kube_cluster_by_issuer(&self, iss: &str) -> Option<Arc<KubeCluster>> {
        self.kube
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|r| r.cluster.identity().issuer() == iss)
            .map(|r| r.cluster.clone())
    }

    /// The export variables.
    pub fn env(&self) -> Vec<(String, String)> {
        let b = &self.base_url;
        let mut env = Vec::new();
        for (var, prefix) in [
            ("CONTAINER", "container"),
            ("IAM", "iam"),
            ("CLOUDRESOURCEMANAGER", "cloudresourcemanager"),
            ("SERVICEUSAGE", "serviceusage"),
            ("IAMCREDENTIALS", "iamcredentials"),
            ("STS", "sts"),
        ] {
            env.push((
                format!("CLOUDSDK_API_ENDPOINT_OVERRIDES_{var}"),
                format!("{b}/{prefix}/"),
            ));
        }
        let p = |x: &PathBuf| x.display().to_string();
        env.push((
            "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE".into(),
            p(&self.paths.ca_file),
        ));
        env.push((
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE".into(),
            p(&self.paths.token_file),
        ));
        env.push(("CLOUDSDK_CORE_PROJECT".into(), self.default_project()));
        env.push((
            "GOOGLE_APPLICATION_CREDENTIALS".into(),
            p(&self.paths.key_file),
        ));
        env.push(("KUBECONFIG".into(), p(&self.paths.kubeconfig)));
        // `wi` polls GKE operations every few seconds; emulated ones are short.
        let poll = (self.cfg.operation_duration / 4).clamp(
            std::time::Duration::from_millis(20),
            std::time::Duration::from_secs(1),
        );
        env.push(("WI_POLL_INTERVAL".into(), format!("{}ms", poll.as_millis())));
        env
    }

    /// Writes the world to the state file (atomically), if there is one.
    pub fn persist(&self) {
        let Some(path) = self.cfg.state_file.clone() else {
            return;
        };
        let _g = self.persist_lock.lock().unwrap_or_else(|e| e.into_inner());
        let snaps: Vec<(String, KubeClusterState)> = {
            let runtimes: Vec<(String, Arc<KubeCluster>)> = self
                .kube
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, r)| (k.clone(), r.cluster.clone()))
                .collect();
            runtimes
                .into_iter()
                .map(|(k, c)| (k, c.snapshot()))
                .collect()
        };
        let bytes = {
            let mut w = self.world();
            for (k, s) in snaps {
                if w.clusters.contains_key(&k) {
                    w.kube.insert(k, s);
                }
            }
            serde_json::to_vec(&*w)
        };
        match bytes {
            Ok(b) => {
                if let Err(e) = world::write_atomic(&path, &b) {
                    tracing::error!("cannot write state file {}: {e}", path.display());
                }
            }
            Err(e) => tracing::error!("cannot serialize the world: {e}"),
        }
    }

    /// Finishes due operations, stops the APIs of deleted clusters, rewrites the kubeconfig.
    pub async fn tick(&self) {
        let deleted = {
            let mut w = self.world();
            let has_due = w
                .operations
                .iter()
                .any(|o| !o.finished && !o.is_active(now_ms()));
            if !has_due {
                return;
            }
            gke::finish_operations(&mut w, now_ms())
        };
        for key in &deleted {
            let rt = self
                .kube
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
            if let Some(rt) = rt {
                rt.handle.shutdown();
            }
        }
        self.write_kubeconfig();
        self.persist();
    }

    /// Rewrites the kubeconfig when its content changes.
    pub fn write_kubeconfig(&self) {
        let entries: Vec<kubeconfig::Entry> = {
            let w = self.world();
            w.clusters
                .values()
                .filter_map(|c| {
                    let endpoint = c.resource.get("endpoint")?.as_str()?.to_string();
                    let ca = c
                        .resource
                        .pointer("/masterAuth/clusterCaCertificate")?
                        .as_str()?
                        .to_string();
                    (!endpoint.is_empty()).then(|| kubeconfig::Entry {
                        name: format!("gke_{}_{}_{}", c.project, c.location, c.name),
                        server: format!("https://{endpoint}"),
                        ca_data: ca,
                    })
                })
                .collect()
        };
        let mut last = self
            .kubeconfig_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = kubeconfig::current_context(&self.paths.kubeconfig);
        let text = kubeconfig::render(&entries, current.as_deref());
        if *last == text {
            return;
        }
        if let Err(e) = world::write_atomic(&self.paths.kubeconfig, text.as_bytes()) {
            tracing::error!("cannot write kubeconfig: {e}");
            return;
        }
        *last = text;
    }

    /// Points cluster `key`'s `endpoint` and `masterAuth.clusterCaCertificate`
    /// at another Kubernetes API server (e.g. a real kube-apiserver in tests),
    /// now and whenever the emulator (re)starts that cluster's own API. The
    /// emulated API keeps running on its port. `false` when there is no such cluster.
    pub fn redirect_cluster_api(&self, key: &str, endpoint: &str, ca_pem: &str) -> bool {
        use base64::Engine;
        let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
        {
            let mut w = self.world();
            let Some(c) = w.clusters.get_mut(key) else {
                return false;
            };
            c.resource["endpoint"] = json!(endpoint);
            c.resource["masterAuth"]["clusterCaCertificate"] = json!(ca_b64.clone());
        }
        self.redirects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), (endpoint.to_string(), ca_b64));
        self.write_kubeconfig();
        self.persist();
        true
    }

    /// Starts (or restarts) the Kubernetes API of cluster `key` and records its endpoint and CA.
    pub async fn start_cluster_api(self: &Arc<Self>, key: &str) {
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
        let old = self.kube.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key.to_string(),
            KubeRuntime {
                cluster,
                handle,
                port,
                ca_pem: ca,
            },
        );
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
    fn authorize(&self, user: &str, access: &super::kube::KubeAccess<'_>) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let w = core.world();
        auth::kube_allowed(
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

async fn dispatch(State(core): State<Arc<Core>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 8 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::invalid("Request payload size exceeds the limit: 8388608 bytes.")
                .into_response();
        }
    };
    core.delay_and_count().await;
    core.tick().await;
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
            return tokens::oauth_token(&core, &parts.headers, &body);
        }
        ("authn", &Method::POST) if raw.get(1) == Some(&"tokenreview") => {
            return tokens::token_review(&core, &body);
        }
        ("emulator", &Method::GET) if raw.get(1) == Some(&"stats") => {
            let stats = core.stats_snapshot();
            return json_response(200, &serde_json::to_value(stats).unwrap_or_default());
        }
        ("sts", &Method::POST) if raw.get(1) == Some(&"v1") && raw.get(2) == Some(&"token") => {
            return tokens::sts_token(&core, &parts.headers, &body);
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
        ApiError::not_found(format!(
            "The requested URL /{} was not found on this server.",
            raw.join("/")
        ))
        .into_response()
    };
    let (Some(version), true) = (raw.get(1), raw.len() > 2) else {
        return not_found();
    };
    let mut segs: Vec<String> = raw[2..].iter().map(|s| percent_decode(s)).collect();
    let mut verb = None;
    if let Some(last) = segs.last_mut()
        && let Some((head, v)) = last.split_once(':')
    {
        verb = Some(v.to_string());
        *last = head.to_string();
    }
    let req = Req {
        method,
        version: version.to_string(),
        segs,
        verb,
        query,
        body,
        now: now_ms(),
    };
    let (api, method_id) = match service {
        "container" => ("container.googleapis.com", gke::method_id(&req)),
        "iam" => ("iam.googleapis.com", iam::method_id(&req)),
        "cloudresourcemanager" => (
            "cloudresourcemanager.googleapis.com",
            projects::crm_method_id(&req),
        ),
        "serviceusage" => ("serviceusage.googleapis.com", projects::su_method_id(&req)),
        "iamcredentials" => (
            "iamcredentials.googleapis.com",
            tokens::iamcredentials_method_id(&req),
        ),
        _ => return not_found(),
    };
    let Some(method_id) = method_id else {
        return not_found();
    };
    if let Some(code) = core.pick_fault(service, method_id) {
        return ApiError::injected(code).into_response();
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
        None | Some("") => return ApiError::missing_credentials(api, &full_method).into_response(),
        Some(t) => match core.authenticate(t) {
            Some(p) => p,
            None => return ApiError::invalid_credentials(api, &full_method).into_response(),
        },
    };
    let result = match service {
        "container" => gke::call(core, &req, &who, method_id).await,
        "iam" => iam::call(core, &req, &who, method_id).await,
        "cloudresourcemanager" => projects::crm_call(core, &req, &who, method_id),
        "serviceusage" => projects::su_call(core, &req, &who, method_id),
        _ => tokens::generate_access_token(core, &req, &who),
    };
    match result {
        Ok(v) => json_response(200, &v),
        Err(e) => e.into_response(),
    }
}

fn make_tls(existing: Option<TlsMaterial>) -> Result<TlsMaterial, EmulatorError> {
    if let Some(t) = existing {
        return Ok(t);
    }
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| EmulatorError::Crypto(e.to_string());
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wi emulator CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "wi emulator");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;
    Ok(TlsMaterial {
        ca_cert_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// A new project with the admin principals as owners.
pub(crate) fn new_project(world: &World, id: &str, number: Option<String>, now: i64) -> Project {
    let number = number.unwrap_or_else(|| {
        let mut n = String::new();
        let mut rng = rand::thread_rng();
        n.push(char::from(b'1' + rng.r#gen_range(0..9u8)));
        for _ in 0..11 {
            n.push(char::from(b'0' + rng.r#gen_range(0..10u8)));
        }
        n
    });
    let mut policy = world::Policy::empty();
    if let Some(a) = &world.admin {
        policy.bindings.push(json!({
            "role": "roles/owner",
            "members": [format!("serviceAccount:{}", a.sa_email), format!("user:{}", a.user_email)]
        }));
        policy.etag = iam::new_policy_etag();
    }
    Project {
        id: id.to_string(),
        number,
        name: id.to_string(),
        create_ms: now,
        services: projects::DEFAULT_ENABLED
            .iter()
            .map(|s| s.to_string())
            .collect(),
        policy,
        workload_pool_exists: false,
        labels: None,
        parent: None,
    }
}

fn ensure_admin(world: &mut World, now: i64) -> Result<(), EmulatorError> {
    if world.admin.is_none() {
        let key = auth::generate_rsa_key().map_err(EmulatorError::Crypto)?;
        let key_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..16]);
        let sa_email = format!("wi-admin@{}.iam.gserviceaccount.com", world.default_project);
        world.keys.insert(
            key_id.clone(),
            IssuedKey {
                email: sa_email.clone(),
                public_pkcs1_hex: key.public_pkcs1_hex,
                created_ms: now,
            },
        );
        world.admin = Some(AdminIdentity {
            user_email: ADMIN_USER.into(),
            sa_email,
            key_id,
            private_key_pem: key.private_pkcs8_pem,
            user_token: auth::new_token(),
        });
    }
    let Some(admin) = world.admin.clone() else {
        return Ok(());
    };
    // The admin user token is long-lived (gcloud never refreshes a token file).
    world.tokens.insert(
        auth::token_hash(&admin.user_token),
        IssuedToken {
            principal: Principal::User(admin.user_email.clone()),
            expires_ms: now + 30 * 24 * 3600 * 1000,
        },
    );
    let project = world.default_project.clone();
    if !world.projects.contains_key(&project) {
        let p = new_project(world, &project, None, now);
        world.projects.insert(project.clone(), p);
    }
    if !world.service_accounts.contains_key(&admin.sa_email) {
        world.service_accounts.insert(
            admin.sa_email.clone(),
            world::ServiceAccount {
                email: admin.sa_email.clone(),
                project: project.clone(),
                account_id: "wi-admin".into(),
                unique_id: iam::new_unique_id(),
                display_name: Some("wi emulator admin".into()),
                description: None,
                disabled: false,
                create_ms: now,
                visible_ms: now,
                policy: world::Policy::empty(),
                etag: "MDEwMjE5MjA=".into(),
            },
        );
    }
    // Owner on every project.
    for p in world.projects.values_mut() {
        let members = [
            format!("serviceAccount:{}", admin.sa_email),
            format!("user:{}", admin.user_email),
        ];
        let has = members.iter().all(|m| {
            p.policy
                .roles_of(std::slice::from_ref(m))
                .iter()
                .any(|r| r == "roles/owner")
        });
        if !has {
            p.policy
                .bindings
                .push(json!({"role": "roles/owner", "members": members}));
            p.policy.etag = iam::new_policy_etag();
        }
    }
    Ok(())
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> Result<(), EmulatorError> {
    world::write_atomic(path, bytes).map_err(|source| EmulatorError::Io {
        path: path.display().to_string(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

/// Starts an emulator.
pub(crate) async fn start(
    cfg: EmulatorConfig,
) -> Result<(Arc<Core>, StartedListeners), EmulatorError> {
    let rules = match &cfg.faults {
        Some(spec) => faults::parse(spec).map_err(EmulatorError::Faults)?,
        None => Vec::new(),
    };
    std::fs::create_dir_all(&cfg.work_dir).map_err(|source| EmulatorError::Io {
        path: cfg.work_dir.display().to_string(),
        source,
    })?;
    let now = now_ms();
    let loaded = match &cfg.state_file {
        Some(p) => world::load(p)?,
        None => None,
    };
    let mut w = match loaded {
        Some(w) => w,
        None => {
            let mut w = World {
                version: world::STATE_VERSION,
                ..World::default()
            };
            match &cfg.seed {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| EmulatorError::Seed {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    let s = seed::parse(&text).map_err(|message| EmulatorError::Seed {
                        path: path.display().to_string(),
                        message,
                    })?;
                    w.default_project = s.default_project().unwrap_or(DEFAULT_PROJECT).to_string();
                    ensure_admin(&mut w, now)?;
                    seed::apply(&s, &mut w, now).map_err(|message| EmulatorError::Seed {
                        path: path.display().to_string(),
                        message,
                    })?;
                }
                None => w.default_project = DEFAULT_PROJECT.into(),
            }
            w
        }
    };
    ensure_admin(&mut w, now)?;
    let tls = make_tls(w.tls.clone())?;
    w.tls = Some(tls.clone());

    // Listeners: reuse the previous ports after a restart when we may.
    let want_main = if cfg.listen.port() == 0 {
        w.main_port.unwrap_or(0)
    } else {
        cfg.listen.port()
    };
    let main = std::net::TcpListener::bind(SocketAddr::new(cfg.listen.ip(), want_main))
        .or_else(|e| {
            if cfg.listen.port() == 0 {
                std::net::TcpListener::bind(cfg.listen)
            } else {
                Err(e)
            }
        })
        .map_err(|source| EmulatorError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    main.set_nonblocking(true)
        .map_err(|source| EmulatorError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    let main_addr = main.local_addr().map_err(|source| EmulatorError::Listen {
        addr: cfg.listen.to_string(),
        source,
    })?;
    let http_std =
        std::net::TcpListener::bind(SocketAddr::new(main_addr.ip(), w.http_port.unwrap_or(0)))
            .or_else(|_| std::net::TcpListener::bind(SocketAddr::new(main_addr.ip(), 0)))
            .map_err(|source| EmulatorError::Listen {
                addr: main_addr.ip().to_string(),
                source,
            })?;
    http_std
        .set_nonblocking(true)
        .map_err(|source| EmulatorError::Listen {
            addr: main_addr.ip().to_string(),
            source,
        })?;
    let http_addr = http_std
        .local_addr()
        .map_err(|source| EmulatorError::Listen {
            addr: main_addr.ip().to_string(),
            source,
        })?;
    w.main_port = Some(main_addr.port());
    w.http_port = Some(http_addr.port());

    let host = match main_addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let paths = Paths {
        token_file: cfg.work_dir.join("access-token"),
        key_file: cfg.work_dir.join("application_default_credentials.json"),
        kubeconfig: cfg.work_dir.join("kubeconfig"),
        ca_file: cfg.work_dir.join("ca.pem"),
    };
    let rng = match cfg.fault_seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_entropy(),
    };
    let cluster_keys: Vec<String> = w.clusters.keys().cloned().collect();
    let admin = w.admin.clone();
    let default_project = w.default_project.clone();
    let core = Arc::new_cyclic(|me| Core {
        world: Mutex::new(w),
        rules,
        rng: Mutex::new(rng),
        stats: Mutex::new(Stats::default()),
        kube: Mutex::new(BTreeMap::new()),
        redirects: Mutex::new(BTreeMap::new()),
        persist_lock: Mutex::new(()),
        kubeconfig_lock: Mutex::new(String::new()),
        dirty: tokio::sync::Notify::new(),
        stopping: AtomicBool::new(false),
        me: me.clone(),
        base_url: format!("https://{host}:{}", main_addr.port()),
        http_url: format!("http://{host}:{}", http_addr.port()),
        paths,
        cfg,
    });

    // Credential files.
    let write = |path: &PathBuf, bytes: &[u8]| write_private(path, bytes);
    write(&core.paths.ca_file, tls.ca_cert_pem.as_bytes())?;
    if let Some(a) = &admin {
        write(&core.paths.token_file, a.user_token.as_bytes())?;
        let key_json = core.key_file_json(
            &default_project,
            &a.key_id,
            &a.sa_email,
            "100000000000000000001",
            &a.private_key_pem,
        );
        let text = serde_json::to_vec_pretty(&key_json).unwrap_or_default();
        write(&core.paths.key_file, &text)?;
    }

    // Listeners.
    let router = Router::new().fallback(dispatch).with_state(core.clone());
    let tls_cfg = RustlsConfig::from_pem(tls.cert_pem.into_bytes(), tls.key_pem.into_bytes())
        .await
        .map_err(|e| EmulatorError::Crypto(e.to_string()))?;
    let tls_handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(main, tls_cfg)
        .map_err(|source| EmulatorError::Listen {
            addr: main_addr.to_string(),
            source,
        })?
        .handle(tls_handle.clone());
    let mut tasks = Vec::new();
    let r1 = router.clone();
    tasks.push(tokio::spawn(async move {
        let _ = server.serve(r1.into_make_service()).await;
    }));
    let http_listener =
        tokio::net::TcpListener::from_std(http_std).map_err(|source| EmulatorError::Listen {
            addr: http_addr.to_string(),
            source,
        })?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(http_listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    }));

    for key in cluster_keys {
        core.start_cluster_api(&key).await;
    }
    core.write_kubeconfig();
    core.persist();

    // Background: finish operations, persist Kubernetes changes.
    let c = core.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if c.stopping.load(Ordering::SeqCst) {
                break;
            }
            c.tick().await;
        }
    }));
    let c = core.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            c.dirty.notified().await;
            if c.stopping.load(Ordering::SeqCst) {
                break;
            }
            let c2 = c.clone();
            let _ = tokio::task::spawn_blocking(move || c2.persist()).await;
        }
    }));

    if let Some(path) = &core.cfg.env_file {
        world::write_atomic(path, env_script(&core.env()).as_bytes()).map_err(|source| {
            EmulatorError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    Ok((
        core,
        StartedListeners {
            tls: tls_handle,
            http_shutdown: Some(tx),
            tasks,
        },
    ))
}

/// Stops everything and writes the state a last time.
pub(crate) async fn shutdown(core: Arc<Core>, mut listeners: StartedListeners) {
    core.stopping.store(true, Ordering::SeqCst);
    core.dirty.notify_one();
    listeners.tls.shutdown();
    if let Some(tx) = listeners.http_shutdown.take() {
        let _ = tx.send(());
    }
    let runtimes: Vec<KubeRuntime> = {
        let mut k = core.kube.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *k).into_values().collect()
    };
    // Snapshot the clusters before dropping them.
    {
        let snaps: Vec<(String, KubeClusterState)> = runtimes
            .iter()
            .map(|r| {
                let id = r.cluster.identity();
                (
                    world::cluster_key(&id.project, &id.location, &id.name),
                    r.cluster.snapshot(),
                )
            })
            .collect();
        let mut w = core.world();
        for (k, s) in snaps {
            if w.clusters.contains_key(&k) {
                w.kube.insert(k, s);
            }
        }
    }
    for r in &runtimes {
        let _ = (r.port, &r.ca_pem);
        r.handle.shutdown();
    }
    core.persist();
    for t in listeners.tasks.drain(..) {
        t.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_times() {
        assert_eq!(
            percent_decode("sa%40p.iam.gserviceaccount.com"),
            "sa@p.iam.gserviceaccount.com"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123000Z");
        assert_eq!(rfc3339_seconds(1_700_000_000_999), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn exports_are_shell_quoted() {
        let env = vec![("A".to_string(), "it's".to_string())];
        assert_eq!(env_script(&env), "export A='it'\\''s'\n");
    }
}
