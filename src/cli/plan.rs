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
    /// A pull-request comment: summary table, destructive and disruptive
    /// changes first, the rest folded (at most 60,000 bytes).
    Markdown,
    /// GitHub workflow-command annotations at the spec lines.
    Github,
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
    /// Text: one line per project and cluster and the destructive and
    /// disruptive changes only (a plan of more than 500 changes says so).
    #[arg(long)]
    pub summary: bool,
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
    /// Allow a plan that removes every binding and annotation an owner has,
    /// or more than --max-removals-percent of them (recorded in --out).
    #[arg(long)]
    pub allow_mass_removal: bool,
    /// The share of an owner's bindings and annotations a plan may remove
    /// without --allow-mass-removal.
    #[arg(long, value_name = "PERCENT", default_value_t = crate::plan::DEFAULT_MAX_REMOVALS_PERCENT, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_removals_percent: u8,
    /// Also check that the caller may do every step of the plan
    /// (`testIamPermissions`, `SelfSubjectAccessReview`); exit 1 listing
    /// what is missing.
    #[arg(long)]
    pub check_permissions: bool,
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
    if args.check_permissions {
        let checked = pipeline.preflight(&plan, &live).await?;
        super::error::err_line(format_args!(
            "Permissions: {} may do every step of this plan ({checked} checked).",
            super::pipeline::identity(settings)
        ));
    }
    // Nothing below reads the live state: a fleet's is tens of megabytes.
    drop(live);
    // Saved before anything is printed: a reader that stops early (`| head`)
    // never costs the plan file.
    if let Some(path) = &args.out {
        let saved = crate::plan::file::SavedPlan {
            plan: plan.clone(),
            options: Some(crate::plan::file::PlanChoices {
                prune: options.prune,
                force_conflicts: options.force_conflicts,
                targets: options.target.clone(),
                excludes: options.exclude.clone(),
                allow_mass_removal: args.allow_mass_removal,
                max_removals_percent: args.max_removals_percent,
            }),
            spec_files: Some(pipeline.spec.files.clone()),
        };
        crate::plan::file::save(&saved, path)?;
    }
    let style = &settings.styles.stdout;
    let format = args.format();
    let mass = plan.mass_removals(args.max_removals_percent);
    if format == PlanFormat::Text && !mass.is_empty() {
        out(mass_removal_notice(&mass, args.allow_mass_removal))?;
    }
    if format == PlanFormat::Text && args.summary {
        out(crate::render::summary(&plan))?;
    } else if format == PlanFormat::Text {
        // Written a change at a time, not built whole first.
        out(crate::render::HumanPlan { plan: &plan, style })?;
    } else {
        out(render_with(&plan, format, style, &pipeline.spec.model)?)?;
    }
    // The notes are for people at a terminal; JSON and Markdown stay pure.
    let notes = format == PlanFormat::Text;
    let count = plan.actionable().count();
    if notes && !args.summary && count > SUMMARY_HINT_AFTER {
        outln(format_args!(
            "\nThis plan has {count} changes: `wi plan --summary` shows one line per project and cluster, and the destructive and disruptive changes."
        ))?;
    }
    if args.out.is_none() && notes && plan.has_changes() {
        outln(format_args!("\n{}", crate::render::not_saved_note(style)))?;
    }
    if let Some(path) = &args.out
        && notes
        && plan.has_unknowns()
    {
        outln(format_args!(
            "\nSaved the plan to: {}\n\nIt has unknowns, so `wi apply` refuses it: fix the reads, or plan again with --exclude.",
            path.display()
        ))?;
    } else if let Some(path) = &args.out
        && notes
    {
        outln(format_args!(
            "\nSaved the plan to: {}\n\nTo perform exactly these actions, run:\n    wi apply {}",
            path.display(),
            path.display()
        ))?;
    }
    if plan.has_unknowns() {
        return Err(partial_plan(&plan));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        Success::ChangesPresent
    } else {
        Success::Done
    })
}

/// The notice at the top of a plan that removes most of an owner's access.
pub(crate) fn mass_removal_notice(mass: &[crate::plan::MassRemoval], allowed: bool) -> String {
    let mut text = String::from("Warning: this plan removes most of an owner's access:\n");
    for m in mass {
        text.push_str(&format!("  - {m}\n"));
    }
    text.push_str(if allowed {
        "It was made with --allow-mass-removal, so `wi apply` will run it.\n\n"
    } else {
        "`wi apply` refuses it unless the plan is made with --allow-mass-removal.\n\n"
    });
    text
}

/// The error of a plan with unknowns: `wi plan` exits 1 after printing
/// (and saving) it; `wi apply` refuses it.
pub(crate) fn partial_plan(plan: &crate::plan::Plan) -> CliError {
    let list = bullets(plan.unknowns.iter().map(|u| {
        format!(
            "{} ({}): {}\n    fix: {}",
            u.scope, u.code, u.reason, u.help
        )
    }));
    miette::miette!(
        code = "wi::plan::unknowns",
        help = "fix what the plan shows for each, or leave them out with --exclude (a cluster or project name) and plan again",
        "the plan is partial: {} could not be read, so nothing was planned for {}:\n{list}",
        count(plan.unknowns.len()),
        if plan.unknowns.len() == 1 { "it" } else { "them" }
    )
    .into()
}

/// The refusal to apply a plan with unknowns.
pub(crate) fn unknowns_refused(plan: &crate::plan::Plan) -> CliError {
    let list = bullets(
        plan.unknowns
            .iter()
            .map(|u| format!("{} ({}): {}", u.scope, u.code, u.reason)),
    );
    miette::miette!(
        code = "wi::apply::unknowns",
        help = "a partial plan could remove or change what depends on what it could not see; fix the reads, or leave the unknowns out with --exclude (a cluster or project name) and plan again",
        "refusing to apply a plan with unknowns; nothing was changed:\n{list}"
    )
    .into()
}

/// One indented `  - ` line per item.
fn bullets(items: impl Iterator<Item = String>) -> String {
    items
        .map(|item| format!("  - {item}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 project or cluster".to_string()
    } else {
        format!("{n} projects or clusters")
    }
}

/// The refusal of a plan that removes most of an owner's access.
pub(crate) fn mass_removal_refused(mass: &[crate::plan::MassRemoval]) -> CliError {
    let list = bullets(mass.iter().map(ToString::to_string));
    miette::miette!(
        code = "wi::apply::mass_removal",
        help = "an emptied or truncated spec (a bad merge, a missing file) looks like this; if the removal is intended, plan again with --allow-mass-removal (or raise --max-removals-percent)",
        "refusing to apply a plan that removes most of an owner's access; nothing was changed:\n{list}"
    )
    .into()
}

/// Past this many changes the text plan points at `--summary`.
const SUMMARY_HINT_AFTER: usize = 500;

/// The plan as `format` prints it (`wi show`: no spec, so GitHub
/// annotations name no file).
pub(crate) fn render(
    plan: &crate::plan::Plan,
    format: PlanFormat,
    style: &crate::render::Style,
) -> Result<String, CliError> {
    render_with(plan, format, style, &crate::spec::Model::default())
}

/// The plan as `format` prints it, annotations at the lines of `model`.
pub(crate) fn render_with(
    plan: &crate::plan::Plan,
    format: PlanFormat,
    style: &crate::render::Style,
    model: &crate::spec::Model,
) -> Result<String, CliError> {
    Ok(match format {
        PlanFormat::Text => crate::render::human(plan, style),
        PlanFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&crate::render::json(plan)).into_diagnostic()?;
            text.push('\n');
            text
        }
        PlanFormat::Markdown => crate::render::markdown(plan, crate::render::PR_COMMENT_MAX_BYTES),
        PlanFormat::Github => crate::render::github::plan(plan, model),
    })
}
