//! `wi emulator`: run the local GKE / IAM / Kubernetes emulator until
//! SIGINT/SIGTERM, printing the `export` lines that point gcloud, kubectl and
//! `wi` at it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{CliError, Success};
use super::settings::Settings;
use crate::emulator::{Emulator, EmulatorConfig};

/// Arguments of `wi emulator` (boxed: they are large next to the other commands').
#[derive(Debug, clap::Args)]
pub(crate) struct EmulatorArgs {
    #[command(flatten)]
    pub opts: Box<EmulatorOpts>,
}

/// The options of `wi emulator`.
#[derive(Debug, clap::Args)]
pub(crate) struct EmulatorOpts {
    /// Address of the Google API listener (HTTPS).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Keep the whole world in FILE (written atomically after every change, loaded at start).
    #[arg(long = "state", value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Starting world (YAML); ignored when the state file already exists.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Latency added to every request, e.g. `50ms`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub latency: Option<Duration>,
    /// Faults to inject, e.g. `iam.setIamPolicy=409:0.3,container.*=503:0.1,*=429:0.05`.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Quota mode, e.g. `*=20,kubernetes=50`: requests per second per Google API
    /// (`iam`, `container`, ... or `*`) and project, answered past it with Google's
    /// 429 RESOURCE_EXHAUSTED; `kubernetes=N`: requests in flight per cluster.
    #[arg(long, value_name = "SPEC")]
    pub quota: Option<String>,
    /// On exit, print the requests served per API method on stderr
    /// (also at any time: `GET /emulator/stats`).
    #[arg(long)]
    pub report_calls: bool,
    /// Seed of the fault and concurrent-writer dice (reproducible runs).
    #[arg(long, value_name = "N")]
    pub fault_seed: Option<u64>,
    /// Probability that a foreign writer changes a policy between a client's read and write.
    #[arg(long, value_name = "P")]
    pub concurrent_writer: Option<f64>,
    /// Also write the `export` lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Where to write the key file, token file, kubeconfig and CA (default: next to --state, else a temp dir,
    /// removed on exit when this run created it and no --state keeps it).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// How long GKE operations take to finish.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub operation_duration: Duration,
    /// How long a new service account stays invisible.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub visibility_delay: Duration,
}

/// Starts the emulator, prints the exports and waits for a signal. Its own
/// error lines (a state file or kubeconfig it cannot write) go to the log on
/// stderr, which `main` sets up for this command like for every other.
pub(crate) async fn run(_settings: &Settings, args: EmulatorArgs) -> Result<Success, CliError> {
    let args = *args.opts;
    if let Some(p) = args.concurrent_writer
        && !(0.0..=1.0).contains(&p)
    {
        return Err(miette::miette!(
            "--concurrent-writer must be a probability between 0 and 1, got {p}"
        )
        .into());
    }
    let work_dir = match (&args.work_dir, &args.state) {
        (Some(d), _) => d.clone(),
        (None, Some(state)) => {
            let parent = state
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let stem = state
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "state".into());
            parent.join(format!("{stem}.d"))
        }
        (None, None) => std::env::temp_dir().join(format!("wi-emulator-{}", std::process::id())),
    };
    let config = EmulatorConfig {
        listen: args.listen,
        state_file: args.state,
        seed: args.seed,
        latency: args.latency,
        faults: args.faults,
        quota: args.quota,
        fault_seed: args.fault_seed,
        env_file: args.env_file,
        work_dir,
        operation_duration: args.operation_duration,
        visibility_delay: args.visibility_delay,
        concurrent_writer: args.concurrent_writer,
    };
    let signals = Signals::install();
    let emulator = Emulator::start(config).await?;
    super::error::out(emulator.env_script())?;
    eprintln!(
        "wi emulator listening on {} (project {}); stop with Ctrl-C",
        emulator.base_url(),
        emulator.default_project()
    );
    signals.wait().await;
    if args.report_calls {
        eprint!("requests served:\n{}", emulator.stats().calls_report());
    }
    emulator.shutdown().await;
    Ok(Success::Done)
}

/// The handlers of SIGINT and SIGTERM, installed before the emulator starts
/// so a signal sent as soon as the env file exists is never fatal.
struct Signals {
    #[cfg(unix)]
    unix: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => None,
            };
            Signals { unix }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            match self.unix {
                Some((mut int, mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
