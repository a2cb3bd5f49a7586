//! STUB (replaced by the clients branch).
use super::GcpError;
use futures::future::BoxFuture;
use secrecy::SecretString;
use std::sync::Arc;
pub trait TokenSource: Send + Sync {
    fn token(&self) -> BoxFuture<'_, Result<SecretString, GcpError>>;
}
pub async fn token_source_from_env(
    _get: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn TokenSource>, GcpError> {
    Err(GcpError::Config("stub".into()))
}
