//! The shared harness of the engine's end-to-end tests: an emulator started
//! in-process on loopback, and the real `wi`, `gcloud` and `kubectl`
//! binaries run against it with a clean environment and a temporary HOME.

#![allow(dead_code, unused_macros)]

/// Prints a summary line straight to stderr: libtest captures `println!`
/// of passing tests, and these totals belong in the CI log.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use wi::emulator::{Emulator, EmulatorConfig};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One emulated world and the tools pointed at it.
pub struct World {
    pub emulator: Option<Emulator>,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub project: String,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with everything printed unless the command exited with `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl World {
    /// Starts an emulator with the given seed file (relative to the repo root).
    pub async fn start(seed: &str) -> World {
        Self::start_with(seed, |_| {}).await
    }

    pub async fn start_with(seed: &str, tweak: impl FnOnce(&mut EmulatorConfig)) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = EmulatorConfig {
            seed: Some(root().join(seed)),
            work_dir: dir.path().join("emulator"),
            operation_duration: Duration::from_millis(300),
            ..Default::default()
        };
        tweak(&mut config);
        std::fs::create_dir_all(&config.work_dir).expect("work dir");
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let env = emulator.env();
        let project = emulator.default_project();
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::create_dir_all(dir.path().join("gcloud")).expect("gcloud config");
        World {
            emulator: Some(emulator),
            dir,
            env,
            project,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command with a clean environment pointed at the emulator.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("CLOUDSDK_CONFIG", self.dir.path().join("gcloud"))
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "1")
            .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "1")
            .env("NO_COLOR", "1")
            .env("WI_POLL_INTERVAL", "50ms")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(root())
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs the real `wi` binary.
    pub fn wi(&self, args: &[&str]) -> Run {
        let out = self
            .command(env!("CARGO_BIN_EXE_wi"))
            .args(args)
            .output()
            .expect("run wi");
        out.into()
    }

    /// Runs the installed gcloud CLI (fails the test if it is missing).
    pub fn gcloud(&self, args: &[&str]) -> Run {
        let out = self
            .command("gcloud")
            .args(args)
            .arg("--quiet")
            .output()
            .expect("gcloud must be installed: the end-to-end tests use the real CLI");
        out.into()
    }

    /// Runs the installed kubectl against a cluster's context (fails if missing).
    pub fn kubectl(&self, cluster_context: &str, args: &[&str]) -> Run {
        let out = self
            .command("kubectl")
            .arg("--context")
            .arg(cluster_context)
            .args(args)
            .output()
            .expect("kubectl must be installed: the end-to-end tests use the real CLI");
        out.into()
    }

    /// gcloud's context name of a cluster: `gke_PROJECT_LOCATION_NAME`.
    pub fn context(&self, location: &str, name: &str) -> String {
        format!("gke_{}_{}_{}", self.project, location, name)
    }

    /// Writes a file in the test's directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.emulator.take() {
            e.shutdown().await;
        }
    }
}

/// Reads a file of the repository.
pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(root().join(path)).expect("read file")
}

impl World {
    /// Runs `wi` with extra variables set and some of the emulator's removed.
    pub fn wi_env(&self, args: &[&str], set: &[(&str, &str)], unset: &[&str]) -> Run {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_wi"));
        for k in unset {
            cmd.env_remove(k);
        }
        cmd.envs(set.iter().copied()).args(args);
        cmd.output().expect("run wi").into()
    }
}

impl World {
    /// `wi`'s own Google client, configured from the emulator's exports.
    pub async fn gcp(&self) -> wi::gcp::GcpClient {
        let env: std::collections::BTreeMap<String, String> = self.env.iter().cloned().collect();
        let get = |k: &str| env.get(k).cloned();
        let tokens = wi::gcp::token_source_from_env(get).await.expect("tokens");
        wi::gcp::GcpClient::new(
            wi::gcp::Endpoints::from_env_vars(get).expect("endpoints"),
            tokens,
            wi::gcp::ClientOptions::from_env_vars(get),
        )
        .expect("client")
    }

    /// A Kubernetes connection to one of the world's clusters.
    pub async fn kube(&self, location: &str, name: &str) -> wi::kube::ClusterConnection {
        let gcp = self.gcp().await;
        let key = wi::spec::ClusterKey {
            project: self.project.clone(),
            location: location.into(),
            name: name.into(),
        };
        let cluster = gcp
            .get_cluster(&key)
            .await
            .expect("cluster")
            .expect("exists");
        let token = gcp.access_token().await.expect("token");
        wi::live::connect_cluster(&cluster, token, None)
            .await
            .expect("connect")
    }
}
