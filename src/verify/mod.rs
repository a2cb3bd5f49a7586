//! `wi verify`: proves that each mapping of the spec really yields its Google
//! identity, without running a pod. A configured mapping is not a working
//! one (a pool still on GCE_METADATA, a missing binding, the IAM Credentials
//! API off), and pods then silently get the node's identity or a 403 at run
//! time; nothing else checks the whole chain.
//!
//! For each mapping (cluster × KSA) the check first reads the chain in live
//! state, in the order a pod walks it (cluster pool, node pools, namespace,
//! KSA, annotation, GSA, binding, API, disabled account), to name the first
//! broken link in plain words with its fix; then, when every link looks
//! sound, it does what the GKE metadata server does: a TokenRequest for the
//! KSA with the workload pool as audience, the STS exchange, and
//! `generateAccessToken` for the GSA. With the federated token in hand it
//! also tries every other account the principal is bound to: every cluster
//! of a pool with the same namespace and KSA name gets the same principal,
//! so a binding made for another cluster grants this one too.
//!
//! Tokens are never printed, logged or kept past the check.

mod pod;
mod report;

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use secrecy::SecretString;

use crate::gcp::types::{GkeCluster, IamPolicy};
use crate::gcp::{GcpClient, GcpError};
use crate::live::LiveState;
use crate::ownership::{GSA_ANNOTATION, WORKLOAD_IDENTITY_USER};
use crate::spec::{
    ClusterKey, DirectGrant, DirectPrincipal, DirectResource, DirectRole, Mapping, Model,
};

pub use pod::{NodeReason, PodExplanation, PodIdentity, PodProblem, explain_pod};
pub use report::{render_pod, render_report};

/// The role that lets a principal mint tokens for an account besides
/// `roles/iam.workloadIdentityUser`.
const TOKEN_CREATOR: &str = "roles/iam.serviceAccountTokenCreator";

/// A step of the token exchange, for a refusal the live read did not foresee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reaching the cluster's Kubernetes API.
    Connect,
    /// TokenRequest for the KSA.
    TokenRequest,
    /// STS token exchange.
    Sts,
    /// IAM Credentials `generateAccessToken`.
    GenerateAccessToken,
    /// Reading a role's permissions (`roles.get`) or testing them.
    TestPermissions,
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::Connect => "reaching the cluster's Kubernetes API",
            Step::TokenRequest => "the TokenRequest for the KSA",
            Step::Sts => "the STS token exchange",
            Step::GenerateAccessToken => "generateAccessToken for the Google service account",
            Step::TestPermissions => "testing the direct roles' permissions",
        }
    }
}

/// The first link of a mapping's chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// The cluster does not exist.
    ClusterMissing,
    /// The cluster has no workload pool (Workload Identity is off).
    NoWorkloadPool,
    /// The cluster joined another pool than its project's.
    WrongWorkloadPool { found: String },
    /// A node pool the spec covers does not run the GKE metadata server.
    PoolOnGceMetadata { pool: String, mode: String },
    /// The namespace does not exist.
    NamespaceMissing,
    /// The KSA does not exist.
    KsaMissing,
    /// The KSA has no `iam.gke.io/gcp-service-account` annotation.
    AnnotationMissing,
    /// The annotation names another account.
    AnnotationOther { found: String },
    /// The Google service account does not exist.
    GsaMissing,
    /// The KSA's principal holds no `roles/iam.workloadIdentityUser` on the account.
    BindingMissing,
    /// The IAM Service Account Credentials API is off in the account's project.
    ApiDisabled { project: String },
    /// The Google service account is disabled.
    GsaDisabled,
    /// Direct mode: the KSA still names a Google service account, so its
    /// pods impersonate that account instead of using their own principal.
    LeftoverAnnotation { found: String },
    /// Direct mode: the KSA's federated principal lacks permissions of a
    /// role granted to it directly.
    DirectRoleMissing {
        role: String,
        resource: String,
        missing: Vec<String>,
    },
    /// A step of the exchange was refused for another reason.
    Exchange { step: Step, message: String },
}

/// What one mapping's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every link holds and the exchange yielded a token for the account.
    Works,
    /// The first broken link.
    Broken(Broken),
}

/// The check of one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingCheck {
    pub cluster: ClusterKey,
    pub namespace: String,
    pub ksa: String,
    /// The Google service account, or in direct mode the roles granted to
    /// the KSA's principal (`ROLE on RESOURCE`, comma-separated).
    pub gsa: String,
    /// Direct mode: no Google service account; the KSA's own principal
    /// holds the roles.
    pub direct: bool,
    pub outcome: Outcome,
    /// Other accounts the same principal obtained a token for (every
    /// cluster of the pool with this namespace and KSA name gets them).
    pub also_acts_as: Vec<String>,
}

impl MappingCheck {
    /// Whether the mapping works and grants nothing more than it says.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Works && self.also_acts_as.is_empty()
    }
}

/// Every mapping's check, in spec order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checks: Vec<MappingCheck>,
}

impl VerifyReport {
    /// Whether every mapping passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(MappingCheck::passed)
    }
}

/// How to verify: the client, the concurrency bound, which mappings.
pub struct Verifier<'a> {
    pub gcp: &'a GcpClient,
    pub parallelism: usize,
    /// `--target` patterns (all mappings when empty) and `--exclude` ones:
    /// a cluster (`name` or `project/location/name`), `NAMESPACE/KSA`, or a
    /// service account (email or name), `*` for any run of characters.
    pub targets: Vec<String>,
    pub excludes: Vec<String>,
}

/// Whether `pattern` (with `*` for any run of characters) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Whether a `--target`/`--exclude` pattern names this mapping.
pub fn names_mapping(pattern: &str, m: &Mapping) -> bool {
    let p = pattern.trim();
    [
        m.cluster.name.clone(),
        m.cluster.to_string(),
        format!("{}/{}", m.namespace, m.ksa),
        format!("{}/{}/{}", m.cluster, m.namespace, m.ksa),
        m.gsa_email.clone(),
        crate::ids::gsa_account_id(&m.gsa_email).to_string(),
    ]
    .iter()
    .any(|t| glob(p, t))
}

/// The IAM member of a mapping's principal, for the pool the cluster joined.
fn member(m: &Mapping) -> String {
    m.member()
}

/// Whether `policy` lets `member` mint tokens for its account.
fn policy_grants(policy: &IamPolicy, member: &str) -> bool {
    policy.bindings.iter().any(|b| {
        (b.role == WORKLOAD_IDENTITY_USER || b.role == TOKEN_CREATOR)
            && b.condition.is_none()
            && b.members.iter().any(|x| x == member)
    })
}

/// The links of the chain live state shows, in the order a pod walks them.
/// `None`: every link that live state can show holds.
fn read_chain(model: &Model, live: &LiveState, m: &Mapping) -> Option<Broken> {
    let live_cluster = live.clusters.get(&m.cluster);
    let Some(gke) = live_cluster.and_then(|c| c.gke.as_ref()) else {
        return Some(Broken::ClusterMissing);
    };
    let pool = m.cluster.workload_pool();
    match gke.workload_pool() {
        None => return Some(Broken::NoWorkloadPool),
        Some(p) if p != pool => {
            return Some(Broken::WrongWorkloadPool {
                found: p.to_string(),
            });
        }
        Some(_) => {}
    }
    if let Some(b) = node_pools_broken(model, &m.cluster, gke) {
        return Some(b);
    }
    if let Some(kube) = live_cluster.and_then(|c| c.kube.as_ref()) {
        let sa = match kube_chain(kube, &m.namespace, &m.ksa) {
            Ok(sa) => sa,
            Err(b) => return Some(b),
        };
        let annotation = sa.annotation(GSA_ANNOTATION);
        match annotation {
            None => return Some(Broken::AnnotationMissing),
            Some(found) if found.trim() != m.gsa_email => {
                return Some(Broken::AnnotationOther {
                    found: found.to_string(),
                });
            }
            Some(_) => {}
        }
    }
    let Some(account) = live.account(&m.gsa_project, &m.gsa_email) else {
        return Some(Broken::GsaMissing);
    };
    let member = member(m);
    let sa_grants = live
        .account_policies
        .get(&m.gsa_email)
        .map(|p| policy_grants(p, &member));
    let project_grants = live
        .projects
        .get(&m.gsa_project)
        .and_then(|p| p.policy.as_ref())
        .map(|p| policy_grants(p, &member));
    // Only a policy that was read can show the binding missing.
    if sa_grants == Some(false) && project_grants != Some(true) {
        return Some(Broken::BindingMissing);
    }
    let api = live
        .projects
        .get(&m.gsa_project)
        .and_then(|p| p.iam_credentials_enabled);
    if api == Some(false) {
        return Some(Broken::ApiDisabled {
            project: m.gsa_project.clone(),
        });
    }
    if account.disabled {
        return Some(Broken::GsaDisabled);
    }
    None
}

/// The namespace and the KSA in a cluster's live objects.
fn kube_chain<'k>(
    kube: &'k crate::live::LiveKube,
    namespace: &str,
    ksa: &str,
) -> Result<&'k crate::live::KubeObject, Broken> {
    if !kube.namespaces.contains_key(namespace) {
        return Err(Broken::NamespaceMissing);
    }
    kube.service_accounts
        .get(&(namespace.to_string(), ksa.to_string()))
        .ok_or(Broken::KsaMissing)
}

/// The chain of a direct grant to one KSA, as live state shows it: the
/// cluster in its pool, the node pools on the GKE metadata server, the
/// namespace and the KSA, and no GSA annotation left on it.
fn read_direct_chain(
    model: &Model,
    live: &LiveState,
    key: &ClusterKey,
    namespace: &str,
    ksa: &str,
) -> Option<Broken> {
    let live_cluster = live.clusters.get(key);
    let Some(gke) = live_cluster.and_then(|c| c.gke.as_ref()) else {
        return Some(Broken::ClusterMissing);
    };
    match gke.workload_pool() {
        None => return Some(Broken::NoWorkloadPool),
        Some(p) if p != key.workload_pool() => {
            return Some(Broken::WrongWorkloadPool {
                found: p.to_string(),
            });
        }
        Some(_) => {}
    }
    if let Some(b) = node_pools_broken(model, key, gke) {
        return Some(b);
    }
    let kube = live_cluster.and_then(|c| c.kube.as_ref())?;
    let sa = match kube_chain(kube, namespace, ksa) {
        Ok(sa) => sa,
        Err(b) => return Some(b),
    };
    let annotation = sa.annotation(GSA_ANNOTATION);
    annotation.map(|found| Broken::LeftoverAnnotation {
        found: found.to_string(),
    })
}

/// `ROLE on RESOURCE, …`: what a direct grant gives, for the report.
fn direct_label(roles: &[DirectRole]) -> String {
    roles
        .iter()
        .map(|r| format!("{} on {}", r.role, r.resource.path()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first node pool the spec covers that does not run the GKE metadata server.
fn node_pools_broken(model: &Model, key: &ClusterKey, gke: &GkeCluster) -> Option<Broken> {
    let selection = model
        .clusters
        .iter()
        .find(|c| &c.key == key)
        .map(|c| &c.metadata_server);
    gke.node_pools
        .iter()
        .filter(|p| match selection {
            Some(crate::spec::PoolSelection::Only(names)) => names.contains(&p.name),
            // `none` leaves the pools alone, but a pod there still gets
            // the node's identity: every pool counts.
            _ => true,
        })
        .find_map(|p| {
            let mode = p.metadata_mode().unwrap_or("GCE_METADATA");
            (mode != "GKE_METADATA").then(|| Broken::PoolOnGceMetadata {
                pool: p.name.clone(),
                mode: mode.to_string(),
            })
        })
}

/// A refusal of `generateAccessToken`, named as the link it shows.
fn credentials_refusal(e: &GcpError, m: &Mapping) -> Broken {
    if e.is_service_disabled() {
        Broken::ApiDisabled {
            project: m.gsa_project.clone(),
        }
    } else if e.is_permission_denied() {
        Broken::BindingMissing
    } else {
        Broken::Exchange {
            step: Step::GenerateAccessToken,
            message: e.to_string(),
        }
    }
}

impl Verifier<'_> {
    /// The mappings `--target` / `--exclude` select, in spec order.
    pub fn selected<'m>(&self, model: &'m Model) -> Vec<&'m Mapping> {
        model
            .mappings
            .iter()
            .filter(|m| self.targets.is_empty() || self.targets.iter().any(|p| names_mapping(p, m)))
            .filter(|m| !self.excludes.iter().any(|p| names_mapping(p, m)))
            .collect()
    }

    /// The direct grants to one KSA `--target` / `--exclude` select, in
    /// spec order (principal sets name no single KSA to check).
    pub fn selected_direct<'m>(&self, model: &'m Model) -> Vec<&'m DirectGrant> {
        let names = |p: &str, g: &DirectGrant| {
            let DirectPrincipal::Ksa { namespace, ksa } = &g.principal else {
                return false;
            };
            let p = p.trim();
            [
                g.cluster.name.clone(),
                g.cluster.to_string(),
                format!("{namespace}/{ksa}"),
                format!("{}/{namespace}/{ksa}", g.cluster),
            ]
            .iter()
            .any(|t| glob(p, t))
        };
        model
            .direct
            .iter()
            .filter(|g| matches!(g.principal, DirectPrincipal::Ksa { .. }))
            .filter(|g| self.targets.is_empty() || self.targets.iter().any(|p| names(p, g)))
            .filter(|g| !self.excludes.iter().any(|p| names(p, g)))
            .collect()
    }

    /// Checks every selected mapping of `model` against `live` and the
    /// token exchange: GSA mappings first, then direct grants to a KSA.
    pub async fn verify(&self, model: &Model, live: &LiveState) -> VerifyReport {
        let mappings = self.selected(model);
        let mut checks: Vec<MappingCheck> = stream::iter(mappings)
            .map(|m| self.check(model, live, m))
            .buffered(self.parallelism.max(1))
            .collect()
            .await;
        let direct: Vec<MappingCheck> = stream::iter(self.selected_direct(model))
            .map(|g| self.check_direct(model, live, g))
            .buffered(self.parallelism.max(1))
            .collect()
            .await;
        checks.extend(direct);
        VerifyReport { checks }
    }

    /// A direct grant to one KSA: the chain, then what a pod does (the
    /// TokenRequest, the STS exchange) and, with the federated token, each
    /// role's permissions tested on its resource.
    async fn check_direct(&self, model: &Model, live: &LiveState, g: &DirectGrant) -> MappingCheck {
        let DirectPrincipal::Ksa { namespace, ksa } = &g.principal else {
            unreachable!("selected_direct keeps grants to one KSA only")
        };
        let outcome = match read_direct_chain(model, live, &g.cluster, namespace, ksa) {
            Some(b) => Outcome::Broken(b),
            None => match self.exchange_direct(model, live, g, namespace, ksa).await {
                Ok(()) => Outcome::Works,
                Err(b) => Outcome::Broken(b),
            },
        };
        MappingCheck {
            cluster: g.cluster.clone(),
            namespace: namespace.clone(),
            ksa: ksa.clone(),
            gsa: direct_label(&g.roles),
            direct: true,
            outcome,
            also_acts_as: Vec::new(),
        }
    }

    async fn exchange_direct(
        &self,
        model: &Model,
        live: &LiveState,
        g: &DirectGrant,
        namespace: &str,
        ksa: &str,
    ) -> Result<(), Broken> {
        let fail = |step: Step, message: String| Broken::Exchange { step, message };
        let federated = self
            .federated_token(model, live, &g.cluster, namespace, ksa)
            .await?;
        for r in &g.roles {
            let wanted = self
                .gcp
                .role_permissions(&r.role)
                .await
                .map_err(|e| fail(Step::TestPermissions, format!("reading {}: {e}", r.role)))?;
            if wanted.is_empty() {
                continue;
            }
            let held = match &r.resource {
                DirectResource::Project(p) => {
                    self.gcp
                        .test_project_permissions_as(&federated, p, &wanted)
                        .await
                }
                DirectResource::ServiceAccount { email, .. } => {
                    self.gcp
                        .test_service_account_permissions_as(&federated, email, &wanted)
                        .await
                }
            }
            .map_err(|e| fail(Step::TestPermissions, e.to_string()))?;
            let missing: Vec<String> = wanted.into_iter().filter(|p| !held.contains(p)).collect();
            if !missing.is_empty() {
                return Err(Broken::DirectRoleMissing {
                    role: r.role.clone(),
                    resource: r.resource.path(),
                    missing,
                });
            }
        }
        Ok(())
    }

    async fn check(&self, model: &Model, live: &LiveState, m: &Mapping) -> MappingCheck {
        let (outcome, also_acts_as) = match read_chain(model, live, m) {
            Some(broken) => (Outcome::Broken(broken), Vec::new()),
            None => match self.exchange(model, live, m).await {
                Ok(also) => (Outcome::Works, also),
                Err((broken, also)) => (Outcome::Broken(broken), also),
            },
        };
        MappingCheck {
            cluster: m.cluster.clone(),
            namespace: m.namespace.clone(),
            ksa: m.ksa.clone(),
            gsa: m.gsa_email.clone(),
            direct: false,
            outcome,
            also_acts_as,
        }
    }

    /// What the GKE metadata server does first: a TokenRequest for the KSA
    /// with the workload pool as audience, then the STS exchange. The KSA
    /// token is dropped as soon as it is exchanged.
    async fn federated_token(
        &self,
        model: &Model,
        live: &LiveState,
        key: &ClusterKey,
        namespace: &str,
        ksa: &str,
    ) -> Result<SecretString, Broken> {
        let fail = |step: Step, message: String| Broken::Exchange { step, message };
        let Some(gke) = live.clusters.get(key).and_then(|c| c.gke.as_ref()) else {
            return Err(Broken::ClusterMissing);
        };
        let context = model
            .clusters
            .iter()
            .find(|c| &c.key == key)
            .and_then(|c| c.kube_context.as_deref());
        let token = self
            .gcp
            .access_token()
            .await
            .map_err(|e| fail(Step::Connect, e.to_string()))?;
        let conn = crate::live::connect_cluster(gke, token, context)
            .await
            .map_err(|e| fail(Step::Connect, e.to_string()))?;
        let pool = key.workload_pool();
        let ksa_token = conn
            .request_token(namespace, ksa, &pool)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    Broken::KsaMissing
                } else {
                    fail(Step::TokenRequest, e.to_string())
                }
            })?;
        let audience =
            crate::gcp::sts::gke_sts_audience(&pool, &key.project, &key.location, &key.name);
        let federated = self
            .gcp
            .exchange_token(&audience, &ksa_token)
            .await
            .map_err(|e| fail(Step::Sts, e.to_string()));
        drop(ksa_token);
        federated
    }

    /// The metadata server's exchange: KSA token → federated token → the
    /// GSA's token; then every other account the principal can act as.
    async fn exchange(
        &self,
        model: &Model,
        live: &LiveState,
        m: &Mapping,
    ) -> Result<Vec<String>, (Broken, Vec<String>)> {
        let federated = self
            .federated_token(model, live, &m.cluster, &m.namespace, &m.ksa)
            .await
            .map_err(|b| (b, Vec::new()))?;
        let also = self.also_acts_as(live, m, &federated).await;
        match self
            .gcp
            .generate_access_token(&federated, &m.gsa_email)
            .await
        {
            Ok(_token) => Ok(also),
            Err(e) => Err((credentials_refusal(&e, m), also)),
        }
    }

    /// The other accounts of the spec's projects the principal is bound to
    /// and obtains a token for.
    async fn also_acts_as(
        &self,
        live: &LiveState,
        m: &Mapping,
        federated: &SecretString,
    ) -> Vec<String> {
        let member = member(m);
        let mut candidates: BTreeMap<String, ()> = BTreeMap::new();
        for (project, p) in &live.projects {
            let project_wide = p
                .policy
                .as_ref()
                .is_some_and(|pol| policy_grants(pol, &member));
            for email in p.service_accounts.keys() {
                if *email == m.gsa_email {
                    continue;
                }
                let bound = if project_wide {
                    true
                } else if let Some(policy) = live.account_policies.get(email) {
                    policy_grants(policy, &member)
                } else {
                    match self.gcp.get_service_account_iam_policy(email).await {
                        Ok(policy) => policy_grants(&policy, &member),
                        Err(e) => {
                            tracing::debug!(%email, %project, "reading the account's policy: {e}");
                            false
                        }
                    }
                };
                if bound {
                    candidates.insert(email.clone(), ());
                }
            }
        }
        let mut out = Vec::new();
        for email in candidates.into_keys() {
            if self
                .gcp
                .generate_access_token(federated, &email)
                .await
                .is_ok()
            {
                out.push(email);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("alpha", "alpha"));
        assert!(glob("a*", "alpha"));
        assert!(glob("*/api", "payments/api"));
        assert!(glob("p*s/a*i", "payments/api"));
        assert!(!glob("beta", "alpha"));
        assert!(!glob("a*x", "alpha"));
    }
}
