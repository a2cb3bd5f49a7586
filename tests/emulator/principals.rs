//! `principal://` and `principalSet://` members in the emulator's IAM, as
//! the real IAM treats them: malformed identifiers, pools no cluster has
//! created and project numbers that are not the pool project's are 400
//! INVALID_ARGUMENT; valid ones are stored verbatim (case-sensitive); and a
//! federated token (the STS exchange of a KSA token) holds what policies
//! grant its principal or a principal set containing it, as
//! `testIamPermissions` (Resource Manager v1 and v3, IAM) answers.

use crate::harness;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

const NUMBER: &str = "424242424242";

const SEED: &str = r#"
projects:
  - id: direct-proj
    number: "424242424242"
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: signer
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: direct-proj.svc.id.goog
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
          - {apiVersion: v1, kind: Namespace, metadata: {name: batch}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: app, namespace: team-a}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: job, namespace: batch}}
      - name: beta
        location: us-central1-a
        workloadPool: direct-proj.svc.id.goog
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
          - {apiVersion: v1, kind: Namespace, metadata: {name: batch}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: other, namespace: team-a}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: job, namespace: batch}}
  - id: other-proj
    number: "171717171717"
"#;

const POOL: &str = "iam.googleapis.com/projects/424242424242/locations/global/workloadIdentityPools/direct-proj.svc.id.goog";

fn principal(ns: &str, ksa: &str) -> String {
    format!("principal://{POOL}/subject/ns/{ns}/sa/{ksa}")
}

fn namespace_set(ns: &str) -> String {
    format!("principalSet://{POOL}/namespace/{ns}")
}

fn cluster_set(cluster: &str) -> String {
    format!(
        "principalSet://{POOL}/kubernetes.cluster/https://container.googleapis.com/v1/projects/direct-proj/locations/us-central1-a/clusters/{cluster}"
    )
}

const PROJECT_POLICY: &str = "/cloudresourcemanager/v1/projects/direct-proj:setIamPolicy";
const SIGNER: &str =
    "/iam/v1/projects/direct-proj/serviceAccounts/signer@direct-proj.iam.gserviceaccount.com";

async fn set_project_policy(t: &harness::TestEmu, bindings: Value) -> harness::Answer {
    t.call(
        Method::POST,
        PROJECT_POLICY,
        Some(json!({"policy": {"bindings": bindings}})),
    )
    .await
}

/// A TokenRequest for `ns/ksa` in `cluster` with the pool as audience.
async fn ksa_token(t: &harness::TestEmu, cluster: &str, ns: &str, ksa: &str) -> String {
    let c = t
        .call(
            Method::GET,
            &format!(
                "/container/v1/projects/direct-proj/locations/us-central1-a/clusters/{cluster}"
            ),
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
            "https://{}/api/v1/namespaces/{ns}/serviceaccounts/{ksa}/token",
            c.body["endpoint"].as_str().unwrap()
        ))
        .bearer_auth(&t.token)
        .json(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"audiences": ["direct-proj.svc.id.goog"], "expirationSeconds": 3600}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "TokenRequest");
    let body: Value = resp.json().await.unwrap();
    body["status"]["token"].as_str().unwrap().to_string()
}

/// The federated token of `ns/ksa` in `cluster` (what the GKE metadata server gets from STS).
async fn federated(t: &harness::TestEmu, cluster: &str, ns: &str, ksa: &str) -> String {
    let token = ksa_token(t, cluster, ns, ksa).await;
    let issuer = format!(
        "https://container.googleapis.com/v1/projects/direct-proj/locations/us-central1-a/clusters/{cluster}"
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
                &format!("identitynamespace:direct-proj.svc.id.goog:{issuer}"),
            ),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("scope", "https://www.googleapis.com/auth/cloud-platform"),
            ("subject_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// What `testIamPermissions` at `path` answers to `token`, sorted.
async fn held(t: &harness::TestEmu, token: &str, path: &str, asked: &[&str]) -> Vec<String> {
    let a = t
        .call_as(
            Some(token),
            Method::POST,
            path,
            Some(json!({"permissions": asked})),
        )
        .await;
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    let mut out: Vec<String> = a.body["permissions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

async fn start() -> (tempfile::TempDir, harness::TestEmu) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).unwrap();
    let t = harness::start(|c| c.seed = Some(seed.clone())).await;
    (dir, t)
}

#[tokio::test]
async fn principal_members_are_validated_as_iam_does() {
    let (_dir, t) = start().await;
    let bad = |member: String| json!([{"role": "roles/viewer", "members": [member]}]);
    // Malformed identifiers.
    for member in [
        format!("principal://{POOL}/subject/team-a/app"),
        format!("principal://{POOL}/subject/ns/team-a/sa/"),
        format!("principalSet://{POOL}/ns/team-a"),
        format!("principalSet://{POOL}/kubernetes.cluster/alpha"),
        "principal://iam.googleapis.com/projects/direct-proj/locations/global/workloadIdentityPools/direct-proj.svc.id.goog/subject/ns/a/sa/b".to_string(),
        "principal://example.com/subject/x".to_string(),
    ] {
        let a = set_project_policy(&t, bad(member.clone())).await;
        assert_eq!(a.status, 400, "{member}: {}", a.body);
        assert_eq!(a.body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(
            a.body["error"]["message"],
            format!("The member {member} is of an unknown type. Please set a valid type prefix for the member.")
        );
    }
    // A pool no cluster has created: the same answer for all three member forms.
    let other = "iam.googleapis.com/projects/171717171717/locations/global/workloadIdentityPools/other-proj.svc.id.goog";
    for member in [
        format!("principal://{other}/subject/ns/a/sa/b"),
        format!("principalSet://{other}/namespace/a"),
        "serviceAccount:other-proj.svc.id.goog[a/b]".to_string(),
    ] {
        let a = set_project_policy(&t, bad(member.clone())).await;
        assert_eq!(a.status, 400, "{member}");
        assert_eq!(
            a.body["error"]["message"],
            "Identity Pool does not exist (other-proj.svc.id.goog). Please check that you specified a valid resource name as returned in the `name` attribute in the configuration API.",
            "{member}"
        );
    }
    // The number of another project.
    let wrong = principal("team-a", "app").replace(NUMBER, "171717171717");
    let a = set_project_policy(&t, bad(wrong.clone())).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["error"]["message"],
        format!(
            "Invalid principal identifier ({wrong}): workload identity pool direct-proj.svc.id.goog does not belong to project number 171717171717."
        )
    );
    // On a service-account policy too.
    let a = t
        .call(
            Method::POST,
            &format!("{SIGNER}:setIamPolicy"),
            Some(json!({"policy": {"bindings": bad(wrong)}})),
        )
        .await;
    assert_eq!(a.status, 400);

    // Valid members are kept exactly as written.
    let members = [
        principal("team-a", "App"),
        principal("team-a", "app"),
        namespace_set("batch"),
        cluster_set("beta"),
        "principalSet://goog/public:all".to_string(),
    ];
    let a = set_project_policy(&t, json!([{"role": "roles/viewer", "members": members}])).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let got = t
        .call(
            Method::POST,
            "/cloudresourcemanager/v1/projects/direct-proj:getIamPolicy",
            Some(json!({})),
        )
        .await;
    let viewers: Vec<&str> = got.body["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["role"] == "roles/viewer")
        .unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for m in &members {
        assert!(viewers.contains(&m.as_str()), "{m} in {viewers:?}");
    }

    // Every place that shows the project number shows the same one.
    let v1 = t
        .call(
            Method::GET,
            "/cloudresourcemanager/v1/projects/direct-proj",
            None,
        )
        .await;
    assert_eq!(v1.body["projectNumber"], NUMBER);
    let v3 = t
        .call(
            Method::GET,
            "/cloudresourcemanager/v3/projects/direct-proj",
            None,
        )
        .await;
    assert_eq!(v3.body["name"], format!("projects/{NUMBER}"));
    let op = t
        .call(
            Method::POST,
            "/container/v1/projects/direct-proj/locations/us-central1-a/clusters/alpha:setResourceLabels",
            Some(json!({"resourceLabels": {"team": "a"}})),
        )
        .await;
    assert_eq!(op.status, 200, "{}", op.body);
    assert!(
        op.body["selfLink"].as_str().unwrap().contains(&format!(
            "/projects/{NUMBER}/zones/us-central1-a/operations/"
        )),
        "{}",
        op.body
    );
    let p = t.schema_problems();
    assert!(p.is_empty(), "{}", p.join("\n"));
    t.emu.shutdown().await;
}

#[tokio::test]
async fn federated_tokens_hold_what_direct_grants_give_them() {
    let (_dir, t) = start().await;
    let a = set_project_policy(
        &t,
        json!([
            {"role": "roles/owner", "members": [format!("user:{}", "nobody@example.com")]},
            {"role": "roles/cloudsql.client", "members": [principal("team-a", "app")]},
            {"role": "roles/storage.objectViewer", "members": [principal("team-a", "App")]},
            {"role": "roles/pubsub.subscriber", "members": [namespace_set("batch")]},
            {"role": "roles/logging.logWriter", "members": [cluster_set("beta")]},
        ]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = t
        .call(
            Method::POST,
            &format!("{SIGNER}:setIamPolicy"),
            Some(json!({"policy": {"bindings": [
                {"role": "roles/iam.serviceAccountTokenCreator", "members": [principal("team-a", "app")]}
            ]}})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);

    let asked = [
        "cloudsql.instances.connect",
        "logging.logEntries.create",
        "pubsub.subscriptions.consume",
        "storage.objects.get",
    ];
    let v1 = "/cloudresourcemanager/v1/projects/direct-proj:testIamPermissions";
    let v3 = "/cloudresourcemanager/v3/projects/direct-proj:testIamPermissions";
    let sa = format!("{SIGNER}:testIamPermissions");
    let sa_asked = [
        "iam.serviceAccounts.getAccessToken",
        "iam.serviceAccounts.signBlob",
    ];

    // The KSA principal itself (case-sensitive: `App` is someone else).
    let app = federated(&t, "alpha", "team-a", "app").await;
    assert_eq!(
        held(&t, &app, v1, &asked).await,
        ["cloudsql.instances.connect"]
    );
    assert_eq!(
        held(&t, &app, v3, &asked).await,
        ["cloudsql.instances.connect"]
    );
    assert_eq!(held(&t, &app, &sa, &sa_asked).await, sa_asked);
    // The namespace set, in every cluster of the pool; the cluster set, only in beta.
    let job_alpha = federated(&t, "alpha", "batch", "job").await;
    assert_eq!(
        held(&t, &job_alpha, v1, &asked).await,
        ["pubsub.subscriptions.consume"]
    );
    let job_beta = federated(&t, "beta", "batch", "job").await;
    assert_eq!(
        held(&t, &job_beta, v3, &asked).await,
        ["logging.logEntries.create", "pubsub.subscriptions.consume"]
    );
    let other = federated(&t, "beta", "team-a", "other").await;
    assert_eq!(
        held(&t, &other, v1, &asked).await,
        ["logging.logEntries.create"]
    );
    assert!(held(&t, &other, &sa, &sa_asked).await.is_empty());
    t.emu.shutdown().await;
}
