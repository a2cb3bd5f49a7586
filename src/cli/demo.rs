//! `wi demo`: the first run. Starts the emulator in-process with a small
//! world (two clusters without Workload Identity), then shows plan, apply and
//! plan again (no changes) for the quickstart spec.

use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};
use tokio::sync::watch;

use super::error::{CliError, Success, err_line, out, outln};
use super::pipeline::Pipeline;
use super::settings::{Environment, Settings};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::plan::PlanOptions;
use crate::spec::SpecSource;

/// The spec the demo plans and applies unless `-f` says otherwise.
const DEFAULT_SPEC: &str = "examples/quickstart.yaml";

/// Arguments of `wi demo` (the spec is the global `-f`, default
/// examples/quickstart.yaml).
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// The emulator's starting world.
    #[arg(
        long,
        default_value = "examples/quickstart.seed.yaml",
        value_name = "FILE"
    )]
    pub seed: PathBuf,
    /// How long each emulated GKE operation takes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub operation_duration: Duration,
}

/// Resolves an example path against the working directory, then the source tree.
fn example(path: &Path) -> PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if in_tree.exists() {
        in_tree
    } else {
        path.to_path_buf()
    }
}

/// Runs `wi demo`.
pub(crate) async fn run(settings: &Settings, args: DemoArgs) -> Result<Success, CliError> {
    // Only the flag: the demo never plans the spec `WI_SPEC` points at.
    let spec: Vec<SpecSource> = if settings.file_flag.is_empty() {
        vec![SpecSource::Path(example(Path::new(DEFAULT_SPEC)))]
    } else {
        settings
            .file_flag
            .iter()
            .map(|s| match s {
                SpecSource::Path(p) => SpecSource::Path(example(p)),
                other => other.clone(),
            })
            .collect()
    };
    let seed = example(&args.seed);
    let work_dir = tempfile::tempdir().into_diagnostic()?;

    outln(format_args!(
        "Starting the built-in emulator with {} ...",
        seed.display()
    ))?;
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(seed.clone()),
        work_dir: work_dir.path().to_path_buf(),
        operation_duration: args.operation_duration,
        ..Default::default()
    })
    .await
    .into_diagnostic()
    .wrap_err("starting the emulator")?;
    // The engine talks to the emulator only, configured by its exports.
    let env: Environment = emulator.env().into_iter().collect();
    let outcome = match settings.with_environment(env) {
        Ok(demo_settings) => demo(&demo_settings, &spec).await,
        Err(e) => Err(e.into()),
    };
    emulator.shutdown().await;
    outcome
}

async fn demo(settings: &Settings, spec: &[SpecSource]) -> Result<Success, CliError> {
    let style = &settings.styles.stdout;
    let pipeline = Pipeline::open(settings, Some(spec)).await?;
    let spec = spec
        .iter()
        .map(SpecSource::display)
        .collect::<Vec<_>>()
        .join(" -f ");

    outln(format_args!("\n$ wi plan -f {}\n", spec))?;
    let live = pipeline.read_live().await?;
    let plan = pipeline.plan(&live, &PlanOptions::default())?;
    out(crate::render::human(&plan, style))?;
    if plan.has_unknowns() {
        return Err(super::plan::unknowns_refused(&plan));
    }

    outln(format_args!("\n$ wi apply -f {} --auto-approve\n", spec))?;
    let (_tx, rx) = watch::channel(false);
    let result = pipeline.apply(&plan, &live, false, rx).await;
    pipeline.print_summary(&result)?;
    if !result.succeeded() {
        return Err(CliError::ApplyFailed);
    }

    outln(format_args!(
        "\n$ wi plan -f {} --detailed-exitcode\n",
        spec
    ))?;
    let live = pipeline.read_live().await?;
    let again = pipeline.plan(&live, &PlanOptions::default())?;
    out(crate::render::human(&again, style))?;
    if again.has_changes() {
        err_line("\nThe second plan still has changes: apply did not converge.");
        return Err(CliError::DemoDidNotConverge);
    }
    outln(
        "\nThe same pair works by hand: `wi emulator --seed examples/quickstart.seed.yaml` in one terminal, `. ENV-FILE && wi plan -f examples/quickstart.yaml` in another.",
    )?;
    Ok(Success::Done)
}
