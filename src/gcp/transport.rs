//! How every Google call is made: build the URL from the API's endpoint and
//! percent-encoded segments, attach a bearer token, send, map errors to
//! [`GcpError`], retry under the one [`RetryPolicy`](super::RetryPolicy).

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::GcpClient;
use super::error::{GcpError, api_error};
use super::retry;

/// How long one attempt waits for the answer once connected. Every call `wi`
/// makes answers in a second or two (long-running work is an operation it
/// polls), so a server silent for this long is not going to answer: the call
/// fails as unreachable rather than being resent.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    Container,
    Iam,
    Crm,
    ServiceUsage,
}

impl Api {
    pub(super) fn from_name(name: &str) -> Option<Api> {
        [Api::Container, Api::Iam, Api::Crm, Api::ServiceUsage]
            .into_iter()
            .find(|a| a.name() == name)
    }

    pub(super) fn name(self) -> &'static str {
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
    /// A bearer the caller brings (a KSA's federated token in `wi verify`)
    /// instead of the client's own credentials. Never logged.
    bearer: Option<secrecy::SecretString>,
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
            bearer: None,
        }
    }
    /// The quota partition's project: the segment after `projects` (less a
    /// custom verb), or for `projects/-/serviceAccounts/A@P.iam...` the
    /// account's project; `-` when the path names none.
    fn project(&self) -> &str {
        let mut segs = self.segments.iter();
        while let Some(s) = segs.next() {
            if s == "projects" {
                let p = segs.next().map(String::as_str).unwrap_or("-");
                let p = p.split(':').next().unwrap_or(p);
                if p != "-" {
                    return p;
                }
                return segs
                    .nth(1)
                    .and_then(|a| a.split_once('@'))
                    .and_then(|(_, d)| d.split(".iam.gserviceaccount.com").next())
                    .filter(|p| !p.is_empty())
                    .unwrap_or("-");
            }
        }
        "-"
    }
    pub(super) fn query(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
    pub(super) fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    /// Sends the call with `bearer` instead of the client's own token.
    pub(super) fn bearer(mut self, bearer: &secrecy::SecretString) -> Self {
        self.bearer = Some(bearer.clone());
        self
    }
}

/// Classifies a request that got no HTTP answer. What resending cannot heal
/// (connection refused, a connect or TLS handshake that never completes or
/// fails) is [`GcpError::Unreachable`], returned at once; a request that
/// could not even be built is a configuration error; the rest (a reset, a
/// timeout after the request was sent) is [`GcpError::Transport`], retried
/// briefly.
fn send_error(call: &Call, url: &Url, e: &reqwest::Error, elapsed: Duration) -> GcpError {
    let mut chain = e.to_string();
    let mut refused = false;
    let mut tls = false;
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        // io::Errors nest (rustls' handshake failure sits inside two of
        // them) and their `source()` skips the inner one: walk `get_ref`.
        let mut inner: &(dyn std::error::Error + 'static) = s;
        while let Some(io) = inner.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            match io.get_ref() {
                Some(next) => inner = next,
                None => break,
            }
        }
        tls |= inner.downcast_ref::<rustls::Error>().is_some();
        src = s.source();
    }
    let host = match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.to_string(),
    };
    let what = format!("{} {} ({host})", call.api.name(), call.name);
    // A plain-http endpoint in front of an HTTPS server answers nothing a
    // client can parse: say so, since that is the usual cause.
    let scheme_hint = if url.scheme() == "http" {
        "; the endpoint is http://: does the server expect https://?"
    } else {
        ""
    };
    if e.is_builder() {
        return GcpError::Config(format!("{what}: cannot build the request: {chain}"));
    }
    if e.is_connect() && e.is_timeout() {
        return GcpError::Unreachable(format!(
            "{what}: no answer within {}s: the server accepts connections but does not answer{scheme_hint}",
            elapsed.as_secs().max(1)
        ));
    }
    if e.is_timeout() {
        return GcpError::Unreachable(format!(
            "{what}: no answer within {}s of sending the request{scheme_hint}",
            elapsed.as_secs().max(1)
        ));
    }
    if refused {
        return GcpError::Unreachable(format!(
            "{what}: connection refused: nothing listens there (check the endpoint override)"
        ));
    }
    if tls {
        return GcpError::Unreachable(format!(
            "{what}: TLS handshake failed: {chain} (is it an https:// endpoint? a private CA needs CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE)"
        ));
    }
    if e.is_connect() {
        return GcpError::Unreachable(format!("{what}: cannot connect: {chain}"));
    }
    GcpError::Transport(format!("{what}: {chain}{scheme_hint}"))
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
        let token = match &call.bearer {
            Some(b) => b.clone(),
            None => self.inner.tokens.token().await?,
        };
        let (api, project) = (call.api.name(), call.project());
        let _in_flight = self.inner.throttles.enter(api, project).await;
        let sent = self.inner.throttles.admit(api, project).await;
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), url.clone())
            .timeout(ANSWER_TIMEOUT)
            .bearer_auth(token.expose_secret());
        if let Some(body) = &call.body {
            req = req.json(body);
        } else if call.method != Method::GET && call.method != Method::DELETE {
            // Google's front ends answer 411 to a body-less POST without
            // `Content-Length`, and hyper omits it for empty bodies.
            req = req.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let started = Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| send_error(call, &url, &e, started.elapsed()))?;
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
        if status.as_u16() == 429 {
            let announced = super::error::announced_rate(&text);
            self.inner
                .throttles
                .throttled(api, project, sent, retry_after, announced);
        } else if status.is_success() {
            self.inner.throttles.succeeded(api, project);
        }
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
            |e| {
                e.status() == Some(429)
                    && self
                        .inner
                        .throttles
                        .rate(call.api.name(), call.project())
                        .is_some()
            },
            || self.attempt(&call),
        )
        .await?;
        let text = if text.trim().is_empty() { "{}" } else { &text };
        serde_json::from_str(text).map_err(|e| GcpError::Decode(format!("{what}: {e}")))
    }
}
