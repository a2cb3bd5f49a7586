//! `wi emulator`.

/// Arguments of `wi emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {}

pub async fn run(_args: EmulatorArgs) -> miette::Result<u8> {
    Err(miette::miette!("`wi emulator` is not implemented yet"))
}
