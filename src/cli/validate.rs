//! `wi validate`: load the spec set, report every problem of every file at
//! once (stderr, exit 1) or print a summary of what it declares (stdout,
//! exit 0): one line for one file; for a set, also each file in load order
//! with its owner.

use super::error::{CliError, Success};
use super::pipeline::spec_sources;
use super::settings::Settings;
use crate::spec;

/// Arguments of `wi validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Print the validated model (defaults, groups and `ksas` expanded, with
    /// every item's owner and origin file:line) as JSON instead of the summary.
    #[arg(long, conflicts_with = "format")]
    pub print_model: bool,
    /// How to report: text, or GitHub workflow-command annotations (one
    /// `::error` per problem at its file and line) on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
}

/// How `wi validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ValidateFormat {
    /// The summary on stdout, problems on stderr.
    Text,
    /// GitHub annotations on stdout (problems also on stderr).
    Github,
}

/// Runs `wi validate` (the spec set is every global `-f`, else `WI_SPEC`, else discovered).
pub(crate) async fn run(settings: &Settings, args: ValidateArgs) -> Result<Success, CliError> {
    let sources = spec_sources(settings.spec_file.as_deref())?;
    let (model, set) = match spec::load_set(&sources) {
        Ok(loaded) => loaded,
        Err(e) => {
            if args.format == ValidateFormat::Github {
                super::error::out(crate::render::github::validation(&e))?;
            }
            return Err(e.into());
        }
    };
    if args.print_model {
        let json = serde_json::to_string_pretty(&model)
            .map_err(|e| miette::miette!("cannot serialize the model: {e}"))?;
        super::error::outln(json)?;
        return Ok(Success::Done);
    }
    if args.format == ValidateFormat::Github {
        super::error::out(crate::render::github::valid(&format!(
            "{} is valid: {}.",
            set.display,
            summary(&model)
        )))?;
        return Ok(Success::Done);
    }
    let mut text = format!("✓ {} is valid: {}", set.display, summary(&model));
    if set.files.len() > 1 {
        text.push('\n');
        text.push_str(files_summary(&set).trim_end());
    }
    super::error::outln(text)?;
    Ok(Success::Done)
}

/// One line per file of a set, in load order, with the owner it declares.
fn files_summary(set: &spec::SpecSet) -> String {
    let width = set.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in &set.files {
        // The set is valid: reading the file's own `owner:` again cannot fail.
        let owner = spec::parse_raw(&f.text, &f.name, f.format)
            .ok()
            .and_then(|raw| raw.owner.map(|o| o.value))
            .unwrap_or_else(|| spec::Owner::Unnamed.name().to_owned());
        out.push_str(&format!("  {:width$}  owner: {owner}\n", f.name));
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "2 clusters, 2 service accounts, 4 mappings" (and absent members when any).
pub(crate) fn summary(model: &spec::Model) -> String {
    let mut parts = vec![
        plural(model.clusters.len(), "cluster", "clusters"),
        plural(
            model.service_accounts.len(),
            "service account",
            "service accounts",
        ),
        plural(model.mappings.len(), "KSA mapping", "KSA mappings"),
    ];
    if !model.absent.is_empty() {
        parts.push(plural(
            model.absent.len(),
            "absent member",
            "absent members",
        ));
    }
    let named: Vec<&str> = model
        .owners
        .iter()
        .filter(|o| matches!(o, spec::Owner::Named(_)))
        .map(spec::Owner::name)
        .collect();
    if !named.is_empty() {
        parts.push(format!(
            "{} {}",
            if named.len() == 1 { "owner" } else { "owners" },
            named.join(", ")
        ));
    }
    parts.join(", ")
}
