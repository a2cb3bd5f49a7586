//! `wi verify`: prove that each mapping yields its Google identity (exit 0
//! only when all do), or, with `--pod`, explain which identity one pod gets.

use super::error::{CliError, Success, out};
use super::pipeline::{LoadedSpec, gcp_client, load_spec};
use super::settings::Settings;
use crate::gcp::GcpClient;
use crate::live::{LiveState, Reader};
use crate::verify::{Verifier, explain_pod, render_pod, render_report};

/// Reads live state for the spec's model.
async fn read_live(
    settings: &Settings,
    gcp: &GcpClient,
    spec: &LoadedSpec,
) -> Result<LiveState, CliError> {
    let reader = Reader {
        gcp,
        parallelism: settings.engine.parallelism,
        identity: None,
    };
    Ok(reader.read(&spec.model).await?)
}

/// Arguments of `wi verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Explain which identity this pod gets and why, instead of verifying
    /// the mappings (needs --cluster).
    #[arg(long, value_name = "NAMESPACE/NAME", requires = "cluster")]
    pub pod: Option<String>,
    /// The cluster of --pod: its name, or `project/location/name`.
    #[arg(long, value_name = "CLUSTER", requires = "pod")]
    pub cluster: Option<String>,
}

/// Runs `wi verify`.
pub(crate) async fn run(settings: &Settings, args: VerifyArgs) -> Result<Success, CliError> {
    let spec = load_spec(settings.spec_file.as_deref())?;
    let gcp = gcp_client(settings).await?;
    if let (Some(pod), Some(cluster)) = (&args.pod, &args.cluster) {
        return explain(settings, &gcp, &spec, pod, cluster).await;
    }
    let verifier = Verifier {
        gcp: &gcp,
        parallelism: settings.engine.parallelism,
        targets: settings.plan_options.target.clone(),
        excludes: settings.plan_options.exclude.clone(),
    };
    let model = &spec.model;
    for pattern in &verifier.targets {
        let direct = Verifier {
            gcp: &gcp,
            parallelism: 1,
            targets: vec![pattern.clone()],
            excludes: Vec::new(),
        };
        if !model
            .mappings
            .iter()
            .any(|m| crate::verify::names_mapping(pattern, m))
            && direct.selected_direct(model).is_empty()
        {
            return Err(miette::miette!(
                code = "wi::verify::target",
                help = "name a cluster (`alpha` or `project/location/name`), a `NAMESPACE/KSA` or a Google service account of the spec's mappings",
                "--target {pattern:?} names no mapping of the spec"
            )
            .into());
        }
    }
    let live = read_live(settings, &gcp, &spec).await?;
    let report = verifier.verify(model, &live).await;
    out(render_report(&report))?;
    if report.passed() {
        Ok(Success::Done)
    } else {
        let failed = report.checks.iter().filter(|c| !c.passed()).count();
        Err(miette::miette!(
            code = "wi::verify::failed",
            help = "each failed mapping above names its first broken link and the fix",
            "{failed} of {} {} failed verification",
            report.checks.len(),
            if report.checks.len() == 1 {
                "mapping"
            } else {
                "mappings"
            }
        )
        .into())
    }
}

/// `--pod NAMESPACE/NAME --cluster C`.
async fn explain(
    settings: &Settings,
    gcp: &GcpClient,
    spec: &LoadedSpec,
    pod: &str,
    cluster: &str,
) -> Result<Success, CliError> {
    let Some((namespace, name)) = pod
        .split_once('/')
        .filter(|(n, p)| !n.is_empty() && !p.is_empty() && !p.contains('/'))
    else {
        return Err(miette::miette!(
            code = "wi::verify::pod",
            help = "write the pod as NAMESPACE/NAME, e.g. --pod payments/api-0",
            "--pod {pod:?} is not NAMESPACE/NAME"
        )
        .into());
    };
    let model = &spec.model;
    let matching: Vec<_> = model
        .clusters
        .iter()
        .filter(|c| c.key.name == cluster || c.key.to_string() == cluster)
        .collect();
    let key = match matching.as_slice() {
        [one] => one.key.clone(),
        [] => {
            let known: Vec<String> = model.clusters.iter().map(|c| c.key.name.clone()).collect();
            return Err(miette::miette!(
                code = "wi::verify::cluster",
                help = format!("the spec's clusters: {}", known.join(", ")),
                "--cluster {cluster:?} is not a cluster of the spec"
            )
            .into());
        }
        _ => {
            return Err(miette::miette!(
                code = "wi::verify::cluster",
                help = "name it as project/location/name",
                "--cluster {cluster:?} names more than one cluster of the spec"
            )
            .into());
        }
    };
    let live = read_live(settings, gcp, spec).await?;
    // The pod itself, read by name: the live read keeps only pod names.
    let pod = match live.clusters.get(&key).and_then(|c| c.gke.as_ref()) {
        Some(gke) => {
            let context = model
                .clusters
                .iter()
                .find(|c| c.key == key)
                .and_then(|c| c.kube_context.as_deref());
            let token = gcp
                .access_token()
                .await
                .map_err(|e| miette::miette!(code = "wi::verify::pod", "{e}"))?;
            let conn = crate::live::connect_cluster(gke, token, context)
                .await
                .map_err(|e| {
                    miette::miette!(code = "wi::verify::pod", "connecting to {key}: {e}")
                })?;
            conn.get_pod(namespace, name).await.map_err(|e| {
                miette::miette!(
                    code = "wi::verify::pod",
                    "reading pod {namespace}/{name}: {e}"
                )
            })?
        }
        None => None,
    };
    match explain_pod(&live, pod.as_ref(), &key, namespace, name) {
        Ok(e) => {
            out(render_pod(&e))?;
            Ok(Success::Done)
        }
        Err(problem) => Err(miette::miette!(code = "wi::verify::pod", "{problem}").into()),
    }
}
