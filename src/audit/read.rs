//! What the audit reads: every cluster of each spec project (declared or
//! not) with its Kubernetes namespaces, service accounts and pods, every
//! account of those projects, the policies of the accounts the spec or a
//! KSA annotation names, and each project's policy. Reads only.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::gcp::GcpClient;
use crate::gcp::types::{GkeCluster, GoogleServiceAccount, IamPolicy};
use crate::ids::ClusterKey;
use crate::live::{LiveError, WILDCARD_PROJECT, connect_cluster, project_clusters};
use crate::ownership::GSA_ANNOTATION;
use crate::spec::Model;

/// One cluster as the audit saw it.
#[derive(Debug, Clone)]
pub struct AuditCluster {
    pub key: ClusterKey,
    /// Whether the spec declares it.
    pub declared: bool,
    /// `None`: declared but does not exist.
    pub gke: Option<GkeCluster>,
    /// Its Kubernetes objects, when they could be read.
    pub kube: Option<AuditKube>,
    /// Why its Kubernetes objects could not be read.
    pub kube_error: Option<String>,
}

/// Everything the audit read.
#[derive(Debug, Clone, Default)]
pub struct AuditState {
    /// Every cluster of the spec's projects, and declared ones that do not exist; sorted.
    pub clusters: Vec<AuditCluster>,
    /// Accounts by email: every account of the spec's projects, and those
    /// outside them that mappings or annotations name (when readable).
    pub accounts: BTreeMap<String, GoogleServiceAccount>,
    /// Policies of the accounts the spec or an annotation names, by email.
    pub account_policies: BTreeMap<String, IamPolicy>,
    /// Project policies, by project id.
    pub project_policies: BTreeMap<String, IamPolicy>,
}

/// What the audit reads of one cluster's Kubernetes API: every namespace,
/// KSA and pod (it looks at the whole cluster, not only what the spec maps).
#[derive(Debug, Clone, Default)]
pub struct AuditKube {
    pub namespaces: BTreeMap<String, k8s_openapi::api::core::v1::Namespace>,
    /// Service accounts by (namespace, name).
    pub service_accounts: BTreeMap<(String, String), k8s_openapi::api::core::v1::ServiceAccount>,
    pub pods: Vec<k8s_openapi::api::core::v1::Pod>,
}

fn gcp_err(what: String) -> impl FnOnce(crate::gcp::GcpError) -> LiveError {
    move |source| LiveError::Gcp { what, source }
}

async fn read_kube(
    gke: &GkeCluster,
    token: secrecy::SecretString,
    context: Option<&str>,
) -> Result<AuditKube, crate::kube::KubeError> {
    let conn = connect_cluster(gke, token, context).await?;
    let (namespaces, accounts, pods) = tokio::try_join!(
        conn.list_namespaces(),
        conn.list_service_accounts(),
        conn.list_pods()
    )?;
    Ok(AuditKube {
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

/// Reads what the audit of `model` needs. Google errors stop the audit; a
/// cluster whose Kubernetes API cannot be read is recorded (a finding says so).
pub async fn read(
    gcp: &GcpClient,
    model: &Model,
    parallelism: usize,
) -> Result<AuditState, LiveError> {
    let parallelism = parallelism.max(1);
    let projects: Vec<&str> = model
        .projects
        .iter()
        .map(String::as_str)
        .filter(|p| *p != WILDCARD_PROJECT)
        .collect();

    // Clusters: one list per project; declared ones missing from it too.
    let listed: Vec<(&str, Vec<GkeCluster>)> = stream::iter(projects.iter().copied())
        .map(|project| async move {
            Ok::<_, LiveError>((project, project_clusters::list(gcp, project).await?))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    let contexts: BTreeMap<&ClusterKey, Option<&str>> = model
        .clusters
        .iter()
        .map(|c| (&c.key, c.kube_context.as_deref()))
        .collect();
    let mut found: BTreeMap<ClusterKey, GkeCluster> = BTreeMap::new();
    for (project, clusters) in listed {
        for c in clusters {
            let key = project_clusters::ClusterSummary::of(project, &c).key;
            found.insert(key, c);
        }
    }
    let mut keys: BTreeSet<ClusterKey> = found.keys().cloned().collect();
    keys.extend(model.clusters.iter().map(|c| c.key.clone()));

    let token = if found.is_empty() {
        None
    } else {
        Some(
            gcp.access_token()
                .await
                .map_err(gcp_err("an access token".into()))?,
        )
    };
    let found = &found;
    let contexts = &contexts;
    let mut clusters: Vec<AuditCluster> = stream::iter(keys)
        .map(|key| {
            let token = token.clone();
            async move {
                let gke = found.get(&key).cloned();
                let context = contexts.get(&key).copied().flatten();
                let (kube, kube_error) = match (&gke, token) {
                    (Some(g), Some(token)) if g.endpoint.is_some() => {
                        match read_kube(g, token, context).await {
                            Ok(k) => (Some(k), None),
                            Err(e) => (None, Some(e.to_string())),
                        }
                    }
                    _ => (None, None),
                };
                AuditCluster {
                    declared: contexts.contains_key(&key),
                    key,
                    gke,
                    kube,
                    kube_error,
                }
            }
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    clusters.sort_by(|a, b| a.key.cmp(&b.key));

    // Accounts of the spec's projects, then those outside them.
    let lists: Vec<Vec<GoogleServiceAccount>> = stream::iter(projects.iter().copied())
        .map(|project| async move {
            gcp.list_service_accounts(project)
                .await
                .map_err(gcp_err(format!("service accounts of project {project}")))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;
    let mut accounts: BTreeMap<String, GoogleServiceAccount> = lists
        .into_iter()
        .flatten()
        .map(|sa| (sa.email.clone(), sa))
        .collect();

    let mut named: BTreeSet<String> = model
        .service_accounts
        .iter()
        .map(|g| g.email())
        .chain(model.mappings.iter().map(|m| m.gsa_email.clone()))
        .collect();
    for c in &clusters {
        for sa in c.kube.iter().flat_map(|k| k.service_accounts.values()) {
            if let Some(email) = sa
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(GSA_ANNOTATION))
                .filter(|e| e.contains('@'))
            {
                named.insert(email.clone());
            }
        }
    }
    let outside: Vec<String> = named
        .iter()
        .filter(|e| !accounts.contains_key(*e))
        .cloned()
        .collect();
    // An account outside the spec's projects may not be readable: it is
    // then left out (nothing is claimed about it).
    let externals: Vec<Option<GoogleServiceAccount>> = stream::iter(outside)
        .map(|email| async move { gcp.get_service_account(&email).await.ok().flatten() })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    for sa in externals.into_iter().flatten() {
        accounts.insert(sa.email.clone(), sa);
    }

    let wanted: Vec<String> = named
        .into_iter()
        .filter(|e| accounts.contains_key(e))
        .collect();
    let policies: Vec<Option<(String, IamPolicy)>> = stream::iter(wanted)
        .map(|email| async move {
            gcp.get_service_account_iam_policy(&email)
                .await
                .ok()
                .map(|p| (email, p))
        })
        .buffer_unordered(parallelism)
        .collect()
        .await;
    let account_policies = policies.into_iter().flatten().collect();

    let project_policies: Vec<(String, IamPolicy)> = stream::iter(projects.iter().copied())
        .map(|project| async move {
            let policy = gcp
                .get_project_iam_policy(project)
                .await
                .map_err(gcp_err(format!("IAM policy of project {project}")))?;
            Ok::<_, LiveError>((project.to_owned(), policy))
        })
        .buffer_unordered(parallelism)
        .try_collect()
        .await?;

    Ok(AuditState {
        clusters,
        accounts,
        account_policies,
        project_policies: project_policies.into_iter().collect(),
    })
}
