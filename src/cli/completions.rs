//! `wi completions SHELL` and `wi man`: the shell completion script and the
//! man page, both generated from the clap definition itself (clap_complete,
//! clap_mangen), so they never drift from the flags.

use std::path::PathBuf;

use clap::CommandFactory;
use miette::{IntoDiagnostic, WrapErr};

use super::Cli;
use super::error::{CliError, Success, out, outln};
use super::settings::Settings;

/// Arguments of `wi completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `wi man`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write wi.1 and one page per subcommand (wi-plan.1, ...) into DIR
    /// instead of printing wi.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `wi completions SHELL`: the script on stdout.
pub(crate) async fn run_completions(
    _settings: &Settings,
    args: CompletionsArgs,
) -> Result<Success, CliError> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "wi", &mut script);
    out(String::from_utf8_lossy(&script))?;
    Ok(Success::Done)
}

/// Runs `wi man`: the roff page on stdout, or every page into `--dir`.
pub(crate) async fn run_man(_settings: &Settings, args: ManArgs) -> Result<Success, CliError> {
    let cmd = Cli::command();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("creating {}", dir.display()))?;
        clap_mangen::generate_to(cmd, dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("writing the man pages into {}", dir.display()))?;
        outln(format_args!("wrote the man pages into {}", dir.display()))?;
        return Ok(Success::Done);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .into_diagnostic()
        .wrap_err("rendering the man page")?;
    out(String::from_utf8_lossy(&page))?;
    Ok(Success::Done)
}
