//! The emulated Kubernetes API of one GKE cluster, served over TLS on
//! loopback and driven by real clients: the `kube` crate, raw HTTPS for
//! byte-exact `Status` bodies, and the installed `kubectl` (required: these
//! tests fail when it is missing).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wi::emulator::kube::{ClusterIdentity, KubeAccess, KubeCluster, KubeClusterState, KubeHost};

const ADMIN_TOKEN: &str = "ya29.test-admin-token";
const ADMIN: &str = "admin@example.com";
const VIEWER_TOKEN: &str = "ya29.test-viewer-token";
const VIEWER: &str = "viewer@example.com";
const GSA: &str = "app@proj.iam.gserviceaccount.com";
const ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// A host that knows one token and counts persistence callbacks.
struct TestHost {
    users: HashMap<String, String>,
    changes: AtomicUsize,
    /// Verbs of every authorization check, in order.
    verbs: std::sync::Mutex<Vec<String>>,
}

impl KubeHost for TestHost {
    fn authenticate(&self, bearer: &str) -> Option<String> {
        self.users.get(bearer).cloned()
    }
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }
    // The viewer may only read.
    fn authorize(&self, user: &str, access: &KubeAccess<'_>) -> bool {
        if let Ok(mut v) = self.verbs.lock() {
            v.push(access.verb.to_string());
        }
        user != VIEWER || matches!(access.verb, "get" | "list")
    }
}

struct Fixture {
    cluster: Arc<KubeCluster>,
    host: Arc<TestHost>,
    url: String,
    ca_pem: String,
    kubeconfig: PathBuf,
    /// One HTTPS client trusting the cluster CA, reused across requests.
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    handle: axum_server::Handle<std::net::SocketAddr>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn identity() -> ClusterIdentity {
    ClusterIdentity {
        project: "proj".into(),
        location: "europe-west1".into(),
        name: "c1".into(),
    }
}

async fn start_with(state: KubeClusterState) -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let host = Arc::new(TestHost {
        users: HashMap::from([
            (ADMIN_TOKEN.to_string(), ADMIN.to_string()),
            (VIEWER_TOKEN.to_string(), VIEWER.to_string()),
        ]),
        changes: AtomicUsize::new(0),
        verbs: std::sync::Mutex::new(Vec::new()),
    });
    let cluster = KubeCluster::new(identity(), state, host.clone());
    let (cert, key) = cluster.serving_cert_and_key_pem();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert.into_bytes(), key.into_bytes())
        .await
        .expect("serving certificate loads");
    let handle: axum_server::Handle<std::net::SocketAddr> = axum_server::Handle::new();
    let server = axum_server::bind_rustls("127.0.0.1:0".parse().expect("addr"), tls)
        .handle(handle.clone())
        .serve(cluster.router().into_make_service());
    tokio::spawn(server);
    let addr = handle.listening().await.expect("listening");
    let url = format!("https://127.0.0.1:{}", addr.port());
    let ca_pem = cluster.ca_pem();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(&url, &ca_pem, ADMIN_TOKEN))
        .expect("write kubeconfig");
    let client = https_client(&ca_pem);
    Fixture {
        cluster,
        host,
        url,
        ca_pem,
        kubeconfig,
        client,
        _dir: dir,
        handle,
    }
}

async fn start() -> Fixture {
    start_with(KubeClusterState::generate(&identity())).await
}

fn kubeconfig_yaml(url: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c1\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c1\n  context:\n    cluster: c1\n    user: u\ncurrent-context: c1\n"
    )
}

async fn kube_client(fx: &Fixture) -> kube::Client {
    let kc =
        kube::config::Kubeconfig::from_yaml(&kubeconfig_yaml(&fx.url, &fx.ca_pem, ADMIN_TOKEN))
            .expect("kubeconfig parses");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn http(fx: &Fixture) -> reqwest::Client {
    fx.client.clone()
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA parses");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("reqwest client")
}

/// Sends a request with the admin token; returns status and body text.
async fn raw(
    fx: &Fixture,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    raw_as(fx, Some(ADMIN_TOKEN), method, path, content_type, body).await
}

async fn raw_as(
    fx: &Fixture,
    token: Option<&str>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http(fx)
        .request(method, format!("{}{path}", fx.url))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let code = resp.status().as_u16();
    (code, resp.text().await.expect("body"))
}

struct Kubectl {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the installed kubectl against the fixture. Panics when kubectl is not
/// installed: these tests must not pass without it.
async fn kubectl(fx: &Fixture, args: &[&str]) -> Kubectl {
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&fx.kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", fx._dir.path())
        .output()
        .await
        .expect("kubectl must be installed to run these tests");
    Kubectl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs kubectl with another user's token.
async fn kubectl_as(fx: &Fixture, token: &str, args: &[&str]) -> Kubectl {
    let path = fx._dir.path().join(format!("kubeconfig-{}", token.len()));
    std::fs::write(&path, kubeconfig_yaml(&fx.url, &fx.ca_pem, token)).expect("write kubeconfig");
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&path)
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", fx._dir.path())
        .output()
        .await
        .expect("kubectl must be installed to run these tests");
    Kubectl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn kubectl_ok(fx: &Fixture, args: &[&str]) -> String {
    let out = kubectl(fx, args).await;
    assert_eq!(out.code, 0, "kubectl {args:?} failed: {}", out.stderr);
    out.stdout
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn wi_config(ns: &str, name: &str, annotation: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": "wi"},
    });
    if let Some(gsa) = annotation {
        meta["annotations"] = json!({ANNOTATION: gsa});
    }
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
}

#[tokio::test]
async fn new_cluster_has_system_namespaces_with_default_service_accounts() {
    let fx = start().await;
    let client = kube_client(&fx).await;
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list namespaces");
    let names: Vec<String> = namespaces
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    for ns in &names {
        let sa = Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .get("default")
            .await
            .expect("default service account");
        assert_eq!(sa.metadata.namespace.as_deref(), Some(ns.as_str()));
    }
    let (code, body) = raw(&fx, "GET", "/api/v1/namespaces/kube-system", "", "").await;
    assert_eq!(code, 200);
    let ns: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "kube-system"
    );
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    let e = entry(&ns, "kube-apiserver", "Update").expect("kube-apiserver entry");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}})
    );
}

#[tokio::test]
async fn discovery_and_version() {
    let fx = start().await;
    let client = kube_client(&fx).await;
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.git_version, "v1.33.5-gke.1000");
    let core = client.list_core_api_versions().await.expect("/api");
    assert_eq!(core.versions, ["v1"]);
    let groups = client.list_api_groups().await.expect("/apis");
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["authentication.k8s.io", "authorization.k8s.io"]);
    let resources = client.list_core_api_resources("v1").await.expect("/api/v1");
    let names: Vec<&str> = resources
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    for want in [
        "namespaces",
        "serviceaccounts",
        "serviceaccounts/token",
        "pods",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let (code, body) = raw_as(&fx, None, "GET", "/healthz", "", "").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn kubectl_creates_annotates_applies_and_reads_back() {
    let fx = start().await;
    kubectl_ok(&fx, &["create", "namespace", "demo"]).await;
    kubectl_ok(&fx, &["-n", "demo", "create", "serviceaccount", "app"]).await;
    kubectl_ok(
        &fx,
        &[
            "-n",
            "demo",
            "annotate",
            "serviceaccount",
            "app",
            &format!("{ANNOTATION}={GSA}"),
        ],
    )
    .await;
    let out = kubectl_ok(
        &fx,
        &[
            "-n",
            "demo",
            "get",
            "serviceaccount",
            "app",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )
    .await;
    let sa: Value = serde_json::from_str(&out).expect("kubectl prints JSON");
    assert_eq!(sa["metadata"]["annotations"][ANNOTATION], GSA);
    // `kubectl create serviceaccount` sets no fields, so the object has no
    // managed fields, and kube-apiserver does not track updates of such an
    // object (skipNonAppliedManager; checked by tests/apiserver/differential.rs).
    assert!(
        entry(&sa, "kubectl-annotate", "Update").is_none(),
        "{}",
        sa["metadata"]
    );
    assert!(sa["metadata"].get("managedFields").is_none(), "{sa}");
    let ns: Value = serde_json::from_str(
        &kubectl_ok(
            &fx,
            &[
                "get",
                "namespace",
                "demo",
                "-o",
                "json",
                "--show-managed-fields",
            ],
        )
        .await,
    )
    .expect("json");
    let e = entry(&ns, "kubectl-create", "Update").expect("kubectl-create entry");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}})
    );

    let yaml = kubectl_ok(
        &fx,
        &["-n", "demo", "get", "serviceaccount", "app", "-o", "yaml"],
    )
    .await;
    assert!(yaml.contains(&format!("{ANNOTATION}: {GSA}")), "{yaml}");
    let table = kubectl_ok(&fx, &["-n", "demo", "get", "serviceaccounts"]).await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "SECRETS", "AGE"], "{table}");
    assert_eq!(&lines[1][..2], ["app", "0"], "{table}");
    assert_eq!(&lines[2][..2], ["default", "0"], "{table}");
    let table = kubectl_ok(&fx, &["get", "namespace", "demo"]).await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "STATUS", "AGE"], "{table}");
    assert_eq!(&lines[1][..2], ["demo", "Active"], "{table}");

    let manifest = fx._dir.path().join("sa.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: applied\n  namespace: demo\n  labels:\n    team: a\n",
    )
    .expect("write manifest");
    let manifest = manifest.to_string_lossy().into_owned();
    kubectl_ok(&fx, &["apply", "--server-side", "-f", &manifest]).await;
    let sa: Value = serde_json::from_str(
        &kubectl_ok(
            &fx,
            &[
                "-n",
                "demo",
                "get",
                "serviceaccount",
                "applied",
                "-o",
                "json",
                "--show-managed-fields",
            ],
        )
        .await,
    )
    .expect("json");
    let e = entry(&sa, "kubectl", "Apply").expect("kubectl Apply entry");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );

    let missing = kubectl(&fx, &["-n", "demo", "get", "serviceaccount", "nope"]).await;
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): serviceaccounts \"nope\" not found"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn server_side_apply_owns_conflicts_forces_and_releases() {
    let fx = start().await;
    let client = kube_client(&fx).await;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns"),
        )
        .await
        .expect("create namespace");
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "team");

    // First apply creates the object and records wi's fields.
    let applied = sas
        .patch(
            "app",
            &PatchParams::apply("wi"),
            &Patch::Apply(&wi_config("team", "app", Some(GSA))),
        )
        .await
        .expect("apply creates");
    let obj = serde_json::to_value(&applied).expect("json");
    let e = entry(&obj, "wi", "Apply").expect("wi entry");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:metadata": {
            "f:annotations": {format!("f:{ANNOTATION}"): {}},
            "f:labels": {"f:app.kubernetes.io/managed-by": {}}
        }})
    );
    assert_eq!(e["apiVersion"], "v1");
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    // Someone else changes the annotation with kubectl.
    kubectl_ok(
        &fx,
        &[
            "-n",
            "team",
            "annotate",
            "--overwrite",
            "serviceaccount",
            "app",
            &format!("{ANNOTATION}=other@proj.iam.gserviceaccount.com"),
        ],
    )
    .await;

    // wi's apply now conflicts with kubectl-annotate.
    let err = sas
        .patch(
            "app",
            &PatchParams::apply("wi"),
            &Patch::Apply(&wi_config("team", "app", Some(GSA))),
        )
        .await
        .expect_err("conflict");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        format!(
            "Apply failed with 1 conflict: conflict with \"kubectl-annotate\" using v1: .metadata.annotations.{ANNOTATION}"
        )
    );
    // The raw body, byte for byte.
    let (code, body) = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/team/serviceaccounts/app?fieldManager=wi",
        "application/apply-patch+yaml",
        &wi_config("team", "app", Some(GSA)).to_string(),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(
        body,
        format!(
            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"Apply failed with 1 conflict: conflict with \\\"kubectl-annotate\\\" using v1: .metadata.annotations.{ANNOTATION}\",\"reason\":\"Conflict\",\"details\":{{\"causes\":[{{\"reason\":\"FieldManagerConflict\",\"message\":\"conflict with \\\"kubectl-annotate\\\" using v1\",\"field\":\".metadata.annotations.{ANNOTATION}\"}}]}},\"code\":409}}"
        )
    );

    // force takes ownership back.
    let forced = sas
        .patch(
            "app",
            &PatchParams::apply("wi").force(),
            &Patch::Apply(&wi_config("team", "app", Some(GSA))),
        )
        .await
        .expect("forced apply");
    let obj = serde_json::to_value(&forced).expect("json");
    assert_eq!(obj["metadata"]["annotations"][ANNOTATION], GSA);
    assert!(
        entry(&obj, "kubectl-annotate", "Update").is_none(),
        "kubectl-annotate lost its only field"
    );

    // A foreign label and a second wi apply with the same value: shared, no conflict.
    kubectl_ok(
        &fx,
        &[
            "-n",
            "team",
            "label",
            "serviceaccount",
            "app",
            "owner=platform",
        ],
    )
    .await;

    // Dry run changes nothing.
    let dry = sas
        .patch(
            "app",
            &PatchParams::apply("wi").dry_run(),
            &Patch::Apply(&wi_config("team", "app", None)),
        )
        .await
        .expect("dry run");
    assert!(dry.metadata.annotations.unwrap_or_default().is_empty());
    let still = sas.get("app").await.expect("get");
    assert_eq!(
        still
            .metadata
            .annotations
            .unwrap_or_default()
            .get(ANNOTATION)
            .map(String::as_str),
        Some(GSA)
    );

    // Release: wi applies without the annotation; only wi owned it, so it goes.
    let released = sas
        .patch(
            "app",
            &PatchParams::apply("wi"),
            &Patch::Apply(&wi_config("team", "app", None)),
        )
        .await
        .expect("release");
    let obj = serde_json::to_value(&released).expect("json");
    assert!(obj["metadata"].get("annotations").is_none(), "{obj}");
    assert_eq!(obj["metadata"]["labels"]["owner"], "platform");
    assert_eq!(
        obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "wi"
    );
    assert_eq!(
        entry(&obj, "wi", "Apply").expect("wi entry")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}}})
    );
    assert_eq!(
        entry(&obj, "kubectl-label", "Update").expect("kubectl-label entry")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:owner": {}}}})
    );

    // Re-applying the same config is a no-op: resourceVersion stays.
    let rv = released.metadata.resource_version.clone();
    let again = sas
        .patch(
            "app",
            &PatchParams::apply("wi"),
            &Patch::Apply(&wi_config("team", "app", None)),
        )
        .await
        .expect("idempotent");
    assert_eq!(again.metadata.resource_version, rv);
    assert!(fx.host.changes.load(Ordering::SeqCst) >= 5);
}

#[tokio::test]
async fn status_errors_are_byte_exact() {
    let fx = start().await;
    let sa = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
            .to_string()
    };

    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/ghost/serviceaccounts",
        "application/json",
        &sa("x"),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \"ghost\" not found","reason":"NotFound","details":{"name":"ghost","kind":"namespaces"},"code":404}"#
    );

    // Admission (namespace lifecycle) comes before validation.
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/ghost/serviceaccounts",
        "application/json",
        &sa("Bad_Name"),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        "application/json",
        &sa("Bad_Name"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ServiceAccount \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')","reason":"Invalid","details":{"name":"Bad_Name","kind":"ServiceAccount","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')","field":"metadata.name"}]},"code":422}"#
    );

    let (code, _) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        "application/json",
        &sa("dup"),
    )
    .await;
    assert_eq!(code, 201);
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        "application/json",
        &sa("dup"),
    )
    .await;
    assert_eq!(code, 409);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"serviceaccounts \"dup\" already exists","reason":"AlreadyExists","details":{"name":"dup","kind":"serviceaccounts"},"code":409}"#
    );

    let (code, body) = raw(
        &fx,
        "GET",
        "/api/v1/namespaces/default/serviceaccounts/x",
        "",
        "",
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"serviceaccounts \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"serviceaccounts"},"code":404}"#
    );
    let (code, body) = raw(&fx, "GET", "/api/v1/namespaces/ghost", "", "").await;
    assert_eq!(code, 404);
    assert!(
        body.contains(r#""message":"namespaces \"ghost\" not found""#),
        "{body}"
    );

    let (code, body) = raw(&fx, "GET", "/api/v1/namespaces/default/configmaps", "", "").await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#
    );
    let (code, body) = raw(&fx, "GET", "/apis/apps/v1", "", "").await;
    assert_eq!((code, body.as_str()), (404, "404 page not found\n"));

    let unauthorized = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
    let (code, body) = raw_as(
        &fx,
        Some("ya29.unknown"),
        "GET",
        "/api/v1/namespaces",
        "",
        "",
    )
    .await;
    assert_eq!((code, body.as_str()), (401, unauthorized));
    let (code, body) = raw_as(&fx, None, "GET", "/api/v1/namespaces", "", "").await;
    assert_eq!((code, body.as_str()), (401, unauthorized));

    let (code, body) = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/serviceaccounts/dup",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: dup\n",
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch","reason":"Invalid","details":{"group":"meta.k8s.io","kind":"PatchOptions","causes":[{"reason":"FieldValueRequired","message":"Required value: is required for apply patch","field":"fieldManager"}]},"code":422}"#
    );

    // YAML apply body with kube-rs's `?&` query quirk.
    let (code, body) = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/serviceaccounts/dup?&fieldManager=wi&force=true",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: dup\n  labels:\n    a: b\n",
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let (code, body) = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/serviceaccounts/dup",
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(code, 415, "{body}");
    assert!(body.contains(r#""reason":"UnsupportedMediaType""#));
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let fx = start().await;
    let client = kube_client(&fx).await;
    let sas = Api::<ServiceAccount>::namespaced(client, "default");
    let mut sa = sas.get("default").await.expect("get");
    let stale = sa.clone();
    sa.metadata.labels = Some([("a".to_string(), "1".to_string())].into());
    let updated = sas
        .replace("default", &PostParams::default(), &sa)
        .await
        .expect("fresh PUT");
    assert_ne!(
        updated.metadata.resource_version,
        stale.metadata.resource_version
    );

    let err = sas
        .replace("default", &PostParams::default(), &stale)
        .await
        .expect_err("stale PUT");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on serviceaccounts \"default\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Merge patch, strategic merge patch and JSON patch.
    let p = sas
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"b": "2", "a": null}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        p.metadata.labels,
        Some([("b".to_string(), "2".to_string())].into())
    );
    let p = sas
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"annotations": {"k": "v"}}})),
        )
        .await
        .expect("strategic merge patch");
    assert_eq!(
        p.metadata.annotations,
        Some([("k".to_string(), "v".to_string())].into())
    );
    let (code, body) = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/serviceaccounts/default",
        "application/json-patch+json",
        r#"[{"op":"remove","path":"/metadata/annotations/k"}]"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let p: ServiceAccount = serde_json::from_str(&body).expect("service account");
    assert_eq!(p.metadata.annotations, None);
}

#[tokio::test]
async fn token_request_is_signed_for_the_audience() {
    let fx = start().await;
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": ["proj.svc.id.goog"], "expirationSeconds": 3600}})
        .to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let tr: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["spec"]["audiences"], json!(["proj.svc.id.goog"]));
    let token = tr["status"]["token"].as_str().expect("token");
    assert!(
        tr["status"]["expirationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let claims = fx.cluster.verify_token(token).expect("verifies");
    assert_eq!(claims.aud, ["proj.svc.id.goog"]);
    assert_eq!(claims.sub, "system:serviceaccount:default:default");
    assert_eq!(claims.iss, identity().issuer());
    assert_eq!(claims.exp - claims.iat, 3600);

    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .expect("b64"),
    )
    .expect("payload");
    assert_eq!(
        payload["kubernetes.io"]["serviceaccount"]["name"],
        "default"
    );
    payload["sub"] = json!("system:serviceaccount:kube-system:default");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    assert!(
        fx.cluster.verify_token(&parts.join(".")).is_err(),
        "a forged payload must not verify"
    );

    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/ghost/token",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        body.contains(r#""message":"serviceaccounts \"ghost\" not found""#),
        "{body}"
    );

    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        r#"{"spec":{"expirationSeconds":60}}"#,
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        body.contains(r#""message":"TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes""#),
        "{body}"
    );
}

#[tokio::test]
async fn lists_filter_by_label_and_field_and_serve_seeded_pods() {
    let mut state = KubeClusterState::generate(&identity());
    state
        .insert_object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
        )
        .expect("namespace");
    for (name, app) in [("web", "web"), ("api", "api"), ("batch", "jobs")] {
        state
            .insert_object(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": "apps", "labels": {"app": app}}}))
            .expect("service account");
    }
    state
        .insert_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "apps"},
            "spec": {"serviceAccountName": "web", "hostNetwork": false, "containers": [{"name": "c", "image": "nginx"}]}}))
        .expect("pod");
    state
        .insert_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "node-agent", "namespace": "kube-system"},
            "spec": {"serviceAccountName": "default", "hostNetwork": true, "containers": [{"name": "c", "image": "agent"}]}}))
        .expect("pod");
    let err = state
        .insert_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
        .expect_err("unsupported kind");
    assert!(err.contains("ConfigMap"), "{err}");

    let fx = start_with(state).await;
    let client = kube_client(&fx).await;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "apps");
    let names = |l: kube::api::ObjectList<ServiceAccount>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            sas.list(&ListParams::default().labels("app=web"))
                .await
                .expect("eq")
        ),
        ["web"]
    );
    assert_eq!(
        names(
            sas.list(&ListParams::default().labels("app!=web"))
                .await
                .expect("ne")
        ),
        ["api", "batch", "default"]
    );
    assert_eq!(
        names(
            sas.list(&ListParams::default().labels("app in (web,api)"))
                .await
                .expect("in")
        ),
        ["api", "web"]
    );
    assert_eq!(
        names(
            sas.list(&ListParams::default().labels("!app"))
                .await
                .expect("not exists")
        ),
        ["default"]
    );
    assert_eq!(
        names(
            sas.list(&ListParams::default().fields("metadata.name=batch"))
                .await
                .expect("field")
        ),
        ["batch"]
    );
    let all = Api::<ServiceAccount>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("all namespaces");
    assert_eq!(
        all.items.len(),
        4 + 1 + 3,
        "system defaults, apps default, three seeded"
    );

    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("pods");
    let summary: Vec<(String, String, bool)> = pods
        .items
        .iter()
        .map(|p| {
            let spec = p.spec.clone().unwrap_or_default();
            (
                p.metadata.name.clone().unwrap_or_default(),
                spec.service_account_name.unwrap_or_default(),
                spec.host_network.unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("web-1".to_string(), "web".to_string(), false),
            ("node-agent".to_string(), "default".to_string(), true)
        ]
    );
    let in_apps = Api::<Pod>::namespaced(client, "apps")
        .list(&ListParams::default().fields("spec.serviceAccountName=web"))
        .await
        .expect("pods in apps");
    assert_eq!(in_apps.items.len(), 1);
    let out = kubectl_ok(&fx, &["get", "pods", "-A", "-o", "name"]).await;
    assert_eq!(out, "pod/web-1\npod/node-agent\n");
}

#[tokio::test]
async fn state_survives_a_restart() {
    let fx = start().await;
    let client = kube_client(&fx).await;
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "keep"}})).expect("ns"),
        )
        .await
        .expect("create");
    let (_, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        r#"{"spec":{"audiences":["a"]}}"#,
    )
    .await;
    let token = serde_json::from_str::<Value>(&body).expect("json")["status"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let saved = serde_json::to_string(&fx.cluster.snapshot()).expect("serialise");
    assert!(
        !format!("{:?}", fx.cluster.snapshot()).contains("PRIVATE KEY"),
        "Debug must not leak keys"
    );
    let restored: KubeClusterState = serde_json::from_str(&saved).expect("deserialise");
    let fx2 = start_with(restored).await;
    assert_eq!(fx2.ca_pem, fx.ca_pem);
    assert_eq!(
        fx2.cluster
            .verify_token(&token)
            .expect("old token verifies")
            .aud,
        ["a"]
    );
    let client2 = kube_client(&fx2).await;
    let ns = Api::<Namespace>::all(client2)
        .get("keep")
        .await
        .expect("namespace kept");
    assert_eq!(ns.metadata.name.as_deref(), Some("keep"));

    // Deleting a namespace removes what is in it.
    let (code, _) = raw(&fx2, "DELETE", "/api/v1/namespaces/keep", "", "").await;
    assert_eq!(code, 200);
    let (code, _) = raw(&fx2, "GET", "/api/v1/namespaces/keep", "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn authorization_denials_are_forbidden_statuses() {
    let fx = start().await;
    let viewer = Some(VIEWER_TOKEN);
    let (code, _) = raw_as(
        &fx,
        viewer,
        "GET",
        "/api/v1/namespaces/default/serviceaccounts",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = raw_as(
        &fx,
        viewer,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        "application/json",
        r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"serviceaccounts is forbidden: User \"viewer@example.com\" cannot create resource \"serviceaccounts\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"serviceaccounts"},"code":403}"#
    );
    let (code, body) = raw_as(
        &fx,
        viewer,
        "PATCH",
        "/api/v1/namespaces/kube-system?fieldManager=wi",
        "application/apply-patch+yaml",
        "{}",
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        body.contains(r#""message":"namespaces \"kube-system\" is forbidden: User \"viewer@example.com\" cannot patch resource \"namespaces\" in API group \"\" in the namespace \"kube-system\"""#),
        "{body}"
    );
    let (code, body) = raw_as(
        &fx,
        viewer,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        body.contains(r#"cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\""#),
        "{body}"
    );
    let can = kubectl_as(
        &fx,
        VIEWER_TOKEN,
        &["auth", "can-i", "list", "serviceaccounts"],
    )
    .await;
    assert_eq!(
        (can.code, can.stdout.as_str()),
        (0, "yes\n"),
        "{}",
        can.stderr
    );
    let cannot = kubectl_as(
        &fx,
        VIEWER_TOKEN,
        &["auth", "can-i", "patch", "serviceaccounts"],
    )
    .await;
    assert_eq!(
        (cannot.code, cannot.stdout.as_str()),
        (1, "no\n"),
        "{}",
        cannot.stderr
    );
    let who = kubectl_as(&fx, VIEWER_TOKEN, &["auth", "whoami", "-o", "json"]).await;
    assert_eq!(who.code, 0, "{}", who.stderr);
    let who: Value = serde_json::from_str(&who.stdout).expect("json");
    assert_eq!(who["status"]["userInfo"]["username"], VIEWER);
    let err = kubectl_as(&fx, VIEWER_TOKEN, &["create", "namespace", "nope"]).await;
    assert_ne!(err.code, 0);
    assert!(
        err.stderr.contains(r#"Error from server (Forbidden): namespaces is forbidden: User "viewer@example.com" cannot create resource "namespaces" in API group "" at the cluster scope"#),
        "{}",
        err.stderr
    );
}

#[tokio::test]
async fn pod_bound_tokens_and_capped_lifetimes() {
    let mut state = KubeClusterState::generate(&identity());
    state
        .insert_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"serviceAccountName": "default", "nodeName": "gke-node-1",
                     "containers": [{"name": "c", "image": "nginx"}]}}))
        .expect("pod");
    let fx = start_with(state).await;
    let body =
        json!({"spec": {"audiences": ["proj.svc.id.goog"], "expirationSeconds": 7 * 24 * 3600,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web-1"}}})
        .to_string();
    let resp = http(&fx)
        .post(format!(
            "{}/api/v1/namespaces/default/serviceaccounts/default/token",
            fx.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers().get("warning").and_then(|v| v.to_str().ok()),
        Some("299 - \"requested expiration of 604800 seconds shortened to 172800 seconds\"")
    );
    let tr: Value = resp.json().await.expect("json");
    assert_eq!(tr["spec"]["expirationSeconds"], 172800);
    let token = tr["status"]["token"].as_str().expect("token");
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("claims");
    assert_eq!(payload["kubernetes.io"]["pod"]["name"], "web-1");
    let keys: Vec<&String> = payload["kubernetes.io"]
        .as_object()
        .expect("claim")
        .keys()
        .collect();
    assert_eq!(keys, ["namespace", "node", "pod", "serviceaccount"]);
    assert_eq!(payload["kubernetes.io"]["node"]["name"], "gke-node-1");
    assert!(fx.cluster.verify_token(token).is_ok());

    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        r#"{"spec":{"boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"ghost"}}}"#,
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        body.contains(r#""message":"pods \"ghost\" not found""#),
        "{body}"
    );
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        r#"{"metadata":{"name":"other"}}"#,
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        body.contains(r#""message":"TokenRequest.authentication.k8s.io \"default\" is invalid: metadata.name: Invalid value: \"other\": must match the service account name if specified""#),
        "{body}"
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let fx = start().await;
    let (code, body) = raw(&fx, "GET", "/api/v1/serviceaccounts?limit=3", "", "").await;
    assert_eq!(code, 200, "{body}");
    let first: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(first["metadata"]["remainingItemCount"], 1);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue token");
    let path = format!(
        "/api/v1/serviceaccounts?limit=3&continue={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let (code, body) = raw(&fx, "GET", &path, "", "").await;
    assert_eq!(code, 200, "{body}");
    let second: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(second["items"][0]["metadata"]["namespace"], "kube-system");
    assert!(second["metadata"].get("continue").is_none());
    let (code, body) = raw(
        &fx,
        "GET",
        "/api/v1/serviceaccounts?continue=bm9wZQ",
        "",
        "",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("continue key is not valid"), "{body}");
    // kube-rs pages through the same way.
    let client = kube_client(&fx).await;
    let page = Api::<ServiceAccount>::all(client)
        .list(&ListParams::default().limit(2))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    assert!(page.metadata.continue_.is_some());
}

#[tokio::test]
async fn oidc_discovery_and_jwks_verify_issued_tokens() {
    let fx = start().await;
    let (code, body) = raw(&fx, "GET", "/.well-known/openid-configuration", "", "").await;
    assert_eq!(code, 200);
    let disco: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(disco["issuer"], identity().issuer());
    assert_eq!(disco["jwks_uri"], format!("{}/jwks", identity().issuer()));
    let (code, body) = raw(&fx, "GET", "/openid/v1/jwks", "", "").await;
    assert_eq!(code, 200);
    let jwks: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(jwks, fx.cluster.jwks());
    let key = &jwks["keys"][0];
    let (_, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "application/json",
        "{}",
    )
    .await;
    let tr: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(tr["spec"]["audiences"], json!([identity().issuer()]));
    let token = tr["status"]["token"].as_str().expect("token");
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value =
        serde_json::from_slice(&b64.decode(parts[0]).expect("b64")).expect("header");
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(header["alg"], "RS256");
    let public = ring::rsa::PublicKeyComponents {
        n: b64.decode(key["n"].as_str().expect("n")).expect("n b64"),
        e: b64.decode(key["e"].as_str().expect("e")).expect("e b64"),
    };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &b64.decode(parts[2]).expect("sig"),
        )
        .expect("the JWKS key verifies the token");
}

#[tokio::test]
async fn unknown_fields_are_dropped_warned_or_refused() {
    let fx = start().await;
    let body = r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"typo","annotation":{"a":"b"}},"bogus":true}"#;
    let (code, resp) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts?fieldValidation=Strict",
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        resp,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ServiceAccount in version \"v1\" cannot be handled as a ServiceAccount: strict decoding error: unknown field \"metadata.annotation\", unknown field \"bogus\"","reason":"BadRequest","code":400}"#
    );
    let resp = http(&fx)
        .post(format!(
            "{}/api/v1/namespaces/default/serviceaccounts",
            fx.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status().as_u16(), 201);
    let warnings: Vec<&str> = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        warnings,
        [
            r#"299 - "unknown field \"metadata.annotation\"""#,
            r#"299 - "unknown field \"bogus\"""#
        ]
    );
    let created: Value = resp.json().await.expect("json");
    assert!(created.get("bogus").is_none());
    assert!(created["metadata"].get("annotation").is_none());

    let (code, resp) = raw(
        &fx,
        "PATCH",
        "/api/v1/namespaces/default/serviceaccounts/typo?fieldManager=wi",
        "application/apply-patch+yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: typo\nspec:\n  x: 1\n",
    )
    .await;
    assert_eq!(code, 500);
    assert_eq!(
        resp,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"failed to create typed patch object (default/typo; /v1, Kind=ServiceAccount): .spec: field not declared in schema","code":500}"#
    );

    let manifest = fx._dir.path().join("typo.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: typo2\n  namespace: default\nautomount: false\n",
    )
    .expect("write manifest");
    let out = kubectl(
        &fx,
        &["apply", "--server-side", "-f", &manifest.to_string_lossy()],
    )
    .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("failed to create typed patch object (default/typo2; /v1, Kind=ServiceAccount): .automount: field not declared in schema"),
        "{}",
        out.stderr
    );
    let out = kubectl(&fx, &["create", "-f", &manifest.to_string_lossy()]).await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains(r#"strict decoding error: unknown field "automount""#),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn watches_stream_changes_and_expire_old_versions() {
    use futures::StreamExt as _;
    use kube::api::{WatchEvent, WatchParams};
    let fx = start().await;
    let client = kube_client(&fx).await;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    let list = sas.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.clone().expect("list rv");
    let mut stream = sas
        .watch(&WatchParams::default().timeout(20), &rv)
        .await
        .expect("watch")
        .boxed();
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "watched"}})).expect("sa"),
    )
    .await
    .expect("create");
    sas.patch(
        "watched",
        &PatchParams::apply("wi"),
        &Patch::Apply(&wi_config("default", "watched", Some(GSA))),
    )
    .await
    .expect("apply");
    // A change elsewhere is not seen.
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "elsewhere"}})).expect("ns"),
        )
        .await
        .expect("namespace");
    sas.delete("watched", &Default::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("event decodes");
        seen.push(match event {
            WatchEvent::Added(sa) => ("ADDED", sa.metadata.name.unwrap_or_default()),
            WatchEvent::Modified(sa) => ("MODIFIED", sa.metadata.name.unwrap_or_default()),
            WatchEvent::Deleted(sa) => ("DELETED", sa.metadata.name.unwrap_or_default()),
            other => panic!("unexpected event {other:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "watched".to_string()),
            ("MODIFIED", "watched".to_string()),
            ("DELETED", "watched".to_string())
        ]
    );

    // kubectl wait --for=delete sees a deletion through its watch.
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).expect("sa"),
    )
    .await
    .expect("create");
    let waiter = {
        let kubeconfig = fx.kubeconfig.clone();
        let home = fx._dir.path().to_path_buf();
        tokio::spawn(async move {
            tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args([
                    "-n",
                    "default",
                    "wait",
                    "--for=delete",
                    "serviceaccount/doomed",
                    "--timeout=20s",
                ])
                .env_remove("KUBECONFIG")
                .env("HOME", home)
                .output()
                .await
                .expect("kubectl must be installed to run these tests")
        })
    };
    // Delete only once kubectl watches, or it would find nothing to wait for.
    let watching = |fx: &Fixture| {
        fx.host
            .verbs
            .lock()
            .map(|v| v.iter().filter(|verb| *verb == "watch").count())
            .unwrap_or(0)
    };
    let before = watching(&fx);
    for _ in 0..200 {
        if watching(&fx) > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        watching(&fx) > before,
        "kubectl wait never started watching"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    sas.delete("doomed", &Default::default())
        .await
        .expect("delete");
    let out = waiter.await.expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "serviceaccount/doomed condition met\n"
    );

    // Resuming from a version that is no longer remembered is a 410 Expired.
    let one_client = http(&fx);
    for i in 0..1001 {
        let resp = one_client
            .patch(format!(
                "{}/api/v1/namespaces/default/serviceaccounts/default",
                fx.url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"metadata": {"labels": {"n": i.to_string()}}}).to_string())
            .send()
            .await
            .expect("patch");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let (code, body) = raw(
        &fx,
        "GET",
        "/api/v1/namespaces/default/serviceaccounts?watch=true&resourceVersion=1&timeoutSeconds=1",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let event: Value = serde_json::from_str(body.trim()).expect("one event");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["reason"], "Expired");
    assert_eq!(event["object"]["code"], 410);
}

#[tokio::test]
async fn pods_are_admitted_only_with_their_service_account() {
    let fx = start().await;
    let pod = |sa: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "nginx"}]}})
        .to_string()
    };
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        &pod("ghost"),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"p\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found","reason":"Forbidden","details":{"name":"p","kind":"pods"},"code":403}"#
    );
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        &pod(""),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let created: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(created["spec"]["serviceAccountName"], "default");
    assert_eq!(created["status"]["phase"], "Pending");
    let table = kubectl_ok(&fx, &["get", "pods"]).await;
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert_eq!(&lines[1][..4], ["p", "0/1", "Pending", "0"], "{table}");
}

#[tokio::test]
async fn an_empty_state_still_gets_keys_and_serves() {
    let fx = start_with(KubeClusterState::default()).await;
    let (code, _) = raw(&fx, "GET", "/version", "", "").await;
    assert_eq!(code, 200);
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}}"#,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = raw(
        &fx,
        "POST",
        "/api/v1/namespaces/n/serviceaccounts/default/token",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn malformed_requests_get_status_errors_never_a_crash() {
    let fx = start().await;
    let bodies = [
        "",
        "null",
        "[]",
        "42",
        "\"text\"",
        "{",
        "{\"metadata\":null}",
        "{\"metadata\":{\"name\":7}}",
        "{\"metadata\":{\"labels\":[1,2]}}",
        "{\"metadata\":{\"managedFields\":\"x\"}}",
        "{\"metadata\":{\"managedFields\":[{\"operation\":\"Nope\"}]}}",
        "{\"apiVersion\":\"v2\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"a\"}}",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\"}}",
        "k8s\u{0}\u{ff}\u{ff}",
        ": : :",
        "- a\n- b",
    ];
    let targets = [
        (
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            "application/json",
        ),
        (
            "POST",
            "/api/v1/namespaces",
            "application/vnd.kubernetes.protobuf",
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/serviceaccounts/default",
            "application/json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/serviceaccounts/default",
            "application/merge-patch+json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/serviceaccounts/default",
            "application/strategic-merge-patch+json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/serviceaccounts/default",
            "application/json-patch+json",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/serviceaccounts/default?fieldManager=x",
            "application/apply-patch+yaml",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/default/token",
            "application/json",
        ),
        (
            "GET",
            "/api/v1/serviceaccounts?labelSelector=a%20in%20(&fieldSelector=x",
            "",
        ),
        (
            "GET",
            "/api/v1/serviceaccounts?watch=true&resourceVersion=abc",
            "",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/serviceaccounts/nope",
            "application/json",
        ),
    ];
    for (method, path, content_type) in targets {
        for body in bodies {
            let (code, text) = raw(&fx, method, path, content_type, body).await;
            assert!(
                (200..500).contains(&code) || (code == 500 && text.contains("typed patch object")),
                "{method} {path} {body:?} -> {code} {text}"
            );
            if code >= 400 {
                let status: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                    panic!("{method} {path} {body:?}: not a Status ({e}): {text}")
                });
                assert_eq!(status["kind"], "Status");
                assert_eq!(status["code"], code);
            }
        }
    }
    let (code, _) = raw(
        &fx,
        "GET",
        "/api/v1/namespaces/default/serviceaccounts/default",
        "",
        "",
    )
    .await;
    assert_eq!(code, 200, "the server still answers");
}
