//! The names every layer shares: how a cluster is identified, how a Google
//! service account's email is built and taken apart, how a Kubernetes service
//! account is named as an IAM member, and a project's workload pool.
//!
//! These sit at the bottom of the crate so the spec, the REST clients, the
//! planner and apply all spell them the same way without importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies a GKE cluster: `projects/P/locations/L/clusters/C`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterKey {
    pub project: String,
    pub location: String,
    pub name: String,
}

impl ClusterKey {
    /// The resource path GKE uses: `projects/P/locations/L/clusters/C`.
    pub fn path(&self) -> String {
        format!(
            "projects/{}/locations/{}/clusters/{}",
            self.project, self.location, self.name
        )
    }

    /// The workload pool a cluster of this project joins: `P.svc.id.goog`.
    pub fn workload_pool(&self) -> String {
        workload_pool(&self.project)
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.project, self.location, self.name)
    }
}

/// `PROJECT.svc.id.goog`, the workload pool of a project.
pub fn workload_pool(project: &str) -> String {
    format!("{project}.svc.id.goog")
}

/// The IAM member of a Kubernetes service account in a project's workload pool:
/// `serviceAccount:P.svc.id.goog[NS/KSA]`.
pub fn ksa_member(project: &str, namespace: &str, ksa: &str) -> String {
    format!("serviceAccount:{project}.svc.id.goog[{namespace}/{ksa}]")
}

/// The IAM member of a Google service account: `serviceAccount:EMAIL`.
pub fn gsa_member(email: &str) -> String {
    format!("serviceAccount:{email}")
}

/// `ACCOUNT@PROJECT.iam.gserviceaccount.com`.
pub fn gsa_email(project: &str, account_id: &str) -> String {
    format!("{account_id}@{project}.iam.gserviceaccount.com")
}

/// The account id of a service-account email (the part before `@`).
pub fn gsa_account_id(email: &str) -> &str {
    email.split('@').next().unwrap_or_default()
}

/// The project of a user-managed service-account email
/// (`ACCOUNT@PROJECT.iam.gserviceaccount.com`), `None` for other emails.
pub fn gsa_project(email: &str) -> Option<&str> {
    email
        .split('@')
        .nth(1)
        .and_then(|d| d.strip_suffix(".iam.gserviceaccount.com"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsa_email_round_trips() {
        let email = gsa_email("acme-prod", "payments");
        assert_eq!(email, "payments@acme-prod.iam.gserviceaccount.com");
        assert_eq!(gsa_account_id(&email), "payments");
        assert_eq!(gsa_project(&email), Some("acme-prod"));
        assert_eq!(gsa_project("x@example.com"), None);
    }

    #[test]
    fn members_are_spelled_as_iam_expects() {
        assert_eq!(
            ksa_member("p", "ns", "ksa"),
            "serviceAccount:p.svc.id.goog[ns/ksa]"
        );
        assert_eq!(gsa_member("a@b"), "serviceAccount:a@b");
        assert_eq!(workload_pool("p"), "p.svc.id.goog");
    }
}
