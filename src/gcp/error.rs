//! Typed errors of the Google REST clients. Every Google API `wi` calls (GKE,
//! IAM, Resource Manager, Service Usage) answers failures with the same
//! envelope (`{"error": {code, message, status, errors[], details[]}}`); this
//! module turns it into structured data once, so the engine decides with
//! predicates (`is_etag_conflict()`, `is_incompatible_operation()`, ...)
//! instead of matching strings.
//!
//! No variant ever holds a token or key: errors are built from status lines,
//! response bodies of the APIs above and transport failures, never from
//! request headers.

use std::time::Duration;

use serde::Deserialize;

/// An error from one of the Google REST clients.
#[derive(thiserror::Error, Debug)]
pub enum GcpError {
    /// The API answered with an error status and (usually) the Google error envelope.
    #[error("{service} {method}: HTTP {status}{}: {message}", code_suffix(code))]
    Api {
        /// Short API name: `container`, `iam`, `cloudresourcemanager`, `serviceusage`.
        service: &'static str,
        /// What was called, e.g. `clusters.get` or `serviceAccounts.setIamPolicy`.
        method: &'static str,
        /// HTTP status code.
        status: u16,
        /// Canonical code (`error.status`), e.g. `ABORTED`, `NOT_FOUND`; empty when absent.
        code: String,
        /// `error.message` (or the raw body when it was not the Google envelope).
        message: String,
        /// The most specific machine reason: `details[].ErrorInfo.reason` when present
        /// (e.g. `CLUSTER_ALREADY_HAS_OPERATION`, `SERVICE_DISABLED`), else `errors[0].reason`
        /// (e.g. `failedPrecondition`, `notFound`).
        reason: Option<String>,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The request never got an HTTP answer (a reset, a per-attempt timeout):
    /// retried, but only briefly (see `retry.rs`).
    #[error("transport error: {0}")]
    Transport(String),
    /// The endpoint cannot be reached in a way resending will not heal:
    /// connection refused, a server that accepts connections and never
    /// answers, a TLS handshake that fails. Never retried.
    #[error("cannot reach the endpoint: {0}")]
    Unreachable(String),
    /// No access token could be obtained.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The API answered 2xx with a body that is not what its documentation says.
    #[error("unexpected response: {0}")]
    Decode(String),
    /// A deadline passed while waiting (for an operation, a retry, a policy write).
    #[error("timed out after {}s waiting for {what}", after.as_secs())]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long was waited.
        after: Duration,
    },
    /// A long-running operation finished with an error.
    #[error("operation {operation} ({operation_type}) failed: {message}")]
    OperationFailed {
        /// Operation name (`operation-...` for GKE, `operations/...` for Service Usage).
        operation: String,
        /// GKE `operationType` (`UPDATE_CLUSTER`, `UPGRADE_NODES`, ...) or the API method.
        operation_type: String,
        /// `error.message` or `statusMessage` of the finished operation.
        message: String,
    },
    /// Bad client configuration (endpoint override, CA file, ...).
    #[error("configuration error: {0}")]
    Config(String),
}

fn code_suffix(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!(" {code}")
    }
}

impl GcpError {
    fn api(&self) -> Option<(u16, &str, &str, Option<&str>)> {
        match self {
            GcpError::Api {
                status,
                code,
                message,
                reason,
                ..
            } => Some((*status, code.as_str(), message.as_str(), reason.as_deref())),
            _ => None,
        }
    }

    /// HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|(s, ..)| s)
    }

    /// `Retry-After` the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GcpError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// 404 / `NOT_FOUND`.
    pub fn is_not_found(&self) -> bool {
        matches!(self.api(), Some((404, ..)) | Some((_, "NOT_FOUND", ..)))
    }

    /// 409 `ALREADY_EXISTS` (duplicate cluster, service account, ...).
    pub fn is_already_exists(&self) -> bool {
        match self.api() {
            Some((409, code, _, reason)) => {
                code == "ALREADY_EXISTS" || reason == Some("alreadyExists")
            }
            Some((_, "ALREADY_EXISTS", ..)) => true,
            _ => false,
        }
    }

    /// 409 `ABORTED`: "There were concurrent policy changes" (stale IAM etag),
    /// or a stale GKE etag. The fix is to re-read and redo the change.
    pub fn is_etag_conflict(&self) -> bool {
        match self.api() {
            Some((409, code, _, reason)) => code == "ABORTED" || reason == Some("aborted"),
            _ => false,
        }
    }

    /// GKE refuses the change because another operation runs on the cluster:
    /// 400 `FAILED_PRECONDITION` "Cluster is running incompatible operation ...",
    /// ErrorInfo `CLUSTER_ALREADY_HAS_OPERATION`, or the older
    /// "Operation ... is currently ... Please wait and try again".
    pub fn is_incompatible_operation(&self) -> bool {
        match self.api() {
            Some((_, _, _, Some("CLUSTER_ALREADY_HAS_OPERATION"))) => true,
            Some((400, code, message, _)) => {
                (code == "FAILED_PRECONDITION" || code.is_empty())
                    && (message.contains("incompatible operation")
                        || (message.contains("is currently")
                            && message.contains("Please wait and try again")))
            }
            _ => false,
        }
    }

    /// 400 "Identity Pool does not exist (P.svc.id.goog)": no cluster of the
    /// project has enabled Workload Identity yet (or it is still propagating).
    pub fn is_identity_pool_missing(&self) -> bool {
        matches!(self.api(), Some((400, _, m, _)) if m.contains("Identity Pool does not exist"))
    }

    /// 400 "Service account X does not exist.": a policy names an account IAM
    /// cannot see yet (typically just created; eventual consistency).
    pub fn is_service_account_missing(&self) -> bool {
        matches!(self.api(), Some((400, _, m, _))
            if m.contains("Service account") && m.contains("does not exist"))
    }

    /// 400 "Another activation or deactivation is in progress": Service Usage
    /// refuses `services.enable` while another change of the same service runs.
    pub fn is_operation_in_progress(&self) -> bool {
        matches!(self.api(), Some((400, _, m, _)) if m.contains("in progress"))
    }

    /// 403 `PERMISSION_DENIED` (includes a disabled API, see [`Self::is_service_disabled`]).
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self.api(),
            Some((403, ..)) | Some((_, "PERMISSION_DENIED", ..))
        )
    }

    /// 403 because the API is not enabled in the project (`SERVICE_DISABLED` /
    /// `accessNotConfigured`).
    pub fn is_service_disabled(&self) -> bool {
        matches!(
            self.api(),
            Some((403, _, _, Some("SERVICE_DISABLED" | "accessNotConfigured")))
        )
    }

    /// The IAM permission Google checks for the call that failed
    /// (`iam.serviceAccounts.setIamPolicy` for `serviceAccounts.setIamPolicy`).
    pub fn required_permission(&self) -> Option<&'static str> {
        match self {
            GcpError::Api {
                service, method, ..
            } => required_permission(service, method),
            _ => None,
        }
    }

    /// What to do about a 401 or 403, naming the identity `wi` called as
    /// (an email, or where the credentials came from; never a token) and the
    /// permission the call needs. `None` for other errors and for a disabled
    /// API (its message already says which API to enable).
    pub fn denied_help(&self, identity: &str) -> Option<String> {
        let status = self.status()?;
        if self.is_service_disabled() {
            return None;
        }
        match status {
            401 => Some(format!(
                "Google did not accept the credentials of {identity}: they may have expired or been revoked; refresh them (`gcloud auth application-default login`, a new key, a new token file)"
            )),
            403 => Some(match self.required_permission() {
                Some(p) => format!(
                    "{identity} lacks the permission {p}: grant it a role that holds it (the custom role in examples/iam/wi-apply.role.yaml holds every permission `wi` uses; README \"Permissions\"), or run as an identity that has it"
                ),
                None => format!(
                    "{identity} is not allowed to make this call: see the permissions `wi` needs in README \"Permissions\""
                ),
            }),
            _ => None,
        }
    }

    /// The endpoint cannot be reached and retrying will not change that
    /// ([`GcpError::Unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, GcpError::Unreachable(_))
    }

    /// No HTTP answer at all, which may heal ([`GcpError::Transport`]).
    pub fn is_transport(&self) -> bool {
        matches!(self, GcpError::Transport(_))
    }

    /// A wait ran past its deadline ([`GcpError::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, GcpError::Timeout { .. })
    }

    /// Worth retrying unchanged: 429, 5xx (but not 501), transport failures.
    /// 4xx answers other than 429 cannot heal by resending the same request.
    pub fn is_retryable(&self) -> bool {
        match self {
            GcpError::Api { status, .. } => {
                *status == 429 || (*status >= 500 && *status != 501 && *status < 600)
            }
            GcpError::Transport(_) => true,
            _ => false,
        }
    }
}

/// The IAM permission behind each call the clients make (`service` is the
/// short API name, `method` the call name of `transport::Call`).
pub fn required_permission(service: &str, method: &str) -> Option<&'static str> {
    Some(match (service, method) {
        ("container", "clusters.get") => "container.clusters.get",
        ("container", "clusters.list") => "container.clusters.list",
        ("container", "clusters.create") => "container.clusters.create",
        ("container", "clusters.update" | "nodePools.update") => "container.clusters.update",
        ("container", "operations.list") => "container.operations.list",
        ("container", "operations.get") => "container.operations.get",
        ("iam", "serviceAccounts.list") => "iam.serviceAccounts.list",
        ("iam", "serviceAccounts.get") => "iam.serviceAccounts.get",
        ("iam", "serviceAccounts.create") => "iam.serviceAccounts.create",
        ("iam", "serviceAccounts.patch") => "iam.serviceAccounts.update",
        ("iam", "serviceAccounts.delete") => "iam.serviceAccounts.delete",
        ("iam", "serviceAccounts.enable") => "iam.serviceAccounts.enable",
        ("iam", "serviceAccounts.getIamPolicy") => "iam.serviceAccounts.getIamPolicy",
        ("iam", "serviceAccounts.setIamPolicy") => "iam.serviceAccounts.setIamPolicy",
        ("cloudresourcemanager", "projects.get") => "resourcemanager.projects.get",
        ("cloudresourcemanager", "projects.getIamPolicy") => {
            "resourcemanager.projects.getIamPolicy"
        }
        ("cloudresourcemanager", "projects.setIamPolicy") => {
            "resourcemanager.projects.setIamPolicy"
        }
        ("serviceusage", "services.get") => "serviceusage.services.get",
        ("serviceusage", "services.enable") => "serviceusage.services.enable",
        ("serviceusage", "operations.get") => "serviceusage.operations.get",
        _ => return None,
    })
}

#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EnvelopeError {
    message: String,
    status: String,
    errors: Vec<LegacyError>,
    details: Vec<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LegacyError {
    reason: String,
}

/// The rate a 429 says its quota allows, in requests per second: the
/// `quota_limit_value` of the `ErrorInfo` Google attaches to a
/// `RATE_LIMIT_EXCEEDED` answer, over the period its `quota_limit` names
/// (`...PerMinute...`, `...PerSecond...`, as in `ReadRequestsPerMinutePerProject`,
/// or the unit in the message's limit, "Requests per minute"). `None` when the
/// answer announces no limit or one over a longer period (a daily quota is
/// not a pace).
pub(crate) fn announced_rate(body: &str) -> Option<f64> {
    let Envelope { error } = serde_json::from_str::<Envelope>(body).ok()?;
    error.details.iter().find_map(|d| {
        let ty = d.get("@type")?.as_str()?;
        if !ty.ends_with("google.rpc.ErrorInfo") {
            return None;
        }
        let meta = d.get("metadata")?;
        let value: f64 = meta
            .get("quota_limit_value")?
            .as_str()?
            .trim()
            .parse()
            .ok()?;
        let limit = meta
            .get("quota_limit")
            .and_then(|l| l.as_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let message = error.message.to_ascii_lowercase();
        let per = |unit: &str| {
            limit.contains(&format!("per{unit}")) || message.contains(&format!("per {unit}"))
        };
        let seconds = if per("second") {
            1.0
        } else if per("minute") {
            60.0
        } else {
            return None;
        };
        (value.is_finite() && value > 0.0).then_some(value / seconds)
    })
}

/// Builds [`GcpError::Api`] from an error response. Bodies that are not the
/// Google envelope (proxies, OAuth-style errors) keep their text, shortened.
pub(crate) fn api_error(
    service: &'static str,
    method: &'static str,
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> GcpError {
    let (code, message, reason) = match serde_json::from_str::<Envelope>(body) {
        Ok(Envelope { error }) => {
            let info_reason = error.details.iter().find_map(|d| {
                let ty = d.get("@type")?.as_str()?;
                if ty.ends_with("google.rpc.ErrorInfo") {
                    d.get("reason")?.as_str().map(str::to_owned)
                } else {
                    None
                }
            });
            let legacy = error
                .errors
                .first()
                .map(|e| e.reason.clone())
                .filter(|r| !r.is_empty());
            (error.status, error.message, info_reason.or(legacy))
        }
        Err(_) => {
            let mut text: String = body.trim().chars().take(300).collect();
            if text.is_empty() {
                text = format!("HTTP {status} with an empty body");
            }
            (String::new(), text, None)
        }
    };
    GcpError::Api {
        service,
        method,
        status,
        code,
        message,
        reason,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_a_429_announces() {
        let body = |limit: &str, value: &str, message: &str| {
            format!(
                r#"{{"error":{{"code":429,"message":"{message}","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com","metadata":{{"quota_limit":"{limit}","quota_limit_value":"{value}"}}}}]}}}}"#
            )
        };
        let m = "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'iam.googleapis.com' for consumer 'project_number:1'.";
        assert_eq!(
            announced_rate(&body("ReadRequestsPerMinutePerProject", "1200", m)),
            Some(20.0)
        );
        assert_eq!(announced_rate(&body("x", "600", m)), Some(10.0));
        let d = "Quota exceeded for quota metric 'Requests' and limit 'Requests per day'.";
        assert_eq!(announced_rate(&body("RequestsPerDay", "1000", d)), None);
        assert_eq!(
            announced_rate(&body("RequestsPerSecond", "5", d)),
            Some(5.0)
        );
        assert_eq!(announced_rate(&body("RequestsPerMinute", "many", m)), None);
        assert_eq!(
            announced_rate(r#"{"error":{"code":429,"message":"Too many"}}"#),
            None
        );
        assert_eq!(announced_rate("not json"), None);
    }

    #[test]
    fn incompatible_operation_from_envelope() {
        let body = r#"{"error":{"code":400,"message":"Cluster is running incompatible operation operation-1-a.","status":"FAILED_PRECONDITION","errors":[{"reason":"failedPrecondition"}],"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CLUSTER_ALREADY_HAS_OPERATION","domain":"container.googleapis.com"}]}}"#;
        let e = api_error("container", "clusters.update", 400, None, body);
        assert!(e.is_incompatible_operation());
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "container clusters.update: HTTP 400 FAILED_PRECONDITION: Cluster is running incompatible operation operation-1-a."
        );
        let old = api_error(
            "container",
            "x",
            400,
            None,
            r#"{"error":{"code":400,"status":"FAILED_PRECONDITION","message":"Operation operation-1 is currently upgrading cluster c. Please wait and try again once it is done."}}"#,
        );
        assert!(old.is_incompatible_operation());
        let other = api_error(
            "container",
            "x",
            400,
            None,
            r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"Must specify a field to update."}}"#,
        );
        assert!(!other.is_incompatible_operation());
    }

    #[test]
    fn predicates() {
        let abort = api_error(
            "iam",
            "setIamPolicy",
            409,
            None,
            r#"{"error":{"code":409,"message":"There were concurrent policy changes.","status":"ABORTED","errors":[{"reason":"aborted"}]}}"#,
        );
        assert!(abort.is_etag_conflict() && !abort.is_already_exists());
        let exists = api_error(
            "iam",
            "create",
            409,
            None,
            r#"{"error":{"code":409,"message":"Service account gsa-x already exists within project projects/p.","status":"ALREADY_EXISTS"}}"#,
        );
        assert!(exists.is_already_exists() && !exists.is_etag_conflict());
        let pool = api_error(
            "iam",
            "setIamPolicy",
            400,
            None,
            r#"{"error":{"code":400,"message":"Identity Pool does not exist (p.svc.id.goog). Please check","status":"INVALID_ARGUMENT"}}"#,
        );
        assert!(pool.is_identity_pool_missing() && !pool.is_service_account_missing());
        let sa = api_error(
            "iam",
            "setIamPolicy",
            400,
            None,
            r#"{"error":{"code":400,"message":"Service account x@p.iam.gserviceaccount.com does not exist.","status":"INVALID_ARGUMENT"}}"#,
        );
        assert!(sa.is_service_account_missing() && !sa.is_identity_pool_missing());
        let busy = api_error(
            "serviceusage",
            "services.enable",
            400,
            None,
            r#"{"error":{"code":400,"message":"Another activation or deactivation is in progress.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert!(busy.is_operation_in_progress() && !sa.is_operation_in_progress());
        let off = api_error(
            "iamcredentials",
            "x",
            403,
            None,
            r#"{"error":{"code":403,"message":"IAM Service Account Credentials API has not been used","status":"PERMISSION_DENIED","errors":[{"reason":"accessNotConfigured"}],"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED"}]}}"#,
        );
        assert!(off.is_permission_denied() && off.is_service_disabled());
        let html = api_error("container", "x", 502, None, "<html>bad gateway</html>");
        assert!(html.is_retryable());
        assert_eq!(
            html.to_string(),
            "container x: HTTP 502: <html>bad gateway</html>"
        );
        assert!(api_error("c", "x", 429, None, "").is_retryable());
        assert!(!api_error("c", "x", 501, None, "").is_retryable());
        assert!(api_error("c", "x", 404, None, "").is_not_found());
        assert!(GcpError::Transport("reset".into()).is_retryable());
        assert!(!GcpError::Unreachable("refused".into()).is_retryable());
        assert!(!GcpError::Decode("x".into()).is_retryable());
    }

    #[test]
    fn a_refusal_names_the_identity_and_the_permission() {
        let bare = api_error(
            "cloudresourcemanager",
            "projects.getIamPolicy",
            403,
            None,
            r#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#,
        );
        let help = bare.denied_help("ci@p.iam.gserviceaccount.com").unwrap();
        assert!(help.starts_with("ci@p.iam.gserviceaccount.com lacks the permission resourcemanager.projects.getIamPolicy"), "{help}");
        let expired = api_error("iam", "serviceAccounts.list", 401, None, "");
        assert!(
            expired
                .denied_help("me")
                .unwrap()
                .contains("did not accept the credentials of me")
        );
        assert!(
            api_error("iam", "x", 409, None, "")
                .denied_help("me")
                .is_none()
        );
    }
}
