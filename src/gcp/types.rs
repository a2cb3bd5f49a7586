//! Wire types of the Google APIs `wi` reads and writes. Only the fields `wi`
//! uses are typed; everything else is kept in `rest` so a read-modify-write
//! never drops a field it does not understand.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `container.v1` Cluster (subset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GkeCluster {
    pub name: String,
    #[serde(default)]
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_auth: Option<MasterAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity_config: Option<WorkloadIdentityConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pools: Vec<NodePool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl GkeCluster {
    /// The workload pool, if set and non-empty.
    pub fn workload_pool(&self) -> Option<&str> {
        self.workload_identity_config
            .as_ref()
            .map(|w| w.workload_pool.as_str())
            .filter(|p| !p.is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterAuth {
    /// base64 of the PEM CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ca_certificate: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentityConfig {
    #[serde(default)]
    pub workload_pool: String,
}

/// `container.v1` NodePool (subset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<NodeConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl NodePool {
    /// `GKE_METADATA`, `GCE_METADATA`, or `None` when GKE reports no mode
    /// (it omits the field for pools created without Workload Identity).
    pub fn metadata_mode(&self) -> Option<&str> {
        self.config
            .as_ref()
            .and_then(|c| c.workload_metadata_config.as_ref())
            .map(|w| w.mode.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_metadata_config: Option<WorkloadMetadataConfig>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadMetadataConfig {
    #[serde(default)]
    pub mode: String,
}

/// `container.v1` Operation (subset).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Bare id (`operation-...`), not a path.
    pub name: String,
    #[serde(default)]
    pub operation_type: String,
    /// `PENDING`, `RUNNING`, `DONE`, `ABORTING`.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `iam.v1` ServiceAccount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleServiceAccount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub unique_id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An IAM policy (service account or project). Unknown fields (auditConfigs)
/// and binding conditions are carried through untouched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub role: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Resource Manager project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub project_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Service Usage service state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default)]
    pub name: String,
    /// `ENABLED` or `DISABLED`.
    #[serde(default)]
    pub state: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `google.longrunning.Operation` as Service Usage returns it (`operations/...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LongRunningOperation {
    /// `operations/<id>`, with the prefix.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub done: bool,
    /// `google.rpc.Status` when the operation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
