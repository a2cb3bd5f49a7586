//! End to end: the real `wi` binary against the emulator over loopback, with
//! the real gcloud and kubectl planting foreign state around it.

use crate::harness;

use crate::harness::TestWorld;

const SPEC: &str = "examples/quickstart.yaml";
const SEED: &str = "examples/quickstart.seed.yaml";
const ALPHA: (&str, &str) = ("us-central1-a", "alpha");

fn gsa(world: &TestWorld, id: &str) -> String {
    format!("{id}@{}.iam.gserviceaccount.com", world.project)
}

#[tokio::test]
async fn plan_apply_plan_converges() {
    let world = TestWorld::start(SEED).await;
    let first = world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("quickstart_first_plan", first);

    let apply = world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(0);
    assert_output_snapshot!("quickstart_apply", apply.unordered_progress());

    let again = world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    assert_output_snapshot!("quickstart_second_plan", again);

    // The JSON plan is versioned and says the same.
    let json = world.wi(&["plan", "-f", SPEC, "--json"]).await.expect(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    assert!(value["format_version"].is_string());
    let actions: Vec<&serde_json::Value> = value["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .map(|c| &c["change"]["actions"])
        .collect();
    assert!(!actions.is_empty());
    assert!(
        actions.iter().all(|a| *a == &serde_json::json!(["no-op"])),
        "{actions:?}"
    );

    // The chain holds in the live world, read back with the real clients.
    let (loc, name) = ALPHA;
    let cluster = world
        .gcloud(&[
            "container",
            "clusters",
            "describe",
            name,
            "--zone",
            loc,
            "--format=json",
        ])
        .await
        .expect(0);
    let cluster: serde_json::Value = serde_json::from_str(&cluster.stdout).unwrap();
    assert_eq!(
        cluster["workloadIdentityConfig"]["workloadPool"],
        format!("{}.svc.id.goog", world.project)
    );
    for pool in cluster["nodePools"].as_array().unwrap() {
        assert_eq!(
            pool["config"]["workloadMetadataConfig"]["mode"], "GKE_METADATA",
            "{pool}"
        );
    }
    world.stop().await;
}

#[tokio::test]
async fn foreign_members_conditions_annotations_and_labels_survive_apply() {
    let world = TestWorld::start(SEED).await;
    world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(0);
    let payments = gsa(&world, "payments-api");
    let ctx = world.context(ALPHA.0, ALPHA.1);

    // Foreign state, planted with the real CLIs.
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            &payments,
            "--role=roles/iam.serviceAccountTokenCreator",
            "--member=user:alice@example.com",
        ])
        .await
        .expect(0);
    world
        .gcloud(&[
            "iam", "service-accounts", "add-iam-policy-binding", &payments,
            "--role=roles/iam.workloadIdentityUser",
            &format!("--member=serviceAccount:{}.svc.id.goog[batch/nightly]", world.project),
            "--condition=expression=request.time < timestamp('2031-01-01T00:00:00Z'),title=until-2031",
        ]).await
        .expect(0);
    world
        .gcloud(&[
            "projects",
            "add-iam-policy-binding",
            &world.project,
            "--role=roles/viewer",
            "--member=user:bob@example.com",
            "--condition=None",
        ])
        .await
        .expect(0);
    world
        .kubectl(
            &ctx,
            &[
                "annotate",
                "serviceaccount",
                "api",
                "-n",
                "payments",
                "team=payments",
            ],
        )
        .await
        .expect(0);
    world
        .kubectl(
            &ctx,
            &[
                "label",
                "serviceaccount",
                "api",
                "-n",
                "payments",
                "tier=backend",
            ],
        )
        .await
        .expect(0);
    // And drift: someone points the KSA elsewhere with kubectl.
    world
        .kubectl(
            &ctx,
            &[
                "annotate",
                "serviceaccount",
                "api",
                "-n",
                "payments",
                "--overwrite",
                &format!(
                    "iam.gke.io/gcp-service-account={}",
                    gsa(&world, "someone-else")
                ),
            ],
        )
        .await
        .expect(0);

    let plan = world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(
        plan.stdout.contains("kubectl-annotate"),
        "the plan names the other field manager:\n{}",
        plan.stdout
    );
    // Without --force-conflicts the KSA step stops on the field-manager conflict, and says so.
    let refused = world.wi(&["apply", "-f", SPEC, "--auto-approve"]).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(format!("{}{}", refused.stdout, refused.stderr).contains("--force-conflicts"));
    world
        .wi(&["apply", "-f", SPEC, "--auto-approve", "--force-conflicts"])
        .await
        .expect(0);
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);

    let policy = world
        .gcloud(&[
            "iam",
            "service-accounts",
            "get-iam-policy",
            &payments,
            "--format=json",
        ])
        .await
        .expect(0);
    assert!(
        policy.stdout.contains("user:alice@example.com"),
        "{}",
        policy.stdout
    );
    assert!(policy.stdout.contains("until-2031"), "{}", policy.stdout);
    assert!(
        policy.stdout.contains("[batch/nightly]"),
        "{}",
        policy.stdout
    );
    let project_policy = world
        .gcloud(&[
            "projects",
            "get-iam-policy",
            &world.project,
            "--format=json",
        ])
        .await
        .expect(0);
    assert!(
        project_policy.stdout.contains("user:bob@example.com"),
        "{}",
        project_policy.stdout
    );
    let ksa = world
        .kubectl(
            &ctx,
            &[
                "get",
                "serviceaccount",
                "api",
                "-n",
                "payments",
                "-o",
                "json",
            ],
        )
        .await
        .expect(0);
    let ksa: serde_json::Value = serde_json::from_str(&ksa.stdout).unwrap();
    assert_eq!(ksa["metadata"]["annotations"]["team"], "payments");
    assert_eq!(ksa["metadata"]["labels"]["tier"], "backend");
    assert_eq!(
        ksa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        payments
    );
    world.stop().await;
}

#[tokio::test]
async fn removed_mapping_is_released_and_the_ksa_stays() {
    let world = TestWorld::start(SEED).await;
    world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(0);
    let ctx = world.context(ALPHA.0, ALPHA.1);
    let spec = harness::read(SPEC);
    let without_worker = remove_mapping(&spec, "worker");
    let path = world.write("wi.yaml", &without_worker);
    let path = path.to_str().unwrap();

    let plan = world
        .wi(&["plan", "-f", path, "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(plan.stdout.contains("will be destroyed"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("30 minutes"),
        "revocation warning:\n{}",
        plan.stdout
    );
    world
        .wi(&["apply", "-f", path, "--auto-approve"])
        .await
        .expect(0);
    world
        .wi(&["plan", "-f", path, "--detailed-exitcode"])
        .await
        .expect(0);

    let ksa = world
        .kubectl(
            &ctx,
            &[
                "get",
                "serviceaccount",
                "worker",
                "-n",
                "payments",
                "-o",
                "json",
            ],
        )
        .await
        .expect(0);
    let ksa: serde_json::Value = serde_json::from_str(&ksa.stdout).unwrap();
    assert!(
        ksa["metadata"]["annotations"]
            .get("iam.gke.io/gcp-service-account")
            .is_none(),
        "annotation released: {ksa}"
    );
    let policy = world
        .gcloud(&[
            "iam",
            "service-accounts",
            "get-iam-policy",
            &gsa(&world, "payments-api"),
            "--format=json",
        ])
        .await
        .expect(0);
    assert!(
        !policy.stdout.contains("[payments/worker]"),
        "{}",
        policy.stdout
    );
    world.stop().await;
}

#[tokio::test]
async fn saved_plan_applies_without_prompt_and_a_stale_one_is_refused() {
    let world = TestWorld::start(SEED).await;
    let out = world.path("plan.json");
    let out = out.to_str().unwrap();
    world
        .wi(&["plan", "-f", SPEC, "--out", out])
        .await
        .expect(0);
    // Someone else creates an account the plan creates, between plan and apply.
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "create",
            "payments-api",
            "--display-name=Intruder",
        ])
        .await
        .expect(0);
    let stale = world.wi(&["apply", out, "-f", SPEC]).await.expect(1);
    // Refused, showing how the changes differ (the account now exists).
    assert_output_snapshot!("stale_plan_refused", stale);

    // A fresh saved plan runs without asking (it was reviewed), without a terminal.
    world
        .wi(&["plan", "-f", SPEC, "--out", out])
        .await
        .expect(0);
    let applied = world.wi(&["apply", out, "-f", SPEC]).await.expect(0);
    assert!(
        applied.stdout.contains("Apply complete!"),
        "{}",
        applied.stdout
    );
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(0);
    world.stop().await;
}

#[tokio::test]
async fn apply_refuses_to_prompt_without_a_terminal() {
    let world = TestWorld::start(SEED).await;
    let run = world.wi(&["apply", "-f", SPEC]).await.expect(1);
    assert!(run.stderr.contains("without a terminal"), "{}", run.stderr);
    // Nothing was applied.
    world
        .wi(&["plan", "-f", SPEC, "--detailed-exitcode"])
        .await
        .expect(2);
    world.stop().await;
}

#[tokio::test]
async fn bad_spec_is_refused_with_the_line_before_any_call() {
    let world = TestWorld::start(SEED).await;
    let bad = world.write(
        "bad.yaml",
        "version: 1\nserviceAccounts:\n  - name: X\n    project: wi-demo\n",
    );
    let run = world
        .wi(&["plan", "-f", bad.to_str().unwrap()])
        .await
        .expect(1);
    assert!(
        run.stderr.contains(":3:"),
        "points at line 3:\n{}",
        run.stderr
    );
    world.stop().await;
}

/// Drops the mapping entries that mention `ksa` from a YAML spec's `ksas`
/// lists or `ksa:` lines (the quickstart keeps one KSA per line).
fn remove_mapping(spec: &str, ksa: &str) -> String {
    let mut out = Vec::new();
    let lines: Vec<&str> = spec.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.starts_with("- ") && block_mentions(&lines, i, ksa) {
            // Skip this list item (until the next item at the same indent or less).
            let indent = line.len() - trimmed.len();
            i += 1;
            while i < lines.len() {
                let l = lines[i];
                let t = l.trim_start();
                if !t.is_empty() && (l.len() - t.len()) <= indent {
                    break;
                }
                i += 1;
            }
            continue;
        }
        out.push(line);
        i += 1;
    }
    out.join("\n") + "\n"
}

fn block_mentions(lines: &[&str], start: usize, ksa: &str) -> bool {
    let indent = lines[start].len() - lines[start].trim_start().len();
    let mut i = start;
    loop {
        let l = lines[i];
        if l.contains(&format!("ksa: {ksa}")) {
            return true;
        }
        i += 1;
        if i >= lines.len() {
            return false;
        }
        let t = lines[i].trim_start();
        if !t.is_empty() && (lines[i].len() - t.len()) <= indent {
            return false;
        }
    }
}

/// A failed step stops only its dependents: here the KSA whose annotation
/// another field manager owns fails with a conflict, everything else is applied,
/// the summary says what failed and why, and re-running converges.
#[tokio::test]
async fn a_failed_step_stops_only_its_dependents() {
    let seed = harness::read(SEED).replace(
        "      - name: alpha\n        location: us-central1-a\n",
        "      - name: alpha\n        location: us-central1-a\n        kubernetes:\n          - {apiVersion: v1, kind: Namespace, metadata: {name: payments}}\n          - {apiVersion: v1, kind: ServiceAccount, metadata: {name: api, namespace: payments, annotations: {iam.gke.io/gcp-service-account: legacy@wi-demo.iam.gserviceaccount.com}}}\n",
    );
    assert!(seed.contains("legacy@"), "the seed was extended");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.yaml");
    std::fs::write(&path, seed).unwrap();
    let world = TestWorld::start(path.to_str().unwrap()).await;

    let run = world
        .wi(&["apply", "-f", SPEC, "--auto-approve"])
        .await
        .expect(1);
    assert!(run.stdout.contains("Apply failed"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("kubernetes_service_account[\"wi-demo/us-central1-a/alpha/payments/api\"]"),
        "names the failed step:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 failed"), "{}", run.stdout);
    // Everything independent was applied: only the conflicting KSA remains.
    let plan = world.wi(&["plan", "-f", SPEC, "--json"]).await.expect(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let remaining: Vec<&str> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        remaining,
        vec!["kubernetes_service_account[\"wi-demo/us-central1-a/alpha/payments/api\"]"]
    );
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
