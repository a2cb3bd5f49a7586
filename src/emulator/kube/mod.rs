//! The Kubernetes API of each emulated cluster, served over HTTPS with the
//! cluster's own CA. This file is the contract between the Kubernetes side and
//! the rest of the emulator (`emulator::core` owns the world, persistence and
//! Google tokens, `emulator::kube_runtime` the TLS listeners; both reach this
//! side only through `KubeHost` and `KubeCluster`).
//!
//! Served like kube-apiserver 1.33 on GKE: discovery (`/version`, `/api`,
//! `/api/v1`, `/apis`, `/openapi/v3`), OIDC discovery and JWKS; namespaces,
//! service accounts and pods with create (JSON or protobuf bodies), get, list
//! (label/field selectors, `limit`/`continue`, server-side `Table`s), watch,
//! update, delete, merge / strategic-merge / JSON patches and server-side
//! apply with real `managedFields`; TokenRequest; `Status` errors byte for byte.
//!
//! Known differences from a real cluster, on purpose:
//! - deleting a namespace removes it and its contents at once (no
//!   `Terminating` phase, no finalizers to wait for);
//! - lists inside objects are atomic for field ownership (the real server
//!   tracks some item by item, e.g. `ownerReferences`, pod `containers`);
//!   strategic merge patch does merge the keyed lists of service accounts,
//!   metadata and pods;
//! - protobuf request bodies are understood for Namespace, ServiceAccount,
//!   TokenRequest and SelfSubjectAccessReview only (what `kubectl create
//!   namespace|serviceaccount|token` and `kubectl auth can-i` send);
//!   responses are always JSON;
//! - a cluster's own service-account tokens authenticate (as
//!   `system:serviceaccount:NS:NAME`) but there are no RBAC objects: such a
//!   user may only do what every authenticated user may on a new cluster;
//! - pods are stored as given (no scheduling, no status changes);
//! - `/openapi/v3/api/v1` carries only the PATCH operations and their query
//!   parameters (enough for kubectl's server-side field validation check);
//!   there is no `/openapi/v2` (client-side `kubectl apply` falls back to its
//!   compiled-in types and works);
//! - watch history is the last 1000 changes and lives in memory only.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod access_review;
mod discovery;
mod errors;
mod fields;
mod http;
mod managed;
mod objects;
mod patch;
mod proto;
mod store;
mod tables;
mod token_request;
mod tokens;
mod validation;
mod watch;

use super::crypto::Rs256Signer;
use super::time::now_rfc3339_unix;

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

    /// Whether `user` may do `access` (GKE asks IAM, then RBAC). The default
    /// allows everything an authenticated user asks; a denial is answered
    /// with the real 403 `Forbidden` body.
    fn authorize(&self, user: &str, access: &KubeAccess<'_>) -> bool {
        let _ = (user, access);
        true
    }
}

/// The attributes of a request an authorizer decides on (a
/// SubjectAccessReview's `resourceAttributes`), API group always core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeAccess<'a> {
    /// `get`, `list`, `create`, `update`, `patch`, `delete`.
    pub verb: &'a str,
    /// `namespaces`, `serviceaccounts`, `pods`.
    pub resource: &'a str,
    /// `token` for TokenRequest, otherwise empty.
    pub subresource: &'a str,
    /// The namespace; for a namespace object, its own name.
    pub namespace: Option<&'a str>,
    /// The object name; empty for lists and creates.
    pub name: &'a str,
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
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeClusterState {
    /// The cluster-wide resourceVersion counter (etcd's revision).
    #[serde(default)]
    pub(crate) resource_version: u64,
    /// Stored objects by key (`namespaces/NAME`, `serviceaccounts/NS/NAME`,
    /// `pods/NS/NAME`), each with its `managedFields`.
    #[serde(default)]
    pub(crate) objects: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub(crate) ca_cert_pem: String,
    #[serde(default)]
    pub(crate) serving_cert_pem: String,
    #[serde(default)]
    pub(crate) serving_key_pem: String,
    /// PKCS#8 PEM of the RSA key that signs service-account tokens.
    #[serde(default)]
    pub(crate) signing_key_pem: String,
    /// Changes not yet handed to watchers (never persisted).
    #[serde(skip)]
    pub(crate) pending: Vec<store::Event>,
}

impl std::fmt::Debug for KubeClusterState {
    // Private keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClusterState")
            .field("resource_version", &self.resource_version)
            .field("objects", &self.objects.keys().collect::<Vec<_>>())
            .field("has_pki", &!self.ca_cert_pem.is_empty())
            .field("has_signing_key", &!self.signing_key_pem.is_empty())
            .finish()
    }
}

/// System namespaces of a new GKE cluster.
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

impl KubeClusterState {
    /// A new cluster: namespaces `default`, `kube-system`, `kube-public`,
    /// `kube-node-lease` (each with its `default` service account), a fresh CA
    /// and serving certificate for 127.0.0.1/localhost; the signing key comes
    /// when the cluster first signs or publishes its keys.
    ///
    /// Key generation failing means the platform's RNG is broken; the state
    /// then has no PKI and the cluster answers TLS/token requests with errors.
    pub fn generate(identity: &ClusterIdentity) -> Self {
        let mut state = Self::default();
        state.fill_missing_keys(identity);
        let now = now_rfc3339_unix();
        for ns in SYSTEM_NAMESPACES {
            let opts = store::WriteOptions {
                admission: false,
                field_validation: store::FieldValidation::Strict,
                manager: "kube-apiserver".into(),
                dry_run: false,
                now: now.clone(),
            };
            let _ = state.create(
                objects::KubeResource::Namespaces,
                None,
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                &opts,
            );
        }
        state
    }

    /// Generates whatever key material is missing (a state built with
    /// `Default` or written by an older version), so a cluster always serves
    /// TLS and signs tokens.
    fn fill_missing_keys(&mut self, identity: &ClusterIdentity) {
        if self.ca_cert_pem.is_empty()
            || self.serving_cert_pem.is_empty()
            || self.serving_key_pem.is_empty()
        {
            match super::crypto::cluster_pki(&uuid::Uuid::new_v4().to_string()) {
                Ok(pki) => {
                    self.ca_cert_pem = pki.ca_cert_pem;
                    self.serving_cert_pem = pki.serving_cert_pem;
                    self.serving_key_pem = pki.serving_key_pem;
                }
                Err(e) => {
                    tracing::error!(cluster = %identity.name, "generating the cluster PKI failed: {e}")
                }
            }
        }
        // The service-account signing key (RSA, the slow one to make) is
        // generated on first use instead: see [`KubeCluster::signer`].
    }

    /// Adds an object from a seed file (Namespace, ServiceAccount or Pod as
    /// JSON), as if created through the API. Errors name what is wrong.
    pub fn insert_object(&mut self, object: serde_json::Value) -> Result<(), String> {
        self.seed_object(object, None)
    }

    /// Adds an object from a seed file as `manager`'s server-side apply (the
    /// fields it sets are that manager's, as if `wi apply` had written them).
    pub fn apply_object(&mut self, object: serde_json::Value, manager: &str) -> Result<(), String> {
        self.seed_object(object, Some(manager))
    }

    fn seed_object(
        &mut self,
        object: serde_json::Value,
        apply_as: Option<&str>,
    ) -> Result<(), String> {
        let kind = object
            .get("kind")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string();
        let resource = objects::KubeResource::from_kind(&kind).ok_or_else(|| {
            format!("unsupported kind {kind:?}: expected Namespace, ServiceAccount or Pod")
        })?;
        let namespace = if resource.namespaced() {
            Some(
                object
                    .pointer("/metadata/namespace")
                    .and_then(serde_json::Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("default")
                    .to_string(),
            )
        } else {
            None
        };
        let mut object = object;
        if let Some(m) = object
            .get_mut("metadata")
            .and_then(serde_json::Value::as_object_mut)
        {
            m.remove("resourceVersion");
        }
        let opts = store::WriteOptions {
            admission: false,
            field_validation: store::FieldValidation::Strict,
            manager: apply_as.unwrap_or("kubectl-create").into(),
            dry_run: false,
            now: now_rfc3339_unix(),
        };
        let written = match apply_as {
            None => self.create(resource, namespace.as_deref(), object, &opts),
            Some(_) => {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.apply(resource, namespace.as_deref(), &name, object, false, &opts)
            }
        };
        written
            .map(|_| ())
            .map_err(|e| format!("{kind}: {}", e.message))
    }
}

/// One live emulated cluster API. Cheap to share; all methods take `&self`.
pub struct KubeCluster {
    identity: ClusterIdentity,
    state: std::sync::Mutex<KubeClusterState>,
    host: Arc<dyn KubeHost>,
    /// The loaded signing key, generated on first use when the state has
    /// none (`None` when it is corrupt or cannot be made). An RSA key takes
    /// a noticeable time to generate, and most clusters never sign a token.
    signer: std::sync::OnceLock<Option<Rs256Signer>>,
    /// The change feed for watches.
    hub: watch::Hub,
}

impl KubeCluster {
    /// Serves `state` for `identity`; `host` authenticates callers and persists.
    pub fn new(
        identity: ClusterIdentity,
        state: KubeClusterState,
        host: Arc<dyn KubeHost>,
    ) -> Arc<Self> {
        let mut state = state;
        state.fill_missing_keys(&identity);
        // Changes made before serving (generation, seeds) are history nobody watched.
        state.drain_events();
        Arc::new(Self {
            identity,
            state: std::sync::Mutex::new(state),
            host,
            signer: std::sync::OnceLock::new(),
            hub: watch::Hub::default(),
        })
    }

    /// The service-account signing key: the state's, else a new one kept in
    /// the state (persisted with it) so tokens and JWKS stay consistent.
    pub(crate) fn signer(&self) -> Option<&Rs256Signer> {
        self.signer
            .get_or_init(|| {
                let mut state = self.lock();
                let generated = state.signing_key_pem.is_empty();
                if generated {
                    match super::crypto::generate_rsa_key() {
                        Ok(key) => state.signing_key_pem = key.private_pkcs8_pem,
                        Err(e) => {
                            tracing::error!(cluster = %self.identity.name, "generating the signing key failed: {e}");
                            return None;
                        }
                    }
                }
                let signer = match Rs256Signer::from_pem(&state.signing_key_pem) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::error!(cluster = %self.identity.name, "service-account signing key unusable: {e}");
                        None
                    }
                };
                drop(state);
                if generated {
                    self.host.changed();
                }
                signer
            })
            .as_ref()
    }

    /// The cluster this API belongs to.
    pub fn identity(&self) -> &ClusterIdentity {
        &self.identity
    }

    /// A copy of the state to persist.
    pub fn snapshot(&self) -> KubeClusterState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KubeClusterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The axum router of this cluster's API (`/version`, `/api`, `/apis`,
    /// namespaces, serviceaccounts, token requests, pods). The core serves it
    /// over TLS with [`KubeCluster::serving_cert_and_key_pem`], behind its
    /// latency/fault middleware.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        http::router(self.clone())
    }

    /// PEM of the cluster CA (GKE's `masterAuth.clusterCaCertificate` is its base64).
    pub fn ca_pem(&self) -> String {
        self.lock().ca_cert_pem.clone()
    }

    /// PEM of the serving certificate chain and its private key.
    pub fn serving_cert_and_key_pem(&self) -> (String, String) {
        let s = self.lock();
        (
            format!("{}{}", s.serving_cert_pem, s.ca_cert_pem),
            s.serving_key_pem.clone(),
        )
    }

    /// The public signing keys as a JWKS document, what GKE publishes at
    /// `{issuer}/jwks` and the API server at `/openid/v1/jwks`. Empty key
    /// list when the cluster has no signing key.
    pub fn jwks(&self) -> serde_json::Value {
        self.signer()
            .map(Rs256Signer::jwks)
            .unwrap_or_else(|| serde_json::json!({"keys": []}))
    }

    /// Verifies a token this cluster issued (signature, expiry) and returns its claims.
    pub fn verify_token(&self, jwt: &str) -> Result<TokenClaims, String> {
        let signer = self
            .signer()
            .ok_or_else(|| "this cluster has no signing key".to_string())?;
        let claims = tokens::verify(
            signer,
            jwt,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
        .map_err(|e| e.to_string())?;
        if claims.iss != self.identity.issuer() {
            return Err(format!("token issuer {:?} is not this cluster", claims.iss));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_objects_belong_to_their_manager() {
        let mut state = KubeClusterState::default();
        let ns =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
        state.insert_object(ns).expect("namespace");
        let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "app", "namespace": "a",
                "annotations": {"iam.gke.io/gcp-service-account": "g@p.iam.gserviceaccount.com"}}});
        state.apply_object(sa, "wi").expect("service account");
        let ns = state
            .get(objects::KubeResource::Namespaces, None, "a")
            .expect("namespace");
        assert_eq!(
            ns["metadata"]["managedFields"][0]["manager"],
            "kubectl-create"
        );
        assert_eq!(ns["metadata"]["managedFields"][0]["operation"], "Update");
        let sa = state
            .get(objects::KubeResource::ServiceAccounts, Some("a"), "app")
            .expect("service account");
        assert_eq!(sa["metadata"]["managedFields"][0]["manager"], "wi");
        assert_eq!(sa["metadata"]["managedFields"][0]["operation"], "Apply");
    }
}
