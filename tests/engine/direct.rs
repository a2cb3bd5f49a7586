//! Direct mode (issue 12): roles granted to the KSA's own `principal://`
//! member, principal sets marked broad, and the moves between GSA mode and
//! direct mode in both directions, in the order the plan shows, as the
//! emulator received the calls (`GET /emulator/requests`).
//!
//! The real `wi` binary against the in-process emulator; one world per test.

use serde_json::Value;

use crate::call_order::{position, requests};
use crate::harness::TestWorld;

const SEED: &str = r#"
defaultProject: wi-dir
projects:
  - id: wi-dir
    number: "424242424242"
    enableServices: [iamcredentials.googleapis.com]
    clusters:
      - name: c1
        location: us-central1-a
        workloadPool: wi-dir.svc.id.goog
        nodePools:
          - name: default-pool
      - name: c2
        location: us-central1-a
        workloadPool: wi-dir.svc.id.goog
        nodePools:
          - name: default-pool
  - id: wi-data
    number: "737373737373"
"#;

const HEAD: &str = "version: 1\nclusters:\n  - name: c1\n    project: wi-dir\n    location: us-central1-a\nserviceAccounts:\n  - name: ledger-gsa\n    project: wi-dir\n";

/// `apps/ledger` in direct mode: a role on the pool's project and one on
/// another project.
fn direct_spec() -> String {
    format!(
        "{HEAD}mappings:\n  - clusters: [c1]\n    namespace: apps\n    ksa: ledger\n    roles:\n      - roles/cloudsql.client\n      - role: roles/storage.objectViewer\n        project: wi-data\n      - role: roles/iam.serviceAccountTokenCreator\n        serviceAccount: ledger-gsa\n"
    )
}

/// `apps/ledger` in GSA mode.
fn gsa_spec() -> String {
    format!(
        "{HEAD}mappings:\n  - serviceAccount: ledger-gsa\n    clusters: [c1]\n    namespace: apps\n    ksa: ledger\n"
    )
}

fn set_policy(r: &Value, method: &str, resource: &str, key: &str, needle: &str) -> bool {
    r["method"] == method
        && r["resource"] == resource
        && r[key].as_array().is_some_and(|a| {
            a.iter()
                .any(|m| m.as_str().is_some_and(|m| m.contains(needle)))
        })
}

fn patches_ledger(r: &Value) -> bool {
    r["api"] == "kubernetes"
        && r["method"] == "patch serviceaccounts"
        && r["resource"] == "wi-dir/us-central1-a/c1 apps/ledger"
}

const SA: &str = "projects/wi-dir/serviceAccounts/ledger-gsa@wi-dir.iam.gserviceaccount.com";
const PRINCIPAL: &str = "/subject/ns/apps/sa/ledger";

async fn world() -> (TestWorld, tempfile::TempDir, String) {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    let path = world.write("wi.yaml", &direct_spec());
    let path = path.to_str().expect("utf-8 path").to_string();
    (world, seed_dir, path)
}

#[tokio::test]
async fn direct_grants_then_gsa_mode_then_direct_mode_again_in_order() {
    let (world, _seed, path) = world().await;
    let plan = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("direct_plan", plan);

    // Members first, then the KSA that records them.
    let (_, since) = requests(&world, 0).await;
    world
        .wi(&["apply", "-f", &path, "--auto-approve"])
        .await
        .expect(0);
    let (log, since) = requests(&world, since).await;
    let granted = position(&log, "granting on wi-dir", |r| {
        set_policy(
            r,
            "projects.setIamPolicy",
            "projects/wi-dir",
            "added",
            PRINCIPAL,
        )
    });
    let ksa = position(&log, "recording on apps/ledger", patches_ledger);
    assert!(granted < ksa, "member, then record: {log:#?}");
    let again = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // Direct → GSA: binding, annotation, then the direct roles go.
    world.write("wi.yaml", &gsa_spec());
    let plan = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("direct_to_gsa_plan", plan);
    world
        .wi(&["apply", "-f", &path, "--auto-approve"])
        .await
        .expect(0);
    let (log, since) = requests(&world, since).await;
    let bound = position(&log, "binding the GSA", |r| {
        set_policy(
            r,
            "projects.serviceAccounts.setIamPolicy",
            SA,
            "added",
            "[apps/ledger]",
        )
    });
    let annotated = position(&log, "annotating apps/ledger", patches_ledger);
    let revoked = position(&log, "removing the direct role", |r| {
        set_policy(
            r,
            "projects.setIamPolicy",
            "projects/wi-dir",
            "removed",
            PRINCIPAL,
        )
    });
    assert!(
        bound < annotated && annotated < revoked,
        "binding, annotation, direct roles: {log:#?}"
    );
    let again = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // GSA → direct: direct roles, annotation removed, binding removed.
    world.write("wi.yaml", &direct_spec());
    let plan = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("gsa_to_direct_plan", plan);
    world
        .wi(&["apply", "-f", &path, "--auto-approve"])
        .await
        .expect(0);
    let (log, _) = requests(&world, since).await;
    let granted = position(&log, "granting on wi-dir", |r| {
        set_policy(
            r,
            "projects.setIamPolicy",
            "projects/wi-dir",
            "added",
            PRINCIPAL,
        )
    });
    let unannotated = position(&log, "unannotating apps/ledger", patches_ledger);
    let unbound = position(&log, "unbinding the GSA", |r| {
        set_policy(
            r,
            "projects.serviceAccounts.setIamPolicy",
            SA,
            "removed",
            "[apps/ledger]",
        )
    });
    assert!(
        granted < unannotated && unannotated < unbound,
        "direct roles, annotation, binding: {log:#?}"
    );
    let again = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(0);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // `wi verify` does what a pod does (TokenRequest, STS) and tests each
    // direct role's permissions with the KSA's federated token.
    let verified = world.wi(&["verify", "-f", &path]).await.expect(0);
    assert_output_snapshot!("direct_verify_ok", verified);
    // A role the spec grants but nobody applied is named, with its fix.
    world.write(
        "wi.yaml",
        &direct_spec().replace(
            "      - roles/cloudsql.client\n",
            "      - roles/cloudsql.client\n      - roles/pubsub.publisher\n",
        ),
    );
    let broken = world.wi(&["verify", "-f", &path]).await.expect(1);
    assert_output_snapshot!("direct_verify_role_missing", broken);

    // The mapping leaves the spec: its owned members go, then the record.
    world.write("wi.yaml", &format!("{HEAD}mappings: []\n"));
    let plan = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("direct_removed_plan", plan);
    world.stop().await;
}

#[tokio::test]
async fn principal_sets_are_marked_broad() {
    let (world, _seed, path) = world().await;
    world.write(
        "wi.yaml",
        "version: 1\nclusters:\n  - name: c1\n    project: wi-dir\n    location: us-central1-a\nmappings:\n  - principalSet: namespace\n    clusters: [c1]\n    namespace: batch\n    roles: [roles/pubsub.subscriber]\n  - principalSet: cluster\n    clusters: [c1]\n    roles: [roles/logging.logWriter]\n",
    );
    let plan = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("principal_sets_plan", plan);
    let markdown = world
        .wi(&["plan", "-f", &path, "--format", "markdown"])
        .await
        .expect(0);
    assert_output_snapshot!("principal_sets_plan_markdown", markdown);
    let json: Value = serde_json::from_str(
        &world
            .wi(&["plan", "-f", &path, "--json", "--detailed-exitcode"])
            .await
            .expect(2)
            .stdout,
    )
    .expect("JSON plan");
    let broad = json["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["warnings"].as_array().cloned().unwrap_or_default())
        .filter(|w| w["code"] == "broad_principal_set")
        .count();
    assert_eq!(broad, 2, "{json:#}");

    // Applied, the sets are recorded on the Namespace objects and the plan
    // is empty; once they leave the spec, their members go, then the records.
    world
        .wi(&["apply", "-f", &path, "--auto-approve"])
        .await
        .expect(0);
    world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(0);
    world.write(
        "wi.yaml",
        "version: 1
clusters:
  - name: c1
    project: wi-dir
    location: us-central1-a
",
    );
    let plan = world
        .wi(&["plan", "-f", &path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("principal_sets_removed_plan", plan);
    world.stop().await;
}
