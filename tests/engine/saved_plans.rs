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
            "allow_mass_removal": false
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
