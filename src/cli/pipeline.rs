//! The pipeline `plan`, `apply` and `demo` share, in the order data flows:
//! load the spec set (every `-f`, else the discovered file), build the Google client from the settings, read live
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
use crate::spec::{Model, SpecFile, SpecSet, SpecSource};

/// A loaded spec set: the model and the digest of its files.
pub(crate) struct LoadedSpec {
    pub model: Model,
    /// The digest of the set (a saved plan records it; see `SpecSet::digest`).
    pub digest: String,
    /// The files of the set, in order (a saved plan carries them).
    pub files: Vec<SpecFile>,
}

/// The sources to load: `sources`, else the spec discovered in the current directory.
pub(crate) fn spec_sources(sources: Option<&[SpecSource]>) -> Result<Vec<SpecSource>, CliError> {
    match sources {
        Some(s) if !s.is_empty() => Ok(s.to_vec()),
        _ => {
            let found = crate::spec::discover(Path::new("."))?;
            // Name `wi.yaml`, not `./wi.yaml`, in summaries, diagnostics and origins.
            let found = found
                .strip_prefix(".")
                .map(Path::to_path_buf)
                .unwrap_or(found);
            Ok(vec![SpecSource::Path(found)])
        }
    }
}

/// Finds (when `sources` is `None`) and loads the spec set.
pub(crate) fn load_spec(sources: Option<&[SpecSource]>) -> Result<LoadedSpec, CliError> {
    let sources = spec_sources(sources)?;
    // One read: the model and the digest come from the same text.
    let (model, set) = crate::spec::load_set(&sources)?;
    Ok(LoadedSpec {
        model,
        digest: set.digest(),
        files: set.files,
    })
}

/// Validates spec files already read (those a saved plan carries).
pub(crate) fn load_files(files: Vec<SpecFile>) -> Result<LoadedSpec, CliError> {
    let display = files
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let set = SpecSet { files, display };
    let model = crate::spec::load_spec_set(&set)?;
    Ok(LoadedSpec {
        model,
        digest: set.digest(),
        files: set.files,
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
    options.max_in_flight = settings.engine.parallelism;
    if let Some(interval) = settings.engine.poll_interval {
        options.retry.poll_min = interval;
        options.retry.poll_max = interval * 4;
    }
    Ok(GcpClient::new(endpoints, tokens, options).into_diagnostic()?)
}

/// Who `wi` calls Google as, for messages (never a token): the
/// `client_email` of a service-account key, else where the credentials
/// come from.
pub(crate) fn identity(settings: &Settings) -> String {
    let env = &settings.env;
    let set = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(file) = set("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE") {
        return format!("the identity of the access token in {file}");
    }
    if let Some(file) = set("GOOGLE_APPLICATION_CREDENTIALS") {
        let email = std::fs::read_to_string(file).ok().and_then(|text| {
            let key: serde_json::Value = serde_json::from_str(&text).ok()?;
            key.get("client_email")?.as_str().map(str::to_string)
        });
        return match email {
            Some(email) => email,
            None => format!("the credentials in {file}"),
        };
    }
    "your application default credentials".to_string()
}

/// A spec and a client to the world it describes.
pub(crate) struct Pipeline<'s> {
    settings: &'s Settings,
    pub spec: LoadedSpec,
    gcp: GcpClient,
}

impl<'s> Pipeline<'s> {
    /// Loads the spec set (`sources`, else discovered) and connects.
    pub(crate) async fn open(
        settings: &'s Settings,
        sources: Option<&[SpecSource]>,
    ) -> Result<Pipeline<'s>, CliError> {
        let spec = load_spec(sources)?;
        Self::with_spec(settings, spec).await
    }

    /// Connects for a spec set already loaded.
    pub(crate) async fn with_spec(
        settings: &'s Settings,
        spec: LoadedSpec,
    ) -> Result<Pipeline<'s>, CliError> {
        let gcp = gcp_client(settings).await?;
        Ok(Pipeline {
            settings,
            spec,
            gcp,
        })
    }

    /// Reads live state for the model.
    pub(crate) async fn read_live(&self) -> Result<LiveState, CliError> {
        let identity = identity(self.settings);
        let reader = Reader {
            gcp: &self.gcp,
            parallelism: self.settings.engine.parallelism,
            identity: Some(&identity),
        };
        match reader.read_partial(&self.spec.model).await {
            Ok(live) => Ok(live),
            // A refusal names the identity and the permission it lacks.
            Err(e) => match crate::permissions::Denied::from_live(e, &identity) {
                Ok(denied) => Err(miette::Report::new(denied).into()),
                Err(e) => Err(CliError::Live(e)),
            },
        }
    }

    /// The permission pre-flight: asks Google (`testIamPermissions`) and
    /// each cluster (`SelfSubjectAccessReview`) whether the caller may do
    /// every step of `plan`, and refuses, changing nothing, when it may
    /// not. Returns how many checks passed.
    pub(crate) async fn preflight(&self, plan: &Plan, live: &LiveState) -> Result<usize, CliError> {
        let needs = crate::permissions::required(plan, live);
        let missing = crate::permissions::check(&self.gcp, &self.spec.model, live, &needs)
            .await
            .map_err(miette::Report::new)?;
        if missing.is_empty() {
            return Ok(needs.len());
        }
        Err(miette::Report::new(crate::permissions::MissingPermissions {
            identity: identity(self.settings),
            missing,
        })
        .into())
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
            identity: Some(identity(self.settings)),
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
