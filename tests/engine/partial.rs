//! Partial plans: a cluster or project that cannot be read is an unknown of
//! the plan, with its reason, and everything else is planned; `wi plan`
//! exits 1, `wi apply` refuses the plan unless `--exclude` leaves the
//! unknown out, and then changes the rest.
//!
//! The real `wi` binary against the in-process emulator; the unreachable
//! cluster's `kubeContext` points at a loopback port nobody listens on, the
//! unreadable project is the emulator's fault injection (403 on account lists).

use serde_json::Value;

use crate::harness::{Output, TestWorld};

const SEED: &str = r#"
defaultProject: wi-part
projects:
  - id: wi-part
    enableServices: [iamcredentials.googleapis.com]
    clusters:
      - name: c1
        location: us-central1-a
        workloadPool: wi-part.svc.id.goog
        nodePools:
          - name: default-pool
      - name: c2
        location: us-central1-a
        workloadPool: wi-part.svc.id.goog
        nodePools:
          - name: default-pool
      - name: c3
        location: us-central1-a
        workloadPool: wi-part.svc.id.goog
        nodePools:
          - name: default-pool
"#;

const SPEC: &str = r#"version: 1
clusters:
  - name: c1
    project: wi-part
    location: us-central1-a
    workloadIdentity: true
  - name: c2
    project: wi-part
    location: us-central1-a
    workloadIdentity: true
  - name: c3
    project: wi-part
    location: us-central1-a
    workloadIdentity: true
    kubeContext: broken
serviceAccounts:
  - name: api-app
    project: wi-part
mappings:
  - serviceAccount: api-app
    clusters: [c1]
    namespace: apps
    ksa: api-one
  - serviceAccount: api-app
    clusters: [c2]
    namespace: apps
    ksa: api-two
  - serviceAccount: api-app
    clusters: [c3]
    namespace: apps
    ksa: api-three
"#;

/// A kubeconfig whose context `broken` points at a loopback port that was
/// just closed: connecting is refused.
fn broken_kubeconfig(world: &TestWorld) -> String {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: broken\n    cluster:\n      server: https://127.0.0.1:{port}\n      insecure-skip-tls-verify: true\nusers:\n  - name: broken\n    user:\n      token: not-a-secret\ncontexts:\n  - name: broken\n    context:\n      cluster: broken\n      user: broken\ncurrent-context: broken\n"
    );
    let path = world.write("kubeconfig", &text);
    path.to_str().expect("utf-8 path").to_string()
}

async fn world(
    tweak: impl FnOnce(&mut wi::emulator::EmulatorConfig),
) -> (TestWorld, tempfile::TempDir, String) {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start_with(seed.to_str().expect("utf-8 path"), tweak).await;
    let spec = world.write("wi.yaml", SPEC);
    let spec = spec.to_str().expect("utf-8 path").to_string();
    (world, seed_dir, spec)
}

fn json_plan(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).expect("JSON plan")
}

/// The plan validates against the committed plan JSON Schema.
fn assert_valid(plan: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(plan)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The addresses of a JSON plan's changes that do something.
fn actionable(plan: &Value) -> Vec<String> {
    plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .filter(|c| c["change"]["actions"][0] != "no-op")
        .map(|c| c["address"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The KSAs of `apps` in a cluster and the account each is annotated with,
/// as the cluster's API answers.
async fn ksas(world: &TestWorld, cluster: &str) -> Vec<(String, String)> {
    let conn = world.kube("us-central1-a", cluster).await;
    let mut out: Vec<(String, String)> = conn
        .list_service_accounts()
        .await
        .expect("list")
        .into_iter()
        .filter(|sa| sa.metadata.namespace.as_deref() == Some("apps"))
        .filter(|sa| sa.metadata.name.as_deref() != Some("default"))
        .map(|sa| {
            let gsa = sa
                .metadata
                .annotations
                .and_then(|a| a.get("iam.gke.io/gcp-service-account").cloned())
                .unwrap_or_default();
            (sa.metadata.name.unwrap_or_default(), gsa)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn an_unreachable_cluster_is_unknown_and_the_other_two_are_planned() {
    let (world, _seed, spec) = world(|_| {}).await;
    let kubeconfig = broken_kubeconfig(&world);
    let env = [("KUBECONFIG", kubeconfig.as_str())];

    // The plan shows c3 unknown with its reason at the top, plans c1 and
    // c2, and exits 1 after printing and saving it.
    let saved = world.path("partial.plan");
    let saved = saved.to_str().expect("utf-8 path");
    let text = world
        .wi_env(&["plan", "-f", &spec, "--out", saved], &env, &[])
        .await
        .expect(1);
    assert_output_snapshot!("partial_plan_unreachable_cluster", text);
    assert!(std::path::Path::new(saved).exists(), "--out is written");

    let plan = json_plan(
        &world
            .wi_env(&["plan", "-f", &spec, "--json"], &env, &[])
            .await
            .expect(1),
    );
    assert_valid(&plan);
    let unknowns = plan["unknowns"].as_array().expect("unknowns");
    assert_eq!(unknowns.len(), 1, "{plan:#}");
    assert_eq!(unknowns[0]["scope"]["kind"], "cluster");
    assert_eq!(unknowns[0]["scope"]["cluster"]["name"], "c3");
    assert_eq!(unknowns[0]["code"], "unreachable");
    let changes = actionable(&plan);
    assert!(
        changes.iter().any(|a| a.contains("c1/apps/api-one"))
            && changes.iter().any(|a| a.contains("c2/apps/api-two")),
        "c1 and c2 are planned: {changes:?}"
    );
    assert!(
        !changes.iter().any(|a| a.contains("/c3/")),
        "nothing is planned in c3: {changes:?}"
    );

    // Apply refuses, direct or of the saved plan, and changes nothing.
    let refused = world
        .wi_env(&["apply", "-f", &spec, "--auto-approve"], &env, &[])
        .await
        .expect(1);
    assert!(
        refused
            .stderr
            .contains("refusing to apply a plan with unknowns"),
        "{}",
        refused.stderr
    );
    let refused = world.wi_env(&["apply", saved], &env, &[]).await.expect(1);
    assert!(
        refused
            .stderr
            .contains("refusing to apply a plan with unknowns"),
        "{}",
        refused.stderr
    );
    assert!(ksas(&world, "c1").await.is_empty(), "nothing was changed");

    // Excluded, c3 is not an unknown of the plan: apply changes the other two.
    let excluded = json_plan(
        &world
            .wi_env(
                &["plan", "-f", &spec, "--json", "--exclude", "c3"],
                &env,
                &[],
            )
            .await
            .expect(0),
    );
    assert!(excluded.get("unknowns").is_none(), "{excluded:#}");
    world
        .wi_env(
            &["apply", "-f", &spec, "--auto-approve", "--exclude", "c3"],
            &env,
            &[],
        )
        .await
        .expect(0);
    let gsa = "api-app@wi-part.iam.gserviceaccount.com".to_string();
    assert_eq!(
        ksas(&world, "c1").await,
        vec![("api-one".to_string(), gsa.clone())]
    );
    assert_eq!(ksas(&world, "c2").await, vec![("api-two".to_string(), gsa)]);
    assert!(ksas(&world, "c3").await.is_empty(), "c3 was left alone");
    world.stop().await;
}

#[tokio::test]
async fn a_project_whose_accounts_cannot_be_listed_is_unknown() {
    let (world, _seed, spec) = world(|c| c.faults = Some("iam.list=403:1".into())).await;
    let kubeconfig = broken_kubeconfig(&world);
    let env = [("KUBECONFIG", kubeconfig.as_str())];
    let out = world
        .wi_env(
            &["plan", "-f", &spec, "--json", "--exclude", "c3"],
            &env,
            &[],
        )
        .await
        .expect(1);
    let plan = json_plan(&out);
    assert_valid(&plan);
    let unknowns = plan["unknowns"].as_array().expect("unknowns");
    assert_eq!(unknowns.len(), 1, "{plan:#}");
    assert_eq!(unknowns[0]["scope"]["kind"], "project");
    assert_eq!(unknowns[0]["scope"]["project"], "wi-part");
    assert_eq!(unknowns[0]["code"], "forbidden");
    // Nothing of the project is planned, nor the annotations that wait for
    // its bindings; the namespaces, which wait for nothing there, are.
    let changes = actionable(&plan);
    assert!(
        !changes
            .iter()
            .any(|a| a.starts_with("google_service_account")
                || a.starts_with("service_account_iam_member")
                || a.starts_with("kubernetes_service_account")),
        "{changes:?}"
    );
    let held: Vec<&str> = unknowns[0]["held_back"]
        .as_array()
        .expect("held_back")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        held.iter().any(|a| a.contains("c1/apps/api-one")),
        "the annotation that waits for the binding is held back: {held:?}"
    );
    let text = world
        .wi_env(&["plan", "-f", &spec, "--exclude", "c3"], &env, &[])
        .await
        .expect(1);
    assert_output_snapshot!("partial_plan_unreadable_project", text);
    let markdown = world
        .wi_env(
            &[
                "plan",
                "-f",
                &spec,
                "--exclude",
                "c3",
                "--format",
                "markdown",
            ],
            &env,
            &[],
        )
        .await
        .expect(1);
    assert_output_snapshot!("partial_plan_unreadable_project_markdown", markdown);
    world.stop().await;
}
