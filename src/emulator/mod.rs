//! The local emulator of every API `wi` calls: GKE, IAM, Resource Manager,
//! Service Usage, OAuth token, STS, IAM Credentials and, per emulated cluster,
//! the Kubernetes API. Used by `wi demo`, `wi emulator` and the tests.
//!
//! One HTTPS listener serves every Google API, each under its own path prefix
//! (`/container/`, `/iam/`, ...), so gcloud's `CLOUDSDK_API_ENDPOINT_OVERRIDES_*`
//! can point at it; a plain-HTTP listener serves the same routes for the OAuth
//! `token_uri` (clients such as gcp_auth only trust the system roots). Each
//! cluster's Kubernetes API runs on its own TLS port with the cluster's CA.
//!
//! The modules form a tree without cycles, bottom first: `time`, `crypto`,
//! `wire` (Google's error envelope), `faults`, `kubeconfig`; `world` (the
//! persisted state and its constructors); `core` (world lock, config, stats,
//! fault dice, token issue, persistence); `request`; `google` (one file per
//! Google API and the one table that lists them); `kube` (the Kubernetes API
//! server, reached through its `KubeHost` contract); `kube_runtime` (one TLS
//! listener per cluster); `seed`; `router` (the one route table); `start`
//! (start, shutdown, credential files, env exports). An IAM `setIamPolicy`
//! goes `router` → `google::iam` (or `google::crm` for a project) →
//! `google::policy::set_policy`.

mod core;
pub mod crypto;
mod faults;
mod google;
pub mod kube;
mod kube_runtime;
mod kubeconfig;
mod quota;
mod request;
mod request_log;
mod router;
mod seed;
mod start;
mod time;
mod wire;
mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use self::core::Core;
pub use self::core::Stats;
pub use self::request_log::LoggedRequest;
use self::start::StartedListeners;
pub use self::world::StateError;

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address of the Google API listener (HTTPS). Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Keep the whole world in this file (loaded at start, written after every change).
    pub state_file: Option<PathBuf>,
    /// Starting world (YAML, see `examples/emulator.seed.yaml`); ignored when the state file exists.
    pub seed: Option<PathBuf>,
    /// Added to every request.
    pub latency: Option<Duration>,
    /// Fault spec, e.g. `iam.setIamPolicy=409:0.3,container.*=503:0.1,*=429:0.05`.
    pub faults: Option<String>,
    /// Quota mode, e.g. `*=20,kubernetes=50`: requests per second per Google
    /// API and project, requests in flight per cluster (see `wi emulator --quota`).
    pub quota: Option<String>,
    /// Seed of the fault / concurrent-writer RNG (reproducible tests).
    pub fault_seed: Option<u64>,
    /// Also write the `export` lines here.
    pub env_file: Option<PathBuf>,
    /// Where the key file, token file, kubeconfig and CA are written
    /// (default: a fresh directory under the system temp dir).
    pub work_dir: PathBuf,
    /// How long GKE operations take PENDING → RUNNING → DONE.
    pub operation_duration: Duration,
    /// A new service account is invisible for this long.
    pub visibility_delay: Duration,
    /// Probability that a foreign writer changes a policy right after a client read it.
    pub concurrent_writer: Option<f64>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            seed: None,
            latency: None,
            faults: None,
            quota: None,
            fault_seed: None,
            env_file: None,
            // Unique per config, so concurrent emulators never share files.
            work_dir: std::env::temp_dir().join(format!(
                "wi-emulator-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            )),
            operation_duration: Duration::from_secs(2),
            visibility_delay: Duration::ZERO,
            concurrent_writer: None,
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    State(#[from] world::StateError),
    #[error("invalid seed file {path}: {message}")]
    Seed { path: String, message: String },
    #[error("invalid --faults spec: {0}")]
    Faults(String),
    #[error("invalid --quota spec: {0}")]
    Quota(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create credentials: {0}")]
    Crypto(String),
}

/// A running emulator, in-process.
pub struct Emulator {
    core: Arc<Core>,
    listeners: StartedListeners,
}

impl Emulator {
    /// Loads (or seeds) the world, starts every listener and writes the
    /// credential files, kubeconfig and env file.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        // The TLS listeners need a process-wide rustls provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (core, listeners) = start::start(config).await?;
        Ok(Emulator { core, listeners })
    }

    /// The `export` variables that point gcloud, kubectl and `wi` at this emulator, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        start::env(&self.core)
    }

    /// The same as shell lines: `export K='V'`.
    pub fn env_script(&self) -> String {
        start::env_script(&self.env())
    }

    /// `https://127.0.0.1:PORT` (the Google API listener).
    pub fn base_url(&self) -> String {
        self.core.base_url.clone()
    }

    /// `http://127.0.0.1:PORT` (plain HTTP, same routes; the OAuth token endpoint lives here).
    pub fn http_url(&self) -> String {
        self.core.http_url.clone()
    }

    /// The project exported as `CLOUDSDK_CORE_PROJECT`.
    pub fn default_project(&self) -> String {
        self.core.default_project()
    }

    /// The CA of the Google API listener.
    pub fn ca_file(&self) -> Option<PathBuf> {
        Some(self.core.paths.ca_file.clone())
    }

    /// Issues an access token for a user principal (`alice@example.com`) that
    /// holds no role unless a policy grants one: for permission tests.
    pub fn issue_user_token(&self, email: &str) -> String {
        self.core
            .issue_token(world::Principal::User(email.to_string()))
    }

    /// The admin user's access token (the one in `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`).
    pub fn admin_token(&self) -> String {
        self.core.admin_token()
    }

    /// Points the cluster's `endpoint` and `masterAuth.clusterCaCertificate`
    /// (what `wi`, gcloud and the written kubeconfig connect to) at another
    /// Kubernetes API server, e.g. a real kube-apiserver in tests; `endpoint`
    /// is `HOST:PORT` as GKE reports it, `ca_pem` the PEM that signs its
    /// serving certificate. Kept when the emulator restarts the cluster's own
    /// API. `false` when the cluster does not exist.
    pub fn redirect_cluster_api(
        &self,
        project: &str,
        location: &str,
        cluster: &str,
        endpoint: &str,
        ca_pem: &str,
    ) -> bool {
        self.core.redirect_cluster_api(
            &world::cluster_key(project, location, cluster),
            endpoint,
            ca_pem,
        )
    }

    /// Counters of requests, injected faults and concurrent writes.
    pub fn stats(&self) -> Stats {
        self.core.stats_snapshot()
    }

    /// Stops every listener and writes the state one last time.
    pub async fn shutdown(self) {
        start::shutdown(self.core, self.listeners).await;
    }
}
