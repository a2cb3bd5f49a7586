//! Where Google access tokens come from. `wi` looks in the same places as
//! gcloud: an access-token file (`CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`), then
//! application default credentials through `gcp_auth` (a service-account key in
//! `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC file, the metadata server,
//! the gcloud CLI). Tokens are `SecretString`s end to end and nothing here
//! implements a `Debug` that could show one.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use secrecy::SecretString;
use tokio::sync::OnceCell;

use super::error::GcpError;

/// The OAuth scope `wi` asks for: every Google API it calls accepts it.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A source of Google access tokens. Dyn-compatible (boxed futures) so the
/// client holds an `Arc<dyn TokenSource>` and tests can plug their own.
pub trait TokenSource: Send + Sync {
    /// A currently valid access token (implementations cache and refresh).
    fn token(&self) -> BoxFuture<'_, Result<SecretString, GcpError>>;
    /// A short, secret-free description for logs (`access token file /x`, `ADC`).
    fn describe(&self) -> String {
        "token source".into()
    }
}

/// A fixed token: the contents of `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE` or a string
/// given by the caller (demos, tests).
pub struct StaticTokenSource {
    token: SecretString,
    origin: String,
}

impl StaticTokenSource {
    /// A token given directly; `origin` says where it came from (never the token).
    pub fn new(token: SecretString, origin: impl Into<String>) -> Self {
        Self {
            token,
            origin: origin.into(),
        }
    }

    /// Reads a token file as gcloud's `--access-token-file` does: the whole
    /// file, surrounding whitespace trimmed, must be non-empty.
    pub async fn from_file(path: impl Into<PathBuf>) -> Result<Self, GcpError> {
        let path = path.into();
        let text = tokio::fs::read_to_string(&path).await.map_err(|e| {
            GcpError::Auth(format!(
                "cannot read access token file {}: {e}",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(GcpError::Auth(format!(
                "access token file {} is empty",
                path.display()
            )));
        }
        // A token is one word of visible ASCII; anything else (a key file,
        // two lines) could never be sent as a bearer token, so refuse it
        // now rather than on every request. The text itself is never shown.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            let looks_like = if token.starts_with('{') {
                ": it looks like a JSON key file, which GOOGLE_APPLICATION_CREDENTIALS takes"
            } else {
                ": it contains spaces, line breaks or non-ASCII characters"
            };
            return Err(GcpError::Auth(format!(
                "access token file {} does not hold an access token{looks_like}",
                path.display()
            )));
        }
        Ok(Self::new(
            SecretString::from(token.to_owned()),
            format!("access token file {}", path.display()),
        ))
    }
}

impl fmt::Debug for StaticTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenSource")
            .field("origin", &self.origin)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl TokenSource for StaticTokenSource {
    fn token(&self) -> BoxFuture<'_, Result<SecretString, GcpError>> {
        Box::pin(async move { Ok(self.token.clone()) })
    }
    fn describe(&self) -> String {
        self.origin.clone()
    }
}

/// Application default credentials through `gcp_auth`, scope `cloud-platform`.
/// The provider is found on first use, so commands that never call Google
/// (validate, plan against a token file) never probe the metadata server.
pub struct AdcTokenSource {
    provider: OnceCell<Arc<dyn gcp_auth::TokenProvider>>,
    key_file: Option<PathBuf>,
}

impl AdcTokenSource {
    /// `gcp_auth::provider()`'s order: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud
    /// ADC, metadata server, gcloud CLI.
    pub fn new() -> Self {
        Self {
            provider: OnceCell::new(),
            key_file: None,
        }
    }

    /// A service-account key file (what `GOOGLE_APPLICATION_CREDENTIALS` names).
    /// Its `token_uri` is honoured, which is how tests and the emulator mint tokens.
    pub fn from_key_file(path: impl Into<PathBuf>) -> Self {
        Self {
            provider: OnceCell::new(),
            key_file: Some(path.into()),
        }
    }

    async fn provider(&self) -> Result<&Arc<dyn gcp_auth::TokenProvider>, GcpError> {
        self.provider
            .get_or_try_init(|| async {
                match &self.key_file {
                    Some(path) => {
                        let sa = gcp_auth::CustomServiceAccount::from_file(path).map_err(|e| {
                            GcpError::Auth(format!(
                                "service-account key file {}: {e}",
                                path.display()
                            ))
                        })?;
                        Ok(Arc::new(sa) as Arc<dyn gcp_auth::TokenProvider>)
                    }
                    None => gcp_auth::provider().await.map_err(|e| {
                        GcpError::Auth(format!(
                            "no Google credentials found (application default credentials: {e}); \
                             run `gcloud auth application-default login`, set \
                             GOOGLE_APPLICATION_CREDENTIALS or CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"
                        ))
                    }),
                }
            })
            .await
    }
}

impl Default for AdcTokenSource {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AdcTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdcTokenSource")
            .field("key_file", &self.key_file)
            .field("initialized", &self.provider.initialized())
            .finish()
    }
}

impl TokenSource for AdcTokenSource {
    fn token(&self) -> BoxFuture<'_, Result<SecretString, GcpError>> {
        Box::pin(async move {
            let provider = self.provider().await?;
            let token = provider
                .token(&[CLOUD_PLATFORM_SCOPE])
                .await
                .map_err(|e| GcpError::Auth(format!("cannot get an access token: {e}")))?;
            Ok(SecretString::from(token.as_str().to_owned()))
        })
    }
    fn describe(&self) -> String {
        match &self.key_file {
            Some(p) => format!("service-account key {}", p.display()),
            None => "application default credentials".into(),
        }
    }
}

/// The token source gcloud would use: `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE` first,
/// then a service-account key in `GOOGLE_APPLICATION_CREDENTIALS` (read via
/// `get`, so callers control the environment), then the rest of ADC.
pub async fn token_source_from_env(
    get: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn TokenSource>, GcpError> {
    if let Some(path) = get("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE").filter(|p| !p.trim().is_empty()) {
        return Ok(Arc::new(StaticTokenSource::from_file(path.trim()).await?));
    }
    if let Some(path) = get("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.trim().is_empty()) {
        return Ok(Arc::new(AdcTokenSource::from_key_file(path.trim())));
    }
    Ok(Arc::new(AdcTokenSource::new()))
}
