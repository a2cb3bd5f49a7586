//! `wi demo`: the first run. Starts the emulator in-process with a small
//! world (two clusters without Workload Identity), then shows plan, apply and
//! plan again (no changes) for the quickstart spec.

use std::path::{Path, PathBuf};
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr};
use tokio::sync::watch;

use super::session::{self, Environment};
use super::{EXIT_ERROR, EXIT_OK};
use crate::apply::ApplyOptions;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::plan::PlanOptions;

/// Arguments of `wi demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The spec to plan and apply.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "examples/quickstart.yaml",
        value_name = "FILE"
    )]
    pub file: PathBuf,
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
    /// Plain output without colour.
    #[arg(long)]
    pub no_color: bool,
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

pub async fn run(args: DemoArgs) -> miette::Result<u8> {
    session::init_logging(0);
    let spec = example(&args.file);
    let seed = example(&args.seed);
    let work_dir = tempfile::tempdir().into_diagnostic()?;
    let style = session::style(args.no_color, &session::process_environment());

    println!("Starting the built-in emulator with {} ...", seed.display());
    let emulator = Emulator::start(EmulatorConfig {
        seed: Some(seed.clone()),
        work_dir: work_dir.path().to_path_buf(),
        operation_duration: args.operation_duration,
        ..Default::default()
    })
    .await
    .into_diagnostic()
    .wrap_err("starting the emulator")?;
    let env: Environment = emulator.env().into_iter().collect();
    let outcome = demo(&spec, &env, style).await;
    emulator.shutdown().await;
    outcome
}

async fn demo(spec: &Path, env: &Environment, style: crate::render::Style) -> miette::Result<u8> {
    let (model, _, digest) = session::load_spec(Some(spec))?;
    let gcp = session::gcp_client(env).await?;
    let parallelism = 16;

    println!("\n$ wi plan -f {}\n", spec.display());
    let live = session::read_live(&gcp, &model, parallelism).await?;
    let plan = session::make_plan(&model, &live, &PlanOptions::default(), digest.clone())?;
    print!("{}", crate::render::human(&plan, &style));

    println!("\n$ wi apply -f {} --auto-approve\n", spec.display());
    let (_tx, rx) = watch::channel(false);
    let result = crate::apply::apply(
        &plan,
        &live,
        session::kube_contexts(&model),
        gcp.clone(),
        ApplyOptions::default(),
        session::stderr_progress(!style.color, env),
        rx,
    )
    .await;
    print!("{}", crate::render::apply_summary(&result, &style));
    if !result.succeeded() {
        return Ok(EXIT_ERROR);
    }

    println!("\n$ wi plan -f {} --detailed-exitcode\n", spec.display());
    let live = session::read_live(&gcp, &model, parallelism).await?;
    let again = session::make_plan(&model, &live, &PlanOptions::default(), digest)?;
    print!("{}", crate::render::human(&again, &style));
    if again.has_changes() {
        eprintln!("\nThe second plan still has changes: apply did not converge.");
        return Ok(EXIT_ERROR);
    }
    println!(
        "\nThe same pair works by hand: `wi emulator --seed examples/quickstart.seed.yaml` in one terminal, `. ENV-FILE && wi plan -f examples/quickstart.yaml` in another."
    );
    Ok(EXIT_OK)
}
