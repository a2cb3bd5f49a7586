//! The pipeline `plan`, `apply` and `demo` share, in the order data flows:
//! load the spec, build the Google client from the settings, read live
//! state, plan, and (for apply) run the plan's steps. Written once so the
//! commands differ only in what they print and ask.

use std::collections::BTreeMap;
use std::path::Path;

use miette::{IntoDiagnostic, WrapErr};
use tokio::sync::watch;

use super::error::CliError;
use super::progress::StderrProgress;
use super::settings::Settings;
use crate::apply::{ApplyOptions, ApplyResult};
use crate::gcp::{ClientOptions, Endpoints, GcpClient};
use crate::live::{LiveState, Reader};
use crate::plan::{Plan, PlanOptions};
use crate::spec::Model;

/// A loaded spec: the model and the digest of its text.
pub(crate) struct LoadedSpec {
    pub model: Model,
    /// sha256 of the text the model came from (a saved plan records it).
    pub digest: String,
}

/// Finds (when `file` is `None`) and loads the spec.
pub(crate) fn load_spec(file: Option<&Path>) -> Result<LoadedSpec, CliError> {
    let path = match file {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().into_diagnostic()?;
            crate::spec::discover(&cwd)?
        }
    };
    // One read: the model and the digest come from the same text.
    let (model, text) = crate::spec::load_file_with_source(&path)?;
    Ok(LoadedSpec {
        model,
        digest: crate::spec::digest(&text),
    })
}

/// Builds the Google client from the settings' environment (gcloud's
/// endpoint overrides, CA file, credentials) and poll interval.
pub(crate) async fn gcp_client(settings: &Settings) -> Result<GcpClient, CliError> {
    let env = &settings.env;
    let get = |k: &str| env.get(k).cloned();
    let endpoints = Endpoints::from_env_vars(get).into_diagnostic()?;
    let tokens = crate::gcp::auth::token_source_from_env(get)
        .await
        .into_diagnostic()
        .wrap_err("no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_AUTH_ACCESS_TOKEN_FILE or run `gcloud auth application-default login`")?;
    let mut options = ClientOptions::from_env_vars(get);
    if let Some(interval) = settings.engine.poll_interval {
        options.retry.poll_min = interval;
        options.retry.poll_max = interval * 4;
    }
    Ok(GcpClient::new(endpoints, tokens, options).into_diagnostic()?)
}

/// A spec and a client to the world it describes.
pub(crate) struct Pipeline<'s> {
    settings: &'s Settings,
    pub spec: LoadedSpec,
    gcp: GcpClient,
}

impl<'s> Pipeline<'s> {
    /// Loads the spec (`file`, else discovered) and connects.
    pub(crate) async fn open(
        settings: &'s Settings,
        file: Option<&Path>,
    ) -> Result<Pipeline<'s>, CliError> {
        let spec = load_spec(file)?;
        let gcp = gcp_client(settings).await?;
        Ok(Pipeline {
            settings,
            spec,
            gcp,
        })
    }

    /// Reads live state for the model.
    pub(crate) async fn read_live(&self) -> Result<LiveState, CliError> {
        let reader = Reader {
            gcp: &self.gcp,
            parallelism: self.settings.engine.parallelism,
        };
        Ok(reader.read(&self.spec.model).await?)
    }

    /// Computes the plan of the model against `live`.
    pub(crate) fn plan(&self, live: &LiveState, options: &PlanOptions) -> Result<Plan, CliError> {
        Ok(crate::plan::compute(
            &self.spec.model,
            live,
            options,
            self.spec.digest.clone(),
        )?)
    }

    /// Runs the plan's steps with progress on stderr; `interrupt` turning
    /// true stops new steps from starting.
    pub(crate) async fn apply(
        &self,
        plan: &Plan,
        live: &LiveState,
        force_conflicts: bool,
        interrupt: watch::Receiver<bool>,
    ) -> ApplyResult {
        let options = ApplyOptions {
            parallelism: self.settings.engine.parallelism,
            force_conflicts,
            step_deadline: self.settings.engine.step_deadline,
            ..Default::default()
        };
        let kube_contexts: BTreeMap<_, _> = self
            .spec
            .model
            .clusters
            .iter()
            .map(|c| (c.key.clone(), c.kube_context.clone()))
            .collect();
        crate::apply::apply(
            plan,
            live,
            kube_contexts,
            self.gcp.clone(),
            options,
            StderrProgress::shared(self.settings.styles.stderr),
            interrupt,
        )
        .await
    }

    /// Prints the apply summary on stdout.
    pub(crate) fn print_summary(&self, result: &ApplyResult) -> Result<(), CliError> {
        super::error::out(crate::render::apply_summary(
            result,
            &self.settings.styles.stdout,
        ))
    }
}
