//! `--target` and `--exclude`: one cluster of two is planned and applied,
//! what it depends on comes along and the plan names it, an excluded
//! dependency and a pattern that matches nothing fail the plan.
//!
//! The real `wi` binary against the in-process emulator.

use serde_json::Value;

use crate::harness::{Output, TestWorld};

const SEED: &str = r#"
defaultProject: wi-tgt
projects:
  - id: wi-tgt
    enableServices: [iamcredentials.googleapis.com]
    clusters:
      - name: c1
        location: us-central1-a
        workloadPool: wi-tgt.svc.id.goog
        nodePools:
          - name: default-pool
      - name: c2
        location: us-central1-a
        workloadPool: wi-tgt.svc.id.goog
        nodePools:
          - name: default-pool
"#;

const SPEC: &str = r#"version: 1
clusters:
  - name: c1
    project: wi-tgt
    location: us-central1-a
    workloadIdentity: true
  - name: c2
    project: wi-tgt
    location: us-central1-a
    workloadIdentity: true
serviceAccounts:
  - name: api-app
    project: wi-tgt
  - name: web-app
    project: wi-tgt
mappings:
  - serviceAccount: api-app
    clusters: [c1]
    namespace: apps
    ksa: api
  - serviceAccount: web-app
    clusters: [c2]
    namespace: apps
    ksa: web
"#;

async fn world() -> (TestWorld, tempfile::TempDir, String) {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    let spec = world.write("wi.yaml", SPEC);
    let spec = spec.to_str().expect("utf-8 path").to_string();
    (world, seed_dir, spec)
}

fn json_plan(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).expect("JSON plan")
}

/// The addresses of a JSON plan's changes that do something.
fn actionable(plan: &Value) -> Vec<String> {
    plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .filter(|c| c["change"]["actions"][0] != "no-op")
        .map(|c| c["address"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The plan-level warnings of one code.
fn warnings(plan: &Value, code: &str) -> Vec<String> {
    plan["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["code"] == code)
        .map(|w| w["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_target_plans_one_cluster_and_pulls_in_what_it_depends_on() {
    let (world, _seed, spec) = world().await;
    let full = json_plan(&world.wi(&["plan", "-f", &spec, "--json"]).await.expect(0));
    let all = actionable(&full);
    assert!(
        all.iter().any(|a| a.contains("c2/apps/web")),
        "the full plan has c2's KSA: {all:?}"
    );

    let out = world
        .wi(&["plan", "-f", &spec, "--json", "--target", "c1"])
        .await
        .expect(0);
    let plan = json_plan(&out);
    let targeted = actionable(&plan);
    assert_eq!(
        targeted,
        vec![
            "google_service_account[\"wi-tgt/api-app\"]".to_string(),
            "service_account_iam_member[\"api-app@wi-tgt.iam.gserviceaccount.com/roles/iam.workloadIdentityUser/serviceAccount:wi-tgt.svc.id.goog[apps/api]\"]".to_string(),
            "kubernetes_namespace[\"wi-tgt/us-central1-a/c1/apps\"]".to_string(),
            "kubernetes_service_account[\"wi-tgt/us-central1-a/c1/apps/api\"]".to_string(),
        ],
        "c1's changes and the account and binding its KSA needs, nothing of c2"
    );
    let notes = warnings(&plan, "dependencies_included");
    assert_eq!(notes.len(), 1, "{plan:#}");
    assert!(
        notes[0].contains("google_service_account[\"wi-tgt/api-app\"]")
            && notes[0].contains("service_account_iam_member[\"api-app@"),
        "the note names what was pulled in: {notes:?}"
    );

    // The human plan says so too.
    let text = world
        .wi(&["plan", "-f", &spec, "--target", "c1"])
        .await
        .expect(0);
    assert_output_snapshot!("targeting_plan_c1", text);

    // Applying the target makes c1's changes only: a plan afterwards still
    // has c2's and nothing of c1's.
    world
        .wi(&["apply", "-f", &spec, "--auto-approve", "--target", "c1"])
        .await
        .expect(0);
    let rest = actionable(&json_plan(
        &world.wi(&["plan", "-f", &spec, "--json"]).await.expect(0),
    ));
    assert!(rest.iter().all(|a| !a.contains("api")), "{rest:?}");
    assert!(
        rest.iter().any(|a| a.contains("c2/apps/web")),
        "c2 was left alone: {rest:?}"
    );
    world.stop().await;
}

#[tokio::test]
async fn exclude_leaves_out_what_it_names_unless_a_change_needs_it() {
    let (world, _seed, spec) = world().await;
    // A whole cluster, by its full name and a glob.
    let plan = json_plan(
        &world
            .wi(&[
                "plan",
                "-f",
                &spec,
                "--json",
                "--exclude",
                "wi-tgt/us-central1-a/c2",
                "--exclude",
                "*web*",
            ])
            .await
            .expect(0),
    );
    let left = actionable(&plan);
    assert!(!left.is_empty());
    assert!(
        left.iter().all(|a| !a.contains("c2") && !a.contains("web")),
        "{left:?}"
    );
    assert!(warnings(&plan, "dependencies_included").is_empty());

    // Excluding the account a targeted KSA's binding needs is refused.
    let out = world
        .wi(&[
            "plan",
            "-f",
            &spec,
            "--target",
            "kubernetes_service_account[wi-tgt/us-central1-a/c1/apps/api]",
            "--exclude",
            "google_service_account[\"wi-tgt/api-app\"]",
        ])
        .await
        .expect(1);
    assert_output_snapshot!("targeting_excluded_dependency", out);
    world.stop().await;
}

#[tokio::test]
async fn a_pattern_that_matches_nothing_fails_the_plan() {
    let (world, _seed, spec) = world().await;
    let out = world
        .wi(&["plan", "-f", &spec, "--target", "c3"])
        .await
        .expect(1);
    assert_output_snapshot!("targeting_matches_nothing", out);
    let out = world
        .wi(&["apply", "-f", &spec, "--auto-approve", "--exclude", "nope*"])
        .await
        .expect(1);
    assert!(out.stderr.contains("--exclude nope*"), "{}", out.stderr);
    let out = world
        .wi(&["plan", "-f", &spec, "--target", ""])
        .await
        .expect(1);
    assert!(out.stderr.contains("needs a pattern"), "{}", out.stderr);
    world.stop().await;
}

/// A spec with both accounts, the KSA mapped to `account`.
fn move_spec(account: &str, ksa: &str) -> String {
    format!(
        "version: 1\nclusters:\n  - name: c1\n    project: wi-tgt\n    location: us-central1-a\n    workloadIdentity: true\nserviceAccounts:\n  - name: old-acct\n    project: wi-tgt\n  - name: new-acct\n    project: wi-tgt\nmappings:\n  - serviceAccount: {account}\n    clusters: [c1]\n    namespace: apps\n    ksa: {ksa}\n"
    )
}

/// The index of the first stderr line that contains every one of `parts`.
fn line_of(stderr: &str, parts: &[&str]) -> usize {
    stderr
        .lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no line with {parts:?} in:\n{stderr}"))
}

/// Starts a pod running as `apps/KSA` in c1.
async fn run_pod(world: &TestWorld, ksa: &str) {
    let pod = world.write(
        "pod.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {ksa}-7d9f\n  namespace: apps\nspec:\n  serviceAccountName: {ksa}\n  containers:\n    - name: c\n      image: nginx\n"
        ),
    );
    world
        .kubectl(
            &world.context("us-central1-a", "c1"),
            &["apply", "-f", pod.to_str().expect("utf-8 path")],
        )
        .await
        .expect(0);
}

/// A world where `file` maps `payments/api` to `old-acct`, applied, with a
/// pod running as that KSA.
async fn applied_with_a_running_pod(file: &str) -> (TestWorld, tempfile::TempDir, String) {
    let (world, seed, _) = world().await;
    let spec = world.write(file, &move_spec("old-acct", "api"));
    let spec = spec.to_str().expect("utf-8 path").to_string();
    world
        .wi(&["apply", "-f", &spec, "--auto-approve"])
        .await
        .expect(0);
    run_pod(&world, "api").await;
    (world, seed, spec)
}

#[tokio::test]
async fn moving_a_ksa_adds_the_new_binding_then_the_annotation_then_removes_the_old() {
    let (world, _seed, spec) = applied_with_a_running_pod("move.yaml").await;

    world.write("move.yaml", &move_spec("new-acct", "api"));
    let plan = json_plan(&world.wi(&["plan", "-f", &spec, "--json"]).await.expect(0));
    let changes = plan["resource_changes"].as_array().expect("changes");
    let old = changes
        .iter()
        .find(|c| {
            c["address"]
                .as_str()
                .unwrap_or_default()
                .starts_with("service_account_iam_member[\"old-acct@")
        })
        .expect("the old binding is removed");
    let deps: Vec<&str> = old["depends_on"]
        .as_array()
        .expect("the plan states the order")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        deps.iter()
            .any(|d| d.starts_with("service_account_iam_member[\"new-acct@"))
            && deps
                .iter()
                .any(|d| d.starts_with("kubernetes_service_account[")),
        "the old binding waits for the new binding and the annotation: {deps:?}"
    );
    let warned = warnings(&plan, "running_pods_lose_access");
    let on_changes: Vec<&Value> = changes
        .iter()
        .flat_map(|c| c["warnings"].as_array().into_iter().flatten())
        .filter(|w| w["code"] == "running_pods_lose_access")
        .collect();
    // A move keeps the pod's access: the annotation points elsewhere first.
    assert!(warned.is_empty() && on_changes.is_empty(), "{plan:#}");

    let out = world
        .wi(&["apply", "-f", &spec, "--auto-approve", "--parallelism", "4"])
        .await
        .expect(0);
    let new_done = line_of(&out.stderr, &["new-acct@", "complete"]);
    let ksa_start = line_of(&out.stderr, &["kubernetes_service_account", "apps/api"]);
    let ksa_done = line_of(
        &out.stderr,
        &["kubernetes_service_account", "apps/api", "complete"],
    );
    let old_start = line_of(&out.stderr, &["old-acct@"]);
    assert!(
        new_done < ksa_start && ksa_done < old_start,
        "new binding, then annotation, then old binding:\n{}",
        out.stderr
    );
    world.stop().await;
}

#[tokio::test]
async fn renaming_a_ksa_creates_the_new_one_first_and_warns_about_the_old_ones_pods() {
    let (world, _seed, spec) = applied_with_a_running_pod("rename.yaml").await;

    world.write("rename.yaml", &move_spec("old-acct", "api-v2"));
    let text = world.wi(&["plan", "-f", &spec]).await.expect(0);
    assert_output_snapshot!("targeting_rename_plan", text);
    let plan = json_plan(&world.wi(&["plan", "-f", &spec, "--json"]).await.expect(0));
    let all: Vec<String> = plan["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["warnings"].as_array().cloned().unwrap_or_default())
        .chain(plan["warnings"].as_array().cloned().unwrap_or_default())
        .filter(|w| w["code"] == "running_pods_lose_access")
        .map(|w| w["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        all.iter()
            .any(|m| m.contains("api-7d9f") && m.contains("apps/api ")),
        "the old KSA's running pod is named: {all:?}"
    );

    let out = world
        .wi(&["apply", "-f", &spec, "--auto-approve", "--parallelism", "4"])
        .await
        .expect(0);
    let ksa_done = line_of(&out.stderr, &["apps/api-v2", "complete"]);
    let old_release = line_of(&out.stderr, &["apps/api\"]", "Modifying"]);
    let old_binding = line_of(&out.stderr, &["[apps/api]", "Destroying"]);
    assert!(
        ksa_done < old_release && old_release < old_binding,
        "the new KSA and its binding, then the old KSA, then its binding:\n{}",
        out.stderr
    );
    world.stop().await;
}

/// [`SPEC`] with c1 in group `blue` and c2 in `green` and `extra`.
fn grouped_spec(extra: &str) -> String {
    SPEC.replacen(
        "    location: us-central1-a\n    workloadIdentity: true\n",
        "    location: us-central1-a\n    workloadIdentity: true\n    groups: [blue]\n",
        1,
    )
    .replacen(
        "  - name: c2\n    project: wi-tgt\n    location: us-central1-a\n    workloadIdentity: true\n",
        &format!(
            "  - name: c2\n    project: wi-tgt\n    location: us-central1-a\n    workloadIdentity: true\n    groups: [green, {extra}]\n"
        ),
        1,
    )
}

#[tokio::test]
async fn a_cluster_group_is_a_target_by_group_name_or_bare_name() {
    let (world, _seed, _) = world().await;
    let spec = world.write("groups.yaml", &grouped_spec("teal"));
    let spec = spec.to_str().expect("utf-8 path");
    let world = &world;
    let plan_of = |args: Vec<&'static str>| {
        let mut all = vec!["plan", "-f", spec, "--json"];
        all.extend(args);
        async move { actionable(&json_plan(&world.wi(&all).await.expect(0))) }
    };
    let by_cluster = plan_of(vec!["--target", "c1"]).await;
    assert!(by_cluster.iter().any(|a| a.contains("c1/apps/api")));
    assert_eq!(plan_of(vec!["--target", "group:blue"]).await, by_cluster);
    assert_eq!(plan_of(vec!["--target", "blue"]).await, by_cluster);
    assert_eq!(plan_of(vec!["--target", "group:bl*"]).await, by_cluster);
    // Excluding a group leaves out its clusters.
    assert_eq!(
        plan_of(vec!["--exclude", "group:green"]).await,
        plan_of(vec!["--exclude", "c2"]).await
    );
    assert_eq!(
        plan_of(vec!["--target", "group:teal"]).await,
        plan_of(vec!["--target", "c2"]).await,
        "a cluster in two groups is selected by either"
    );

    // A group that does not exist matches nothing.
    let out = world
        .wi(&["plan", "-f", spec, "--target", "group:red"])
        .await
        .expect(1);
    assert!(out.stderr.contains("--target group:red"), "{}", out.stderr);
    assert!(out.stderr.contains("group:NAME"), "{}", out.stderr);
}

#[tokio::test]
async fn a_bare_name_of_both_a_group_and_a_project_is_refused() {
    let (world, _seed, _) = world().await;
    let spec = world.write("groups.yaml", &grouped_spec("wi-tgt"));
    let spec = spec.to_str().expect("utf-8 path");
    let out = world
        .wi(&["plan", "-f", spec, "--target", "wi-tgt"])
        .await
        .expect(1);
    // miette wraps the message: compare without the line breaks.
    let said = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains(
            "--target wi-tgt: names both the cluster group wi-tgt and the project wi-tgt"
        ) && said.contains("write group:wi-tgt for the group's clusters"),
        "{}",
        out.stderr
    );
    // Spelled out, either is fine.
    world
        .wi(&["plan", "-f", spec, "--target", "group:wi-tgt"])
        .await
        .expect(0);
    world.stop().await;
}
