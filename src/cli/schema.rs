//! `wi schema`: print the JSON Schema of the spec (the same text as
//! `schema/wi.schema.json`), for editors and CI.

use crate::cli::EXIT_OK;

/// Arguments of `wi schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {}

/// Runs `wi schema`.
pub async fn run(_args: SchemaArgs) -> miette::Result<u8> {
    print!("{}", crate::spec::schema_json());
    Ok(EXIT_OK)
}
