//! `wi plan`.

/// Arguments of `wi plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {}

pub async fn run(_args: PlanArgs) -> miette::Result<u8> {
    Err(miette::miette!("`wi plan` is not implemented yet"))
}
