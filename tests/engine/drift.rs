//! `wi drift`: the real binary against the emulator. Exit codes (0 none, 2
//! drift, 1 a cluster not read), the report in every format with who made
//! the change (kubectl's field manager, a policy's etag), GitHub
//! annotations at the spec line of each drifted mapping, and shard reports
//! of a generated fleet merged into exactly the unsharded report.

// The benchmark fleet, as `bench_calls` includes it (its own copy here).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../benches/fleet/world.rs"]
mod world;

use std::time::Duration;

use serde_json::Value;

use crate::harness::TestWorld;

/// The harness filters, and the versions a run's order of writes decides
/// (a KSA's resourceVersion, a policy's etag).
macro_rules! assert_drift_snapshot {
    ($name:expr, $text:expr) => {{
        let mut filters = crate::harness::command::filters();
        filters.push((r"at version \S+", "at version [VERSION]"));
        filters.push((r#""version": "[^"]*""#, r#""version": "[VERSION]""#));
        insta::with_settings!({filters => filters}, {
            insta::assert_snapshot!($name, $text);
        })
    }};
}

/// One cluster, one account, two KSAs acting as it.
const SPEC: &str = r#"version: 1
clusters:
  - name: alpha
    project: wi-drift
    location: us-central1-a
    workloadIdentity: true
serviceAccounts:
  - name: api-app
    project: wi-drift
mappings:
  - serviceAccount: api-app
    clusters: [alpha]
    namespace: payments
    ksa: api
  - serviceAccount: api-app
    clusters: [alpha]
    namespace: payments
    ksa: worker
"#;

/// The world of [`SPEC`] as `wi apply` leaves it (no apply in the test).
const SEED: &str = r#"defaultProject: wi-drift
projects:
  - id: wi-drift
    enableServices: [iamcredentials.googleapis.com]
    serviceAccounts:
      - accountId: api-app
        description: "[managed-by: wi]"
        iamPolicy:
          - role: roles/iam.workloadIdentityUser
            members:
              - "serviceAccount:wi-drift.svc.id.goog[payments/api]"
              - "serviceAccount:wi-drift.svc.id.goog[payments/worker]"
    clusters:
      - name: alpha
        location: us-central1-a
        workloadPool: wi-drift.svc.id.goog
        nodePools: [{name: default-pool, workloadMetadataMode: GKE_METADATA}]
        kubernetesFieldManager: wi
        kubernetes:
          - {apiVersion: v1, kind: Namespace, metadata: {name: payments, labels: {app.kubernetes.io/managed-by: wi}}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: api, namespace: payments, labels: {app.kubernetes.io/managed-by: wi}, annotations: {iam.gke.io/gcp-service-account: api-app@wi-drift.iam.gserviceaccount.com}}}
          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: worker, namespace: payments, labels: {app.kubernetes.io/managed-by: wi}, annotations: {iam.gke.io/gcp-service-account: api-app@wi-drift.iam.gserviceaccount.com}}}
"#;

fn schema() -> jsonschema::Validator {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/drift-report.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

fn report(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("a JSON report");
    let errors: Vec<String> = schema()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "the report breaks its schema: {errors:?}"
    );
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_exits_0_2_1_and_says_who_in_every_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let w = TestWorld::start(seed.to_str().expect("utf-8")).await;
    let spec_path = w.write("wi.yaml", SPEC);
    let spec = spec_path.to_str().expect("utf-8");
    let none = w.wi(&["drift", "-f", spec]).await.expect(0);
    assert_drift_snapshot!("drift_none", none.snapshot());

    // Someone points a KSA at another account with kubectl, and someone
    // removes a binding (as `gcloud remove-iam-policy-binding` does).
    let alpha = w.context("us-central1-a", "alpha");
    w.kubectl(
        &alpha,
        &[
            "annotate",
            "--overwrite",
            "serviceaccount",
            "worker",
            "-n",
            "payments",
            "iam.gke.io/gcp-service-account=intruder@wi-drift.iam.gserviceaccount.com",
        ],
    )
    .await
    .expect(0);
    let gcp = w.gcp().await;
    let email = format!("api-app@{}.iam.gserviceaccount.com", w.project);
    let member = format!("serviceAccount:{}.svc.id.goog[payments/api]", w.project);
    let mut policy = gcp
        .get_service_account_iam_policy(&email)
        .await
        .expect("policy");
    for b in &mut policy.bindings {
        b.members.retain(|m| m != &member);
    }
    policy.bindings.retain(|b| !b.members.is_empty());
    gcp.set_service_account_iam_policy(&email, &policy)
        .await
        .expect("set policy");

    let text = w.wi(&["drift", "-f", spec]).await.expect(2);
    assert_drift_snapshot!("drift_text", text.snapshot());
    assert!(
        text.stdout.contains("field managers kubectl-annotate"),
        "{}",
        text.stdout
    );
    let json = w
        .wi(&["drift", "-f", spec, "--format", "json"])
        .await
        .expect(2);
    let value = report(&json.stdout);
    assert_eq!(value["formatVersion"], wi::drift::FORMAT_VERSION);
    assert_eq!(value["summary"]["drifted"], 2);
    assert_drift_snapshot!("drift_json", json.stdout.clone());
    let md = w
        .wi(&["drift", "-f", spec, "--format", "markdown"])
        .await
        .expect(2);
    assert_drift_snapshot!("drift_markdown", md.snapshot());
    let gh = w
        .wi(&["drift", "-f", spec, "--format", "github"])
        .await
        .expect(2);
    assert_drift_snapshot!("drift_github", gh.snapshot());

    // Each annotation points at the mapping that declares the KSA or binding.
    let lines: Vec<&str> = SPEC.lines().collect();
    let errors: Vec<&str> = gh
        .stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(errors.len(), 2, "{}", gh.stdout);
    for e in errors {
        let props = e["::error ".len()..]
            .split("::")
            .next()
            .expect("properties");
        assert!(props.starts_with(&format!("file={spec},line=")), "{e}");
        let line: usize = props
            .split(',')
            .find_map(|p| p.strip_prefix("line="))
            .and_then(|l| l.parse().ok())
            .expect("a line");
        assert!(
            lines[line - 1].contains("serviceAccount: api-app"),
            "line {line} is `{}`, not the mapping: {e}",
            lines[line - 1]
        );
    }

    // `-o FILE` writes the report there and nothing on stdout.
    let out = w.path("drift.json");
    let to_file = w
        .wi(&[
            "drift",
            "-f",
            spec,
            "--format",
            "json",
            "-o",
            out.to_str().expect("utf-8"),
        ])
        .await
        .expect(2);
    assert_eq!(to_file.stdout, "");
    assert_eq!(
        report(&std::fs::read_to_string(&out).expect("report"))["items"],
        value["items"]
    );

    // A cluster that cannot be read: exit 1, the report lists it.
    let broken = SPEC.replace(
        "    workloadIdentity: true\n",
        "    workloadIdentity: true\n    kubeContext: broken\n",
    );
    let broken = w.write("broken.yaml", &broken);
    let partial = w
        .wi(&[
            "drift",
            "-f",
            broken.to_str().expect("utf-8"),
            "--format",
            "json",
        ])
        .await
        .expect(1);
    let value = report(&partial.stdout);
    assert_eq!(value["summary"]["exitCode"], 1);
    assert_eq!(value["unknowns"][0]["name"], "wi-drift/us-central1-a/alpha");
    assert!(
        partial.stderr.contains("the drift report is partial"),
        "{}",
        partial.stderr
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_reports_merge_into_the_unsharded_report() {
    let fleet = world::Fleet::generate(world::Shape::for_mappings(40));
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, fleet.seed()).expect("seed");
    let w = TestWorld::start_with(seed.to_str().expect("utf-8"), |c| {
        c.operation_duration = Duration::ZERO
    })
    .await;
    let spec = w.write("spec.yaml", &fleet.spec());
    let spec = spec.to_str().expect("utf-8");

    let whole = w
        .wi(&["drift", "-f", spec, "--format", "json"])
        .await
        .expect(2);
    let whole = report(&whole.stdout);
    assert!(
        whole["summary"]["drifted"].as_u64().unwrap_or(0) > 10,
        "{whole}"
    );

    const N: u32 = 3;
    let emu = w.emulator.as_ref().expect("emulator");
    let mut calls: std::collections::BTreeMap<String, u64> = Default::default();
    let mut files = Vec::new();
    for i in 0..N {
        let before = emu.stats();
        let file = w.path(&format!("shard-{i}.json"));
        let shard = format!("{i}/{N}");
        let out = w
            .wi(&[
                "drift",
                "-f",
                spec,
                "--format",
                "json",
                "--shard",
                &shard,
                "-o",
                file.to_str().expect("utf-8"),
            ])
            .await;
        assert!(out.code == 0 || out.code == 2, "{}", out.stderr);
        for (k, n) in emu.stats().calls_since(&before) {
            *calls.entry(k).or_default() += n;
        }
        let part = report(&std::fs::read_to_string(&file).expect("shard report"));
        assert_eq!(part["shard"]["index"], i);
        files.push(file.to_str().expect("utf-8").to_string());
    }
    // Each shard read only its part: together, every cluster and every
    // project once, as one unsharded run reads them.
    let shape = fleet.shape;
    for (call, once_each) in [
        ("k8s list namespaces", shape.clusters),
        ("k8s list serviceaccounts", shape.clusters),
        ("iam.projects.serviceAccounts.list", shape.projects),
    ] {
        assert_eq!(
            calls.get(call).copied(),
            Some(once_each as u64),
            "{call}: {calls:?}"
        );
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let mut args = vec!["drift", "--format", "json", "--merge"];
    args.extend(&files);
    let merged = w.wi(&args).await.expect(2);
    let merged = report(&merged.stdout);
    assert_eq!(merged["items"], whole["items"]);
    assert_eq!(merged["unknowns"], whole["unknowns"]);
    assert_eq!(merged["summary"], whole["summary"]);
    assert_eq!(merged["mergedShards"], N);

    // Refused: a missing shard, a shard twice, an unsharded report.
    let missing = w
        .wi(&["drift", "--merge", files[0], files[2]])
        .await
        .expect(1);
    assert_drift_snapshot!("drift_merge_missing", missing.snapshot());
    let twice = w
        .wi(&["drift", "--merge", files[0], files[1], files[1], files[2]])
        .await
        .expect(1);
    assert!(
        twice
            .stderr
            .contains("shard 1/3 is given twice (reports 2 and 3)"),
        "{}",
        twice.stderr
    );
    let whole_file = w.write("whole.json", &whole.to_string());
    let not_shard = w
        .wi(&[
            "drift",
            "--merge",
            whole_file.to_str().expect("utf-8"),
            files[0],
        ])
        .await
        .expect(1);
    assert!(
        not_shard.stderr.contains("report 1 is not a shard report"),
        "{}",
        not_shard.stderr
    );
    w.stop().await;
}
