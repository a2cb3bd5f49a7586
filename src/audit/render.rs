//! The audit report as text (for people) and JSON (for CI).

use std::fmt::Write;

use super::{AuditReport, Severity};

/// Version of the audit JSON. Minor bumps only add keys.
pub const FORMAT_VERSION: &str = "1.0";

/// The report for people: the clusters of each project, the findings, and
/// who can edit the accounts' policies.
pub fn text(report: &AuditReport) -> String {
    let mut out = String::new();
    let mut project = "";
    let width = report
        .clusters
        .iter()
        .map(|c| c.cluster.len())
        .max()
        .unwrap_or(0);
    for c in &report.clusters {
        let p = c.cluster.split('/').next().unwrap_or_default();
        if p != project {
            if !project.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "Clusters of project {p}:");
            project = p;
        }
        let declared = if c.declared {
            "in the spec"
        } else {
            "NOT in the spec"
        };
        let pool = match (&c.workload_pool, c.exists) {
            (_, false) => "does not exist".to_owned(),
            (Some(pool), true) => format!("workload pool {pool}"),
            (None, true) => "no workload pool".to_owned(),
        };
        let gce = if c.gce_metadata_pools.is_empty() || c.workload_pool.is_none() {
            String::new()
        } else {
            format!(", GCE_METADATA pools: {}", c.gce_metadata_pools.join(", "))
        };
        let _ = writeln!(out, "  {:width$}  {declared:15}  {pool}{gce}", c.cluster);
    }
    if !report.clusters.is_empty() {
        out.push('\n');
    }
    if report.findings.is_empty() {
        out.push_str("No findings.\n");
    } else {
        let errors = report.count_at_least(Severity::Error);
        let warnings = report.findings.len() - errors;
        let _ = writeln!(
            out,
            "Findings: {} {}, {} {}",
            errors,
            if errors == 1 { "error" } else { "errors" },
            warnings,
            if warnings == 1 { "warning" } else { "warnings" }
        );
        for f in &report.findings {
            let _ = writeln!(
                out,
                "\n  {:7} [{}] {}",
                f.severity.as_str(),
                f.code.as_str(),
                f.subject
            );
            let _ = writeln!(out, "          {}", f.message);
        }
    }
    if !report.policy_editors.is_empty() {
        out.push_str(
            "\nWho can change who acts as the accounts of the spec's projects (setIamPolicy):\n",
        );
        for (email, editors) in &report.policy_editors {
            let _ = writeln!(out, "  {email}");
            if editors.is_empty() {
                out.push_str("    (no member found in the project or account policy)\n");
            }
            for e in editors {
                let _ = writeln!(out, "    {}  {} on {}", e.member, e.role, e.on);
            }
        }
    }
    out
}

/// The report as versioned JSON.
pub fn json(report: &AuditReport) -> String {
    let value = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "wi_version": crate::VERSION,
        "clusters": report.clusters,
        "findings": report.findings,
        "policy_editors": report.policy_editors,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
