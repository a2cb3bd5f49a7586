//! The emulator over HTTPS as a Google client sees it: calls with the
//! reqwest client of a [`TestEmu`] (which trusts the emulator's CA), and a
//! small validator that checks every response body against Google's
//! discovery documents.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::{TestEmu, data};

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestEmu {
    /// Calls `path` (e.g. `/container/v1/projects/p/...`) with the admin token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let token = self.token.clone();
        self.call_as(Some(&token), method, path, body).await
    }

    /// Calls `path` with `token` (or none) and validates the response against discovery.
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("{}{}", self.emu.base_url(), path);
        let mut rb = self.client.request(method.clone(), &url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request reaches the emulator");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("non-JSON body from {path}: {e}: {text}"))
        };
        self.check(method.as_str(), path, status, &body);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Checks one answer against discovery and keeps its problems in this
    /// emulator's own log (see [`TestEmu::schema_problems`]).
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let problems = check_response(method, path, status, body);
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(problems);
    }

    /// The schema problems of the answers of this emulator, so that a test
    /// sees its own and not those of the other tests of the binary.
    pub fn schema_problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Raw body bytes (for malformed-input tests).
    pub async fn call_raw(&self, method: Method, path: &str, body: &'static [u8]) -> Answer {
        let url = format!("{}{}", self.emu.base_url(), path);
        let resp = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.check(method.as_str(), path, status, &body);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Polls a GKE operation until DONE.
    pub async fn wait_op(&self, location: &str, op: &Value) -> Value {
        let name = op["name"].as_str().expect("operation name");
        for _ in 0..200 {
            let a = self
                .call(
                    Method::GET,
                    &format!(
                        "/container/v1/projects/{}/locations/{location}/operations/{name}",
                        self.project
                    ),
                    None,
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
            if a.body["status"] == "DONE" {
                return a.body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation {name} never finished");
    }
}

// ---------------------------------------------------------------------------
// Discovery-document validation.

/// Checks an error body has Google's envelope, a success body its method's schema.
/// Problems are returned (and kept per emulator, [`TestEmu::schema_problems`])
/// rather than panicking, so a suite can report all of them; tests assert the
/// list is empty.
pub fn check_response(method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
    let problems = if status >= 400 {
        check_error_body(path, body)
    } else {
        validate_against_discovery(method, path, body)
    };
    let problems: Vec<String> = problems
        .into_iter()
        .map(|p| format!("{method} {path}: {p}"))
        .collect();
    let mut n = VALIDATED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    *n += 1;
    problems
}

static VALIDATED: OnceLock<Mutex<u64>> = OnceLock::new();

/// Number of responses checked so far.
pub fn validated_count() -> u64 {
    *VALIDATED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn check_error_body(path: &str, body: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if path.starts_with("/sts/") || path == "/token" {
        if body.get("error").and_then(Value::as_str).is_none() {
            p.push(format!("OAuth error body without string `error`: {body}"));
        }
        return p;
    }
    let e = &body["error"];
    if e["code"].as_u64().is_none() {
        p.push(format!("error.code missing: {body}"));
    }
    if e["message"].as_str().is_none() {
        p.push(format!("error.message missing: {body}"));
    }
    if e["status"].as_str().is_none() {
        p.push(format!("error.status missing: {body}"));
    }
    p
}

struct DiscoveryMethod {
    http: String,
    segments: Vec<String>,
    verb: Option<String>,
    response: Option<String>,
    doc: &'static Value,
}

fn docs() -> &'static BTreeMap<String, Value> {
    static DOCS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let mut m = BTreeMap::new();
        for (key, file) in [
            ("container/v1", "container-v1.json"),
            ("iam/v1", "iam-v1.json"),
            ("cloudresourcemanager/v1", "cloudresourcemanager-v1.json"),
            ("cloudresourcemanager/v3", "cloudresourcemanager-v3.json"),
            ("serviceusage/v1", "serviceusage-v1.json"),
            ("iamcredentials/v1", "iamcredentials-v1.json"),
            ("sts/v1", "sts-v1.json"),
        ] {
            let text =
                std::fs::read_to_string(data(&format!("discovery/{file}"))).expect("discovery doc");
            m.insert(
                key.to_string(),
                serde_json::from_str(&text).expect("discovery json"),
            );
        }
        m
    })
}

fn methods() -> &'static BTreeMap<String, Vec<DiscoveryMethod>> {
    static M: OnceLock<BTreeMap<String, Vec<DiscoveryMethod>>> = OnceLock::new();
    M.get_or_init(|| {
        let mut out = BTreeMap::new();
        for (key, doc) in docs() {
            let mut list = Vec::new();
            collect_methods(doc, doc, &mut list);
            out.insert(key.clone(), list);
        }
        out
    })
}

fn collect_methods(doc: &'static Value, node: &'static Value, out: &mut Vec<DiscoveryMethod>) {
    if let Some(ms) = node.get("methods").and_then(Value::as_object) {
        for m in ms.values() {
            let path = m
                .get("flatPath")
                .or_else(|| m.get("path"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let (p, verb) = match path.rsplit_once('}') {
                Some((_, tail)) if tail.starts_with(':') => {
                    let idx = path.len() - tail.len();
                    (path[..idx].to_string(), Some(tail[1..].to_string()))
                }
                _ => match path.rsplit_once(':') {
                    Some((a, b)) if !b.contains('/') => (a.to_string(), Some(b.to_string())),
                    _ => (path.to_string(), None),
                },
            };
            out.push(DiscoveryMethod {
                http: m["httpMethod"].as_str().unwrap_or("").to_string(),
                segments: p.split('/').map(str::to_string).collect(),
                verb,
                response: m
                    .pointer("/response/$ref")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                doc,
            });
        }
    }
    if let Some(rs) = node.get("resources").and_then(Value::as_object) {
        for r in rs.values() {
            collect_methods(doc, r, out);
        }
    }
}

/// The response schema name of the discovery method serving `method path`, if any.
pub fn response_schema(method: &str, path: &str) -> Option<(String, &'static Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let trimmed = path.trim_start_matches('/');
    let (service, rest) = trimmed.split_once('/')?;
    let (version, rest) = rest.split_once('/')?;
    let version = if version == "v1beta1" { "v1" } else { version };
    let list = methods().get(&format!("{service}/{version}"))?;
    let mut segs: Vec<&str> = std::iter::once(version).chain(rest.split('/')).collect();
    let mut verb = None;
    if let Some(last) = segs.last_mut()
        && let Some((a, v)) = last.split_once(':')
    {
        *last = a;
        verb = Some(v);
    }
    for m in list {
        if m.http != method || m.segments.len() != segs.len() || m.verb.as_deref() != verb {
            continue;
        }
        let ok = m
            .segments
            .iter()
            .zip(&segs)
            .all(|(t, s)| t.starts_with('{') || t == s);
        if ok {
            return Some((m.response.clone().unwrap_or_else(|| "Empty".into()), m.doc));
        }
    }
    None
}

/// Validates `body` against the discovery schema of `method path`.
pub fn validate_against_discovery(method: &str, path: &str, body: &Value) -> Vec<String> {
    if path.starts_with("/emulator/") || path.starts_with("/authn/") || path == "/token" {
        return Vec::new();
    }
    let Some((schema, doc)) = response_schema(method, path) else {
        return vec!["no discovery method matches this path".into()];
    };
    let mut problems = Vec::new();
    validate_ref(doc, &schema, body, "", &mut problems);
    // Only the v1 container document is at hand: v1beta1 bodies may carry
    // beta-only fields (echoed from the request), so check their types only.
    if path.contains("/v1beta1/") {
        problems.retain(|p| !p.ends_with("unknown field"));
    }
    problems
}

fn validate_ref(doc: &Value, name: &str, v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(schema) = doc.pointer(&format!("/schemas/{name}")) else {
        out.push(format!("{at}: unknown schema {name}"));
        return;
    };
    validate_schema(doc, schema, v, at, out);
}

fn validate_schema(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return validate_ref(doc, r, v, at, out);
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let ok = match ty {
        "string" => v.is_string(),
        "integer" if matches!(format, "int64" | "uint64") => {
            v.as_str().is_some_and(|s| s.parse::<i128>().is_ok())
        }
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    };
    if !ok {
        out.push(format!(
            "{at}: expected {ty}{}, got {v}",
            if format.is_empty() {
                String::new()
            } else {
                format!(" ({format})")
            }
        ));
        return;
    }
    match ty {
        "array" => {
            if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
                for (i, x) in arr.iter().enumerate() {
                    validate_schema(doc, items, x, &format!("{at}[{i}]"), out);
                }
            }
        }
        "object" => {
            let obj = v.as_object().expect("checked");
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties");
            for (k, x) in obj {
                let child = format!("{at}.{k}");
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(s), _) => validate_schema(doc, s, x, &child, out),
                    (None, Some(s)) => validate_schema(doc, s, x, &child, out),
                    (None, None) => {
                        // `@type`-tagged Any values carry arbitrary fields.
                        if !obj.contains_key("@type") {
                            out.push(format!("{child}: unknown field"));
                        }
                    }
                }
            }
        }
        _ => {}
    }
}
