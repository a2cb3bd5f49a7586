//! `wi import`: a world made only with gcloud and kubectl (the Workload
//! Identity how-to's steps) is read back as a spec that passes `wi validate`
//! and plans `No changes`: the round trip that proves the import reproduces
//! the world. The spec text is snapshotted in YAML and TOML.

use crate::harness::TestWorld;
use crate::harness::command::Output;

const PROJECT: &str = "wi-import";
const ALPHA: (&str, &str) = ("us-central1-a", "alpha");
const BETA: (&str, &str) = ("europe-west1-b", "beta");

const SEED: &str = "\
defaultProject: wi-import
projects:
  - id: wi-import
    number: \"480000000001\"
    # The how-to enables it; import writes no project services.
    enableServices: [iamcredentials.googleapis.com]
";

fn gsa(id: &str) -> String {
    format!("{id}@{PROJECT}.iam.gserviceaccount.com")
}

/// The emulator with nothing but the project: everything else is made by
/// the real CLIs in the test.
async fn empty_world() -> (TestWorld, tempfile::TempDir) {
    let seed_dir = tempfile::tempdir().expect("seed dir");
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).expect("seed");
    let world = TestWorld::start(seed.to_str().expect("utf-8 path")).await;
    (world, seed_dir)
}

/// The header's timestamp changes from run to run.
fn without_when(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(" at ").zip(l.find(" from the project")) {
            Some((a, b)) if l.starts_with("# Written by") && a < b => {
                format!("{} at [WHEN]{}", &l[..a], &l[b..])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

async fn import(world: &TestWorld, args: &[&str]) -> Output {
    let mut all = vec!["import", "--project", PROJECT];
    all.extend_from_slice(args);
    world.wi(&all).await.expect(0)
}

/// Validates and plans `text` (written as `name`): `No changes`, exit 0.
async fn assert_round_trip(world: &TestWorld, name: &str, text: &str) {
    let path = world.write(name, text);
    let path = path.to_str().expect("utf-8 path");
    world.wi(&["validate", "-f", path]).await.expect(0);
    let plan = world.wi(&["plan", "-f", path, "--detailed-exitcode"]).await;
    assert_eq!(
        plan.code, 0,
        "the imported spec must plan no changes\n--- spec\n{text}\n--- stdout\n{}\n--- stderr\n{}",
        plan.stdout, plan.stderr
    );
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
}

#[tokio::test]
async fn import_of_a_gcloud_and_kubectl_world_plans_no_changes() {
    let (world, _seed) = empty_world().await;
    let pool = format!("--workload-pool={PROJECT}.svc.id.goog");
    for (zone, name) in [ALPHA, BETA] {
        world
            .gcloud(&[
                "container",
                "clusters",
                "create",
                name,
                "--zone",
                zone,
                &pool,
                "--num-nodes",
                "1",
            ])
            .await
            .expect(0);
    }
    for (id, display) in [
        ("payments-api", "Payments API"),
        ("reports-reader", "Reports: reader"),
    ] {
        world
            .gcloud(&[
                "iam",
                "service-accounts",
                "create",
                id,
                "--display-name",
                display,
            ])
            .await
            .expect(0);
    }
    // The how-to's binding, one member per call ...
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            &gsa("reports-reader"),
            "--role=roles/iam.workloadIdentityUser",
            &format!("--member=serviceAccount:{PROJECT}.svc.id.goog[reports/reader]"),
        ])
        .await
        .expect(0);
    // ... or a whole policy: two KSAs of one namespace, and a binding whose
    // KSA exists in no cluster (import cannot decide it: commented out).
    // A conditional binding is noted too (a spec grants unconditionally).
    let policy = serde_json::json!({"version": 3, "bindings": [{
        "role": "roles/iam.workloadIdentityUser",
        "members": [
            format!("serviceAccount:{PROJECT}.svc.id.goog[payments/api]"),
            format!("serviceAccount:{PROJECT}.svc.id.goog[payments/worker]"),
            format!("serviceAccount:{PROJECT}.svc.id.goog[batch/nightly]"),
        ]
    }, {
        "role": "roles/iam.workloadIdentityUser",
        "members": [format!("serviceAccount:{PROJECT}.svc.id.goog[payments/temp]")],
        "condition": {
            "title": "until-2031",
            "expression": "request.time < timestamp('2031-01-01T00:00:00Z')"
        }
    }]});
    let policy_file = world.write("policy.json", &policy.to_string());
    world
        .gcloud(&[
            "iam",
            "service-accounts",
            "set-iam-policy",
            &gsa("payments-api"),
            policy_file.to_str().unwrap(),
        ])
        .await
        .expect(0);
    world
        .gcloud(&[
            "projects",
            "add-iam-policy-binding",
            PROJECT,
            "--role=roles/cloudsql.client",
            &format!("--member=serviceAccount:{}", gsa("payments-api")),
            "--condition=None",
        ])
        .await
        .expect(0);

    // alpha: the how-to's kubectl steps for payments/api.
    let alpha = world.context(ALPHA.0, ALPHA.1);
    let annotation = |email: &str| format!("iam.gke.io/gcp-service-account={email}");
    for args in [
        vec!["create", "namespace", "payments"],
        vec!["create", "serviceaccount", "api", "-n", "payments"],
        vec![
            "annotate",
            "serviceaccount",
            "api",
            "-n",
            "payments",
            &annotation(&gsa("payments-api")),
        ],
    ] {
        world.kubectl(&alpha, &args).await.expect(0);
    }
    // The rest as manifests: payments/worker on both clusters (with api, one
    // mapping of two KSAs), reports/reader on beta, and on alpha an annotation
    // whose account does not bind the KSA.
    let sa = |ns: &str, name: &str, email: &str| {
        format!(
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    iam.gke.io/gcp-service-account: {email}\n"
        )
    };
    let ns =
        |name: &str| format!("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n");
    let alpha_rest = [
        sa("payments", "worker", &gsa("payments-api")),
        ns("ops"),
        sa("ops", "cron", &gsa("reports-reader")),
    ]
    .concat();
    let beta_all = [
        ns("payments"),
        sa("payments", "api", &gsa("payments-api")),
        sa("payments", "worker", &gsa("payments-api")),
        ns("reports"),
        sa("reports", "reader", &gsa("reports-reader")),
    ]
    .concat();
    let beta = world.context(BETA.0, BETA.1);
    for (ctx, file, text) in [
        (&alpha, "alpha.yaml", alpha_rest),
        (&beta, "beta.yaml", beta_all),
    ] {
        let path = world.write(file, &text);
        world
            .kubectl(ctx, &["apply", "-f", path.to_str().unwrap()])
            .await
            .expect(0);
    }

    let yaml = import(&world, &[]).await;
    insta::assert_snapshot!("import_yaml", without_when(&yaml.stdout));
    assert_round_trip(&world, "imported.yaml", &yaml.stdout).await;

    let toml = import(&world, &["--format", "toml", "--owner", "payments"]).await;
    insta::assert_snapshot!("import_toml", without_when(&toml.stdout));
    assert_round_trip(&world, "imported.toml", &toml.stdout).await;

    // One cluster only, to a file, adopting the accounts: the KSAs beta also
    // has are noted, and the first plan marks the accounts as the owner's.
    let out = world.path("alpha-only.yaml");
    let written = import(
        &world,
        &[
            "--cluster",
            "alpha",
            "--owner",
            "payments",
            "--adopt",
            "-o",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_output_snapshot!("import_to_a_file", written);
    let text = std::fs::read_to_string(&out).expect("written spec");
    insta::assert_snapshot!("import_one_cluster_adopt", without_when(&text));
    world
        .wi(&["validate", "-f", out.to_str().unwrap()])
        .await
        .expect(0);
    let plan = world
        .wi(&["plan", "-f", out.to_str().unwrap(), "--detailed-exitcode"])
        .await
        .expect(2);
    assert!(
        plan.stdout
            .contains("adopt: true marks the account as managed by wi (owner payments)")
            || plan
                .stdout
                .contains("adopt: true marks the account as managed by wi"),
        "{}",
        plan.stdout
    );
    world.stop().await;
}

/// What `wi apply` made reads back too: accounts wi owns (their
/// description without wi's marker), KSAs it created (`manage: create`).
#[tokio::test]
async fn import_of_what_wi_applied_plans_no_changes() {
    let world = TestWorld::start("examples/quickstart.seed.yaml").await;
    world
        .wi(&["apply", "-f", "examples/quickstart.yaml", "--auto-approve"])
        .await
        .expect(0);
    let yaml = world
        .wi(&["import", "--project", &world.project])
        .await
        .expect(0);
    insta::assert_snapshot!("import_after_apply", without_when(&yaml.stdout));
    assert_round_trip(&world, "imported.yaml", &yaml.stdout).await;
    world.stop().await;
}

/// Direct grants: the KSA's own principal and a namespace's principal set
/// on the project policy become `roles:` and `principalSet:` mappings.
#[tokio::test]
async fn import_of_direct_grants_plans_no_changes() {
    let (world, _seed) = empty_world().await;
    let (zone, name) = ALPHA;
    world
        .gcloud(&[
            "container",
            "clusters",
            "create",
            name,
            "--zone",
            zone,
            &format!("--workload-pool={PROJECT}.svc.id.goog"),
            "--num-nodes",
            "1",
        ])
        .await
        .expect(0);
    let ctx = world.context(zone, name);
    for args in [
        vec!["create", "namespace", "payments"],
        vec!["create", "serviceaccount", "ledger", "-n", "payments"],
        vec!["create", "namespace", "batch"],
    ] {
        world.kubectl(&ctx, &args).await.expect(0);
    }
    let pool = format!(
        "iam.googleapis.com/projects/480000000001/locations/global/workloadIdentityPools/{PROJECT}.svc.id.goog"
    );
    for (member, role) in [
        (
            format!("principal://{pool}/subject/ns/payments/sa/ledger"),
            "roles/cloudsql.client",
        ),
        (
            format!("principalSet://{pool}/namespace/batch"),
            "roles/pubsub.subscriber",
        ),
    ] {
        world
            .gcloud(&[
                "projects",
                "add-iam-policy-binding",
                PROJECT,
                &format!("--member={member}"),
                &format!("--role={role}"),
                "--condition=None",
            ])
            .await
            .expect(0);
    }
    let yaml = import(&world, &[]).await;
    insta::assert_snapshot!("import_direct_yaml", without_when(&yaml.stdout));
    assert_round_trip(&world, "imported.yaml", &yaml.stdout).await;
    world.stop().await;
}

/// An Autopilot cluster (`gcloud container clusters create-auto`) is
/// written `autopilot: true`, with no pool or metadata settings.
#[tokio::test]
async fn import_of_an_autopilot_cluster_plans_no_changes() {
    let (world, _seed) = empty_world().await;
    world
        .gcloud(&[
            "container",
            "clusters",
            "create-auto",
            "auto",
            "--region",
            "us-central1",
        ])
        .await
        .expect(0);
    let yaml = import(&world, &[]).await;
    insta::assert_snapshot!("import_autopilot_yaml", without_when(&yaml.stdout));
    assert!(yaml.stdout.contains("autopilot: true"), "{}", yaml.stdout);
    assert_round_trip(&world, "imported.yaml", &yaml.stdout).await;
    world.stop().await;
}

/// Bad flags stop `wi import` before it reads anything (no cloud needed).
#[tokio::test]
async fn import_refuses_a_bad_project_and_needs_one() {
    let bad = crate::harness::command::wi_offline(&["import", "--project", "Not_A_Project"]).await;
    assert_output_snapshot!("import_bad_project", bad);
    let none = crate::harness::command::wi_offline(&["import"]).await;
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert!(
        none.stderr.contains("--project <PROJECT>"),
        "{}",
        none.stderr
    );
}
