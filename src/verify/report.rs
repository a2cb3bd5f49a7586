//! The text of `wi verify`: one line per mapping, and for a broken one what
//! is wrong in plain words and the command that fixes it. Pure.

use std::fmt::Write;

use super::{Broken, MappingCheck, NodeReason, Outcome, PodExplanation, PodIdentity, VerifyReport};

/// `--location` for gcloud: `--zone` is deprecated in favour of it.
fn location_flags(c: &crate::spec::ClusterKey) -> String {
    format!("--location {} --project {}", c.location, c.project)
}

impl Broken {
    /// What is wrong, in plain words.
    pub fn describe(&self, check: &MappingCheck) -> String {
        let c = &check.cluster;
        let ksa = format!("{}/{}", check.namespace, check.ksa);
        let pool = c.workload_pool();
        match self {
            Broken::ClusterMissing => format!("cluster {} does not exist", c.name),
            Broken::NoWorkloadPool => format!(
                "cluster {} has no workload pool: Workload Identity is off, so pods get the node's identity",
                c.name
            ),
            Broken::WrongWorkloadPool { found } => {
                format!("cluster {} is in workload pool {found}, not {pool}", c.name)
            }
            Broken::PoolOnGceMetadata { pool, mode } => format!(
                "node pool {pool} still runs {mode}, not the GKE metadata server: pods there get the node's identity, not {}",
                check.gsa
            ),
            Broken::NamespaceMissing => format!("namespace {} does not exist", check.namespace),
            Broken::KsaMissing => format!("Kubernetes service account {ksa} does not exist"),
            Broken::AnnotationMissing => format!(
                "KSA {ksa} has no {} annotation: pods act as its federated principal, not as {}",
                crate::ownership::GSA_ANNOTATION,
                check.gsa
            ),
            Broken::AnnotationOther { found } => {
                format!("KSA {ksa} is annotated with {found}, not {}", check.gsa)
            }
            Broken::GsaMissing => format!("Google service account {} does not exist", check.gsa),
            Broken::BindingMissing => format!(
                "{} does not let {ksa} act as it: no roles/iam.workloadIdentityUser for serviceAccount:{pool}[{ksa}] (generateAccessToken fails with \"Permission 'iam.serviceAccounts.getAccessToken' denied\")",
                check.gsa
            ),
            Broken::ApiDisabled { project } => format!(
                "the IAM Service Account Credentials API (iamcredentials.googleapis.com) is disabled in project {project}: no pod can get a token for {}",
                check.gsa
            ),
            Broken::GsaDisabled => format!(
                "Google service account {} is disabled: token requests for it fail",
                check.gsa
            ),
            Broken::LeftoverAnnotation { found } => format!(
                "KSA {ksa} is still annotated {}={found}: its pods impersonate that account (and fail with 403 iam.serviceAccounts.getAccessToken without a binding) instead of using their own principal",
                crate::ownership::GSA_ANNOTATION
            ),
            Broken::DirectRoleMissing {
                role,
                resource,
                missing,
            } => format!(
                "the principal of {ksa} does not hold {role} on {resource}: testIamPermissions with its federated token lacks {}",
                missing.join(", ")
            ),
            Broken::Exchange { step, message } => {
                format!("{} was refused: {message}", step.describe())
            }
        }
    }

    /// The command (or change) that repairs the link.
    pub fn fix(&self, check: &MappingCheck) -> String {
        let c = &check.cluster;
        let pool = c.workload_pool();
        let (ns, ksa) = (&check.namespace, &check.ksa);
        match self {
            Broken::ClusterMissing => {
                "create it (`wi apply` does, with a `create:` block), or fix the spec's cluster"
                    .into()
            }
            Broken::NoWorkloadPool | Broken::WrongWorkloadPool { .. } => format!(
                "wi apply, or: gcloud container clusters update {} {} --workload-pool={pool}",
                c.name,
                location_flags(c)
            ),
            Broken::PoolOnGceMetadata { pool: np, .. } => format!(
                "wi apply, or: gcloud container node-pools update {np} --cluster {} {} --workload-metadata=GKE_METADATA",
                c.name,
                location_flags(c)
            ),
            Broken::NamespaceMissing | Broken::KsaMissing => format!(
                "wi apply (a mapping with `manage: create`), or: kubectl create serviceaccount {ksa} -n {ns}"
            ),
            Broken::AnnotationMissing | Broken::AnnotationOther { .. } => format!(
                "wi apply, or: kubectl annotate serviceaccount {ksa} -n {ns} --overwrite {}={}",
                crate::ownership::GSA_ANNOTATION,
                check.gsa
            ),
            Broken::GsaMissing => format!(
                "wi apply, or: gcloud iam service-accounts create {} --project {}",
                crate::ids::gsa_account_id(&check.gsa),
                crate::ids::gsa_project(&check.gsa).unwrap_or(&c.project)
            ),
            Broken::BindingMissing => format!(
                "wi apply, or: gcloud iam service-accounts add-iam-policy-binding {} --role roles/iam.workloadIdentityUser --member \"serviceAccount:{pool}[{ns}/{ksa}]\"",
                check.gsa
            ),
            Broken::ApiDisabled { project } => format!(
                "wi apply, or: gcloud services enable iamcredentials.googleapis.com --project {project}"
            ),
            Broken::GsaDisabled => format!(
                "wi apply (for an account wi owns), or: gcloud iam service-accounts enable {}",
                check.gsa
            ),
            Broken::LeftoverAnnotation { .. } => format!(
                "wi apply (it removes an annotation it owns), or: kubectl annotate serviceaccount {ksa} -n {ns} {}-",
                crate::ownership::GSA_ANNOTATION
            ),
            Broken::DirectRoleMissing { .. } => {
                "wi apply (it grants the role to the KSA's principal); `wi plan` shows the member it writes".into()
            }
            Broken::Exchange { .. } => {
                "check the step's error above; `wi plan` shows what differs from the spec".into()
            }
        }
    }
}

/// The report of `wi verify` (stdout).
pub fn render_report(report: &VerifyReport) -> String {
    let mut out = String::new();
    let cluster_width = report
        .checks
        .iter()
        .map(|c| c.cluster.name.len())
        .max()
        .unwrap_or(0);
    let ksa_width = report
        .checks
        .iter()
        .map(|c| c.namespace.len() + c.ksa.len() + 1)
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        let mark = match (&check.outcome, check.also_acts_as.is_empty()) {
            (Outcome::Works, true) => "ok    ",
            (Outcome::Works, false) => "WIDER ",
            (Outcome::Broken(_), _) => "BROKEN",
        };
        let ksa = format!("{}/{}", check.namespace, check.ksa);
        let _ = writeln!(
            out,
            "{mark}  {:<cluster_width$}  {ksa:<ksa_width$}  -> {}",
            check.cluster.name, check.gsa
        );
        if let Outcome::Broken(b) = &check.outcome {
            let _ = writeln!(out, "        {}", b.describe(check));
            let _ = writeln!(out, "        fix: {}", b.fix(check));
        }
        for other in &check.also_acts_as {
            let _ = writeln!(
                out,
                "        {}/{} can also act as {other}: it is bound to serviceAccount:{}[{}/{}], the principal every cluster of pool {} shares",
                check.namespace,
                check.ksa,
                check.cluster.workload_pool(),
                check.namespace,
                check.ksa,
                check.cluster.workload_pool()
            );
            let _ = writeln!(
                out,
                "        fix: map {}/{} to one account for all clusters of the pool, or use distinct namespace or KSA names",
                check.namespace, check.ksa
            );
        }
    }
    let total = report.checks.len();
    let failed = report.checks.iter().filter(|c| !c.passed()).count();
    let noun = |n: usize| if n == 1 { "mapping" } else { "mappings" };
    if total == 0 {
        out.push_str("No mappings to verify.\n");
    } else if failed == 0 && report.checks.iter().all(|c| c.direct) {
        let _ = writeln!(
            out,
            "\n{total} {} verified: each KSA holds its direct roles with its own principal.",
            noun(total)
        );
    } else if failed == 0 && report.checks.iter().any(|c| c.direct) {
        let _ = writeln!(
            out,
            "\n{total} {} verified: each KSA obtained a token for its Google service account and for no other, or holds its direct roles with its own principal.",
            noun(total)
        );
    } else if failed == 0 {
        let _ = writeln!(
            out,
            "\n{total} {} verified: each KSA obtained a token for its Google service account, and for no other.",
            noun(total)
        );
    } else {
        let _ = writeln!(
            out,
            "\n{} of {total} {} verified; {failed} failed.",
            total - failed,
            noun(total)
        );
    }
    out
}

/// The explanation of `wi verify --pod` (stdout).
pub fn render_pod(e: &PodExplanation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Pod {}/{} in cluster {} (KSA {}, node pool {}):",
        e.namespace,
        e.name,
        e.cluster,
        e.ksa,
        e.pool.as_deref().unwrap_or("unknown")
    );
    let node_sa = |account: &Option<String>| match account {
        Some(a) => a.clone(),
        None => "the Compute Engine default service account".to_string(),
    };
    match &e.identity {
        PodIdentity::Node {
            reason,
            node_account,
        } => {
            let _ = writeln!(out, "  gets the node's identity: {}", node_sa(node_account));
            let why = match reason {
                NodeReason::HostNetwork => "it runs on the host network (spec.hostNetwork: true), so its metadata requests reach the node's Compute Engine metadata server, not the GKE metadata server".to_string(),
                NodeReason::NoWorkloadPool => "the cluster has no workload pool: Workload Identity is off".to_string(),
                NodeReason::PoolOnGceMetadata { pool, mode } => format!(
                    "its node pool {pool} runs {mode}, not the GKE metadata server"
                ),
            };
            let _ = writeln!(out, "  because {why}");
            if !matches!(reason, NodeReason::HostNetwork) {
                let _ = writeln!(
                    out,
                    "  its KSA's mapping does not apply until the pool runs GKE_METADATA (`wi apply` with `metadataServer: all`)"
                );
            } else {
                let _ = writeln!(
                    out,
                    "  Workload Identity never applies to host-network pods: drop hostNetwork to get the KSA's identity"
                );
            }
        }
        PodIdentity::ServiceAccount { email, bound } => {
            let _ = writeln!(out, "  gets Google service account {email}");
            let _ = writeln!(
                out,
                "  because KSA {}/{} is annotated {}={email} and its node pool runs the GKE metadata server",
                e.namespace,
                e.ksa,
                crate::ownership::GSA_ANNOTATION
            );
            if *bound == Some(false) {
                let _ = writeln!(
                    out,
                    "  but {email} does not grant roles/iam.workloadIdentityUser to serviceAccount:{}[{}/{}]: the pod's token requests fail with 403",
                    e.cluster.workload_pool(),
                    e.namespace,
                    e.ksa
                );
            }
        }
        PodIdentity::Federated { member } => {
            let _ = writeln!(out, "  gets the KSA's federated principal {member}");
            let _ = writeln!(
                out,
                "  because KSA {}/{} has no {} annotation: IAM grants to that principal apply directly",
                e.namespace,
                e.ksa,
                crate::ownership::GSA_ANNOTATION
            );
        }
    }
    out
}
