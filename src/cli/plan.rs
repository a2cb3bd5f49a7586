//! `wi plan`: show what apply would change, as text, JSON or Markdown, and
//! optionally save it for `wi apply FILE`.

use std::path::PathBuf;

use miette::IntoDiagnostic;

use super::error::{CliError, Success, out, outln};
use super::pipeline::Pipeline;
use super::settings::Settings;
use crate::plan::PlanOptions;

/// How `wi plan` prints the plan on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlanFormat {
    /// Terraform-style text for terminals.
    Text,
    /// The machine-readable plan (versioned JSON).
    Json,
    /// A compact table for pull-request comments (at most 65,536 bytes).
    Markdown,
}

/// Arguments of `wi plan`.
#[derive(Debug, clap::Args)]
pub(crate) struct PlanArgs {
    /// How to print the plan.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Print the machine-readable plan (versioned JSON): the same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Save the plan, with the live versions it was computed from, for `wi apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also plan deletion of accounts (and KSAs) wi owns that left the spec.
    #[arg(long)]
    pub prune: bool,
    /// Plan to take over fields another Kubernetes field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
}

impl PlanArgs {
    fn format(&self) -> PlanFormat {
        if self.json {
            PlanFormat::Json
        } else {
            self.format
        }
    }
}

/// Runs `wi plan`.
pub(crate) async fn run(settings: &Settings, args: PlanArgs) -> Result<Success, CliError> {
    let pipeline = Pipeline::open(settings, settings.spec_file.as_deref()).await?;
    let live = pipeline.read_live().await?;
    let options = PlanOptions {
        prune: args.prune,
        force_conflicts: args.force_conflicts,
        ..settings.plan_options.clone()
    };
    let plan = pipeline.plan(&live, &options)?;
    // Saved before anything is printed: a reader that stops early (`| head`)
    // never costs the plan file.
    if let Some(path) = &args.out {
        crate::plan::file::write(&plan, path)?;
    }
    let style = &settings.styles.stdout;
    let format = args.format();
    out(render(&plan, format, style)?)?;
    // The notes are for people at a terminal; JSON and Markdown stay pure.
    let notes = format == PlanFormat::Text;
    if args.out.is_none() && notes && plan.has_changes() {
        outln(format_args!("\n{}", crate::render::not_saved_note(style)))?;
    }
    if let Some(path) = &args.out
        && notes
    {
        outln(format_args!(
            "\nSaved the plan to: {}\n\nTo perform exactly these actions, run:\n    wi apply {}",
            path.display(),
            path.display()
        ))?;
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        Success::ChangesPresent
    } else {
        Success::Done
    })
}

/// The plan as `format` prints it (`wi plan` and `wi show` alike).
pub(crate) fn render(
    plan: &crate::plan::Plan,
    format: PlanFormat,
    style: &crate::render::Style,
) -> Result<String, CliError> {
    Ok(match format {
        PlanFormat::Text => crate::render::human(plan, style),
        PlanFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&crate::render::json(plan)).into_diagnostic()?;
            text.push('\n');
            text
        }
        PlanFormat::Markdown => {
            crate::render::markdown(plan, crate::render::GITHUB_COMMENT_MAX_BYTES)
        }
    })
}
