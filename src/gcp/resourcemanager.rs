//! Resource Manager v1: projects and the project IAM policy.

use reqwest::Method;
use serde_json::json;

use super::GcpClient;
use super::error::GcpError;
use super::transport::{Api, Call, not_found_as_none};
use super::types::{IamPolicy, Project};

impl GcpClient {
    /// `projects.get` (v1); `None` on 404. Real Resource Manager answers 403
    /// for projects that do not exist or are not visible: that stays an error.
    pub async fn get_project(&self, project: &str) -> Result<Option<Project>, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.get",
            Method::GET,
            &["v1", "projects", project],
        );
        not_found_as_none(self.send(call).await)
    }

    /// `projects.getIamPolicy` (v1) with `{"options":{"requestedPolicyVersion":3}}`.
    pub async fn get_project_iam_policy(&self, project: &str) -> Result<IamPolicy, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.getIamPolicy",
            Method::POST,
            &["v1", "projects", &format!("{project}:getIamPolicy")],
        )
        .body(json!({ "options": { "requestedPolicyVersion": 3 } }));
        self.send(call).await
    }

    /// `projects.setIamPolicy` (v1), `updateMask: bindings,etag` (audit configs
    /// are never touched).
    pub async fn set_project_iam_policy(
        &self,
        project: &str,
        policy: &IamPolicy,
    ) -> Result<IamPolicy, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.setIamPolicy",
            Method::POST,
            &["v1", "projects", &format!("{project}:setIamPolicy")],
        )
        .body(json!({ "policy": policy, "updateMask": "bindings,etag" }));
        self.send(call).await
    }

    /// `projects.testIamPermissions` (v1): the subset of `permissions` the
    /// caller holds on `project` (Google answers `{}` when it holds none).
    pub async fn test_project_permissions(
        &self,
        project: &str,
        permissions: &[&str],
    ) -> Result<Vec<String>, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.testIamPermissions",
            Method::POST,
            &["v1", "projects", &format!("{project}:testIamPermissions")],
        )
        .body(json!({ "permissions": permissions }));
        let held: HeldPermissions = self.send(call).await?;
        Ok(held.permissions)
    }
}

impl GcpClient {
    /// [`Self::test_project_permissions`] asked with `bearer` (a KSA's
    /// federated token): what that principal holds on `project`.
    pub async fn test_project_permissions_as(
        &self,
        bearer: &secrecy::SecretString,
        project: &str,
        permissions: &[String],
    ) -> Result<Vec<String>, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.testIamPermissions",
            Method::POST,
            &["v1", "projects", &format!("{project}:testIamPermissions")],
        )
        .body(json!({ "permissions": permissions }))
        .bearer(bearer);
        let held: HeldPermissions = self.send(call).await?;
        Ok(held.permissions)
    }
}

/// The answer of a `testIamPermissions` call.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(crate) struct HeldPermissions {
    pub permissions: Vec<String>,
}
