//! One REST client for the four Google APIs `wi` reads and writes (GKE, IAM,
//! Resource Manager v1, Service Usage). Every call goes through the same path:
//! build the URL from the endpoint and percent-encoded segments, attach a
//! bearer token, send, map errors to [`GcpError`], retry with the one
//! [`RetryPolicy`]. On top of that sit the waits `wi` needs: GKE operations,
//! Service Usage operations and etag-guarded IAM read-modify-write.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use super::auth::TokenSource;
use super::endpoints::Endpoints;
use super::error::{GcpError, api_error};
use super::retry::{self, ClientStats, Counters, RetryPolicy};
use super::types::{
    Cluster, LongRunningOperation, Operation, Policy, Project, Service, ServiceAccount,
};
use crate::ids::ClusterKey;

/// How the HTTP client is built.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Extra PEM CA bundle trusted in addition to the system roots
    /// (gcloud's `CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Timeout of one HTTP attempt.
    pub timeout: Duration,
    /// Timeout of one TCP/TLS connect.
    pub connect_timeout: Duration,
    /// The retry policy of every call.
    pub retry: RetryPolicy,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: format!("wi/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl ClientOptions {
    /// Defaults plus `CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE`.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            ca_file: get("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE")
                .filter(|p| !p.trim().is_empty())
                .map(|p| PathBuf::from(p.trim())),
            ..Self::default()
        }
    }
}

/// Whose IAM policy [`GcpClient::modify_iam_policy`] edits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyTarget {
    /// A Google service account (IAM v1 `serviceAccounts.{get,set}IamPolicy`).
    ServiceAccount {
        /// The account's email.
        email: String,
    },
    /// A project (Resource Manager v1 `projects.{get,set}IamPolicy`).
    Project {
        /// Project id.
        project: String,
    },
}

impl fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyTarget::ServiceAccount { email } => write!(f, "service account {email}"),
            PolicyTarget::Project { project } => write!(f, "project {project}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
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
struct Call {
    api: Api,
    /// Discovery-style name for errors and logs, e.g. `serviceAccounts.get`.
    name: &'static str,
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Call {
    fn new(api: Api, name: &'static str, method: Method, segments: &[&str]) -> Self {
        Self {
            api,
            name,
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }
    fn query(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: Arc<dyn TokenSource>,
    retry: RetryPolicy,
    counters: Arc<Counters>,
}

/// The Google REST client. Cheap to clone (one `reqwest::Client` and one set
/// of counters shared by all clones).
#[derive(Clone)]
pub struct GcpClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for GcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpClient")
            .field("endpoints", &self.inner.endpoints)
            .field("tokens", &self.inner.tokens.describe())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ListServiceAccountsResponse {
    accounts: Vec<ServiceAccount>,
    next_page_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListOperationsResponse {
    operations: Vec<Operation>,
}

/// The cluster a GKE operation targets, from its `targetLink`
/// (`.../clusters/C` or `.../clusters/C/nodePools/NP`).
pub fn operation_cluster(op: &Operation) -> Option<&str> {
    let link = op.target_link.as_deref()?;
    let (_, rest) = link.split_once("/clusters/")?;
    rest.split('/').next().filter(|c| !c.is_empty())
}

/// The node pool a GKE operation targets, from a `targetLink` ending in
/// `.../clusters/C/nodePools/NP`; `None` for cluster-level operations.
pub fn operation_node_pool(op: &Operation) -> Option<&str> {
    let link = op.target_link.as_deref()?;
    let (_, rest) = link.split_once("/nodePools/")?;
    rest.split('/').next().filter(|p| !p.is_empty())
}

/// The project of a service-account email `ID@P.iam.gserviceaccount.com`, or `-`
/// (IAM resolves the account from the email alone).
fn sa_project(email: &str) -> &str {
    email
        .split_once('@')
        .and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"))
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .unwrap_or("-")
}

/// A call on one service account: `v1/projects/P/serviceAccounts/{email}{suffix}`
/// (`suffix` is empty or a custom verb such as `:getIamPolicy`).
fn service_account_call(name: &'static str, method: Method, email: &str, suffix: &str) -> Call {
    Call::new(
        Api::Iam,
        name,
        method,
        &[
            "v1",
            "projects",
            sa_project(email),
            "serviceAccounts",
            &format!("{email}{suffix}"),
        ],
    )
}

fn not_found_as_none<T>(r: Result<T, GcpError>) -> Result<Option<T>, GcpError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// IAM rejects or drops empty bindings; conditions need policy version 3.
fn normalize_policy(policy: &mut Policy) {
    policy.bindings.retain(|b| !b.members.is_empty());
    if policy.bindings.iter().any(|b| b.condition.is_some()) {
        policy.version = Some(3);
    }
}

fn operation_error(op: &Operation) -> Option<String> {
    if let Some(err) = &op.error {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        if !message.is_empty() || code != 0 {
            return Some(if message.is_empty() {
                format!("error code {code}")
            } else {
                message.to_owned()
            });
        }
    }
    op.status_message.clone().filter(|m| !m.trim().is_empty())
}

impl GcpClient {
    /// Builds the client. Installs rustls' ring provider if the process has none
    /// (reqwest is built without one).
    pub fn new(
        endpoints: Endpoints,
        tokens: Arc<dyn TokenSource>,
        options: ClientOptions,
    ) -> Result<Self, GcpError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone());
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                GcpError::Config(format!("cannot read CA bundle {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| GcpError::Config(format!("bad CA bundle {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(GcpError::Config(format!(
                    "CA bundle {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| GcpError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                tokens,
                retry: options.retry,
                counters: Arc::new(Counters::default()),
            }),
        })
    }

    /// The endpoints this client calls.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The retry policy of every call.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// Requests sent and retries made so far, over all clones.
    pub fn stats(&self) -> ClientStats {
        self.inner.counters.snapshot()
    }

    /// A Google access token from the client's token source (for Kubernetes).
    pub async fn access_token(&self) -> Result<SecretString, GcpError> {
        self.inner.tokens.token().await
    }

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
    async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, GcpError> {
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

    // ---------------------------------------------------------------- GKE

    fn operation_segments<'a>(project: &'a str, location: &'a str) -> [&'a str; 6] {
        [
            "v1",
            "projects",
            project,
            "locations",
            location,
            "operations",
        ]
    }

    fn cluster_segments(key: &ClusterKey) -> [&str; 7] {
        [
            "v1",
            "projects",
            &key.project,
            "locations",
            &key.location,
            "clusters",
            &key.name,
        ]
    }

    /// `clusters.get`; `None` when the cluster does not exist.
    pub async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, GcpError> {
        let call = Call::new(
            Api::Container,
            "clusters.get",
            Method::GET,
            &Self::cluster_segments(key),
        );
        not_found_as_none(self.send(call).await)
    }

    /// `clusters.create` with `cluster` as the Cluster body (its `name` is set
    /// from `key` when absent). Returns the operation to wait for.
    pub async fn create_cluster(
        &self,
        key: &ClusterKey,
        mut cluster: Value,
    ) -> Result<Operation, GcpError> {
        let Some(obj) = cluster.as_object_mut() else {
            return Err(GcpError::Config(
                "cluster body must be a JSON object".into(),
            ));
        };
        obj.entry("name")
            .or_insert_with(|| Value::String(key.name.clone()));
        let parent = format!("projects/{}/locations/{}", key.project, key.location);
        let call = Call::new(
            Api::Container,
            "clusters.create",
            Method::POST,
            &[
                "v1",
                "projects",
                &key.project,
                "locations",
                &key.location,
                "clusters",
            ],
        )
        .body(json!({ "cluster": cluster, "parent": parent }));
        self.send(call).await
    }

    /// `clusters.update` with `desiredWorkloadIdentityConfig`; `None` sends
    /// `workloadPool: ""`, which disables Workload Identity.
    pub async fn set_workload_pool(
        &self,
        key: &ClusterKey,
        pool: Option<&str>,
    ) -> Result<Operation, GcpError> {
        let call = Call::new(
            Api::Container,
            "clusters.update",
            Method::PUT,
            &Self::cluster_segments(key),
        )
        .body(json!({
            "name": key.path(),
            "update": { "desiredWorkloadIdentityConfig": { "workloadPool": pool.unwrap_or("") } },
        }));
        self.send(call).await
    }

    /// `nodePools.update` with `workloadMetadataConfig.mode` (`GKE_METADATA` or
    /// `GCE_METADATA`). GKE recreates the pool's nodes (`UPGRADE_NODES`).
    pub async fn set_node_pool_metadata_mode(
        &self,
        key: &ClusterKey,
        pool: &str,
        mode: &str,
    ) -> Result<Operation, GcpError> {
        let mut segs = Self::cluster_segments(key).to_vec();
        segs.extend(["nodePools", pool]);
        let call = Call::new(Api::Container, "nodePools.update", Method::PUT, &segs).body(json!({
            "name": format!("{}/nodePools/{pool}", key.path()),
            "workloadMetadataConfig": { "mode": mode },
        }));
        self.send(call).await
    }

    /// `operations.list` of one location.
    pub async fn list_operations(
        &self,
        project: &str,
        location: &str,
    ) -> Result<Vec<Operation>, GcpError> {
        let call = Call::new(
            Api::Container,
            "operations.list",
            Method::GET,
            &Self::operation_segments(project, location),
        );
        let r: ListOperationsResponse = self.send(call).await?;
        Ok(r.operations)
    }

    /// `operations.get` by bare name (`operation-...`).
    pub async fn get_operation(
        &self,
        project: &str,
        location: &str,
        name: &str,
    ) -> Result<Operation, GcpError> {
        let mut segs = Self::operation_segments(project, location).to_vec();
        segs.push(name);
        let call = Call::new(Api::Container, "operations.get", Method::GET, &segs);
        self.send(call).await
    }

    /// Operations of `key`'s location that target the cluster (or one of its
    /// node pools) and are not `DONE`: what another `wi apply`, gcloud or GKE
    /// itself is doing to the cluster right now.
    pub async fn running_operations(&self, key: &ClusterKey) -> Result<Vec<Operation>, GcpError> {
        let ops = self.list_operations(&key.project, &key.location).await?;
        Ok(ops
            .into_iter()
            .filter(|op| op.status != "DONE" && operation_cluster(op) == Some(key.name.as_str()))
            .collect())
    }

    /// Polls a GKE operation with backoff until `DONE`, calling `progress` after
    /// every poll. Transport errors and 5xx between polls are survived (the
    /// operation runs server-side regardless). `DONE` with `error` or
    /// `statusMessage` is [`GcpError::OperationFailed`]; past `deadline`,
    /// [`GcpError::Timeout`].
    pub async fn wait_operation(
        &self,
        project: &str,
        location: &str,
        op: &Operation,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
    ) -> Result<Operation, GcpError> {
        let start = Instant::now();
        let mut polls = self.inner.retry.poll_backoff();
        let mut current = op.clone();
        progress(&current);
        loop {
            if current.status == "DONE" {
                return match operation_error(&current) {
                    Some(message) => Err(GcpError::OperationFailed {
                        operation: current.name.clone(),
                        operation_type: current.operation_type.clone(),
                        message,
                    }),
                    None => Ok(current),
                };
            }
            let delay = polls.next().unwrap_or(self.inner.retry.poll_max);
            if start.elapsed() + delay > deadline {
                return Err(GcpError::Timeout {
                    what: format!("GKE operation {} ({})", op.name, op.operation_type),
                    after: deadline,
                });
            }
            tokio::time::sleep(delay).await;
            match self.get_operation(project, location, &op.name).await {
                Ok(next) => {
                    current = next;
                    progress(&current);
                }
                Err(e) if e.is_retryable() => {
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(operation = %op.name, error = %e, "polling failed; polling on");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until no operation runs on the cluster (see
    /// [`Self::running_operations`]); used before and after "incompatible
    /// operation" refusals, and to pick up an operation a previous run started.
    pub async fn wait_cluster_idle(
        &self,
        key: &ClusterKey,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
    ) -> Result<(), GcpError> {
        let start = Instant::now();
        let mut pause = self.inner.retry.poll_backoff();
        loop {
            let running = self.running_operations(key).await?;
            let Some(op) = running.first() else {
                return Ok(());
            };
            let left = deadline.saturating_sub(start.elapsed());
            match self
                .wait_operation(&key.project, &key.location, op, left, progress)
                .await
            {
                // Someone else's failed operation is not ours to report.
                Ok(_) | Err(GcpError::OperationFailed { .. }) => {}
                Err(e) => return Err(e),
            }
            // The list may still show the operation for a moment after it is
            // DONE: never spin on it.
            let delay = pause.next().unwrap_or(self.inner.retry.poll_max);
            if start.elapsed() + delay > deadline {
                return Err(GcpError::Timeout {
                    what: format!("cluster {key} to have no running operation"),
                    after: deadline,
                });
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Starts a GKE change with `start` and sees it through: when GKE refuses
    /// because another operation runs on the cluster ("incompatible
    /// operation"), waits for that operation (reported through `progress`) and
    /// starts again; then waits for the new operation. All within `deadline`.
    pub async fn run_cluster_operation<F, Fut>(
        &self,
        key: &ClusterKey,
        deadline: Duration,
        progress: &(dyn Fn(&Operation) + Send + Sync),
        start: F,
    ) -> Result<Operation, GcpError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Operation, GcpError>>,
    {
        let started = Instant::now();
        let mut backoff = self.inner.retry.poll_backoff();
        loop {
            match start().await {
                Ok(op) => {
                    let left = deadline.saturating_sub(started.elapsed());
                    return self
                        .wait_operation(&key.project, &key.location, &op, left, progress)
                        .await;
                }
                Err(e) if e.is_incompatible_operation() => {
                    tracing::info!(cluster = %key, error = %e, "waiting for the running operation");
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    let left = deadline.saturating_sub(started.elapsed());
                    self.wait_cluster_idle(key, left, progress).await?;
                    // The operation list can trail the refusal by a moment.
                    let delay = backoff.next().unwrap_or(self.inner.retry.poll_max);
                    if started.elapsed() + delay > deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    // ---------------------------------------------------------------- IAM

    /// `serviceAccounts.list`, every page (`pageSize=100`).
    pub async fn list_service_accounts(
        &self,
        project: &str,
    ) -> Result<Vec<ServiceAccount>, GcpError> {
        let mut out = Vec::new();
        let mut token = String::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut call = Call::new(
                Api::Iam,
                "serviceAccounts.list",
                Method::GET,
                &["v1", "projects", project, "serviceAccounts"],
            )
            .query("pageSize", "100");
            if !token.is_empty() {
                call = call.query("pageToken", token.clone());
            }
            let page: ListServiceAccountsResponse = self.send(call).await?;
            out.extend(page.accounts);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            if !seen.insert(page.next_page_token.clone()) {
                return Err(GcpError::Decode(format!(
                    "iam serviceAccounts.list: page token {:?} repeated",
                    page.next_page_token
                )));
            }
            token = page.next_page_token;
        }
    }

    /// `serviceAccounts.get`; `None` when IAM does not know the account.
    pub async fn get_service_account(
        &self,
        email: &str,
    ) -> Result<Option<ServiceAccount>, GcpError> {
        let call = service_account_call("serviceAccounts.get", Method::GET, email, "");
        not_found_as_none(self.send(call).await)
    }

    /// `serviceAccounts.create`. A create retried after a 5xx may find its own
    /// first attempt done: the answer is then 409 `ALREADY_EXISTS`
    /// ([`GcpError::is_already_exists`]), which callers treat as success when the
    /// existing account matches. IAM may not show a new account to reads for a
    /// while: see [`Self::wait_for_service_account`].
    pub async fn create_service_account(
        &self,
        project: &str,
        account_id: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<ServiceAccount, GcpError> {
        let mut sa = serde_json::Map::new();
        if let Some(d) = display_name {
            sa.insert("displayName".into(), d.into());
        }
        if let Some(d) = description {
            sa.insert("description".into(), d.into());
        }
        let call = Call::new(
            Api::Iam,
            "serviceAccounts.create",
            Method::POST,
            &["v1", "projects", project, "serviceAccounts"],
        )
        .body(json!({ "accountId": account_id, "serviceAccount": sa }));
        self.send(call).await
    }

    /// `serviceAccounts.patch` of the given fields (`updateMask` lists exactly
    /// the `Some` ones; `Some("")` clears a field). IAM answers with `name` and
    /// the patched fields only.
    pub async fn patch_service_account(
        &self,
        email: &str,
        display_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<ServiceAccount, GcpError> {
        let mut sa = serde_json::Map::new();
        let mut mask = Vec::new();
        if let Some(d) = display_name {
            sa.insert("displayName".into(), d.into());
            mask.push("display_name");
        }
        if let Some(d) = description {
            sa.insert("description".into(), d.into());
            mask.push("description");
        }
        if mask.is_empty() {
            return Err(GcpError::Config(format!(
                "patch of {email}: no field to update"
            )));
        }
        let project = sa_project(email);
        sa.insert(
            "name".into(),
            format!("projects/{project}/serviceAccounts/{email}").into(),
        );
        let call = service_account_call("serviceAccounts.patch", Method::PATCH, email, "")
            .body(json!({ "serviceAccount": sa, "updateMask": mask.join(",") }));
        self.send(call).await
    }

    /// `serviceAccounts.delete`; an account that is already gone is success.
    pub async fn delete_service_account(&self, email: &str) -> Result<(), GcpError> {
        let call = service_account_call("serviceAccounts.delete", Method::DELETE, email, "");
        match self.send::<Value>(call).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `serviceAccounts.getIamPolicy`: POST, no body,
    /// `options.requestedPolicyVersion=3` in the query.
    pub async fn get_service_account_iam_policy(&self, email: &str) -> Result<Policy, GcpError> {
        let call = service_account_call(
            "serviceAccounts.getIamPolicy",
            Method::POST,
            email,
            ":getIamPolicy",
        )
        .query("options.requestedPolicyVersion", "3");
        self.send(call).await
    }

    /// `serviceAccounts.setIamPolicy` (`updateMask: bindings,etag`). The etag in
    /// `policy` makes the write conditional; prefer [`Self::modify_iam_policy`].
    pub async fn set_service_account_iam_policy(
        &self,
        email: &str,
        policy: &Policy,
    ) -> Result<Policy, GcpError> {
        let call = service_account_call(
            "serviceAccounts.setIamPolicy",
            Method::POST,
            email,
            ":setIamPolicy",
        )
        .body(json!({ "policy": policy, "updateMask": "bindings,etag" }));
        self.send(call).await
    }

    // ---------------------------------------------------- Resource Manager

    /// `projects.get` (v1); `None` on 404. Real Resource Manager answers 403
    /// for projects that do not exist or are not visible: that stays an error.
    pub async fn get_project(&self, project: &str) -> Result<Option<Project>, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.get",
            Method::GET,
            &["v1", "projects", project],
        );
        not_found_as_none(self.send(call).await)
    }

    /// `projects.getIamPolicy` (v1) with `{"options":{"requestedPolicyVersion":3}}`.
    pub async fn get_project_iam_policy(&self, project: &str) -> Result<Policy, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.getIamPolicy",
            Method::POST,
            &["v1", "projects", &format!("{project}:getIamPolicy")],
        )
        .body(json!({ "options": { "requestedPolicyVersion": 3 } }));
        self.send(call).await
    }

    /// `projects.setIamPolicy` (v1), `updateMask: bindings,etag` (audit configs
    /// are never touched).
    pub async fn set_project_iam_policy(
        &self,
        project: &str,
        policy: &Policy,
    ) -> Result<Policy, GcpError> {
        let call = Call::new(
            Api::Crm,
            "projects.setIamPolicy",
            Method::POST,
            &["v1", "projects", &format!("{project}:setIamPolicy")],
        )
        .body(json!({ "policy": policy, "updateMask": "bindings,etag" }));
        self.send(call).await
    }

    /// Read-modify-write of an IAM policy guarded by its etag. Reads, lets `edit`
    /// change the copy (returning `false` means "nothing to do": no write, the
    /// read policy is returned), writes it with the etag just read. On 409
    /// `ABORTED` (someone wrote in between) it starts over from a fresh read and
    /// re-applies `edit`, so only `edit`'s own changes are ever written on top
    /// of the latest policy, until `deadline`. Other errors are returned as they
    /// are (after the per-call retries of 429/5xx).
    pub async fn modify_iam_policy(
        &self,
        target: &PolicyTarget,
        deadline: Duration,
        edit: &(dyn Fn(&mut Policy) -> bool + Send + Sync),
    ) -> Result<Policy, GcpError> {
        let start = Instant::now();
        let mut backoff = self.inner.retry.backoff();
        let mut attempts = 0u32;
        loop {
            let read = match target {
                PolicyTarget::ServiceAccount { email } => {
                    self.get_service_account_iam_policy(email).await?
                }
                PolicyTarget::Project { project } => self.get_project_iam_policy(project).await?,
            };
            let mut edited = read.clone();
            if !edit(&mut edited) {
                return Ok(read);
            }
            // The write is conditional on exactly the policy `edit` saw.
            edited.etag = read.etag.clone();
            normalize_policy(&mut edited);
            let written = match target {
                PolicyTarget::ServiceAccount { email } => {
                    self.set_service_account_iam_policy(email, &edited).await
                }
                PolicyTarget::Project { project } => {
                    self.set_project_iam_policy(project, &edited).await
                }
            };
            match written {
                Ok(p) => return Ok(p),
                Err(e) if e.is_etag_conflict() => {
                    attempts += 1;
                    let delay = backoff.next().unwrap_or(self.inner.retry.max_delay);
                    if start.elapsed() + delay > deadline {
                        return Err(GcpError::Timeout {
                            what: format!(
                                "a conflict-free IAM policy write on {target} ({attempts} concurrent changes)"
                            ),
                            after: deadline,
                        });
                    }
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%target, attempts, "IAM policy changed concurrently; re-reading");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Self::modify_iam_policy`], also waiting out IAM's eventual consistency
    /// until `deadline`: "Service account ... does not exist" (a member created
    /// moments ago), "Identity Pool does not exist" (the first Workload Identity
    /// cluster of the project is still being set up), and 404 on a service
    /// account's own policy right after it was created. `on_wait` hears each
    /// wait (error and delay) so the caller can say what it is waiting for.
    /// Past the deadline the last such error is returned as it is.
    pub async fn modify_iam_policy_waiting(
        &self,
        target: &PolicyTarget,
        deadline: Duration,
        edit: &(dyn Fn(&mut Policy) -> bool + Send + Sync),
        on_wait: &(dyn Fn(&GcpError, Duration) + Send + Sync),
    ) -> Result<Policy, GcpError> {
        let started = Instant::now();
        let mut backoff = self.inner.retry.backoff();
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            let err = match self.modify_iam_policy(target, left, edit).await {
                Ok(p) => return Ok(p),
                Err(e) => e,
            };
            let settling = err.is_service_account_missing()
                || err.is_identity_pool_missing()
                || (matches!(target, PolicyTarget::ServiceAccount { .. }) && err.is_not_found());
            if !settling {
                return Err(err);
            }
            let delay = backoff.next().unwrap_or(self.inner.retry.max_delay);
            if started.elapsed() + delay > deadline {
                return Err(err);
            }
            self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            on_wait(&err, delay);
            tokio::time::sleep(delay).await;
        }
    }

    /// Waits until a just-created service account is visible to IAM reads:
    /// two consecutive successful GETs, with 404 and 403 ("Permission
    /// iam.serviceAccounts.get is required", seen right after creation)
    /// treated as "not yet". Past `deadline`, [`GcpError::Timeout`].
    pub async fn wait_for_service_account(
        &self,
        email: &str,
        deadline: Duration,
    ) -> Result<ServiceAccount, GcpError> {
        let started = Instant::now();
        let mut backoff = self.inner.retry.backoff();
        let mut streak = 0;
        loop {
            match self.get_service_account(email).await {
                Ok(Some(sa)) => {
                    streak += 1;
                    if streak >= 2 {
                        return Ok(sa);
                    }
                }
                Ok(None) => streak = 0,
                Err(e) if e.is_permission_denied() => streak = 0,
                Err(e) => return Err(e),
            }
            let delay = backoff.next().unwrap_or(self.inner.retry.max_delay);
            if started.elapsed() + delay > deadline {
                return Err(GcpError::Timeout {
                    what: format!("service account {email} to become visible"),
                    after: deadline,
                });
            }
            tokio::time::sleep(delay).await;
        }
    }

    // ------------------------------------------------------- Service Usage

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
        let start = Instant::now();
        let mut backoff = self.inner.retry.poll_backoff();
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
                Err(e)
                    if e.status() == Some(400)
                        && matches!(&e, GcpError::Api { message, .. } if message.contains("in progress")) =>
                {
                    let delay = backoff.next().unwrap_or(self.inner.retry.poll_max);
                    if start.elapsed() + delay > deadline {
                        return Err(timeout(format!("enabling {service} in {project}")));
                    }
                    tokio::time::sleep(delay).await;
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
            let delay = backoff.next().unwrap_or(self.inner.retry.poll_max);
            if start.elapsed() + delay > deadline {
                return Err(timeout(format!("operation {} (enable {service})", op.name)));
            }
            tokio::time::sleep(delay).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_of_email() {
        assert_eq!(sa_project("a@p-1.iam.gserviceaccount.com"), "p-1");
        assert_eq!(sa_project("123-compute@developer.gserviceaccount.com"), "-");
        assert_eq!(sa_project("nonsense"), "-");
    }

    #[test]
    fn cluster_of_operation() {
        let op = |link: &str| Operation {
            target_link: Some(link.into()),
            ..Default::default()
        };
        assert_eq!(
            operation_cluster(&op(
                "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1"
            )),
            Some("c1")
        );
        assert_eq!(
            operation_cluster(&op(
                "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1/nodePools/np"
            )),
            Some("c1")
        );
        assert_eq!(operation_cluster(&op("https://x/other")), None);
        assert_eq!(
            operation_node_pool(&op(
                "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1/nodePools/np"
            )),
            Some("np")
        );
        assert_eq!(
            operation_node_pool(&op(
                "https://container.googleapis.com/v1/projects/1/zones/z/clusters/c1"
            )),
            None
        );
    }

    #[test]
    fn conditions_force_version_3_and_empty_bindings_go() {
        let mut p: Policy = serde_json::from_value(json!({
            "version": 1, "etag": "BwX",
            "bindings": [
                {"role": "roles/a", "members": []},
                {"role": "roles/b", "members": ["user:x"], "condition": {"title": "t", "expression": "true"}}
            ]
        }))
        .expect("policy");
        normalize_policy(&mut p);
        assert_eq!(p.version, Some(3));
        assert_eq!(p.bindings.len(), 1);
    }
}
