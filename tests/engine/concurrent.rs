//! Two applies at once never double the work: both started together on a
//! spec that turns Workload Identity on for a cluster (workload pool) and its
//! node pool (GKE_METADATA), the emulator receives one cluster update and one
//! node-pool update; the apply that came second waits for the other's
//! operation, naming it, and says the change was already done by it.
//!
//! GKE operations take seconds here, so the two applies always overlap; the
//! outcome does not depend on which of them wins.

use std::time::Duration;

use serde_json::Value;

use crate::harness::TestWorld;

const SEED: &str = r#"
defaultProject: wi-two
projects:
  - id: wi-two
    clusters:
      - name: c1
        location: us-central1-a
        nodePools:
          - name: pool-a
            workloadMetadataMode: GCE_METADATA
"#;

const SPEC: &str = r#"version: 1
clusters:
  - name: c1
    project: wi-two
    location: us-central1-a
    workloadIdentity: true
"#;

/// Successful requests of the emulator's log with this method id.
fn served(log: &[Value], method: &str) -> usize {
    log.iter()
        .filter(|r| r["method"] == method && r["status"] == 200)
        .count()
}

#[tokio::test]
async fn two_applies_at_once_update_the_cluster_and_the_node_pool_once() {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start_with(seed.to_str().expect("utf-8 path"), |c| {
        c.operation_duration = Duration::from_secs(3);
    })
    .await;
    let spec = world.write("wi.yaml", SPEC);
    let spec = spec.to_str().expect("utf-8 path");

    let args = ["apply", "-f", spec, "--auto-approve"];
    let (a, b) = tokio::join!(world.wi(&args), world.wi(&args));
    let (a, b) = (a.expect(0), b.expect(0));

    let url = format!(
        "{}/emulator/requests",
        world.emulator.as_ref().expect("running").http_url()
    );
    let body: Value = reqwest::get(&url)
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON");
    let log = body["requests"].as_array().cloned().expect("requests");
    assert_eq!(
        (
            served(&log, "projects.locations.clusters.update"),
            served(&log, "projects.locations.clusters.nodePools.update"),
        ),
        (1, 1),
        "one cluster update and one node-pool update: {log:#?}"
    );

    // The node pool's change is planned by both (its operation starts only
    // after the cluster's): the apply that came second waited for the
    // other's operation, named it, and found the change done.
    let logs = format!("{}\n{}", a.stderr, b.stderr);
    let has = |parts: &[&str]| logs.lines().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        has(&[
            "node_pool c1/pool-a:",
            "waits for operation-",
            "UPGRADE_NODES"
        ]),
        "the wait for the other apply's node-pool operation is logged:\n{logs}"
    );
    assert!(
        has(&["node_pool c1/pool-a:", "already done by operation-"]),
        "the node pool was already done by the other apply's operation:\n{logs}"
    );
    // The cluster's change is planned by both only when the second plan read
    // the cluster before the first apply changed it; then it says the same.
    let planned_cluster = |s: &str| s.contains("cluster[\"wi-two/us-central1-a/c1\"]: Modifying");
    if planned_cluster(&a.stderr) && planned_cluster(&b.stderr) {
        assert!(
            has(&["cluster c1:", "already done by operation-"]),
            "the cluster was already done by the other apply's operation:\n{logs}"
        );
    }

    // And the world is in the state the spec asks for: nothing left to do.
    let plan = world.wi(&["plan", "-f", spec, "--detailed-exitcode"]).await;
    plan.expect(0);
    world.stop().await;
}
