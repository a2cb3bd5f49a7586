//! REST clients of the Google APIs `wi` calls (GKE, IAM, Resource Manager,
//! Service Usage), with endpoints from gcloud's `CLOUDSDK_API_ENDPOINT_OVERRIDES_*`,
//! tokens from application default credentials, typed errors and one retry policy.
//!
//! One [`GcpClient`] serves all four APIs. Every call goes through the same
//! path (`transport`): build the URL from the endpoint and percent-encoded
//! segments, attach a bearer token, send, map errors to [`GcpError`], retry
//! with the one [`RetryPolicy`]. One file per API sits on top of it
//! (`container`, `iam`, `resourcemanager`, `serviceusage`), with the waits
//! `wi` needs: GKE operations, Service Usage operations and etag-guarded IAM
//! read-modify-write.

pub(crate) mod auth;
mod container;
mod credentials;
pub(crate) mod endpoints;
pub(crate) mod error;
mod iam;
mod resourcemanager;
pub(crate) mod retry;
mod serviceusage;
pub mod sts;
mod transport;
pub mod types;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use auth::{AdcTokenSource, StaticTokenSource, TokenSource, token_source_from_env};
pub use endpoints::Endpoints;
pub use error::GcpError;
pub use retry::{ClientStats, RetryPolicy};

use retry::{Counters, Throttles};

/// How the HTTP client is built.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Extra PEM CA bundle trusted in addition to the system roots
    /// (gcloud's `CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Timeout of one HTTP attempt.
    pub timeout: Duration,
    /// Timeout of one TCP/TLS connect.
    pub connect_timeout: Duration,
    /// The retry policy of every call.
    pub retry: RetryPolicy,
    /// `User-Agent` header.
    pub user_agent: String,
    /// The most calls in flight per Google API and project (`--parallelism`):
    /// each starts narrower and grows while its calls succeed (see the
    /// module `retry`'s `Throttles`).
    pub max_in_flight: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: format!("wi/{}", env!("CARGO_PKG_VERSION")),
            max_in_flight: retry::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

impl ClientOptions {
    /// Defaults plus `CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE`.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            ca_file: get("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE")
                .filter(|p| !p.trim().is_empty())
                .map(|p| PathBuf::from(p.trim())),
            ..Self::default()
        }
    }
}

/// Whose IAM policy [`GcpClient::modify_iam_policy`] edits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyTarget {
    /// A Google service account (IAM v1 `serviceAccounts.{get,set}IamPolicy`).
    ServiceAccount {
        /// The account's email.
        email: String,
    },
    /// A project (Resource Manager v1 `projects.{get,set}IamPolicy`).
    Project {
        /// Project id.
        project: String,
    },
}

impl fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyTarget::ServiceAccount { email } => write!(f, "service account {email}"),
            PolicyTarget::Project { project } => write!(f, "project {project}"),
        }
    }
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: Arc<dyn TokenSource>,
    retry: RetryPolicy,
    counters: Arc<Counters>,
    /// Adaptive pacing per API and project (shared by all clones).
    throttles: Throttles,
}

/// The Google REST client. Cheap to clone (one `reqwest::Client` and one set
/// of counters shared by all clones).
#[derive(Clone)]
pub struct GcpClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for GcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpClient")
            .field("endpoints", &self.inner.endpoints)
            .field("tokens", &self.inner.tokens.describe())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl GcpClient {
    /// Builds the client. Installs rustls' ring provider if the process has none
    /// (reqwest is built without one).
    pub fn new(
        endpoints: Endpoints,
        tokens: Arc<dyn TokenSource>,
        options: ClientOptions,
    ) -> Result<Self, GcpError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone());
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                GcpError::Config(format!("cannot read CA bundle {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| GcpError::Config(format!("bad CA bundle {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(GcpError::Config(format!(
                    "CA bundle {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| GcpError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                tokens,
                retry: options.retry,
                counters: Arc::new(Counters::default()),
                throttles: Throttles::new(options.max_in_flight),
            }),
        })
    }

    /// The endpoints this client calls.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// Requests sent and retries made so far, over all clones.
    pub fn stats(&self) -> ClientStats {
        self.inner.counters.snapshot()
    }

    /// The pace of `api`'s calls for `project` (`api` as Google names it:
    /// `iam`, `container`, `cloudresourcemanager`, `serviceusage`), in
    /// requests per second: `None` until a call of theirs was refused with
    /// 429, then the adaptive rate (see the module `retry`'s `Throttles`).
    pub fn paced_rate(&self, api: &str, project: &str) -> Option<f64> {
        let api = transport::Api::from_name(api)?;
        self.inner.throttles.rate(api.name(), project)
    }

    /// A Google access token from the client's token source (for Kubernetes).
    pub async fn access_token(&self) -> Result<SecretString, GcpError> {
        self.inner.tokens.token().await
    }
}
