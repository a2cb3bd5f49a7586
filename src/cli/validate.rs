//! `wi validate`: load the spec, report every problem at once (stderr, exit 1)
//! or print a one-line summary of what it declares (stdout, exit 0).

use std::path::Path;

use super::error::{CliError, Success};
use super::settings::Settings;
use crate::spec;

/// Arguments of `wi validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Print the validated model (defaults, groups and `ksas` expanded) as JSON
    /// instead of the summary.
    #[arg(long)]
    pub print_model: bool,
}

/// Runs `wi validate` (the spec is the global `-f`, else `WI_SPEC`, else discovered).
pub(crate) async fn run(settings: &Settings, args: ValidateArgs) -> Result<Success, CliError> {
    let path = match settings.spec_file.clone() {
        Some(p) => p,
        None => {
            let found = spec::discover(Path::new("."))?;
            // Show `wi.yaml`, not `./wi.yaml`, in the summary and diagnostics.
            found
                .strip_prefix(".")
                .map(Path::to_path_buf)
                .unwrap_or(found)
        }
    };
    let model = spec::load_file(&path)?;
    if args.print_model {
        let json = serde_json::to_string_pretty(&model)
            .map_err(|e| miette::miette!("cannot serialize the model: {e}"))?;
        super::error::outln(json)?;
        return Ok(Success::Done);
    }
    super::error::outln(format_args!(
        "✓ {} is valid: {}",
        path.display(),
        summary(&model)
    ))?;
    Ok(Success::Done)
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
    parts.join(", ")
}
