//! `wi demo`: the first run. Starts the emulator in-process with a small
//! world (two clusters without Workload Identity), then shows plan, apply and
//! plan again (no changes) for the quickstart spec.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};
use tokio::sync::watch;

use super::error::{CliError, Success, err_line, out, outln};
use super::pipeline::Pipeline;
use super::settings::{Environment, Settings};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::plan::PlanOptions;
use crate::spec::{Format, SpecSource};

/// The quickstart spec, built in: the demo runs from an installed binary in
/// any directory.
const QUICKSTART_SPEC: (&str, &str) = (
    "quickstart.yaml",
    include_str!("../../examples/quickstart.yaml"),
);
/// The emulator's starting world for the demo, built in.
const QUICKSTART_SEED: (&str, &str) = (
    "quickstart.seed.yaml",
    include_str!("../../examples/quickstart.seed.yaml"),
);

/// Arguments of `wi demo` (the spec is the global `-f`, default the built-in
/// quickstart spec).
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// The emulator's starting world [default: the built-in quickstart world].
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// How long each emulated GKE operation takes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub operation_duration: Duration,
    /// Write the built-in quickstart.yaml and quickstart.seed.yaml into DIR
    /// (created if missing; existing files are kept) and exit.
    #[arg(long, value_name = "DIR", conflicts_with = "seed")]
    pub write_examples: Option<PathBuf>,
}

/// Runs `wi demo`.
pub(crate) async fn run(settings: &Settings, args: DemoArgs) -> Result<Success, CliError> {
    if let Some(dir) = &args.write_examples {
        return write_examples(dir);
    }
    // Only the flag: the demo never plans the spec `WI_SPEC` points at.
    let spec: Vec<SpecSource> = if settings.file_flag.is_empty() {
        vec![SpecSource::Text {
            name: QUICKSTART_SPEC.0.to_owned(),
            text: QUICKSTART_SPEC.1.to_owned(),
            format: Format::Yaml,
        }]
    } else {
        settings.file_flag.clone()
    };
    let work_dir = tempfile::tempdir().into_diagnostic()?;
    let (seed, seed_name) = match &args.seed {
        Some(path) => (path.clone(), path.display().to_string()),
        None => {
            let path = work_dir.path().join(QUICKSTART_SEED.0);
            std::fs::write(&path, QUICKSTART_SEED.1)
                .into_diagnostic()
                .wrap_err("writing the built-in seed")?;
            (path, format!("the built-in {}", QUICKSTART_SEED.0))
        }
    };

    outln(format_args!(
        "Starting the built-in emulator with {seed_name} ..."
    ))?;
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(seed),
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

/// `wi demo --write-examples DIR`: the built-in pair as files, for the same
/// run by hand. An existing file is never overwritten.
fn write_examples(dir: &Path) -> Result<Success, CliError> {
    std::fs::create_dir_all(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("creating {}", dir.display()))?;
    for (name, text) in [QUICKSTART_SPEC, QUICKSTART_SEED] {
        let path = dir.join(name);
        match std::fs::File::create_new(&path) {
            Ok(mut file) => {
                file.write_all(text.as_bytes())
                    .into_diagnostic()
                    .wrap_err_with(|| format!("writing {}", path.display()))?;
                outln(format_args!("wrote {}", path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                outln(format_args!("kept {} (it exists)", path.display()))?;
            }
            Err(e) => {
                return Err(miette::miette!("cannot write {}: {e}", path.display()).into());
            }
        }
    }
    let d = dir.display();
    outln(format_args!(
        "\nBy hand: `wi emulator --seed {d}/{} --env-file ENV-FILE` in one terminal, `. ENV-FILE && wi plan -f {d}/{}` in another.",
        QUICKSTART_SEED.0, QUICKSTART_SPEC.0
    ))?;
    Ok(Success::Done)
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
        "\nThe same pair works by hand: `wi demo --write-examples DIR` saves it, then `wi emulator --seed DIR/quickstart.seed.yaml --env-file ENV-FILE` in one terminal, `. ENV-FILE && wi plan -f DIR/quickstart.yaml` in another.",
    )?;
    Ok(Success::Done)
}
