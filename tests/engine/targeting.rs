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
