//! `wi apply`: make live state match the spec, or run a saved plan after
//! checking it is still fresh (the check itself lives with the plan).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use miette::IntoDiagnostic;
use tokio::sync::watch;

use super::error::{CliError, Success, err_line, out, outln};
use super::pipeline::Pipeline;
use super::settings::Settings;
use crate::plan::PlanOptions;

/// Arguments of `wi apply`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// A plan saved by `wi plan --out FILE`: run exactly it, without asking again,
    /// and refuse it if live state has moved since.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Also delete accounts (and KSAs) wi owns that left the spec.
    #[arg(long)]
    pub prune: bool,
    /// Take over Kubernetes fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
}

/// Runs `wi apply`.
pub(crate) async fn run(settings: &Settings, args: ApplyArgs) -> Result<Success, CliError> {
    let style = &settings.styles.stdout;
    let pipeline = Pipeline::open(settings, settings.spec_file.as_deref()).await?;
    let live = pipeline.read_live().await?;

    let plan = match &args.plan_file {
        Some(file) => {
            let saved = crate::plan::file::read(file)?;
            saved.check_fresh(&pipeline.spec.digest, &live.fingerprints())?;
            saved
        }
        None => {
            let options = PlanOptions {
                prune: args.prune,
                force_conflicts: args.force_conflicts,
                ..settings.plan_options.clone()
            };
            let plan = pipeline.plan(&live, &options)?;
            out(crate::render::human(&plan, style))?;
            plan
        }
    };
    if !plan.has_changes() {
        if args.plan_file.is_some() {
            outln("No changes. Your infrastructure matches the spec.")?;
        }
        return Ok(Success::Done);
    }
    if args.plan_file.is_none() && !args.auto_approve && !confirm(style)? {
        outln("\nApply cancelled.")?;
        return Err(CliError::ApplyCancelled);
    }

    let (interrupt_tx, interrupt_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            err_line(
                "\nInterrupt received: no new steps will start; waiting for the running ones to finish...",
            );
            let _ = interrupt_tx.send(true);
        }
    });
    let result = pipeline
        .apply(&plan, &live, args.force_conflicts, interrupt_rx)
        .await;
    // The apply's outcome decides the exit code, even if the summary
    // cannot be written (a full disk, say: the error is reported on stderr).
    if let Err(e) = pipeline.print_summary(&result)
        && let Some(report) = e.into_report()
    {
        err_line(format_args!("{report:?}"));
    }
    if result.succeeded() {
        Ok(Success::Done)
    } else {
        Err(CliError::ApplyFailed)
    }
}

fn confirm(style: &crate::render::Style) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(miette::miette!(
            code = "wi::apply::no_terminal",
            help = "pass --auto-approve, or save a reviewed plan with `wi plan --out FILE` and run `wi apply FILE`",
            "refusing to ask for confirmation without a terminal"
        )
        .into());
    }
    out(format_args!("\n{}", crate::render::approval_prompt(style)))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .into_diagnostic()?;
    Ok(line.trim() == "yes")
}
