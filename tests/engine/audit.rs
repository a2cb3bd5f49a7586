//! `wi audit` on a seeded fleet, and what `wi plan` says about the same
//! world: a cluster the spec does not declare shares the workload pool (and
//! has a mapped namespace/KSA), a `default/default` mapping, a pod of a
//! mapped KSA on the host network, and an account disabled by hand. Each is
//! reported, nothing else is; `--fail-on` sets the exit code; a mapping that
//! accepts identity sameness turns the plan's warning into a note.

use crate::harness::TestWorld;

const SEED: &str = "\
projects:
  - id: wi-audit
    number: \"424242424242\"
    enableServices: [iamcredentials.googleapis.com]
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: wi-audit.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}
          - apiVersion: v1
            kind: Pod
            metadata: {name: agent, namespace: payments}
            spec:
              serviceAccountName: api
              hostNetwork: true
              containers: [{name: agent, image: busybox}]
      - name: dev
        location: us-central1-b
        workloadPool: wi-audit.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: api, namespace: payments}}
      - name: legacy
        location: us-central1-c
        nodePools:
          - name: default-pool
";

const SPEC: &str = "\
version: 1
defaults:
  project: wi-audit
clusters:
  - name: alpha
    location: us-central1-a
serviceAccounts:
  - name: payments-api
  - name: web-default
mappings:
  - serviceAccount: payments-api
    clusters: [alpha]
    namespace: payments
    ksa: api
  - serviceAccount: web-default
    clusters: [alpha]
    namespace: default
    ksa: default
";

async fn world() -> TestWorld {
    let seeds = tempfile::tempdir().expect("dir");
    let seed = seeds.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8")).await;
    world.write("wi.yaml", SPEC);
    world
}

#[tokio::test]
async fn audit_reports_the_seeded_risks_and_nothing_else() {
    let world = world().await;
    let spec = world.path("wi.yaml");
    let spec = spec.to_str().unwrap();

    // The plan names the undeclared cluster of the pool, once per identity.
    let plan = world.wi(&["plan", "-f", spec]).await.expect(0);
    assert!(
        plan.stdout
            .contains("wi-audit/us-central1-b/dev (not in the spec)"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("legacy"), "no pool, no sameness");
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);

    let audit = world.wi(&["audit", "-f", spec]).await.expect(0);
    assert_output_snapshot!("audit_seeded_fleet", audit);

    let json = world.wi(&["audit", "-f", spec, "--json"]).await.expect(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let mut codes: Vec<(String, String, String)> = value["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_owned(),
                f["code"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    codes.sort();
    let want: Vec<(String, String, String)> = [
        (
            "error",
            "host_network_pod",
            "wi-audit/us-central1-a/alpha payments/agent",
        ),
        (
            "error",
            "undeclared_cluster_has_ksa",
            "wi-audit/us-central1-b/dev default/default",
        ),
        (
            "error",
            "undeclared_cluster_has_ksa",
            "wi-audit/us-central1-b/dev payments/api",
        ),
        ("warning", "broad_mapping", "wi-audit default/default"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(codes, want);
    let clusters: Vec<(&str, bool)> = value["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cluster"].as_str().unwrap(),
                c["declared"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        clusters,
        [
            ("wi-audit/us-central1-a/alpha", true),
            ("wi-audit/us-central1-b/dev", false),
            ("wi-audit/us-central1-c/legacy", false),
        ]
    );

    // --fail-on: errors exist, so both levels fail; none is the default.
    let failed = world
        .wi(&["audit", "-f", spec, "--fail-on", "error"])
        .await
        .expect(1);
    assert!(
        failed.stderr.contains("3 findings at or above error"),
        "{}",
        failed.stderr
    );
    world
        .wi(&["audit", "-f", spec, "--fail-on", "warning"])
        .await
        .expect(1);
    world
        .wi(&["audit", "-f", spec, "--fail-on", "none"])
        .await
        .expect(0);

    // Fixed: the dev cluster's KSAs gone, the pod off the host network, the
    // default mapping replaced. Only the cluster's creatable pairs stay,
    // a warning: --fail-on error passes, --fail-on warning does not.
    let dev = world.context("us-central1-b", "dev");
    world
        .kubectl(&dev, &["delete", "serviceaccount", "api", "-n", "payments"])
        .await
        .expect(0);
    world
        .kubectl(&dev, &["delete", "namespace", "payments"])
        .await
        .expect(0);
    let alpha = world.context("us-central1-a", "alpha");
    world
        .kubectl(&alpha, &["delete", "pod", "agent", "-n", "payments"])
        .await
        .expect(0);
    let narrow = SPEC.replace(
        "  - serviceAccount: web-default\n    clusters: [alpha]\n    namespace: default\n    ksa: default\n",
        "",
    );
    world.write("wi.yaml", &narrow);
    world
        .wi(&["apply", "-f", spec, "--auto-approve", "--prune"])
        .await
        .expect(0);
    let fixed = world
        .wi(&["audit", "-f", spec, "--fail-on", "error"])
        .await
        .expect(0);
    assert_output_snapshot!("audit_fixed_fleet", fixed);
    world
        .wi(&["audit", "-f", spec, "--fail-on", "warning"])
        .await
        .expect(1);
    world.stop().await;
}

#[tokio::test]
async fn accepting_sameness_shows_the_acceptance_instead() {
    let world = world().await;
    let accepted = SPEC.replace(
        "    ksa: api\n",
        "    ksa: api\n    accept: [identity-sameness]\n",
    );
    let spec = world.write("wi.yaml", &accepted);
    let spec = spec.to_str().unwrap();
    let plan = world.wi(&["plan", "-f", spec]).await.expect(0);
    let stdout = &plan.stdout;
    // payments/api accepts: a note; default/default does not: the warning.
    assert!(stdout.contains("Accepted risk"), "{stdout}");
    assert!(
        stdout.contains("identity sameness accepted for payments/api"),
        "{stdout}"
    );
    assert!(
        stdout.contains("serviceAccount:wi-audit.svc.id.goog[default/default] is one identity"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("serviceAccount:wi-audit.svc.id.goog[payments/api] is one identity"),
        "{stdout}"
    );
    let md = world
        .wi(&["plan", "-f", spec, "--format", "markdown"])
        .await
        .expect(0);
    assert!(md.stdout.contains("**Accepted risk**"), "{}", md.stdout);
    let json = world.wi(&["plan", "-f", spec, "--json"]).await.expect(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let codes: Vec<&str> = value["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"accepted_risk"), "{codes:?}");
    assert!(codes.contains(&"identity_sameness"), "{codes:?}");
    world.stop().await;
}

#[tokio::test]
async fn a_disabled_owned_account_is_drift_and_apply_enables_it() {
    let world = world().await;
    let spec = world.path("wi.yaml");
    let spec = spec.to_str().unwrap();
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    let email = "payments-api@wi-audit.iam.gserviceaccount.com";
    world
        .gcloud(&["iam", "service-accounts", "disable", email])
        .await
        .expect(0);

    let audit = world.wi(&["audit", "-f", spec, "--json"]).await.expect(0);
    assert!(
        audit.stdout.contains("\"disabled_account\""),
        "{}",
        audit.stdout
    );

    let plan = world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("disabled_account_plan", plan);
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    let described = world
        .gcloud(&[
            "iam",
            "service-accounts",
            "describe",
            email,
            "--format",
            "value(disabled)",
        ])
        .await
        .expect(0);
    assert!(!described.stdout.contains("True"), "{}", described.stdout);
    world
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

const LINKS_SEED: &str = "\
projects:
  - id: wi-links
    number: \"515151515151\"
    enableServices: [iamcredentials.googleapis.com]
    iamPolicy:
      - role: roles/storage.objectViewer
        members: [\"principalSet://iam.googleapis.com/projects/515151515151/locations/global/workloadIdentityPools/wi-links.svc.id.goog/namespace/team\"]
    serviceAccounts:
      - accountId: app-runner
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members: [\"serviceAccount:wi-links.svc.id.goog[ghost/worker]\"]
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: wi-links.svc.id.goog
        nodePools:
          - name: default-pool
            workloadMetadataMode: GKE_METADATA
          - name: legacy-pool
            workloadMetadataMode: GCE_METADATA
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: jobs}}
          - apiVersion: v1
            kind: Pod
            metadata: {name: batch, namespace: jobs}
            spec:
              serviceAccountName: runner
              nodeSelector: {cloud.google.com/gke-nodepool: legacy-pool}
              containers: [{name: batch, image: busybox}]
          - {apiVersion: v1, kind: Namespace, metadata: {name: misc}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: stray
              namespace: misc
              annotations: {iam.gke.io/gcp-service-account: app-runner@wi-links.iam.gserviceaccount.com}
  - id: wi-other
    serviceAccounts:
      - accountId: shared-reader
        disabled: true
";

const LINKS_SPEC: &str = "\
version: 1
defaults:
  project: wi-links
clusters:
  - name: alpha
    location: us-central1-a
    metadataServer: [default-pool]
serviceAccounts:
  - name: app-runner
mappings:
  - serviceAccount: app-runner
    clusters: [alpha]
    namespace: jobs
    ksa: runner
  - serviceAccount: shared-reader@wi-other.iam.gserviceaccount.com
    clusters: [alpha]
    namespace: misc
    ksa: reader
";

#[tokio::test]
async fn audit_reports_broken_links_and_grants_the_spec_does_not_make() {
    let seeds = tempfile::tempdir().expect("dir");
    let seed = seeds.path().join("seed.yaml");
    std::fs::write(&seed, LINKS_SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8")).await;
    let spec = world.write("wi.yaml", LINKS_SPEC);
    let spec = spec.to_str().unwrap();

    // The plan warns about the disabled account wi does not own.
    let plan = world.wi(&["plan", "-f", spec, "--json"]).await.expect(0);
    let value: serde_json::Value = serde_json::from_str(&plan.stdout).expect("JSON");
    assert!(
        value["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "disabled_account"
                && w["message"]
                    .as_str()
                    .unwrap()
                    .contains("shared-reader@wi-other")),
        "{}",
        plan.stdout
    );
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);

    let audit = world.wi(&["audit", "-f", spec]).await.expect(0);
    assert_output_snapshot!("audit_broken_links", audit);
    let json = world.wi(&["audit", "-f", spec, "--json"]).await.expect(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let mut codes: Vec<String> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["code"].as_str().unwrap(),
                f["subject"].as_str().unwrap()
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "annotation_without_binding wi-links/us-central1-a/alpha misc/stray",
            "binding_without_ksa app-runner@wi-links.iam.gserviceaccount.com",
            "broad_principal_set project wi-links",
            "disabled_account shared-reader@wi-other.iam.gserviceaccount.com",
            "gce_metadata_pod wi-links/us-central1-a/alpha jobs/batch",
            "unmanaged_workload_identity_user app-runner@wi-links.iam.gserviceaccount.com",
        ]
    );
    world.stop().await;
}
