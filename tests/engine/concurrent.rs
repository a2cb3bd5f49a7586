//! Two applies at once never double the work: both started together on a
//! spec that turns Workload Identity on for a cluster (workload pool) and its
//! node pool (GKE_METADATA), the emulator receives one cluster update and one
//! node-pool update; the apply that came second waits for the other's
//! operation, naming it, and says the change was already done by it.
//!
//! Someone deleting an account while an apply runs fails only that
//! account's project grant: the policy's other members are still written.
//!
//! GKE operations take a second or more here, so the two applies always overlap (and
//! the deletion always lands before the apply reaches the project policy);
//! the outcome does not depend on which apply wins.

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
        c.operation_duration = Duration::from_millis(1500);
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
    // other's operation and named it — in its node-pool step, or already in
    // its cluster step when that operation started while it waited there
    // (GKE runs one operation per cluster at a time) — and found the change
    // done instead of starting it again.
    let logs = format!("{}\n{}", a.stderr, b.stderr);
    let has = |parts: &[&str]| logs.lines().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        has(&["waits for operation-", "UPGRADE_NODES of node pool pool-a"]),
        "the wait for the other apply's node-pool operation is logged:\n{logs}"
    );
    assert!(
        has(&["node_pool c1/pool-a:", "already done"]),
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

const GONE_SEED: &str = r#"
defaultProject: wi-gone
projects:
  - id: wi-gone
    enableServices: [iamcredentials.googleapis.com]
    clusters:
      - name: c1
        location: us-central1-a
        nodePools:
          - name: pool-a
"#;

/// Two accounts; with `roles`, both get `roles/logging.logWriter` on the
/// project and the cluster gets Workload Identity.
fn gone_spec(roles: bool) -> String {
    let mut spec = String::from("version: 1\n");
    if roles {
        spec += "clusters:\n  - name: c1\n    project: wi-gone\n    location: us-central1-a\n    workloadIdentity: true\n";
    }
    spec += "serviceAccounts:\n";
    for id in ["a-acct", "b-acct"] {
        spec += &format!("  - name: {id}\n    project: wi-gone\n");
        if roles {
            spec += "    roles: [roles/logging.logWriter]\n";
        }
    }
    spec
}

/// The project policy's members of `role`, read over the emulator's HTTP API.
async fn members(world: &TestWorld, role: &str) -> Vec<String> {
    let emulator = world.emulator.as_ref().expect("running");
    let policy: Value = reqwest::Client::new()
        .post(format!(
            "{}/cloudresourcemanager/v1/projects/wi-gone:getIamPolicy",
            emulator.http_url()
        ))
        .bearer_auth(emulator.admin_token())
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON");
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role)
        .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn an_account_deleted_during_apply_fails_only_its_own_grant() {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, GONE_SEED).expect("seed");
    // The cluster's operations hold the apply (one step at a time) for
    // a second before it reaches the project policy: the account is deleted
    // inside that window (the deletion follows the cluster update's answer
    // by one 20 ms poll).
    let world = TestWorld::start_with(seed.to_str().expect("utf-8 path"), |c| {
        c.operation_duration = Duration::from_secs(1);
    })
    .await;
    let spec = world.write("wi.yaml", &gone_spec(false));
    let spec = spec.to_str().expect("utf-8 path");
    world
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    world.write("wi.yaml", &gone_spec(true));

    let emulator = world.emulator.as_ref().expect("running");
    let http = emulator.http_url();
    let b = "b-acct@wi-gone.iam.gserviceaccount.com";
    let delete_b_once_gke_runs = async {
        let client = reqwest::Client::new();
        for _ in 0..600 {
            let log: Value = client
                .get(format!("{http}/emulator/requests"))
                .send()
                .await
                .expect("the emulator answers")
                .json()
                .await
                .expect("JSON");
            let started = log["requests"].as_array().is_some_and(|l| {
                l.iter().any(|r| {
                    r["method"] == "projects.locations.clusters.update" && r["status"] == 200
                })
            });
            if started {
                let status = client
                    .delete(format!(
                        "{http}/iam/v1/projects/wi-gone/serviceAccounts/{b}"
                    ))
                    .bearer_auth(emulator.admin_token())
                    .send()
                    .await
                    .expect("the emulator answers")
                    .status();
                assert!(status.is_success(), "{status}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the apply never updated the cluster");
    };
    let args = ["apply", "-f", spec, "--auto-approve", "--parallelism", "1"];
    let (out, ()) = tokio::join!(world.wi(&args), delete_b_once_gke_runs);
    let out = out.expect(1);

    // a-acct's grant landed; b-acct's step alone failed, saying why.
    assert_eq!(
        members(&world, "roles/logging.logWriter").await,
        vec!["serviceAccount:a-acct@wi-gone.iam.gserviceaccount.com".to_string()]
    );
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("project_iam_member") && l.contains("failed"))
        .collect();
    assert!(
        failed.len() == 1 && failed[0].contains("b-acct@"),
        "only b-acct's grant failed:\n{}",
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!(
            "IAM refused serviceAccount:{b} on project wi-gone (the policy's other members were written)"
        )),
        "the summary says why:\n{}",
        out.stdout
    );
    world.stop().await;
}
