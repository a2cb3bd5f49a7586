//! Sized for a fleet: reading live state for 1,000 mappings takes a handful of
//! list and get calls (one list of accounts per project, one getIamPolicy per
//! account, one cluster GET and three lists per cluster), never a call per mapping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wi::apply::{ApplyOptions, SilentProgress};
use wi::emulator::{Emulator, EmulatorConfig};
use wi::gcp::{ClientOptions, Endpoints, GcpClient, RetryPolicy};
use wi::live::Reader;
use wi::plan::PlanOptions;
use wi::spec::Format;

const ACCOUNTS: usize = 20;
const KSAS: usize = 25;

fn spec() -> String {
    let mut s = String::from(
        "version: 1\ndefaults:\n  project: wi-fleet\nclusters:\n  - name: east\n    location: us-east1-b\n    groups: [all]\n  - name: west\n    location: us-west1-a\n    groups: [all]\nserviceAccounts:\n",
    );
    for a in 0..ACCOUNTS {
        s += &format!("  - name: svc-{a:03}\n");
    }
    s += "mappings:\n";
    for a in 0..ACCOUNTS {
        let ksas: Vec<String> = (0..KSAS).map(|k| format!("k{k:02}")).collect();
        s += &format!(
            "  - serviceAccount: svc-{a:03}\n    clusters: [all]\n    namespace: team-{a:03}\n    ksas: [{}]\n",
            ksas.join(", ")
        );
    }
    s
}

const SEED: &str = "projects:\n  - id: wi-fleet\n    clusters:\n      - name: east\n        location: us-east1-b\n        workloadPool: wi-fleet.svc.id.goog\n        nodePools: [{name: default-pool}]\n      - name: west\n        location: us-west1-a\n        workloadPool: wi-fleet.svc.id.goog\n        nodePools: [{name: default-pool}]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reading_a_thousand_mappings_takes_a_handful_of_calls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let model = wi::spec::load_str(&spec(), "fleet.yaml", Format::Yaml).expect("spec");
    assert_eq!(model.mappings.len(), 1000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.yaml"), SEED).unwrap();
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(dir.path().join("seed.yaml")),
        work_dir: dir.path().join("emu"),
        operation_duration: Duration::from_millis(50),
        ..Default::default()
    })
    .await
    .expect("emulator");
    let env: BTreeMap<String, String> = emulator.env().into_iter().collect();
    let get = |k: &str| env.get(k).cloned();
    let gcp = GcpClient::new(
        Endpoints::from_env_vars(get).unwrap(),
        wi::gcp::token_source_from_env(get).await.unwrap(),
        ClientOptions {
            retry: RetryPolicy::fast(),
            ..ClientOptions::from_env_vars(get)
        },
    )
    .unwrap();
    let reader = Reader {
        gcp: &gcp,
        parallelism: 16,
        identity: None,
    };

    let live = reader.read(&model).await.expect("read");
    let plan = wi::plan::compute(&model, &live, &PlanOptions::default(), String::new()).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let contexts = model
        .clusters
        .iter()
        .map(|c| (c.key.clone(), None))
        .collect();
    let result = wi::apply::apply(
        &plan,
        &live,
        contexts,
        gcp.clone(),
        ApplyOptions::default(),
        Arc::new(SilentProgress),
        rx,
    )
    .await;
    assert!(result.succeeded(), "{:?}", result.failed.first());
    // One read-modify-write per policy, not one per member.
    let writes = emulator.stats().requests;

    let before = emulator.stats().requests;
    let live = reader.read(&model).await.expect("read");
    let calls = emulator.stats().requests - before;
    let plan = wi::plan::compute(&model, &live, &PlanOptions::default(), String::new()).unwrap();
    assert!(!plan.has_changes());
    // 1 list of accounts + 1 service + 20 account policies; per cluster 1 GET
    // + namespaces + service accounts (2 pages of 500) + pods.
    report!("fleet: mappings=1000 read_calls={calls} apply_requests={writes}");
    assert!(calls <= 40, "reading 1,000 mappings took {calls} calls");
    emulator.shutdown().await;
}
