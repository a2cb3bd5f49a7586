//! Drift: what changed outside `wi`. A drift report is a read-only plan
//! turned into one item per difference between the spec and the live world
//! (what, where, expected vs found, and who where the API tells: the field
//! managers of a KSA's annotation, the etag of a policy), with a summary a
//! monitoring system can parse and an exit code (0 none, 2 drift, 1 unknowns).
//!
//! A fleet too big for one process is split with [`Shard`]s: each shard
//! reads and reports only its part, and [`merge`] combines the shard
//! reports into the report one unsharded run would have made.
//!
//! Pure: nothing here does I/O (the CLI reads, plans and prints).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::{ClusterKey, gsa_email};
use crate::live::LiveState;
use crate::plan::{Action, Plan, Resource, UnknownScope};
use crate::spec::{Model, Origin};

mod render;
pub use render::text;
pub(crate) use render::{headline, ordered, place, values, who as who_text};

/// Version of the drift report format. Minor bumps only add keys.
pub const FORMAT_VERSION: &str = "1.0";

/// Exit code of a report without drift.
pub const EXIT_NONE: u8 = 0;
/// Exit code of a report with drift (and every project and cluster read).
pub const EXIT_DRIFT: u8 = 2;
/// Exit code of a partial report (a project or cluster could not be read).
pub const EXIT_PARTIAL: u8 = 1;

/// One shard of a fleet: `index` of `count` (0-based, as Kubernetes'
/// `JOB_COMPLETION_INDEX`).
///
/// The split: a cluster belongs to shard `h("project/location/cluster") %
/// count`, and what lives in a project (its accounts, their policies and
/// bindings, project grants, the credentials API) to shard `h("project") %
/// count`, where `h` is the first 8 bytes (big-endian) of SHA-256: stable
/// across runs, machines and `wi` versions. A KSA is its cluster's; a
/// binding on an account is the account's project's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    /// 0-based index of this shard.
    pub index: u32,
    /// How many shards the fleet is split into (at least 1).
    pub count: u32,
}

/// A `--shard` value that is not `I/N` with `0 <= I < N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shard `{0}`: expected I/N with 0 <= I < N (for example 0/4)")]
pub struct BadShard(pub String);

impl FromStr for Shard {
    type Err = BadShard;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn stable_hash(text: &str) -> u64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

impl Shard {
    /// The shard, of `count`, a cluster belongs to.
    pub fn of_cluster(key: &ClusterKey, count: u32) -> u32 {
        (stable_hash(&key.to_string()) % u64::from(count.max(1))) as u32
    }

    /// The shard, of `count`, a project's own items belong to.
    pub fn of_project(project: &str, count: u32) -> u32 {
        (stable_hash(project) % u64::from(count.max(1))) as u32
    }

    /// Whether this shard reads and reports `key`.
    pub fn has_cluster(&self, key: &ClusterKey) -> bool {
        Self::of_cluster(key, self.count) == self.index
    }

    /// Whether this shard reads and reports `project`'s own items.
    pub fn has_project(&self, project: &str) -> bool {
        Self::of_project(project, self.count) == self.index
    }

    /// Whether a change of `resource` is this shard's to report.
    pub fn has(&self, resource: &Resource) -> bool {
        match resource {
            Resource::Cluster { cluster }
            | Resource::NodePool { cluster, .. }
            | Resource::Namespace { cluster, .. }
            | Resource::KubernetesServiceAccount { cluster, .. } => self.has_cluster(cluster),
            Resource::ProjectService { project, .. }
            | Resource::ServiceAccount { project, .. }
            | Resource::ServiceAccountIamMember { project, .. }
            | Resource::ProjectIamMember { project, .. } => self.has_project(project),
        }
    }

    /// Whether an unknown is this shard's to report.
    pub fn has_unknown(&self, scope: &UnknownScope) -> bool {
        match scope {
            UnknownScope::Cluster { cluster } => self.has_cluster(cluster),
            UnknownScope::Project { project } => self.has_project(project),
        }
    }

    /// The part of `model` this shard reads and plans: its clusters, its
    /// projects, every declared account (so a mapping's account is known
    /// as declared), and the mappings whose cluster or account project is
    /// this shard's (a binding's declared members must all be known to the
    /// shard of the account's project). The plan of this model, filtered by
    /// [`Shard::has`], is this shard's part of the unsharded plan.
    pub fn model(&self, model: &Model) -> Model {
        let mut out = model.clone();
        out.clusters.retain(|c| self.has_cluster(&c.key));
        out.projects.retain(|p| self.has_project(p));
        out.mappings
            .retain(|m| self.has_cluster(&m.cluster) || self.has_project(&m.gsa_project));
        out.absent.retain(|a| self.has_project(&a.gsa_project));
        out
    }
}

/// Where a drifted item is.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The Google project (of the cluster, or of the account).
    pub project: String,
    /// The cluster, `project/location/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Kubernetes service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ksa: Option<String>,
    /// The Google service account's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The IAM member of a binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// Who changed it, as far as the API tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Who {
    /// The Kubernetes field managers that own the KSA's
    /// `iam.gke.io/gcp-service-account` annotation (`kubectl-edit`, `helm`,
    /// `wi/OWNER`), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managers: Vec<String>,
    /// What was read (`iam_policy["sa@p.iam.gserviceaccount.com"]`).
    pub source: String,
    /// The version seen: an IAM policy's etag, a Kubernetes
    /// resourceVersion, a content hash, or `absent`.
    pub version: String,
}

/// One difference between the spec and the live world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftItem {
    /// The plan address (`kubernetes_service_account["p/l/c/ns/ksa"]`).
    pub address: String,
    /// The resource type (`kubernetes_service_account`, `service_account_iam_member`, ...).
    pub kind: String,
    /// What `wi apply` would do: `create`, `update` or `delete`.
    pub action: String,
    /// Why: the plan's reason code (`missing`, `drift`, `not_in_spec`, ...).
    pub reason: String,
    /// The plan's sentence for humans.
    pub message: String,
    pub location: Location,
    /// The attributes the spec wants that differ (absent when the resource should not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<BTreeMap<String, Value>>,
    /// The attributes found that differ (absent when the resource does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<Who>,
    /// Where the spec declares it (file and 1-based line), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<SpecOrigin>,
    /// Whether applying is destructive (`delete`) or disruptive (a warning
    /// such as `rolls_nodes`), for ordering.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disruptive: bool,
}

/// The action as JSON names it.
fn action_name(action: Action) -> &'static str {
    match action {
        Action::NoOp => "no-op",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    }
}

/// Live text made safe for one line of a log or a comment: control and
/// bidirectional-override characters become `\u{..}` escapes.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(' '),
            '\r' => {}
            c if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A spec file and line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpecOrigin {
    pub file: String,
    pub line: usize,
}

impl From<&Origin> for SpecOrigin {
    fn from(o: &Origin) -> Self {
        SpecOrigin {
            file: o.file.clone(),
            line: o.line,
        }
    }
}

/// A project or cluster that could not be read: drift there is unknown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnknownItem {
    /// `project` or `cluster`.
    pub kind: String,
    /// The project id, or the cluster as `project/location/name`.
    pub name: String,
    /// The project of the scope.
    pub project: String,
    /// The stable code of why (`permission_denied`, `unreachable`, ...).
    pub code: String,
    pub reason: String,
    pub help: String,
}

/// Counts a monitoring system reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftSummary {
    /// How many items drifted.
    pub drifted: usize,
    /// How many projects or clusters could not be read.
    pub unknown: usize,
    /// Items by resource type.
    pub by_kind: BTreeMap<String, usize>,
    /// Items by reason code.
    pub by_reason: BTreeMap<String, usize>,
    /// Items by project.
    pub by_project: BTreeMap<String, usize>,
    /// Items by cluster (`project/location/name`; project-level items are not counted here).
    pub by_cluster: BTreeMap<String, usize>,
    /// The exit code of the run: 0 no drift, 2 drift, 1 partial (unknowns).
    pub exit_code: u8,
}

/// The drift report: `wi drift --format json`, and what `--merge` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "wi drift report")]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// `MAJOR.MINOR` of this format. Minor versions only add keys.
    pub format_version: String,
    /// The version of wi that made the report.
    pub wi_version: String,
    /// The digest of the spec set the report was made from.
    pub spec_digest: String,
    /// The shard this report covers; absent for a whole fleet (unsharded, or merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// For a merged report: how many shard reports it combines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_shards: Option<u32>,
    pub summary: DriftSummary,
    /// Drifted items, sorted by address.
    pub items: Vec<DriftItem>,
    /// Projects and clusters that could not be read, sorted.
    #[serde(default)]
    pub unknowns: Vec<UnknownItem>,
}

impl DriftReport {
    /// The exit code: 1 with unknowns, else 2 with drift, else 0.
    pub fn exit_code(&self) -> u8 {
        self.summary.exit_code
    }
}

/// The JSON Schema of the drift report (`schema/drift-report.schema.json`).
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<DriftReport>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// The drift of `plan` (made from `model` against `live`), limited to
/// `shard` when given.
pub fn report(model: &Model, live: &LiveState, plan: &Plan, shard: Option<Shard>) -> DriftReport {
    let versions: BTreeMap<&str, &str> = plan
        .fingerprints
        .iter()
        .map(|f| (f.source.as_str(), f.version.as_str()))
        .collect();
    let items: Vec<DriftItem> = plan
        .actionable()
        .filter(|c| shard.is_none_or(|s| s.has(&c.resource)))
        .map(|c| {
            let (expected, found) = differing(c.after.as_ref(), c.before.as_ref());
            DriftItem {
                address: c.address.clone(),
                kind: c.resource.type_name().to_string(),
                action: action_name(c.action).to_string(),
                reason: c.reason.code.as_str().to_string(),
                message: c.reason.message.clone(),
                location: location(&c.resource),
                expected,
                found,
                who: who(&c.resource, live, &versions),
                origin: origin(model, &c.resource),
                disruptive: c.action == Action::Delete
                    || c.warnings.iter().any(|w| {
                        matches!(
                            w.code,
                            crate::plan::WarningCode::RollsNodes
                                | crate::plan::WarningCode::RunningPodsLoseAccess
                                | crate::plan::WarningCode::DisablesWorkloadIdentity
                        )
                    }),
            }
        })
        .collect();
    let unknowns: Vec<UnknownItem> = plan
        .unknowns
        .iter()
        .filter(|u| shard.is_none_or(|s| s.has_unknown(&u.scope)))
        .map(|u| {
            let (kind, name, project) = match &u.scope {
                UnknownScope::Project { project } => ("project", project.clone(), project.clone()),
                UnknownScope::Cluster { cluster } => {
                    ("cluster", cluster.to_string(), cluster.project.clone())
                }
            };
            UnknownItem {
                kind: kind.to_string(),
                name,
                project,
                code: u.code.to_string(),
                reason: clean(&u.reason),
                help: clean(&u.help),
            }
        })
        .collect();
    finish(DriftReport {
        format_version: FORMAT_VERSION.to_string(),
        wi_version: crate::VERSION.to_string(),
        spec_digest: plan.spec_digest.clone(),
        shard,
        merged_shards: None,
        summary: DriftSummary::default(),
        items,
        unknowns,
    })
}

/// Sorts and recomputes the summary.
fn finish(mut r: DriftReport) -> DriftReport {
    r.items.sort_by(|a, b| a.address.cmp(&b.address));
    r.unknowns.sort();
    let mut s = DriftSummary {
        drifted: r.items.len(),
        unknown: r.unknowns.len(),
        ..Default::default()
    };
    for i in &r.items {
        *s.by_kind.entry(i.kind.clone()).or_default() += 1;
        *s.by_reason.entry(i.reason.clone()).or_default() += 1;
        *s.by_project.entry(i.location.project.clone()).or_default() += 1;
        if let Some(c) = &i.location.cluster {
            *s.by_cluster.entry(c.clone()).or_default() += 1;
        }
    }
    s.exit_code = if !r.unknowns.is_empty() {
        EXIT_PARTIAL
    } else if !r.items.is_empty() {
        EXIT_DRIFT
    } else {
        EXIT_NONE
    };
    r.summary = s;
    r
}

/// Attribute values by name.
type Values = BTreeMap<String, Value>;

/// Only the attributes that differ, on each side.
fn differing(
    after: Option<&crate::plan::Attributes>,
    before: Option<&crate::plan::Attributes>,
) -> (Option<Values>, Option<Values>) {
    match (after, before) {
        (Some(a), Some(b)) => {
            let keys: BTreeSet<&str> = a.keys().chain(b.keys()).collect();
            let diff: Vec<&str> = keys.into_iter().filter(|k| a.get(k) != b.get(k)).collect();
            let pick = |m: &crate::plan::Attributes| {
                diff.iter()
                    .map(|k| (k.to_string(), m.get(k).cloned().unwrap_or(Value::Null)))
                    .collect()
            };
            (Some(pick(a)), Some(pick(b)))
        }
        (a, b) => (a.map(all_values), b.map(all_values)),
    }
}

/// All the attributes of a side, by name.
fn all_values(attributes: &crate::plan::Attributes) -> Values {
    attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// `serviceAccount:P.svc.id.goog[NS/KSA]` → (NS, KSA).
fn ksa_of_member(member: &str) -> Option<(String, String)> {
    let inner = member
        .strip_prefix("serviceAccount:")?
        .split_once(".svc.id.goog[")?
        .1
        .strip_suffix(']')?;
    let (ns, ksa) = inner.split_once('/')?;
    Some((ns.to_string(), ksa.to_string()))
}

fn location(resource: &Resource) -> Location {
    let cluster_loc = |c: &ClusterKey| Location {
        project: c.project.clone(),
        cluster: Some(c.to_string()),
        ..Default::default()
    };
    match resource {
        Resource::ProjectService { project, .. } => Location {
            project: project.clone(),
            ..Default::default()
        },
        Resource::Cluster { cluster } | Resource::NodePool { cluster, .. } => cluster_loc(cluster),
        Resource::Namespace { cluster, name } => Location {
            namespace: Some(name.clone()),
            ..cluster_loc(cluster)
        },
        Resource::KubernetesServiceAccount {
            cluster,
            namespace,
            name,
        } => Location {
            namespace: Some(namespace.clone()),
            ksa: Some(name.clone()),
            ..cluster_loc(cluster)
        },
        Resource::ServiceAccount {
            project,
            account_id,
        } => Location {
            project: project.clone(),
            account: Some(gsa_email(project, account_id)),
            ..Default::default()
        },
        Resource::ServiceAccountIamMember {
            project,
            email,
            member,
            ..
        } => {
            let ksa = ksa_of_member(member);
            Location {
                project: project.clone(),
                account: Some(email.clone()),
                member: Some(member.clone()),
                namespace: ksa.as_ref().map(|k| k.0.clone()),
                ksa: ksa.map(|k| k.1),
                ..Default::default()
            }
        }
        Resource::ProjectIamMember {
            project, member, ..
        } => Location {
            project: project.clone(),
            account: member.strip_prefix("serviceAccount:").map(str::to_string),
            member: Some(member.clone()),
            ..Default::default()
        },
    }
}

fn who(resource: &Resource, live: &LiveState, versions: &BTreeMap<&str, &str>) -> Option<Who> {
    let source = match resource {
        Resource::ProjectService { project, service } => {
            format!("service[\"{project}/{service}\"]")
        }
        Resource::Cluster { cluster } | Resource::NodePool { cluster, .. } => {
            format!("cluster[\"{cluster}\"]")
        }
        Resource::Namespace { cluster, name } => {
            format!("kubernetes_namespace[\"{cluster}/{name}\"]")
        }
        Resource::KubernetesServiceAccount {
            cluster,
            namespace,
            name,
        } => format!("kubernetes_service_account[\"{cluster}/{namespace}/{name}\"]"),
        Resource::ServiceAccount {
            project,
            account_id,
        } => format!("service_account[\"{}\"]", gsa_email(project, account_id)),
        Resource::ServiceAccountIamMember { email, .. } => format!("iam_policy[\"{email}\"]"),
        Resource::ProjectIamMember { project, .. } => format!("project_iam_policy[\"{project}\"]"),
    };
    let managers = match resource {
        Resource::KubernetesServiceAccount {
            cluster,
            namespace,
            name,
        } => live
            .clusters
            .get(cluster)
            .and_then(|c| c.kube.as_ref())
            .and_then(|k| k.service_accounts.get(&(namespace.clone(), name.clone())))
            .map(|sa| {
                let fields = sa.ksa_fields();
                let mut m: Vec<String> = fields.annotation_others.clone();
                m.extend(
                    fields
                        .annotation_owners()
                        .into_iter()
                        .map(|o| o.field_manager()),
                );
                m.sort();
                m.dedup();
                m.into_iter().map(|s| clean(&s)).collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let version = versions.get(source.as_str())?.to_string();
    Some(Who {
        managers,
        source,
        version,
    })
}

/// Where the spec declares what a change is about: the cluster, the
/// mapping of a KSA or binding, the `absent` entry, the account.
pub fn origin(model: &Model, resource: &Resource) -> Option<SpecOrigin> {
    let found: Option<&Origin> = match resource {
        Resource::Cluster { cluster } | Resource::NodePool { cluster, .. } => model
            .clusters
            .iter()
            .find(|c| &c.key == cluster)
            .map(|c| &c.origin),
        Resource::Namespace { cluster, name } => model
            .mappings
            .iter()
            .find(|m| &m.cluster == cluster && &m.namespace == name)
            .map(|m| &m.origin),
        Resource::KubernetesServiceAccount {
            cluster,
            namespace,
            name,
        } => model
            .mappings
            .iter()
            .find(|m| &m.cluster == cluster && &m.namespace == namespace && &m.ksa == name)
            .map(|m| &m.origin),
        Resource::ServiceAccount {
            project,
            account_id,
        } => model
            .service_accounts
            .iter()
            .find(|g| &g.project == project && &g.account_id == account_id)
            .map(|g| &g.origin),
        Resource::ServiceAccountIamMember { email, member, .. } => model
            .mappings
            .iter()
            .find(|m| &m.gsa_email == email && &m.member() == member)
            .map(|m| &m.origin)
            .or_else(|| {
                model
                    .absent
                    .iter()
                    .find(|a| &a.gsa_email == email && &a.member == member)
                    .map(|a| &a.origin)
            })
            .or_else(|| {
                model
                    .service_accounts
                    .iter()
                    .find(|g| &g.email() == email)
                    .map(|g| &g.origin)
            }),
        Resource::ProjectIamMember { member, .. } => model
            .service_accounts
            .iter()
            .find(|g| member.ends_with(&g.email()))
            .map(|g| &g.origin),
        Resource::ProjectService { .. } => None,
    };
    found.filter(|o| !o.file.is_empty()).map(SpecOrigin::from)
}

/// Why shard reports cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge")]
    Empty,
    #[error("report {index} has format version {found}, report 1 has {expected}")]
    FormatVersion {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("report {index} was made by wi {found}, report 1 by wi {expected}")]
    WiVersion {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("report {index} was made from another spec ({found}) than report 1 ({expected})")]
    Spec {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("report {index} is not a shard report (made without --shard, or already merged)")]
    NotAShard { index: usize },
    #[error("report {index} is one of {found} shards, report 1 one of {expected}")]
    ShardCount {
        index: usize,
        expected: u32,
        found: u32,
    },
    #[error("shard {shard} is given twice (reports {first} and {second})")]
    Duplicate {
        shard: Shard,
        first: usize,
        second: usize,
    },
    #[error("missing shard{}: {}", if .missing.len() == 1 { "" } else { "s" }, .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Missing { missing: Vec<String> },
}

/// Combines the reports of every shard of one run into the report of the
/// whole fleet (its summary and exit code are the unsharded run's).
/// Reports are numbered from 1 in errors, in the order given.
pub fn merge(reports: Vec<DriftReport>) -> Result<DriftReport, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    let count = first.shard.ok_or(MergeError::NotAShard { index: 1 })?.count;
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        let index = i + 1;
        let major = |v: &str| v.split('.').next().unwrap_or_default().to_string();
        if major(&r.format_version) != major(&first.format_version)
            || major(&r.format_version) != major(FORMAT_VERSION)
        {
            return Err(MergeError::FormatVersion {
                index,
                expected: first.format_version.clone(),
                found: r.format_version.clone(),
            });
        }
        if r.wi_version != first.wi_version {
            return Err(MergeError::WiVersion {
                index,
                expected: first.wi_version.clone(),
                found: r.wi_version.clone(),
            });
        }
        if r.spec_digest != first.spec_digest {
            return Err(MergeError::Spec {
                index,
                expected: first.spec_digest.clone(),
                found: r.spec_digest.clone(),
            });
        }
        let shard = r.shard.ok_or(MergeError::NotAShard { index })?;
        if shard.count != count {
            return Err(MergeError::ShardCount {
                index,
                expected: count,
                found: shard.count,
            });
        }
        if let Some(prev) = seen.insert(shard.index, index) {
            return Err(MergeError::Duplicate {
                shard,
                first: prev,
                second: index,
            });
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen.contains_key(i))
        .map(|index| Shard { index, count }.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing });
    }
    let mut merged = DriftReport {
        format_version: FORMAT_VERSION.to_string(),
        wi_version: first.wi_version.clone(),
        spec_digest: first.spec_digest.clone(),
        shard: None,
        merged_shards: Some(count),
        summary: DriftSummary::default(),
        items: Vec::new(),
        unknowns: Vec::new(),
    };
    for r in reports {
        merged.items.extend(r.items);
        merged.unknowns.extend(r.unknowns);
    }
    Ok(finish(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_out_of_range() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "0/0", "1", "a/b", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_split_is_stable() {
        // Pinned: a change of hash would move every fleet's shards.
        let key = ClusterKey {
            project: "p".into(),
            location: "l".into(),
            name: "c".into(),
        };
        assert_eq!(stable_hash("p/l/c"), stable_hash(&key.to_string()));
        assert_eq!(Shard::of_project("p", 1), 0);
        let spread: BTreeSet<u32> = (0..64)
            .map(|i| Shard::of_project(&format!("project-{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }

    #[test]
    fn members_name_their_ksa() {
        assert_eq!(
            ksa_of_member("serviceAccount:p.svc.id.goog[ns/app]"),
            Some(("ns".into(), "app".into()))
        );
        assert_eq!(ksa_of_member("user:a@b.c"), None);
    }
}
