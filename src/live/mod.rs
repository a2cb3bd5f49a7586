//! Live state: what exists in GKE, IAM, Resource Manager, Service Usage and
//! each cluster's Kubernetes API, read in batches with bounded concurrency.
//!
//! Sized for a fleet: one list of service accounts per project, one
//! getIamPolicy per relevant account, one project policy per project, one
//! cluster GET per cluster (it carries the node pools), one list of
//! namespaces, service accounts and pods per cluster. Never a call per mapping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount as K8sServiceAccount};

use crate::gcp::types::{GkeCluster, GoogleServiceAccount, IamPolicy};
use crate::gcp::{GcpClient, GcpError};
use crate::kube::{ClusterConnection, ClusterEndpoint, KubeError};

mod fingerprint;
pub mod project_clusters;
use crate::spec::{ClusterKey, Model};
pub use fingerprint::Fingerprint;
pub use project_clusters::ClusterSummary;

/// IAM's wildcard project (`projects/-/serviceAccounts/EMAIL`): the project of
/// Google-managed accounts whose email does not name one.
pub const WILDCARD_PROJECT: &str = "-";

/// The service whose API must be on for Workload Identity token exchange.
pub const IAM_CREDENTIALS_SERVICE: &str = "iamcredentials.googleapis.com";

/// The one error type of reading live state.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LiveError {
    #[error("reading {what}: {source}")]
    #[diagnostic(code(wi::live::gcp))]
    Gcp {
        what: String,
        #[source]
        source: GcpError,
    },
    #[error("reading Kubernetes objects of cluster {cluster}: {source}")]
    #[diagnostic(code(wi::live::kube), help("{help}"))]
    Kube {
        cluster: String,
        #[source]
        source: KubeError,
        /// What to do about it, for this error (see [`kube_help`]).
        help: String,
    },
}

/// The advice that fits a Kubernetes read error: a server that failed or
/// could not be reached is not fixed by a `kubeContext`, a refused identity
/// is a permission, and a context only helps a cluster reached directly.
pub fn kube_help(error: &KubeError, via_context: bool) -> String {
    match error {
        KubeError::Api { status, .. } if *status >= 500 => {
            "the cluster's API server failed (HTTP 5xx: maintenance, an upgrade, an overloaded control plane): try again later, or leave the cluster out with --exclude".to_string()
        }
        KubeError::Api { status: 401 | 403, .. } => {
            if via_context {
                "the kubeconfig context's user is not allowed to list namespaces, service accounts and pods: check its credentials and RBAC".to_string()
            } else {
                "your Google identity is not allowed to list namespaces, service accounts and pods in this cluster: grant it roles/container.developer (or RBAC), or set `kubeContext` to use a kubeconfig context".to_string()
            }
        }
        KubeError::Config(_) if via_context => {
            "fix the cluster's `kubeContext` (or KUBECONFIG): it must name a context of your kubeconfig".to_string()
        }
        KubeError::Transport(_) if via_context => {
            "the kubeconfig context's server cannot be reached: check the proxy or tunnel it goes through, or leave the cluster out with --exclude".to_string()
        }
        KubeError::Transport(_) => {
            "the cluster's endpoint cannot be reached from here: a private cluster needs `kubeContext` (a kubeconfig context through a proxy), or leave it out with --exclude".to_string()
        }
        _ if via_context => {
            "check the cluster's `kubeContext` and what its server answers".to_string()
        }
        _ => "wi reaches each cluster through its GKE endpoint with your Google token; set `kubeContext` on the cluster to use a kubeconfig context instead".to_string(),
    }
}

/// Live state of one project.
#[derive(Debug, Clone, Default)]
pub struct LiveProject {
    /// Whether iamcredentials.googleapis.com is enabled (`None`: not read).
    pub iam_credentials_enabled: Option<bool>,
    /// Every service account of the project, by email.
    pub service_accounts: BTreeMap<String, GoogleServiceAccount>,
    /// The project's IAM policy (read when the spec grants project roles or owns accounts here).
    pub policy: Option<IamPolicy>,
    /// Every cluster of the project, declared or not, sorted by key.
    pub clusters: Vec<ClusterSummary>,
}

/// Live state of one cluster's Kubernetes API.
#[derive(Debug, Clone, Default)]
pub struct LiveKube {
    pub namespaces: BTreeMap<String, Namespace>,
    /// Service accounts by (namespace, name).
    pub service_accounts: BTreeMap<(String, String), K8sServiceAccount>,
    pub pods: Vec<Pod>,
}

/// Live state of one declared cluster.
#[derive(Debug, Clone, Default)]
pub struct LiveCluster {
    /// `None`: the cluster does not exist.
    pub gke: Option<GkeCluster>,
    /// `None`: the cluster does not exist (yet), so there is nothing to read.
    pub kube: Option<LiveKube>,
}

/// Everything `wi` observed.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    pub projects: BTreeMap<String, LiveProject>,
    pub clusters: BTreeMap<ClusterKey, LiveCluster>,
    /// IAM policies of the relevant service accounts, by email. An account
    /// that does not exist has no entry.
    pub account_policies: BTreeMap<String, IamPolicy>,
    /// Accounts outside the spec's projects that mappings refer to, by email
    /// (`None`: not found).
    pub external_accounts: BTreeMap<String, Option<GoogleServiceAccount>>,
}

impl LiveState {
    /// The live account with this email, wherever it was read.
    pub fn account(&self, project: &str, email: &str) -> Option<&GoogleServiceAccount> {
        self.projects
            .get(project)
            .and_then(|p| p.service_accounts.get(email))
            .or_else(|| self.external_accounts.get(email).and_then(|a| a.as_ref()))
    }
}

/// How to read: the clients and the concurrency bound.
pub struct Reader<'a> {
    pub gcp: &'a GcpClient,
    pub parallelism: usize,
}

impl Reader<'_> {
    /// Reads everything the model needs. Errors stop the read: a plan made
    /// from a partial picture could remove what it failed to see.
    pub async fn read(&self, model: &Model) -> Result<LiveState, LiveError> {
        let parallelism = self.parallelism.max(1);
        let mut state = LiveState::default();

        // Projects: one list of accounts, the service state, and the policy.
        // `-` is IAM's wildcard for Google-managed accounts, not a project.
        let project_ids: Vec<String> = model
            .projects
            .iter()
            .filter(|p| p.as_str() != WILDCARD_PROJECT)
            .cloned()
            .collect();
        let projects: Vec<(String, LiveProject)> = stream::iter(project_ids)
            .map(|project| async move {
                let live = self.read_project(model, &project).await?;
                Ok::<_, LiveError>((project, live))
            })
            .buffer_unordered(parallelism)
            .try_collect()
            .await?;
        state.projects = projects.into_iter().collect();

        // Accounts outside the spec's projects (external GSAs in mappings).
        let external: BTreeSet<String> = model
            .mappings
            .iter()
            .filter(|m| !state.projects.contains_key(&m.gsa_project))
            .map(|m| m.gsa_email.clone())
            .chain(
                model
                    .absent
                    .iter()
                    .filter(|a| !state.projects.contains_key(&a.gsa_project))
                    .map(|a| a.gsa_email.clone()),
            )
            .collect();
        let externals: Vec<(String, Option<GoogleServiceAccount>)> = stream::iter(external)
            .map(|email| async move {
                let sa = self
                    .gcp
                    .get_service_account(&email)
                    .await
                    .map_err(|source| LiveError::Gcp {
                        what: format!("service account {email}"),
                        source,
                    })?;
                Ok::<_, LiveError>((email, sa))
            })
            .buffer_unordered(parallelism)
            .try_collect()
            .await?;
        state.external_accounts = externals.into_iter().collect();

        // One getIamPolicy per relevant, existing account.
        let relevant = relevant_accounts(model, &state);
        let policies: Vec<(String, IamPolicy)> = stream::iter(relevant)
            .map(|email| async move {
                let policy = self
                    .gcp
                    .get_service_account_iam_policy(&email)
                    .await
                    .map_err(|source| LiveError::Gcp {
                        what: format!("IAM policy of {email}"),
                        source,
                    })?;
                Ok::<_, LiveError>((email, policy))
            })
            .buffer_unordered(parallelism)
            .try_collect()
            .await?;
        state.account_policies = policies.into_iter().collect();

        // Clusters: one GET each, then the Kubernetes lists.
        let token = if model.clusters.is_empty() {
            None
        } else {
            Some(
                self.gcp
                    .access_token()
                    .await
                    .map_err(|source| LiveError::Gcp {
                        what: "an access token".into(),
                        source,
                    })?,
            )
        };
        let clusters: Vec<(ClusterKey, LiveCluster)> = stream::iter(model.clusters.iter())
            .map(|cluster| {
                let token = token.clone();
                async move {
                    let gke = self.gcp.get_cluster(&cluster.key).await.map_err(|source| {
                        LiveError::Gcp {
                            what: format!("cluster {}", cluster.key),
                            source,
                        }
                    })?;
                    let kube = match (&gke, token) {
                        (Some(gke), Some(token)) if gke.endpoint.is_some() => Some(
                            read_kube(gke, token, cluster.kube_context.as_deref())
                                .await
                                .map_err(|source| LiveError::Kube {
                                    cluster: cluster.key.to_string(),
                                    help: kube_help(&source, cluster.kube_context.is_some()),
                                    source,
                                })?,
                        ),
                        _ => None,
                    };
                    Ok::<_, LiveError>((cluster.key.clone(), LiveCluster { gke, kube }))
                }
            })
            .buffer_unordered(parallelism)
            .try_collect()
            .await?;
        state.clusters = clusters.into_iter().collect();

        // Accounts that KSAs this run releases point at: whether their
        // binding stays (the plan warns when it does).
        let released = released_accounts(model, &state);
        let released: Vec<(String, Option<GoogleServiceAccount>, Option<IamPolicy>)> =
            stream::iter(released)
                .map(|email| async move {
                    let gcp_err = |what: String| move |source| LiveError::Gcp { what, source };
                    let sa = self
                        .gcp
                        .get_service_account(&email)
                        .await
                        .map_err(gcp_err(format!("service account {email}")))?;
                    let policy = match &sa {
                        Some(_) => Some(
                            self.gcp
                                .get_service_account_iam_policy(&email)
                                .await
                                .map_err(gcp_err(format!("IAM policy of {email}")))?,
                        ),
                        None => None,
                    };
                    Ok::<_, LiveError>((email, sa, policy))
                })
                .buffer_unordered(parallelism)
                .try_collect()
                .await?;
        for (email, sa, policy) in released {
            let in_projects = state
                .projects
                .values()
                .any(|p| p.service_accounts.contains_key(&email));
            if !in_projects {
                state.external_accounts.insert(email.clone(), sa);
            }
            if let Some(policy) = policy {
                state.account_policies.insert(email, policy);
            }
        }
        Ok(state)
    }

    async fn read_project(&self, model: &Model, project: &str) -> Result<LiveProject, LiveError> {
        let gcp_err = |what: String| move |source| LiveError::Gcp { what, source };
        let accounts = self
            .gcp
            .list_service_accounts(project)
            .await
            .map_err(gcp_err(format!("service accounts of project {project}")))?;
        let needs_service = project != WILDCARD_PROJECT
            && (model.service_accounts.iter().any(|g| g.project == project)
                || model.mappings.iter().any(|m| m.gsa_project == project));
        let iam_credentials_enabled = if needs_service {
            let service = self
                .gcp
                .get_service(project, IAM_CREDENTIALS_SERVICE)
                .await
                .map_err(gcp_err(format!(
                    "service {IAM_CREDENTIALS_SERVICE} of project {project}"
                )))?;
            Some(service.state == "ENABLED")
        } else {
            None
        };
        let service_accounts: BTreeMap<String, GoogleServiceAccount> = accounts
            .into_iter()
            .map(|sa| (sa.email.clone(), sa))
            .collect();
        let owns_any = service_accounts
            .values()
            .any(|sa| crate::ownership::is_owned(sa.description.as_deref()));
        // A declared account's grants are read when it has roles, and when
        // this run may come to own it (adopt, or a named owner's claim of an
        // older wi's account): the adopting plan lists every removal.
        let grants_roles = model.service_accounts.iter().any(|g| {
            g.project == project && (!g.roles.is_empty() || g.adopt || !g.owner.is_unnamed())
        });
        let policy = if owns_any || grants_roles {
            Some(
                self.gcp
                    .get_project_iam_policy(project)
                    .await
                    .map_err(gcp_err(format!("IAM policy of project {project}")))?,
            )
        } else {
            None
        };
        Ok(LiveProject {
            iam_credentials_enabled,
            service_accounts,
            policy,
            clusters: project_clusters::read(self.gcp, project).await?,
        })
    }
}

/// Accounts whose policy the plan needs: declared ones, those mappings or
/// `absent` entries name, and those `wi` owns (their members are drift-checked).
fn relevant_accounts(model: &Model, state: &LiveState) -> BTreeSet<String> {
    let mut wanted: BTreeSet<String> = model
        .service_accounts
        .iter()
        .map(|g| g.email())
        .chain(model.mappings.iter().map(|m| m.gsa_email.clone()))
        .chain(model.absent.iter().map(|a| a.gsa_email.clone()))
        .collect();
    for project in state.projects.values() {
        for (email, sa) in &project.service_accounts {
            if crate::ownership::is_owned(sa.description.as_deref()) {
                wanted.insert(email.clone());
            }
        }
    }
    wanted
        .into_iter()
        .filter(|email| {
            state
                .projects
                .values()
                .any(|p| p.service_accounts.contains_key(email))
                || matches!(state.external_accounts.get(email), Some(Some(_)))
        })
        .collect()
}

/// Accounts named by the GSA annotation of KSAs that one of the model's
/// owners annotated and no mapping declares any more, whose policy was not
/// read yet.
fn released_accounts(model: &Model, state: &LiveState) -> BTreeSet<String> {
    let owners: Vec<crate::ownership::Owner> = if model.owners.is_empty() {
        vec![crate::ownership::Owner::Unnamed]
    } else {
        model.owners.clone()
    };
    let declared: BTreeSet<(&ClusterKey, &str, &str)> = model
        .mappings
        .iter()
        .map(|m| (&m.cluster, m.namespace.as_str(), m.ksa.as_str()))
        .collect();
    let mut out = BTreeSet::new();
    for (key, cluster) in &state.clusters {
        let Some(kube) = &cluster.kube else { continue };
        for ((ns, name), sa) in &kube.service_accounts {
            if declared.contains(&(key, ns.as_str(), name.as_str())) {
                continue;
            }
            let fields = crate::ownership::ksa_fields(sa);
            if !owners.iter().any(|o| fields.of(o).annotation) {
                continue;
            }
            let Some(gsa) = sa
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::ownership::GSA_ANNOTATION))
            else {
                continue;
            };
            if !state.account_policies.contains_key(gsa) && gsa.contains('@') {
                out.insert(gsa.clone());
            }
        }
    }
    out
}

/// The Kubernetes endpoint of a GKE cluster: server `https://ENDPOINT`, CA =
/// `masterAuth.clusterCaCertificate` (already base64 PEM).
pub(crate) fn cluster_endpoint(cluster: &GkeCluster) -> Result<ClusterEndpoint, KubeError> {
    let endpoint = cluster
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            KubeError::Config(format!(
                "cluster {} has no endpoint yet (status {})",
                cluster.name,
                cluster.status.as_deref().unwrap_or("unknown")
            ))
        })?;
    let server = if endpoint.starts_with("https://") || endpoint.starts_with("http://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    };
    let ca = cluster
        .master_auth
        .as_ref()
        .and_then(|m| m.cluster_ca_certificate.clone())
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            KubeError::Config(format!(
                "cluster {} has no masterAuth.clusterCaCertificate",
                cluster.name
            ))
        })?;
    Ok(ClusterEndpoint {
        name: cluster.name.clone(),
        server,
        ca_pem_base64: ca,
    })
}

/// Connects to a GKE cluster's Kubernetes API: through its endpoint with
/// `token` (a Google access token), or, when `context_override` is given,
/// through that context of the user's kubeconfig.
pub async fn connect_cluster(
    cluster: &GkeCluster,
    token: secrecy::SecretString,
    context_override: Option<&str>,
) -> Result<ClusterConnection, KubeError> {
    match context_override {
        Some(context) => crate::kube::connect_context(context).await,
        None => crate::kube::connect(&cluster_endpoint(cluster)?, token).await,
    }
}

async fn read_kube(
    gke: &GkeCluster,
    token: secrecy::SecretString,
    context: Option<&str>,
) -> Result<LiveKube, KubeError> {
    let conn: ClusterConnection = connect_cluster(gke, token, context).await?;
    let conn = Arc::new(conn);
    let (namespaces, accounts, pods) = tokio::try_join!(
        conn.list_namespaces(),
        conn.list_service_accounts(),
        conn.list_pods()
    )?;
    Ok(LiveKube {
        namespaces: namespaces
            .into_iter()
            .filter_map(|ns| ns.metadata.name.clone().map(|n| (n, ns)))
            .collect(),
        service_accounts: accounts
            .into_iter()
            .filter_map(|sa| {
                let ns = sa.metadata.namespace.clone()?;
                let name = sa.metadata.name.clone()?;
                Some(((ns, name), sa))
            })
            .collect(),
        pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_fits_the_kubernetes_error() {
        let api = |status| KubeError::Api {
            status,
            reason: "x".into(),
            message: "y".into(),
        };
        let h = kube_help(&api(503), true);
        assert!(
            h.contains("try again later") && !h.contains("kubeContext"),
            "{h}"
        );
        let h = kube_help(&api(503), false);
        assert!(
            !h.contains("kubeContext"),
            "a 503 is not fixed by a context: {h}"
        );
        assert!(kube_help(&api(403), false).contains("roles/container.developer"));
        assert!(
            kube_help(&KubeError::Config("no context".into()), true)
                .contains("fix the cluster's `kubeContext`")
        );
        assert!(
            kube_help(&KubeError::Transport("refused".into()), false).contains("private cluster")
        );
    }
    use crate::gcp::types::MasterAuth;

    #[test]
    fn endpoint_from_gke_cluster() {
        let cluster = GkeCluster {
            name: "c1".into(),
            endpoint: Some("127.0.0.1:6443".into()),
            master_auth: Some(MasterAuth {
                cluster_ca_certificate: Some("Q0E=".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let endpoint = cluster_endpoint(&cluster).expect("endpoint");
        assert_eq!(endpoint.server, "https://127.0.0.1:6443");
        assert_eq!(endpoint.ca_pem_base64, "Q0E=");
        let no_endpoint = GkeCluster {
            name: "c2".into(),
            ..Default::default()
        };
        assert!(matches!(
            cluster_endpoint(&no_endpoint),
            Err(KubeError::Config(m)) if m.contains("no endpoint")
        ));
    }
}
