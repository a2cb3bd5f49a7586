//! `wi plan`: show what apply would change, as text, JSON or a saved plan.

use std::path::PathBuf;

use miette::IntoDiagnostic;

use super::session::{self, ConnectArgs};
use super::{EXIT_CHANGES, EXIT_OK};
use crate::plan::PlanOptions;

/// Arguments of `wi plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print the machine-readable plan (versioned JSON) instead of text.
    #[arg(long)]
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

pub async fn run(args: PlanArgs) -> miette::Result<u8> {
    session::init_logging(args.connect.verbose);
    let env = session::process_environment();
    let (model, _path, digest) = session::load_spec(args.connect.file.as_deref())?;
    let gcp = session::gcp_client(&env).await?;
    let live = session::read_live(&gcp, &model, args.connect.parallelism).await?;
    let options = PlanOptions {
        prune: args.prune,
        force_conflicts: args.force_conflicts,
    };
    let plan = session::make_plan(&model, &live, &options, digest)?;
    if args.json {
        let text = serde_json::to_string_pretty(&crate::render::json(&plan)).into_diagnostic()?;
        println!("{text}");
    } else {
        print!(
            "{}",
            crate::render::human(&plan, &session::style(args.connect.no_color, &env))
        );
    }
    if args.out.is_none() && !args.json && plan.has_changes() {
        println!(
            "\n{}",
            crate::render::not_saved_note(&session::style(args.connect.no_color, &env))
        );
    }
    if let Some(out) = &args.out {
        crate::plan::file::write(&plan, out).into_diagnostic()?;
        if !args.json {
            println!(
                "\nSaved the plan to: {}\n\nTo perform exactly these actions, run:\n    wi apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}
