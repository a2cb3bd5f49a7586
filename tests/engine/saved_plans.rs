//! Saved plans mean what was reviewed: a plan records the choices it was
//! made with and the spec files it was made from, and `wi apply PLAN` runs
//! with exactly those (refusing contrary flags or another spec), printing
//! the changes before it makes them. Real binary, real emulator.

use crate::harness::command::run;
use crate::harness::{Output, TestWorld, wi_binary};

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";

fn quickstart() -> String {
    std::fs::read_to_string(SPEC).expect("read the quickstart")
}

/// The saved plan file as JSON.
fn document(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read plan")).expect("plan is JSON")
}

/// `wi` run in the world's own directory (no spec file to discover).
async fn wi_in_world_dir(world: &TestWorld, args: &[&str]) -> Output {
    run(world
        .command(wi_binary())
        .current_dir(world.path(""))
        .args(args))
    .await
    .expect("run wi")
}

#[tokio::test]
async fn a_saved_plan_records_its_choices_and_spec_files() {
    let world = TestWorld::start(SEED).await;
    let spec = world.write("wi.yaml", &quickstart());
    let plan = world.path("pr.plan");
    world
        .wi(&[
            "plan",
            "-f",
            spec.to_str().unwrap(),
            "--prune",
            "--out",
            plan.to_str().unwrap(),
        ])
        .await
        .expect(0);
    let doc = document(&plan);
    assert_eq!(
        doc["options"],
        serde_json::json!({
            "prune": true,
            "force_conflicts": false,
            "targets": [],
            "excludes": [],
            "allow_mass_removal": false,
            "max_removals_percent": 50
        })
    );
    let files = doc["spec_files"].as_array().expect("spec_files");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["name"], spec.to_str().unwrap());
    assert_eq!(files[0]["format"], "yaml");
    assert_eq!(files[0]["text"], quickstart().as_str());
    // `wi show` still reads it.
    world.wi(&["show", plan.to_str().unwrap()]).await.expect(0);
    world.stop().await;
}

#[tokio::test]
async fn flags_contrary_to_the_saved_plan_are_refused_before_anything_runs() {
    let world = TestWorld::start(SEED).await;
    let plan = world.path("pr.plan");
    let plan = plan.to_str().unwrap();
    world
        .wi(&["plan", "-f", SPEC, "--out", plan])
        .await
        .expect(0);
    let out = world.wi(&["apply", plan, "--prune"]).await.expect(1);
    assert_output_snapshot!("contrary_prune", out);
    let out = world
        .wi(&["apply", plan, "--force-conflicts", "--prune"])
        .await
        .expect(1);
    assert!(
        out.stderr
            .contains("made without --prune and --force-conflicts"),
        "{}",
        out.snapshot()
    );
    // Nothing was applied: the plan still has every change to make.
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(2);
    world.stop().await;
}

#[tokio::test]
async fn apply_plan_needs_no_spec_file_and_prints_what_it_changes() {
    let world = TestWorld::start(SEED).await;
    let spec = world.write("wi.yaml", &quickstart());
    let plan = world.path("pr.plan");
    world
        .wi(&[
            "plan",
            "-f",
            spec.to_str().unwrap(),
            "--out",
            plan.to_str().unwrap(),
        ])
        .await
        .expect(0);
    // The spec is gone: the plan carries it.
    std::fs::remove_file(&spec).unwrap();
    let out = wi_in_world_dir(&world, &["apply", "pr.plan"])
        .await
        .expect(0);
    assert_output_snapshot!("apply_plan_without_spec", out.unordered_progress());
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

#[tokio::test]
async fn apply_plan_with_another_spec_is_refused() {
    let world = TestWorld::start(SEED).await;
    let plan = world.path("pr.plan");
    let plan = plan.to_str().unwrap();
    world
        .wi(&["plan", "-f", SPEC, "--out", plan])
        .await
        .expect(0);
    let other = world.write(
        "other.yaml",
        &quickstart().replace("displayName: Payments API", "displayName: Payments"),
    );
    let out = world
        .wi(&["apply", "-f", other.to_str().unwrap(), plan])
        .await
        .expect(1);
    assert!(
        out.stderr
            .contains("made from a different version of the spec"),
        "{}",
        out.snapshot()
    );
    // The same spec with -f is accepted.
    world.wi(&["apply", "-f", SPEC, plan]).await.expect(0);
    world.stop().await;
}

/// The quickstart with one more role for payments-api: the plan adds one
/// project member.
fn with_log_writer() -> String {
    quickstart().replace(
        "      - roles/cloudsql.client    # granted on the project wi-demo",
        "      - roles/cloudsql.client    # granted on the project wi-demo\n      - roles/logging.logWriter",
    )
}

const PAYMENTS: &str = "payments-api@wi-demo.iam.gserviceaccount.com";

/// Applies the quickstart, then saves a plan of `spec` (written as the
/// world's `wi.yaml`) to `pr.plan`; returns both paths.
async fn applied_then_planned(world: &TestWorld, spec: &str) -> (String, String) {
    world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(0);
    let spec = world.write("wi.yaml", spec);
    let plan = world.path("pr.plan");
    let (spec, plan) = (
        spec.to_str().unwrap().to_string(),
        plan.to_str().unwrap().to_string(),
    );
    world
        .wi(&["plan", "-f", &spec, "--out", &plan])
        .await
        .expect(0);
    (spec, plan)
}

#[tokio::test]
async fn unrelated_edits_do_not_refuse_a_saved_plan() {
    let world = TestWorld::start(SEED).await;
    let (spec, plan) = applied_then_planned(&world, &with_log_writer()).await;
    // Another member on the project policy, a new unrelated account, and a
    // comment-only edit of the spec file.
    world
        .gcloud(&[
            "projects",
            "add-iam-policy-binding",
            &world.project,
            "--role=roles/viewer",
            "--member=user:bob@example.com",
            "--condition=None",
        ])
        .await
        .expect(0);
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "create",
            "unrelated",
            "--project",
            &world.project,
        ])
        .await
        .expect(0);
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str("# reviewed in PR 42\n");
    std::fs::write(&spec, text).unwrap();
    let out = world.wi(&["apply", &plan]).await.expect(0);
    assert!(
        out.stdout.contains("roles/logging.logWriter"),
        "{}",
        out.snapshot()
    );
    world
        .wi(&["plan", "-f", &spec, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

#[tokio::test]
async fn someone_else_adding_the_planned_member_refuses_the_plan_with_the_difference() {
    let world = TestWorld::start(SEED).await;
    let (_, plan) = applied_then_planned(&world, &with_log_writer()).await;
    world
        .gcloud(&[
            "projects",
            "add-iam-policy-binding",
            &world.project,
            "--role=roles/logging.logWriter",
            &format!("--member=serviceAccount:{PAYMENTS}"),
            "--condition=None",
        ])
        .await
        .expect(0);
    let out = world.wi(&["apply", &plan]).await.expect(1);
    assert_output_snapshot!("refused_member_already_added", out);
    world.stop().await;
}

#[tokio::test]
async fn the_bound_account_deleted_and_recreated_refuses_the_plan() {
    let world = TestWorld::start(SEED).await;
    // One more KSA acts as payments-api: the plan binds it on the account.
    let spec = quickstart().replace(
        "  # reports/reader only on beta.",
        "  - serviceAccount: payments-api\n    clusters: [beta]\n    namespace: payments\n    ksa: cron\n  # reports/reader only on beta.",
    );
    let (_, plan) = applied_then_planned(&world, &spec).await;
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "delete",
            PAYMENTS,
            "--project",
            &world.project,
        ])
        .await
        .expect(0);
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "create",
            "payments-api",
            "--project",
            &world.project,
            "--display-name=Payments API",
            "--description=Reads and writes the payments database [managed-by: wi]",
        ])
        .await
        .expect(0);
    let out = world.wi(&["apply", &plan]).await.expect(1);
    assert!(
        out.stderr
            .contains(&format!("service_account[\"{PAYMENTS}\"]"))
            && out.stderr.contains("deleted and recreated"),
        "{}",
        out.snapshot()
    );
    assert_output_snapshot!("refused_account_recreated", out);
    world.stop().await;
}

#[tokio::test]
async fn a_ksa_annotated_by_another_manager_refuses_the_plan() {
    let world = TestWorld::start(SEED).await;
    // payments/worker moves to reports-reader: the plan annotates the KSA.
    let spec = quickstart().replace(
        "  - serviceAccount: payments-api\n    clusters: [alpha]\n    namespace: payments\n    ksa: worker",
        "  - serviceAccount: reports-reader\n    clusters: [alpha]\n    namespace: payments\n    ksa: worker",
    );
    let (_, plan) = applied_then_planned(&world, &spec).await;
    let ctx = world.context("us-central1-a", "alpha");
    world
        .kubectl(
            &ctx,
            &[
                "annotate",
                "--overwrite",
                "serviceaccount",
                "worker",
                "-n",
                "payments",
                "iam.gke.io/gcp-service-account=batch@wi-demo.iam.gserviceaccount.com",
            ],
        )
        .await
        .expect(0);
    let out = world.wi(&["apply", &plan]).await.expect(1);
    assert_output_snapshot!("refused_ksa_annotated_elsewhere", out);
    // Nothing was applied: the other manager's annotation stays.
    let ksa = world
        .kubectl(
            &ctx,
            &[
                "get",
                "serviceaccount",
                "worker",
                "-n",
                "payments",
                "-o",
                "json",
            ],
        )
        .await
        .expect(0);
    assert!(ksa.stdout.contains("batch@wi-demo"), "{}", ksa.stdout);
    world.stop().await;
}

#[tokio::test]
async fn a_hand_edited_plan_with_its_checksum_recomputed_is_refused() {
    let world = TestWorld::start(SEED).await;
    let (_, plan) = applied_then_planned(&world, &with_log_writer()).await;
    let mut doc = document(std::path::Path::new(&plan));
    let changes = doc["resource_changes"].as_array_mut().unwrap();
    let mut grant = changes
        .iter()
        .find(|c| c["type"] == "project_iam_member" && c["change"]["actions"][0] == "create")
        .expect("the planned grant")
        .clone();
    let member = "user:mallory@example.com";
    let address = format!("project_iam_member[\"wi-demo/roles/owner/{member}\"]");
    grant["address"] = address.clone().into();
    grant["resource"]["role"] = "roles/owner".into();
    grant["resource"]["member"] = member.into();
    grant["change"]["after"]["role"] = "roles/owner".into();
    grant["change"]["after"]["member"] = member.into();
    changes.push(grant);
    let map = doc.as_object_mut().unwrap();
    map.shift_remove("checksum");
    let sum = wi::plan::file::checksum(&serde_json::Value::Object(map.clone()));
    map.insert("checksum".into(), sum.into());
    std::fs::write(&plan, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = world.wi(&["apply", &plan]).await.expect(1);
    assert_output_snapshot!("refused_hand_edited", out);
    // Nothing was applied: the outsider has no grant.
    let policy = world
        .gcloud(&[
            "projects",
            "get-iam-policy",
            &world.project,
            "--format=json",
        ])
        .await
        .expect(0);
    assert!(!policy.stdout.contains("mallory"), "{}", policy.stdout);
    world.stop().await;
}

/// The quickstart with every mapping gone (a bad merge).
fn emptied() -> String {
    let q = quickstart();
    let at = q.find("\nmappings:").expect("mappings");
    format!("{}\nmappings: []\n", &q[..at])
}

#[tokio::test]
async fn an_emptied_spec_is_not_applied_without_allow_mass_removal() {
    let world = TestWorld::start(SEED).await;
    let (spec, plan) = applied_then_planned(&world, &emptied()).await;
    let shown = world.wi(&["show", &plan]).await.expect(0);
    assert!(
        shown.stdout.contains("will be destroyed"),
        "{}",
        shown.snapshot()
    );
    // The plan says so at the top.
    let planned = world.wi(&["plan", "-f", &spec]).await.expect(0);
    assert!(
        planned
            .stdout
            .starts_with("Warning: this plan removes most of an owner's access:"),
        "{}",
        planned.snapshot()
    );
    let out = world.wi(&["apply", &plan]).await.expect(1);
    assert_output_snapshot!("refused_mass_removal", out);
    // Given only to apply, the flag contradicts the saved plan.
    world
        .wi(&["apply", &plan, "--allow-mass-removal"])
        .await
        .expect(1);
    // Nothing was removed: the quickstart is still in sync.
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    // Made with the flag, the plan runs.
    world
        .wi(&["plan", "-f", &spec, "--allow-mass-removal", "--out", &plan])
        .await
        .expect(0);
    world.wi(&["apply", &plan]).await.expect(0);
    world
        .wi(&["plan", "-f", &spec, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

#[tokio::test]
async fn a_saved_plan_records_its_targets_and_applies_only_them() {
    let world = TestWorld::start(SEED).await;
    let plan = world.path("alpha.plan");
    let plan = plan.to_str().unwrap();
    world
        .wi(&["plan", "-f", SPEC, "--target", "alpha", "--out", plan])
        .await
        .expect(0);
    let doc = document(std::path::Path::new(plan));
    assert_eq!(doc["options"]["targets"], serde_json::json!(["alpha"]));
    let addresses: Vec<String> = doc["resource_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|c| c["address"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        addresses.iter().any(|a| a.contains("/alpha")),
        "{addresses:?}"
    );
    assert!(
        // beta's cluster change may be pulled in (the workload pool the
        // bindings need); none of its node pools or Kubernetes objects is.
        !addresses.iter().any(|a| a.contains("/beta/")),
        "a change of beta in a plan targeted at alpha: {addresses:?}"
    );
    // Another target than the recorded one is refused before anything runs.
    let out = world
        .wi(&["apply", plan, "--target", "beta"])
        .await
        .expect(1);
    assert!(
        out.stderr.contains("wi::apply::contrary_flags"),
        "{}",
        out.snapshot()
    );
    // The plan applies as recorded: alpha converges, beta is still to do.
    world.wi(&["apply", plan]).await.expect(0);
    world
        .wi(&[
            "plan",
            "-f",
            SPEC,
            "--target",
            "alpha",
            "--detailed-exitcode",
        ])
        .await
        .expect(0);
    world
        .wi(&[
            "plan",
            "-f",
            SPEC,
            "--target",
            "beta",
            "--detailed-exitcode",
        ])
        .await
        .expect(2);
    world.stop().await;
}
