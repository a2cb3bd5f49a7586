//! Nothing lost: `kill -9` the `wi emulator` binary mid-run (an operation
//! still running) and restart it on the same `--state` file; the world is
//! intact — clusters, service accounts, policies, etags, tokens.

use crate::harness;
use crate::harness::command::EmulatorProcess;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn start(dir: &Path) -> (EmulatorProcess, Vec<(String, String)>) {
    let state = dir.join("state.json");
    let emulator = EmulatorProcess::spawn(
        &[
            "--operation-duration".as_ref(),
            "1500ms".as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
        ],
        &dir.join("env.sh"),
        Stdio::null(),
    );
    let env = emulator.exports.clone();
    (emulator, env)
}

fn var(env: &[(String, String)], k: &str) -> String {
    env.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(env: &[(String, String)]) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = std::fs::read(var(env, "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE")).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap();
        let token = std::fs::read_to_string(var(env, "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE")).unwrap();
        let base = var(env, "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER")
            .trim_end_matches("/container/")
            .to_string();
        Api {
            client,
            base,
            token,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("emulator answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn kill_dash_nine_loses_nothing() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let (emulator, env) = start(dir.path());
    let p = var(&env, "CLOUDSDK_CORE_PROJECT");
    let api = Api::new(&env);
    let clusters = format!("/container/v1/projects/{p}/locations/us-central1-a/clusters");

    let (s, op) = api
        .call(
            Method::POST,
            &clusters,
            Some(json!({"cluster": {"name": "c1", "initialNodeCount": 1,
            "workloadIdentityConfig": {"workloadPool": format!("{p}.svc.id.goog")}}})),
        )
        .await;
    assert_eq!(s, 200, "{op}");
    let (s, sa) = api
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{p}/serviceAccounts"),
            Some(json!({"accountId": "keeper"})),
        )
        .await;
    assert_eq!(s, 200, "{sa}");
    let email = sa["email"].as_str().unwrap().to_string();
    let (s, pol) = api
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{p}/serviceAccounts/{email}:setIamPolicy"),
            Some(
                json!({"policy": {"bindings": [{"role": "roles/iam.workloadIdentityUser",
                "members": [format!("serviceAccount:{p}.svc.id.goog[ns/ksa]")]}]}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{pol}");
    let (s, _) = api
        .call(
            Method::POST,
            &format!("/serviceusage/v1/projects/{p}/services/iamcredentials.googleapis.com:enable"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, project_policy) = api
        .call(
            Method::POST,
            &format!("/cloudresourcemanager/v1/projects/{p}:getIamPolicy"),
            Some(json!({})),
        )
        .await;
    // An operation still running when the process dies.
    let (s, op2) = api
        .call(
            Method::POST,
            &clusters,
            Some(json!({"cluster": {"name": "c2", "initialNodeCount": 1}})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(op2["status"], "RUNNING");
    let (_, c1_before) = api.call(Method::GET, &format!("{clusters}/c1"), None).await;
    // A Kubernetes write the moment before the kill: it must survive too.
    let kube_client = |cluster: &Value| {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                cluster["masterAuth"]["clusterCaCertificate"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap();
        (
            client,
            format!("https://{}", cluster["endpoint"].as_str().unwrap()),
        )
    };
    let (kube, server) = kube_client(&c1_before);
    let created = kube
        .post(format!("{server}/api/v1/namespaces"))
        .bearer_auth(&api.token)
        .json(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "written-before-kill"}}))
        .send()
        .await
        .expect("kube API answers");
    assert_eq!(created.status().as_u16(), 201);

    // kill -9 (Child::kill sends SIGKILL on Unix), right after that response.
    drop(emulator);

    let (mut again, env2) = start(dir.path());
    assert_eq!(var(&env2, "CLOUDSDK_CORE_PROJECT"), p);
    let api2 = Api::new(&env2);
    assert_eq!(api2.token, api.token, "the admin token survives");
    let (s, sa2) = api2
        .call(
            Method::GET,
            &format!("/iam/v1/projects/{p}/serviceAccounts/{email}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{sa2}");
    assert_eq!(sa2["uniqueId"], sa["uniqueId"]);
    let (_, pol2) = api2
        .call(
            Method::POST,
            &format!("/iam/v1/projects/{p}/serviceAccounts/{email}:getIamPolicy"),
            None,
        )
        .await;
    assert_eq!(pol2, pol, "policy and etag intact");
    let (_, pp2) = api2
        .call(
            Method::POST,
            &format!("/cloudresourcemanager/v1/projects/{p}:getIamPolicy"),
            Some(json!({})),
        )
        .await;
    assert_eq!(pp2, project_policy);
    let (_, svc) = api2
        .call(
            Method::GET,
            &format!("/serviceusage/v1/projects/{p}/services/iamcredentials.googleapis.com"),
            None,
        )
        .await;
    assert_eq!(svc["state"], "ENABLED");
    let (s, c1) = api2
        .call(Method::GET, &format!("{clusters}/c1"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        c1["workloadIdentityConfig"],
        c1_before["workloadIdentityConfig"]
    );
    assert_eq!(
        c1["masterAuth"]["clusterCaCertificate"],
        c1_before["masterAuth"]["clusterCaCertificate"]
    );
    assert_eq!(c1["etag"], c1_before["etag"]);
    // The interrupted operation is still known and finishes on schedule.
    let op_path = format!(
        "/container/v1/projects/{p}/locations/us-central1-a/operations/{}",
        op2["name"].as_str().unwrap()
    );
    let mut done = false;
    for _ in 0..60 {
        let (s, o) = api2.call(Method::GET, &op_path, None).await;
        assert_eq!(s, 200, "{o}");
        if o["status"] == "DONE" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done);
    let (s, c2) = api2
        .call(Method::GET, &format!("{clusters}/c2"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(c2["status"], "RUNNING");
    // Its Kubernetes API listens again (same CA).
    let endpoint = c1["endpoint"].as_str().unwrap();
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(c1["masterAuth"]["clusterCaCertificate"].as_str().unwrap())
        .unwrap();
    let kube = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let resp = kube
        .get(format!("https://{endpoint}/version"))
        .bearer_auth(&api2.token)
        .send()
        .await;
    assert!(
        resp.is_ok(),
        "cluster API unreachable after restart: {resp:?}"
    );
    let (kube, server) = kube_client(&c1);
    let kept = kube
        .get(format!("{server}/api/v1/namespaces/written-before-kill"))
        .bearer_auth(&api2.token)
        .send()
        .await
        .expect("kube API answers");
    assert_eq!(
        kept.status().as_u16(),
        200,
        "the Kubernetes write survived the kill"
    );
    // The state file is valid JSON at all times (atomic writes).
    let text = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    let _: Value = serde_json::from_str(&text).unwrap();
    // SIGTERM: a clean exit.
    again.terminate();
}

#[test]
fn bad_options_stop_the_emulator_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(harness::wi_binary())
        .args(["emulator", "--faults", "iam=409:2"])
        .arg("--work-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid --faults spec"), "{stderr}");
    let seed = dir.path().join("bad.yaml");
    std::fs::write(&seed, "projects:\n  - id: p1\n    clusters:\n      - name: Bad_Name\n        location: us-central1-a\n").unwrap();
    let out = Command::new(harness::wi_binary())
        .args(["emulator", "--seed"])
        .arg(&seed)
        .arg("--work-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("Bad_Name"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no exports on failure");
}
