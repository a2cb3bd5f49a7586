//! The Kubernetes API of each emulated cluster, served over HTTPS with the
//! cluster's own CA. This file is the contract between the Kubernetes side and
//! the rest of the emulator (`emulator::mod` owns the world, persistence,
//! Google tokens and the TLS listeners).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Everything the Kubernetes side needs from the rest of the emulator.
/// Implemented by the emulator core.
pub trait KubeHost: Send + Sync + 'static {
    /// Resolves a bearer token to a Kubernetes username, as GKE does for Google
    /// access tokens: the email of the Google principal the emulator issued the
    /// token to (`alice@example.com`, `sa@p.iam.gserviceaccount.com`). `None`
    /// when the token is unknown or expired (the API answers 401).
    fn authenticate(&self, bearer: &str) -> Option<String>;

    /// Called after every successful change to a cluster's objects, so the core
    /// can persist the world (`--state`).
    fn changed(&self);
}

/// Identity of one emulated cluster, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub project: String,
    pub location: String,
    pub name: String,
}

impl ClusterIdentity {
    /// `https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`,
    /// the issuer of this cluster's service-account tokens.
    pub fn issuer(&self) -> String {
        format!(
            "https://container.googleapis.com/v1/projects/{}/locations/{}/clusters/{}",
            self.project, self.location, self.name
        )
    }
}

/// Claims of a service-account token this cluster issued (TokenRequest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The cluster's issuer URL ([`ClusterIdentity::issuer`]).
    pub iss: String,
    /// `system:serviceaccount:NAMESPACE:NAME`.
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
}

/// The persisted state of one cluster's Kubernetes API: its objects, the
/// resourceVersion counter, its CA and serving certificate and its
/// service-account signing key. Kept inside the emulator's world file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KubeClusterState {
    // CONTRACT: the Kubernetes-side owner fills this in.
}

impl KubeClusterState {
    /// A new cluster: namespaces `default`, `kube-system`, `kube-public`,
    /// `kube-node-lease` (each with its `default` service account), a fresh CA,
    /// serving certificate for 127.0.0.1/localhost and signing key.
    pub fn generate(_identity: &ClusterIdentity) -> Self {
        Self::default()
    }

    /// Adds an object from a seed file (Namespace, ServiceAccount or Pod as
    /// JSON), as if created through the API. Errors name what is wrong.
    pub fn insert_object(&mut self, _object: serde_json::Value) -> Result<(), String> {
        Ok(())
    }
}

/// One live emulated cluster API. Cheap to share; all methods take `&self`.
pub struct KubeCluster {
    identity: ClusterIdentity,
    state: std::sync::Mutex<KubeClusterState>,
    host: Arc<dyn KubeHost>,
}

impl KubeCluster {
    pub fn new(
        identity: ClusterIdentity,
        state: KubeClusterState,
        host: Arc<dyn KubeHost>,
    ) -> Arc<Self> {
        Arc::new(Self {
            identity,
            state: std::sync::Mutex::new(state),
            host,
        })
    }

    pub fn identity(&self) -> &ClusterIdentity {
        &self.identity
    }

    /// A copy of the state to persist.
    pub fn snapshot(&self) -> KubeClusterState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The axum router of this cluster's API (`/version`, `/api`, `/apis`,
    /// namespaces, serviceaccounts, token requests, pods). The core serves it
    /// over TLS with [`KubeCluster::serving_cert_and_key_pem`], behind its
    /// latency/fault middleware.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let _ = &self.host;
        axum::Router::new()
    }

    /// PEM of the cluster CA (GKE's `masterAuth.clusterCaCertificate` is its base64).
    pub fn ca_pem(&self) -> String {
        String::new()
    }

    /// PEM of the serving certificate chain and its private key.
    pub fn serving_cert_and_key_pem(&self) -> (String, String) {
        (String::new(), String::new())
    }

    /// Verifies a token this cluster issued (signature, expiry) and returns its claims.
    pub fn verify_token(&self, _jwt: &str) -> Result<TokenClaims, String> {
        Err("not implemented".into())
    }
}
