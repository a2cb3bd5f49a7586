//! Fingerprints: the version of every live object a plan was computed from
//! (etag, resourceVersion or a content hash). A saved plan records them, and
//! `apply` re-reads them and refuses a plan whose inputs have moved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{IAM_CREDENTIALS_SERVICE, LiveState};
use crate::gcp::types::{GkeCluster, GoogleServiceAccount, IamPolicy};

/// A live object the plan read, and the version it saw (etag,
/// resourceVersion or content hash). `apply` re-reads these and refuses a
/// saved plan whose inputs have moved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint {
    /// What was read, e.g. `iam_policy["sa@p.iam.gserviceaccount.com"]`.
    pub source: String,
    /// The etag / resourceVersion / hash seen; `absent` when it did not exist.
    pub version: String,
}

impl LiveState {
    /// Fingerprints of everything read, sorted: the saved plan records them
    /// and `apply` refuses a plan whose inputs have moved.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        let mut out = Vec::new();
        for (project, live) in &self.projects {
            if let Some(enabled) = live.iam_credentials_enabled {
                out.push(Fingerprint {
                    source: format!("service[\"{project}/{IAM_CREDENTIALS_SERVICE}\"]"),
                    version: if enabled { "ENABLED" } else { "DISABLED" }.into(),
                });
            }
            if let Some(policy) = &live.policy {
                out.push(Fingerprint {
                    source: format!("project_iam_policy[\"{project}\"]"),
                    version: policy_version(policy),
                });
            }
            for (email, sa) in &live.service_accounts {
                out.push(Fingerprint {
                    source: format!("service_account[\"{email}\"]"),
                    version: account_hash(sa),
                });
            }
        }
        for (email, sa) in &self.external_accounts {
            out.push(Fingerprint {
                source: format!("service_account[\"{email}\"]"),
                version: sa.as_ref().map_or_else(|| "absent".into(), account_hash),
            });
        }
        for (email, policy) in &self.account_policies {
            out.push(Fingerprint {
                source: format!("iam_policy[\"{email}\"]"),
                version: policy_version(policy),
            });
        }
        for (key, cluster) in &self.clusters {
            out.push(Fingerprint {
                source: format!("cluster[\"{key}\"]"),
                version: cluster
                    .gke
                    .as_ref()
                    .map_or_else(|| "absent".into(), cluster_hash),
            });
            if let Some(kube) = &cluster.kube {
                for name in kube.namespaces.keys() {
                    out.push(Fingerprint {
                        source: format!("kubernetes_namespace[\"{key}/{name}\"]"),
                        version: "present".into(),
                    });
                }
                for ((ns, name), sa) in &kube.service_accounts {
                    out.push(Fingerprint {
                        source: format!("kubernetes_service_account[\"{key}/{ns}/{name}\"]"),
                        version: sa.resource_version.clone().unwrap_or_default(),
                    });
                }
            }
        }
        out.sort();
        out
    }
}

fn policy_version(policy: &IamPolicy) -> String {
    policy
        .etag
        .clone()
        .unwrap_or_else(|| hash_json(&serde_json::to_value(policy).unwrap_or_default()))
}

fn account_hash(sa: &GoogleServiceAccount) -> String {
    hash_json(&serde_json::json!({
        "uniqueId": sa.unique_id,
        "displayName": sa.display_name,
        "description": sa.description,
        "disabled": sa.disabled,
    }))
}

/// Hash of what `wi` plans from a cluster: its pool and each pool's mode.
fn cluster_hash(cluster: &GkeCluster) -> String {
    let pools: BTreeMap<&str, Option<&str>> = cluster
        .node_pools
        .iter()
        .map(|p| (p.name.as_str(), p.metadata_mode()))
        .collect();
    hash_json(&serde_json::json!({
        "workloadPool": cluster.workload_pool(),
        "pools": pools,
    }))
}

fn hash_json(value: &serde_json::Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..16])
}
