//! The one JSON form of a plan, and saved plan files (`wi plan --out FILE`,
//! then `wi apply FILE` or `wi show FILE`).
//!
//! `wi plan --json`, `wi show --json` and a saved plan file are the same
//! versioned document, [`PlanDocument`], whose JSON Schema is generated from
//! these types ([`schema_json`], committed as `schema/plan.schema.json`).
//! Shaped like `terraform show -json`, so CI tooling that already scans
//! Terraform plans (`resource_changes[].change.actions` containing
//! `"delete"`, `resource_changes[].address`) works unchanged.
//!
//! Stability contract: `format_version` is `MAJOR.MINOR`
//! ([`FORMAT_VERSION`]); minor bumps only add keys, so consumers ignore keys
//! they do not know and reject an unknown major version, as [`decode`] does.
//! Keys come in a fixed order and attribute maps are sorted, so the same plan
//! always serialises to the same bytes.
//!
//! A saved plan is applied without asking again because it was reviewed, so
//! the document carries a sha256 `checksum` of its canonical form (without
//! the checksum itself) and [`read`] refuses a file that does not match it,
//! as well as other major versions, malformed JSON, files that are not
//! regular files (a FIFO would block) and files over
//! [`MAX_PLAN_FILE_BYTES`]. Staleness against live state is the plan's own
//! check, `Plan::check_fresh` (plan/fresh.rs), over the plan's fingerprints.
//!
//! A plan contains no secrets by construction: its attributes are project
//! ids, account ids and emails, display names, roles, IAM members, namespace
//! and KSA names, annotations and labels, and its fingerprints are etags and
//! resourceVersions. No token, key or credential ever enters a [`Plan`], so a
//! saved plan can be kept as a CI artifact. A saved plan also carries the
//! text of the spec files it was made from (so `wi apply FILE` needs no
//! `-f`); a spec holds no credentials either, `wi` reads those from the
//! environment. The checksum detects accidental
//! or casual edits; it is not a signature against a determined attacker who
//! can recompute it.

use std::fs::FileType;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{
    Action, Attributes, FORMAT_VERSION, Fingerprint, Group, KubeWrite, Plan, Reason, ReasonCode,
    Resource, ResourceChange, Unknown, UnknownReason, UnknownScope, Warning, WarningCode,
};
use crate::ids::ClusterKey;
use crate::ownership::Owner;
use crate::spec::{Format, SpecFile};

/// Largest plan file `read` accepts (64 MiB).
pub const MAX_PLAN_FILE_BYTES: u64 = 64 * 1024 * 1024;

const CHECKSUM_PREFIX: &str = "sha256:";

/// Why a saved plan file cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanFileError {
    /// The file could not be opened or read.
    #[error("cannot read plan file {}", path.display())]
    #[diagnostic(code(wi::plan_file::io))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is over [`MAX_PLAN_FILE_BYTES`].
    #[error("plan file {} is larger than the {limit}-byte limit", path.display())]
    #[diagnostic(
        code(wi::plan_file::too_large),
        help("a wi plan file is a few kilobytes per change; is this the right file?")
    )]
    TooLarge { path: PathBuf, limit: u64 },
    /// The file is not JSON.
    #[error("plan file {} is not valid JSON (line {line}, column {column})", path.display())]
    #[diagnostic(
        code(wi::plan_file::malformed),
        help("save a plan with `wi plan --out FILE`; plan files are not meant to be edited")
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The JSON is not a `wi` plan envelope.
    #[error("{} is not a wi plan file: {detail}", path.display())]
    #[diagnostic(
        code(wi::plan_file::not_a_plan),
        help("save a plan with `wi plan --out FILE`")
    )]
    NotAPlan { path: PathBuf, detail: String },
    /// The envelope's major version is not one this `wi` reads.
    #[error(
        "plan file {} has format version {found}, which this wi (v{ours}) cannot read (it reads {supported}.x)",
        path.display(),
        ours = crate::VERSION
    )]
    #[diagnostic(
        code(wi::plan_file::unsupported_version),
        help("make the plan again with this version of wi: `wi plan --out FILE`")
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: String,
    },
    /// The plan does not match its checksum: the file changed after it was written.
    #[error("plan file {} was modified after it was written (checksum mismatch)", path.display())]
    #[diagnostic(
        code(wi::plan_file::checksum_mismatch),
        help(
            "a saved plan is applied without asking again, so it must be exactly what was reviewed; make a new one with `wi plan --out FILE`"
        )
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The path exists and is not a regular file (a FIFO, a device, a symlink
    /// `--out` would replace, a directory).
    #[error("{} is {kind}, not a regular file", path.display())]
    #[diagnostic(
        code(wi::plan_file::not_a_file),
        help(
            "give the path of a regular file: wi never reads a plan from, or writes one over, a pipe, device or symlink"
        )
    )]
    NotARegularFile { path: PathBuf, kind: &'static str },
    /// The plan file could not be written.
    #[error("cannot write plan file {}", path.display())]
    #[diagnostic(code(wi::plan_file::write))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The checksum matches but the fields contradict each other.
    #[error("plan file {} does not contain a valid plan: {detail}", path.display())]
    #[diagnostic(
        code(wi::plan_file::invalid_plan),
        help("save a plan with `wi plan --out FILE`; plan files are not meant to be edited")
    )]
    Inconsistent { path: PathBuf, detail: String },
    /// The checksum matches but the plan does not have the expected shape.
    #[error("plan file {} does not contain a valid plan", path.display())]
    #[diagnostic(code(wi::plan_file::invalid_plan))]
    InvalidPlan {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl PlanFileError {
    /// The file changed after `wi plan --out` wrote it.
    pub fn is_tampered(&self) -> bool {
        matches!(self, PlanFileError::ChecksumMismatch { .. })
    }

    /// Written by a `wi` with another major format version.
    pub fn is_unsupported_version(&self) -> bool {
        matches!(self, PlanFileError::UnsupportedVersion { .. })
    }

    /// The path is a FIFO, device, directory or (for `--out`) a symlink.
    pub fn is_not_a_regular_file(&self) -> bool {
        matches!(self, PlanFileError::NotARegularFile { .. })
    }

    /// The file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PlanFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PlanFileError::Io { path, .. }
            | PlanFileError::TooLarge { path, .. }
            | PlanFileError::Malformed { path, .. }
            | PlanFileError::NotAPlan { path, .. }
            | PlanFileError::UnsupportedVersion { path, .. }
            | PlanFileError::ChecksumMismatch { path, .. }
            | PlanFileError::InvalidPlan { path, .. }
            | PlanFileError::NotARegularFile { path, .. }
            | PlanFileError::Write { path, .. }
            | PlanFileError::Inconsistent { path, .. } => path,
        }
    }
}

/// A plan in its one JSON form: `wi plan --json`, `wi show --json` and saved
/// plan files. Shaped like `terraform show -json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "wi plan")]
pub struct PlanDocument {
    /// `MAJOR.MINOR` of this format. Minor versions only add keys: ignore keys
    /// you do not know, and reject a major version you do not know.
    pub format_version: String,
    /// The version of wi that made the plan.
    pub wi_version: String,
    /// sha256 of the spec text the plan was made from.
    pub spec_digest: String,
    /// Every resource the spec declares or wi owns, sorted by group, kind and
    /// address; no-op entries are kept so consumers see what was checked.
    pub resource_changes: Vec<ResourceChangeDocument>,
    /// Plan-level warnings (orphans not pruned, identity sameness, ...).
    pub warnings: Vec<WarningDocument>,
    /// Counts of the changes that do something.
    pub summary: SummaryDocument,
    /// True when applying would change something.
    pub has_changes: bool,
    /// The live inputs the plan was computed from and the version of each it
    /// saw, sorted by source.
    pub fingerprints: Vec<FingerprintDocument>,
    /// Projects and clusters that could not be read (absent when none):
    /// nothing is planned in them, nor anything that depends on them.
    /// `wi plan` exits 1 and `wi apply` refuses a plan with unknowns unless
    /// `--exclude` or `--target` leaves them out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<UnknownDocument>,
    /// The choices the plan was made with (saved plans only): `wi apply FILE`
    /// runs with exactly these and refuses contrary flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<PlanChoices>,
    /// The spec files the plan was made from, names and texts in order (saved
    /// plans only), so `wi apply FILE` needs no `-f`; their digest is
    /// `spec_digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_files: Option<Vec<SpecFileDocument>>,
    /// `sha256:HEX` of the canonical document without this key (compact JSON,
    /// object keys sorted at every level). `wi apply FILE` refuses a plan that
    /// does not match it.
    pub checksum: String,
}

/// The choices a saved plan was made with (`wi plan` flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanChoices {
    /// `--prune`: delete owned accounts (and KSAs) that left the spec.
    pub prune: bool,
    /// `--force-conflicts`: take over fields another Kubernetes field manager owns.
    pub force_conflicts: bool,
    /// The `--target`s the plan was limited to (empty: everything).
    #[serde(default)]
    pub targets: Vec<String>,
    /// The `--exclude`s the plan left out.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// `--allow-mass-removal`: the plan may remove most of an owner's access.
    #[serde(default)]
    pub allow_mass_removal: bool,
    /// `--max-removals-percent`: the share of an owner's bindings and
    /// annotations a plan may remove without `allow_mass_removal`.
    #[serde(default = "default_max_removals_percent")]
    pub max_removals_percent: u8,
}

fn default_max_removals_percent() -> u8 {
    super::DEFAULT_MAX_REMOVALS_PERCENT
}

impl Default for PlanChoices {
    fn default() -> Self {
        PlanChoices {
            prune: false,
            force_conflicts: false,
            targets: Vec::new(),
            excludes: Vec::new(),
            allow_mass_removal: false,
            max_removals_percent: super::DEFAULT_MAX_REMOVALS_PERCENT,
        }
    }
}

/// One spec file of the set a saved plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SpecFileDocument {
    /// The name diagnostics and origins give it (the path as given).
    pub name: String,
    /// Its syntax.
    pub format: SpecFormat,
    /// The whole text.
    pub text: String,
}

/// The syntax of a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpecFormat {
    Yaml,
    Toml,
}

impl SpecFileDocument {
    fn of(f: &SpecFile) -> Self {
        SpecFileDocument {
            name: f.name.clone(),
            format: match f.format {
                Format::Yaml => SpecFormat::Yaml,
                Format::Toml => SpecFormat::Toml,
            },
            text: f.text.clone(),
        }
    }

    fn file(self) -> SpecFile {
        SpecFile {
            name: self.name,
            format: match self.format {
                SpecFormat::Yaml => Format::Yaml,
                SpecFormat::Toml => Format::Toml,
            },
            text: self.text,
        }
    }
}

/// A saved plan: the plan, the choices it was made with and the spec files
/// it was made from. The last two are `None` in `wi plan --json` output.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedPlan {
    pub plan: Plan,
    pub options: Option<PlanChoices>,
    pub spec_files: Option<Vec<SpecFile>>,
}

/// One resource and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceChangeDocument {
    /// The stable, sortable address, e.g. `google_service_account["p/app"]`.
    pub address: String,
    /// The kind of resource.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// Where the change is shown: its project, cluster or namespace.
    pub group: GroupDocument,
    /// The fields that identify the resource (those its type has).
    pub resource: ResourceIdentity,
    /// The action and the attributes before and after.
    pub change: ChangeDocument,
    /// Why the change is (or is not) needed.
    pub action_reason: ReasonCode,
    /// The reason, as a sentence for people.
    pub reason: String,
    /// Addresses this change waits for during apply.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Warnings about this change.
    #[serde(default)]
    pub warnings: Vec<WarningDocument>,
    /// The owner the change is made for (the marker it writes, the field
    /// manager `wi/OWNER` of its Kubernetes writes); absent for the unnamed
    /// owner of specs without `owner:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// How a Kubernetes write is made beyond its attributes.
    #[serde(default, skip_serializing_if = "KubeWrite::is_plain")]
    pub kube: KubeWrite,
    /// Why an object the change writes to or relies on is not this owner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_managed: Option<String>,
}

/// The kinds of resource wi manages (the `type` of a change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// A Google API enabled in a project.
    ProjectService,
    /// A GKE cluster (its workload pool). Never deleted by wi.
    Cluster,
    /// A node pool (its workload metadata mode). Never deleted by wi.
    NodePool,
    /// A Google service account.
    GoogleServiceAccount,
    /// One member of one role on a service account's IAM policy.
    ServiceAccountIamMember,
    /// One member of one role on a project's IAM policy.
    ProjectIamMember,
    /// A Kubernetes namespace.
    KubernetesNamespace,
    /// A Kubernetes service account (its `iam.gke.io/gcp-service-account` annotation).
    KubernetesServiceAccount,
}

/// The identifying fields of a resource; each type has its own subset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceIdentity {
    /// The Google project (project services, accounts, IAM members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The cluster (clusters, node pools, namespaces, KSAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterDocument>,
    /// The API of a project service, e.g. `iamcredentials.googleapis.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The node pool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The account id of a Google service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The email of the service account whose policy holds the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The namespace of a KSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name of a namespace or KSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The IAM role of a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The IAM member, e.g. `serviceAccount:p.svc.id.goog[ns/ksa]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// A GKE cluster: `projects/PROJECT/locations/LOCATION/clusters/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterDocument {
    pub project: String,
    pub location: String,
    pub name: String,
}

/// The group a change is shown in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupDocument {
    /// Project-level resources.
    Project { project: String },
    /// A cluster and its node pools.
    Cluster { cluster: ClusterDocument },
    /// A namespace and its KSAs.
    Namespace {
        cluster: ClusterDocument,
        namespace: String,
    },
}

/// The action and the attributes before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeDocument {
    /// Terraform's `change.actions`: exactly one action.
    pub actions: Vec<ChangeAction>,
    /// Attributes as they are (`null` when the resource does not exist).
    pub before: Option<Attributes>,
    /// Attributes as they will be (`null` when the resource goes away).
    pub after: Option<Attributes>,
}

/// What happens to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeAction {
    /// Already as declared: nothing to do.
    NoOp,
    /// Created.
    Create,
    /// Changed in place.
    Update,
    /// Deleted (or, for an IAM member or annotation, removed).
    Delete,
}

/// A warning about a change or the whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WarningDocument {
    /// What the warning is about.
    pub code: WarningCode,
    /// The warning, for people.
    pub message: String,
    /// The address it concerns, if any.
    #[serde(default)]
    pub address: Option<String>,
}

/// Counts of the changes that do something (no-ops are not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SummaryDocument {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// A live object the plan read, and the version it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FingerprintDocument {
    /// What was read, e.g. `iam_policy["sa@p.iam.gserviceaccount.com"]`.
    pub source: String,
    /// The etag, resourceVersion or content hash seen; `absent` when it did
    /// not exist.
    pub version: String,
}

/// A project or cluster the plan could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnknownDocument {
    /// What could not be read.
    pub scope: UnknownScopeDocument,
    /// Why, as a stable code.
    pub code: UnknownReason,
    /// The error, for people.
    pub reason: String,
    /// What to do about it.
    pub help: String,
    /// Changes elsewhere not planned because they depend on it.
    #[serde(default)]
    pub held_back: Vec<String>,
}

/// A project or a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnknownScopeDocument {
    /// A project: its accounts, service state or policies.
    Project { project: String },
    /// A cluster: its GKE object or its Kubernetes API.
    Cluster { cluster: ClusterDocument },
}

impl UnknownDocument {
    fn of(u: &Unknown) -> Self {
        UnknownDocument {
            scope: match &u.scope {
                UnknownScope::Project { project } => UnknownScopeDocument::Project {
                    project: project.clone(),
                },
                UnknownScope::Cluster { cluster } => UnknownScopeDocument::Cluster {
                    cluster: ClusterDocument::of(cluster),
                },
            },
            code: u.code,
            reason: u.reason.clone(),
            help: u.help.clone(),
            held_back: u.held_back.clone(),
        }
    }

    fn unknown(self) -> Unknown {
        Unknown {
            scope: match self.scope {
                UnknownScopeDocument::Project { project } => UnknownScope::Project { project },
                UnknownScopeDocument::Cluster { cluster } => UnknownScope::Cluster {
                    cluster: cluster.key(),
                },
            },
            code: self.code,
            reason: self.reason,
            help: self.help,
            held_back: self.held_back,
        }
    }
}

/// The JSON Schema of [`PlanDocument`] (the text of `schema/plan.schema.json`).
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<PlanDocument>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

impl ChangeAction {
    fn of(action: Action) -> Self {
        match action {
            Action::NoOp => ChangeAction::NoOp,
            Action::Create => ChangeAction::Create,
            Action::Update => ChangeAction::Update,
            Action::Delete => ChangeAction::Delete,
        }
    }

    fn action(self) -> Action {
        match self {
            ChangeAction::NoOp => Action::NoOp,
            ChangeAction::Create => Action::Create,
            ChangeAction::Update => Action::Update,
            ChangeAction::Delete => Action::Delete,
        }
    }
}

impl ClusterDocument {
    fn of(key: &ClusterKey) -> Self {
        ClusterDocument {
            project: key.project.clone(),
            location: key.location.clone(),
            name: key.name.clone(),
        }
    }

    fn key(self) -> ClusterKey {
        ClusterKey {
            project: self.project,
            location: self.location,
            name: self.name,
        }
    }
}

impl WarningDocument {
    fn of(w: &Warning) -> Self {
        WarningDocument {
            code: w.code,
            message: w.message.clone(),
            address: w.address.clone(),
        }
    }

    fn warning(self) -> Warning {
        Warning {
            code: self.code,
            message: self.message,
            address: self.address,
        }
    }
}

impl ResourceIdentity {
    fn of(resource: &Resource) -> (ResourceType, Self) {
        let s = |v: &String| Some(v.clone());
        let c = |k: &ClusterKey| Some(ClusterDocument::of(k));
        let none = ResourceIdentity::default();
        match resource {
            Resource::ProjectService { project, service } => (
                ResourceType::ProjectService,
                ResourceIdentity {
                    project: s(project),
                    service: s(service),
                    ..none
                },
            ),
            Resource::Cluster { cluster } => (
                ResourceType::Cluster,
                ResourceIdentity {
                    cluster: c(cluster),
                    ..none
                },
            ),
            Resource::NodePool { cluster, pool } => (
                ResourceType::NodePool,
                ResourceIdentity {
                    cluster: c(cluster),
                    pool: s(pool),
                    ..none
                },
            ),
            Resource::ServiceAccount {
                project,
                account_id,
            } => (
                ResourceType::GoogleServiceAccount,
                ResourceIdentity {
                    project: s(project),
                    account_id: s(account_id),
                    ..none
                },
            ),
            Resource::ServiceAccountIamMember {
                project,
                email,
                role,
                member,
            } => (
                ResourceType::ServiceAccountIamMember,
                ResourceIdentity {
                    project: s(project),
                    email: s(email),
                    role: s(role),
                    member: s(member),
                    ..none
                },
            ),
            Resource::ProjectIamMember {
                project,
                role,
                member,
            } => (
                ResourceType::ProjectIamMember,
                ResourceIdentity {
                    project: s(project),
                    role: s(role),
                    member: s(member),
                    ..none
                },
            ),
            Resource::Namespace { cluster, name } => (
                ResourceType::KubernetesNamespace,
                ResourceIdentity {
                    cluster: c(cluster),
                    name: s(name),
                    ..none
                },
            ),
            Resource::KubernetesServiceAccount {
                cluster,
                namespace,
                name,
            } => (
                ResourceType::KubernetesServiceAccount,
                ResourceIdentity {
                    cluster: c(cluster),
                    namespace: s(namespace),
                    name: s(name),
                    ..none
                },
            ),
        }
    }

    /// The resource of type `t` these fields identify; an error names the
    /// first field its type needs and the document lacks.
    fn resource(self, t: ResourceType) -> Result<Resource, String> {
        fn need<T>(v: Option<T>, field: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("`resource.{field}` is missing"))
        }
        let id = self;
        Ok(match t {
            ResourceType::ProjectService => Resource::ProjectService {
                project: need(id.project, "project")?,
                service: need(id.service, "service")?,
            },
            ResourceType::Cluster => Resource::Cluster {
                cluster: need(id.cluster, "cluster")?.key(),
            },
            ResourceType::NodePool => Resource::NodePool {
                cluster: need(id.cluster, "cluster")?.key(),
                pool: need(id.pool, "pool")?,
            },
            ResourceType::GoogleServiceAccount => Resource::ServiceAccount {
                project: need(id.project, "project")?,
                account_id: need(id.account_id, "account_id")?,
            },
            ResourceType::ServiceAccountIamMember => Resource::ServiceAccountIamMember {
                project: need(id.project, "project")?,
                email: need(id.email, "email")?,
                role: need(id.role, "role")?,
                member: need(id.member, "member")?,
            },
            ResourceType::ProjectIamMember => Resource::ProjectIamMember {
                project: need(id.project, "project")?,
                role: need(id.role, "role")?,
                member: need(id.member, "member")?,
            },
            ResourceType::KubernetesNamespace => Resource::Namespace {
                cluster: need(id.cluster, "cluster")?.key(),
                name: need(id.name, "name")?,
            },
            ResourceType::KubernetesServiceAccount => Resource::KubernetesServiceAccount {
                cluster: need(id.cluster, "cluster")?.key(),
                namespace: need(id.namespace, "namespace")?,
                name: need(id.name, "name")?,
            },
        })
    }
}

impl GroupDocument {
    fn of(group: &Group) -> Self {
        match group {
            Group::Project { project } => GroupDocument::Project {
                project: project.clone(),
            },
            Group::Cluster { cluster } => GroupDocument::Cluster {
                cluster: ClusterDocument::of(cluster),
            },
            Group::Namespace { cluster, namespace } => GroupDocument::Namespace {
                cluster: ClusterDocument::of(cluster),
                namespace: namespace.clone(),
            },
        }
    }
}

impl ResourceChangeDocument {
    fn of(c: &ResourceChange) -> Self {
        let (resource_type, resource) = ResourceIdentity::of(&c.resource);
        ResourceChangeDocument {
            address: c.address.clone(),
            resource_type,
            group: GroupDocument::of(&c.resource.group()),
            resource,
            change: ChangeDocument {
                actions: vec![ChangeAction::of(c.action)],
                before: c.before.clone(),
                after: c.after.clone(),
            },
            action_reason: c.reason.code,
            reason: c.reason.message.clone(),
            depends_on: c.depends_on.clone(),
            warnings: c.warnings.iter().map(WarningDocument::of).collect(),
            owner: match &c.owner {
                Owner::Unnamed => None,
                Owner::Named(n) => Some(n.clone()),
            },
            kube: c.kube.clone(),
            not_managed: c.not_managed.clone(),
        }
    }

    fn change(self) -> Result<ResourceChange, String> {
        let address = self.address;
        let resource = self
            .resource
            .resource(self.resource_type)
            .map_err(|e| format!("{address}: {e}"))?;
        if resource.address() != address {
            return Err(format!(
                "{address}: the address does not match its resource ({})",
                resource.address()
            ));
        }
        let action = match self.change.actions.as_slice() {
            [one] => one.action(),
            _ => return Err(format!("{address}: `change.actions` must hold one action")),
        };
        Ok(ResourceChange {
            address,
            resource,
            action,
            before: self.change.before,
            after: self.change.after,
            reason: Reason {
                code: self.action_reason,
                message: self.reason,
            },
            depends_on: self.depends_on,
            warnings: self
                .warnings
                .into_iter()
                .map(WarningDocument::warning)
                .collect(),
            owner: match self.owner {
                Some(n) => Owner::Named(n),
                None => Owner::Unnamed,
            },
            kube: self.kube,
            not_managed: self.not_managed,
        })
    }
}

impl PlanDocument {
    /// The document of `plan`, checksum included.
    pub fn of(plan: &Plan) -> Self {
        Self::of_parts(plan, None, None)
    }

    /// The document of a saved plan, checksum included.
    pub fn of_saved(saved: &SavedPlan) -> Self {
        Self::of_parts(
            &saved.plan,
            saved.options.clone(),
            saved
                .spec_files
                .as_ref()
                .map(|fs| fs.iter().map(SpecFileDocument::of).collect()),
        )
    }

    fn of_parts(
        plan: &Plan,
        options: Option<PlanChoices>,
        spec_files: Option<Vec<SpecFileDocument>>,
    ) -> Self {
        let summary = plan.summary();
        let mut doc = PlanDocument {
            format_version: FORMAT_VERSION.to_string(),
            wi_version: crate::VERSION.to_string(),
            spec_digest: plan.spec_digest.clone(),
            resource_changes: plan
                .changes
                .iter()
                .map(ResourceChangeDocument::of)
                .collect(),
            warnings: plan.warnings.iter().map(WarningDocument::of).collect(),
            summary: SummaryDocument {
                add: summary.add,
                change: summary.change,
                destroy: summary.destroy,
            },
            has_changes: plan.has_changes(),
            fingerprints: plan
                .fingerprints
                .iter()
                .map(|f| FingerprintDocument {
                    source: f.source.clone(),
                    version: f.version.clone(),
                })
                .collect(),
            unknowns: plan.unknowns.iter().map(UnknownDocument::of).collect(),
            options,
            spec_files,
            checksum: String::new(),
        };
        if let Ok(Value::Object(mut map)) = serde_json::to_value(&doc) {
            map.shift_remove("checksum");
            doc.checksum = checksum(&Value::Object(map));
        }
        doc
    }

    /// The plan the document describes, in this wi's format version (a newer
    /// minor version's added keys are ignored); an error says what does not
    /// fit.
    fn saved(self) -> Result<SavedPlan, String> {
        let options = self.options.clone();
        let spec_files = self.spec_files.clone().map(|fs| {
            fs.into_iter()
                .map(SpecFileDocument::file)
                .collect::<Vec<_>>()
        });
        if let Some(files) = &spec_files
            && crate::spec::set_digest(files) != self.spec_digest
        {
            return Err("`spec_files` do not match `spec_digest`".into());
        }
        Ok(SavedPlan {
            plan: self.plan()?,
            options,
            spec_files,
        })
    }

    fn plan(self) -> Result<Plan, String> {
        let changes = self
            .resource_changes
            .into_iter()
            .map(ResourceChangeDocument::change)
            .collect::<Result<Vec<_>, _>>()?;
        let plan = Plan {
            format_version: FORMAT_VERSION.to_string(),
            spec_digest: self.spec_digest,
            changes,
            warnings: self
                .warnings
                .into_iter()
                .map(WarningDocument::warning)
                .collect(),
            fingerprints: self
                .fingerprints
                .into_iter()
                .map(|f| Fingerprint {
                    source: f.source,
                    version: f.version,
                })
                .collect(),
            unknowns: self
                .unknowns
                .into_iter()
                .map(UnknownDocument::unknown)
                .collect(),
        };
        if plan.has_changes() != self.has_changes {
            return Err("`has_changes` does not match the changes".into());
        }
        Ok(plan)
    }
}

/// The bytes of a plan file for `plan`: its document as pretty JSON with a
/// trailing newline (the same text `wi plan --json` prints).
pub fn encode(plan: &Plan) -> io::Result<Vec<u8>> {
    encode_saved(&SavedPlan {
        plan: plan.clone(),
        options: None,
        spec_files: None,
    })
}

/// The bytes of a plan file for a saved plan (its choices and spec files included).
pub fn encode_saved(saved: &SavedPlan) -> io::Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(&PlanDocument::of_saved(saved)).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// What a file type is, for "not a regular file" messages.
fn describe(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Writes `plan` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`. A reader never sees half a
/// plan, and a failed write leaves any previous file in place. An existing
/// `path` must be a regular file: a symlink, FIFO or device (`/dev/full`)
/// is refused, never replaced. On Unix the file is created readable by its
/// owner only (mode 0600), like the temporary file it was.
pub fn write(plan: &Plan, path: &Path) -> Result<(), PlanFileError> {
    save(
        &SavedPlan {
            plan: plan.clone(),
            options: None,
            spec_files: None,
        },
        path,
    )
}

/// Writes a saved plan (its choices and spec files included) as [`write`] does.
pub fn save(saved: &SavedPlan, path: &Path) -> Result<(), PlanFileError> {
    let write_err = |source| PlanFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(PlanFileError::NotARegularFile {
                path: path.to_path_buf(),
                kind: describe(meta.file_type()),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let bytes = encode_saved(saved).map_err(write_err)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".wi-plan-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(&bytes).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// Reads and checks a plan file written by [`write`] (or `wi plan --json`).
/// A path that is not a regular file (a FIFO, a device, a directory) is
/// refused before it is opened, so a FIFO never blocks the run.
pub fn read(path: &Path) -> Result<Plan, PlanFileError> {
    Ok(load(path)?.plan)
}

/// Reads and checks a saved plan file, its choices and spec files included.
pub fn load(path: &Path) -> Result<SavedPlan, PlanFileError> {
    let io_err = |source| PlanFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_a_file = |t: FileType| PlanFileError::NotARegularFile {
        path: path.to_path_buf(),
        kind: describe(t),
    };
    // A symlink to a plan file is fine for reading: follow it.
    let meta = std::fs::metadata(path).map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    let file = std::fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    let too_large = || PlanFileError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_PLAN_FILE_BYTES,
    };
    if meta.len() > MAX_PLAN_FILE_BYTES {
        return Err(too_large());
    }
    // The length check above can race a growing file; never read more than
    // the limit.
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_PLAN_FILE_BYTES {
        return Err(too_large());
    }
    decode_saved(&bytes, path)
}

/// Checks and decodes plan file bytes; `path` is only used in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Plan, PlanFileError> {
    Ok(decode_saved(bytes, path)?.plan)
}

/// Checks and decodes plan file bytes, choices and spec files included.
pub fn decode_saved(bytes: &[u8], path: &Path) -> Result<SavedPlan, PlanFileError> {
    let path_buf = || path.to_path_buf();
    let not_a_plan = |detail: &str| PlanFileError::NotAPlan {
        path: path_buf(),
        detail: detail.to_string(),
    };
    let unsupported = |found: String| PlanFileError::UnsupportedVersion {
        path: path_buf(),
        found,
        supported: major(FORMAT_VERSION).unwrap_or(FORMAT_VERSION).to_string(),
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|source| PlanFileError::Malformed {
            path: path_buf(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    let Value::Object(mut document) = value else {
        return Err(not_a_plan("the top level is not a JSON object"));
    };
    // Format 1 wrapped the plan in an envelope versioned by `wi_plan`.
    if let Some(old) = document.get("wi_plan") {
        let found = old.as_str().unwrap_or("1").to_string();
        return Err(unsupported(found));
    }
    let version = match document.get("format_version") {
        Some(Value::String(v)) => v.clone(),
        Some(_) => return Err(not_a_plan("`format_version` is not a string")),
        None => return Err(not_a_plan("there is no `format_version` key")),
    };
    if major(&version).is_none() || major(&version) != major(FORMAT_VERSION) {
        return Err(unsupported(version));
    }
    let expected = match document.shift_remove("checksum") {
        Some(Value::String(c)) => c,
        _ => return Err(not_a_plan("there is no `checksum` string")),
    };
    let actual = checksum(&Value::Object(document.clone()));
    if actual != expected {
        return Err(PlanFileError::ChecksumMismatch {
            path: path_buf(),
            expected,
            actual,
        });
    }
    document.insert("checksum".into(), Value::String(expected));
    let doc: PlanDocument = serde_json::from_value(Value::Object(document)).map_err(|source| {
        PlanFileError::InvalidPlan {
            path: path_buf(),
            source,
        }
    })?;
    doc.saved().map_err(|detail| PlanFileError::Inconsistent {
        path: path_buf(),
        detail,
    })
}

/// `1` of `1.0`; `None` when not `DIGITS.…`.
fn major(version: &str) -> Option<&str> {
    let m = version.split('.').next()?;
    (!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).then_some(m)
}

/// `sha256:HEX` of the canonical form of a plan value: compact JSON with
/// object keys sorted at every level, so the checksum does not depend on
/// formatting or on key order (and survives additive minor versions, whose
/// unknown keys are still covered).
pub fn checksum(plan: &Value) -> String {
    let canonical = canonicalize(plan);
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    format!("{CHECKSUM_PREFIX}{}", hex::encode(Sha256::digest(&bytes)))
}

fn canonicalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(inner) = map.get(k) {
                    out.insert(k.clone(), canonicalize(inner));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_reason_is_in_the_schema_with_its_meaning() {
        let schema: Value = serde_json::from_str(&schema_json()).expect("schema");
        let listed: Vec<(String, String)> = schema["definitions"]["UnknownReason"]["oneOf"]
            .as_array()
            .expect("UnknownReason is a oneOf of documented constants")
            .iter()
            .map(|v| {
                (
                    v["const"].as_str().unwrap_or_default().to_string(),
                    v["description"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let names: Vec<&str> = listed.iter().map(|(c, _)| c.as_str()).collect();
        let codes: Vec<&str> = UnknownReason::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, codes);
        assert!(listed.iter().all(|(_, meaning)| meaning.len() > 10));
    }

    #[test]
    fn unknowns_round_trip_through_a_saved_plan() {
        let plan = Plan {
            format_version: FORMAT_VERSION.into(),
            spec_digest: "sha256:x".into(),
            changes: Vec::new(),
            warnings: Vec::new(),
            fingerprints: Vec::new(),
            unknowns: vec![Unknown {
                scope: UnknownScope::Cluster {
                    cluster: ClusterKey {
                        project: "p".into(),
                        location: "l".into(),
                        name: "c".into(),
                    },
                },
                code: UnknownReason::ServerError,
                reason: "HTTP 503".into(),
                help: "try again later".into(),
                held_back: vec!["a".into()],
            }],
        };
        let bytes = encode(&plan).expect("encode");
        let back = decode(&bytes, Path::new("p.plan")).expect("decode");
        assert_eq!(back, plan);
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("\"server_error\""), "{text}");
    }

    #[test]
    fn major_version_parsing() {
        assert_eq!(major("1.0"), Some("1"));
        assert_eq!(major("12.3"), Some("12"));
        assert_eq!(major("x.1"), None);
        assert_eq!(major(""), None);
    }

    #[test]
    fn checksum_ignores_key_order_but_not_content() {
        let a = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": "x"}});
        let b = serde_json::json!({"b": {"d": "x", "c": [1, 2]}, "a": 1});
        let c = serde_json::json!({"b": {"d": "y", "c": [1, 2]}, "a": 1});
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&c));
        assert!(checksum(&a).starts_with("sha256:"));
    }
}
