//! STUB (replaced by the clients branch).
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error("{service}.{method}: HTTP {status} {code}: {message}")]
    Api {
        service: String,
        method: String,
        status: u16,
        code: String,
        message: String,
        reason: Option<String>,
        retry_after: Option<std::time::Duration>,
    },
    #[error("config: {0}")]
    Config(String),
}
impl GcpError {
    pub fn is_not_found(&self) -> bool {
        false
    }
    pub fn is_already_exists(&self) -> bool {
        false
    }
    pub fn is_etag_conflict(&self) -> bool {
        false
    }
    pub fn is_incompatible_operation(&self) -> bool {
        false
    }
    pub fn is_identity_pool_missing(&self) -> bool {
        false
    }
    pub fn is_service_account_missing(&self) -> bool {
        false
    }
    pub fn is_permission_denied(&self) -> bool {
        false
    }
    pub fn is_retryable(&self) -> bool {
        false
    }
}
