//! `wi apply`.

/// Arguments of `wi apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {}

pub async fn run(_args: ApplyArgs) -> miette::Result<u8> {
    Err(miette::miette!("`wi apply` is not implemented yet"))
}
