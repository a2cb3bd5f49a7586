//! Live state: what exists in GKE, IAM, Resource Manager, Service Usage and
//! each cluster's Kubernetes API, read as one graph with bounded concurrency
//! per API, not in phases.
//!
//! Sized for a fleet: one list of service accounts per project, one
//! getIamPolicy per relevant account (started as soon as its project's list
//! arrives), one project policy per project, one cluster GET per cluster (it
//! carries the node pools), one list of namespaces and service accounts per
//! cluster, and of pods only those the plan needs: the host-network ones
//! (`fieldSelector=spec.hostNetwork=true`) and, per KSA that may lose its
//! identity, its own (`fieldSelector=spec.serviceAccountName=KSA`). Never a
//! call per mapping.
//!
//! A project or cluster that cannot be read does not stop the read: it is
//! recorded with its reason ([`LiveState::unreadable`]) and the plan shows it
//! as unknown (partial plans).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::gcp::types::{GkeCluster, GoogleServiceAccount, IamPolicy};
use crate::gcp::{GcpClient, GcpError};
use crate::kube::{ClusterConnection, ClusterEndpoint, KubeError};

mod fingerprint;
mod kube_object;
pub mod project_clusters;
use crate::spec::{ClusterKey, Model};
pub use fingerprint::Fingerprint;
pub use kube_object::{FieldManager, KEPT_ANNOTATIONS, KEPT_LABELS, KubeObject};
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
    /// A project or cluster could not be read ([`Reader::read`]; see
    /// [`Reader::read_partial`] for a read that goes on without it).
    #[error("{scope} could not be read: {}", failure.message)]
    #[diagnostic(code(wi::live::unreadable), help("{}", failure.help))]
    Unreadable { scope: Scope, failure: ReadFailure },
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

/// Where a read failed: a project (its accounts, service state, policies)
/// or a cluster (its GKE object or its Kubernetes API).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Project(String),
    Cluster(ClusterKey),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Project(p) => write!(f, "project {p}"),
            Scope::Cluster(c) => write!(f, "cluster {c}"),
        }
    }
}

/// What kind of failure made a project or cluster unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// The server could not be reached (refused, DNS, TLS, no answer).
    Unreachable,
    /// The server refused the identity (401, 403).
    Forbidden,
    /// The server failed (HTTP 5xx).
    ServerError,
    /// The client configuration is wrong (a missing kubeconfig context, no endpoint).
    Configuration,
    /// Anything else (an unexpected answer).
    Other,
}

/// Why a project or cluster could not be read: the kind, what was being
/// read and the error, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailure {
    pub kind: FailureKind,
    /// The error, e.g. `reading service accounts of project p: ...`.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl ReadFailure {
    fn gcp(identity: Option<&str>, what: &str, error: &GcpError) -> Self {
        let kind = if error.is_unreachable() || error.is_transport() || error.is_timeout() {
            FailureKind::Unreachable
        } else if error.is_permission_denied() || matches!(error, GcpError::Auth(_)) {
            FailureKind::Forbidden
        } else if matches!(error, GcpError::Api { status, .. } if *status >= 500) {
            FailureKind::ServerError
        } else if matches!(error, GcpError::Config(_)) {
            FailureKind::Configuration
        } else {
            FailureKind::Other
        };
        let denied = identity.and_then(|who| error.denied_help(who));
        let help = match kind {
            FailureKind::Forbidden if denied.is_some() => denied.as_deref().unwrap_or_default(),
            FailureKind::Forbidden => {
                "your Google identity may not read this: check its IAM roles on the project (listing service accounts and reading IAM policies), or leave it out with --exclude"
            }
            FailureKind::ServerError | FailureKind::Unreachable => {
                "the Google API failed or could not be reached: try again later, or leave it out with --exclude"
            }
            _ => "check what the Google API answers, or leave it out with --exclude",
        };
        ReadFailure {
            kind,
            message: format!("reading {what}: {error}"),
            help: help.to_string(),
        }
    }

    fn kube(identity: Option<&str>, error: &KubeError, via_context: bool) -> Self {
        let kind = match error {
            KubeError::Api { status, .. } if *status >= 500 => FailureKind::ServerError,
            KubeError::Api {
                status: 401 | 403, ..
            } => FailureKind::Forbidden,
            KubeError::Transport(_) => FailureKind::Unreachable,
            KubeError::Config(_) => FailureKind::Configuration,
            _ => FailureKind::Other,
        };
        ReadFailure {
            kind,
            message: format!("reading Kubernetes objects: {error}"),
            // The three lists live state makes; the message says which was refused.
            help: identity
                .and_then(|who| {
                    error.denied_help(
                        who,
                        Some("container.namespaces.list, container.serviceAccounts.list and container.pods.list"),
                    )
                })
                .unwrap_or_else(|| kube_help(error, via_context)),
        }
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
    /// Namespaces by name.
    pub namespaces: BTreeMap<String, KubeObject>,
    /// Service accounts by (namespace, name).
    pub service_accounts: BTreeMap<(String, String), KubeObject>,
    /// Names of the pods on the host network, by (namespace, service
    /// account): read with `fieldSelector=spec.hostNetwork=true`.
    pub host_network_pods: BTreeMap<(String, String), Vec<String>>,
    /// Names of the running pods of KSAs that may lose their identity, by
    /// (namespace, service account), sorted: read per KSA with
    /// `fieldSelector=spec.serviceAccountName=KSA`, only for those KSAs.
    pub pods_of: BTreeMap<(String, String), Vec<String>>,
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
    /// Project numbers of the pool projects of direct grants, by project
    /// id (a project whose number could not be read is unreadable).
    pub project_numbers: BTreeMap<String, String>,
    /// IAM policies of projects outside the spec's projects that direct
    /// grants name (`{role, project}`), by project id.
    pub direct_policies: BTreeMap<String, IamPolicy>,
    /// Projects and clusters that could not be read, and why: the plan
    /// shows them as unknown and plans nothing that depends on them.
    pub unreadable: BTreeMap<Scope, ReadFailure>,
}

impl LiveState {
    /// Records that a read of `project` failed; the first failure of a
    /// project is the one reported.
    fn project_unreadable(&mut self, project: String, failure: ReadFailure) {
        self.unreadable
            .entry(Scope::Project(project))
            .or_insert(failure);
    }

    /// A project's IAM policy, wherever it was read.
    pub fn project_policy(&self, project: &str) -> Option<&IamPolicy> {
        self.projects
            .get(project)
            .and_then(|p| p.policy.as_ref())
            .or_else(|| self.direct_policies.get(project))
    }

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
    /// Calls in flight per API (IAM, Resource Manager, Service Usage, GKE,
    /// and clusters whose Kubernetes API is read at once).
    pub parallelism: usize,
    /// Who the calls run as (an email, or where the credentials came from;
    /// never a token), named in the help of a refused read. `None`: "your
    /// Google identity".
    pub identity: Option<&'a str>,
}

/// The reads are not phases but one graph, each read starting as soon as
/// what it needs has arrived. Google calls are bounded by the client, per
/// API and project, with a window of calls in flight that grows while they
/// succeed and a pace set by 429s (the module `gcp::retry`'s `Throttles`);
/// here only the clusters whose Kubernetes API is read at once are bounded.
struct Limits {
    kube: Semaphore,
}

impl Limits {
    fn new(n: usize) -> Self {
        Limits {
            kube: Semaphore::new(n),
        }
    }
}

/// Runs `call` holding a permit of `limit`.
async fn bounded<T>(limit: &Semaphore, call: impl std::future::Future<Output = T>) -> T {
    // The semaphore is never closed, so acquiring cannot fail.
    let _permit = limit.acquire().await.ok();
    call.await
}

/// What one project's reads produced: the project, or why it is unknown;
/// and the policies of its relevant accounts.
type ProjectRead = (
    String,
    Result<LiveProject, ReadFailure>,
    BTreeMap<String, IamPolicy>,
);

impl Reader<'_> {
    /// Reads everything the model needs, or fails on the first project or
    /// cluster that cannot be read (in scope order): what a caller without
    /// a partial plan's refusals needs. See [`Self::read_partial`].
    pub async fn read(&self, model: &Model) -> Result<LiveState, LiveError> {
        let mut state = self.read_partial(model).await?;
        match state.unreadable.pop_first() {
            Some((scope, failure)) => Err(LiveError::Unreadable { scope, failure }),
            None => Ok(state),
        }
    }

    /// Reads everything the model needs, in two rounds: everything that
    /// depends on no other answer starts at once (per project the account
    /// list, the service check and the project policy; per cluster the GKE
    /// object, then its Kubernetes lists), and an account's policy as soon
    /// as its project's account list arrives. A project or cluster that
    /// cannot be read is recorded in [`LiveState::unreadable`] and the rest
    /// is read; only a failure that concerns every read (no access token)
    /// is an error.
    pub async fn read_partial(&self, model: &Model) -> Result<LiveState, LiveError> {
        let limits = Limits::new(self.parallelism.max(1));
        let limits = &limits;
        let mut state = LiveState::default();

        // `-` is IAM's wildcard for Google-managed accounts, not a project.
        let project_ids: BTreeSet<String> = model
            .projects
            .iter()
            .filter(|p| p.as_str() != WILDCARD_PROJECT)
            .cloned()
            .collect();
        let wanted = wanted_accounts(model);
        // Accounts outside the spec's projects (external GSAs in mappings).
        let external: BTreeMap<String, String> = model
            .mappings
            .iter()
            .filter(|m| !project_ids.contains(&m.gsa_project))
            .map(|m| (m.gsa_email.clone(), m.gsa_project.clone()))
            .chain(
                model
                    .absent
                    .iter()
                    .filter(|a| !project_ids.contains(&a.gsa_project))
                    .map(|a| (a.gsa_email.clone(), a.gsa_project.clone())),
            )
            .chain(
                direct_accounts(model)
                    .filter(|(_, project)| !project_ids.contains(project.as_str())),
            )
            .collect();
        // Direct grants: the number of each pool project (their members
        // name it), and the policies of other projects they grant roles on.
        let pool_projects: BTreeSet<String> = model
            .direct
            .iter()
            .map(|g| g.cluster.project.clone())
            .collect();
        let direct_projects: BTreeSet<String> = direct_projects(model)
            .filter(|p| !project_ids.contains(p.as_str()))
            .collect();
        let numbers = futures::future::join_all(pool_projects.iter().map(|project| async move {
            let what = format!("project {project}");
            let read = self.gcp.get_project(project).await;
            let read = match read {
                Ok(Some(p)) if !p.project_number.is_empty() => Ok(p.project_number),
                Ok(_) => Err(ReadFailure {
                    kind: FailureKind::Other,
                    message: format!("project {project} was not found"),
                    help: "check the project id of the clusters".to_string(),
                }),
                Err(e) => Err(ReadFailure::gcp(self.identity, &what, &e)),
            };
            (project.clone(), read)
        }));
        let direct_policies =
            futures::future::join_all(direct_projects.iter().map(|project| async move {
                let what = format!("IAM policy of project {project}");
                let read = self
                    .gcp
                    .get_project_iam_policy(project)
                    .await
                    .map_err(|e| ReadFailure::gcp(self.identity, &what, &e));
                (project.clone(), read)
            }));
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

        let lists = project_clusters::Lists::default();
        let lists = &lists;
        let projects = futures::future::join_all(
            project_ids
                .iter()
                .map(|project| self.read_project(model, project, &wanted, lists)),
        );
        let externals =
            futures::future::join_all(external.iter().map(|(email, project)| async move {
                let what = format!("service account {email}");
                let sa = match self.gcp.get_service_account(email).await {
                    Ok(sa) => sa,
                    Err(e) => {
                        return (
                            email.clone(),
                            project.clone(),
                            Err(ReadFailure::gcp(self.identity, &what, &e)),
                        );
                    }
                };
                let policy = match &sa {
                    Some(_) => {
                        let what = format!("IAM policy of {email}");
                        match self.gcp.get_service_account_iam_policy(email).await {
                            Ok(p) => Some(p),
                            Err(e) => {
                                return (
                                    email.clone(),
                                    project.clone(),
                                    Err(ReadFailure::gcp(self.identity, &what, &e)),
                                );
                            }
                        }
                    }
                    None => None,
                };
                (email.clone(), project.clone(), Ok((sa, policy)))
            }));
        let clusters = futures::future::join_all(model.clusters.iter().map(|cluster| {
            let token = token.clone();
            async move {
                let key = cluster.key.clone();
                let what = format!("cluster {key}");
                // The project's `clusters.list` has the full object; only
                // when that list failed is the declared cluster read alone.
                let gke = match self.cluster_list(lists, &key.project).await {
                    Ok(listed) => Ok(project_clusters::find(&listed, &key)),
                    Err(_) => self.gcp.get_cluster(&key).await,
                };
                let gke = match gke {
                    Ok(gke) => gke,
                    Err(e) => return (key, Err(ReadFailure::gcp(self.identity, &what, &e))),
                };
                let kube = match (&gke, token) {
                    (Some(gke), Some(token)) if gke.endpoint.is_some() => {
                        let context = cluster.kube_context.as_deref();
                        match bounded(&limits.kube, read_kube(gke, token, context)).await {
                            Ok(kube) => Some(kube),
                            Err(e) => {
                                return (
                                    key,
                                    Err(ReadFailure::kube(self.identity, &e, context.is_some())),
                                );
                            }
                        }
                    }
                    _ => None,
                };
                (key, Ok(LiveCluster { gke, kube }))
            }
        }));
        let (projects, externals, clusters, numbers, direct_policies) =
            tokio::join!(projects, externals, clusters, numbers, direct_policies);
        for (project, read) in numbers {
            match read {
                Ok(number) => {
                    state.project_numbers.insert(project, number);
                }
                Err(failure) => {
                    state.project_unreadable(project, failure);
                }
            }
        }
        for (project, read) in direct_policies {
            match read {
                Ok(policy) => {
                    state.direct_policies.insert(project, policy);
                }
                Err(failure) => {
                    state.project_unreadable(project, failure);
                }
            }
        }

        for (project, live, policies) in projects {
            match live {
                Ok(live) => {
                    state.projects.insert(project, live);
                    state.account_policies.extend(policies);
                }
                Err(failure) => {
                    state.unreadable.insert(Scope::Project(project), failure);
                }
            }
        }
        for (email, project, read) in externals {
            match read {
                Ok((sa, policy)) => {
                    state.external_accounts.insert(email.clone(), sa);
                    if let Some(policy) = policy {
                        state.account_policies.insert(email, policy);
                    }
                }
                Err(failure) => {
                    state.project_unreadable(project, failure);
                }
            }
        }
        for (key, cluster) in clusters {
            match cluster {
                Ok(cluster) => {
                    state.clusters.insert(key, cluster);
                }
                Err(failure) => {
                    state.unreadable.insert(Scope::Cluster(key), failure);
                }
            }
        }

        // What the records of direct roles in the declared clusters name
        // and was not read yet (a grant that left the spec is removed from
        // there): the pool's project number, the project and account
        // policies. Only clusters that hold records cost these reads.
        let (numbers, projects, accounts) = recorded_reads(&state);
        let numbers = futures::future::join_all(numbers.into_iter().map(|project| async move {
            let what = format!("project {project}");
            let read = self
                .gcp
                .get_project(&project)
                .await
                .map_err(|e| ReadFailure::gcp(self.identity, &what, &e));
            (project, read)
        }));
        let policies = futures::future::join_all(projects.into_iter().map(|project| async move {
            let what = format!("IAM policy of project {project}");
            let read = self
                .gcp
                .get_project_iam_policy(&project)
                .await
                .map_err(|e| ReadFailure::gcp(self.identity, &what, &e));
            (project, read)
        }));
        let account_reads =
            futures::future::join_all(accounts.into_iter().map(|(email, project)| async move {
                let what = format!("IAM policy of {email}");
                let read = self.gcp.get_service_account_iam_policy(&email).await;
                let read = match read {
                    Ok(p) => Ok(Some(p)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(ReadFailure::gcp(self.identity, &what, &e)),
                };
                (email, project, read)
            }));
        let (numbers, policies, account_reads) = tokio::join!(numbers, policies, account_reads);
        for (project, read) in numbers {
            match read {
                Ok(Some(p)) if !p.project_number.is_empty() => {
                    state.project_numbers.insert(project, p.project_number);
                }
                Ok(_) => {}
                Err(failure) => {
                    state.project_unreadable(project, failure);
                }
            }
        }
        for (project, read) in policies {
            match read {
                Ok(policy) => {
                    state.direct_policies.insert(project, policy);
                }
                Err(failure) => {
                    state.project_unreadable(project, failure);
                }
            }
        }
        for (email, project, read) in account_reads {
            match read {
                Ok(Some(policy)) => {
                    state.account_policies.insert(email, policy);
                }
                Ok(None) => {}
                Err(failure) => {
                    state.project_unreadable(project, failure);
                }
            }
        }

        // Accounts that KSAs this run releases point at: whether their
        // binding stays (the plan warns when it does). These depend on the
        // Kubernetes answers, so they come last.
        let released = released_accounts(model, &state);
        let released = futures::future::join_all(released.into_iter().map(|email| async move {
            let what = format!("service account {email}");
            let sa = self
                .gcp
                .get_service_account(&email)
                .await
                .map_err(|e| ReadFailure::gcp(self.identity, &what, &e))?;
            let policy = match &sa {
                Some(_) => {
                    let what = format!("IAM policy of {email}");
                    Some(
                        self.gcp
                            .get_service_account_iam_policy(&email)
                            .await
                            .map_err(|e| ReadFailure::gcp(self.identity, &what, &e))?,
                    )
                }
                None => None,
            };
            Ok::<_, ReadFailure>((email, sa, policy))
        }))
        .await;
        for read in released {
            let (email, sa, policy) = match read {
                Ok(read) => read,
                // Only a warning depends on these: a failed read leaves it out.
                Err(_) => continue,
            };
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

        // The pods of KSAs that may lose their identity, for the warning
        // that names them: one small read per such KSA.
        let mut losing: BTreeMap<ClusterKey, Vec<(String, String)>> = BTreeMap::new();
        for (key, ns, name) in ksas_that_may_lose_access(model, &state) {
            losing.entry(key).or_default().push((ns, name));
        }
        let pods = futures::future::join_all(losing.into_iter().map(|(key, ksas)| {
            let token = token.clone();
            let context = model
                .clusters
                .iter()
                .find(|c| c.key == key)
                .and_then(|c| c.kube_context.clone());
            let gke = state.clusters.get(&key).and_then(|c| c.gke.clone());
            async move {
                let (Some(gke), Some(token)) = (gke, token) else {
                    return (key, Vec::new());
                };
                let Ok(conn) = connect_cluster(&gke, token, context.as_deref()).await else {
                    return (key, Vec::new());
                };
                let conn = &conn;
                let lists =
                    futures::future::join_all(ksas.into_iter().map(|(ns, name)| async move {
                        let pods = bounded(&limits.kube, conn.list_pods_of(&ns, &name)).await;
                        (ns, name, pods.ok())
                    }))
                    .await;
                (key, lists)
            }
        }))
        .await;
        for (key, lists) in pods {
            let Some(kube) = state.clusters.get_mut(&key).and_then(|c| c.kube.as_mut()) else {
                continue;
            };
            // A failed read leaves the warning out; the plan does not depend on it.
            for (ns, name, pods) in lists {
                let Some(pods) = pods else { continue };
                let mut names: Vec<String> =
                    pods.into_iter().filter_map(|p| p.metadata.name).collect();
                names.sort();
                kube.pods_of.insert((ns, name), names);
            }
        }
        Ok(state)
    }

    /// One project: the account list, the service check and the project
    /// policy at once, then the policies of its relevant accounts as soon
    /// as the list arrives.
    async fn read_project(
        &self,
        model: &Model,
        project: &str,
        wanted: &BTreeSet<String>,
        lists: &project_clusters::Lists,
    ) -> ProjectRead {
        let failed = |f| (project.to_string(), Err(f), BTreeMap::new());
        let needs_service = model.service_accounts.iter().any(|g| g.project == project)
            || model.mappings.iter().any(|m| m.gsa_project == project);
        // A declared account's grants are read when it has roles, and when
        // this run may come to own it (adopt, or a named owner's claim of an
        // older wi's account): the adopting plan lists every removal.
        let grants_roles = model.service_accounts.iter().any(|g| {
            g.project == project && (!g.roles.is_empty() || g.adopt || !g.owner.is_unnamed())
        }) || direct_projects(model).any(|p| p == project);
        let policy_read = || async {
            self.gcp.get_project_iam_policy(project).await.map_err(|e| {
                ReadFailure::gcp(
                    self.identity,
                    &format!("IAM policy of project {project}"),
                    &e,
                )
            })
        };
        let service = async {
            if !needs_service {
                return Ok(None);
            }
            self.gcp
                .get_service(project, IAM_CREDENTIALS_SERVICE)
                .await
                .map(|s| Some(s.state == "ENABLED"))
                .map_err(|e| {
                    ReadFailure::gcp(
                        self.identity,
                        &format!("service {IAM_CREDENTIALS_SERVICE} of project {project}"),
                        &e,
                    )
                })
        };
        let early_policy = async {
            if grants_roles {
                policy_read().await.map(Some)
            } else {
                Ok(None)
            }
        };
        let accounts = async {
            // Each page's relevant accounts have their policies read as the
            // page arrives, not after the last page.
            let (found, relevant) = futures::channel::mpsc::unbounded::<String>();
            // Without declared grants, the project policy is read only when
            // wi owns an account here (its own grants are drift-checked): it
            // starts with the first page that shows one.
            let (owns_one, owns_any) = futures::channel::oneshot::channel::<()>();
            let list = async move {
                let mut owns_one = Some(owns_one);
                let listed = self
                    .gcp
                    .list_service_accounts_by_page(project, |page| {
                        for sa in page {
                            let owned = crate::ownership::is_owned(sa.description.as_deref());
                            if owned && let Some(tell) = owns_one.take() {
                                let _ = tell.send(());
                            }
                            if owned || wanted.contains(&sa.email) {
                                // The receiver outlives the list.
                                let _ = found.unbounded_send(sa.email.clone());
                            }
                        }
                    })
                    .await;
                drop(found);
                listed
            };
            let late_policy = async {
                // A dropped sender: the list ended (or failed) with no owned account.
                if !grants_roles && owns_any.await.is_ok() {
                    Some(policy_read().await)
                } else {
                    None
                }
            };
            let policies = relevant
                .map(|email| async move {
                    let read = self.gcp.get_service_account_iam_policy(&email).await;
                    (email, read)
                })
                .buffer_unordered(usize::MAX)
                .collect::<Vec<_>>();
            let (listed, mut policies, late_policy) = tokio::join!(list, policies, late_policy);
            let accounts = listed.map_err(|e| {
                ReadFailure::gcp(
                    self.identity,
                    &format!("service accounts of project {project}"),
                    &e,
                )
            })?;
            let service_accounts: BTreeMap<String, GoogleServiceAccount> = accounts
                .into_iter()
                .map(|sa| (sa.email.clone(), sa))
                .collect();
            // The first failure in email order, so the reason is deterministic.
            policies.sort_by(|a, b| a.0.cmp(&b.0));
            let policies = policies
                .into_iter()
                .map(|(email, read)| {
                    read.map_err(|e| {
                        ReadFailure::gcp(self.identity, &format!("IAM policy of {email}"), &e)
                    })
                    .map(|p| (email, p))
                })
                .collect::<Result<BTreeMap<_, _>, _>>();
            Ok::<_, ReadFailure>((service_accounts, policies?, late_policy))
        };
        let clusters = async {
            self.cluster_list(lists, project)
                .await
                .map(|listed| project_clusters::summaries(project, &listed))
        };
        let (accounts, service, early_policy, clusters) =
            tokio::join!(accounts, service, early_policy, clusters);
        // The first failure in a fixed order, so the reason is deterministic.
        let (service_accounts, policies, late_policy) = match accounts {
            Ok(a) => a,
            Err(f) => return failed(f),
        };
        let early_policy = match early_policy {
            Ok(p) => p,
            Err(f) => return failed(f),
        };
        let iam_credentials_enabled = match service {
            Ok(s) => s,
            Err(f) => return failed(f),
        };
        let clusters = match clusters {
            Ok(c) => c,
            Err(f) => return failed(f),
        };
        let policy = match (early_policy, late_policy) {
            (Some(p), _) => Some(p),
            (None, Some(Ok(p))) => Some(p),
            (None, Some(Err(f))) => return failed(f),
            (None, None) => None,
        };
        (
            project.to_string(),
            Ok(LiveProject {
                iam_credentials_enabled,
                service_accounts,
                policy,
                clusters,
            }),
            policies,
        )
    }
}

impl Reader<'_> {
    /// The `clusters.list` of `project`, read once per run (see
    /// [`project_clusters::Lists`]).
    async fn cluster_list(
        &self,
        lists: &project_clusters::Lists,
        project: &str,
    ) -> Result<Vec<GkeCluster>, ReadFailure> {
        lists
            .get(project, || async {
                self.gcp.list_clusters(project).await.map_err(|e| {
                    ReadFailure::gcp(self.identity, &format!("clusters of project {project}"), &e)
                })
            })
            .await
    }
}

/// Accounts whose policy the plan needs: declared ones, those mappings or
/// `absent` entries name (and, read per project, those `wi` owns: their
/// members are drift-checked).
fn wanted_accounts(model: &Model) -> BTreeSet<String> {
    model
        .service_accounts
        .iter()
        .map(|g| g.email())
        .chain(model.mappings.iter().map(|m| m.gsa_email.clone()))
        .chain(model.absent.iter().map(|a| a.gsa_email.clone()))
        .chain(direct_accounts(model).map(|(email, _)| email))
        .collect()
}

/// What the direct-roles records of the read clusters name and was not
/// read: pool projects without a number, project policies, and account
/// policies (email, project).
#[allow(clippy::type_complexity)]
fn recorded_reads(
    state: &LiveState,
) -> (
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeSet<(String, String)>,
) {
    let mut numbers = BTreeSet::new();
    let mut projects = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    let record = crate::spec::DIRECT_ROLES_ANNOTATION;
    for (key, cluster) in &state.clusters {
        let Some(kube) = &cluster.kube else { continue };
        let values = kube
            .service_accounts
            .values()
            .chain(kube.namespaces.values())
            .filter_map(|o| o.annotation(record));
        for value in values {
            if !state.project_numbers.contains_key(&key.project) {
                numbers.insert(key.project.clone());
            }
            for entry in crate::spec::parse_direct_record(value) {
                let Some((path, _)) = entry.split_once('=') else {
                    continue;
                };
                let Some(rest) = path.strip_prefix("projects/") else {
                    continue;
                };
                match rest.split_once("/serviceAccounts/") {
                    Some((project, email)) => {
                        if !state.account_policies.contains_key(email) {
                            accounts.insert((email.to_string(), project.to_string()));
                        }
                    }
                    None => {
                        if state.project_policy(rest).is_none() {
                            projects.insert(rest.to_string());
                        }
                    }
                }
            }
        }
    }
    let unreadable = |p: &str| {
        state
            .unreadable
            .contains_key(&Scope::Project(p.to_string()))
    };
    numbers.retain(|p| !unreadable(p));
    projects.retain(|p| !unreadable(p));
    accounts.retain(|(_, p)| !unreadable(p));
    (numbers, projects, accounts)
}

/// The projects direct grants grant roles on (with repeats).
fn direct_projects(model: &Model) -> impl Iterator<Item = String> + '_ {
    model
        .direct
        .iter()
        .flat_map(|g| &g.roles)
        .filter_map(|r| match &r.resource {
            crate::spec::DirectResource::Project(p) => Some(p.clone()),
            crate::spec::DirectResource::ServiceAccount { .. } => None,
        })
}

/// The accounts direct grants grant roles on: (email, project), with repeats.
fn direct_accounts(model: &Model) -> impl Iterator<Item = (String, String)> + '_ {
    model
        .direct
        .iter()
        .flat_map(|g| &g.roles)
        .filter_map(|r| match &r.resource {
            crate::spec::DirectResource::ServiceAccount { email, project } => {
                Some((email.clone(), project.clone()))
            }
            crate::spec::DirectResource::Project(_) => None,
        })
}

/// KSAs whose running pods the plan may warn about: a live KSA annotated
/// with an account no mapping of this model points it at any more (the
/// annotation goes, or the binding it relies on is removed), when the
/// annotation is one of this run's owners' or the account is one this run
/// reads (so may change). A superset of the KSAs the plan's
/// `running_pods_lose_access` warning can name.
fn ksas_that_may_lose_access(
    model: &Model,
    state: &LiveState,
) -> BTreeSet<(ClusterKey, String, String)> {
    undeclared_annotated_ksas(model, state)
        .into_iter()
        .filter(|k| k.ours || state.account_policies.contains_key(k.gsa))
        .map(|k| {
            (
                k.cluster.clone(),
                k.namespace.to_string(),
                k.name.to_string(),
            )
        })
        .collect()
}

/// Accounts named by the GSA annotation of KSAs that one of the model's
/// owners annotated and no mapping declares any more, whose policy was not
/// read yet.
fn released_accounts(model: &Model, state: &LiveState) -> BTreeSet<String> {
    undeclared_annotated_ksas(model, state)
        .into_iter()
        .filter(|k| k.ours && !state.account_policies.contains_key(k.gsa) && k.gsa.contains('@'))
        .map(|k| k.gsa.to_string())
        .collect()
}

/// A live KSA with a GSA annotation that no mapping declares any more.
struct UndeclaredKsa<'s> {
    cluster: &'s ClusterKey,
    namespace: &'s str,
    name: &'s str,
    /// The account its annotation names.
    gsa: &'s str,
    /// One of the model's owners wrote the annotation.
    ours: bool,
}

fn undeclared_annotated_ksas<'s>(model: &Model, state: &'s LiveState) -> Vec<UndeclaredKsa<'s>> {
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
    let mut out = Vec::new();
    for (key, cluster) in &state.clusters {
        let Some(kube) = &cluster.kube else { continue };
        for ((ns, name), sa) in &kube.service_accounts {
            if declared.contains(&(key, ns.as_str(), name.as_str())) {
                continue;
            }
            let Some(gsa) = sa.annotation(crate::ownership::GSA_ANNOTATION) else {
                continue;
            };
            let fields = sa.ksa_fields();
            out.push(UndeclaredKsa {
                cluster: key,
                namespace: ns,
                name,
                gsa,
                ours: owners.iter().any(|o| fields.of(o).annotation),
            });
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
    let (namespaces, service_accounts, host_network) = tokio::try_join!(
        conn.list_namespaces_kept(|ns| {
            let name = ns.metadata.name.clone()?;
            Some((name, KubeObject::from(ns)))
        }),
        conn.list_service_accounts_kept(|sa| {
            let ns = sa.metadata.namespace.clone()?;
            let name = sa.metadata.name.clone()?;
            Some(((ns, name), KubeObject::from(sa)))
        }),
        conn.list_host_network_pods()
    )?;
    let mut host_network_pods: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for pod in host_network {
        let (Some(ns), Some(name)) = (pod.metadata.namespace, pod.metadata.name) else {
            continue;
        };
        let ksa = pod
            .spec
            .and_then(|s| s.service_account_name)
            .unwrap_or_else(|| "default".to_string());
        host_network_pods.entry((ns, ksa)).or_default().push(name);
    }
    host_network_pods.values_mut().for_each(|v| v.sort());
    Ok(LiveKube {
        namespaces: namespaces.into_iter().collect(),
        service_accounts: service_accounts.into_iter().collect(),
        host_network_pods,
        pods_of: BTreeMap::new(),
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
