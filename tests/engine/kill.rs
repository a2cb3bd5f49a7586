//! SIGKILL `wi apply` at random points, re-run, converge, lose nothing.
//! `wi` keeps no state of its own, so whatever a killed run left half done is
//! simply what the next plan sees.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::harness::TestWorld;

const SPEC: &str = "examples/quickstart.yaml";

fn runs() -> u64 {
    std::env::var("WI_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// The quickstart world plus foreign state that must survive.
const SEED: &str = r#"projects:
  - id: wi-demo
    iamPolicy:
      - role: roles/viewer
        members: ["user:auditor@example.com"]
    clusters:
      - name: alpha
        location: us-central1-a
        nodePools:
          - name: default-pool
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments, labels: {team: payments}}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: api
              namespace: payments
              labels: {tier: backend}
              annotations: {owner: payments-team}
      - name: beta
        location: europe-west1-b
        nodePools:
          - name: default-pool
          - name: batch
            workloadMetadataMode: GCE_METADATA
"#;

/// After how many of apply's progress lines (stderr) run `run` is killed:
/// 0 (right at the start) to 29 (late: the quickstart apply prints more than
/// 40). A count of events, not a time, so where the kill lands does not
/// depend on how loaded the machine is. A small deterministic generator (no
/// extra crate for one number a run).
fn kill_at_line(run: u64) -> usize {
    let x = run
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((x >> 33) % 30) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_applies_converge_on_the_next_run_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).unwrap();
    // Runs are independent worlds and mostly wait on `wi`: three at once.
    // Where each kill lands is a count of progress lines, so running them
    // side by side changes nothing they prove.
    let killed: Vec<bool> = futures::stream::iter(0..runs())
        .map(|run| kill_and_converge(run, &seed))
        .buffer_unordered(3)
        .collect()
        .await;
    let killed_mid_run = killed.iter().filter(|k| **k).count() as u64;
    report!(
        "kill suite: runs={} killed_mid_run={} lost_items=0",
        runs(),
        killed_mid_run
    );
    assert!(
        killed_mid_run * 2 >= runs(),
        "most kills landed while apply was running"
    );
}

/// One run: a fresh world, `wi apply` killed after [`kill_at_line`] lines,
/// then plan, apply and plan again, and nothing foreign lost. Whether the
/// kill landed while the apply was still running.
async fn kill_and_converge(run: u64, seed: &std::path::Path) -> bool {
    let mut killed_mid_run = false;
    {
        let world = TestWorld::start(seed.to_str().unwrap()).await;
        let mut child = world
            .command(env!("CARGO_BIN_EXE_wi"))
            .args(["apply", "-f", SPEC, "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start wi apply");
        let mut progress = BufReader::new(child.stderr.take().expect("stderr")).lines();
        for _ in 0..kill_at_line(run) {
            let line = tokio::time::timeout(Duration::from_secs(120), progress.next_line())
                .await
                .expect("apply makes progress")
                .expect("read stderr");
            if line.is_none() {
                break; // apply ended first
            }
        }
        if child.try_wait().expect("poll").is_none() {
            killed_mid_run = true;
        }
        child.kill().await.expect("SIGKILL"); // kill() is SIGKILL on Unix

        // The next plan shows what remains; the next apply converges.
        let plan = world.wi(&["plan", "-f", SPEC, "--detailed-exitcode"]).await;
        assert!(
            plan.code == 0 || plan.code == 2,
            "run {run}: plan after kill: {}",
            plan.stderr
        );
        world
            .wi(&["apply", "-f", SPEC, "--auto-approve", "--force-conflicts"])
            .await
            .expect(0);
        world
            .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
            .await
            .expect(0);

        // Nothing foreign lost.
        let gcp = world.gcp().await;
        let policy = gcp.get_project_iam_policy("wi-demo").await.expect("policy");
        assert!(
            policy.bindings.iter().any(|b| b.role == "roles/viewer"
                && b.members.iter().any(|m| m == "user:auditor@example.com")),
            "run {run}: {policy:?}"
        );
        let kube = world.kube("us-central1-a", "alpha").await;
        let ksa = kube
            .list_service_accounts()
            .await
            .expect("list")
            .into_iter()
            .find(|sa| {
                sa.metadata.namespace.as_deref() == Some("payments")
                    && sa.metadata.name.as_deref() == Some("api")
            })
            .expect("KSA payments/api");
        let annotations = ksa.metadata.annotations.unwrap_or_default();
        let labels = ksa.metadata.labels.unwrap_or_default();
        assert_eq!(
            annotations.get("owner").map(String::as_str),
            Some("payments-team"),
            "run {run}"
        );
        assert_eq!(
            labels.get("tier").map(String::as_str),
            Some("backend"),
            "run {run}"
        );
        let ns = kube
            .list_namespaces()
            .await
            .expect("namespaces")
            .into_iter()
            .find(|n| n.metadata.name.as_deref() == Some("payments"))
            .expect("namespace payments");
        assert_eq!(
            ns.metadata
                .labels
                .unwrap_or_default()
                .get("team")
                .map(String::as_str),
            Some("payments"),
            "run {run}"
        );
        world.stop().await;
    }
    killed_mid_run
}

/// Ctrl-C stops new steps, lets running ones finish, and says what was left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_stops_new_steps_and_reports_what_was_left() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).unwrap();
    // Cluster operations take 1 s: the interrupt, sent as soon as the first
    // one starts, lands while they run and before the node pools and
    // bindings that wait for them have started.
    let world = TestWorld::start_with(seed.to_str().unwrap(), |c| {
        c.operation_duration = Duration::from_secs(1);
    })
    .await;
    let mut child = world
        .command(env!("CARGO_BIN_EXE_wi"))
        .args(["apply", "-f", SPEC, "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wi apply");
    // Wait until the apply is under way (its first cluster step started), not
    // for a fixed time, then interrupt it like a terminal would.
    let mut progress = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stderr = String::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), progress.next_line())
            .await
            .expect("apply starts a step within a minute")
            .expect("read stderr")
            .unwrap_or_else(|| panic!("apply ended before any step started:\n{stderr}"));
        stderr.push_str(&line);
        stderr.push('\n');
        // `[n/N] cluster["...`: the counter comes first.
        if line.contains("] cluster[") && line.ends_with(": Modifying...") {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().expect("running").to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let mut stdout = String::new();
    let mut rest = String::new();
    let mut out = child.stdout.take().expect("stdout");
    let mut err = progress.into_inner();
    let (a, b) = tokio::join!(
        out.read_to_string(&mut stdout),
        err.read_to_string(&mut rest)
    );
    a.expect("read stdout");
    b.expect("read stderr");
    stderr.push_str(&rest);
    let out = child.wait().await.expect("wait");
    assert_eq!(out.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("Interrupt received"), "{stderr}");
    assert!(stdout.contains("Apply interrupted"), "{stdout}");
    assert!(
        stdout.contains("interrupted before it started"),
        "lists what was skipped:\n{stdout}"
    );
    // The next apply converges.
    world
        .wi(&["apply", "-f", SPEC, "--auto-approve", "--force-conflicts"])
        .await
        .expect(0);
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}
