//! `wi apply`: make live state match the spec, or run a saved plan.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use miette::IntoDiagnostic;
use tokio::sync::watch;

use super::session::{self, ConnectArgs};
use super::{EXIT_ERROR, EXIT_OK};
use crate::apply::ApplyOptions;
use crate::plan::{Fingerprint, Plan, PlanOptions};

/// Arguments of `wi apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// A plan saved by `wi plan --out FILE`: run exactly it, without asking again,
    /// and refuse it if live state has moved since.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
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

pub async fn run(args: ApplyArgs) -> miette::Result<u8> {
    session::init_logging(args.connect.verbose);
    let env = session::process_environment();
    let style = session::style(args.connect.no_color, &env);
    let (model, _path, digest) = session::load_spec(args.connect.file.as_deref())?;
    let gcp = session::gcp_client(&env).await?;
    let live = session::read_live(&gcp, &model, args.connect.parallelism).await?;

    let plan = match &args.plan_file {
        Some(file) => {
            let saved = crate::plan::file::read(file)?;
            check_fresh(&saved, &digest, &live.fingerprints())?;
            saved
        }
        None => {
            let options = PlanOptions {
                prune: args.prune,
                force_conflicts: args.force_conflicts,
            };
            let plan = session::make_plan(&model, &live, &options, digest)?;
            print!("{}", crate::render::human(&plan, &style));
            plan
        }
    };
    if !plan.has_changes() {
        if args.plan_file.is_some() {
            println!("No changes. Your infrastructure matches the spec.");
        }
        return Ok(EXIT_OK);
    }
    if args.plan_file.is_none() && !args.auto_approve && !confirm(&style)? {
        println!("\nApply cancelled.");
        return Ok(EXIT_ERROR);
    }

    let (interrupt_tx, interrupt_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nInterrupt received: no new steps will start; waiting for the running ones to finish..."
            );
            let _ = interrupt_tx.send(true);
        }
    });
    let options = ApplyOptions {
        parallelism: args.connect.parallelism,
        force_conflicts: args.force_conflicts,
        step_deadline: session::step_deadline(&env),
        ..Default::default()
    };
    let result = crate::apply::apply(
        &plan,
        &live,
        session::kube_contexts(&model),
        gcp,
        options,
        session::stderr_progress(args.connect.no_color, &env),
        interrupt_rx,
    )
    .await;
    print!("{}", crate::render::apply_summary(&result, &style));
    Ok(if result.succeeded() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

/// Refuses a saved plan made from another spec or from live state that has moved.
fn check_fresh(plan: &Plan, digest: &str, now: &[Fingerprint]) -> miette::Result<()> {
    if plan.spec_digest != digest {
        return Err(miette::miette!(
            code = "wi::apply::stale_plan",
            help = "run `wi plan --out FILE` again with the current spec",
            "plan is stale: it was made from a different version of the spec"
        ));
    }
    let then: std::collections::BTreeMap<&str, &str> = plan
        .fingerprints
        .iter()
        .map(|f| (f.source.as_str(), f.version.as_str()))
        .collect();
    let now_map: std::collections::BTreeMap<&str, &str> = now
        .iter()
        .map(|f| (f.source.as_str(), f.version.as_str()))
        .collect();
    let mut moved: Vec<String> = Vec::new();
    for (source, version) in &then {
        match now_map.get(source) {
            Some(v) if v == version => {}
            Some(_) => moved.push(format!("{source} changed")),
            None => moved.push(format!("{source} is gone")),
        }
    }
    for source in now_map.keys() {
        if !then.contains_key(source) {
            moved.push(format!("{source} appeared"));
        }
    }
    if moved.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = moved.iter().take(10).map(|m| format!("  - {m}")).collect();
    let more = if moved.len() > 10 {
        format!("\n  ... and {} more", moved.len() - 10)
    } else {
        String::new()
    };
    Err(miette::miette!(
        code = "wi::apply::stale_plan",
        help = "run `wi plan --out FILE` again and review the new plan",
        "plan is stale: live state has moved since the plan was made:\n{}{more}",
        shown.join("\n")
    ))
}

fn confirm(style: &crate::render::Style) -> miette::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(miette::miette!(
            code = "wi::apply::no_terminal",
            help = "pass --auto-approve, or save a reviewed plan with `wi plan --out FILE` and run `wi apply FILE`",
            "refusing to ask for confirmation without a terminal"
        ));
    }
    print!("\n{}", crate::render::approval_prompt(style));
    std::io::stdout().flush().into_diagnostic()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .into_diagnostic()?;
    Ok(line.trim() == "yes")
}
