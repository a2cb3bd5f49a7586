//! What `wi import` reads: every cluster of each project (with its node
//! pools, workload pool and Autopilot flag), the namespaces and KSAs of each
//! cluster through its GKE endpoint (as the live reader connects), every
//! service account of the projects with its IAM policy, and each project's
//! policy. Reads only; an unreadable cluster API is recorded, not fatal.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};

use crate::gcp::GcpClient;
use crate::gcp::types::{GkeCluster, GoogleServiceAccount, IamPolicy};
use crate::ids::ClusterKey;
use crate::live::{LiveError, connect_cluster, project_clusters};

/// One cluster as import saw it.
#[derive(Debug, Clone)]
pub struct ImportCluster {
    pub key: ClusterKey,
    pub gke: GkeCluster,
    /// Namespaces by name, when the Kubernetes API could be read.
    pub namespaces: Option<BTreeMap<String, Namespace>>,
    /// Service accounts by (namespace, name), when the API could be read.
    pub service_accounts: Option<BTreeMap<(String, String), ServiceAccount>>,
    /// Why the Kubernetes API could not be read.
    pub kube_error: Option<String>,
}

/// Everything import read.
#[derive(Debug, Clone, Default)]
pub struct ImportState {
    /// The projects read, in the order given (deduplicated).
    pub projects: Vec<String>,
    /// Every cluster of those projects, sorted by key.
    pub clusters: Vec<ImportCluster>,
    /// Every account of those projects, by email.
    pub accounts: BTreeMap<String, GoogleServiceAccount>,
    /// Their IAM policies, by email (an unreadable one is left out).
    pub account_policies: BTreeMap<String, IamPolicy>,
    /// Project policies, by project id.
    pub project_policies: BTreeMap<String, IamPolicy>,
}

fn gcp_err(what: String) -> impl FnOnce(crate::gcp::GcpError) -> LiveError {
    move |source| LiveError::Gcp { what, source }
}

/// Reads the live world of `projects` (Google errors stop the import).
pub async fn read(
    gcp: &GcpClient,
    projects: &[String],
    parallelism: usize,
) -> Result<ImportState, LiveError> {
    let parallelism = parallelism.max(1);
    let mut unique: Vec<String> = Vec::new();
    for p in projects {
        if !unique.contains(p) {
            unique.push(p.clone());
        }
    }
    let listed: Vec<(String, Vec<GkeCluster>)> = stream::iter(unique.iter())
        .map(|project| async move {
            Ok::<_, LiveError>((project.clone(), project_clusters::list(gcp, project).await?))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    let mut found: Vec<(ClusterKey, GkeCluster)> = listed
        .into_iter()
        .flat_map(|(project, clusters)| {
            clusters.into_iter().map(move |c| {
                let key = project_clusters::ClusterSummary::of(&project, &c).key;
                (key, c)
            })
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));

    let token = if found.is_empty() {
        None
    } else {
        Some(
            gcp.access_token()
                .await
                .map_err(gcp_err("an access token".into()))?,
        )
    };
    let mut clusters: Vec<ImportCluster> = stream::iter(found)
        .map(|(key, gke)| {
            let token = token.clone();
            async move {
                let mut out = ImportCluster {
                    key,
                    gke,
                    namespaces: None,
                    service_accounts: None,
                    kube_error: None,
                };
                let Some(token) = token.filter(|_| out.gke.endpoint.is_some()) else {
                    out.kube_error = Some("the cluster has no endpoint yet".into());
                    return out;
                };
                let read = async {
                    let conn = connect_cluster(&out.gke, token, None).await?;
                    tokio::try_join!(conn.list_namespaces(), conn.list_service_accounts())
                };
                match read.await {
                    Ok((namespaces, accounts)) => {
                        out.namespaces = Some(
                            namespaces
                                .into_iter()
                                .filter_map(|ns| ns.metadata.name.clone().map(|n| (n, ns)))
                                .collect(),
                        );
                        out.service_accounts = Some(
                            accounts
                                .into_iter()
                                .filter_map(|sa| {
                                    let ns = sa.metadata.namespace.clone()?;
                                    let name = sa.metadata.name.clone()?;
                                    Some(((ns, name), sa))
                                })
                                .collect(),
                        );
                    }
                    Err(e) => out.kube_error = Some(e.to_string()),
                }
                out
            }
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    clusters.sort_by(|a, b| a.key.cmp(&b.key));

    let lists: Vec<Vec<GoogleServiceAccount>> = stream::iter(unique.iter())
        .map(|project| async move {
            gcp.list_service_accounts(project)
                .await
                .map_err(gcp_err(format!("service accounts of project {project}")))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    let accounts: BTreeMap<String, GoogleServiceAccount> = lists
        .into_iter()
        .flatten()
        .map(|sa| (sa.email.clone(), sa))
        .collect();

    let policies: Vec<(String, IamPolicy)> = stream::iter(accounts.keys().cloned())
        .map(|email| async move {
            let policy = gcp
                .get_service_account_iam_policy(&email)
                .await
                .map_err(gcp_err(format!("IAM policy of {email}")))?;
            Ok::<_, LiveError>((email, policy))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;

    let project_policies: Vec<(String, IamPolicy)> = stream::iter(unique.iter())
        .map(|project| async move {
            let policy = gcp
                .get_project_iam_policy(project)
                .await
                .map_err(gcp_err(format!("IAM policy of project {project}")))?;
            Ok::<_, LiveError>((project.clone(), policy))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;

    Ok(ImportState {
        projects: unique,
        clusters,
        accounts,
        account_policies: policies.into_iter().collect(),
        project_policies: project_policies.into_iter().collect(),
    })
}
