//! `wi apply` under Google's rate quotas (the emulator's `--quota`): the
//! benchmark's fleet at a reduced size, 3 requests per second per Google API
//! and project (a bucket of 3: each project's account policies are read 4
//! at once, so some are refused however slow the machine; a lower quota
//! only makes the test wait longer), converges with no failed step; the calls refused with 429
//! RESOURCE_EXHAUSTED are paced and retried, not failed. (Throughput as a
//! share of the quota is the benchmark's, BENCHMARKS.md: no timings here.)

#[allow(dead_code, clippy::duplicate_mod)]
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
        c.quota = Some("*=3".into());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_paces_a_project_after_its_first_429_and_every_call_succeeds() {
    let fleet = Fleet::generate(Shape::for_mappings(40));
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, fleet.seed()).expect("seed");
    let w = TestWorld::start_with(seed.to_str().expect("utf-8 path"), |c| {
        c.quota = Some("iam=2".into());
    })
    .await;
    let gcp = w.gcp().await;
    let project = fleet.projects[0].clone();
    let other = fleet.projects[1].clone();
    assert_eq!(gcp.paced_rate("iam", &project), None, "unpaced at first");
    let calls = (0..5).map(|_| gcp.list_service_accounts(&project));
    for r in futures::future::join_all(calls).await {
        r.expect("a refused call is retried, not failed");
    }
    assert!(
        gcp.stats().retries > 0,
        "the quota of 2/s refused some of 5"
    );
    let rate = gcp.paced_rate("iam", &project).expect("paced after a 429");
    assert!(rate > 0.0, "{rate}");
    assert_eq!(gcp.paced_rate("iam", &other), None, "another project");
    assert_eq!(gcp.paced_rate("container", &project), None, "another API");
    assert_eq!(gcp.paced_rate("bogus", &project), None);
    w.stop().await;
}
