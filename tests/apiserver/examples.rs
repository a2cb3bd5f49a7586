//! The Kubernetes manifests under `examples/k8s/` are accepted by a real
//! kube-apiserver: `kubectl apply --dry-run=server` runs the server's full
//! validation and admission (field names, CronJob and Indexed Job rules, the
//! pod failure policy) without storing anything. The namespace `wi-system`
//! is created for real first: a server-side dry run of a namespaced object
//! needs its namespace to exist (and namespaces are never deleted here).

use crate::harness::apiserver;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs kubectl with `args` against the server; stdout, or the failure.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "kubectl {}: {}\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test]
async fn the_k8s_examples_pass_a_server_side_dry_run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = apiserver::shared(None).await.expect("real kube-apiserver");
    let client = server.admin_client().await.expect("admin client");
    let mut ns = Namespace::default();
    ns.metadata.name = Some("wi-system".into());
    match Api::<Namespace>::all(client)
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace wi-system: {e}"),
    }
    // The admin token goes into a file only kubectl reads (never printed).
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let config = server.kubeconfig(&server.admin_token).expect("kubeconfig");
    std::fs::write(
        &kubeconfig,
        serde_json::to_string(&config).expect("kubeconfig JSON"),
    )
    .expect("write kubeconfig");

    // The kustomization: namespace, KSA, the generated spec ConfigMap, CronJob.
    let applied = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--dry-run=server",
            "-k",
            "examples/k8s",
            "-o",
            "name",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<&str> = applied.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "configmap/wi-spec",
            "cronjob.batch/wi-drift",
            "namespace/wi-system",
            "serviceaccount/wi-drift",
        ]
    );
    // The sharded run: the reports volume, the Indexed Job, the merge.
    let created = kubectl(
        &kubeconfig,
        &[
            "create",
            "--dry-run=server",
            "-f",
            "examples/k8s/reports-pvc.yaml",
            "-f",
            "examples/k8s/sharded-job.yaml",
            "-f",
            "examples/k8s/merge-job.yaml",
            "-o",
            "name",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<&str> = created.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "job.batch/wi-drift-merge",
            "job.batch/wi-drift-shards",
            "persistentvolumeclaim/wi-drift-reports",
        ]
    );
    // And the server does refuse a broken one (the dry run checks something).
    let broken = std::fs::read_to_string(root().join("examples/k8s/sharded-job.yaml"))
        .expect("read")
        .replace("completionMode: Indexed", "completionMode: Sideways");
    let broken_path = dir.path().join("broken.yaml");
    std::fs::write(&broken_path, broken).expect("write");
    let refused = kubectl(
        &kubeconfig,
        &[
            "create",
            "--dry-run=server",
            "-f",
            broken_path.to_str().expect("utf-8 path"),
        ],
    )
    .expect_err("an invalid completionMode is refused");
    assert!(refused.contains("completionMode"), "{refused}");
}
