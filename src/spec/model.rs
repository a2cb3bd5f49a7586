//! The validated model: what the spec means once every name is checked and
//! every reference resolved. Later stages (live, plan, apply) consume only this
//! and never re-validate. Fleet shorthands (defaults, cluster groups, several
//! KSAs per mapping) are already expanded here: one [`Mapping`] per
//! (cluster, namespace, KSA).

use serde::{Deserialize, Serialize};

pub use crate::ids::{ClusterKey, gsa_email, ksa_member, workload_pool};
pub use crate::ownership::Owner;

pub use super::names::ANY_PROJECT;

/// Where an item is declared: the spec file (as named in diagnostics) and the
/// 1-based line. Plans name it in collision and ownership messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// Which node pools of a cluster must run the GKE metadata server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolSelection {
    /// Every node pool the cluster has (the default).
    All,
    /// Only these pools; others are left as they are.
    Only(Vec<String>),
    /// None: `wi` leaves every pool's metadata mode alone.
    None,
}

/// The minimal block `wi` uses to create a cluster that does not exist yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCreate {
    pub initial_node_count: u32,
    pub machine_type: Option<String>,
    pub release_channel: Option<String>,
    /// An Autopilot cluster (GKE picks the nodes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autopilot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub key: ClusterKey,
    /// Whether the cluster must have a workload pool (`P.svc.id.goog`).
    pub workload_identity: bool,
    pub metadata_server: PoolSelection,
    pub create: Option<ClusterCreate>,
    /// A kubeconfig context to reach this cluster's Kubernetes API instead of
    /// the GKE endpoint (for private clusters reached through a proxy).
    pub kube_context: Option<String>,
    /// Declared Autopilot (`autopilot: true` or `create: {autopilot: true}`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autopilot: bool,
    /// Where the spec turns Workload Identity off or restricts
    /// `metadataServer`: an error if the live cluster turns out Autopilot
    /// (a check of the plan, not part of the model's JSON).
    #[serde(skip)]
    pub restricted_at: Option<Origin>,
    /// The groups the cluster joins (`groups:`), sorted: mappings name them,
    /// and `--target`/`--exclude` select them (`group:NAME`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Where the cluster is declared.
    #[serde(default)]
    pub origin: Origin,
}

/// A Google service account the spec declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gsa {
    pub project: String,
    pub account_id: String,
    pub display_name: Option<String>,
    /// The user's description; `wi` appends its ownership marker when it creates or adopts.
    pub description: Option<String>,
    /// Project-level roles granted to this account in its own project, sorted.
    pub roles: Vec<String>,
    /// Take ownership of an existing account that `wi` did not create.
    pub adopt: bool,
    /// The owner of the file that declares it.
    #[serde(default)]
    pub owner: Owner,
    /// Where it is declared.
    #[serde(default)]
    pub origin: Origin,
}

impl Gsa {
    pub fn email(&self) -> String {
        gsa_email(&self.project, &self.account_id)
    }
}

/// Whether `wi` creates the namespace and KSA or only annotates an existing KSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KsaManagement {
    /// Create the namespace and the KSA if missing (labelled managed-by wi).
    Create,
    /// The KSA is someone else's (Helm, another team): only add the annotation.
    AnnotateExisting,
}

/// One KSA in one cluster acting as one GSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub cluster: ClusterKey,
    pub namespace: String,
    pub ksa: String,
    /// Email of the GSA (declared in `service_accounts`, or external).
    pub gsa_email: String,
    /// Project of the GSA (where the binding lives): the project id when the
    /// email names it (`NAME@PROJECT.iam.gserviceaccount.com`,
    /// `PROJECT@appspot.gserviceaccount.com`), else [`ANY_PROJECT`] (`-`) for
    /// Google-managed accounts whose email names a project number or a
    /// service (`NUMBER-compute@developer.gserviceaccount.com`, service agents
    /// `service-NUMBER@gcp-sa-*.iam.gserviceaccount.com`,
    /// `NUMBER@cloudservices.gserviceaccount.com`). `-` is IAM's wildcard:
    /// the account is read and its policy edited as
    /// `projects/-/serviceAccounts/EMAIL`; it is no project `wi` manages
    /// (never in [`Model::projects`]), so nothing is listed, checked or
    /// enabled in it.
    pub gsa_project: String,
    pub management: KsaManagement,
    /// The owner of the file that declares it.
    #[serde(default)]
    pub owner: Owner,
    /// Where it is declared.
    #[serde(default)]
    pub origin: Origin,
    /// Risks the mapping accepts (`accept:`), sorted: their plan warnings
    /// are silenced for this mapping and listed as accepted instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<Risk>,
}

/// A risk a mapping can accept in the spec (`accept: [identity-sameness]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Other clusters of the project with the same namespace and KSA get the
    /// same identity.
    IdentitySameness,
}

impl Risk {
    /// Every risk, with its spelling in the spec.
    pub const ALL: [(Risk, &'static str); 1] = [(Risk::IdentitySameness, "identity-sameness")];

    /// The spelling in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::IdentitySameness => "identity-sameness",
        }
    }
}

impl Mapping {
    /// `serviceAccount:P.svc.id.goog[NS/KSA]` where P is the cluster's project.
    pub fn member(&self) -> String {
        ksa_member(&self.cluster.project, &self.namespace, &self.ksa)
    }
}

/// The annotation recording a direct grant's roles on the KSA (or the
/// Namespace object, for principal sets) that holds them: sorted,
/// comma-separated `RESOURCE=ROLE` entries. A live direct member is its
/// writer's (field manager `wi/O`) when the record lists it.
pub const DIRECT_ROLES_ANNOTATION: &str = "wi.dev/direct-roles";

/// Where a direct role is granted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectResource {
    /// A project's IAM policy.
    Project(String),
    /// A service account's IAM policy; `project` as [`Mapping::gsa_project`].
    ServiceAccount { email: String, project: String },
}

impl DirectResource {
    /// `projects/P` or `projects/P/serviceAccounts/EMAIL`, as in the record.
    pub fn path(&self) -> String {
        match self {
            DirectResource::Project(p) => format!("projects/{p}"),
            DirectResource::ServiceAccount { email, project } => {
                format!("projects/{project}/serviceAccounts/{email}")
            }
        }
    }
}

/// One role on one resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DirectRole {
    pub resource: DirectResource,
    pub role: String,
}

impl DirectRole {
    /// `RESOURCE=ROLE`, one entry of the record.
    pub fn entry(&self) -> String {
        format!("{}={}", self.resource.path(), self.role)
    }
}

/// The record annotation's value for these roles (sorted, deduplicated).
pub fn direct_record<'a>(roles: impl IntoIterator<Item = &'a DirectRole>) -> String {
    let entries: std::collections::BTreeSet<String> =
        roles.into_iter().map(DirectRole::entry).collect();
    entries.into_iter().collect::<Vec<_>>().join(",")
}

/// The entries of a record annotation's value.
pub fn parse_direct_record(value: &str) -> std::collections::BTreeSet<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// Who a direct grant's roles go to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectPrincipal {
    /// One KSA: `principal://…/subject/ns/NS/sa/KSA`.
    Ksa { namespace: String, ksa: String },
    /// Every KSA of a namespace in every cluster of the pool.
    Namespace { namespace: String },
    /// Every KSA of one cluster.
    Cluster,
}

impl DirectPrincipal {
    /// Whether it is a principal set (broad).
    pub fn is_set(&self) -> bool {
        !matches!(self, DirectPrincipal::Ksa { .. })
    }

    /// The IAM member, built from typed fields: `number` is the pool
    /// project's number, `cluster` the cluster (its project is the pool's).
    pub fn member(&self, number: &str, cluster: &ClusterKey) -> String {
        let pool = format!(
            "iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{}",
            workload_pool(&cluster.project)
        );
        match self {
            DirectPrincipal::Ksa { namespace, ksa } => {
                format!("principal://{pool}/subject/ns/{namespace}/sa/{ksa}")
            }
            DirectPrincipal::Namespace { namespace } => {
                format!("principalSet://{pool}/namespace/{namespace}")
            }
            DirectPrincipal::Cluster => format!(
                "principalSet://{pool}/kubernetes.cluster/https://container.googleapis.com/v1/projects/{}/locations/{}/clusters/{}",
                cluster.project, cluster.location, cluster.name
            ),
        }
    }

    /// The Kubernetes object holding the record: the KSA, the Namespace
    /// object, or (cluster sets) the `kube-system` Namespace object.
    pub fn record_namespace(&self) -> &str {
        match self {
            DirectPrincipal::Ksa { namespace, .. } | DirectPrincipal::Namespace { namespace } => {
                namespace
            }
            DirectPrincipal::Cluster => "kube-system",
        }
    }
}

/// Direct mode: roles granted to a Kubernetes identity of one cluster
/// itself, with no Google service account. One per (cluster, principal);
/// the record of the roles lives in that cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectGrant {
    pub cluster: ClusterKey,
    pub principal: DirectPrincipal,
    /// Sorted, deduplicated.
    pub roles: Vec<DirectRole>,
    /// For a KSA: whether `wi` creates it (never annotates it with a GSA).
    pub management: KsaManagement,
    /// The owner of the file that declares it.
    #[serde(default)]
    pub owner: Owner,
    /// Where it is declared.
    #[serde(default)]
    pub origin: Origin,
    /// Risks the mapping accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<Risk>,
}

/// A member that must not hold `roles/iam.workloadIdentityUser` on a GSA,
/// even when `wi` does not own the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsentMember {
    pub gsa_email: String,
    /// As [`Mapping::gsa_project`]: a project id, or [`ANY_PROJECT`] (`-`).
    pub gsa_project: String,
    pub member: String,
    /// The owner of the file that declares it.
    #[serde(default)]
    pub owner: Owner,
    /// Where it is declared.
    #[serde(default)]
    pub origin: Origin,
}

/// The whole validated spec set: every file of it as one model (a file may
/// name clusters, groups and accounts another file declares; each item
/// keeps the owner and origin of the file that declares it; `defaults`
/// apply within their own file). Vectors are sorted and free of duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Model {
    /// Project ids the spec manages (from `projects`, clusters and accounts).
    pub projects: Vec<String>,
    pub clusters: Vec<Cluster>,
    pub service_accounts: Vec<Gsa>,
    pub mappings: Vec<Mapping>,
    /// Direct-mode grants (mappings with `roles`), one per (cluster,
    /// principal), sorted. A KSA may have both a [`Mapping`] and a grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct: Vec<DirectGrant>,
    pub absent: Vec<AbsentMember>,
    /// Every owner the spec set declares (sorted): removals, releases and
    /// prunes are planned only for objects of these owners.
    #[serde(default)]
    pub owners: Vec<Owner>,
}
