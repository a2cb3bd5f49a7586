//! `wi import`: reads the live world of some projects and writes a spec that
//! reproduces it (stdout, or `-o FILE`), for adopting an existing set-up:
//! `wi import ... -o wi.yaml`, `wi validate -f wi.yaml`, `wi plan -f wi.yaml`.
//! Reads only.

use std::path::PathBuf;

use super::error::{CliError, Success, err_line, out};
use super::pipeline::gcp_client;
use super::settings::Settings;
use crate::import::{self, ImportFormat, ImportOptions};

/// The format of the written spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SpecFormat {
    /// YAML (the default).
    Yaml,
    /// TOML, the same keys.
    Toml,
}

fn project_id(s: &str) -> Result<String, String> {
    let ok = (6..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| s.to_owned()).ok_or_else(|| {
        "a project id: 6-30 lowercase letters, digits and hyphens, starting with a letter".into()
    })
}

fn owner_name(s: &str) -> Result<String, String> {
    let ok = (1..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| s.to_owned()).ok_or_else(|| {
        "an owner name: at most 30 lowercase letters, digits and hyphens, starting with a letter"
            .into()
    })
}

/// Arguments of `wi import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// A project to read (repeat for several).
    #[arg(long = "project", value_name = "PROJECT", required = true, value_parser = project_id)]
    pub projects: Vec<String>,
    /// Only these clusters: `NAME`, `PROJECT/NAME` or `PROJECT/LOCATION/NAME` (repeatable; default all).
    #[arg(long = "cluster", value_name = "CLUSTER")]
    pub clusters: Vec<String>,
    /// The spec's `owner:`.
    #[arg(long, value_name = "NAME", value_parser = owner_name)]
    pub owner: Option<String>,
    /// Mark the accounts `adopt: true`: the first apply records them as the owner's.
    #[arg(long)]
    pub adopt: bool,
    /// The spec's format.
    #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
    pub format: SpecFormat,
    /// Write the spec to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `wi import`.
pub(crate) async fn run(settings: &Settings, args: ImportArgs) -> Result<Success, CliError> {
    let gcp = gcp_client(settings).await?;
    let state = import::read(&gcp, &args.projects, settings.engine.parallelism).await?;
    let when = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let opts = ImportOptions {
        clusters: args.clusters,
        owner: args.owner,
        adopt: args.adopt,
        when,
    };
    let format = match args.format {
        SpecFormat::Yaml => ImportFormat::Yaml,
        SpecFormat::Toml => ImportFormat::Toml,
    };
    let (text, counts) = import::spec_text(&state, &opts, format);
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| {
                CliError::Other(miette::miette!(
                    code = "wi::import::write",
                    "cannot write {}: {e}",
                    path.display()
                ))
            })?;
            err_line(format!(
                "Wrote {}: {} cluster(s), {} service account(s), {} mapping(s); {} note(s) to review (`# wi import:`).",
                path.display(),
                counts.clusters,
                counts.service_accounts,
                counts.mappings,
                counts.undecided
            ));
        }
        None => out(text)?,
    }
    Ok(Success::Done)
}
