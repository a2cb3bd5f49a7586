//! Request-level tests of the Kubernetes client against a scripted fake API
//! server: a tiny axum app behind TLS (rcgen certificate) on 127.0.0.1:0.
//! The client is built the way `wi` builds it for GKE: endpoint + base64 PEM CA
//! from the cluster object + a Google access token. The tests assert the
//! server-side apply PATCH (content type, fieldManager, force, body), list
//! pagination, TokenRequest, deletes and the mapping of a 409 `Status`.
//! This is NOT the emulator: it only answers what each test scripts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wi::gcp::types::{GkeCluster, MasterAuth};
use wi::kube::{ClusterConnection, KubeError};
use wi::live::connect_cluster as connect;

const TOKEN: &str = "ya29.kube-test-token-never-printed";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    auth: Option<String>,
    content_type: Option<String>,
    body: Value,
}

type Handler = Arc<dyn Fn(&Seen) -> (u16, Value) + Send + Sync>;

/// The scripted fake API server.
struct FakeApiServer {
    cluster: GkeCluster,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: axum_server::Handle<SocketAddr>,
}

impl FakeApiServer {
    async fn start(handler: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let cert_pem = cert.cert.pem();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert_pem.clone().into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let (s, h) = (seen.clone(), handler.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, handler) = (s.clone(), h.clone());
                async move {
                    let get = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let req = Seen {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                            .into_owned()
                            .collect(),
                        auth: get("authorization"),
                        content_type: get("content-type"),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    };
                    seen.lock().unwrap().push(req.clone());
                    let (status, body) = handler(&req);
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body.to_string(),
                    )
                        .into_response()
                }
            },
        );
        let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
        let hh = handle.clone();
        tokio::spawn(async move {
            axum_server::bind_rustls("127.0.0.1:0".parse().unwrap(), tls)
                .handle(hh)
                .serve(app.into_make_service())
                .await
                .unwrap()
        });
        let addr = handle.listening().await.unwrap();
        let cluster = GkeCluster {
            name: "c1".into(),
            location: "us-central1-a".into(),
            status: Some("RUNNING".into()),
            endpoint: Some(format!("127.0.0.1:{}", addr.port())),
            master_auth: Some(MasterAuth {
                cluster_ca_certificate: Some(BASE64_STANDARD.encode(cert_pem)),
                ..Default::default()
            }),
            ..Default::default()
        };
        Self {
            cluster,
            seen,
            handle,
        }
    }

    async fn connect(&self) -> ClusterConnection {
        connect(&self.cluster, SecretString::from(TOKEN), None)
            .await
            .unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// Echo the applied object back with server-set fields, as an API server does.
fn echo(req: &Seen) -> (u16, Value) {
    let mut obj = req.body.clone();
    obj["metadata"]["uid"] = json!("0b9c6a3e-0000-4000-8000-000000000001");
    obj["metadata"]["resourceVersion"] = json!("101");
    (200, obj)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn server_side_apply_of_a_service_account() {
    let fake = FakeApiServer::start(echo).await;
    let conn = fake.connect().await;
    assert!(conn.server.starts_with("https://127.0.0.1:"));
    let sa = conn
        .apply_service_account(
            "team-a",
            "ksa-1",
            &map(&[("app.kubernetes.io/managed-by", "wi")]),
            &map(&[(
                "iam.gke.io/gcp-service-account",
                "gsa-a@p1.iam.gserviceaccount.com",
            )]),
            true,
        )
        .await
        .unwrap();
    assert_eq!(sa.metadata.resource_version.as_deref(), Some("101"));
    conn.apply_service_account("team-a", "ksa-1", &BTreeMap::new(), &BTreeMap::new(), false)
        .await
        .unwrap();

    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(first.method, "PATCH");
    assert_eq!(
        first.path,
        "/api/v1/namespaces/team-a/serviceaccounts/ksa-1"
    );
    assert_eq!(
        first.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        first.query.get("fieldManager").map(String::as_str),
        Some("wi")
    );
    assert_eq!(first.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(first.auth.as_deref(), Some(&*format!("Bearer {TOKEN}")));
    assert_eq!(
        first.body,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "ksa-1", "namespace": "team-a",
                            "labels": {"app.kubernetes.io/managed-by": "wi"},
                            "annotations": {"iam.gke.io/gcp-service-account": "gsa-a@p1.iam.gserviceaccount.com"}}}),
        "only the fields wi owns are sent"
    );
    // Without force: no force parameter; empty maps are left out entirely so
    // SSA releases what wi owned before.
    assert_eq!(seen[1].query.get("force"), None);
    assert_eq!(
        seen[1].query.get("fieldManager").map(String::as_str),
        Some("wi")
    );
    assert_eq!(
        seen[1].body,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "ksa-1", "namespace": "team-a"}})
    );
}

#[tokio::test]
async fn server_side_apply_of_a_namespace() {
    let fake = FakeApiServer::start(echo).await;
    let conn = fake.connect().await;
    let ns = conn
        .apply_namespace(
            "team-b",
            &map(&[("app.kubernetes.io/managed-by", "wi")]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("team-b"));
    let seen = fake.seen();
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(seen[0].path, "/api/v1/namespaces/team-b");
    assert_eq!(
        seen[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        seen[0].body,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "team-b", "labels": {"app.kubernetes.io/managed-by": "wi"}}})
    );
}

#[tokio::test]
async fn a_409_status_maps_to_a_conflict() {
    let message = "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .metadata.annotations.iam.gke.io/gcp-service-account";
    let fake = FakeApiServer::start(move |_| status(409, "Conflict", message)).await;
    let conn = fake.connect().await;
    let err = conn
        .apply_service_account(
            "ns",
            "ksa",
            &BTreeMap::new(),
            &map(&[(
                "iam.gke.io/gcp-service-account",
                "x@p.iam.gserviceaccount.com",
            )]),
            false,
        )
        .await
        .unwrap_err();
    match &err {
        KubeError::Api {
            status,
            reason,
            message: m,
        } => {
            assert_eq!(*status, 409);
            assert_eq!(reason, "Conflict");
            assert_eq!(m, message);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_conflict());
    assert!(!err.is_not_found() && !err.is_forbidden() && !err.is_already_exists());
    assert!(!err.is_retryable());
    assert_eq!(fake.seen().len(), 1, "a conflict is not retried");
    let text = format!("{err} {err:?} {conn:?}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn lists_follow_continue_tokens_across_all_namespaces() {
    let fake = FakeApiServer::start(|r| match r.path.as_str() {
        "/api/v1/serviceaccounts" => {
            let (items, cont) = match r.query.get("continue").map(String::as_str) {
                None => (vec![("a", "default"), ("a", "ksa-1")], "tok-1"),
                Some("tok-1") => (vec![("b", "default")], ""),
                Some(other) => panic!("continue {other}"),
            };
            let items: Vec<Value> = items
                .into_iter()
                .map(|(ns, n)| json!({"metadata": {"name": n, "namespace": ns}}))
                .collect();
            (
                200,
                json!({"apiVersion": "v1", "kind": "ServiceAccountList",
                       "metadata": {"resourceVersion": "9", "continue": cont}, "items": items}),
            )
        }
        "/api/v1/namespaces" => (
            200,
            json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {},
                   "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}),
        ),
        "/api/v1/pods" => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
        ),
        other => panic!("unexpected {other}"),
    })
    .await;
    let conn = fake.connect().await;
    let sas = conn.list_service_accounts().await.unwrap();
    let names: Vec<String> = sas
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s.metadata.namespace.clone().unwrap_or_default(),
                s.metadata.name.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(names, ["a/default", "a/ksa-1", "b/default"]);
    assert_eq!(conn.list_namespaces().await.unwrap().len(), 2);
    assert!(conn.list_pods().await.unwrap().is_empty());
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|r| r.method == "GET"));
    assert_eq!(seen[0].query.get("limit").map(String::as_str), Some("500"));
    assert_eq!(
        seen[1].query.get("continue").map(String::as_str),
        Some("tok-1")
    );
}

#[tokio::test]
async fn deletes_are_idempotent_and_other_errors_surface() {
    let fake = FakeApiServer::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("DELETE", "/api/v1/namespaces/ns/serviceaccounts/gone") => {
            status(404, "NotFound", "serviceaccounts \"gone\" not found")
        }
        ("DELETE", "/api/v1/namespaces/ns/serviceaccounts/ksa") => (
            200,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ksa", "namespace": "ns"}}),
        ),
        ("DELETE", "/api/v1/namespaces/locked") => status(
            403,
            "Forbidden",
            "namespaces \"locked\" is forbidden: User cannot delete resource",
        ),
        other => panic!("unexpected {other:?}"),
    })
    .await;
    let conn = fake.connect().await;
    conn.delete_service_account("ns", "ksa").await.unwrap();
    conn.delete_service_account("ns", "gone").await.unwrap();
    let err = conn.delete_namespace("locked").await.unwrap_err();
    assert!(err.is_forbidden(), "{err:?}");
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn token_request_for_a_ksa() {
    let fake = FakeApiServer::start(|r| {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/v1/namespaces/team-a/serviceaccounts/ksa-1/token");
        (
            201,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "metadata": {"name": "ksa-1", "namespace": "team-a"},
                   "spec": r.body["spec"].clone(),
                   "status": {"token": "eyJhbGciOiJSUzI1NiJ9.ksa.sig", "expirationTimestamp": "2026-11-30T13:00:00Z"}}),
        )
    })
    .await;
    let conn = fake.connect().await;
    let token = conn
        .request_token("team-a", "ksa-1", "p1.svc.id.goog")
        .await
        .unwrap();
    assert_eq!(token.expose_secret(), "eyJhbGciOiJSUzI1NiJ9.ksa.sig");
    assert!(!format!("{token:?}").contains("ksa.sig"));
    let seen = fake.seen();
    assert_eq!(seen[0].body["kind"], json!("TokenRequest"));
    assert_eq!(seen[0].body["spec"]["audiences"], json!(["p1.svc.id.goog"]));
    assert_eq!(seen[0].body["spec"]["expirationSeconds"], json!(3600));
}

#[tokio::test]
async fn a_wrong_ca_is_refused() {
    let fake = FakeApiServer::start(echo).await;
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let mut cluster = fake.cluster.clone();
    cluster.master_auth = Some(MasterAuth {
        cluster_ca_certificate: Some(BASE64_STANDARD.encode(other.cert.pem())),
        ..Default::default()
    });
    let conn = connect(&cluster, SecretString::from(TOKEN), None)
        .await
        .unwrap();
    let err = conn.list_namespaces().await.unwrap_err();
    assert!(
        matches!(err, KubeError::Transport(_) | KubeError::Config(_)),
        "{err:?}"
    );
    assert!(
        fake.seen().is_empty(),
        "no request may pass an untrusted TLS handshake"
    );
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_kubeconfig_context_overrides_the_cluster_credentials() {
    let fake = FakeApiServer::start(|_| {
        (
            200,
            json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": []}),
        )
    })
    .await;
    let ca = fake
        .cluster
        .master_auth
        .as_ref()
        .unwrap()
        .cluster_ca_certificate
        .clone()
        .unwrap();
    let endpoint = fake.cluster.endpoint.clone().unwrap();
    let kubeconfig = format!(
        r#"apiVersion: v1
kind: Config
current-context: elsewhere
clusters:
- name: fake
  cluster: {{server: "https://{endpoint}", certificate-authority-data: "{ca}"}}
- name: nowhere
  cluster: {{server: "https://127.0.0.1:1"}}
users:
- name: ctx-user
  user: {{token: "kubeconfig-user-token"}}
contexts:
- name: elsewhere
  context: {{cluster: nowhere, user: ctx-user}}
- name: mine
  context: {{cluster: fake, user: ctx-user}}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, kubeconfig).unwrap();
    let kc = wi::kube::KubeconfigFile::read_from(&path).unwrap();
    let conn = wi::kube::connect_kubeconfig(kc.clone(), Some("mine"))
        .await
        .unwrap();
    assert!(conn.list_namespaces().await.unwrap().is_empty());
    assert_eq!(
        fake.seen()[0].auth.as_deref(),
        Some("Bearer kubeconfig-user-token")
    );
    let missing = wi::kube::connect_kubeconfig(kc, Some("absent")).await;
    assert!(
        matches!(missing, Err(KubeError::Config(ref m)) if m.contains("absent")),
        "{missing:?}"
    );
}
