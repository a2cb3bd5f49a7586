//! The CI formats from built plans, in process: the drift report schema
//! (`schema/drift-report.schema.json`, generated and committed; regenerate
//! with `WI_UPDATE_SCHEMA=1 cargo test --test render pr_formats::`), the
//! Markdown comment of a 2,000-mapping plan under 60,000 bytes with its
//! truncation note, GitHub annotations and `wi plan --summary`.

#[allow(dead_code)]
#[path = "../../benches/fleet/world.rs"]
mod world;

use std::path::PathBuf;

use crate::harness::fixtures as fx;
use wi::gcp::types::{
    GkeCluster, IamPolicy, NodeConfig, NodePool, WorkloadIdentityConfig, WorkloadMetadataConfig,
};
use wi::live::{LiveCluster, LiveKube, LiveProject, LiveState};
use wi::plan::{Plan, PlanOptions};
use wi::render;

#[test]
fn committed_drift_report_schema_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/drift-report.schema.json");
    let generated = wi::drift::schema_json();
    if std::env::var_os("WI_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/drift-report.schema.json is stale: run `WI_UPDATE_SCHEMA=1 cargo test --test render pr_formats::` and commit it"
    );
}

/// The benchmark fleet at 2,000 mappings, planned against a world with its
/// clusters (Workload Identity on) and nothing else: every account, binding,
/// namespace and KSA is a change.
fn fleet_plan() -> Plan {
    let fleet = world::Fleet::generate(world::Shape::for_mappings(2_000));
    let model = wi::spec::load_str(&fleet.spec(), "fleet.yaml", wi::spec::Format::Yaml)
        .expect("the fleet spec loads");
    let mut live = LiveState::default();
    for p in &model.projects {
        live.projects.insert(
            p.clone(),
            LiveProject {
                iam_credentials_enabled: Some(true),
                policy: Some(IamPolicy::default()),
                ..Default::default()
            },
        );
    }
    for c in &model.clusters {
        let pool = format!("{}.svc.id.goog", c.key.project);
        live.clusters.insert(
            c.key.clone(),
            LiveCluster {
                gke: Some(GkeCluster {
                    name: c.key.name.clone(),
                    location: c.key.location.clone(),
                    endpoint: Some("127.0.0.1:1".into()),
                    workload_identity_config: Some(WorkloadIdentityConfig {
                        workload_pool: pool,
                    }),
                    node_pools: vec![NodePool {
                        name: "default-pool".into(),
                        config: Some(NodeConfig {
                            workload_metadata_config: Some(WorkloadMetadataConfig {
                                mode: "GKE_METADATA".into(),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                kube: Some(LiveKube::default()),
            },
        );
    }
    wi::plan::compute(
        &model,
        &live,
        &PlanOptions::default(),
        "sha256:fleet".into(),
    )
    .expect("plan")
}

#[test]
fn a_2000_mapping_plan_fits_a_pull_request_comment_with_a_note() {
    let plan = fleet_plan();
    assert!(plan.actionable().count() > 6_000);
    let md = render::markdown(&plan, render::PR_COMMENT_MAX_BYTES);
    assert!(md.len() <= 60_000, "{} bytes", md.len());
    assert!(md.chars().count() <= 60_000);
    assert!(md.starts_with("### wi plan: "), "{}", &md[..200]);
    assert!(md.contains("| Project / cluster | Add | Change | Destroy |"));
    let note = md.lines().last().expect("a last line");
    assert!(
        note.starts_with("> **Note:** output truncated to fit 60000 bytes: ")
            && note.contains("changes listed"),
        "{note}"
    );
    // Every project and cluster has its summary row.
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| project `") || l.starts_with("| cluster `"))
        .count();
    let shape = world::Shape::for_mappings(2_000);
    assert_eq!(rows, shape.projects + shape.clusters);

    // The summary text stays short.
    let summary = render::summary(&plan);
    assert!(summary.lines().count() < 40, "{summary}");

    // GitHub: at most 10 annotations of each level, then one summary notice.
    let gh = render::github::plan(&plan, &wi::spec::Model::default());
    let notices = gh.lines().filter(|l| l.starts_with("::notice")).count();
    assert_eq!(notices, 10, "{gh}");
    let last = gh.lines().last().expect("summary");
    assert!(
        last.contains("Not shown (GitHub shows 10 annotations"),
        "{last}"
    );
}

#[test]
fn markdown_puts_destroys_first_in_their_own_table() {
    let mut plan = fx::create_everything();
    plan.changes.extend(fx::removal().changes);
    plan.changes.sort_by_key(|c| c.resource.sort_key());
    insta::assert_snapshot!(render::markdown(&plan, render::PR_COMMENT_MAX_BYTES));
}

#[test]
fn plan_summary_text() {
    let mut plan = fx::create_everything();
    plan.changes.extend(fx::removal().changes);
    plan.changes.sort_by_key(|c| c.resource.sort_key());
    insta::assert_snapshot!(render::summary(&plan));
}

#[test]
fn plan_github_annotations_point_at_the_spec() {
    let plan = fx::create_everything();
    let gh = render::github::plan(&plan, &fx::quickstart());
    assert!(
        gh.lines()
            .any(|l| l.starts_with("::notice file=examples/quickstart.yaml,line=")),
        "{gh}"
    );
    insta::assert_snapshot!(gh);
}

#[test]
fn github_validation_errors_are_escaped_and_at_their_lines() {
    let text = "version: 1\nclusters:\n  - name: Bad_Name\n    project: p\n    location: l\n";
    let err =
        wi::spec::load_str(text, "ci/wi,1.yaml", wi::spec::Format::Yaml).expect_err("invalid");
    let gh = render::github::validation(&err);
    let first = gh.lines().next().expect("an error");
    assert!(
        first.starts_with("::error file=ci/wi%2C1.yaml,line=3,title=wi validate%3A "),
        "{first}"
    );
    insta::assert_snapshot!(gh);
}

#[tokio::test]
async fn wi_validate_format_github_prints_annotations_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\nclusters:\n  - name: Bad_Name\n    project: my-project\n    location: us-central1\n").expect("write");
    let out = crate::harness::command::wi_offline_in(
        dir.path(),
        &["validate", "-f", "bad.yaml", "--format", "github"],
    )
    .await
    .expect(1);
    assert!(
        out.stdout
            .starts_with("::error file=bad.yaml,line=3,title=wi validate%3A "),
        "{}",
        out.stdout
    );
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "version: 1\nclusters:\n  - name: ok\n    project: my-project\n    location: us-central1\n",
    )
    .expect("write");
    let out = crate::harness::command::wi_offline_in(
        dir.path(),
        &["validate", "-f", "good.yaml", "--format", "github"],
    )
    .await
    .expect(0);
    assert_eq!(
        out.stdout,
        "::notice title=wi::good.yaml is valid: 1 cluster, 0 service accounts, 0 KSA mappings.\n"
    );
}
