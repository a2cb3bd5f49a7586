//! `wi schema`.

/// Arguments of `wi schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {}

pub async fn run(_args: SchemaArgs) -> miette::Result<u8> {
    Err(miette::miette!("`wi schema` is not implemented yet"))
}
