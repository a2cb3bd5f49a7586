//! The fleet benchmark (`benches/fleet`, BENCHMARKS.md) at a reduced size, in
//! CI: the real `wi plan`, `wi apply` and `wi plan` again against the same
//! synthetic fleet, and the two reference patterns, asserting the exact calls
//! by method the emulator counted (no timings: those are the benchmark's).
//! A change in how many calls `wi` makes shows here as a snapshot diff.

#[allow(dead_code)]
#[path = "../../benches/fleet/world.rs"]
pub(crate) mod world;

#[allow(dead_code)]
#[path = "../../benches/fleet/patterns.rs"]
mod patterns;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::harness::world::TestWorld;
use world::{Fleet, Shape};

fn table(calls: &BTreeMap<String, u64>) -> String {
    let mut s = String::new();
    for (k, n) in calls {
        let _ = writeln!(s, "{n:>6}  {k}");
    }
    let _ = writeln!(s, "{:>6}  total", calls.values().sum::<u64>());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_fleet_is_read_and_converged_with_these_calls() {
    let shape = Shape::for_mappings(40);
    let fleet = Fleet::generate(shape);
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, fleet.seed()).expect("seed");
    let w = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    let spec = w.write("spec.yaml", &fleet.spec());
    let spec = spec.to_str().expect("utf-8 path");
    let emu = w.emulator.as_ref().expect("emulator");

    let mut report = format!(
        "fleet: {} mappings, {} projects, {} clusters, {} accounts, {} placements\n",
        shape.mappings,
        shape.projects,
        shape.clusters,
        shape.gsas,
        shape.placements()
    );
    let mut step = |name: &str, before: &wi::emulator::Stats| {
        let calls = emu.stats().calls_since(before);
        let _ = write!(report, "\n== {name}\n{}", table(&calls));
    };

    let before = emu.stats();
    // A fifth of the mappings are drifted: the plan has changes.
    let plan = w
        .wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(
        plan.stdout.contains(&format!(
            "Plan: {} to add, 0 to change, 0 to destroy.",
            fleet
                .mappings
                .iter()
                .filter(|m| m.ksa_missing || m.members_missing)
                .count()
                * shape.spread
        )),
        "{}",
        plan.stdout
    );
    step("wi plan", &before);

    let target = || patterns::Target {
        base: emu.base_url(),
        ca_pem: std::fs::read_to_string(emu.ca_file().expect("CA")).expect("CA"),
        token: emu.admin_token(),
    };
    let before = emu.stats();
    let t = patterns::terraform_refresh(&fleet, target(), 10).await;
    step("Terraform refresh pattern", &before);
    let before = emu.stats();
    let s = patterns::sequential_script(&fleet, target()).await;
    step("sequential script", &before);

    let before = emu.stats();
    w.wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    step("wi apply", &before);
    let before = emu.stats();
    w.wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    step("wi plan, converged", &before);

    // The patterns count their own calls: the emulator agrees.
    assert!(
        report.contains(&format!("{:>6}  total", t.calls)),
        "{report}"
    );
    assert!(
        report.contains(&format!("{:>6}  total", s.calls)),
        "{report}"
    );
    insta::assert_snapshot!(report);
    w.stop().await;
}
