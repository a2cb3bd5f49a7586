//! Typed errors of the Kubernetes client, with the predicates the engine
//! decides on (conflict, not found, forbidden, ...). Built from the API
//! server's `Status` body, never from request headers, so no token can leak.

/// An error from a Kubernetes API server (or from reaching it).
#[derive(thiserror::Error, Debug)]
pub enum KubeError {
    /// The API server answered with a `Status` failure.
    #[error("Kubernetes API: HTTP {status} {reason}: {message}")]
    Api {
        /// HTTP status (`Status.code`).
        status: u16,
        /// `Status.reason`: `Conflict`, `NotFound`, `AlreadyExists`, `Forbidden`, ...
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the Kubernetes API: {0}")]
    Transport(String),
    /// Building the client failed (no endpoint, bad CA, kubeconfig context).
    #[error("Kubernetes client configuration: {0}")]
    Config(String),
    /// A 2xx answer that is not what was expected.
    #[error("unexpected Kubernetes API response: {0}")]
    Decode(String),
}

impl KubeError {
    fn api(&self) -> Option<(u16, &str)> {
        match self {
            KubeError::Api { status, reason, .. } => Some((*status, reason.as_str())),
            _ => None,
        }
    }

    /// 409 `Conflict` (e.g. a server-side apply field-manager conflict without force).
    pub fn is_conflict(&self) -> bool {
        matches!(self.api(), Some((409, _)) | Some((_, "Conflict")))
    }

    /// 404 `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self.api(), Some((404, _)) | Some((_, "NotFound")))
    }

    /// 403 `Forbidden` (RBAC).
    pub fn is_forbidden(&self) -> bool {
        matches!(self.api(), Some((403, _)) | Some((_, "Forbidden")))
    }

    /// What to do about a 401 or 403 from a cluster reached as `identity`
    /// (the Google identity through GKE's endpoint, or a kubeconfig
    /// context's user; never a token). `gke_permission` is the GKE IAM
    /// permission that would grant the refused access, when known.
    pub fn denied_help(&self, identity: &str, gke_permission: Option<&str>) -> Option<String> {
        match self.api()? {
            (401, _) | (_, "Unauthorized") => Some(format!(
                "the cluster did not accept the credentials of {identity}: refresh them, or check the kubeconfig context's user"
            )),
            (403, _) | (_, "Forbidden") => Some(match gke_permission {
                Some(p) => format!(
                    "{identity} is not allowed by the cluster's RBAC or GKE IAM: grant it an RBAC rule for this access, or {p} in GKE IAM (README \"Permissions\")"
                ),
                None => format!(
                    "{identity} is not allowed by the cluster's RBAC or GKE IAM: see the Kubernetes accesses `wi` needs in README \"Permissions\""
                ),
            }),
            _ => None,
        }
    }

    /// 409 `AlreadyExists`.
    pub fn is_already_exists(&self) -> bool {
        matches!(self.api(), Some((_, "AlreadyExists")))
    }

    /// 422 `Invalid`.
    pub fn is_invalid(&self) -> bool {
        matches!(self.api(), Some((422, _)) | Some((_, "Invalid")))
    }

    /// Worth retrying: 429, 500, 502-504, timeouts, transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            KubeError::Api { status, reason, .. } => {
                matches!(*status, 429 | 500 | 502 | 503 | 504)
                    || matches!(
                        reason.as_str(),
                        "TooManyRequests" | "ServerTimeout" | "Timeout" | "ServiceUnavailable"
                    )
            }
            KubeError::Transport(_) => true,
            _ => false,
        }
    }
}

impl From<::kube::Error> for KubeError {
    fn from(e: ::kube::Error) -> Self {
        match e {
            ::kube::Error::Api(status) => KubeError::Api {
                status: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            ::kube::Error::SerdeError(e) => KubeError::Decode(e.to_string()),
            ::kube::Error::InferConfig(e) => KubeError::Config(e.to_string()),
            ::kube::Error::Discovery(e) => KubeError::Config(e.to_string()),
            ::kube::Error::InferKubeconfig(e) => KubeError::Config(e.to_string()),
            ::kube::Error::RustlsTls(e) => KubeError::Config(format!("TLS: {e}")),
            ::kube::Error::Auth(e) => KubeError::Config(format!("authentication: {e}")),
            other => {
                let mut msg = other.to_string();
                let mut src = std::error::Error::source(&other);
                while let Some(s) = src {
                    let s_text = s.to_string();
                    if !msg.contains(&s_text) {
                        msg.push_str(": ");
                        msg.push_str(&s_text);
                    }
                    src = s.source();
                }
                KubeError::Transport(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        let conflict = KubeError::Api {
            status: 409,
            reason: "Conflict".into(),
            message: "Apply failed with 1 conflict".into(),
        };
        assert!(conflict.is_conflict() && !conflict.is_already_exists());
        assert!(!conflict.is_retryable());
        let exists = KubeError::Api {
            status: 409,
            reason: "AlreadyExists".into(),
            message: "x".into(),
        };
        assert!(exists.is_already_exists());
        assert!(
            KubeError::Api {
                status: 503,
                reason: "ServiceUnavailable".into(),
                message: String::new()
            }
            .is_retryable()
        );
        assert!(KubeError::Transport("reset".into()).is_retryable());
    }

    #[test]
    fn a_refusal_names_the_identity() {
        let forbidden = KubeError::Api {
            status: 403,
            reason: "Forbidden".into(),
            message: "pods is forbidden".into(),
        };
        let help = forbidden
            .denied_help("ci@p.iam.gserviceaccount.com", Some("container.pods.list"))
            .unwrap();
        assert!(
            help.starts_with("ci@p.iam.gserviceaccount.com is not allowed"),
            "{help}"
        );
        assert!(help.contains("container.pods.list"), "{help}");
        assert!(
            KubeError::Transport("x".into())
                .denied_help("me", None)
                .is_none()
        );
    }
}
