//! Apply survives faults: 429/503 storms, IAM etag conflicts from a concurrent
//! writer, eventual consistency (a new account is invisible for a while, the
//! workload pool appears only after a cluster enables it) and latency. A
//! 200-mapping fleet converges in every seeded run, and every foreign member,
//! condition, annotation and label planted before the run is still there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wi::apply::{ApplyOptions, SilentProgress};
use wi::emulator::{Emulator, EmulatorConfig};
use wi::gcp::types::IamPolicy;
use wi::gcp::{ClientOptions, Endpoints, GcpClient, RetryPolicy};
use wi::live::Reader;
use wi::plan::PlanOptions;
use wi::spec::{Format, Model};

const PROJECT: &str = "wi-faults";
const GROUPS: usize = 10;
const KSAS_PER_GROUP: usize = 10;

fn runs() -> u64 {
    std::env::var("WI_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// 10 owned GSAs × 10 KSAs × 2 clusters = 200 mappings, plus one mapping to
/// an account `wi` does not own, on a KSA someone else created.
fn spec() -> String {
    let mut s = format!(
        "version: 1\ndefaults:\n  project: {PROJECT}\nclusters:\n  - name: c1\n    location: us-central1-a\n    groups: [fleet]\n  - name: c2\n    location: us-east1-b\n    groups: [fleet]\nserviceAccounts:\n"
    );
    for g in 0..GROUPS {
        s += &format!(
            "  - name: app-{g:02}\n    displayName: App {g}\n    roles: [roles/logging.logWriter]\n"
        );
    }
    s += "mappings:\n";
    for g in 0..GROUPS {
        let ksas: Vec<String> = (0..KSAS_PER_GROUP).map(|k| format!("k{k}")).collect();
        s += &format!(
            "  - serviceAccount: app-{g:02}\n    clusters: [fleet]\n    namespace: ns-{g:02}\n    ksas: [{}]\n",
            ksas.join(", ")
        );
    }
    s += &format!(
        "  - serviceAccount: shared-reader@{PROJECT}.iam.gserviceaccount.com\n    clusters: [c1]\n    namespace: legacy\n    ksa: reporter\n    manage: annotate\n"
    );
    s
}

/// The world before the run, with foreign state wi must never lose.
fn seed() -> String {
    format!(
        r#"projects:
  - id: {PROJECT}
    iamPolicy:
      - role: roles/viewer
        members: ["user:auditor@example.com"]
      - role: roles/storage.objectViewer
        members: ["group:data@example.com"]
        condition:
          title: weekdays
          expression: "request.time.getDayOfWeek() < 5"
    serviceAccounts:
      - accountId: shared-reader
        displayName: Shared reader (not wi's)
        iamPolicy:
          - role: roles/iam.serviceAccountTokenCreator
            members: ["user:alice@example.com"]
          - role: roles/iam.workloadIdentityUser
            members: ["user:bob@example.com"]
            condition:
              title: until-2031
              expression: "request.time < timestamp('2031-01-01T00:00:00Z')"
    clusters:
      - name: c1
        location: us-central1-a
        nodePools:
          - name: default-pool
        kubernetes:
          - {{apiVersion: v1, kind: Namespace, metadata: {{name: legacy, labels: {{owner: reporting}}}}}}
          - apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: reporter
              namespace: legacy
              labels: {{tier: batch}}
              annotations: {{team: reporting}}
      - name: c2
        location: us-east1-b
        nodePools:
          - name: default-pool
          - name: spot
"#
    )
}

/// Foreign items that must survive, checked after every run.
async fn lost_items(gcp: &GcpClient) -> Vec<String> {
    let mut lost = Vec::new();
    let project = gcp
        .get_project_iam_policy(PROJECT)
        .await
        .expect("project policy");
    if !has(&project, "roles/viewer", "user:auditor@example.com", false) {
        lost.push("project roles/viewer user:auditor".into());
    }
    if !has(
        &project,
        "roles/storage.objectViewer",
        "group:data@example.com",
        true,
    ) {
        lost.push("project conditional roles/storage.objectViewer group:data".into());
    }
    let shared = gcp
        .get_service_account_iam_policy(&format!("shared-reader@{PROJECT}.iam.gserviceaccount.com"))
        .await
        .expect("shared-reader policy");
    if !has(
        &shared,
        "roles/iam.serviceAccountTokenCreator",
        "user:alice@example.com",
        false,
    ) {
        lost.push("shared-reader tokenCreator alice".into());
    }
    if !has(
        &shared,
        "roles/iam.workloadIdentityUser",
        "user:bob@example.com",
        true,
    ) {
        lost.push("shared-reader conditional binding of bob".into());
    }
    lost
}

fn has(policy: &IamPolicy, role: &str, member: &str, conditional: bool) -> bool {
    policy.bindings.iter().any(|b| {
        b.role == role
            && b.condition.is_some() == conditional
            && b.members.iter().any(|m| m == member)
    })
}

/// The answer of a read made under the fault storm, asked again while it
/// fails with what a retry can heal (one in five requests fails: fifty
/// tries all failing is about 1e-35).
async fn answered<T, F, Fut>(mut read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, wi::kube::KubeError>>,
{
    let mut last = None;
    for _ in 0..50 {
        match read().await {
            Ok(v) => return v,
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => panic!("read: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("read failed 50 times: {last:?}")
}

async fn lost_kube_items(gcp: &GcpClient) -> Vec<String> {
    let key = wi::spec::ClusterKey {
        project: PROJECT.into(),
        location: "us-central1-a".into(),
        name: "c1".into(),
    };
    let cluster = gcp
        .get_cluster(&key)
        .await
        .expect("cluster")
        .expect("exists");
    let token = gcp.access_token().await.expect("token");
    let conn = wi::live::connect_cluster(&cluster, token, None)
        .await
        .expect("connect");
    // The emulator still injects faults: the product's read retries a few
    // times and then calls the cluster unknown, but this check must see the
    // truth, so it asks until it is answered.
    let accounts = answered(|| conn.list_service_accounts()).await;
    let namespaces = answered(|| conn.list_namespaces()).await;
    let mut lost = Vec::new();
    let reporter = accounts.iter().find(|sa| {
        sa.metadata.name.as_deref() == Some("reporter")
            && sa.metadata.namespace.as_deref() == Some("legacy")
    });
    match reporter {
        None => lost.push("KSA legacy/reporter".into()),
        Some(sa) => {
            let annotations = sa.metadata.annotations.clone().unwrap_or_default();
            let labels = sa.metadata.labels.clone().unwrap_or_default();
            if annotations.get("team").map(String::as_str) != Some("reporting") {
                lost.push("annotation team=reporting".into());
            }
            if labels.get("tier").map(String::as_str) != Some("batch") {
                lost.push("label tier=batch".into());
            }
            if labels.contains_key("app.kubernetes.io/managed-by") {
                lost.push("wi labelled a KSA it did not create".into());
            }
        }
    }
    let legacy = namespaces
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some("legacy"));
    if legacy
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get("owner"))
        .map(String::as_str)
        != Some("reporting")
    {
        lost.push("namespace legacy label owner=reporting".into());
    }
    lost
}

#[derive(Default)]
struct Totals {
    runs: u64,
    faults: u64,
    concurrent_writes: u64,
    retries: u64,
    applies: u64,
    lost: usize,
}

/// One seeded run: a fresh faulty emulator, plan/apply until the plan is empty.
async fn run_once(
    run: u64,
    model: &Model,
    seed_path: &std::path::Path,
    dir: &std::path::Path,
) -> Totals {
    let work = dir.join(format!("run-{run}"));
    std::fs::create_dir_all(&work).unwrap();
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(seed_path.to_path_buf()),
        work_dir: work,
        operation_duration: Duration::from_millis(60),
        visibility_delay: Duration::from_millis(150),
        latency: Some(Duration::from_millis(1)),
        // Every injected 429 carries `Retry-After: 1`, which holds the
        // client's whole partition for a second: a few of them prove it is
        // honoured, the 503s make the rest of the storm.
        faults: Some("*=429:0.03,*=503:0.17".into()),
        fault_seed: Some(run),
        concurrent_writer: Some(0.3),
        ..Default::default()
    })
    .await
    .expect("emulator");
    let env: BTreeMap<String, String> = emulator.env().into_iter().collect();
    let get = |k: &str| env.get(k).cloned();
    let tokens = wi::gcp::token_source_from_env(get).await.expect("tokens");
    let gcp = GcpClient::new(
        Endpoints::from_env_vars(get).expect("endpoints"),
        tokens,
        ClientOptions {
            retry: RetryPolicy::fast(),
            ..ClientOptions::from_env_vars(get)
        },
    )
    .expect("client");

    let mut totals = Totals::default();
    let mut converged = false;
    for attempt in 0..8 {
        let reader = Reader {
            gcp: &gcp,
            parallelism: 16,
            identity: None,
        };
        let live = match reader.read(model).await {
            Ok(live) => live,
            Err(e) => {
                eprintln!("run {run} attempt {attempt}: read failed ({e}); retrying");
                continue;
            }
        };
        let plan = wi::plan::compute(model, &live, &PlanOptions::default(), "faults".into())
            .expect("plan");
        if !plan.has_changes() {
            converged = true;
            break;
        }
        totals.applies += 1;
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let contexts = model
            .clusters
            .iter()
            .map(|c| (c.key.clone(), None))
            .collect();
        let options = ApplyOptions {
            step_deadline: Duration::from_secs(60),
            operation_deadline: Duration::from_secs(60),
            ..Default::default()
        };
        let result = wi::apply::apply(
            &plan,
            &live,
            contexts,
            gcp.clone(),
            options,
            Arc::new(SilentProgress),
            rx,
        )
        .await;
        if !result.succeeded() {
            let failed: Vec<String> = result
                .failed
                .iter()
                .map(|(a, e)| format!("{a}: {e}"))
                .collect();
            eprintln!(
                "run {run} attempt {attempt}: {} step(s) failed, re-running: {:?}",
                failed.len(),
                failed.iter().take(3).collect::<Vec<_>>()
            );
        }
    }
    assert!(
        converged,
        "run {run} did not converge in 8 plan/apply rounds"
    );
    let mut lost = lost_items(&gcp).await;
    lost.extend(lost_kube_items(&gcp).await);
    assert!(lost.is_empty(), "run {run} lost foreign state: {lost:?}");
    let stats = emulator.stats();
    totals.runs = 1;
    totals.faults = stats.faults_injected;
    totals.concurrent_writes = stats.concurrent_writes;
    totals.retries = gcp.stats().retries;
    totals.lost = lost.len();
    emulator.shutdown().await;
    totals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200_mapping_fleet_converges_under_faults_and_loses_nothing() {
    use futures::StreamExt;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let model: Model = wi::spec::load_str(&spec(), "faults.yaml", Format::Yaml).expect("spec");
    assert_eq!(model.mappings.len(), 201);
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.yaml");
    std::fs::write(&seed_path, seed()).unwrap();
    // Runs are independent worlds; most of a run is waiting, so run a few at
    // once. 12 seeds by default (each injects dozens of faults and policy
    // races); `WI_FAULT_RUNS=50` for a longer soak.
    let results: Vec<Totals> = futures::stream::iter(0..runs())
        .map(|run| run_once(run, &model, &seed_path, dir.path()))
        .buffer_unordered(6)
        .collect()
        .await;
    let mut totals = Totals::default();
    for t in results {
        totals.runs += t.runs;
        totals.faults += t.faults;
        totals.concurrent_writes += t.concurrent_writes;
        totals.retries += t.retries;
        totals.applies += t.applies;
        totals.lost += t.lost;
    }
    report!(
        "fault suite: runs={} faults_injected={} concurrent_policy_writes={} client_retries={} apply_rounds={} lost_items={}",
        totals.runs,
        totals.faults,
        totals.concurrent_writes,
        totals.retries,
        totals.applies,
        totals.lost
    );
    assert_eq!(totals.runs, runs());
    assert!(
        totals.faults > 0 && totals.concurrent_writes > 0,
        "faults were injected"
    );
}
