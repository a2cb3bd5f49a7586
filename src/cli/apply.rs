//! `wi apply`: make live state match the spec, or run a saved plan after
//! checking it is still fresh (the check itself lives with the plan).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use miette::IntoDiagnostic;
use tokio::sync::watch;

use super::error::{CliError, Success, err_line, out, outln};
use super::pipeline::{Pipeline, load_files, load_spec};
use super::settings::Settings;
use crate::plan::PlanOptions;
use crate::plan::file::PlanChoices;

/// Arguments of `wi apply`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// A plan saved by `wi plan --out FILE`: run exactly it, with the choices
    /// it was made with and on the spec it carries, without asking again, and
    /// refuse it if live state has moved since.
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
    /// Allow removing every binding and annotation an owner has, or more than
    /// --max-removals-percent of them.
    #[arg(long)]
    pub allow_mass_removal: bool,
    /// The share of an owner's bindings and annotations an apply may remove
    /// without --allow-mass-removal (default 50).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_removals_percent: Option<u8>,
}

/// Runs `wi apply`.
pub(crate) async fn run(settings: &Settings, args: ApplyArgs) -> Result<Success, CliError> {
    match &args.plan_file {
        Some(file) => run_saved(settings, &args, file).await,
        None => run_spec(settings, &args).await,
    }
}

/// `wi apply` without a plan: plan, show, ask, apply.
async fn run_spec(settings: &Settings, args: &ApplyArgs) -> Result<Success, CliError> {
    let style = &settings.styles.stdout;
    let pipeline = Pipeline::open(settings, settings.spec_file.as_deref()).await?;
    let live = pipeline.read_live().await?;
    let options = PlanOptions {
        prune: args.prune,
        force_conflicts: args.force_conflicts,
        ..settings.plan_options.clone()
    };
    let plan = pipeline.plan(&live, &options)?;
    let mass = plan.mass_removals(
        args.max_removals_percent
            .unwrap_or(crate::plan::DEFAULT_MAX_REMOVALS_PERCENT),
    );
    if !mass.is_empty() {
        out(super::plan::mass_removal_notice(
            &mass,
            args.allow_mass_removal,
        ))?;
    }
    out(crate::render::human(&plan, style))?;
    if plan.has_unknowns() {
        return Err(super::plan::unknowns_refused(&plan));
    }
    if !plan.has_changes() {
        return Ok(Success::Done);
    }
    if !mass.is_empty() && !args.allow_mass_removal {
        return Err(super::plan::mass_removal_refused(&mass));
    }
    if !args.auto_approve && !confirm(style)? {
        outln("\nApply cancelled.")?;
        return Err(CliError::ApplyCancelled);
    }
    execute(&pipeline, &plan, &live, options.force_conflicts).await
}

/// `wi apply PLANFILE`: run the saved plan with the choices it records, on
/// the spec set it carries (or the same one given with `-f`).
async fn run_saved(
    settings: &Settings,
    args: &ApplyArgs,
    file: &std::path::Path,
) -> Result<Success, CliError> {
    let style = &settings.styles.stdout;
    let saved = crate::plan::file::load(file)?;
    if saved.plan.has_unknowns() {
        return Err(super::plan::unknowns_refused(&saved.plan));
    }
    let choices = saved.options.clone().unwrap_or_default();
    refuse_contrary_flags(args, &settings.plan_options, &choices)?;
    let spec = match (&settings.spec_file, saved.spec_files.clone()) {
        (None, Some(files)) => load_files(files)?,
        (sources, _) => load_spec(sources.as_deref())?,
    };
    if spec.digest != saved.plan.spec_digest {
        return Err(crate::plan::StalePlan::SpecChanged {
            planned: saved.plan.spec_digest.clone(),
            current: spec.digest.clone(),
        }
        .into());
    }
    let pipeline = Pipeline::with_spec(settings, spec).await?;
    // Re-plan with the recorded choices against live state now; run the new
    // plan only if it makes exactly the reviewed changes.
    let live = pipeline.read_live().await?;
    let options = PlanOptions {
        prune: choices.prune,
        force_conflicts: choices.force_conflicts,
        target: choices.targets.clone(),
        exclude: choices.excludes.clone(),
    };
    let plan = pipeline.plan(&live, &options)?;
    if plan.has_unknowns() {
        return Err(super::plan::unknowns_refused(&plan));
    }
    saved.plan.check_replanned(&plan)?;
    let mass = plan.mass_removals(choices.max_removals_percent);
    if !mass.is_empty() && !choices.allow_mass_removal {
        return Err(super::plan::mass_removal_refused(&mass));
    }
    if !plan.has_changes() {
        outln("No changes. Your infrastructure matches the spec.")?;
        return Ok(Success::Done);
    }
    // What is about to change, as `wi plan` showed it.
    out(crate::render::human(&plan, style))?;
    outln("")?;
    execute(&pipeline, &plan, &live, choices.force_conflicts).await
}

/// A flag given to `wi apply PLANFILE` that contradicts the plan's recorded
/// choices is an error: the saved plan decides, and silently ignoring the
/// flag would run something other than what the user asked for.
fn refuse_contrary_flags(
    args: &ApplyArgs,
    given: &PlanOptions,
    choices: &PlanChoices,
) -> Result<(), CliError> {
    let mut contrary = Vec::new();
    if args.prune && !choices.prune {
        contrary.push("--prune");
    }
    if args.force_conflicts && !choices.force_conflicts {
        contrary.push("--force-conflicts");
    }
    if args.allow_mass_removal && !choices.allow_mass_removal {
        contrary.push("--allow-mass-removal");
    }
    if (!given.target.is_empty() && given.target != choices.targets)
        || (!given.exclude.is_empty() && given.exclude != choices.excludes)
    {
        return Err(miette::miette!(
            code = "wi::apply::contrary_flags",
            help = "a saved plan runs with the targets it was made with; make a new plan with `wi plan --target ... --out FILE`",
            "the saved plan was made with --target {:?} --exclude {:?}, not these",
            choices.targets,
            choices.excludes
        )
        .into());
    }
    if let Some(p) = args.max_removals_percent
        && p != choices.max_removals_percent
    {
        return Err(miette::miette!(
            code = "wi::apply::contrary_flags",
            help = "a saved plan runs with the choices it was made with; make a new plan with `wi plan --max-removals-percent N --out FILE`",
            "the saved plan was made with --max-removals-percent {}, not {p}",
            choices.max_removals_percent
        )
        .into());
    }
    if contrary.is_empty() {
        return Ok(());
    }
    let help = format!(
        "a saved plan runs with the choices it was made with; to use {}, make a new plan with it: `wi plan {} --out FILE`",
        contrary.join(" and "),
        contrary.join(" ")
    );
    Err(miette::miette!(
        code = "wi::apply::contrary_flags",
        help = help,
        "the saved plan was made without {}, so it cannot be applied with it",
        contrary.join(" and ")
    )
    .into())
}

/// Runs `plan` with progress, Ctrl-C stopping new steps, then the summary.
async fn execute(
    pipeline: &Pipeline<'_>,
    plan: &crate::plan::Plan,
    live: &crate::live::LiveState,
    force_conflicts: bool,
) -> Result<Success, CliError> {
    // Nothing starts unless the caller may do every step.
    pipeline.preflight(plan, live).await?;
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
        .apply(plan, live, force_conflicts, interrupt_rx)
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
