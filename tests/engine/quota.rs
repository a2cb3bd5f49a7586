//! `wi apply` under Google's rate quotas (the emulator's `--quota`): the
//! benchmark's fleet at a reduced size, 5 requests per second per Google API
//! and project, converges with no failed step; the calls refused with 429
//! RESOURCE_EXHAUSTED are paced and retried, not failed. (Throughput as a
//! share of the quota is the benchmark's, BENCHMARKS.md: no timings here.)

#[allow(dead_code)]
#[path = "../../benches/fleet/world.rs"]
mod world;

use crate::harness::world::TestWorld;
use world::{Fleet, Shape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_applied_under_a_rate_quota_converges_with_no_failed_step() {
    let fleet = Fleet::generate(Shape::for_mappings(40));
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, fleet.seed()).expect("seed");
    let w = TestWorld::start_with(seed.to_str().expect("utf-8 path"), |c| {
        c.quota = Some("*=5".into());
    })
    .await;
    let spec = w.write("spec.yaml", &fleet.spec());
    let spec = spec.to_str().expect("utf-8 path");
    let emu = w.emulator.as_ref().expect("emulator");

    let before = emu.stats();
    let apply = w
        .wi(&["apply", "-f", spec, "--auto-approve"])
        .await
        .expect(0);
    let after = emu.stats();
    assert!(
        after.throttled > before.throttled,
        "the quota refused nothing: the test no longer tests pacing"
    );
    assert!(!apply.stdout.contains("failed"), "{}", apply.stdout);
    assert!(!apply.stderr.contains("failed"), "{}", apply.stderr);
    w.wi(&["plan", "-f", spec, "--detailed-exitcode"])
        .await
        .expect(0);
    w.stop().await;
}
