//! The emulated world a test runs against: the emulator started in-process on
//! loopback with a temporary work directory, and `wi`'s own Google and
//! Kubernetes clients configured from its exports.

use std::path::PathBuf;
use std::time::Duration;

use wi::emulator::{Emulator, EmulatorConfig};

use super::root;

/// How long every emulated long-running operation takes in tests, unless a
/// test says otherwise: long enough to be seen RUNNING, short enough to wait.
pub const OPERATION_DURATION: Duration = Duration::from_millis(300);

/// The one set of emulator defaults of the tests, with its work directory.
pub fn test_config(work_dir: PathBuf) -> EmulatorConfig {
    EmulatorConfig {
        work_dir,
        operation_duration: OPERATION_DURATION,
        ..EmulatorConfig::default()
    }
}

/// One emulated world and the tools pointed at it.
pub struct TestWorld {
    pub emulator: Option<Emulator>,
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub project: String,
}

impl TestWorld {
    /// Starts an emulator with the given seed file (relative to the repo root).
    pub async fn start(seed: &str) -> TestWorld {
        Self::start_with(seed, |_| {}).await
    }

    pub async fn start_with(seed: &str, tweak: impl FnOnce(&mut EmulatorConfig)) -> TestWorld {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = EmulatorConfig {
            seed: Some(root().join(seed)),
            ..test_config(dir.path().join("emulator"))
        };
        tweak(&mut config);
        std::fs::create_dir_all(&config.work_dir).expect("work dir");
        let started = std::time::Instant::now();
        let emulator = Emulator::start(config).await.expect("emulator starts");
        timing("emulator start", started);
        let env = emulator.env();
        let project = emulator.default_project();
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::create_dir_all(dir.path().join("gcloud")).expect("gcloud config");
        TestWorld {
            emulator: Some(emulator),
            dir,
            env,
            project,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
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

impl TestWorld {
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

/// A running in-process emulator without a seed and an HTTPS client for it
/// (the API-level tests call it, see [`super::http`]); same defaults as
/// [`TestWorld`].
pub struct TestEmu {
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub token: String,
    pub project: String,
    /// Schema problems of this emulator's answers (see `TestEmu::schema_problems`).
    pub problems: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Installs the ring provider (once).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts an emulator; `tweak` adjusts the config (tests use short operations).
pub async fn start(tweak: impl FnOnce(&mut EmulatorConfig)) -> TestEmu {
    init_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = test_config(dir.path().join("work"));
    tweak(&mut cfg);
    let started = std::time::Instant::now();
    let emu = Emulator::start(cfg).await.expect("emulator starts");
    timing("emulator start", started);
    let ca = std::fs::read(emu.ca_file().expect("ca")).expect("read ca");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca pem")])
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let token = emu.admin_token();
    let project = emu.default_project();
    TestEmu {
        emu,
        dir,
        client,
        token,
        project,
        problems: Default::default(),
    }
}

/// With `WI_TEST_TIMING` set, prints how long a step of the harness took.
pub fn timing(what: &str, started: std::time::Instant) {
    if std::env::var_os("WI_TEST_TIMING").is_some() {
        report!(
            "timing {:>7.3}s {what} [{}]",
            started.elapsed().as_secs_f64(),
            std::thread::current().name().unwrap_or("?")
        );
    }
}
