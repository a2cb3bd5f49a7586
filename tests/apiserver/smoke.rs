//! Smoke test of the real-kube-apiserver harness: the real server starts, the admin token
//! works, server-side apply records field manager `wi`, TokenRequest mints a token for the
//! workload-pool audience, and a Google access token is authenticated by a TokenReview
//! webhook (as the GKE emulator will do) and then authorised by RBAC alone.
//!
//! This test fails (never skips) when kube-apiserver/etcd are missing and cannot be built.

use crate::harness::apiserver;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::{Json, Router, extract::State, routing::post};
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const PROJECT: &str = "wi-smoke-project";
const GOOGLE_USER: &str = "deployer@wi-smoke-project.iam.gserviceaccount.com";

/// A tiny stand-in for the emulator's `POST /authn/tokenreview`: one known Google token.
#[derive(Clone)]
struct Webhook {
    google_token: String,
    calls: Arc<AtomicUsize>,
}

impl Webhook {
    fn new() -> Self {
        Self {
            google_token: format!("ya29.smoke-{}", uuid::Uuid::new_v4().simple()),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/authn/tokenreview", post(token_review))
            .with_state(self.clone())
    }
}

/// Serves the webhook over plain HTTP on loopback; returns its URL.
async fn serve_webhook_http(hook: &Webhook) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook listener");
    let addr = listener.local_addr().expect("webhook addr");
    let app = hook.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/authn/tokenreview")
}

/// Serves the webhook over HTTPS with a fresh self-signed certificate; returns (URL, CA PEM).
async fn serve_webhook_https(hook: &Webhook) -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("webhook certificate");
    let ca_pem = cert.cert.pem();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        ca_pem.clone().into_bytes(),
        cert.signing_key.serialize_pem().into_bytes(),
    )
    .await
    .expect("webhook TLS config");
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), tls)
        .handle(handle.clone());
    let app = hook.router();
    tokio::spawn(async move { server.serve(app.into_make_service()).await });
    let addr = handle.listening().await.expect("webhook listening");
    (format!("https://{addr}/authn/tokenreview"), ca_pem)
}

async fn token_review(State(hook): State<Webhook>, Json(review): Json<Value>) -> Json<Value> {
    hook.calls.fetch_add(1, Ordering::SeqCst);
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status = if token == hook.google_token {
        json!({"authenticated": true, "user": {"username": GOOGLE_USER}})
    } else {
        json!({"authenticated": false, "error": "unknown token"})
    };
    Json(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "status": status,
    }))
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_apiserver_ssa_tokenrequest_webhook_rbac() {
    let _ = rustls::crypto::ring::default_provider().install_default();

    let hook = Webhook::new();
    let hook_url = serve_webhook_http(&hook).await;
    let server = apiserver::start(apiserver::ApiServerOptions {
        token_webhook_url: Some(hook_url),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("real kube-apiserver did not start: {e}"));
    eprintln!(
        "real kube-apiserver ready at {} in {:.1?}",
        server.url, server.startup
    );
    assert!(server.url.starts_with("https://127.0.0.1:"));

    let admin = server.admin_client().await.expect("admin client");
    let version = admin.apiserver_version().await.expect("/version");
    assert_eq!(version.major, "1");
    assert!(
        version.git_version.starts_with("v1.") && !version.git_version.contains("v0.0.0"),
        "the build stamps the real version: {}",
        version.git_version
    );

    // Namespace + ServiceAccount through server-side apply with field manager `wi`.
    let ns = server
        .create_unique_namespace("wi-smoke")
        .await
        .expect("create namespace");
    let got_ns = Api::<Namespace>::all(admin.clone())
        .get(&ns)
        .await
        .expect("namespace exists");
    assert_eq!(got_ns.metadata.name.as_deref(), Some(ns.as_str()));

    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let gsa = format!("app@{PROJECT}.iam.gserviceaccount.com");
    let desired: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "app",
            "namespace": ns,
            "annotations": {"iam.gke.io/gcp-service-account": gsa},
        },
    }))
    .expect("service account");
    let applied = sas
        .patch("app", &PatchParams::apply("wi"), &Patch::Apply(&desired))
        .await
        .expect("server-side apply");
    let annotations = applied.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("iam.gke.io/gcp-service-account"),
        Some(&gsa)
    );
    let managers: Vec<(String, String)> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(managers, vec![("wi".to_string(), "Apply".to_string())]);

    // TokenRequest with the workload-pool audience.
    let pool = format!("{PROJECT}.svc.id.goog");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![pool.clone()]),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let minted = sas
        .create_token_request("app", &PostParams::default(), &request)
        .await
        .expect("TokenRequest");
    let status = minted.status.expect("TokenRequest status");
    let token = status.token.expect("TokenRequest token");
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("JWT payload is base64url"),
    )
    .expect("JWT payload is JSON");
    assert_eq!(claims["aud"], json!([pool]));
    assert_eq!(
        claims["sub"],
        json!(format!("system:serviceaccount:{ns}:app"))
    );
    assert_eq!(claims["iss"], json!(server.service_account_issuer));

    // A Google access token: authenticated by the webhook, forbidden until RBAC grants it.
    let google = server
        .client_with_token(&hook.google_token)
        .await
        .expect("google client");
    let google_sas: Api<ServiceAccount> = Api::namespaced(google.clone(), &ns);
    let denied = api_error(google_sas.get("app").await);
    assert_eq!(
        (denied.code, denied.reason.as_str()),
        (403, "Forbidden"),
        "{denied:?}"
    );
    assert!(
        denied.message.contains(GOOGLE_USER),
        "the 403 names the Google user: {}",
        denied.message
    );
    assert!(
        hook.calls.load(Ordering::SeqCst) > 0,
        "the API server asked the TokenReview webhook"
    );

    // An unknown token is rejected by the webhook: 401.
    let stranger = server
        .client_with_token("ya29.unknown")
        .await
        .expect("stranger client");
    let unauthorized = api_error(
        Api::<ServiceAccount>::namespaced(stranger, &ns)
            .get("app")
            .await,
    );
    assert_eq!(unauthorized.code, 401, "{unauthorized:?}");

    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "wi-sa-editor", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"],
                   "verbs": ["get", "list", "patch", "update", "create"]}],
    }))
    .expect("role");
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("create role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "wi-sa-editor", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "wi-sa-editor"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": GOOGLE_USER}],
    }))
    .expect("role binding");
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create role binding");

    // RBAC reads bindings from an informer: allow a short propagation delay.
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        match google_sas.get("app").await {
            Ok(sa) => break sa,
            Err(kube::Error::Api(s)) if s.code == 403 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("google user still not allowed after the RoleBinding: {e}"),
        }
    };
    assert_eq!(got.metadata.name.as_deref(), Some("app"));

    // Cleanup: dropping the server stops both processes and removes its directory.
    let dir = server.dir().to_path_buf();
    let (etcd_pid, api_pid) = server.pids();
    assert!(dir.is_dir());
    drop(server);
    assert!(!dir.exists(), "temp dir removed on drop");
    for pid in [etcd_pid, api_pid].into_iter().flatten() {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} gone after drop"
        );
    }
}

/// A start that fails reports the API server's own log and leaves no directory behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_reports_the_apiserver_log_and_cleans_up() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let err = apiserver::start(apiserver::ApiServerOptions {
        extra_apiserver_args: vec!["--no-such-flag=1".to_string()],
        ready_timeout: Duration::from_secs(60),
        ..Default::default()
    })
    .await
    .expect_err("an unknown flag must make the start fail");
    assert!(err.contains("kube-apiserver exited early"), "{err}");
    assert!(err.contains("unknown flag: --no-such-flag"), "{err}");
    let log = err
        .split("--- kube-apiserver log (tail, ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the error names the log file");
    let dir = std::path::Path::new(log)
        .parent()
        .expect("log file has a directory");
    assert!(
        !dir.exists(),
        "temp dir {} removed after a failed start",
        dir.display()
    );
}

/// The TokenReview webhook also works over HTTPS with its own CA (`token_webhook_ca_pem`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_token_via_https_webhook() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let hook = Webhook::new();
    let (url, ca_pem) = serve_webhook_https(&hook).await;
    let server = apiserver::start(apiserver::ApiServerOptions {
        token_webhook_url: Some(url),
        token_webhook_ca_pem: Some(ca_pem),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("real kube-apiserver did not start: {e}"));
    let google = server
        .client_with_token(&hook.google_token)
        .await
        .expect("google client");
    // Authenticated (403, not 401) as the e-mail the webhook returned; RBAC grants nothing.
    let denied = api_error(
        Api::<Namespace>::all(google)
            .list(&Default::default())
            .await,
    );
    assert_eq!(
        (denied.code, denied.reason.as_str()),
        (403, "Forbidden"),
        "{denied:?}"
    );
    assert!(denied.message.contains(GOOGLE_USER), "{}", denied.message);
    assert!(hook.calls.load(Ordering::SeqCst) > 0);
}

/// `shared()` starts one server per test binary and hands out the same one afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_server_is_started_once() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let first = apiserver::shared(None)
        .await
        .unwrap_or_else(|e| panic!("real kube-apiserver did not start: {e}"));
    let second = apiserver::shared(None).await.expect("shared server");
    assert!(std::ptr::eq(first, second));
    let ns = second
        .create_unique_namespace("wi-shared")
        .await
        .expect("namespace on the shared server");
    assert!(ns.starts_with("wi-shared-"));
}
