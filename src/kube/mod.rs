//! Kubernetes clients for the clusters `wi` manages, built from the GKE
//! cluster itself (endpoint, CA, Google token) or a kubeconfig context.
//!
//! Writes are server-side apply with the owner's field manager (`wi` for the
//! unnamed owner, `wi/O` for owner O) and carry only the fields that owner
//! manages (name, its labels and annotations), so a foreign label or
//! annotation is never claimed, and re-applying without a field releases it.

mod access;
mod call_log;
mod error;

use std::collections::BTreeMap;
use std::fmt;

use ::kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use ::kube::config::{
    AuthInfo, Cluster as KubeconfigCluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use ::kube::config::Kubeconfig as KubeconfigFile;
pub use access::Access;
pub use error::KubeError;

use crate::ownership::FIELD_MANAGER;

/// Page size of list calls (the API server hands out continue tokens past it).
const PAGE: u32 = 500;

/// A client for one cluster.
#[derive(Clone)]
pub struct ClusterConnection {
    /// The kube client (bearer token inside, never printed).
    pub client: ::kube::Client,
    /// API server URL, e.g. `https://203.0.113.7`.
    pub server: String,
}

impl fmt::Debug for ClusterConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConnection")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Where a cluster's Kubernetes API answers: what `wi` needs to reach it,
/// without knowing where it came from (the GKE cluster object, for `wi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// A name for the generated kubeconfig entries (e.g. the cluster name).
    pub name: String,
    /// API server URL, e.g. `https://203.0.113.7`.
    pub server: String,
    /// The cluster CA certificate, base64 PEM (as GKE's
    /// `masterAuth.clusterCaCertificate` carries it).
    pub ca_pem_base64: String,
}

/// The kubeconfig GKE's own `get-credentials` amounts to: server
/// `https://ENDPOINT`, CA = `masterAuth.clusterCaCertificate` (already base64 PEM),
/// bearer = a Google access token.
fn kubeconfig_for(endpoint: &ClusterEndpoint, token: SecretString) -> Kubeconfig {
    let name = format!("gke_{}", endpoint.name);
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: name.clone(),
            cluster: Some(KubeconfigCluster {
                server: Some(endpoint.server.clone()),
                certificate_authority_data: Some(endpoint.ca_pem_base64.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.clone(),
            auth_info: Some(AuthInfo {
                token: Some(token),
                ..Default::default()
            }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: name.clone(),
            context: Some(Context {
                cluster: name.clone(),
                user: Some(name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(name),
        ..Default::default()
    }
}

/// Connects to a cluster's API server at `endpoint`, with `token` as the bearer.
pub async fn connect(
    endpoint: &ClusterEndpoint,
    token: SecretString,
) -> Result<ClusterConnection, KubeError> {
    connect_kubeconfig(kubeconfig_for(endpoint, token), None).await
}

/// Connects through `context` of the user's kubeconfig (`KUBECONFIG` or
/// `~/.kube/config`).
pub(crate) async fn connect_context(context: &str) -> Result<ClusterConnection, KubeError> {
    let kubeconfig =
        Kubeconfig::read().map_err(|e| KubeError::Config(format!("kubeconfig: {e}")))?;
    connect_kubeconfig(kubeconfig, Some(context)).await
}

/// Connects with a kubeconfig already loaded (e.g. `Kubeconfig::read_from(path)`),
/// using `context` or its current context.
pub async fn connect_kubeconfig(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
) -> Result<ClusterConnection, KubeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(name) = context
        && !kubeconfig.contexts.iter().any(|c| c.name == name)
    {
        let mut known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        known.sort();
        let known = if known.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", known.join(", "))
        };
        return Err(KubeError::Config(format!(
            "kubeconfig has no context named {name:?}: {known}"
        )));
    }
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = ::kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| KubeError::Config(e.to_string()))?;
    let server = config.cluster_url.to_string();
    let layer = call_log::CallLogLayer {
        server: server.trim_end_matches('/').to_string(),
    };
    // kube's own retry of 429/503/504 waits up to 15 times with delays
    // growing to 1000 s (and as long as a Retry-After asks): an API server
    // answering 503 held `wi plan` for about six minutes before the cluster
    // became an unknown of the plan ("try again later"). Reads retry 3
    // times within a second (`read_retried`); apply steps retry on their
    // own, under their deadline.
    let mut config = config;
    config.default_retry = false;
    let client = ::kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build();
    Ok(ClusterConnection { client, server })
}

/// Pauses before the retries of a read: short, so a cluster that is really
/// down becomes an unknown of the plan within a second.
const READ_RETRY_DELAYS: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(100),
    std::time::Duration::from_millis(250),
    std::time::Duration::from_millis(500),
];

/// A read, retried on 429, 5xx and transport failures a few times (kube's
/// own retry is off: see [`connect_kubeconfig`]).
async fn read_retried<T, F, Fut>(mut read: F) -> Result<T, KubeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ::kube::Error>>,
{
    let mut delays = READ_RETRY_DELAYS.iter();
    loop {
        match read().await.map_err(KubeError::from) {
            Err(e) if e.is_retryable() => match delays.next() {
                Some(delay) => tokio::time::sleep(*delay).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}

impl ClusterConnection {
    /// Lists every object of a kind across all namespaces, following continue tokens.
    async fn list_all<K>(&self, api: Api<K>) -> Result<Vec<K>, KubeError>
    where
        K: Clone + DeserializeOwned + fmt::Debug,
    {
        self.list_selected(api, None).await
    }

    /// Lists the objects `field_selector` (the server's, e.g.
    /// `spec.hostNetwork=true`) selects, following continue tokens.
    async fn list_selected<K>(
        &self,
        api: Api<K>,
        field_selector: Option<&str>,
    ) -> Result<Vec<K>, KubeError>
    where
        K: Clone + DeserializeOwned + fmt::Debug,
    {
        self.list_kept(api, field_selector, Some).await
    }

    /// Lists like [`Self::list_selected`], keeping of each object what
    /// `keep` makes of it, a page at a time: a cluster's whole list of full
    /// objects is never held at once.
    async fn list_kept<K, T>(
        &self,
        api: Api<K>,
        field_selector: Option<&str>,
        mut keep: impl FnMut(K) -> Option<T>,
    ) -> Result<Vec<T>, KubeError>
    where
        K: Clone + DeserializeOwned + fmt::Debug,
    {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().limit(PAGE);
            if let Some(selector) = field_selector {
                lp = lp.fields(selector);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = read_retried(|| api.list(&lp)).await?;
            out.extend(page.items.into_iter().filter_map(&mut keep));
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// All namespaces.
    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>, KubeError> {
        self.list_all(Api::<Namespace>::all(self.client.clone()))
            .await
    }

    /// What `keep` makes of each namespace (one list call per page).
    pub async fn list_namespaces_kept<T>(
        &self,
        keep: impl FnMut(Namespace) -> Option<T>,
    ) -> Result<Vec<T>, KubeError> {
        self.list_kept(Api::<Namespace>::all(self.client.clone()), None, keep)
            .await
    }

    /// What `keep` makes of each service account of every namespace (one
    /// list call per page).
    pub async fn list_service_accounts_kept<T>(
        &self,
        keep: impl FnMut(ServiceAccount) -> Option<T>,
    ) -> Result<Vec<T>, KubeError> {
        self.list_kept(Api::<ServiceAccount>::all(self.client.clone()), None, keep)
            .await
    }

    /// Every service account of every namespace (one list call per page).
    pub async fn list_service_accounts(&self) -> Result<Vec<ServiceAccount>, KubeError> {
        self.list_all(Api::<ServiceAccount>::all(self.client.clone()))
            .await
    }

    /// Every pod of every namespace.
    pub async fn list_pods(&self) -> Result<Vec<Pod>, KubeError> {
        self.list_all(Api::<Pod>::all(self.client.clone())).await
    }

    /// One pod, `None` when it does not exist.
    pub async fn get_pod(&self, namespace: &str, name: &str) -> Result<Option<Pod>, KubeError> {
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        read_retried(|| api.get_opt(name)).await
    }

    /// The pods of every namespace that run on the host network (selected
    /// by the server: `fieldSelector=spec.hostNetwork=true`).
    pub async fn list_host_network_pods(&self) -> Result<Vec<Pod>, KubeError> {
        self.list_selected(
            Api::<Pod>::all(self.client.clone()),
            Some("spec.hostNetwork=true"),
        )
        .await
    }

    /// The pods of `namespace` that run as service account `ksa` (selected
    /// by the server: `fieldSelector=spec.serviceAccountName=KSA`).
    pub async fn list_pods_of(&self, namespace: &str, ksa: &str) -> Result<Vec<Pod>, KubeError> {
        self.list_selected(
            Api::<Pod>::namespaced(self.client.clone(), namespace),
            Some(&format!("spec.serviceAccountName={ksa}")),
        )
        .await
    }

    async fn apply<K>(
        &self,
        manager: &str,
        api: Api<K>,
        name: &str,
        obj: &K,
        force: bool,
    ) -> Result<K, KubeError>
    where
        K: Clone + DeserializeOwned + Serialize + fmt::Debug,
    {
        let mut params = PatchParams::apply(manager);
        if force {
            params = params.force();
        }
        Ok(api.patch(name, &params, &Patch::Apply(obj)).await?)
    }

    /// Server-side applies a namespace holding only `name` and `labels`
    /// (field manager `wi`; `force` takes over fields another manager owns).
    pub async fn apply_namespace(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<Namespace, KubeError> {
        self.apply_namespace_as(FIELD_MANAGER, name, labels, force)
            .await
    }

    /// [`Self::apply_namespace`] as field manager `manager` (`wi/O`).
    pub async fn apply_namespace_as(
        &self,
        manager: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<Namespace, KubeError> {
        self.apply_namespace_annotated_as(manager, name, labels, &BTreeMap::new(), force)
            .await
    }

    /// [`Self::apply_namespace_as`] with annotations (a direct-roles record).
    pub async fn apply_namespace_annotated_as(
        &self,
        manager: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<Namespace, KubeError> {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: (!labels.is_empty()).then(|| labels.clone()),
                annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.apply(
            manager,
            Api::<Namespace>::all(self.client.clone()),
            name,
            &ns,
            force,
        )
        .await
    }

    /// Server-side applies a service account holding only name, namespace and
    /// the given labels and annotations. Leaving out an annotation `wi` set
    /// before releases it (the API server removes fields only `wi` owned).
    pub async fn apply_service_account(
        &self,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<ServiceAccount, KubeError> {
        self.apply_service_account_as(FIELD_MANAGER, namespace, name, labels, annotations, force)
            .await
    }

    /// [`Self::apply_service_account`] as field manager `manager` (`wi/O`).
    /// An apply with no labels and no annotations releases every field
    /// `manager` owned (how a claimed legacy KSA loses manager `wi`).
    pub async fn apply_service_account_as(
        &self,
        manager: &str,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<ServiceAccount, KubeError> {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: (!labels.is_empty()).then(|| labels.clone()),
                annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        self.apply(
            manager,
            Api::<ServiceAccount>::namespaced(self.client.clone(), namespace),
            name,
            &sa,
            force,
        )
        .await
    }

    /// Deletes a service account; one that is already gone is success.
    pub async fn delete_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), KubeError> {
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = KubeError::from(e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    /// Deletes a namespace (and, server-side, everything in it); one that is
    /// already gone is success.
    pub async fn delete_namespace(&self, name: &str) -> Result<(), KubeError> {
        let api = Api::<Namespace>::all(self.client.clone());
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = KubeError::from(e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    /// A token for `namespace/ksa` with `audience` (TokenRequest, 1 hour).
    pub async fn request_token(
        &self,
        namespace: &str,
        ksa: &str,
        audience: &str,
    ) -> Result<SecretString, KubeError> {
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
        let request = TokenRequest {
            metadata: ObjectMeta::default(),
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![audience.to_owned()]),
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            status: None,
        };
        let answer: TokenRequest = api
            .create_subresource("token", ksa, &PostParams::default(), &request)
            .await?;
        answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| KubeError::Decode("TokenRequest answered without a token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_context_lists_the_contexts_that_exist() {
        let endpoint = ClusterEndpoint {
            name: "c1".into(),
            server: "https://127.0.0.1:6443".into(),
            ca_pem_base64: "Q0E=".into(),
        };
        let kc = kubeconfig_for(&endpoint, SecretString::from("tok"));
        let Err(err) = connect_kubeconfig(kc, Some("gke_c2")).await else {
            panic!("no such context");
        };
        assert_eq!(
            err.to_string(),
            "Kubernetes client configuration: kubeconfig has no context named \"gke_c2\": it has gke_c1"
        );
    }

    #[test]
    fn kubeconfig_from_endpoint() {
        let endpoint = ClusterEndpoint {
            name: "c1".into(),
            server: "https://127.0.0.1:6443".into(),
            ca_pem_base64: "Q0E=".into(),
        };
        let kc = kubeconfig_for(&endpoint, SecretString::from("tok"));
        let c = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(c.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(c.certificate_authority_data.as_deref(), Some("Q0E="));
        assert!(!format!("{kc:?}").contains("tok\""));
    }
}
