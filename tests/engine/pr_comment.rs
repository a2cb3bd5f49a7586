//! The pull-request comment of a 2,000-mapping fleet, planned by the real
//! `wi plan --format markdown` against the emulator seeded with that fleet
//! (a fifth of the mappings drifted): under GitHub's comment limit, with
//! its summary table and the note that says what was left out.

use crate::bench_calls::world::{Fleet, Shape};
use crate::harness::world::TestWorld;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2000_mapping_fleet_plans_a_comment_that_fits_with_a_note() {
    let shape = Shape::for_mappings(2_000);
    let fleet = Fleet::generate(shape);
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, fleet.seed()).expect("seed");
    let w = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    let spec = w.write("spec.yaml", &fleet.spec());
    let spec = spec.to_str().expect("utf-8 path");

    let out = w
        .wi(&[
            "plan",
            "-f",
            spec,
            "--format",
            "markdown",
            "--detailed-exitcode",
        ])
        .await
        .expect(2);
    let md = &out.stdout;
    assert!(md.len() <= 60_000, "{} bytes", md.len());
    assert!(
        md.starts_with("### wi plan: "),
        "{}",
        &md[..200.min(md.len())]
    );
    assert!(md.contains("| Project / cluster | Add | Change | Destroy |"));
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| project `") || l.starts_with("| cluster `"))
        .count();
    // A row per project and cluster with changes (the drifted ones).
    assert!(
        (1..=shape.projects + shape.clusters).contains(&rows),
        "summary rows: {rows}"
    );
    let note = md.trim_end().lines().last().expect("a last line");
    assert!(
        note.starts_with("> **Note:** output truncated to fit 60000 bytes: ")
            && note.contains("changes listed"),
        "{note}"
    );
    w.stop().await;
}
