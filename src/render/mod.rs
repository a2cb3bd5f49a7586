//! Rendering: plans and apply results turned into what people and machines
//! read — Terraform-style text for terminals, versioned JSON for tools,
//! Markdown for pull-request comments, GitHub workflow annotations, progress
//! lines and the apply summary.
//!
//! Pure: nothing here does I/O, reads the environment or prints. The CLI makes
//! the one colour decision ([`Style`]) and writes the strings where they
//! belong (plans on stdout, progress and warnings on stderr).

mod apply_report;
pub mod github;
mod human;
mod json;
mod markdown;
mod sanitize;
pub mod style;

pub use apply_report::apply_summary;
pub(crate) use apply_report::{
    approval_prompt, format_elapsed, progress_done, progress_failed, progress_start,
};
pub use human::{HumanPlan, human, not_saved_note};
pub use json::{actions, json};
pub use markdown::{GITHUB_COMMENT_MAX_BYTES, PR_COMMENT_MAX_BYTES, drift_markdown, markdown};
pub(crate) use sanitize::{cut_long, sanitize};
pub use style::Style;

/// The compact text plan (`wi plan --summary`) for plans too big to read
/// change by change: the counts, one line per project and cluster, the
/// unknowns, and only the destructive and disruptive changes.
pub fn summary(plan: &crate::plan::Plan) -> String {
    use crate::plan::{Action, Group};
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    let s = plan.summary();
    let mut out = if plan.has_changes() {
        format!(
            "Plan: {} to add, {} to change, {} to destroy.\n",
            s.add, s.change, s.destroy
        )
    } else {
        "No changes. Your infrastructure matches the spec.\n".to_string()
    };
    let mut per: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    for c in plan.actionable() {
        let key = match c.resource.group() {
            Group::Project { project } => format!("project {project}"),
            Group::Cluster { cluster } | Group::Namespace { cluster, .. } => {
                format!("cluster {cluster}")
            }
        };
        let e = per.entry(sanitize(&key, false)).or_default();
        match c.action {
            Action::Create => e[0] += 1,
            Action::Update => e[1] += 1,
            Action::Delete => e[2] += 1,
            Action::NoOp => {}
        }
    }
    if !per.is_empty() {
        let width = per.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        out.push('\n');
        for (k, [a, c, d]) in &per {
            let _ = writeln!(out, "  {k:width$}  +{a} ~{c} -{d}");
        }
    }
    if !plan.unknowns.is_empty() {
        out.push_str("\nUnknown (not read, nothing planned):\n");
        for u in &plan.unknowns {
            let _ = writeln!(
                out,
                "  - {} ({}): {}",
                u.scope,
                u.code,
                sanitize(&u.reason, false)
            );
        }
    }
    let hot: Vec<String> = plan
        .actionable()
        .filter_map(|c| {
            let why: Vec<&str> = c
                .warnings
                .iter()
                .filter(|w| github::disruptive(w.code))
                .map(|w| w.code.title())
                .collect();
            if c.action != Action::Delete && why.is_empty() {
                return None;
            }
            let mut line = format!("  {} {}", c.action.symbol(), sanitize(&c.address, false));
            if c.action == Action::Delete {
                line.push_str(" (destroy)");
            }
            for w in why {
                let _ = write!(line, " ({w})");
            }
            Some(line)
        })
        .collect();
    if !hot.is_empty() {
        let _ = writeln!(out, "\nDestructive and disruptive changes ({}):", hot.len());
        for l in hot {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if plan.has_changes() {
        out.push_str("\n`wi plan` without --summary shows every change; `wi plan --format json` is the whole plan for tools.\n");
    }
    out
}
