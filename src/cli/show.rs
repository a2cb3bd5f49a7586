//! `wi show PLANFILE`: render a saved plan again, as `wi plan` printed it
//! (text, the JSON document, or Markdown), without a spec or credentials.

use std::path::PathBuf;

use super::error::{CliError, Success, out};
use super::plan::{PlanFormat, render};
use super::settings::Settings;

/// Arguments of `wi show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// A plan saved by `wi plan --out FILE` (or printed by `wi plan --json`).
    #[arg(value_name = "PLANFILE")]
    pub plan_file: PathBuf,
    /// How to print the plan.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Print the machine-readable plan (versioned JSON): the same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

/// Runs `wi show`.
pub(crate) async fn run(settings: &Settings, args: ShowArgs) -> Result<Success, CliError> {
    let plan = crate::plan::file::read(&args.plan_file)?;
    let format = if args.json {
        PlanFormat::Json
    } else {
        args.format
    };
    out(render(&plan, format, &settings.styles.stdout)?)?;
    Ok(Success::Done)
}
