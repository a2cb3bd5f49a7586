//! The command line: clap types, one file per subcommand (its args and one
//! `run`), settings resolved once, errors mapped to exit codes in one place.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod apply;
pub mod demo;
pub mod emulator;
pub mod plan;
pub mod schema;
pub mod session;
pub mod validate;

/// GKE Workload Identity as code.
#[derive(Debug, Parser)]
#[command(name = "wi", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec and report every problem at once.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the spec.
    Schema(schema::SchemaArgs),
    /// Show what apply would change.
    Plan(plan::PlanArgs),
    /// Make live state match the spec (or run a saved plan).
    Apply(apply::ApplyArgs),
    /// Run the local GKE / IAM / Kubernetes emulator.
    Emulator(emulator::EmulatorArgs),
    /// Plan, apply and plan again against the built-in emulator.
    Demo(demo::DemoArgs),
}

/// Exit codes: 0 success (no changes), 1 error, 2 changes present (`--detailed-exitcode`).
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;

/// Parses arguments, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Validate(args) => validate::run(args).await,
            Command::Schema(args) => schema::run(args).await,
            Command::Plan(args) => plan::run(args).await,
            Command::Apply(args) => apply::run(args).await,
            Command::Emulator(args) => emulator::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
