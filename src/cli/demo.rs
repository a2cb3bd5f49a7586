//! `wi demo`.

/// Arguments of `wi demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> miette::Result<u8> {
    Err(miette::miette!("`wi demo` is not implemented yet"))
}
