//! `wi verify` against the emulator: a converged world passes; each link of
//! the chain broken with gcloud or kubectl is named, with its fix, and exit
//! 1; fixed, verify passes again. `--pod` for a host-network pod and a pod
//! on a GCE_METADATA pool; and the escalation of identity sameness (two
//! clusters of one pool mapping the same KSA name to different accounts).

use crate::harness::{Output, TestWorld};

const SEED: &str = r#"
defaultProject: wi-vfy
projects:
  - id: wi-vfy
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: payments-app
        description: "[managed-by: wi]"
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:wi-vfy.svc.id.goog[payments/api]"]
      - accountId: reports-reader
        description: "[managed-by: wi]"
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:wi-vfy.svc.id.goog[reports/reader]"]
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: wi-vfy.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: api
              namespace: payments
              annotations: {iam.gke.io/gcp-service-account: payments-app@wi-vfy.iam.gserviceaccount.com}
          - apiVersion: v1
            kind: Pod
            metadata: {name: api-0, namespace: payments}
            spec:
              serviceAccountName: api
              nodeName: gke-alpha-default-pool-1a2b
              containers: [{name: app, image: app}]
          - apiVersion: v1
            kind: Pod
            metadata: {name: agent, namespace: payments}
            spec:
              hostNetwork: true
              serviceAccountName: api
              nodeName: gke-alpha-default-pool-1a2b
              containers: [{name: agent, image: agent}]
      - name: beta
        location: europe-west1-b
        workloadPool: wi-vfy.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
          - name: batch
            workloadMetadataMode: GCE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: reports}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: reader
              namespace: reports
              annotations: {iam.gke.io/gcp-service-account: reports-reader@wi-vfy.iam.gserviceaccount.com}
          - apiVersion: v1
            kind: Pod
            metadata: {name: nightly, namespace: reports}
            spec:
              serviceAccountName: reader
              nodeSelector: {cloud.google.com/gke-nodepool: batch}
              containers: [{name: job, image: job}]
"#;

const SPEC: &str = r#"version: 1
defaults:
  project: wi-vfy
clusters:
  - name: alpha
    location: us-central1-a
    workloadIdentity: true
  - name: beta
    location: europe-west1-b
    workloadIdentity: true
    metadataServer: [default-pool]
serviceAccounts:
  - name: payments-app
  - name: reports-reader
mappings:
  - serviceAccount: payments-app
    clusters: [alpha]
    namespace: payments
    ksa: api
  - serviceAccount: reports-reader
    clusters: [beta]
    namespace: reports
    ksa: reader
"#;

const APP: &str = "payments-app@wi-vfy.iam.gserviceaccount.com";
const ALPHA: &[&str] = &["--location", "us-central1-a"];

struct World {
    world: TestWorld,
    spec: String,
    _seed: tempfile::TempDir,
}

async fn world(seed: &str, spec: &str) -> World {
    let seed_dir = tempfile::tempdir().expect("temp dir");
    let path = seed_dir.path().join("seed.yaml");
    std::fs::write(&path, seed).expect("write seed");
    let world = TestWorld::start(path.to_str().expect("utf-8 path")).await;
    let spec = world.write("wi.yaml", spec);
    World {
        spec: spec.to_str().expect("utf-8 path").to_string(),
        world,
        _seed: seed_dir,
    }
}

impl World {
    async fn verify(&self, extra: &[&str]) -> Output {
        let mut args = vec!["verify", "-f", &self.spec];
        args.extend(extra);
        self.world.wi(&args).await
    }

    async fn gcloud(&self, args: &[&str]) {
        self.world.gcloud(args).await.expect(0);
    }

    async fn kubectl(&self, args: &[&str]) {
        self.world
            .kubectl(&self.world.context("us-central1-a", "alpha"), args)
            .await
            .expect(0);
    }

    /// Breaks a link, snapshots `wi verify` (exit 1), repairs it and checks
    /// verify passes again.
    async fn broken(&self, name: &str, repair: impl AsyncFnOnce(&World)) {
        let out = self.verify(&[]).await.expect(1);
        assert_output_snapshot!(name, out);
        repair(self).await;
        self.verify(&[]).await.expect(0);
    }
}

#[tokio::test]
async fn a_converged_world_verifies() {
    let w = world(SEED, SPEC).await;
    let out = w.verify(&[]).await.expect(0);
    assert_output_snapshot!("verify_ok", out);
    // --target selects mappings; a pattern that names none is an error.
    let out = w.verify(&["--target", "beta"]).await.expect(0);
    assert!(out.stdout.contains("1 mapping verified"), "{}", out.stdout);
    assert!(!out.stdout.contains("payments/api"), "{}", out.stdout);
    let out = w.verify(&["--target", "gamma"]).await.expect(1);
    assert_output_snapshot!("verify_target_names_nothing", out);
    w.world.stop().await;
}

#[tokio::test]
async fn each_broken_link_is_named_with_its_fix() {
    let w = world(SEED, SPEC).await;
    w.verify(&[]).await.expect(0);

    // A node pool the spec covers goes back to the node's metadata server.
    let np = |mode: &'static str| {
        [
            "container",
            "node-pools",
            "update",
            "default-pool",
            "--cluster",
            "alpha",
            "--location",
            "us-central1-a",
            "--workload-metadata",
            mode,
        ]
    };
    w.gcloud(&np("GCE_METADATA")).await;
    w.broken("verify_pool_on_gce_metadata", async |w| {
        w.gcloud(&np("GKE_METADATA")).await
    })
    .await;

    // The annotation removed, then naming another account.
    w.kubectl(&[
        "annotate",
        "sa",
        "api",
        "-n",
        "payments",
        "iam.gke.io/gcp-service-account-",
    ])
    .await;
    let annotate = |gsa: &str| format!("iam.gke.io/gcp-service-account={gsa}");
    let fix = annotate(APP);
    w.broken("verify_annotation_missing", async |w| {
        w.kubectl(&["annotate", "sa", "api", "-n", "payments", &fix])
            .await
    })
    .await;
    let other = annotate("reports-reader@wi-vfy.iam.gserviceaccount.com");
    w.kubectl(&[
        "annotate",
        "sa",
        "api",
        "-n",
        "payments",
        "--overwrite",
        &other,
    ])
    .await;
    w.broken("verify_annotation_other", async |w| {
        w.kubectl(&[
            "annotate",
            "sa",
            "api",
            "-n",
            "payments",
            "--overwrite",
            &fix,
        ])
        .await
    })
    .await;

    // The binding removed.
    let binding = |verb: &'static str| {
        [
            "iam",
            "service-accounts",
            verb,
            APP,
            "--role",
            "roles/iam.workloadIdentityUser",
            "--member",
            "serviceAccount:wi-vfy.svc.id.goog[payments/api]",
        ]
    };
    w.gcloud(&binding("remove-iam-policy-binding")).await;
    w.broken("verify_binding_missing", async |w| {
        w.gcloud(&binding("add-iam-policy-binding")).await
    })
    .await;

    // The IAM Credentials API off.
    let api = |verb: &'static str| {
        [
            "services",
            verb,
            "iamcredentials.googleapis.com",
            "--project",
            "wi-vfy",
        ]
    };
    w.gcloud(&api("disable")).await;
    w.broken("verify_api_disabled", async |w| {
        w.gcloud(&api("enable")).await
    })
    .await;

    // The account disabled.
    let account = |verb: &'static str| ["iam", "service-accounts", verb, APP];
    w.gcloud(&account("disable")).await;
    w.broken("verify_gsa_disabled", async |w| {
        w.gcloud(&account("enable")).await
    })
    .await;

    // The KSA deleted.
    w.kubectl(&["delete", "sa", "api", "-n", "payments"]).await;
    w.broken("verify_ksa_missing", async |w| {
        w.kubectl(&["create", "sa", "api", "-n", "payments"]).await;
        w.kubectl(&["annotate", "sa", "api", "-n", "payments", &fix])
            .await
    })
    .await;

    // Workload Identity off on the cluster.
    let mut off = vec![
        "container",
        "clusters",
        "update",
        "alpha",
        "--disable-workload-identity",
    ];
    off.extend(ALPHA);
    w.gcloud(&off).await;
    w.broken("verify_no_workload_pool", async |w| {
        let mut on = vec![
            "container",
            "clusters",
            "update",
            "alpha",
            "--workload-pool",
            "wi-vfy.svc.id.goog",
        ];
        on.extend(ALPHA);
        w.gcloud(&on).await
    })
    .await;
    w.world.stop().await;
}

#[tokio::test]
async fn pod_explains_which_identity_a_pod_gets() {
    let w = world(SEED, SPEC).await;
    let out = w
        .verify(&["--pod", "payments/agent", "--cluster", "alpha"])
        .await
        .expect(0);
    assert_output_snapshot!("verify_pod_host_network", out);
    let out = w
        .verify(&["--pod", "reports/nightly", "--cluster", "beta"])
        .await
        .expect(0);
    assert_output_snapshot!("verify_pod_gce_metadata_pool", out);
    let out = w
        .verify(&["--pod", "payments/api-0", "--cluster", "alpha"])
        .await
        .expect(0);
    assert_output_snapshot!("verify_pod_annotated", out);
    // Without the annotation: the federated principal.
    w.kubectl(&[
        "annotate",
        "sa",
        "api",
        "-n",
        "payments",
        "iam.gke.io/gcp-service-account-",
    ])
    .await;
    let out = w
        .verify(&["--pod", "payments/api-0", "--cluster", "alpha"])
        .await
        .expect(0);
    assert_output_snapshot!("verify_pod_federated", out);
    let out = w
        .verify(&["--pod", "payments/nope", "--cluster", "alpha"])
        .await
        .expect(1);
    assert_output_snapshot!("verify_pod_missing", out);
    w.world.stop().await;
}

/// The world of the escalation: alpha's payments/api maps to payments-app,
/// beta's (same project, same pool) to payments-admin, made by hand since
/// `wi validate` refuses such a spec. Both bindings name the same principal.
const ESCALATION_SEED: &str = r#"
defaultProject: wi-esc
projects:
  - id: wi-esc
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: payments-app
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:wi-esc.svc.id.goog[payments/api]"]
      - accountId: payments-admin
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: ["serviceAccount:wi-esc.svc.id.goog[payments/api]"]
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: wi-esc.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: api
              namespace: payments
              annotations: {iam.gke.io/gcp-service-account: payments-app@wi-esc.iam.gserviceaccount.com}
      - name: beta
        location: europe-west1-b
        workloadPool: wi-esc.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: api
              namespace: payments
              annotations: {iam.gke.io/gcp-service-account: payments-admin@wi-esc.iam.gserviceaccount.com}
"#;

/// The spec of alpha's team alone: it says payments/api acts as payments-app.
const ESCALATION_SPEC: &str = r#"version: 1
defaults:
  project: wi-esc
clusters:
  - name: alpha
    location: us-central1-a
    workloadIdentity: true
mappings:
  - serviceAccount: payments-app@wi-esc.iam.gserviceaccount.com
    clusters: [alpha]
    namespace: payments
    ksa: api
"#;

#[tokio::test]
async fn verify_reports_that_a_shared_principal_acts_as_another_clusters_account() {
    let w = world(ESCALATION_SEED, ESCALATION_SPEC).await;
    let out = w.verify(&[]).await.expect(1);
    assert_output_snapshot!("verify_escalation", out);
    // Removing beta's binding for the shared principal closes it.
    w.gcloud(&[
        "iam",
        "service-accounts",
        "remove-iam-policy-binding",
        "payments-admin@wi-esc.iam.gserviceaccount.com",
        "--role",
        "roles/iam.workloadIdentityUser",
        "--member",
        "serviceAccount:wi-esc.svc.id.goog[payments/api]",
    ])
    .await;
    w.verify(&[]).await.expect(0);
    w.world.stop().await;
}
