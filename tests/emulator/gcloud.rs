//! Real clients accept the emulator: the installed `gcloud` runs the
//! Workload Identity how-to against `wi emulator`, then the installed
//! `kubectl` (authenticating through `gke-gcloud-auth-plugin`) uses the context
//! `get-credentials` wrote. Fails, never skips, when a tool is missing.

use crate::harness::command::EmulatorProcess;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg(if tool == "kubectl" {
            "version"
        } else {
            "--version"
        })
        .args(if tool == "kubectl" {
            vec!["--client"]
        } else {
            vec![]
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{tool}` is required for this test and was not found on PATH"
    );
}

struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(tool);
        cmd.env_clear();
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.args(args);
        let started = Instant::now();
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        eprintln!(
            "$ {tool} {} ({:.1}s, {})",
            args.join(" "),
            started.elapsed().as_secs_f64(),
            out.status
        );
        out
    }

    fn ok(&self, tool: &str, args: &[&str]) -> String {
        let out = self.run(tool, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{tool} {} failed:\nstdout: {stdout}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

#[test]
fn gcloud_and_kubectl_run_the_workload_identity_how_to() {
    require("gcloud");
    require("kubectl");
    require("gke-gcloud-auth-plugin");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let project = "wi-howto";
    let seed = dir.path().join("seed.yaml");
    // One cluster created without Workload Identity, to migrate as the how-to does.
    std::fs::write(
        &seed,
        format!(
            "projects:\n  - id: {project}\n    clusters:\n      - name: legacy\n        location: us-central1-a\n        nodePools:\n          - name: default-pool\n            nodeCount: 1\n"
        ),
    )
    .unwrap();
    let env_file = dir.path().join("env.sh");
    let work = dir.path().join("work");
    let emulator = EmulatorProcess::spawn(
        &[
            "--operation-duration".as_ref(),
            "1s".as_ref(),
            "--seed".as_ref(),
            seed.as_os_str(),
            "--work-dir".as_ref(),
            work.as_os_str(),
        ],
        &env_file,
        Stdio::piped(),
    );
    let exports = emulator.exports.clone();
    let get = |k: &str| {
        exports
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} not exported"))
    };
    assert_eq!(get("CLOUDSDK_CORE_PROJECT"), project);
    let path = std::env::var("PATH").unwrap_or_default();
    let mut vars = vec![
        ("PATH".to_string(), path),
        ("HOME".to_string(), home.display().to_string()),
        (
            "CLOUDSDK_CONFIG".to_string(),
            dir.path().join("gcloud").display().to_string(),
        ),
        ("CLOUDSDK_CORE_DISABLE_PROMPTS".into(), "1".into()),
        (
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING".into(),
            "true".into(),
        ),
        (
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK".into(),
            "true".into(),
        ),
        ("CLOUDSDK_CORE_CHECK_GCE_METADATA".into(), "false".into()),
        ("CLOUDSDK_SURVEY_DISABLE_PROMPTS".into(), "true".into()),
    ];
    vars.extend(exports.iter().cloned());
    let env = Env { vars };
    let pool = format!("{project}.svc.id.goog");
    let gsa = format!("gsa-app@{project}.iam.gserviceaccount.com");
    let member = format!("serviceAccount:{pool}[team-a/app]");
    let zone = ["--zone", "us-central1-a"];

    // A Google service account.
    env.ok(
        "gcloud",
        &[
            "iam",
            "service-accounts",
            "create",
            "gsa-app",
            "--display-name",
            "App",
            "--quiet",
        ],
    );
    // Before any Workload Identity cluster the pool does not exist: the real error.
    let early = env.run(
        "gcloud",
        &[
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            &gsa,
            "--role",
            "roles/iam.workloadIdentityUser",
            "--member",
            &member,
            "--quiet",
        ],
    );
    assert!(!early.status.success());
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert!(
        stderr.contains(&format!("Identity Pool does not exist ({pool})")),
        "{stderr}"
    );

    // New cluster with Workload Identity.
    let mut create = vec![
        "container",
        "clusters",
        "create",
        "wi-cluster",
        "--workload-pool",
        &pool,
        "--num-nodes",
        "1",
        "--quiet",
    ];
    create.extend(zone);
    env.ok("gcloud", &create);
    // Existing cluster: enable, then migrate its node pool.
    let mut update = vec![
        "container",
        "clusters",
        "update",
        "legacy",
        "--workload-pool",
        &pool,
        "--quiet",
    ];
    update.extend(zone);
    env.ok("gcloud", &update);
    let mut np = vec![
        "container",
        "node-pools",
        "update",
        "default-pool",
        "--cluster",
        "legacy",
        "--workload-metadata",
        "GKE_METADATA",
        "--quiet",
    ];
    np.extend(zone);
    env.ok("gcloud", &np);
    let mut describe = vec![
        "container",
        "node-pools",
        "describe",
        "default-pool",
        "--cluster",
        "legacy",
        "--format",
        "value(config.workloadMetadataConfig.mode)",
    ];
    describe.extend(zone);
    assert_eq!(env.ok("gcloud", &describe).trim(), "GKE_METADATA");

    // Bind the KSA to the GSA, read it back, remove it, bind again.
    let bind = [
        "iam",
        "service-accounts",
        "add-iam-policy-binding",
        &gsa,
        "--role",
        "roles/iam.workloadIdentityUser",
        "--member",
        &member,
        "--format",
        "json",
        "--quiet",
    ];
    let out = env.ok("gcloud", &bind);
    assert!(out.contains(&member), "{out}");
    let policy = env.ok(
        "gcloud",
        &[
            "iam",
            "service-accounts",
            "get-iam-policy",
            &gsa,
            "--format",
            "json",
        ],
    );
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        policy["bindings"][0]["role"],
        "roles/iam.workloadIdentityUser"
    );
    assert_eq!(policy["bindings"][0]["members"][0], member.as_str());
    assert!(policy["etag"].as_str().unwrap().starts_with("Bw"));
    let out = env.ok(
        "gcloud",
        &[
            "iam",
            "service-accounts",
            "remove-iam-policy-binding",
            &gsa,
            "--role",
            "roles/iam.workloadIdentityUser",
            "--member",
            &member,
            "--format",
            "json",
            "--quiet",
        ],
    );
    assert!(!out.contains(&member), "{out}");
    env.ok("gcloud", &bind);

    env.ok(
        "gcloud",
        &[
            "services",
            "enable",
            "iamcredentials.googleapis.com",
            "--quiet",
        ],
    );
    let mut creds = vec!["container", "clusters", "get-credentials", "wi-cluster"];
    creds.extend(zone);
    env.ok("gcloud", &creds);
    let context = format!("gke_{project}_us-central1-a_wi-cluster");
    assert_eq!(
        env.ok("kubectl", &["config", "current-context"]).trim(),
        context
    );

    // kubectl, authenticated by gke-gcloud-auth-plugin with the emulator's Google token.
    env.ok(
        "kubectl",
        &["--context", &context, "create", "namespace", "team-a"],
    );
    env.ok(
        "kubectl",
        &[
            "--context",
            &context,
            "create",
            "serviceaccount",
            "app",
            "-n",
            "team-a",
        ],
    );
    env.ok(
        "kubectl",
        &[
            "--context",
            &context,
            "annotate",
            "serviceaccount",
            "app",
            "-n",
            "team-a",
            &format!("iam.gke.io/gcp-service-account={gsa}"),
        ],
    );
    let ksa = env.ok(
        "kubectl",
        &[
            "--context",
            &context,
            "get",
            "serviceaccount",
            "app",
            "-n",
            "team-a",
            "-o",
            "json",
        ],
    );
    let ksa: serde_json::Value = serde_json::from_str(&ksa).unwrap();
    assert_eq!(
        ksa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        gsa.as_str()
    );
    let _ = PathBuf::new();
    drop(emulator);
}
