//! The bottom of the emulator that every Google API and the Kubernetes
//! runtime import: the world lock, the configuration, stats, the fault dice,
//! token issue and lookup, persistence and the kubeconfig it writes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::json;

use super::EmulatorConfig;
use super::crypto;
use super::faults::{self, FaultRule};
use super::kube::{KubeCluster, KubeClusterState};
use super::kubeconfig;
use super::quota::Quota;
use super::request_log::RequestLog;
use super::time::now_ms;
use super::world::{self, EmulatorWorld, IssuedToken, Principal};

/// Lifetime of tokens minted by the OAuth endpoint, STS and IAM Credentials.
pub(crate) const TOKEN_LIFETIME_SECS: i64 = 3599;

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
    /// Requests per API method: `iam.projects.serviceAccounts.getIamPolicy`
    /// (Google: service prefix and discovery method id), `k8s list pods`
    /// (Kubernetes: verb and resource), `oauth.token`, ...
    pub calls: BTreeMap<String, u64>,
    /// Requests refused by the quota mode (`--quota`).
    pub throttled: u64,
    /// Refused requests per API (`iam`, `kubernetes`, ...).
    pub throttled_by_api: BTreeMap<String, u64>,
}

impl Stats {
    /// The calls counted since `earlier` (a snapshot taken before), by method.
    pub fn calls_since(&self, earlier: &Stats) -> BTreeMap<String, u64> {
        self.calls
            .iter()
            .filter_map(|(k, n)| {
                let d = n - earlier.calls.get(k).copied().unwrap_or(0).min(*n);
                (d > 0).then(|| (k.clone(), d))
            })
            .collect()
    }

    /// One line per method, `COUNT  METHOD`, busiest first, then the total.
    pub fn calls_report(&self) -> String {
        let mut rows: Vec<(&String, &u64)> = self.calls.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut out = String::new();
        for (k, n) in rows {
            out += &format!("{n:>8}  {k}\n");
        }
        out += &format!("{:>8}  total\n", self.calls.values().sum::<u64>());
        if self.throttled > 0 {
            out += &format!("{:>8}  refused by the quota\n", self.throttled);
        }
        out
    }
}

/// Files the emulator writes into its work dir.
pub(crate) struct Paths {
    pub token_file: PathBuf,
    pub key_file: PathBuf,
    pub kubeconfig: PathBuf,
    pub ca_file: PathBuf,
}

/// One cluster's running Kubernetes API (see `kube_runtime`).
pub(crate) struct KubeRuntime {
    pub cluster: Arc<KubeCluster>,
    pub handle: axum_server::Handle<SocketAddr>,
}

/// Shared state of one emulator.
pub(crate) struct Core {
    pub(super) world: Mutex<EmulatorWorld>,
    pub(super) cfg: EmulatorConfig,
    pub(super) rules: Vec<FaultRule>,
    pub(super) rng: Mutex<StdRng>,
    pub(super) stats: Mutex<Stats>,
    pub(super) quota: Quota,
    /// Mutating requests in the order served (`GET /emulator/requests`).
    pub(crate) requests: RequestLog,
    pub(super) kube: Mutex<BTreeMap<String, KubeRuntime>>,
    /// Clusters whose `endpoint` / CA point at another Kubernetes API server
    /// (`Emulator::redirect_cluster_api`): key → (`endpoint`, base64 CA PEM).
    pub(super) redirects: Mutex<BTreeMap<String, (String, String)>>,
    pub(super) persist_lock: Mutex<()>,
    pub(super) kubeconfig_lock: Mutex<String>,
    pub(super) dirty: tokio::sync::Notify,
    pub(super) stopping: AtomicBool,
    pub(super) me: Weak<Core>,
    pub base_url: String,
    pub http_url: String,
    pub paths: Paths,
}

impl Core {
    /// The configured latency, then one more request in the stats.
    pub(super) async fn delay_and_count(&self) {
        if let Some(l) = self.cfg.latency {
            tokio::time::sleep(l).await;
        }
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests += 1;
    }

    /// One more request of `method` (see [`Stats::calls`]).
    pub(crate) fn count_call(&self, method: &str) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match s.calls.get_mut(method) {
            Some(n) => *n += 1,
            None => {
                s.calls.insert(method.to_string(), 1);
            }
        }
    }

    /// One more request refused by the quota of `api`.
    pub(crate) fn count_throttled(&self, api: &str) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.throttled += 1;
        *s.throttled_by_api.entry(api.to_string()).or_default() += 1;
    }

    /// The world, locked. Never hold it across an `.await` or while calling into a cluster.
    pub(crate) fn world(&self) -> MutexGuard<'_, EmulatorWorld> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now_ms(&self) -> i64 {
        now_ms()
    }

    pub(crate) fn operation_ms(&self) -> i64 {
        self.cfg.operation_duration.as_millis() as i64
    }

    pub(crate) fn visibility_ms(&self) -> i64 {
        self.cfg.visibility_delay.as_millis() as i64
    }

    pub(crate) fn default_project(&self) -> String {
        self.world().default_project.clone()
    }

    pub(crate) fn admin_token(&self) -> String {
        self.world()
            .admin
            .as_ref()
            .map(|a| a.user_token.clone())
            .unwrap_or_default()
    }

    /// A service-account key file (JSON) whose `token_uri` is this emulator.
    pub(crate) fn key_file_json(
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
    pub(crate) fn issue_token(&self, principal: Principal) -> String {
        self.issue_token_for(principal, TOKEN_LIFETIME_SECS)
    }

    /// Issues a token valid for `secs` seconds.
    pub(crate) fn issue_token_for(&self, principal: Principal, secs: i64) -> String {
        let token = crypto::new_token();
        {
            let mut w = self.world();
            let now = now_ms();
            w.tokens.retain(|_, t| t.expires_ms > now);
            w.tokens.insert(
                crypto::token_hash(&token),
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
    pub(crate) fn authenticate(&self, token: &str) -> Option<Principal> {
        let w = self.world();
        let t = w.tokens.get(&crypto::token_hash(token))?;
        (t.expires_ms > now_ms()).then(|| t.principal.clone())
    }

    /// Rolls the concurrent-writer dice.
    pub(crate) fn roll_concurrent_writer(&self) -> bool {
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

    pub(crate) fn stats_snapshot(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn pick_fault(&self, service: &str, method: &str) -> Option<u16> {
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
    pub(crate) fn kube_cluster_by_issuer(&self, iss: &str) -> Option<Arc<KubeCluster>> {
        self.kube
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|r| r.cluster.identity().issuer() == iss)
            .map(|r| r.cluster.clone())
    }

    /// Writes the world to the state file (atomically), if there is one.
    pub(crate) fn persist(&self) {
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

    /// Stops the Kubernetes APIs of clusters that no longer exist.
    pub(crate) fn stop_cluster_apis(&self, keys: &[String]) {
        for key in keys {
            let rt = self
                .kube
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
            if let Some(rt) = rt {
                rt.handle.shutdown();
            }
        }
    }

    /// Rewrites the kubeconfig when its content changes.
    pub(crate) fn write_kubeconfig(&self) {
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
    pub(crate) fn redirect_cluster_api(&self, key: &str, endpoint: &str, ca_pem: &str) -> bool {
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
}
