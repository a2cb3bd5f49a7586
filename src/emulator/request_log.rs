//! The ordered log of mutating requests the emulator served, at
//! `GET /emulator/requests[?since=N]`: tests assert the order of the calls an
//! apply made (a new binding before the annotation, the old binding last),
//! which the per-method counts of `/emulator/stats` cannot show.
//!
//! One entry per mutating Google API call (by its discovery method id) and per
//! Kubernetes write (verb and resource), refused ones included, with the
//! status the client got; a `setIamPolicy` also carries the members it added
//! and removed against the policy it replaced.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use super::world::{EmulatorWorld, IamPolicyRecord};

/// One mutating request, as served.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Position in the log, from 0.
    pub seq: u64,
    /// `iam`, `cloudresourcemanager`, `container`, `serviceusage`, or `kubernetes`.
    pub api: String,
    /// `projects.serviceAccounts.setIamPolicy` (Google: the discovery method
    /// id), `patch serviceaccounts` (Kubernetes: verb and resource).
    pub method: String,
    /// What the request addresses: `projects/P/serviceAccounts/EMAIL`,
    /// `projects/P/locations/L/clusters/C/nodePools/NP`; for Kubernetes
    /// `PROJECT/LOCATION/CLUSTER NAMESPACE/NAME` (a collection: no name).
    pub resource: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// `setIamPolicy` only: `ROLE MEMBER` pairs the new policy has and the old had not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// `setIamPolicy` only: `ROLE MEMBER` pairs the old policy had and the new has not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// A refusal: `STATUS: message` (Google) or `Reason: message` (Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The log itself (kept for the emulator's lifetime; not persisted).
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: Mutex<Vec<LoggedRequest>>,
}

impl RequestLog {
    /// Appends `entry`, numbering it.
    pub(crate) fn push(&self, mut entry: LoggedRequest) {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entry.seq = e.len() as u64;
        e.push(entry);
    }

    /// The entries from `since` on, and the `since` of the next call.
    pub(crate) fn since(&self, since: u64) -> (Vec<LoggedRequest>, u64) {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let from = (since as usize).min(e.len());
        (e[from..].to_vec(), e.len() as u64)
    }
}

/// Whether a Google API method changes something (reads and token
/// exchanges are not logged, though some are POSTs).
pub(crate) fn is_mutating(http_method: &axum::http::Method, method_id: &str) -> bool {
    if *http_method == axum::http::Method::GET {
        return false;
    }
    let verb = method_id.rsplit('.').next().unwrap_or(method_id);
    ![
        "get", "list", "test", "generate", "sign", "search", "query", "batchGet",
    ]
    .iter()
    .any(|p| verb.starts_with(p))
}

/// The policy a `setIamPolicy` on `segs` of `api` replaces, if it exists.
pub(crate) fn current_policy(
    world: &EmulatorWorld,
    api: &str,
    segs: &[String],
) -> Option<IamPolicyRecord> {
    match (api, segs) {
        ("iam", [_, _, _, account]) => world
            .service_accounts
            .values()
            .find(|s| &s.email == account || &s.unique_id == account)
            .map(|s| s.policy.clone()),
        ("cloudresourcemanager", [_, project]) => world
            .projects
            .values()
            .find(|p| &p.id == project || &p.number == project)
            .map(|p| p.policy.clone()),
        _ => None,
    }
}

/// `ROLE MEMBER` pairs of a policy's bindings (conditions are not told apart).
fn pairs(bindings: &[Value]) -> BTreeSet<String> {
    bindings
        .iter()
        .flat_map(|b| {
            let role = b["role"].as_str().unwrap_or("").to_string();
            b["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |m| format!("{role} {m}"))
        })
        .collect()
}

/// `(added, removed)` going from `before` to the policy JSON a
/// `setIamPolicy` answered with.
pub(crate) fn policy_diff(before: &[Value], after: &Value) -> (Vec<String>, Vec<String>) {
    let old = pairs(before);
    let new = pairs(
        after["bindings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    );
    (
        new.difference(&old).cloned().collect(),
        old.difference(&new).cloned().collect(),
    )
}

/// `(verb resource, NAMESPACE/NAME)` of a Kubernetes request path, for the
/// log: `/api/v1/namespaces/apps/serviceaccounts/api` → `apps/api`.
pub(crate) fn kube_object(path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", "v1", "namespaces", ns, _res, name, ..] => format!("{ns}/{name}"),
        ["api", "v1", "namespaces", ns, _res] => (*ns).to_string(),
        ["api", "v1", "namespaces", name] => (*name).to_string(),
        ["api", "v1", "namespaces"] => String::new(),
        _ => segs.join("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_policy_diff_names_added_and_removed_members() {
        let before = vec![json!({"role": "r/a", "members": ["user:x", "user:y"]})];
        let after = json!({"bindings": [{"role": "r/a", "members": ["user:y", "user:z"]}]});
        assert_eq!(
            policy_diff(&before, &after),
            (
                vec!["r/a user:z".to_string()],
                vec!["r/a user:x".to_string()]
            )
        );
    }

    #[test]
    fn reads_are_not_mutations() {
        use axum::http::Method;
        assert!(!is_mutating(&Method::POST, "projects.getIamPolicy"));
        assert!(!is_mutating(
            &Method::POST,
            "projects.serviceAccounts.testIamPermissions"
        ));
        assert!(!is_mutating(&Method::GET, "projects.serviceAccounts.get"));
        assert!(is_mutating(&Method::POST, "projects.setIamPolicy"));
        assert!(is_mutating(
            &Method::PUT,
            "projects.locations.clusters.nodePools.update"
        ));
    }

    #[test]
    fn kubernetes_objects_are_namespace_and_name() {
        assert_eq!(
            kube_object("/api/v1/namespaces/apps/serviceaccounts/api"),
            "apps/api"
        );
        assert_eq!(kube_object("/api/v1/namespaces/apps"), "apps");
        assert_eq!(kube_object("/api/v1/namespaces/apps/pods"), "apps");
    }
}
