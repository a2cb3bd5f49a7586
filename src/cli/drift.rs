//! `wi drift`: a read-only plan focused on what changed outside `wi`, for
//! schedules and monitoring. Exit 0 no drift, 2 drift, 1 error (a project or
//! cluster that could not be read is an error: the report lists it).
//! `--shard I/N` reads and reports one part of the fleet; `--merge` combines
//! the shard reports into the whole fleet's report and exit code.

use std::path::PathBuf;

use miette::IntoDiagnostic;

use super::error::{CliError, Success, out};
use super::pipeline::Pipeline;
use super::settings::Settings;
use crate::drift::{DriftReport, EXIT_DRIFT, EXIT_PARTIAL, Shard};

/// How `wi drift` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DriftFormat {
    /// One block per drifted item, for terminals and logs.
    Text,
    /// The versioned report (`schema/drift-report.schema.json`), for `--merge` and monitoring.
    Json,
    /// A pull-request or issue comment (under 60,000 bytes).
    Markdown,
    /// GitHub workflow-command annotations at the spec lines.
    Github,
}

/// Arguments of `wi drift`.
#[derive(Debug, clap::Args)]
pub(crate) struct DriftArgs {
    /// How to print the report.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = DriftFormat::Text)]
    pub format: DriftFormat,
    /// Read and report only shard I of N (0-based, as `JOB_COMPLETION_INDEX`):
    /// clusters by a stable hash of `project/location/cluster`, a project's
    /// own items (accounts, their bindings) by a hash of the project.
    #[arg(long, value_name = "I/N", conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// Combine the JSON reports of every shard of one run (read nothing).
    #[arg(long, value_name = "REPORT", num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `wi drift`.
pub(crate) async fn run(settings: &Settings, args: DriftArgs) -> Result<Success, CliError> {
    let report = if args.merge.is_empty() {
        measure(settings, args.shard).await?
    } else {
        merge(&args.merge)?
    };
    let text = render(&report, args.format)?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .into_diagnostic()
            .map_err(|e| e.wrap_err(format!("cannot write the report to {}", path.display())))?,
        None => out(text)?,
    }
    match report.exit_code() {
        EXIT_PARTIAL => Err(partial(&report)),
        EXIT_DRIFT => Ok(Success::ChangesPresent),
        _ => Ok(Success::Done),
    }
}

/// Reads (the shard of) the fleet and reports its drift.
async fn measure(settings: &Settings, shard: Option<Shard>) -> Result<DriftReport, CliError> {
    let mut pipeline = Pipeline::open(settings, settings.spec_file.as_deref()).await?;
    if let Some(shard) = shard {
        pipeline.spec.model = shard.model(&pipeline.spec.model);
    }
    let live = pipeline.read_live().await?;
    let options = crate::plan::PlanOptions {
        prune: false,
        ..settings.plan_options.clone()
    };
    let plan = pipeline.plan(&live, &options)?;
    Ok(crate::drift::report(
        &pipeline.spec.model,
        &live,
        &plan,
        shard,
    ))
}

/// Reads and merges shard reports.
fn merge(paths: &[PathBuf]) -> Result<DriftReport, CliError> {
    let mut reports = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .into_diagnostic()
            .map_err(|e| e.wrap_err(format!("cannot read the report {}", path.display())))?;
        let report: DriftReport = serde_json::from_str(&text).map_err(|e| {
            miette::miette!(
                code = "wi::drift::bad_report",
                help = "--merge reads the reports of `wi drift --format json --shard I/N`",
                "{} is not a wi drift report: {e}",
                path.display()
            )
        })?;
        reports.push(report);
    }
    crate::drift::merge(reports).map_err(|e| {
        let names = paths
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  {}: {}", i + 1, p.display()))
            .collect::<Vec<_>>()
            .join("\n");
        miette::miette!(
            code = "wi::drift::merge",
            help = "merge the reports of one run: every shard 0..N-1 of the same --shard count, made by the same wi from the same spec",
            "cannot merge the drift reports: {e}\nreports:\n{names}"
        )
        .into()
    })
}

/// The report as `format` prints it.
fn render(report: &DriftReport, format: DriftFormat) -> Result<String, CliError> {
    Ok(match format {
        DriftFormat::Text => crate::drift::text(report),
        DriftFormat::Json => {
            let mut text = serde_json::to_string_pretty(report).into_diagnostic()?;
            text.push('\n');
            text
        }
        DriftFormat::Markdown => {
            crate::render::drift_markdown(report, crate::render::PR_COMMENT_MAX_BYTES)
        }
        DriftFormat::Github => crate::render::github::drift(report),
    })
}

/// The error of a report with unknowns (after the report is written).
fn partial(report: &DriftReport) -> CliError {
    let list = report
        .unknowns
        .iter()
        .map(|u| format!("  - {} {} ({}): {}", u.kind, u.name, u.code, u.reason))
        .collect::<Vec<_>>()
        .join("\n");
    miette::miette!(
        code = "wi::drift::unknowns",
        help = "fix the reads, or leave them out with --exclude (a cluster or project name)",
        "the drift report is partial: {} could not be read, so drift there is unknown:\n{list}",
        if report.unknowns.len() == 1 {
            "1 project or cluster".to_string()
        } else {
            format!("{} projects or clusters", report.unknowns.len())
        }
    )
    .into()
}
