//! REST clients of the Google APIs `wi` calls (GKE, IAM, Resource Manager,
//! Service Usage), with endpoints from gcloud's `CLOUDSDK_API_ENDPOINT_OVERRIDES_*`,
//! tokens from application default credentials, typed errors and one retry policy.

pub mod auth;
pub mod client;
pub mod endpoints;
pub mod error;
pub mod retry;
pub mod types;

pub use auth::{AdcTokenSource, StaticTokenSource, TokenSource, token_source_from_env};
pub use client::{ClientOptions, GcpClient, PolicyTarget, operation_cluster, operation_node_pool};
pub use endpoints::Endpoints;
pub use error::GcpError;
pub use retry::{ClientStats, RetryPolicy};
