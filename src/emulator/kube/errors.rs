//! `Status` error bodies exactly as kube-apiserver writes them. Clients (kubectl,
//! kube-rs, client-go) branch on `reason`, `code` and `details`, and users read
//! `message`, so the field order, the omitted empty fields and the wording all
//! follow `k8s.io/apimachinery/pkg/api/errors`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One `details.causes` entry (`metav1.StatusCause`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Cause {
    /// `FieldValueInvalid`, `FieldManagerConflict`, ...
    #[serde(rename = "reason", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `metav1.StatusDetails`, in Go's field order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
}

/// A failed request, rendered as a `Status` object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `None` renders no `details`; `Some(Details::default())` renders `{}`.
    pub details: Option<Box<Details>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details>,
    code: u16,
}

fn named(name: &str, kind: &str) -> Option<Box<Details>> {
    Some(Box::new(Details {
        name: name.to_string(),
        kind: kind.to_string(),
        ..Details::default()
    }))
}

impl ApiError {
    /// 404 `<resource> "<name>" not found`.
    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{resource} \"{name}\" not found"),
            details: named(name, resource),
        }
    }

    /// 409 `<resource> "<name>" already exists`.
    pub(crate) fn already_exists(resource: &str, name: &str) -> Self {
        Self {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{resource} \"{name}\" already exists"),
            details: named(name, resource),
        }
    }

    /// 409 optimistic-concurrency failure (stale `resourceVersion`).
    pub(crate) fn conflict_modified(resource: &str, name: &str) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            details: named(name, resource),
        }
    }

    /// 409 server-side apply conflict (`NewApplyConflict`).
    pub(crate) fn apply_conflict(message: String, causes: Vec<Cause>) -> Self {
        Self {
            code: 409,
            reason: "Conflict",
            message,
            details: Some(Box::new(Details {
                causes,
                ..Details::default()
            })),
        }
    }

    /// 422 `<Kind> "<name>" is invalid: ...` (`NewInvalid`); each cause is
    /// `(type, field, body)` where body is the text after `field: `.
    pub(crate) fn invalid(group: &str, kind: &str, name: &str, errs: Vec<FieldError>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let rendered: Vec<String> = errs.iter().map(FieldError::render).collect();
        let message = match rendered.len() {
            0 => format!("{qualified} \"{name}\" is invalid"),
            1 => format!("{qualified} \"{name}\" is invalid: {}", rendered[0]),
            _ => format!(
                "{qualified} \"{name}\" is invalid: [{}]",
                rendered.join(", ")
            ),
        };
        Self {
            code: 422,
            reason: "Invalid",
            message,
            details: Some(Box::new(Details {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                causes: errs
                    .into_iter()
                    .map(|e| Cause {
                        kind: e.kind.to_string(),
                        message: e.body,
                        field: e.field,
                    })
                    .collect(),
            })),
        }
    }

    /// 400 BadRequest with no details.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// 401 for a missing or unknown bearer token.
    pub(crate) fn unauthorized() -> Self {
        Self {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            details: None,
        }
    }

    /// 403 as the authorization filter words it (`NewForbidden` around
    /// `forbiddenMessage`): the subject names the resource without its
    /// subresource, the reason names both.
    pub(crate) fn forbidden(access: &super::KubeAccess<'_>, user: &str) -> Self {
        let full = if access.subresource.is_empty() {
            access.resource.to_string()
        } else {
            format!("{}/{}", access.resource, access.subresource)
        };
        let subject = if access.name.is_empty() {
            access.resource.to_string()
        } else {
            format!("{} \"{}\"", access.resource, access.name)
        };
        let scope = match access.namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        Self {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{subject} is forbidden: User \"{user}\" cannot {} resource \"{full}\" in API group \"\" {scope}",
                access.verb
            ),
            details: named(access.name, access.resource),
        }
    }

    /// 405 for a verb the resource does not support.
    pub(crate) fn method_not_allowed() -> Self {
        Self {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".into(),
            details: Some(Box::default()),
        }
    }

    /// 415 for a PATCH with an unknown content type.
    pub(crate) fn unsupported_patch_type() -> Self {
        Self {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml".into(),
            details: Some(Box::default()),
        }
    }

    /// 500 for a failure inside the emulator itself.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {message}"),
            details: Some(Box::new(Details {
                causes: vec![Cause {
                    kind: String::new(),
                    message,
                    field: String::new(),
                }],
                ..Details::default()
            })),
        }
    }

    /// The JSON body, byte for byte what kube-apiserver sends.
    pub(crate) fn body(&self) -> String {
        let body = StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_deref(),
            code: self.code,
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}

/// One `field.Error` of a validation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ...
    pub kind: &'static str,
    pub field: String,
    /// `Invalid value: "x": detail`, as `field.Error.ErrorBody()` renders it.
    pub body: String,
}

impl FieldError {
    /// `field.Invalid(path, value, detail)` for a string value.
    pub(crate) fn invalid(field: &str, value: &str, detail: &str) -> Self {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        Self {
            kind: "FieldValueInvalid",
            field: field.to_string(),
            body: format!("Invalid value: {quoted}: {detail}"),
        }
    }

    /// `field.Invalid(path, value, detail)` for a number.
    pub(crate) fn invalid_number(field: &str, value: i64, detail: &str) -> Self {
        Self {
            kind: "FieldValueInvalid",
            field: field.to_string(),
            body: format!("Invalid value: {value}: {detail}"),
        }
    }

    /// `field.Required(path, detail)`.
    pub(crate) fn required(field: &str, detail: &str) -> Self {
        let body = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            kind: "FieldValueRequired",
            field: field.to_string(),
            body,
        }
    }

    /// `field.Forbidden(path, detail)`.
    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            kind: "FieldValueForbidden",
            field: field.to_string(),
            body: format!("Forbidden: {detail}"),
        }
    }

    fn render(&self) -> String {
        format!("{}: {}", self.field, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_body_is_byte_exact() {
        assert_eq!(
            ApiError::not_found("serviceaccounts", "x").body(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"serviceaccounts \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"serviceaccounts"},"code":404}"#
        );
    }

    #[test]
    fn patch_options_invalid_names_group() {
        let e = ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )],
        );
        assert_eq!(
            e.body(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch","reason":"Invalid","details":{"group":"meta.k8s.io","kind":"PatchOptions","causes":[{"reason":"FieldValueRequired","message":"Required value: is required for apply patch","field":"fieldManager"}]},"code":422}"#
        );
    }

    #[test]
    fn forbidden_message_matches_rbac() {
        let access = super::super::KubeAccess {
            verb: "create",
            resource: "serviceaccounts",
            subresource: "token",
            namespace: Some("ns"),
            name: "x",
        };
        let e = ApiError::forbidden(&access, "u");
        assert_eq!(
            e.body(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"serviceaccounts \"x\" is forbidden: User \"u\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"ns\"","reason":"Forbidden","details":{"name":"x","kind":"serviceaccounts"},"code":403}"#
        );
    }
}
