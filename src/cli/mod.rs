//! The command line, a thin shell over the engine: clap types, the global
//! flags resolved once into `Settings` (`settings.rs`), one file per
//! subcommand (its args and one `run`), the pipeline plan/apply/demo share
//! (`pipeline.rs`), the apply progress on stderr (`progress.rs`), and one
//! place (`error.rs`) that turns every outcome into a report and an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod apply;
mod audit;
mod completions;
mod demo;
mod drift;
mod emulator;
mod error;
mod import;
mod pipeline;
mod plan;
mod progress;
mod schema;
mod settings;
mod show;
mod validate;
mod verify;

use error::{CliError, Success};
use settings::{GlobalArgs, Settings, Styles};

/// GKE Workload Identity as code.
#[derive(Debug, Parser)]
#[command(name = "wi", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a spec and report every problem at once.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of the spec (or, with --plan, of the plan JSON).
    Schema(schema::SchemaArgs),
    /// Write a spec that reproduces the live world of some projects.
    Import(import::ImportArgs),
    /// Show what apply would change.
    Plan(plan::PlanArgs),
    /// Make live state match the spec (or run a saved plan).
    Apply(apply::ApplyArgs),
    /// Prove each mapping yields its Google identity (or explain one pod's, with --pod).
    Verify(verify::VerifyArgs),
    /// Report what changed outside wi (exit 0 none, 2 drift, 1 error); shard and merge fleets.
    Drift(drift::DriftArgs),
    /// Report who else gets the spec's identities (every cluster of its projects).
    Audit(audit::AuditArgs),
    /// Render a saved plan again (text, JSON or Markdown).
    Show(show::ShowArgs),
    /// Run the local GKE / IAM / Kubernetes emulator.
    Emulator(emulator::EmulatorArgs),
    /// Plan, apply and plan again against the built-in emulator.
    Demo(demo::DemoArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff), or write one per command with --dir.
    Man(completions::ManArgs),
}

/// Parses arguments, resolves the settings once, runs the command and maps
/// the outcome to an exit code (0 success, 1 error, 2 changes present with
/// `wi plan --detailed-exitcode`).
pub fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(&e),
    };
    let env = settings::process_environment();
    let styles = Styles::decide(&cli.global, &env);
    error::install_report_hook(styles.stderr);
    let settings = match Settings::resolve(&cli.global, env, styles) {
        Ok(s) => s,
        Err(e) => return error::exit(Err(e.into())),
    };
    settings.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = miette::miette!("cannot start the async runtime: {e}");
            return error::exit(Err(e.into()));
        }
    };
    error::exit(runtime.block_on(run(&settings, cli.command)))
}

/// `--help` and `--version` exit 0; every usage error (an unknown or
/// misspelt flag, a bad or missing value) exits 1, like any other error:
/// clap's own 2 would read as "changes present" to a `--detailed-exitcode`
/// gate. A closed stdout loses the help text quietly.
fn usage_exit(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    ExitCode::from(if e.use_stderr() {
        error::EXIT_ERROR
    } else {
        error::EXIT_OK
    })
}

async fn run(settings: &Settings, command: Command) -> Result<Success, CliError> {
    match command {
        Command::Validate(args) => validate::run(settings, args).await,
        Command::Schema(args) => schema::run(settings, args).await,
        Command::Plan(args) => plan::run(settings, args).await,
        Command::Apply(args) => apply::run(settings, args).await,
        Command::Audit(args) => audit::run(settings, args).await,
        Command::Drift(args) => drift::run(settings, args).await,
        Command::Import(args) => import::run(settings, args).await,
        Command::Show(args) => show::run(settings, args).await,
        Command::Verify(args) => verify::run(settings, args).await,
        Command::Emulator(args) => emulator::run(settings, args).await,
        Command::Demo(args) => demo::run(settings, args).await,
        Command::Completions(args) => completions::run_completions(settings, args).await,
        Command::Man(args) => completions::run_man(settings, args).await,
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

    /// Every spelling of the global flags that worked when they were
    /// per-subcommand flags still parses, before or after the subcommand.
    #[test]
    fn global_flags_parse_before_and_after_the_subcommand() {
        for argv in [
            &["wi", "plan", "-f", "x.yaml", "--no-color", "-v", "--json"][..],
            &["wi", "-f", "x.yaml", "--no-color", "-vv", "plan"],
            &[
                "wi",
                "apply",
                "saved.plan",
                "-f",
                "x.yaml",
                "--parallelism",
                "4",
            ],
            &["wi", "validate", "-f", "x.yaml", "--print-model"],
            &["wi", "demo", "-f", "x.yaml", "--no-color"],
            &["wi", "--color", "never", "plan", "--format", "markdown"],
            &["wi", "emulator", "-q", "--color=always"],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        let cli = Cli::try_parse_from(["wi", "plan", "-vv", "-f", "x.yaml"]).unwrap();
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.global.file, [std::path::PathBuf::from("x.yaml")]);
        let cli = Cli::try_parse_from(["wi", "validate", "-f", "a.yaml", "-f", "dir", "-f", "-"])
            .unwrap();
        assert_eq!(cli.global.file.len(), 3);
        assert!(Cli::try_parse_from(["wi", "plan", "--no-color", "--color", "always"]).is_err());
        assert!(Cli::try_parse_from(["wi", "plan", "--json", "--format", "text"]).is_err());
    }
}
