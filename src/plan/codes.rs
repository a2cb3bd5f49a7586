//! Why a change is planned and what a warning is about, as closed sets.
//!
//! The JSON form (`action_reason`, `warnings[].code`) is the snake_case name
//! of each variant; those strings are a stable contract for CI tooling, so a
//! variant is never renamed. The human and Markdown titles of warnings come
//! from [`WarningCode::title`] and nowhere else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a change is (or is not) needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Live state is as declared.
    InSync,
    /// The declared object does not exist.
    Missing,
    /// The object exists but differs from the spec.
    Drift,
    /// `adopt: true` takes over an account `wi` did not create.
    Adopt,
    /// The account is not `wi`'s: only bindings are added.
    NotOwned,
    /// `wi` owns it and the spec no longer declares it.
    NotInSpec,
    /// The spec lists the member under `absent`.
    DeclaredAbsent,
    /// `wi` owns it, the spec dropped it, and `--prune` was given.
    OrphanPruned,
    /// The account is disabled: it mints no tokens, so its mappings are broken.
    Disabled,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// Switching a node pool to GKE_METADATA recreates its nodes.
    RollsNodes,
    /// A removed binding keeps working for tokens already issued (30 minutes).
    RevocationDelay,
    /// Tokens of a deleted account keep working until they expire (1 hour).
    AccountRevocationDelay,
    /// `P.svc.id.goog[NS/KSA]` is one identity for every cluster of P.
    IdentitySameness,
    /// An owned account left the spec and `--prune` was not given.
    Orphan,
    /// Pods of a mapped KSA run on the host network.
    HostNetwork,
    /// An account the spec declares is not `wi`'s.
    NotOwned,
    /// Another field manager owns the KSA annotation.
    FieldConflict,
    /// The spec turns Workload Identity off on a cluster.
    DisablesWorkloadIdentity,
    /// A mapping left the spec, but its binding sits on an account this
    /// owner does not manage: the binding stays until an `absent` entry revokes it.
    BindingRemains,
    /// A KSA another field manager co-manages is released, not deleted, by `--prune`.
    ReleasedNotDeleted,
    /// A pruned account's grants outside its project stay as `deleted:` members.
    GrantsElsewhere,
    /// `--target` pulled in changes a targeted change depends on.
    DependenciesIncluded,
    /// Running pods use a KSA that loses its binding or annotation.
    RunningPodsLoseAccess,
    /// An account a mapping names is disabled and `wi` does not own it.
    DisabledAccount,
    /// A mapping accepts a risk (`accept:`) whose warning is silenced: the
    /// plan still says what was accepted.
    AcceptedRisk,
    /// A direct grant goes to a principal set: every KSA of a namespace (in
    /// every cluster of the pool) or of a cluster gets the role.
    BroadPrincipalSet,
    /// A KSA moves between GSA mode and direct mode: the old access keeps
    /// working for cached tokens (up to 30 minutes), and a left-over GSA
    /// annotation makes pods impersonate the account.
    ModeMigration,
}

impl ReasonCode {
    /// The stable snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InSync => "in_sync",
            ReasonCode::Missing => "missing",
            ReasonCode::Drift => "drift",
            ReasonCode::Adopt => "adopt",
            ReasonCode::NotOwned => "not_owned",
            ReasonCode::NotInSpec => "not_in_spec",
            ReasonCode::DeclaredAbsent => "declared_absent",
            ReasonCode::OrphanPruned => "orphan_pruned",
            ReasonCode::Disabled => "disabled",
        }
    }

    /// Every code (the plan JSON Schema lists each with its meaning).
    pub const ALL: [ReasonCode; 9] = [
        ReasonCode::InSync,
        ReasonCode::Missing,
        ReasonCode::Drift,
        ReasonCode::Adopt,
        ReasonCode::NotOwned,
        ReasonCode::NotInSpec,
        ReasonCode::DeclaredAbsent,
        ReasonCode::OrphanPruned,
        ReasonCode::Disabled,
    ];
}

impl WarningCode {
    /// The stable snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::RollsNodes => "rolls_nodes",
            WarningCode::RevocationDelay => "revocation_delay",
            WarningCode::AccountRevocationDelay => "account_revocation_delay",
            WarningCode::IdentitySameness => "identity_sameness",
            WarningCode::Orphan => "orphan",
            WarningCode::HostNetwork => "host_network",
            WarningCode::NotOwned => "not_owned",
            WarningCode::FieldConflict => "field_conflict",
            WarningCode::DisablesWorkloadIdentity => "disables_workload_identity",
            WarningCode::BindingRemains => "binding_remains",
            WarningCode::ReleasedNotDeleted => "released_not_deleted",
            WarningCode::GrantsElsewhere => "grants_elsewhere",
            WarningCode::DependenciesIncluded => "dependencies_included",
            WarningCode::RunningPodsLoseAccess => "running_pods_lose_access",
            WarningCode::DisabledAccount => "disabled_account",
            WarningCode::AcceptedRisk => "accepted_risk",
            WarningCode::BroadPrincipalSet => "broad_principal_set",
            WarningCode::ModeMigration => "mode_migration",
        }
    }

    /// The short title a rendered warning carries.
    pub fn title(self) -> &'static str {
        match self {
            WarningCode::RollsNodes => "Node pool update recreates every node",
            WarningCode::RevocationDelay => "Removed access keeps working for up to 30 minutes",
            WarningCode::AccountRevocationDelay => {
                "Tokens of a deleted account keep working for up to 1 hour"
            }
            WarningCode::IdentitySameness => "Workload identity sameness",
            WarningCode::Orphan => "Service account no longer in the spec",
            WarningCode::HostNetwork => "Host-network pods bypass Workload Identity",
            WarningCode::NotOwned => "Not owned",
            WarningCode::FieldConflict => "Field conflict",
            WarningCode::DisablesWorkloadIdentity => "Disables workload identity",
            WarningCode::BindingRemains => "The binding of a removed mapping stays",
            WarningCode::ReleasedNotDeleted => "Co-managed KSA released, not deleted",
            WarningCode::GrantsElsewhere => "Grants of a pruned account elsewhere stay",
            WarningCode::DependenciesIncluded => "Included because a target depends on it",
            WarningCode::RunningPodsLoseAccess => "Running pods lose their Google identity",
            WarningCode::DisabledAccount => "Disabled service account",
            WarningCode::AcceptedRisk => "Accepted risk",
            WarningCode::BroadPrincipalSet => "Roles granted to a whole principal set",
            WarningCode::ModeMigration => "A KSA moves between GSA mode and direct mode",
        }
    }

    /// Every code (the plan JSON Schema lists each with its meaning).
    pub const ALL: [WarningCode; 18] = [
        WarningCode::RollsNodes,
        WarningCode::RevocationDelay,
        WarningCode::AccountRevocationDelay,
        WarningCode::IdentitySameness,
        WarningCode::Orphan,
        WarningCode::HostNetwork,
        WarningCode::NotOwned,
        WarningCode::FieldConflict,
        WarningCode::DisablesWorkloadIdentity,
        WarningCode::BindingRemains,
        WarningCode::ReleasedNotDeleted,
        WarningCode::GrantsElsewhere,
        WarningCode::DependenciesIncluded,
        WarningCode::RunningPodsLoseAccess,
        WarningCode::DisabledAccount,
        WarningCode::AcceptedRisk,
        WarningCode::BroadPrincipalSet,
        WarningCode::ModeMigration,
    ];
}

/// Why a project or cluster is unknown to the plan (it could not be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    /// The API could not be reached: connection refused, DNS, TLS, no answer.
    Unreachable,
    /// The API refused the identity wi runs as (HTTP 401 or 403).
    Forbidden,
    /// The API failed (HTTP 5xx: maintenance, an upgrade, an overload).
    ServerError,
    /// The client configuration is wrong: a kubeContext that does not exist, no endpoint.
    Configuration,
    /// The API answered something wi could not use.
    ReadFailed,
}

impl UnknownReason {
    /// The stable snake_case name (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::Unreachable => "unreachable",
            UnknownReason::Forbidden => "forbidden",
            UnknownReason::ServerError => "server_error",
            UnknownReason::Configuration => "configuration",
            UnknownReason::ReadFailed => "read_failed",
        }
    }

    /// Every code (the plan JSON Schema lists each with its meaning).
    pub const ALL: [UnknownReason; 5] = [
        UnknownReason::Unreachable,
        UnknownReason::Forbidden,
        UnknownReason::ServerError,
        UnknownReason::Configuration,
        UnknownReason::ReadFailed,
    ];
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown reason or warning code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown code {0:?}")]
pub struct UnknownCode(pub String);

impl FromStr for ReasonCode {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_string()))
    }
}

impl FromStr for WarningCode {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_string()))
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for WarningCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_are_the_snake_case_names() {
        for c in ReasonCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(c.as_str().parse::<ReasonCode>(), Ok(c));
        }
        for c in WarningCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(c.as_str().parse::<WarningCode>(), Ok(c));
        }
        assert!("foreign_members".parse::<WarningCode>().is_err());
        for c in UnknownReason::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
