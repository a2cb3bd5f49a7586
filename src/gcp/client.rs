//! STUB (replaced by the clients branch).
#![allow(unused_variables)]
use super::{Endpoints, GcpError, TokenSource, types::*};
use crate::spec::ClusterKey;
use secrecy::SecretString;
use std::{path::PathBuf, sync::Arc, time::Duration};
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub ca_file: Option<PathBuf>,
}
#[derive(Clone)]
pub struct GcpClient;
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    ServiceAccount { email: String },
    Project { project: String },
}
fn e() -> GcpError {
    GcpError::Config("stub".into())
}
impl GcpClient {
    pub fn new(
        endpoints: Endpoints,
        tokens: Arc<dyn TokenSource>,
        options: ClientOptions,
    ) -> Result<Self, GcpError> {
        Err(e())
    }
    pub async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, GcpError> {
        Err(e())
    }
    pub async fn create_cluster(
        &self,
        key: &ClusterKey,
        cluster: serde_json::Value,
    ) -> Result<Operation, GcpError> {
        Err(e())
    }
    pub async fn set_workload_pool(
        &self,
        key: &ClusterKey,
        pool: Option<&str>,
    ) -> Result<Operation, GcpError> {
        Err(e())
    }
    pub async fn set_node_pool_metadata_mode(
        &self,
        key: &ClusterKey,
        pool: &str,
        mode: &str,
    ) -> Result<Operation, GcpError> {
        Err(e())
    }
    pub async fn list_operations(
        &self,
        project: &str,
        location: &str,
    ) -> Result<Vec<Operation>, GcpError> {
        Err(e())
    }
    pub async fn get_operation(
        &self,
        project: &str,
        location: &str,
        name: &str,
    ) -> Result<Operation, GcpError> {
        Err(e())
    }
    pub async fn wait_operation(
        &self,
        project: &str,
        location: &str,
        op: &Operation,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
    ) -> Result<Operation, GcpError> {
        Err(e())
    }
    pub async fn list_service_accounts(
        &self,
        project: &str,
    ) -> Result<Vec<ServiceAccount>, GcpError> {
        Err(e())
    }
    pub async fn get_service_account(
        &self,
        email: &str,
    ) -> Result<Option<ServiceAccount>, GcpError> {
        Err(e())
    }
    pub async fn create_service_account(
        &self,
        project: &str,
        account_id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<ServiceAccount, GcpError> {
        Err(e())
    }
    pub async fn patch_service_account(
        &self,
        email: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<ServiceAccount, GcpError> {
        Err(e())
    }
    pub async fn delete_service_account(&self, email: &str) -> Result<(), GcpError> {
        Err(e())
    }
    pub async fn get_service_account_iam_policy(&self, email: &str) -> Result<Policy, GcpError> {
        Err(e())
    }
    pub async fn set_service_account_iam_policy(
        &self,
        email: &str,
        policy: &Policy,
    ) -> Result<Policy, GcpError> {
        Err(e())
    }
    pub async fn get_project(&self, project: &str) -> Result<Option<Project>, GcpError> {
        Err(e())
    }
    pub async fn get_project_iam_policy(&self, project: &str) -> Result<Policy, GcpError> {
        Err(e())
    }
    pub async fn set_project_iam_policy(
        &self,
        project: &str,
        policy: &Policy,
    ) -> Result<Policy, GcpError> {
        Err(e())
    }
    pub async fn get_service(&self, project: &str, service: &str) -> Result<Service, GcpError> {
        Err(e())
    }
    pub async fn enable_service(
        &self,
        project: &str,
        service: &str,
        deadline: Duration,
    ) -> Result<(), GcpError> {
        Err(e())
    }
    pub async fn modify_iam_policy(
        &self,
        target: &PolicyTarget,
        deadline: Duration,
        edit: &(dyn Fn(&mut Policy) -> bool + Send + Sync),
    ) -> Result<Policy, GcpError> {
        Err(e())
    }
    pub async fn access_token(&self) -> Result<SecretString, GcpError> {
        Err(e())
    }
}
