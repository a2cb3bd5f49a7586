//! `wi audit`: every cluster of the spec's projects, and who else gets the
//! spec's identities (undeclared clusters of a pool, broad mappings and
//! principal sets, pods that get the node's identity, annotations without
//! bindings, bindings the spec does not make, disabled accounts), with who
//! can edit the accounts' policies. Reads only.

use super::error::{CliError, Success, out};
use super::pipeline::{gcp_client, load_spec};
use super::settings::Settings;
use crate::audit::{self, Severity};

/// The lowest severity that makes `wi audit` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailOn {
    /// Never: exit 0 whatever is found (the default).
    None,
    /// Any warning or error.
    Warning,
    /// Any error.
    Error,
}

/// Arguments of `wi audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a finding of this severity or worse exists.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = FailOn::None)]
    pub fail_on: FailOn,
}

/// Runs `wi audit`.
pub(crate) async fn run(settings: &Settings, args: AuditArgs) -> Result<Success, CliError> {
    let spec = load_spec(settings.spec_file.as_deref())?;
    let gcp = gcp_client(settings).await?;
    let state = audit::read(&gcp, &spec.model, settings.engine.parallelism).await?;
    let report = audit::audit(&spec.model, &state);
    out(if args.json {
        audit::json(&report)
    } else {
        audit::text(&report)
    })?;
    let level = match args.fail_on {
        FailOn::None => return Ok(Success::Done),
        FailOn::Warning => Severity::Warning,
        FailOn::Error => Severity::Error,
    };
    match report.count_at_least(level) {
        0 => Ok(Success::Done),
        n => Err(CliError::Other(miette::miette!(
            code = "wi::audit::findings",
            "{n} finding{} at or above {} (--fail-on {})",
            if n == 1 { "" } else { "s" },
            level.as_str(),
            level.as_str()
        ))),
    }
}
