//! Security Token Service: the token exchange the GKE metadata server does
//! for a pod (a Kubernetes service-account token for a federated Google
//! token). `wi verify` runs it to prove a mapping without running a pod.
//!
//! STS answers errors OAuth-style (`{"error", "error_description"}`), not
//! with the Google envelope; they become [`GcpError::Api`] with `code` and
//! `reason` set to the OAuth `error` (`invalid_grant`, `invalid_target`).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::GcpClient;
use super::error::GcpError;

/// RFC 8693 grant type of the exchange.
const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The subject token is a JWT (the KSA token).
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The exchange asks for an OAuth access token.
const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The scope the metadata server asks for.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

#[derive(Deserialize)]
struct ExchangeResponse {
    access_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OAuthError {
    error: String,
    error_description: String,
}

/// The STS audience of a GKE cluster's tokens:
/// `identitynamespace:POOL:https://container.googleapis.com/v1/projects/P/locations/L/clusters/C`.
pub fn gke_sts_audience(pool: &str, project: &str, location: &str, cluster: &str) -> String {
    format!(
        "identitynamespace:{pool}:https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{cluster}"
    )
}

impl GcpClient {
    /// `POST sts/v1/token`: exchanges `subject_token` (a JWT) for a federated
    /// access token for `audience`. Sent without an Authorization header,
    /// form-encoded, as Google's own clients do. Never retried: a refused
    /// exchange is the answer `wi verify` reports.
    pub async fn exchange_token(
        &self,
        audience: &str,
        subject_token: &SecretString,
    ) -> Result<SecretString, GcpError> {
        let url = self
            .inner
            .endpoints
            .sts
            .join("v1/token")
            .map_err(|e| GcpError::Config(format!("STS endpoint: {e}")))?;
        let form = [
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("audience", audience),
            ("requested_token_type", TOKEN_TYPE_ACCESS),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("subject_token", subject_token.expose_secret()),
            ("scope", CLOUD_PLATFORM_SCOPE),
        ];
        let resp = self
            .inner
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| GcpError::Unreachable(format!("sts token: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| GcpError::Transport(format!("sts token: reading the response: {e}")))?;
        if (200..300).contains(&status) {
            let answer: ExchangeResponse = serde_json::from_str(&text)
                .map_err(|e| GcpError::Decode(format!("sts token: {e}")))?;
            return Ok(SecretString::from(answer.access_token));
        }
        Err(sts_error(status, &text))
    }
}

/// An STS failure as [`GcpError::Api`]; bodies that are not OAuth errors
/// keep their (shortened) text.
fn sts_error(status: u16, body: &str) -> GcpError {
    let parsed: OAuthError = serde_json::from_str(body).unwrap_or_default();
    let (code, message) = if parsed.error.is_empty() {
        (String::new(), body.trim().chars().take(300).collect())
    } else {
        (parsed.error, parsed.error_description)
    };
    GcpError::Api {
        service: "sts",
        method: "token",
        status,
        reason: (!code.is_empty()).then(|| code.clone()),
        code,
        message,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_keep_their_code_and_description() {
        let e = sts_error(
            400,
            r#"{"error":"invalid_target","error_description":"The target service indicated by the \"audience\" parameters is invalid."}"#,
        );
        assert_eq!(
            e.to_string(),
            "sts token: HTTP 400 invalid_target: The target service indicated by the \"audience\" parameters is invalid."
        );
        assert_eq!(
            gke_sts_audience("p.svc.id.goog", "p", "l", "c"),
            "identitynamespace:p.svc.id.goog:https://container.googleapis.com/v1/projects/p/locations/l/clusters/c"
        );
    }
}
