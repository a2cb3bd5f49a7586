//! Start and shutdown: load or seed the world, bind the Google listeners
//! (reusing the previous ports after a restart), write the credential files,
//! start each cluster's Kubernetes API and the background tasks, and export
//! the variables that point gcloud, kubectl and `wi` here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::core::{Core, KubeRuntime, Paths, Stats};
use super::crypto;
use super::faults;
use super::google;
use super::kube::KubeClusterState;
use super::quota::Quota;
use super::router;
use super::seed;
use super::time::now_ms;
use super::world::{self, DEFAULT_PROJECT, EmulatorWorld, TlsMaterial, ensure_admin};
use super::{EmulatorConfig, EmulatorError};

/// Seed files larger than this report how long reading them took.
const LARGE_SEED_BYTES: usize = 1 << 20;

/// The file in the work directory that holds the emulator's CA followed by
/// the bundles the emulator's own environment trusted and the system bundle.
const CA_BUNDLE: &str = "ca-bundle.pem";

/// Variables that Python's requests, curl, OpenSSL, gRPC and Node read for
/// their trusted CAs; some of gcloud's paths prefer them over
/// `custom_ca_certs_file`, so each one names the bundle too.
const CA_BUNDLE_VARS: [&str; 5] = [
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NODE_EXTRA_CA_CERTS",
];

/// Where Linux distributions and macOS keep the system bundle.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The comment at the top of the env file and of the printed exports.
const CA_COMMENT: &str = "# The CA variables all name one bundle (the emulator's CA first, then the\n\
# bundles this shell trusted and the system's): gcloud, Python, curl, gRPC\n\
# and Node prefer some of them over custom_ca_certs_file, so a proxy bundle\n\
# exported in the shell would otherwise hide the emulator's CA.\n";

/// The emulator's CA, then every distinct bundle named by `CA_BUNDLE_VARS` in
/// this process's environment and the first system bundle found (each
/// unreadable one skipped; `own` is never read back).
fn ca_bundle(ca_pem: &str, own: &std::path::Path) -> String {
    let mut out = ca_pem.trim_end().to_string();
    out.push('\n');
    let mut seen: Vec<PathBuf> = Vec::new();
    let from_env = CA_BUNDLE_VARS
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from);
    let system = SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    for path in from_env.chain(system) {
        let canon = std::fs::canonicalize(&path).unwrap_or(path);
        if canon == own || seen.contains(&canon) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&canon)
            && text.contains("-----BEGIN CERTIFICATE-----")
        {
            out.push_str(text.trim_end());
            out.push('\n');
        }
        seen.push(canon);
    }
    out
}

/// Handles of the Google API listeners and background tasks.
pub(crate) struct StartedListeners {
    tls: axum_server::Handle<SocketAddr>,
    http_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Remove the work directory on shutdown (created here, no `--state`).
    remove_work_dir: bool,
}

/// `export K='V'` lines, after a comment on the CA variables when they are there.
pub(crate) fn env_script(env: &[(String, String)]) -> String {
    let comment = if env.iter().any(|(k, _)| k == CA_BUNDLE_VARS[0]) {
        CA_COMMENT
    } else {
        ""
    };
    let exports: String = env
        .iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', "'\\''")))
        .collect();
    format!("{comment}{exports}")
}

/// The export variables, in order: one endpoint override per Google API
/// (from `google::APIS`), then the credential files, project, kubeconfig and poll interval.
pub(crate) fn env(core: &Core) -> Vec<(String, String)> {
    let b = &core.base_url;
    let mut env = Vec::new();
    for api in google::APIS {
        env.push((
            format!("CLOUDSDK_API_ENDPOINT_OVERRIDES_{}", api.env),
            format!("{b}/{}/", api.prefix),
        ));
    }
    let p = |x: &PathBuf| x.display().to_string();
    let bundle = p(&core.cfg.work_dir.join(CA_BUNDLE));
    env.push(("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE".into(), bundle.clone()));
    for k in CA_BUNDLE_VARS {
        env.push((k.into(), bundle.clone()));
    }
    env.push((
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE".into(),
        p(&core.paths.token_file),
    ));
    env.push(("CLOUDSDK_CORE_PROJECT".into(), core.default_project()));
    env.push((
        "GOOGLE_APPLICATION_CREDENTIALS".into(),
        p(&core.paths.key_file),
    ));
    env.push(("KUBECONFIG".into(), p(&core.paths.kubeconfig)));
    // `wi` polls GKE operations every few seconds; emulated ones are short.
    let poll = (core.cfg.operation_duration / 4).clamp(
        std::time::Duration::from_millis(20),
        std::time::Duration::from_secs(1),
    );
    env.push(("WI_POLL_INTERVAL".into(), format!("{}ms", poll.as_millis())));
    env
}

/// The TLS material of the Google listeners: kept from the state file, else new.
fn make_tls(existing: Option<TlsMaterial>) -> Result<TlsMaterial, EmulatorError> {
    if let Some(t) = existing {
        return Ok(t);
    }
    let pki = crypto::google_listener_pki().map_err(|e| EmulatorError::Crypto(e.to_string()))?;
    Ok(TlsMaterial {
        ca_cert_pem: pki.ca_cert_pem,
        cert_pem: pki.serving_cert_pem,
        key_pem: pki.serving_key_pem,
    })
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> Result<(), EmulatorError> {
    world::write_atomic(path, bytes).map_err(|source| EmulatorError::Io {
        path: path.display().to_string(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(())
}

/// Starts an emulator.
pub(crate) async fn start(
    mut cfg: EmulatorConfig,
) -> Result<(Arc<Core>, StartedListeners), EmulatorError> {
    // Absolute, so the exported paths hold from any directory.
    let absolute = |p: &mut PathBuf| {
        if let Ok(a) = std::path::absolute(&*p) {
            *p = a;
        }
    };
    absolute(&mut cfg.work_dir);
    if let Some(p) = cfg.env_file.as_mut() {
        absolute(p);
    }
    if let Some(p) = cfg.state_file.as_mut() {
        absolute(p);
    }
    let rules = match &cfg.faults {
        Some(spec) => faults::parse(spec).map_err(EmulatorError::Faults)?,
        None => Vec::new(),
    };
    let prefixes: Vec<&str> = google::APIS.iter().map(|a| a.prefix).collect();
    let quota = match &cfg.quota {
        Some(spec) => Quota::parse(spec, &prefixes).map_err(EmulatorError::Quota)?,
        None => Quota::default(),
    };
    // A work directory this start creates without a state file to keep it
    // (the admin token and key inside) is removed again on shutdown.
    let remove_work_dir = cfg.state_file.is_none() && !cfg.work_dir.exists();
    std::fs::create_dir_all(&cfg.work_dir).map_err(|source| EmulatorError::Io {
        path: cfg.work_dir.display().to_string(),
        source,
    })?;
    let now = now_ms();
    let loaded = match &cfg.state_file {
        Some(p) => world::load(p)?,
        None => None,
    };
    let mut w = match loaded {
        Some(w) => w,
        None => {
            let mut w = EmulatorWorld {
                version: world::STATE_VERSION,
                ..EmulatorWorld::default()
            };
            match &cfg.seed {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| EmulatorError::Seed {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    let parsing = std::time::Instant::now();
                    let s = seed::parse(&text).map_err(|message| EmulatorError::Seed {
                        path: path.display().to_string(),
                        message,
                    })?;
                    if text.len() > LARGE_SEED_BYTES {
                        eprintln!(
                            "read {} ({} MB) in {:.1} s",
                            path.display(),
                            text.len() >> 20,
                            parsing.elapsed().as_secs_f64()
                        );
                    }
                    w.default_project = s.default_project().unwrap_or(DEFAULT_PROJECT).to_string();
                    ensure_admin(&mut w, now)?;
                    seed::apply(&s, &mut w, now).map_err(|message| EmulatorError::Seed {
                        path: path.display().to_string(),
                        message,
                    })?;
                }
                None => w.default_project = DEFAULT_PROJECT.into(),
            }
            w
        }
    };
    ensure_admin(&mut w, now)?;
    let tls = make_tls(w.tls.clone())?;
    w.tls = Some(tls.clone());

    // Listeners: reuse the previous ports after a restart when we may.
    let want_main = if cfg.listen.port() == 0 {
        w.main_port.unwrap_or(0)
    } else {
        cfg.listen.port()
    };
    let main = std::net::TcpListener::bind(SocketAddr::new(cfg.listen.ip(), want_main))
        .or_else(|e| {
            if cfg.listen.port() == 0 {
                std::net::TcpListener::bind(cfg.listen)
            } else {
                Err(e)
            }
        })
        .map_err(|source| EmulatorError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    main.set_nonblocking(true)
        .map_err(|source| EmulatorError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    let main_addr = main.local_addr().map_err(|source| EmulatorError::Listen {
        addr: cfg.listen.to_string(),
        source,
    })?;
    let http_std =
        std::net::TcpListener::bind(SocketAddr::new(main_addr.ip(), w.http_port.unwrap_or(0)))
            .or_else(|_| std::net::TcpListener::bind(SocketAddr::new(main_addr.ip(), 0)))
            .map_err(|source| EmulatorError::Listen {
                addr: main_addr.ip().to_string(),
                source,
            })?;
    http_std
        .set_nonblocking(true)
        .map_err(|source| EmulatorError::Listen {
            addr: main_addr.ip().to_string(),
            source,
        })?;
    let http_addr = http_std
        .local_addr()
        .map_err(|source| EmulatorError::Listen {
            addr: main_addr.ip().to_string(),
            source,
        })?;
    w.main_port = Some(main_addr.port());
    w.http_port = Some(http_addr.port());

    let host = match main_addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let paths = Paths {
        token_file: cfg.work_dir.join("access-token"),
        key_file: cfg.work_dir.join("application_default_credentials.json"),
        kubeconfig: cfg.work_dir.join("kubeconfig"),
        ca_file: cfg.work_dir.join("ca.pem"),
    };
    let rng = match cfg.fault_seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_entropy(),
    };
    let cluster_keys: Vec<String> = w.clusters.keys().cloned().collect();
    let admin = w.admin.clone();
    let default_project = w.default_project.clone();
    let core = Arc::new_cyclic(|me| Core {
        world: Mutex::new(w),
        rules,
        rng: Mutex::new(rng),
        stats: Mutex::new(Stats::default()),
        quota,
        requests: Default::default(),
        kube: Mutex::new(BTreeMap::new()),
        redirects: Mutex::new(BTreeMap::new()),
        persist_lock: Mutex::new(()),
        kubeconfig_lock: Mutex::new(String::new()),
        dirty: tokio::sync::Notify::new(),
        stopping: AtomicBool::new(false),
        me: me.clone(),
        base_url: format!("https://{host}:{}", main_addr.port()),
        http_url: format!("http://{host}:{}", http_addr.port()),
        paths,
        cfg,
    });

    // Credential files.
    let write = |path: &PathBuf, bytes: &[u8]| write_private(path, bytes);
    write(&core.paths.ca_file, tls.ca_cert_pem.as_bytes())?;
    let bundle = core.cfg.work_dir.join(CA_BUNDLE);
    write(&bundle, ca_bundle(&tls.ca_cert_pem, &bundle).as_bytes())?;
    if let Some(a) = &admin {
        write(&core.paths.token_file, a.user_token.as_bytes())?;
        let key_json = core.key_file_json(
            &default_project,
            &a.key_id,
            &a.sa_email,
            "100000000000000000001",
            &a.private_key_pem,
        );
        let text = serde_json::to_vec_pretty(&key_json).unwrap_or_default();
        write(&core.paths.key_file, &text)?;
    }

    // Listeners.
    let app = router::router(core.clone());
    let tls_cfg = RustlsConfig::from_pem(tls.cert_pem.into_bytes(), tls.key_pem.into_bytes())
        .await
        .map_err(|e| EmulatorError::Crypto(e.to_string()))?;
    let tls_handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(main, tls_cfg)
        .map_err(|source| EmulatorError::Listen {
            addr: main_addr.to_string(),
            source,
        })?
        .handle(tls_handle.clone());
    let mut tasks = Vec::new();
    let r1 = app.clone();
    tasks.push(tokio::spawn(async move {
        let _ = server.serve(r1.into_make_service()).await;
    }));
    let http_listener =
        tokio::net::TcpListener::from_std(http_std).map_err(|source| EmulatorError::Listen {
            addr: http_addr.to_string(),
            source,
        })?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(http_listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    }));

    let starting = std::time::Instant::now();
    let clusters = cluster_keys.len();
    for key in cluster_keys {
        core.start_cluster_api(&key).await;
    }
    if clusters > 10 {
        eprintln!(
            "started {clusters} Kubernetes APIs in {:.1} s",
            starting.elapsed().as_secs_f64()
        );
    }
    core.write_kubeconfig();
    core.persist();

    // Background: finish operations, persist Kubernetes changes.
    let c = core.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if c.stopping.load(Ordering::SeqCst) {
                break;
            }
            router::tick(&c).await;
        }
    }));
    let c = core.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            c.dirty.notified().await;
            if c.stopping.load(Ordering::SeqCst) {
                break;
            }
            let c2 = c.clone();
            let _ = tokio::task::spawn_blocking(move || c2.persist()).await;
        }
    }));

    if let Some(path) = &core.cfg.env_file {
        world::write_atomic(path, env_script(&env(&core)).as_bytes()).map_err(|source| {
            EmulatorError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    Ok((
        core,
        StartedListeners {
            tls: tls_handle,
            http_shutdown: Some(tx),
            tasks,
            remove_work_dir,
        },
    ))
}

/// Stops everything and writes the state a last time.
pub(crate) async fn shutdown(core: Arc<Core>, mut listeners: StartedListeners) {
    core.stopping.store(true, Ordering::SeqCst);
    core.dirty.notify_one();
    listeners.tls.shutdown();
    if let Some(tx) = listeners.http_shutdown.take() {
        let _ = tx.send(());
    }
    let runtimes: Vec<KubeRuntime> = {
        let mut k = core.kube.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *k).into_values().collect()
    };
    // Snapshot the clusters before dropping them.
    {
        let snaps: Vec<(String, KubeClusterState)> = runtimes
            .iter()
            .map(|r| {
                let id = r.cluster.identity();
                (
                    world::cluster_key(&id.project, &id.location, &id.name),
                    r.cluster.snapshot(),
                )
            })
            .collect();
        let mut w = core.world();
        for (k, s) in snaps {
            if w.clusters.contains_key(&k) {
                w.kube.insert(k, s);
            }
        }
    }
    for r in &runtimes {
        r.handle.shutdown();
    }
    core.persist();
    for t in listeners.tasks.drain(..) {
        t.abort();
    }
    if listeners.remove_work_dir {
        let _ = std::fs::remove_dir_all(&core.cfg.work_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_shell_quoted() {
        let env = vec![("A".to_string(), "it's".to_string())];
        assert_eq!(env_script(&env), "export A='it'\\''s'\n");
    }
}
