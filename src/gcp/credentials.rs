//! IAM Service Account Credentials: `generateAccessToken`, the last step of
//! Workload Identity (a federated token acting as a Google service account).
//! Called with a bearer the caller brings (the federated token of a KSA),
//! not the client's own credentials.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::GcpClient;
use super::error::{GcpError, api_error};
use super::sts::CLOUD_PLATFORM_SCOPE;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: String,
}

impl GcpClient {
    /// `POST iamcredentials/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`
    /// with `bearer` (scope cloud-platform, 10 minutes). Never retried: a
    /// refusal is the answer `wi verify` reports.
    pub async fn generate_access_token(
        &self,
        bearer: &SecretString,
        email: &str,
    ) -> Result<SecretString, GcpError> {
        let mut url = self.inner.endpoints.iamcredentials.clone();
        url.path_segments_mut()
            .map_err(|_| GcpError::Config("IAM Credentials endpoint cannot take a path".into()))?
            .pop_if_empty()
            .extend([
                "v1",
                "projects",
                "-",
                "serviceAccounts",
                &format!("{email}:generateAccessToken"),
            ]);
        let resp = self
            .inner
            .http
            .post(url)
            .bearer_auth(bearer.expose_secret())
            .json(&json!({"scope": [CLOUD_PLATFORM_SCOPE], "lifetime": "600s"}))
            .send()
            .await
            .map_err(|e| {
                GcpError::Unreachable(format!("iamcredentials generateAccessToken: {e}"))
            })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| {
            GcpError::Transport(format!(
                "iamcredentials generateAccessToken: reading the response: {e}"
            ))
        })?;
        if (200..300).contains(&status) {
            let answer: GenerateAccessTokenResponse = serde_json::from_str(&text).map_err(|e| {
                GcpError::Decode(format!("iamcredentials generateAccessToken: {e}"))
            })?;
            return Ok(SecretString::from(answer.access_token));
        }
        Err(api_error(
            "iamcredentials",
            "generateAccessToken",
            status,
            None,
            &text,
        ))
    }
}
