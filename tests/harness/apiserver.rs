//! Test harness that runs the real upstream `kube-apiserver` (and its etcd) on loopback.
//!
//! Why: our Kubernetes emulator must behave like the real API server (server-side apply,
//! managed fields, RBAC, TokenRequest, status codes and reasons). Tests that run the same
//! scenario against both need the real thing; there is no Docker here, so
//! `.ci/build-kube-apiserver` builds the binaries from the Go module proxy and this module
//! starts them: etcd on free loopback ports (`--unsafe-no-fsync`, data in a temp dir), then
//! kube-apiserver with our own CA and serving certificate, an RSA service-account signing key
//! (TokenRequest works), RBAC, a static admin token (group `system:masters`) and optionally
//! a TokenReview webhook (the emulator's `POST /authn/tokenreview`) so Google access tokens
//! authenticate as their e-mail, as on GKE.
//!
//! Part of the test harness: `use crate::harness::apiserver;` (the `apiserver`
//! test binary uses it).
//!
//! Cleanup: `Drop` kills both processes (kill + wait) and removes the temp dir, also when a
//! test panics. A watchdog shell process does the same if the test process dies without
//! unwinding (abort, SIGKILL) or if the server lives in a `static` (see [`shared`]).
//!
//! Not running (no kube-controller-manager): namespace deletion never finishes, no `default`
//! ServiceAccount per namespace, no garbage collection, aggregated ClusterRoles
//! (`admin`/`edit`/`view`) have no rules. Use unique namespace names per test.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Environment variable naming the kube-apiserver binary (skips the build script).
pub const APISERVER_BIN_ENV: &str = "WI_KUBE_APISERVER_BIN";
/// Environment variable naming the etcd binary (skips the build script).
pub const ETCD_BIN_ENV: &str = "WI_ETCD_BIN";
/// When set, `Drop` copies the two logs into this directory (for CI artifacts).
pub const LOG_DIR_ENV: &str = "WI_APISERVER_LOG_DIR";
/// Username of the static admin token (member of `system:masters`).
pub const ADMIN_USER: &str = "wi-test-admin";

/// A static bearer token user added to `--token-auth-file`.
#[derive(Clone)]
pub struct StaticTokenUser {
    /// The bearer token.
    pub token: String,
    /// The username the token authenticates as.
    pub user: String,
    /// Extra groups (besides `system:authenticated`).
    pub groups: Vec<String>,
}

/// How to start the real API server. `Default` gives a GKE-like setup without a webhook.
#[derive(Debug, Clone)]
pub struct ApiServerOptions {
    /// TokenReview webhook URL (`http://` or `https://`), e.g. the emulator's
    /// `http://127.0.0.1:PORT/authn/tokenreview`. When set, the API server asks it about
    /// every bearer token that is neither a static token nor a service-account JWT.
    pub token_webhook_url: Option<String>,
    /// CA (PEM) that signs the webhook's serving certificate, for an `https://` webhook.
    pub token_webhook_ca_pem: Option<String>,
    /// `--authentication-token-webhook-cache-ttl`; the default `0s` disables the cache so
    /// each request reaches the webhook (GKE caches; tests want no stale answers).
    pub token_webhook_cache_ttl: String,
    /// `--service-account-issuer`; default `https://kubernetes.default.svc.cluster.local`.
    pub service_account_issuer: Option<String>,
    /// `--api-audiences`; default: the issuer.
    pub api_audiences: Vec<String>,
    /// More static token users (the admin token is always there).
    pub static_users: Vec<StaticTokenUser>,
    /// Extra kube-apiserver flags, appended last (they win over ours).
    pub extra_apiserver_args: Vec<String>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        Self {
            token_webhook_url: None,
            token_webhook_ca_pem: None,
            token_webhook_cache_ttl: "0s".to_string(),
            service_account_issuer: None,
            api_audiences: Vec::new(),
            static_users: Vec::new(),
            extra_apiserver_args: Vec::new(),
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// Where the two binaries live.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Path of `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// Path of `etcd`.
    pub etcd: PathBuf,
}

/// A running etcd + kube-apiserver pair; dropped = stopped and cleaned up.
/// `Debug` leaves the admin token out.
pub struct RealApiServer {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The secure port on 127.0.0.1.
    pub port: u16,
    /// PEM of the CA that signed the serving certificate (trust this, nothing else).
    pub ca_pem: String,
    /// Bearer token of [`ADMIN_USER`] (group `system:masters`). Never print it.
    pub admin_token: String,
    /// The `--service-account-issuer` in use.
    pub service_account_issuer: String,
    /// Wall time from `start` to `/readyz` = 200.
    pub startup: Duration,
    /// `http://127.0.0.1:PORT` of etcd.
    pub etcd_url: String,
    dir: PathBuf,
    procs: Mutex<Procs>,
}

impl std::fmt::Debug for StaticTokenUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokenUser")
            .field("token", &"<redacted>")
            .field("user", &self.user)
            .field("groups", &self.groups)
            .finish()
    }
}

impl std::fmt::Debug for RealApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealApiServer")
            .field("url", &self.url)
            .field("admin_token", &"<redacted>")
            .field("service_account_issuer", &self.service_account_issuer)
            .field("startup", &self.startup)
            .field("etcd_url", &self.etcd_url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Procs {
    etcd: Option<Child>,
    apiserver: Option<Child>,
    watchdog: Option<Child>,
}

/// Finds the binaries: both `WI_KUBE_APISERVER_BIN` and `WI_ETCD_BIN` if set, else the
/// paths printed by `.ci/build-kube-apiserver` (which builds them on a cache miss; that
/// takes many minutes the first time).
pub fn find_binaries() -> Result<Binaries, String> {
    let api_env = std::env::var_os(APISERVER_BIN_ENV).filter(|v| !v.is_empty());
    let etcd_env = std::env::var_os(ETCD_BIN_ENV).filter(|v| !v.is_empty());
    let bins = match (api_env, etcd_env) {
        (Some(api), Some(etcd)) => Binaries {
            kube_apiserver: PathBuf::from(api),
            etcd: PathBuf::from(etcd),
        },
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "set both {APISERVER_BIN_ENV} and {ETCD_BIN_ENV}, or neither (then .ci/build-kube-apiserver is used)"
            ));
        }
        (None, None) => run_build_script()?,
    };
    for path in [&bins.kube_apiserver, &bins.etcd] {
        if !path.is_file() {
            return Err(format!("binary {} does not exist", path.display()));
        }
    }
    Ok(bins)
}

fn run_build_script() -> Result<Binaries, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/build-kube-apiserver");
    eprintln!(
        "apiserver harness: running {} (a cold build takes many minutes)",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); kube-apiserver/etcd are missing and could not be built:\n{}",
            script.display(),
            out.status,
            stderr.trim_end()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut api = None;
    let mut etcd = None;
    for line in stdout.lines() {
        if let Some(v) = line.strip_prefix(&format!("{APISERVER_BIN_ENV}=")) {
            api = Some(PathBuf::from(v));
        } else if let Some(v) = line.strip_prefix(&format!("{ETCD_BIN_ENV}=")) {
            etcd = Some(PathBuf::from(v));
        }
    }
    match (api, etcd) {
        (Some(kube_apiserver), Some(etcd)) => Ok(Binaries {
            kube_apiserver,
            etcd,
        }),
        _ => Err(format!(
            "{} printed no binary paths: {stdout}",
            script.display()
        )),
    }
}

/// Starts etcd and kube-apiserver and waits until `/readyz` answers 200 (async: call it
/// inside a tokio runtime; the returned value holds no runtime resources and may outlive it).
/// Install the rustls ring provider before calling (it uses reqwest).
pub async fn start(opts: ApiServerOptions) -> Result<RealApiServer, String> {
    let bins = tokio::task::spawn_blocking(find_binaries)
        .await
        .map_err(|e| format!("binary lookup panicked: {e}"))??;
    // Free ports are picked by binding :0 and releasing; another process may grab one in
    // between, so retry the whole start a few times on a bind failure.
    let mut last = String::new();
    for _ in 0..3 {
        match start_with(&bins, &opts).await {
            Ok(server) => return Ok(server),
            Err(StartError::PortTaken(msg)) => last = msg,
            Err(StartError::Other(msg)) => return Err(msg),
        }
    }
    Err(last)
}

static SHARED: tokio::sync::OnceCell<Result<RealApiServer, String>> =
    tokio::sync::OnceCell::const_new();

/// One API server per test binary, started on first use with default options (plus
/// `webhook_url` as the TokenReview webhook, only honoured by the first caller). It is never
/// dropped; the watchdog stops it and removes its directory when the test process exits.
///
/// Each `#[tokio::test]` has its own runtime, so a webhook server spawned inside one test
/// dies with it: serve the webhook for a shared API server from a runtime that lives as long
/// as the process (e.g. a `std::thread` running its own tokio runtime), and give every test
/// its own namespace.
pub async fn shared(webhook_url: Option<String>) -> Result<&'static RealApiServer, String> {
    SHARED
        .get_or_init(|| async move {
            start(ApiServerOptions {
                token_webhook_url: webhook_url,
                ..ApiServerOptions::default()
            })
            .await
        })
        .await
        .as_ref()
        .map_err(Clone::clone)
}

enum StartError {
    PortTaken(String),
    Other(String),
}

impl From<String> for StartError {
    fn from(s: String) -> Self {
        StartError::Other(s)
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}

fn make_temp_dir() -> Result<PathBuf, String> {
    // tmpfs when available: etcd's writes then never touch the disk.
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("wi-apiserver-");
        b
    };
    let dir = if shm.is_dir() {
        builder.tempdir_in(shm).or_else(|_| builder.tempdir())
    } else {
        builder.tempdir()
    }
    .map_err(|e| format!("cannot create temp dir: {e}"))?;
    // Ownership moves to RealApiServer (removed in Drop / by the watchdog).
    Ok(dir.keep())
}

struct Pki {
    ca_pem: String,
    serving_cert_pem: String,
    serving_key_pem: String,
    sa_private_pem: String,
    sa_public_pem: String,
}

fn make_pki() -> Result<Pki, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    let e = |what: &str, err: rcgen::Error| format!("{what}: {err}");

    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "wi test apiserver CA");
    ca_params.distinguished_name = dn;
    let ca_key = KeyPair::generate().map_err(|x| e("CA key", x))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|x| e("CA cert", x))?;

    let mut leaf = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .map_err(|x| e("serving params", x))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    leaf.distinguished_name = dn;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(|x| e("serving key", x))?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca)
        .map_err(|x| e("serving cert", x))?;

    // ring cannot generate RSA keys; the pure-Rust rsa crate can. Service-account tokens
    // are RS256 as in real clusters.
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let sa = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .map_err(|x| format!("service-account RSA key: {x}"))?;
    let sa_private_pem = sa
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|x| format!("service-account key PEM: {x}"))?
        .to_string();
    let sa_public_pem = sa
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|x| format!("service-account public key PEM: {x}"))?;

    Ok(Pki {
        ca_pem: ca.pem(),
        serving_cert_pem: leaf_cert.pem(),
        serving_key_pem: leaf_key.serialize_pem(),
        sa_private_pem,
        sa_public_pem,
    })
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The kubeconfig-format file the API server reads to call the TokenReview webhook.
fn webhook_kubeconfig(url: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    let mut cluster = format!("    server: {}\n", serde_json::Value::from(url));
    if let Some(ca) = ca_pem {
        let _ = writeln!(
            cluster,
            "    certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(ca)
        );
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: token-webhook\n  cluster:\n{cluster}users:\n- name: kube-apiserver\n  user: {{}}\ncontexts:\n- name: webhook\n  context:\n    cluster: token-webhook\n    user: kube-apiserver\ncurrent-context: webhook\n"
    )
}

fn spawn_logged(bin: &Path, args: &[String], log: &Path) -> Result<Child, String> {
    let out = fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("clone {}: {e}", log.display()))?;
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))
}

/// The last `lines` lines of a log file (lossy UTF-8), for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn watchdog(dir: &Path, pids: &[u32]) -> Result<Child, String> {
    // Stops the servers and removes the dir once this test process is gone (abort,
    // SIGKILL, or a `static` server that is never dropped).
    let script = r#"p=$1; d=$2; shift 2
while kill -0 "$p" 2>/dev/null; do sleep 1; done
kill "$@" 2>/dev/null; sleep 2; kill -9 "$@" 2>/dev/null; rm -rf "$d""#;
    let mut args = vec![
        "-c".to_string(),
        script.to_string(),
        "wi-apiserver-watchdog".to_string(),
        std::process::id().to_string(),
        dir.display().to_string(),
    ];
    args.extend(pids.iter().map(u32::to_string));
    Command::new("sh")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn watchdog: {e}"))
}

async fn start_with(bins: &Binaries, opts: &ApiServerOptions) -> Result<RealApiServer, StartError> {
    let begun = Instant::now();
    let dir = make_temp_dir()?;
    // From here on `server` owns the dir and processes: any early return drops it (cleanup).
    let mut server = RealApiServer {
        url: String::new(),
        port: 0,
        ca_pem: String::new(),
        admin_token: random_token(),
        service_account_issuer: opts
            .service_account_issuer
            .clone()
            .unwrap_or_else(|| "https://kubernetes.default.svc.cluster.local".to_string()),
        startup: Duration::ZERO,
        etcd_url: String::new(),
        dir: dir.clone(),
        procs: Mutex::new(Procs {
            etcd: None,
            apiserver: None,
            watchdog: None,
        }),
    };

    let pki = tokio::task::spawn_blocking(make_pki)
        .await
        .map_err(|e| format!("PKI generation panicked: {e}"))??;
    server.ca_pem = pki.ca_pem.clone();
    let p = |name: &str| dir.join(name);
    write(&p("ca.crt"), &pki.ca_pem)?;
    write(&p("serving.crt"), &pki.serving_cert_pem)?;
    write(&p("serving.key"), &pki.serving_key_pem)?;
    write(&p("sa.key"), &pki.sa_private_pem)?;
    write(&p("sa.pub"), &pki.sa_public_pem)?;

    let mut tokens = format!(
        "{},{},{},{}\n",
        server.admin_token,
        ADMIN_USER,
        "wi-test-admin-uid",
        csv_field("system:masters")
    );
    for (i, u) in opts.static_users.iter().enumerate() {
        let _ = writeln!(
            tokens,
            "{},{},{},{}",
            u.token,
            csv_field(&u.user),
            format_args!("static-user-{i}"),
            csv_field(&u.groups.join(","))
        );
    }
    write(&p("tokens.csv"), &tokens)?;

    let etcd_client = free_port()?;
    let etcd_peer = free_port()?;
    let port = free_port()?;
    server.etcd_url = format!("http://127.0.0.1:{etcd_client}");
    server.port = port;
    server.url = format!("https://127.0.0.1:{port}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");

    let etcd_args: Vec<String> = vec![
        "--name=wi-test".into(),
        format!("--data-dir={}", p("etcd").display()),
        format!("--listen-client-urls={}", server.etcd_url),
        format!("--advertise-client-urls={}", server.etcd_url),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=wi-test={peer_url}"),
        "--unsafe-no-fsync".into(),
        "--log-level=warn".into(),
    ];
    let etcd = spawn_logged(&bins.etcd, &etcd_args, &p("etcd.log"))?;
    server.lock().etcd = Some(etcd);

    let mut args: Vec<String> = vec![
        format!("--etcd-servers={}", server.etcd_url),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", p("certs").display()),
        format!("--tls-cert-file={}", p("serving.crt").display()),
        format!("--tls-private-key-file={}", p("serving.key").display()),
        format!("--client-ca-file={}", p("ca.crt").display()),
        format!("--token-auth-file={}", p("tokens.csv").display()),
        "--authorization-mode=RBAC".into(),
        format!("--service-account-issuer={}", server.service_account_issuer),
        format!("--service-account-key-file={}", p("sa.pub").display()),
        format!(
            "--service-account-signing-key-file={}",
            p("sa.key").display()
        ),
        format!(
            "--api-audiences={}",
            if opts.api_audiences.is_empty() {
                server.service_account_issuer.clone()
            } else {
                opts.api_audiences.join(",")
            }
        ),
        "--service-cluster-ip-range=10.0.0.0/24".into(),
        "--endpoint-reconciler-type=none".into(),
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
        "--allow-privileged=true".into(),
    ];
    if let Some(url) = &opts.token_webhook_url {
        write(
            &p("token-webhook.kubeconfig"),
            &webhook_kubeconfig(url, opts.token_webhook_ca_pem.as_deref()),
        )?;
        args.push(format!(
            "--authentication-token-webhook-config-file={}",
            p("token-webhook.kubeconfig").display()
        ));
        args.push("--authentication-token-webhook-version=v1".into());
        args.push(format!(
            "--authentication-token-webhook-cache-ttl={}",
            opts.token_webhook_cache_ttl
        ));
    }
    args.extend(opts.extra_apiserver_args.iter().cloned());
    let apiserver = spawn_logged(&bins.kube_apiserver, &args, &p("kube-apiserver.log"))?;
    server.lock().apiserver = Some(apiserver);

    let pids: Vec<u32> = {
        let procs = server.lock();
        [procs.etcd.as_ref(), procs.apiserver.as_ref()]
            .into_iter()
            .flatten()
            .map(Child::id)
            .collect()
    };
    let dog = watchdog(&dir, &pids)?;
    server.lock().watchdog = Some(dog);

    server.wait_ready(opts.ready_timeout).await?;
    server.startup = begun.elapsed();
    Ok(server)
}

impl RealApiServer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Procs> {
        self.procs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The temporary directory (certs, keys, logs, etcd data); removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the kube-apiserver log (stdout + stderr).
    pub fn apiserver_log(&self) -> PathBuf {
        self.dir.join("kube-apiserver.log")
    }

    /// Path of the etcd log (stdout + stderr).
    pub fn etcd_log(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// `127.0.0.1:PORT`, the form GKE's `endpoint` field takes.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA as base64 PEM, the form of GKE's `masterAuth.clusterCaCertificate`.
    pub fn ca_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    /// Process ids of (etcd, kube-apiserver), while they run.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        let procs = self.lock();
        (
            procs.etcd.as_ref().map(Child::id),
            procs.apiserver.as_ref().map(Child::id),
        )
    }

    /// An in-memory kubeconfig for this server with `token` as bearer token.
    pub fn kubeconfig(&self, token: &str) -> Result<kube::config::Kubeconfig, String> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "real-apiserver", "cluster": {
                "server": self.url,
                "certificate-authority-data": self.ca_base64(),
            }}],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "real-apiserver", "context": {
                "cluster": "real-apiserver", "user": "user",
            }}],
            "current-context": "real-apiserver",
        }))
        .map_err(|e| format!("kubeconfig: {e}"))
    }

    /// A kube client that authenticates with `token` (install the ring provider first).
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client, String> {
        let config = kube::Config::from_custom_kubeconfig(
            self.kubeconfig(token)?,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| format!("kube config: {e}"))?;
        kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))
    }

    /// A kube client for the `system:masters` admin.
    pub async fn admin_client(&self) -> Result<kube::Client, String> {
        self.client_with_token(&self.admin_token).await
    }

    /// Creates a namespace named `<prefix>-<8 random hex>` as admin and returns its name.
    /// Namespaces cannot be deleted here (no controller-manager), so never reuse names.
    pub async fn create_unique_namespace(&self, prefix: &str) -> Result<String, String> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = format!("{prefix}-{}", &random_token()[..8]);
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        kube::Api::<Namespace>::all(self.admin_client().await?)
            .create(&kube::api::PostParams::default(), &ns)
            .await
            .map_err(|e| format!("create namespace {name}: {e}"))?;
        Ok(name)
    }

    fn failure(&self, why: &str) -> String {
        format!(
            "real kube-apiserver at {} {why}\n--- kube-apiserver log (tail, {}) ---\n{}\n--- etcd log (tail, {}) ---\n{}",
            self.url,
            self.apiserver_log().display(),
            log_tail(&self.apiserver_log(), 40),
            self.etcd_log().display(),
            log_tail(&self.etcd_log(), 10),
        )
    }

    /// Whether a process exited; `Some(description)` if so.
    fn exited(&self) -> Option<String> {
        let mut guard = self.lock();
        let procs = &mut *guard;
        for (name, child) in [
            ("etcd", procs.etcd.as_mut()),
            ("kube-apiserver", procs.apiserver.as_mut()),
        ] {
            if let Some(c) = child
                && let Ok(Some(status)) = c.try_wait()
            {
                return Some(format!("{name} exited early ({status})"));
            }
        }
        None
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), StartError> {
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem.as_bytes())
                .map_err(|e| format!("CA for reqwest: {e}"))?])
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("reqwest client: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(why) = self.exited() {
                let msg = self.failure(&why);
                let taken = msg.contains("address already in use");
                return Err(if taken {
                    StartError::PortTaken(msg)
                } else {
                    StartError::Other(msg)
                });
            }
            match http
                .get(format!("{}/readyz", self.url))
                .bearer_auth(&self.admin_token)
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    let failed: Vec<&str> = body.lines().filter(|l| l.contains("failed")).collect();
                    last = format!("/readyz {status}: {}", failed.join("; "));
                }
                Err(e) => last = format!("/readyz: {e}"),
            }
            if Instant::now() >= deadline {
                return Err(StartError::Other(
                    self.failure(&format!("not ready after {timeout:?} (last: {last})")),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for RealApiServer {
    fn drop(&mut self) {
        let mut procs = self.lock();
        // Watchdog first, so it cannot signal reused pids later.
        for child in [
            procs.watchdog.take(),
            procs.apiserver.take(),
            procs.etcd.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(procs);
        if let Some(logs) = std::env::var_os(LOG_DIR_ENV).filter(|v| !v.is_empty()) {
            let logs = PathBuf::from(logs);
            let _ = fs::create_dir_all(&logs);
            for name in ["kube-apiserver.log", "etcd.log"] {
                let _ = fs::copy(
                    self.dir.join(name),
                    logs.join(format!("{}-{name}", self.port)),
                );
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
