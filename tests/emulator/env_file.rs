//! The env file of `wi emulator`: sourced in a shell whose proxy CA bundle
//! variables name an unrelated CA, gcloud still trusts the emulator; its paths
//! are absolute for a relative `--state` and `--env-file`; the work directory
//! (admin token and key) is gone after SIGTERM unless `--state` keeps it.

use crate::harness::command::{EmulatorProcess, parse_exports, wi_binary};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROJECT: &str = "wi-envfile";

/// A seed with two clusters in `PROJECT`.
fn write_seed(path: &Path) {
    let mut text = format!("projects:\n  - id: {PROJECT}\n    clusters:\n");
    for name in ["east", "west"] {
        text.push_str(&format!(
            "      - name: {name}\n        location: us-central1-a\n        nodePools:\n          - name: default-pool\n            nodeCount: 1\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A fresh self-signed CA, in PEM: trusted by nothing the emulator serves.
fn unrelated_ca_pem() -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "unrelated proxy CA");
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

/// Starts `wi emulator ARGS` in `cwd` with `TMPDIR=tmp` and waits for `env_file`
/// (relative to `cwd`) to hold its exports.
fn spawn_in(cwd: &Path, tmp: &Path, args: &[&str], env_file: &str) -> EmulatorProcess {
    let child = Command::new(wi_binary())
        .arg("emulator")
        .args(args)
        .args(["--env-file", env_file])
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wi emulator");
    let mut running = EmulatorProcess {
        child,
        exports: Vec::new(),
    };
    let path = cwd.join(env_file);
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && text.contains("WI_POLL_INTERVAL")
        {
            running.exports = parse_exports(&text);
            return running;
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!("wi emulator exited early: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "emulator did not write its env file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn gcloud_trusts_the_emulator_through_proxy_ca_bundles_and_paths_are_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    let home = dir.path().join("home");
    let tmp = dir.path().join("tmp");
    for d in [&cwd, &home, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_seed(&cwd.join("seed.yaml"));
    let emulator = spawn_in(
        &cwd,
        &tmp,
        &["--seed", "seed.yaml", "--state", "state.json"],
        "env.sh",
    );

    // Every path the env file exports is absolute and exists.
    for key in [
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "KUBECONFIG",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "CURL_CA_BUNDLE",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "NODE_EXTRA_CA_CERTS",
    ] {
        let value = emulator.var(key);
        let path = Path::new(&value);
        assert!(path.is_absolute(), "{key}={value} is not absolute");
        assert!(path.is_file(), "{key}={value} does not exist");
    }
    // They all name one bundle, which starts with the emulator's CA.
    let bundle = emulator.var("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE");
    for key in ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"] {
        assert_eq!(emulator.var(key), bundle, "{key}");
    }
    let text = std::fs::read_to_string(cwd.join("env.sh")).unwrap();
    assert!(
        text.starts_with("# The CA variables all name one bundle"),
        "{text}"
    );

    // A shell that trusts only an unrelated proxy CA sources the env file.
    let unrelated = dir.path().join("proxy-ca.pem");
    std::fs::write(&unrelated, unrelated_ca_pem()).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". '{}' && gcloud container clusters list --project {PROJECT} --format='value(name)'",
            cwd.join("env.sh").display()
        ))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("CLOUDSDK_CONFIG", dir.path().join("gcloud"))
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
        .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
        .env("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false")
        .env("REQUESTS_CA_BUNDLE", &unrelated)
        .env("SSL_CERT_FILE", &unrelated)
        .env("CURL_CA_BUNDLE", &unrelated)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gcloud failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<&str> = stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["east", "west"]);
}

#[test]
fn the_work_directory_is_removed_on_sigterm_unless_state_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();

    // No --state: the work directory under TMPDIR goes with the process.
    let mut emulator = EmulatorProcess::spawn(&[], &dir.path().join("env.sh"), Stdio::null());
    let token = emulator.var("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE");
    let work = Path::new(&token).parent().unwrap().to_path_buf();
    assert!(work.join("access-token").is_file());
    emulator.terminate();
    assert!(!work.exists(), "{} is still there", work.display());

    // With --state: kept for the next start.
    let state = dir.path().join("state.json");
    let mut emulator = EmulatorProcess::spawn(
        &[Path::new("--state").as_os_str(), state.as_os_str()],
        &dir.path().join("env2.sh"),
        Stdio::null(),
    );
    let token = emulator.var("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE");
    emulator.terminate();
    assert!(Path::new(&token).is_file(), "{token} was removed");
}
