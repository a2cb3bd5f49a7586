//! `wi schema`: print the JSON Schema of the spec (the same text as
//! `schema/wi.schema.json`), for editors and CI.

use super::error::{CliError, Success};
use super::settings::Settings;

/// Arguments of `wi schema`.
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {}

/// Runs `wi schema`.
pub(crate) async fn run(_settings: &Settings, _args: SchemaArgs) -> Result<Success, CliError> {
    print!("{}", crate::spec::schema_json());
    Ok(Success::Done)
}
