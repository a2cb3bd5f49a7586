//! End to end with the Kubernetes side on the real kube-apiserver: the real
//! `wi` binary plans and applies with the GCP side on the emulator, whose
//! cluster `endpoint` and CA point at a real kube-apiserver (built by
//! `.ci/build-kube-apiserver`). The Google access token `wi` sends is checked
//! by the real server through the emulator's TokenReview webhook, as GKE checks
//! it with Google; RBAC is real (the test binds the principal to cluster-admin).

use crate::harness::apiserver;

use std::time::{Duration, Instant};

use crate::harness::TestWorld;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::json;

const PROJECT: &str = "wi-real";
const LOCATION: &str = "us-central1-a";
const CLUSTER: &str = "real";
const ANNOTATION: &str = "iam.gke.io/gcp-service-account";

const SEED: &str = r#"
projects:
  - id: wi-real
    clusters:
      - name: real
        location: us-central1-a
        workloadPool: wi-real.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
"#;

const SPEC: &str = r#"version: 1
defaults:
  project: wi-real
clusters:
  - name: real
    location: us-central1-a
    workloadIdentity: true
    metadataServer: all
serviceAccounts:
  - name: app-runner
    displayName: App runner
mappings:
  - serviceAccount: app-runner
    clusters: [real]
    namespace: apps
    ksa: api
  - serviceAccount: app-runner
    clusters: [real]
    namespace: apps
    ksa: worker
"#;

/// The Kubernetes username the emulator's TokenReview webhook gives `token`.
async fn username_of(world: &TestWorld, token: &str) -> String {
    let emu = world.emulator.as_ref().expect("emulator");
    let review: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/authn/tokenreview", emu.http_url()))
        .json(
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                      "spec": {"token": token}}),
        )
        .send()
        .await
        .expect("TokenReview")
        .json()
        .await
        .expect("TokenReview JSON");
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    review["status"]["user"]["username"]
        .as_str()
        .expect("username")
        .to_string()
}

async fn ksa(client: &kube::Client, name: &str) -> ServiceAccount {
    kube::Api::<ServiceAccount>::namespaced(client.clone(), "apps")
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("KSA apps/{name} on the real server: {e}"))
}

fn annotation(sa: &ServiceAccount) -> Option<String> {
    sa.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION).cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_apply_converge_against_the_real_apiserver() {
    let begun = Instant::now();
    let seed_dir = tempfile::tempdir().expect("temp dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("write seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    let emu = world.emulator.as_ref().expect("emulator");

    let real = apiserver::start(apiserver::ApiServerOptions {
        token_webhook_url: Some(format!("{}/authn/tokenreview", emu.http_url())),
        ..Default::default()
    })
    .await
    .expect("real kube-apiserver starts (WI_KUBE_APISERVER_BIN / WI_ETCD_BIN or .ci/build-kube-apiserver)");
    assert!(
        emu.redirect_cluster_api(PROJECT, LOCATION, CLUSTER, &real.endpoint(), &real.ca_pem),
        "the seeded cluster exists"
    );

    // The principal `wi` authenticates as (gcloud's access-token file comes first).
    let token_file = world
        .env
        .iter()
        .find(|(k, _)| k == "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE")
        .map(|(_, v)| v.clone())
        .expect("token file exported");
    let token = std::fs::read_to_string(&token_file).expect("read token file");
    let user = username_of(&world, token.trim()).await;
    let admin = real.admin_client().await.expect("admin client");
    {
        use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
        let crb: ClusterRoleBinding = serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "wi-operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }))
        .expect("binding");
        kube::Api::<ClusterRoleBinding>::all(admin.clone())
            .create(&kube::api::PostParams::default(), &crb)
            .await
            .expect("create ClusterRoleBinding");
    }
    // Wait until RBAC sees the binding (usually at once).
    let as_wi = real.client_with_token(token.trim()).await.expect("client");
    let deadline = Instant::now() + Duration::from_secs(15);
    while kube::Api::<ServiceAccount>::all(as_wi.clone())
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{user} never authorized");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let spec = world.write("wi.yaml", SPEC);
    let spec = spec.to_str().expect("utf-8 path");
    let first = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(first.stdout.contains("will be created"), "{}", first.stdout);
    let apply = world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    assert!(
        apply.stdout.contains("Apply complete!"),
        "{}\n{}",
        apply.stdout,
        apply.stderr
    );
    let again = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // The KSAs live on the real server, annotated by `wi` through server-side apply.
    let gsa = format!("app-runner@{PROJECT}.iam.gserviceaccount.com");
    for name in ["api", "worker"] {
        let sa = ksa(&admin, name).await;
        assert_eq!(annotation(&sa).as_deref(), Some(gsa.as_str()), "{sa:?}");
        let managers: Vec<(String, String)> = sa
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.manager.clone().unwrap_or_default(),
                    m.operation.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            managers.contains(&("wi".to_string(), "Apply".to_string())),
            "{managers:?}"
        );
    }

    // A mapping removed from the spec: wi releases its annotation, the KSA stays.
    let without_worker = SPEC.replace(
        "  - serviceAccount: app-runner\n    clusters: [real]\n    namespace: apps\n    ksa: worker\n",
        "",
    );
    assert_ne!(without_worker, SPEC);
    let spec2 = world.write("wi-without-worker.yaml", &without_worker);
    let spec2 = spec2.to_str().expect("utf-8 path");
    let plan = world
        .wi(&["plan", "-f", spec2, "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(plan.stdout.contains("worker"), "{}", plan.stdout);
    world
        .wi(&["apply", "-f", spec2, "--auto-approve"])
        .await
        .expect(0);
    world
        .wi(&["plan", "-f", spec2, "--detailed-exitcode"])
        .await
        .expect(0);
    let worker = ksa(&admin, "worker").await;
    assert_eq!(annotation(&worker), None, "released: {worker:?}");
    let api = ksa(&admin, "api").await;
    assert_eq!(annotation(&api).as_deref(), Some(gsa.as_str()));

    eprintln!(
        "engine against the real kube-apiserver took {:?} (server start {:?})",
        begun.elapsed(),
        real.startup
    );
    drop(real);
    world.stop().await;
}
