//! Settings resolved once per run, and the plan pipeline the `plan`, `apply`
//! and `demo` commands share: load the spec, connect, read live state, plan.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};

use crate::apply::{Outcome, Progress};
use crate::gcp::{ClientOptions, Endpoints, GcpClient};
use crate::live::{LiveState, Reader};
use crate::plan::{Plan, PlanOptions, ResourceChange};
use crate::render::Style;
use crate::spec::{ClusterKey, Model};

/// Flags every command that talks to the APIs shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The spec file (default: wi.yaml, wi.yml or wi.toml in the current directory).
    #[arg(short = 'f', long = "file", value_name = "FILE", env = "WI_SPEC")]
    pub file: Option<PathBuf>,
    /// How many API calls may run at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallelism: usize,
    /// Plain output without colour (also: NO_COLOR).
    #[arg(long)]
    pub no_color: bool,
    /// More logs on stderr (-v, -vv). Tokens and keys are never logged.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The process environment, as a map, so the demo can hand the engine the
/// emulator's settings without touching the real environment.
pub type Environment = BTreeMap<String, String>;

pub fn process_environment() -> Environment {
    std::env::vars().collect()
}

/// The one colour decision: a terminal, no `NO_COLOR`, no `--no-color`.
pub fn style(no_color: bool, env: &Environment) -> Style {
    Style::decide(
        std::io::stdout().is_terminal(),
        env.get("NO_COLOR").map(String::as_str),
        no_color,
    )
}

/// Sets up logging on stderr once. `WI_LOG` overrides the level.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info,wi=debug",
        _ => "debug",
    };
    let filter = std::env::var("WI_LOG").unwrap_or_else(|_| level.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Finds and loads the spec: the model, its path and the digest of its text.
pub fn load_spec(file: Option<&Path>) -> miette::Result<(Model, PathBuf, String)> {
    let path = match file {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().into_diagnostic()?;
            crate::spec::discover(&cwd)?
        }
    };
    // One read: the model and the digest come from the same text.
    let (model, text) = crate::spec::load_file_with_source(&path)?;
    Ok((model, path, crate::spec::digest(&text)))
}

/// Builds the Google client from the environment (gcloud's endpoint
/// overrides, CA file, credentials).
pub async fn gcp_client(env: &Environment) -> miette::Result<GcpClient> {
    let get = |k: &str| env.get(k).cloned();
    let endpoints = Endpoints::from_env_vars(get).into_diagnostic()?;
    let tokens = crate::gcp::auth::token_source_from_env(|k: &str| env.get(k).cloned())
        .await
        .into_diagnostic()
        .wrap_err("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_AUTH_ACCESS_TOKEN_FILE or run `gcloud auth application-default login`")?;
    let mut options = ClientOptions::from_env_vars(|k: &str| env.get(k).cloned());
    if let Some(interval) = poll_interval(env)? {
        options.retry.poll_min = interval;
        options.retry.poll_max = interval * 4;
    }
    GcpClient::new(endpoints, tokens, options).into_diagnostic()
}

/// `WI_POLL_INTERVAL`: how often to poll long-running operations (default
/// 3 s growing to 15 s, right for GKE; the emulator exports a shorter one).
fn poll_interval(env: &Environment) -> miette::Result<Option<Duration>> {
    let Some(value) = env.get("WI_POLL_INTERVAL") else {
        return Ok(None);
    };
    humantime::parse_duration(value).map(Some).map_err(|e| {
        miette::miette!("WI_POLL_INTERVAL={value:?} is not a duration like 500ms: {e}")
    })
}

/// Reads live state for the model.
pub async fn read_live(
    gcp: &GcpClient,
    model: &Model,
    parallelism: usize,
) -> miette::Result<LiveState> {
    let reader = Reader { gcp, parallelism };
    Ok(reader.read(model).await?)
}

/// Computes the plan.
pub fn make_plan(
    model: &Model,
    live: &LiveState,
    options: &PlanOptions,
    digest: String,
) -> miette::Result<Plan> {
    Ok(crate::plan::compute(model, live, options, digest)?)
}

/// The kubeconfig context overrides of the model's clusters.
pub fn kube_contexts(model: &Model) -> BTreeMap<ClusterKey, Option<String>> {
    model
        .clusters
        .iter()
        .map(|c| (c.key.clone(), c.kube_context.clone()))
        .collect()
}

/// Default step deadlines; overridable for tests through `WI_STEP_TIMEOUT`.
pub fn step_deadline(env: &Environment) -> Duration {
    env.get("WI_STEP_TIMEOUT")
        .and_then(|v| humantime::parse_duration(v).ok())
        .unwrap_or(Duration::from_secs(600))
}

/// Progress lines on stderr in Terraform's words.
pub struct StderrProgress {
    style: Style,
}

impl Progress for StderrProgress {
    fn started(&self, change: &ResourceChange) {
        eprintln!(
            "{}",
            crate::render::progress_start(&change.address, change.action, &self.style)
        );
    }
    fn note(&self, address: &str, message: &str) {
        eprintln!("{}: {}", address, crate::render::sanitize(message, false));
    }
    fn finished(&self, change: &ResourceChange, outcome: &Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Done => eprintln!(
                "{}",
                crate::render::progress_done(&change.address, change.action, elapsed, &self.style)
            ),
            Outcome::Failed(_) => eprintln!(
                "{}",
                crate::render::progress_failed(
                    &change.address,
                    change.action,
                    elapsed,
                    &self.style
                )
            ),
            Outcome::Skipped(why) => eprintln!("{}: skipped: {why}", change.address),
        }
    }
}

/// A shared progress sink on stderr, coloured only when stderr is a terminal.
pub fn stderr_progress(no_color: bool, env: &Environment) -> Arc<dyn Progress> {
    let style = Style::decide(
        std::io::stderr().is_terminal(),
        env.get("NO_COLOR").map(String::as_str),
        no_color,
    );
    Arc::new(StderrProgress { style })
}
