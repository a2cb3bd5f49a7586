//! `wi audit`: who else gets the identities the spec hands out. Workload
//! Identity names a KSA by project, namespace and name only, so every
//! cluster of a project's workload pool — declared or not — shares each
//! mapping; and the chain breaks quietly (host network, GCE_METADATA pools,
//! disabled accounts, an annotation without its binding).
//!
//! Reading (`read`) lists every cluster of each spec project and what
//! the audit needs from IAM and each cluster's Kubernetes API; the checks
//! (`checks`) are a pure function of the model and what was read, each
//! finding with a severity and a stable code; `render` prints the report
//! as text or JSON. Audit never writes.

mod checks;
mod read;
mod render;

use serde::Serialize;

pub use read::{AuditState, read};
pub use render::{json, text};

/// How bad a finding is; `--fail-on` compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look: an identity could reach further than the spec says.
    Warning,
    /// An identity reaches further than the spec says, or a mapping is broken.
    Error,
}

impl Severity {
    /// `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding is about. The JSON names (snake_case) are a stable contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// A cluster the spec does not declare, in a mapped identity's pool,
    /// has that namespace/KSA: its pods get the mapping's account.
    UndeclaredClusterHasKsa,
    /// A cluster the spec does not declare, in a mapped identity's pool,
    /// where the namespace/KSA can be created to get the account.
    UndeclaredClusterCanCreate,
    /// A mapping of the `default` namespace or KSA: every pod there that
    /// names no service account gets the account.
    BroadMapping,
    /// A `principalSet://` member for a whole namespace or workload pool.
    BroadPrincipalSet,
    /// A pod of a mapped KSA on the host network gets the node's identity.
    HostNetworkPod,
    /// A pod of a mapped KSA on a `GCE_METADATA` node pool gets the node's identity.
    GceMetadataPod,
    /// A KSA annotation names an account whose policy does not bind the KSA.
    AnnotationWithoutBinding,
    /// A Workload Identity binding whose KSA exists in no cluster of its pool.
    BindingWithoutKsa,
    /// An account of the spec has Workload Identity users the spec does not map.
    UnmanagedWorkloadIdentityUser,
    /// An account a mapping names is disabled: its KSAs get no tokens.
    DisabledAccount,
    /// A cluster's Kubernetes API could not be read: its KSAs and pods are unknown.
    UnreadableCluster,
}

impl FindingCode {
    /// The stable snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::UndeclaredClusterHasKsa => "undeclared_cluster_has_ksa",
            FindingCode::UndeclaredClusterCanCreate => "undeclared_cluster_can_create",
            FindingCode::BroadMapping => "broad_mapping",
            FindingCode::BroadPrincipalSet => "broad_principal_set",
            FindingCode::HostNetworkPod => "host_network_pod",
            FindingCode::GceMetadataPod => "gce_metadata_pod",
            FindingCode::AnnotationWithoutBinding => "annotation_without_binding",
            FindingCode::BindingWithoutKsa => "binding_without_ksa",
            FindingCode::UnmanagedWorkloadIdentityUser => "unmanaged_workload_identity_user",
            FindingCode::DisabledAccount => "disabled_account",
            FindingCode::UnreadableCluster => "unreadable_cluster",
        }
    }
}

/// One thing the audit found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: FindingCode,
    /// What it is about: a cluster, `cluster ns/ksa`, an account email.
    pub subject: String,
    /// What it means and what to do, for people.
    pub message: String,
}

/// One cluster of a spec project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterRow {
    /// `project/location/name`.
    pub cluster: String,
    /// Whether the spec declares it.
    pub declared: bool,
    /// `None`: the cluster does not exist (declared, not created yet).
    pub exists: bool,
    pub workload_pool: Option<String>,
    /// Node pools not on `GKE_METADATA`.
    pub gce_metadata_pools: Vec<String>,
}

/// Who can change who acts as an account: members holding a role with
/// `iam.serviceAccounts.setIamPolicy` (or able to grant themselves one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PolicyEditor {
    pub member: String,
    pub role: String,
    /// `project P` or the account's email: where the role is granted.
    pub on: String,
}

/// The whole audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Every cluster of every spec project, sorted.
    pub clusters: Vec<ClusterRow>,
    /// Findings, errors first, then by code and subject.
    pub findings: Vec<Finding>,
    /// Who can edit the IAM policies of the spec's accounts in the spec's
    /// projects (another project's policy is not read), by account email.
    pub policy_editors: std::collections::BTreeMap<String, Vec<PolicyEditor>>,
}

impl AuditReport {
    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Findings at or above `level`.
    pub fn count_at_least(&self, level: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= level).count()
    }
}

/// Audits what was read against the model (pure).
pub fn audit(model: &crate::spec::Model, state: &AuditState) -> AuditReport {
    checks::run(model, state)
}
