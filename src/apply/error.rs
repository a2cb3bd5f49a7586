//! Why one step of an apply failed, with the client errors inside (never
//! flattened to text before the renderer): the CLI shows it in the summary,
//! and the types let apply decide (a field conflict gets its hint) without
//! reading error messages.

use crate::gcp::GcpError;
use crate::ids::ClusterKey;
use crate::kube::KubeError;
use crate::plan::Action;

/// The error of one apply step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A Google API call failed (after its retries).
    #[error(transparent)]
    Gcp(#[from] GcpError),
    /// A Kubernetes API call failed (after its retries).
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// Another field manager owns a field `wi` applies.
    #[error(
        "{source}\n  another field manager owns the annotation; re-run with --force-conflicts to take it over"
    )]
    FieldConflict {
        #[source]
        source: KubeError,
    },
    /// The cluster's Kubernetes API could not be reached.
    #[error("connecting to the Kubernetes API of {cluster}: {source}")]
    Connect {
        cluster: ClusterKey,
        #[source]
        source: KubeError,
    },
    /// The cluster a Kubernetes step needs does not exist.
    #[error("cluster {cluster} does not exist")]
    ClusterMissing { cluster: ClusterKey },
    /// The cluster disappeared while apply was changing it.
    #[error("cluster {cluster} no longer exists")]
    ClusterGone { cluster: ClusterKey },
    /// An account `wi` was to create appeared, and it is not `wi`'s.
    #[error("{email} was created by someone else after the plan was made; re-run plan")]
    RacedCreate { email: String },
    /// IAM refused one member of a policy (its account is gone); the
    /// policy's other edits were written without it.
    #[error("IAM refused {member} on {policy} (the policy's other members were written): {source}")]
    MemberRefused {
        member: String,
        policy: String,
        #[source]
        source: std::sync::Arc<GcpError>,
    },
    /// The plan holds a change the planner never makes.
    #[error("wi cannot {action:?} {address} (internal error: the planner never plans this)")]
    Unsupported { action: Action, address: String },
    /// A step ended without reporting (a panic in a step).
    #[error("the step did not report (internal error)")]
    NotReported,
}

impl StepError {
    /// What to do about a refusal (401/403), naming `identity` and the
    /// permission the call needs; `None` for other errors.
    pub fn denied_help(&self, identity: &str) -> Option<String> {
        match self {
            StepError::Gcp(e) => e.denied_help(identity),
            StepError::Kube(e)
            | StepError::FieldConflict { source: e }
            | StepError::Connect { source: e, .. } => e.denied_help(identity, None),
            _ => None,
        }
    }
}
