//! Service Usage v1: whether an API is enabled in a project, and enabling it
//! (a `google.longrunning` operation polled until done).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::GcpClient;
use super::error::GcpError;
use super::retry::Pacer;
use super::transport::{Api, Call};
use super::types::{LongRunningOperation, Service};

impl GcpClient {
    /// `services.get`: `state` is `ENABLED` or `DISABLED`.
    pub async fn get_service(&self, project: &str, service: &str) -> Result<Service, GcpError> {
        let call = Call::new(
            Api::ServiceUsage,
            "services.get",
            Method::GET,
            &["v1", "projects", project, "services", service],
        );
        self.send(call).await
    }

    /// `services.enable`, then polls the `operations/...` it returns until done
    /// or `deadline`. "Another activation or deactivation is in progress" is
    /// waited out too.
    pub async fn enable_service(
        &self,
        project: &str,
        service: &str,
        deadline: Duration,
    ) -> Result<(), GcpError> {
        let mut pacer = Pacer::poll(&self.inner.retry, deadline);
        let timeout = |what: String| GcpError::Timeout {
            what,
            after: deadline,
        };
        let mut op: LongRunningOperation = loop {
            let call = Call::new(
                Api::ServiceUsage,
                "services.enable",
                Method::POST,
                &[
                    "v1",
                    "projects",
                    project,
                    "services",
                    &format!("{service}:enable"),
                ],
            )
            .body(json!({}));
            match self.send(call).await {
                Ok(op) => break op,
                Err(e) if e.is_operation_in_progress() => {
                    if !pacer.pause().await {
                        return Err(timeout(format!("enabling {service} in {project}")));
                    }
                }
                Err(e) => return Err(e),
            }
        };
        loop {
            if op.done {
                if let Some(err) = &op.error {
                    let message = err
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("operation failed")
                        .to_owned();
                    return Err(GcpError::OperationFailed {
                        operation: op.name.clone(),
                        operation_type: "services.enable".into(),
                        message,
                    });
                }
                return Ok(());
            }
            if op.name.is_empty() {
                return Err(GcpError::Decode(
                    "serviceusage services.enable: operation without a name".into(),
                ));
            }
            if !pacer.pause().await {
                return Err(timeout(format!("operation {} (enable {service})", op.name)));
            }
            let mut segs = vec!["v1"];
            segs.extend(op.name.split('/').filter(|s| !s.is_empty()));
            let call = Call::new(Api::ServiceUsage, "operations.get", Method::GET, &segs);
            match self.send(call).await {
                Ok(next) => op = next,
                Err(e) if e.is_retryable() => {
                    tracing::debug!(operation = %op.name, error = %e, "polling failed; polling on");
                }
                Err(e) => return Err(e),
            }
        }
    }
}
