//! `wi schema`: print the JSON Schema of the spec (the same text as
//! `schema/wi.schema.json`) or, with `--plan`, of the plan document
//! (`schema/plan.schema.json`), for editors and CI.

use super::error::{CliError, Success, out};
use super::settings::Settings;

/// Arguments of `wi schema`.
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// The schema of the plan JSON (`wi plan --json`, saved plans) instead of the spec's.
    #[arg(long)]
    pub plan: bool,
}

/// Runs `wi schema`.
pub(crate) async fn run(_settings: &Settings, args: SchemaArgs) -> Result<Success, CliError> {
    if args.plan {
        out(crate::plan::file::schema_json())?;
    } else {
        out(crate::spec::schema_json())?;
    }
    Ok(Success::Done)
}
