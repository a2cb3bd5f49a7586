//! The Workload Identity token flow end to end, as the GKE metadata server
//! runs it: a TokenRequest for the pod's KSA with the pool as audience, the
//! STS exchange (only for clusters with Workload Identity), then IAM
//! Credentials `generateAccessToken` (only when the KSA holds
//! roles/iam.workloadIdentityUser on the GSA).

use crate::harness;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

const SEED: &str = r#"
projects:
  - id: flow-proj
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: gsa-app
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:flow-proj.svc.id.goog[team-a/app]"]
    clusters:
      - name: wi
        location: us-central1-a
        workloadPool: flow-proj.svc.id.goog
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: app, namespace: team-a}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: other, namespace: team-a}}
      - name: nowi
        location: us-central1-a
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: app, namespace: team-a}}
"#;

async fn ksa_token(t: &harness::TestEmu, cluster: &str, ksa: &str, audience: &str) -> String {
    let c = t
        .call(
            Method::GET,
            &format!("/container/v1/projects/flow-proj/locations/us-central1-a/clusters/{cluster}"),
            None,
        )
        .await;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            c.body["masterAuth"]["clusterCaCertificate"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let kube = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let resp = kube
        .post(format!(
            "https://{}/api/v1/namespaces/team-a/serviceaccounts/{ksa}/token",
            c.body["endpoint"].as_str().unwrap()
        ))
        .bearer_auth(&t.token)
        .json(
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"audiences": [audience], "expirationSeconds": 3600}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "TokenRequest");
    let body: Value = resp.json().await.unwrap();
    body["status"]["token"].as_str().unwrap().to_string()
}

async fn sts(t: &harness::TestEmu, cluster: &str, token: &str) -> (u16, Value) {
    let issuer = format!(
        "https://container.googleapis.com/v1/projects/flow-proj/locations/us-central1-a/clusters/{cluster}"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/sts/v1/token", t.emu.http_url()))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            (
                "audience",
                &format!("identitynamespace:flow-proj.svc.id.goog:{issuer}"),
            ),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("scope", "https://www.googleapis.com/auth/cloud-platform"),
            ("subject_token", token),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn ksa_token_to_federated_token_to_gsa_token() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).unwrap();
    let t = harness::start(|c| c.seed = Some(seed.clone())).await;
    let gen_path = "/iamcredentials/v1/projects/-/serviceAccounts/gsa-app@flow-proj.iam.gserviceaccount.com:generateAccessToken";
    let scope = json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"]});

    // The bound KSA: all the way to a GSA token.
    let ksa = ksa_token(&t, "wi", "app", "flow-proj.svc.id.goog").await;
    let (s, fed) = sts(&t, "wi", &ksa).await;
    assert_eq!(s, 200, "{fed}");
    assert_eq!(fed["token_type"], "Bearer");
    assert_eq!(
        fed["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let fed_token = fed["access_token"].as_str().unwrap();
    let a = t
        .call_as(Some(fed_token), Method::POST, gen_path, Some(scope.clone()))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let gsa_token = a.body["accessToken"].as_str().unwrap().to_string();
    let review: Value = reqwest::Client::new()
        .post(format!("{}/authn/tokenreview", t.emu.http_url()))
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": gsa_token}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        review["status"]["user"]["username"],
        "gsa-app@flow-proj.iam.gserviceaccount.com"
    );

    // An unbound KSA federates but may not impersonate.
    let other = ksa_token(&t, "wi", "other", "flow-proj.svc.id.goog").await;
    let (s, fed) = sts(&t, "wi", &other).await;
    assert_eq!(s, 200, "{fed}");
    let a = t
        .call_as(
            Some(fed["access_token"].as_str().unwrap()),
            Method::POST,
            gen_path,
            Some(scope),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body["error"]["message"],
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    );

    // Wrong audience, and a cluster without Workload Identity.
    let wrong = ksa_token(&t, "wi", "app", "https://example.com").await;
    let (s, e) = sts(&t, "wi", &wrong).await;
    assert_eq!(s, 400);
    assert_eq!(e["error"], "invalid_grant");
    let nowi = ksa_token(&t, "nowi", "app", "flow-proj.svc.id.goog").await;
    let (s, e) = sts(&t, "nowi", &nowi).await;
    assert_eq!(s, 400);
    assert_eq!(e["error"], "invalid_target");
    let problems = t.schema_problems();
    t.emu.shutdown().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
