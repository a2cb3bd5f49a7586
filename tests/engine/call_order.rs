//! The order of the calls an apply makes, as the emulator received them
//! (`GET /emulator/requests`): moving a KSA to another account adds the new
//! binding, then flips the annotation, then removes the old binding; renaming
//! a KSA creates the new one and its binding before the old ones go. Pods
//! running as a KSA that loses its access are named in the plan.
//!
//! The real `wi` binary against the in-process emulator.

use serde_json::Value;

use crate::harness::TestWorld;

const SEED: &str = r#"
defaultProject: wi-ord
projects:
  - id: wi-ord
    enableServices: [iamcredentials.googleapis.com]
    clusters:
      - name: c1
        location: us-central1-a
        workloadPool: wi-ord.svc.id.goog
        nodePools:
          - name: default-pool
"#;

/// A spec with both accounts, `apps/KSA` mapped to `account`.
fn spec(account: &str, ksa: &str) -> String {
    format!(
        "version: 1\nclusters:\n  - name: c1\n    project: wi-ord\n    location: us-central1-a\n    workloadIdentity: true\nserviceAccounts:\n  - name: old-acct\n    project: wi-ord\n  - name: new-acct\n    project: wi-ord\nmappings:\n  - serviceAccount: {account}\n    clusters: [c1]\n    namespace: apps\n    ksa: {ksa}\n"
    )
}

const CLUSTER: &str = "wi-ord/us-central1-a/c1";

fn member(ksa: &str) -> String {
    format!("roles/iam.workloadIdentityUser serviceAccount:wi-ord.svc.id.goog[apps/{ksa}]")
}

fn account(id: &str) -> String {
    format!("projects/wi-ord/serviceAccounts/{id}@wi-ord.iam.gserviceaccount.com")
}

/// The emulator's request log from `since`, and the `since` of the next read.
pub(crate) async fn requests(world: &TestWorld, since: u64) -> (Vec<Value>, u64) {
    let url = format!(
        "{}/emulator/requests?since={since}",
        world.emulator.as_ref().expect("running").http_url()
    );
    let body: Value = reqwest::get(&url)
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON");
    let list = body["requests"].as_array().cloned().expect("requests");
    (list, body["next"].as_u64().expect("next"))
}

/// The position of the one successful (2xx) request that matches, with the log in the message.
pub(crate) fn position(log: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    let found: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))
                && pred(r)
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(found.len(), 1, "one request {what} in {log:#?}");
    found[0]
}

fn adds(r: &Value, resource: &str, pair: &str) -> bool {
    r["method"] == "projects.serviceAccounts.setIamPolicy"
        && r["resource"] == resource
        && r["added"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m == pair))
}

fn removes(r: &Value, resource: &str, pair: &str) -> bool {
    r["method"] == "projects.serviceAccounts.setIamPolicy"
        && r["resource"] == resource
        && r["removed"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m == pair))
}

fn patches(r: &Value, object: &str) -> bool {
    r["api"] == "kubernetes"
        && r["method"] == "patch serviceaccounts"
        && r["resource"] == format!("{CLUSTER} {object}")
}

/// A world where `apps/api` is mapped to `old-acct`, applied, with a pod
/// running as that KSA; the spec's path.
async fn applied_with_a_running_pod() -> (TestWorld, tempfile::TempDir, String) {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    let path = world.write("wi.yaml", &spec("old-acct", "api"));
    let path = path.to_str().expect("utf-8 path").to_string();
    world
        .wi(&["apply", "-f", &path, "--auto-approve"])
        .await
        .expect(0);
    let pod = world.write(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api-7d9f\n  namespace: apps\nspec:\n  serviceAccountName: api\n  containers:\n    - name: c\n      image: nginx\n",
    );
    world
        .kubectl(
            &world.context("us-central1-a", "c1"),
            &["apply", "-f", pod.to_str().expect("utf-8 path")],
        )
        .await
        .expect(0);
    (world, seed_dir, path)
}

/// Every `running_pods_lose_access` message of a JSON plan, on the plan or a change.
fn pod_warnings(plan: &Value) -> Vec<String> {
    plan["resource_changes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["warnings"].as_array().cloned().unwrap_or_default())
        .chain(plan["warnings"].as_array().cloned().unwrap_or_default())
        .filter(|w| w["code"] == "running_pods_lose_access")
        .map(|w| w["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_move_binds_the_new_account_then_annotates_then_unbinds_the_old_one() {
    let (world, _seed, path) = applied_with_a_running_pod().await;
    world.write("wi.yaml", &spec("new-acct", "api"));
    let plan: Value = serde_json::from_str(
        &world
            .wi(&["plan", "-f", &path, "--json"])
            .await
            .expect(0)
            .stdout,
    )
    .expect("JSON plan");
    // The pod keeps its access throughout: the annotation moves only once
    // the new binding exists.
    assert!(pod_warnings(&plan).is_empty(), "{plan:#}");

    let (_, since) = requests(&world, 0).await;
    world
        .wi(&["apply", "-f", &path, "--auto-approve", "--parallelism", "8"])
        .await
        .expect(0);
    let (log, _) = requests(&world, since).await;
    let new_binding = position(&log, "adding the new binding", |r| {
        adds(r, &account("new-acct"), &member("api"))
    });
    let annotation = position(&log, "annotating apps/api", |r| patches(r, "apps/api"));
    let old_binding = position(&log, "removing the old binding", |r| {
        removes(r, &account("old-acct"), &member("api"))
    });
    assert!(
        new_binding < annotation && annotation < old_binding,
        "new binding, annotation, old binding: {log:#?}"
    );
    world.stop().await;
}

#[tokio::test]
async fn a_rename_creates_the_new_ksa_and_binding_before_the_old_ones_go() {
    let (world, _seed, path) = applied_with_a_running_pod().await;
    world.write("wi.yaml", &spec("old-acct", "api-v2"));
    let plan: Value = serde_json::from_str(
        &world
            .wi(&["plan", "-f", &path, "--json"])
            .await
            .expect(0)
            .stdout,
    )
    .expect("JSON plan");
    let warned = pod_warnings(&plan);
    assert!(
        warned
            .iter()
            .any(|m| m.contains("api-7d9f") && m.contains("apps/api ")),
        "the plan names the old KSA's running pod: {warned:?}"
    );

    let (_, since) = requests(&world, 0).await;
    world
        .wi(&["apply", "-f", &path, "--auto-approve", "--parallelism", "8"])
        .await
        .expect(0);
    let (log, _) = requests(&world, since).await;
    let new_binding = position(&log, "binding apps/api-v2", |r| {
        adds(r, &account("old-acct"), &member("api-v2"))
    });
    let new_ksa = position(&log, "applying apps/api-v2", |r| patches(r, "apps/api-v2"));
    let old_ksa = position(&log, "releasing apps/api", |r| patches(r, "apps/api"));
    let old_binding = position(&log, "unbinding apps/api", |r| {
        removes(r, &account("old-acct"), &member("api"))
    });
    assert!(
        new_binding.max(new_ksa) < old_ksa.min(old_binding) && old_ksa < old_binding,
        "the new KSA and its binding, then the old KSA, then its binding: {log:#?}"
    );
    world.stop().await;
}
