//! Service-account tokens as a user gets them with the installed kubectl:
//! `kubectl create token` (kubectl 1.33 sends the TokenRequest as protobuf),
//! the token exchanged at STS, the cluster's own API accepting its KSA
//! tokens as `system:serviceaccount:NS:NAME` (authorized like a new GKE
//! cluster's RBAC: discovery and self-reviews only), and pods on the host
//! network.

use base64::Engine;
use serde_json::Value;

use crate::harness::{self, Output, TestWorld};

const SEED: &str = r#"
defaultProject: tok-proj
projects:
  - id: tok-proj
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: payments-app
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:tok-proj.svc.id.goog[payments/api]"]
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: tok-proj.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: api, namespace: payments}}
"#;

const POOL: &str = "tok-proj.svc.id.goog";

async fn world() -> (TestWorld, tempfile::TempDir) {
    let seed_dir = tempfile::tempdir().expect("temp dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("write seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    (world, seed_dir)
}

fn context(world: &TestWorld) -> String {
    world.context("us-central1-a", "alpha")
}

/// The claims of a JWT (no verification: the emulator's STS verifies).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// kubectl with `token` as the bearer, through a kubeconfig of its own.
async fn kubectl_with_token(world: &TestWorld, token: &str, args: &[&str]) -> Output {
    let gcp = world.gcp().await;
    let key = wi::spec::ClusterKey {
        project: "tok-proj".into(),
        location: "us-central1-a".into(),
        name: "alpha".into(),
    };
    let cluster = gcp.get_cluster(&key).await.expect("get").expect("exists");
    let ca = cluster
        .master_auth
        .and_then(|m| m.cluster_ca_certificate)
        .expect("CA");
    let endpoint = cluster.endpoint.expect("endpoint");
    let server = if endpoint.starts_with("https://") {
        endpoint
    } else {
        format!("https://{endpoint}")
    };
    let kubeconfig = world.write(
        "ksa-kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    );
    let mut cmd = world.command("kubectl");
    cmd.env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(args);
    harness::command::run(&mut cmd)
        .await
        .expect("kubectl must be installed")
}

#[tokio::test]
async fn kubectl_create_token_is_exchanged_at_sts_for_the_workload_pool() {
    let (world, _seed) = world().await;
    let out = world
        .kubectl(
            &context(&world),
            &[
                "create",
                "token",
                "api",
                "-n",
                "payments",
                "--audience",
                POOL,
            ],
        )
        .await
        .expect(0);
    let token = out.stdout.trim().to_string();
    let c = claims(&token);
    assert_eq!(c["aud"], serde_json::json!([POOL]));
    assert_eq!(c["sub"], "system:serviceaccount:payments:api");
    assert_eq!(
        c["iss"],
        "https://container.googleapis.com/v1/projects/tok-proj/locations/us-central1-a/clusters/alpha"
    );
    // One hour unless asked otherwise, and --duration reaches the server.
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    let out = world
        .kubectl(
            &context(&world),
            &[
                "create",
                "token",
                "api",
                "-n",
                "payments",
                "--audience",
                POOL,
                "--duration",
                "2h",
            ],
        )
        .await
        .expect(0);
    let c = claims(out.stdout.trim());
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        7200
    );

    // The token is what the GKE metadata server exchanges: STS, then the GSA.
    let gcp = world.gcp().await;
    let audience = wi::gcp::sts::gke_sts_audience(POOL, "tok-proj", "us-central1-a", "alpha");
    let federated = gcp
        .exchange_token(&audience, &secrecy::SecretString::from(token.clone()))
        .await
        .expect("STS accepts the kubectl token");
    gcp.generate_access_token(&federated, "payments-app@tok-proj.iam.gserviceaccount.com")
        .await
        .expect("the bound KSA acts as the account");

    // A token for another audience is refused by STS with Google's OAuth error.
    let out = world
        .kubectl(
            &context(&world),
            &[
                "create",
                "token",
                "api",
                "-n",
                "payments",
                "--audience",
                "other",
            ],
        )
        .await
        .expect(0);
    let err = gcp
        .exchange_token(
            &audience,
            &secrecy::SecretString::from(out.stdout.trim().to_string()),
        )
        .await
        .expect_err("wrong audience");
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("invalid_grant"), "{err}");

    // A pod-bound token (protobuf boundObjectRef) for a pod that does not exist.
    let out = world
        .kubectl(
            &context(&world),
            &[
                "create",
                "token",
                "api",
                "-n",
                "payments",
                "--bound-object-kind",
                "Pod",
                "--bound-object-name",
                "nope",
            ],
        )
        .await
        .expect(1);
    assert!(
        out.stderr.contains("pods \"nope\" not found"),
        "{}",
        out.stderr
    );
    world.stop().await;
}

#[tokio::test]
async fn a_clusters_own_ksa_token_authenticates_to_its_api() {
    let (world, _seed) = world().await;
    // Default audience: the API server's own (the issuer).
    let token = world
        .kubectl(
            &context(&world),
            &["create", "token", "api", "-n", "payments"],
        )
        .await
        .expect(0)
        .stdout
        .trim()
        .to_string();
    let out = kubectl_with_token(
        &world,
        &token,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .await
    .expect(0);
    assert_eq!(out.stdout, "system:serviceaccount:payments:api");
    // No RBAC grants it anything else: a new cluster's KSA may not list pods.
    let out = kubectl_with_token(&world, &token, &["get", "pods", "-n", "payments"])
        .await
        .expect(1);
    assert!(
        out.stderr.contains("Forbidden")
            && out.stderr.contains("system:serviceaccount:payments:api"),
        "{}",
        out.stderr
    );
    let out = kubectl_with_token(
        &world,
        &token,
        &["auth", "can-i", "list", "pods", "-n", "payments"],
    )
    .await;
    assert_eq!(out.stdout.trim(), "no");

    // A token minted for the workload pool is for STS, not for this API.
    let pool_token = world
        .kubectl(
            &context(&world),
            &[
                "create",
                "token",
                "api",
                "-n",
                "payments",
                "--audience",
                POOL,
            ],
        )
        .await
        .expect(0)
        .stdout
        .trim()
        .to_string();
    let out = kubectl_with_token(&world, &pool_token, &["auth", "whoami"])
        .await
        .expect(1);
    assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);

    // Deleting the service account revokes its tokens.
    world
        .kubectl(
            &context(&world),
            &["delete", "serviceaccount", "api", "-n", "payments"],
        )
        .await
        .expect(0);
    let out = kubectl_with_token(&world, &token, &["auth", "whoami"])
        .await
        .expect(1);
    assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);
    world.stop().await;
}

#[tokio::test]
async fn host_network_pods_are_stored_and_selected() {
    let (world, _seed) = world().await;
    let pod = world.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent\n  namespace: payments\nspec:\n  hostNetwork: true\n  serviceAccountName: api\n  containers:\n    - name: c\n      image: busybox\n",
    );
    world
        .kubectl(
            &context(&world),
            &["apply", "-f", pod.to_str().expect("utf-8 path")],
        )
        .await
        .expect(0);
    let out = world
        .kubectl(
            &context(&world),
            &[
                "get",
                "pods",
                "-n",
                "payments",
                "--field-selector",
                "spec.hostNetwork=true",
                "-o",
                "jsonpath={.items[*].metadata.name}/{.items[*].spec.hostNetwork}",
            ],
        )
        .await
        .expect(0);
    assert_eq!(out.stdout, "agent/true");
    world.stop().await;
}
