//! Google's wire conventions in one place: the JSON error envelope, the
//! response headers, and request-body helpers that turn bad input into the
//! 400 INVALID_ARGUMENT Google sends (naming the field) instead of a panic.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

/// One Google API error, rendered as `{"error": {code, message, status, errors?, details?}}`.
#[derive(Debug, Clone)]
pub(crate) struct GoogleApiError {
    /// HTTP status code.
    pub code: u16,
    /// Canonical status (`INVALID_ARGUMENT`, `NOT_FOUND`, ...).
    pub status: &'static str,
    /// Human message, as Google words it.
    pub message: String,
    /// Legacy googleapi reason (`badRequest`, `notFound`, ...); `None` omits `errors[]`.
    pub reason: Option<&'static str>,
    /// `details[]` entries (ErrorInfo, BadRequest, ...).
    pub details: Vec<Value>,
    /// `Retry-After` seconds (429).
    pub retry_after: Option<u64>,
}

impl GoogleApiError {
    fn new(code: u16, status: &'static str, reason: Option<&'static str>, message: String) -> Self {
        Self {
            code,
            status,
            message,
            reason,
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 INVALID_ARGUMENT (reason `badRequest`).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "INVALID_ARGUMENT", Some("badRequest"), message.into())
    }

    /// 400 INVALID_ARGUMENT naming a field, with a BadRequest field violation.
    pub(crate) fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::invalid(message.clone()).with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": message}]
        }))
    }

    /// 400 FAILED_PRECONDITION (reason `failedPrecondition`).
    pub(crate) fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(
            400,
            "FAILED_PRECONDITION",
            Some("failedPrecondition"),
            message.into(),
        )
    }

    /// 404 NOT_FOUND (reason `notFound`).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NOT_FOUND", Some("notFound"), message.into())
    }

    /// 409 ALREADY_EXISTS (reason `alreadyExists`).
    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Self::new(409, "ALREADY_EXISTS", Some("alreadyExists"), message.into())
    }

    /// 409 ABORTED (reason `aborted`).
    pub(crate) fn aborted(message: impl Into<String>) -> Self {
        Self::new(409, "ABORTED", Some("aborted"), message.into())
    }

    /// The stale-etag answer of every setIamPolicy.
    pub(crate) fn concurrent_policy_change() -> Self {
        Self::aborted(
            "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
        )
    }

    /// 403 PERMISSION_DENIED (reason `forbidden`).
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "PERMISSION_DENIED", Some("forbidden"), message.into())
    }

    /// 403 PERMISSION_DENIED without `errors[]`, as Resource Manager sends it.
    pub(crate) fn forbidden_bare(message: impl Into<String>) -> Self {
        Self::new(403, "PERMISSION_DENIED", None, message.into())
    }

    /// 401 UNAUTHENTICATED: no credential at all.
    pub(crate) fn missing_credentials(service: &str, method: &str) -> Self {
        Self::new(
            401,
            "UNAUTHENTICATED",
            None,
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".into(),
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CREDENTIALS_MISSING",
            "domain": "googleapis.com",
            "metadata": {"service": service, "method": method}
        }))
    }

    /// 401 UNAUTHENTICATED: a credential the emulator did not issue, or expired.
    pub(crate) fn invalid_credentials(service: &str, method: &str) -> Self {
        Self::new(
            401,
            "UNAUTHENTICATED",
            Some("authError"),
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".into(),
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "domain": "googleapis.com",
            "metadata": {"service": service, "method": method}
        }))
    }

    /// 429 RESOURCE_EXHAUSTED with `Retry-After`.
    pub(crate) fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "RESOURCE_EXHAUSTED",
            Some("rateLimitExceeded"),
            "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service. (injected by wi emulator)".into(),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 429 RESOURCE_EXHAUSTED as Google sends it past a rate quota: the
    /// quota metric, limit and consumer in the message and in an `ErrorInfo`
    /// of reason `RATE_LIMIT_EXCEEDED`, a `Help` link, and no `Retry-After`.
    /// `per_minute` is the limit's value as Google states it (per minute).
    pub(crate) fn quota_exceeded(
        host: &str,
        read: bool,
        project_number: &str,
        per_minute: u64,
    ) -> Self {
        let (metric, limit, metric_id, limit_id) = if read {
            (
                "Read requests",
                "Read requests per minute",
                "read_requests",
                "ReadRequestsPerMinutePerProject",
            )
        } else {
            (
                "Write requests",
                "Write requests per minute",
                "write_requests",
                "WriteRequestsPerMinutePerProject",
            )
        };
        Self::new(
            429,
            "RESOURCE_EXHAUSTED",
            Some("rateLimitExceeded"),
            format!(
                "Quota exceeded for quota metric '{metric}' and limit '{limit}' of service '{host}' for consumer 'project_number:{project_number}'."
            ),
        )
        .with_error_info(
            "RATE_LIMIT_EXCEEDED",
            "googleapis.com",
            json!({
                "consumer": format!("projects/{project_number}"),
                "quota_limit": limit_id,
                "quota_limit_value": per_minute.to_string(),
                "quota_location": "global",
                "quota_metric": format!("{host}/{metric_id}"),
                "service": host,
            }),
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{
                "description": "Request a higher quota limit.",
                "url": "https://cloud.google.com/docs/quotas/help/request_increase"
            }]
        }))
    }

    /// Any status code, for fault injection.
    pub(crate) fn injected(code: u16) -> Self {
        match code {
            400 => Self::invalid("Request contains an invalid argument. (injected)"),
            401 => Self::invalid_credentials("emulator", "injected"),
            403 => Self::forbidden("The caller does not have permission (injected)"),
            404 => Self::not_found("Requested entity was not found. (injected)"),
            409 => Self::concurrent_policy_change(),
            429 => Self::rate_limited(1),
            500 => Self::new(
                500,
                "INTERNAL",
                Some("backendError"),
                "Internal error encountered. (injected)".into(),
            ),
            502 => Self::new(502, "UNAVAILABLE", None, "Bad Gateway (injected)".into()),
            503 => Self::new(
                503,
                "UNAVAILABLE",
                Some("backendError"),
                "The service is currently unavailable. (injected)".into(),
            ),
            504 => Self::new(
                504,
                "DEADLINE_EXCEEDED",
                None,
                "Deadline exceeded. (injected)".into(),
            ),
            other => Self::new(other, "UNKNOWN", None, "Injected failure.".into()),
        }
    }

    /// Adds a `details[]` entry.
    pub(crate) fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    /// Adds an ErrorInfo detail.
    pub(crate) fn with_error_info(self, reason: &str, domain: &str, metadata: Value) -> Self {
        self.with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": domain,
            "metadata": metadata
        }))
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Value {
        let mut err = serde_json::Map::new();
        err.insert("code".into(), json!(self.code));
        err.insert("message".into(), json!(self.message));
        if let Some(reason) = self.reason {
            err.insert(
                "errors".into(),
                json!([{"message": self.message, "domain": "global", "reason": reason}]),
            );
        }
        err.insert("status".into(), json!(self.status));
        if !self.details.is_empty() {
            err.insert("details".into(), Value::Array(self.details.clone()));
        }
        json!({ "error": Value::Object(err) })
    }

    /// The HTTP response.
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut resp = json_response(self.code, &self.body());
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.code == 401 {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        resp
    }
}

/// A JSON response with Google's headers.
pub(crate) fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    h.insert(header::SERVER, HeaderValue::from_static("ESF"));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// An OAuth-style error (`{"error", "error_description"}`), as the token and STS endpoints send.
pub(crate) fn oauth_error(code: u16, error: &str, description: &str) -> Response<Body> {
    json_response(
        code,
        &json!({"error": error, "error_description": description}),
    )
}

/// Result of a handler.
pub(crate) type GoogleApiResult = Result<Value, GoogleApiError>;

/// Parses a JSON request body. An empty body is `{}`.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, GoogleApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GoogleApiError::invalid_field(
            "",
            format!(
                "Invalid JSON payload received. {} at line {} column {}.",
                capitalise(&e.to_string()),
                e.line(),
                e.column()
            ),
        )
    })?;
    if !value.is_object() {
        return Err(GoogleApiError::invalid_field(
            "",
            "Invalid JSON payload received. Expected an object at the top level.".to_string(),
        ));
    }
    Ok(without_nulls(value))
}

/// Proto3 JSON reads `null` as "field not set": drop such keys everywhere.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k, without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Rejects keys not in `allowed` at `path` (`""` is the top level), as
/// Google's JSON parser does: `Invalid JSON payload received. Unknown name "x" at 'path': Cannot find field.`
pub(crate) fn check_keys(
    value: &Value,
    path: &str,
    allowed: &[&str],
) -> Result<(), GoogleApiError> {
    if let Some(obj) = value.as_object() {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!(" at '{path}'")
                };
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                return Err(GoogleApiError::invalid_field(
                    &field,
                    format!(
                        "Invalid JSON payload received. Unknown name \"{key}\"{at}: Cannot find field."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The object at `path` (dotted), if present; error if present with another type.
pub(crate) fn opt_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, GoogleApiError> {
    match lookup(value, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(type_error(path, "TYPE_MESSAGE", other)),
    }
}

/// The string at `path`, if present; error if present with another type.
pub(crate) fn opt_str<'a>(value: &'a Value, path: &str) -> Result<Option<&'a str>, GoogleApiError> {
    match lookup(value, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(path, "TYPE_STRING", other)),
    }
}

/// The integer at `path` (number or string of digits, as proto JSON allows).
pub(crate) fn opt_i64(value: &Value, path: &str) -> Result<Option<i64>, GoogleApiError> {
    match lookup(value, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| type_error(path, "TYPE_INT32", &Value::Number(n.clone()))),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| type_error(path, "TYPE_INT32", &Value::String(s.clone()))),
        Some(other) => Err(type_error(path, "TYPE_INT32", other)),
    }
}

/// The array at `path`, if present.
pub(crate) fn opt_array<'a>(
    value: &'a Value,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, GoogleApiError> {
    match lookup(value, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(type_error(path, "TYPE_MESSAGE (repeated)", other)),
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = value;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Google's type-mismatch message: `Invalid value at 'a.b' (TYPE_STRING), 12`.
pub(crate) fn type_error(path: &str, ty: &str, got: &Value) -> GoogleApiError {
    GoogleApiError::invalid_field(
        path,
        format!("Invalid value at '{}' ({ty}), {got}", snake_path(path)),
    )
}

/// `cluster.initialNodeCount` → `cluster.initial_node_count` (Google names proto fields so).
pub(crate) fn snake_path(path: &str) -> String {
    let mut out = String::new();
    for ch in path.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_is_invalid_argument() {
        let err = parse_body(b"{bad").unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.starts_with("Invalid JSON payload received."));
        assert_eq!(parse_body(b"").unwrap(), json!({}));
        assert_eq!(parse_body(b"[1]").unwrap_err().code, 400);
        assert_eq!(
            parse_body(br#"{"a": null, "b": [{"c": null, "d": 1}]}"#).unwrap(),
            json!({"b": [{"d": 1}]})
        );
    }

    #[test]
    fn unknown_key_and_type_errors_name_the_field() {
        let v = json!({"cluster": {"name": 5}, "zzz": 1});
        let err = check_keys(&v, "", &["cluster"]).unwrap_err();
        assert!(err.message.contains("\"zzz\""));
        let err = opt_str(&v, "cluster.name").unwrap_err();
        assert!(err.message.contains("'cluster.name'"), "{}", err.message);
    }

    #[test]
    fn envelope_shape() {
        let body = GoogleApiError::not_found("Unknown service account").body();
        assert_eq!(body["error"]["code"], 404);
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        assert_eq!(body["error"]["errors"][0]["reason"], "notFound");
        let bare = GoogleApiError::forbidden_bare("The caller does not have permission").body();
        assert!(bare["error"].get("errors").is_none());
    }
}
