//! Autopilot end to end: a cluster made by `gcloud container clusters
//! create-auto` plans clean (Workload Identity is always on there and GKE
//! owns the node pools), a spec that turns Workload Identity off on it is
//! refused at its line, and `create: {autopilot: true}` makes one that re-plans clean.

use crate::harness::TestWorld;
use crate::harness::command::{Output, run, wi_binary};

const PROJECT: &str = "wi-auto";

const HEADER: &str =
    "version: 1\ndefaults:\n  project: wi-auto\n  location: us-central1\nclusters:\n";

/// `wi` run in the test's directory, so diagnostics name the spec as given.
async fn wi_here(world: &TestWorld, args: &[&str]) -> Output {
    let mut cmd = world.command(wi_binary());
    cmd.current_dir(world.dir.path()).args(args);
    run(&mut cmd).await.expect("run wi")
}

#[tokio::test]
async fn autopilot_from_create_auto_plans_clean_and_refuses_workload_identity_off() {
    let seed_dir = tempfile::tempdir().unwrap();
    let seed = seed_dir.path().join("seed.yaml");
    std::fs::write(
        &seed,
        format!(
            "projects:\n  - id: {PROJECT}\n    clusters:\n      - name: std1\n        location: us-central1\n        workloadPool: {PROJECT}.svc.id.goog\n"
        ),
    )
    .unwrap();
    let world = TestWorld::start(seed.to_str().unwrap()).await;

    world
        .gcloud(&[
            "container",
            "clusters",
            "create-auto",
            "auto1",
            "--region",
            "us-central1",
            "--async",
        ])
        .await
        .expect(0);
    // gcloud's own wait polls slowly: wait with wi's client instead.
    let gke = world.gcp().await;
    let auto1 = wi::ids::ClusterKey {
        project: PROJECT.into(),
        location: "us-central1".into(),
        name: "auto1".into(),
    };
    gke.wait_cluster_idle(&auto1, std::time::Duration::from_secs(30), &|_| {})
        .await
        .unwrap();
    // Not declared Autopilot: wi reads it live and plans nothing.
    world.write("plain.yaml", &format!("{HEADER}  - name: auto1\n"));
    let plan = wi_here(&world, &["plan", "-f", "plain.yaml", "--detailed-exitcode"])
        .await
        .expect(0);
    assert_output_snapshot!("autopilot_create_auto_plan", plan);

    // Turning Workload Identity off on a live Autopilot cluster: refused at the line.
    world.write(
        "off.yaml",
        &format!("{HEADER}  - name: auto1\n    workloadIdentity: false\n"),
    );
    let refused = wi_here(&world, &["plan", "-f", "off.yaml", "--detailed-exitcode"])
        .await
        .expect(1);
    assert_output_snapshot!("autopilot_workload_identity_off_plan", refused);

    // Declared Autopilot, but a Standard cluster: refused, naming the declaration.
    world.write(
        "standard.yaml",
        &format!("{HEADER}  - name: std1\n    autopilot: true\n"),
    );
    let standard = wi_here(
        &world,
        &["plan", "-f", "standard.yaml", "--detailed-exitcode"],
    )
    .await
    .expect(1);
    assert_output_snapshot!("autopilot_declared_on_standard_plan", standard);

    // Declared Autopilot: refused before any call, at the line.
    world.write(
        "declared.yaml",
        &format!(
            "{HEADER}  - name: auto1\n    autopilot: true\n    metadataServer: [default-pool]\n"
        ),
    );
    let invalid = wi_here(&world, &["validate", "-f", "declared.yaml"])
        .await
        .expect(1);
    assert_output_snapshot!("autopilot_declared_metadata_server", invalid);

    // `create: {autopilot: true}`: apply makes it the way create-auto does, then nothing is left.
    let create_path = world.write(
        "create.yaml",
        &format!(
            "{HEADER}  - name: auto1\n    autopilot: true\n  - name: auto2\n    create:\n      autopilot: true\n"
        ),
    );
    assert!(create_path.exists());
    let create = "create.yaml";
    let plan = wi_here(&world, &["plan", "-f", create, "--detailed-exitcode"])
        .await
        .expect(2);
    assert_output_snapshot!("autopilot_create_plan", plan);
    wi_here(&world, &["apply", "-f", create, "--auto-approve"])
        .await
        .expect(0);
    wi_here(&world, &["plan", "-f", create, "--detailed-exitcode"])
        .await
        .expect(0);
    let key = wi::ids::ClusterKey {
        project: PROJECT.into(),
        location: "us-central1".into(),
        name: "auto2".into(),
    };
    let auto2 = gke.get_cluster(&key).await.unwrap().expect("auto2 exists");
    assert!(auto2.autopilot());
    assert_eq!(auto2.workload_pool(), Some("wi-auto.svc.id.goog"));
    for pool in &auto2.node_pools {
        assert_eq!(pool.metadata_mode(), Some("GKE_METADATA"), "{pool:?}");
    }
    world.stop().await;
}

#[tokio::test]
async fn autopilot_settings_it_cannot_have_are_refused_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wi.yaml"),
        format!(
            "{HEADER}  - name: auto1\n    autopilot: true\n    workloadIdentity: false\n  - name: auto2\n    location: us-central1-a\n    create:\n      autopilot: true\n      machineType: e2-small\n  - name: auto3\n    autopilot: false\n    create:\n      autopilot: true\n"
        ),
    )
    .unwrap();
    let out =
        crate::harness::command::wi_offline_in(dir.path(), &["validate", "-f", "wi.yaml"]).await;
    assert_output_snapshot!("autopilot_invalid_settings", out.expect(1));
}
