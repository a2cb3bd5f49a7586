//! `wi validate`.

/// Arguments of `wi validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {}

pub async fn run(_args: ValidateArgs) -> miette::Result<u8> {
    Err(miette::miette!("`wi validate` is not implemented yet"))
}
