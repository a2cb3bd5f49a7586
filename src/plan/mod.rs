//! The plan: a pure function of the validated model and the observed live
//! state. A plan is data — addresses, actions, attribute-level before/after,
//! reasons, dependencies and the fingerprints of the live objects it was
//! computed from — so it can be rendered (`render`), saved, checked for
//! staleness and executed (`apply`) by others.

use serde::{Deserialize, Serialize};

pub use crate::live::Fingerprint;
pub use crate::ownership::Owner;

mod attributes;
mod codes;
mod compute;
mod desired;
mod error;
pub mod file;
mod fresh;
mod resource;
pub use attributes::{AttributeName, Attributes};
pub use codes::{ReasonCode, UnknownCode, UnknownReason, WarningCode};
pub use compute::{PlanOptions, compute};
pub(crate) use desired::ClusterCreateValues;
pub use error::{PlanError, PlanProblem};
pub use fresh::{
    ChangeDifference, DEFAULT_MAX_REMOVALS_PERCENT, MassRemoval, MovedInput, Movement, StalePlan,
};
pub use resource::{Group, Resource};

/// Version of the saved / JSON plan format. Minor bumps are additive.
pub const FORMAT_VERSION: &str = "2.0";

/// What happens to one resource. A closed set, as in Terraform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Delete,
}

impl Action {
    /// Terraform's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
        }
    }
}

/// Why a change is needed: a stable code plus a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// `missing`, `drift`, `not_in_spec`, `declared_absent`, `orphan_pruned`, `in_sync`, ...
    pub code: ReasonCode,
    pub message: String,
}

/// A warning attached to a change or the whole plan (disruption, delays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// `rolls_nodes`, `revocation_delay`, `identity_sameness`, `orphan`, `host_network`, ...
    pub code: WarningCode,
    pub message: String,
    /// The address it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: String,
    pub resource: Resource,
    pub action: Action,
    /// Attributes as they are (`None` when the resource does not exist).
    pub before: Option<Attributes>,
    /// Attributes as they will be (`None` when the resource goes away).
    pub after: Option<Attributes>,
    pub reason: Reason,
    /// Addresses this change must wait for during apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The owner the change is made for: the marker it writes, the field
    /// manager (`wi/O`) and owner label of its Kubernetes writes. Omitted
    /// for the unnamed owner.
    #[serde(default, skip_serializing_if = "Owner::is_unnamed")]
    pub owner: Owner,
    /// How a Kubernetes write is made beyond its attributes (never diffed).
    #[serde(default, skip_serializing_if = "KubeWrite::is_plain")]
    pub kube: KubeWrite,
    /// Why an object this change writes to or relies on is not its owner's
    /// (a KSA Helm made that `wi` only annotates, or another owner's): the
    /// human plan lists it under "Exists, not managed by wi". Never diffed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_managed: Option<String>,
}

/// The parts of a Kubernetes write that are not attributes: the
/// informational `wi.dev/declared-in` annotation, and the field managers
/// whose fields this write takes over and then releases (an older `wi`'s
/// manager `wi`, when a named owner claims its KSA: an empty apply as that
/// manager after this owner's apply).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KubeWrite {
    /// The spec file written into the KSA's `wi.dev/declared-in` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_in: Option<String>,
    /// Field managers whose fields this write takes over and then releases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_managers: Vec<String>,
}

impl KubeWrite {
    /// Nothing beyond the attributes.
    pub fn is_plain(&self) -> bool {
        self.declared_in.is_none() && self.release_managers.is_empty()
    }
}

/// The whole plan. `changes` is sorted by [`Resource::sort_key`] and includes
/// no-op entries for declared resources already in sync (the human renderer
/// hides them; JSON keeps them, as Terraform does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// sha256 of the spec file the plan was made from.
    pub spec_digest: String,
    pub changes: Vec<ResourceChange>,
    /// Plan-level warnings (orphans not pruned, identity sameness, ...).
    pub warnings: Vec<Warning>,
    /// Live inputs, sorted by source.
    pub fingerprints: Vec<Fingerprint>,
    /// Projects and clusters that could not be read, sorted: nothing is
    /// planned in them, nor anything that depends on them. `wi plan` exits
    /// 1 and `wi apply` refuses while there are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<Unknown>,
}

/// What an unknown is: a project or a cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnknownScope {
    Project { project: String },
    Cluster { cluster: crate::ids::ClusterKey },
}

impl std::fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnknownScope::Project { project } => write!(f, "project {project}"),
            UnknownScope::Cluster { cluster } => write!(f, "cluster {cluster}"),
        }
    }
}

/// A project or cluster the plan could not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    pub scope: UnknownScope,
    pub code: UnknownReason,
    /// The error, e.g. `reading Kubernetes objects: transport error: ...`.
    pub reason: String,
    /// What to do about it.
    pub help: String,
    /// Changes elsewhere that are not planned because they depend on it
    /// (an annotation waiting for a binding in an unknown project, a
    /// removal of a binding whose KSA may run in an unknown cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<String>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    /// Counts of create, update and delete changes (no-ops are not counted).
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    /// True when a project or cluster could not be read.
    pub fn has_unknowns(&self) -> bool {
        !self.unknowns.is_empty()
    }

    /// True when applying would change something.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::NoOp)
    }

    /// The changes that do something, in order.
    pub fn actionable(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }
}
