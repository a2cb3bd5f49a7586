//! STUB (replaced by the clients branch).
#![allow(unused_variables)]
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use secrecy::SecretString;
use std::collections::BTreeMap;
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("HTTP {status} {reason}: {message}")]
    Api {
        status: u16,
        reason: String,
        message: String,
    },
}
impl KubeError {
    pub fn is_conflict(&self) -> bool {
        false
    }
    pub fn is_not_found(&self) -> bool {
        false
    }
    pub fn is_forbidden(&self) -> bool {
        false
    }
    pub fn is_already_exists(&self) -> bool {
        false
    }
    pub fn is_retryable(&self) -> bool {
        false
    }
}
pub struct ClusterConnection {
    pub client: kube::Client,
}
fn e() -> KubeError {
    KubeError::Api {
        status: 0,
        reason: "stub".into(),
        message: "stub".into(),
    }
}
pub async fn connect(
    cluster: &crate::gcp::types::Cluster,
    token: SecretString,
    context_override: Option<&str>,
) -> Result<ClusterConnection, KubeError> {
    Err(e())
}
impl ClusterConnection {
    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>, KubeError> {
        Err(e())
    }
    pub async fn list_service_accounts(&self) -> Result<Vec<ServiceAccount>, KubeError> {
        Err(e())
    }
    pub async fn list_pods(&self) -> Result<Vec<Pod>, KubeError> {
        Err(e())
    }
    pub async fn apply_namespace(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<Namespace, KubeError> {
        Err(e())
    }
    pub async fn apply_service_account(
        &self,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<ServiceAccount, KubeError> {
        Err(e())
    }
    pub async fn delete_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), KubeError> {
        Err(e())
    }
    pub async fn delete_namespace(&self, name: &str) -> Result<(), KubeError> {
        Err(e())
    }
    pub async fn request_token(
        &self,
        namespace: &str,
        ksa: &str,
        audience: &str,
    ) -> Result<SecretString, KubeError> {
        Err(e())
    }
}
