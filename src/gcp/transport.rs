//! How every Google call is made: build the URL from the API's endpoint and
//! percent-encoded segments, attach a bearer token, send, map errors to
//! [`GcpError`], retry under the one [`RetryPolicy`](super::RetryPolicy).

use std::sync::atomic::Ordering;

use reqwest::Method;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::GcpClient;
use super::error::{GcpError, api_error};
use super::retry;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    Container,
    Iam,
    Crm,
    ServiceUsage,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Container => "container",
            Api::Iam => "iam",
            Api::Crm => "cloudresourcemanager",
            Api::ServiceUsage => "serviceusage",
        }
    }
}

/// One request, described before it is sent (so retries resend the same thing).
pub(super) struct Call {
    api: Api,
    /// Discovery-style name for errors and logs, e.g. `serviceAccounts.get`.
    name: &'static str,
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Call {
    pub(super) fn new(api: Api, name: &'static str, method: Method, segments: &[&str]) -> Self {
        Self {
            api,
            name,
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }
    pub(super) fn query(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
    pub(super) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

pub(super) fn not_found_as_none<T>(r: Result<T, GcpError>) -> Result<Option<T>, GcpError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

impl GcpClient {
    fn base(&self, api: Api) -> &Url {
        let e = &self.inner.endpoints;
        match api {
            Api::Container => &e.container,
            Api::Iam => &e.iam,
            Api::Crm => &e.crm,
            Api::ServiceUsage => &e.serviceusage,
        }
    }

    fn url(&self, call: &Call) -> Result<Url, GcpError> {
        let mut url = self.base(call.api).clone();
        {
            let mut segs = url.path_segments_mut().map_err(|_| {
                GcpError::Config(format!(
                    "endpoint {} cannot take a path",
                    self.base(call.api)
                ))
            })?;
            segs.pop_if_empty();
            segs.extend(call.segments.iter());
        }
        if !call.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// One attempt: returns the 2xx body, or the error.
    async fn attempt(&self, call: &Call) -> Result<String, GcpError> {
        let url = self.url(call)?;
        let token = self.inner.tokens.token().await?;
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), url.clone())
            .bearer_auth(token.expose_secret());
        if let Some(body) = &call.body {
            req = req.json(body);
        } else if call.method != Method::GET && call.method != Method::DELETE {
            // Google's front ends answer 411 to a body-less POST without
            // `Content-Length`, and hyper omits it for empty bodies.
            req = req.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let started = Instant::now();
        let resp = req.send().await.map_err(|e| {
            let mut msg = format!("{} {}: {}", call.api.name(), call.name, e);
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            GcpError::Transport(msg)
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after);
        let text = resp.text().await.map_err(|e| {
            GcpError::Transport(format!(
                "{} {}: reading the response: {e}",
                call.api.name(),
                call.name
            ))
        })?;
        tracing::debug!(
            api = call.api.name(),
            call = call.name,
            method = %call.method,
            url = %url,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "google api"
        );
        if status.is_success() {
            Ok(text)
        } else {
            Err(api_error(
                call.api.name(),
                call.name,
                status.as_u16(),
                retry_after,
                &text,
            ))
        }
    }

    /// Sends `call` under the retry policy and decodes the JSON answer.
    pub(super) async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, GcpError> {
        let what = format!("{} {}", call.api.name(), call.name);
        let text = retry::run(
            &self.inner.retry,
            &self.inner.counters,
            &what,
            GcpError::is_retryable,
            || self.attempt(&call),
        )
        .await?;
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text).map_err(|e| GcpError::Decode(format!("{what}: {e}")))
    }
}
