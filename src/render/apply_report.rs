//! What an apply did, and how to say it: the renderers for apply's own
//! [`ApplyResult`], its stderr progress lines and final summary, in
//! Terraform's words (`ADDR: Creating...`, `Apply complete! Resources: ...`)
//! so people and log scrapers used to Terraform read them without surprise.
//!
//! A failed apply must say exactly what took effect, what failed and why, and
//! what was not attempted: the user has to decide what to do next from it.

use std::fmt::Write as _;
use std::time::Duration;

use super::style::{Style, sanitize};
use crate::apply::ApplyResult;
use crate::plan::Action;

/// The final summary: `Apply complete! Resources: N added, N changed, N
/// destroyed.` or, when something failed or the run was interrupted, the
/// counts followed by what failed and why and what was skipped.
pub fn apply_summary(report: &ApplyResult, style: &Style) -> String {
    let c = report.counts();
    let mut out = String::new();
    if report.succeeded() {
        let _ = writeln!(
            out,
            "{} Resources: {} added, {} changed, {} destroyed.",
            style.bold_green("Apply complete!"),
            c.added,
            c.changed,
            c.destroyed
        );
        return out;
    }
    let title = if report.failed.is_empty() && report.interrupted {
        "Apply interrupted:"
    } else {
        "Apply failed:"
    };
    let _ = writeln!(
        out,
        "{} {} added, {} changed, {} destroyed; {} failed, {} skipped.",
        style.bold_red(title),
        c.added,
        c.changed,
        c.destroyed,
        report.failed.len(),
        report.skipped.len()
    );
    if !report.failed.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", style.bold("Failed:"));
        for (addr, msg) in &report.failed {
            list_item(&mut out, style, &style.red("✗"), addr, msg);
        }
    }
    if !report.skipped.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "{}", style.bold("Skipped:"));
        for (addr, why) in &report.skipped {
            list_item(&mut out, style, &style.dim("-"), addr, why);
        }
    }
    out.push('\n');
    if report.interrupted {
        out.push_str("wi was interrupted. The steps that completed are in effect.\n");
    } else {
        out.push_str("The steps that completed are in effect.\n");
    }
    out.push_str(
        "Run `wi plan` to see what remains; applying again is safe, every step is idempotent.\n",
    );
    out
}

fn list_item(out: &mut String, style: &Style, bullet: &str, addr: &str, text: &str) {
    let text = super::sanitize::cut_long(&sanitize(text.trim(), true));
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let _ = writeln!(out, "  {bullet} {}: {first}", style.bold(addr));
    for l in lines {
        let _ = writeln!(out, "      {l}");
    }
}

fn verbs(action: Action) -> (&'static str, &'static str) {
    // (in progress, complete noun)
    match action {
        Action::Create => ("Creating...", "Creation"),
        Action::Update => ("Modifying...", "Modifications"),
        Action::Delete => ("Destroying...", "Destruction"),
        Action::NoOp => ("Checking...", "Check"),
    }
}

/// `ADDR: Creating...` / `Modifying...` / `Destroying...`.
pub(crate) fn progress_start(address: &str, action: Action, style: &Style) -> String {
    format!("{}: {}", style.bold(address), verbs(action).0)
}

/// `ADDR: Creation complete after 2s` / `Modifications complete after 2s` /
/// `Destruction complete after 2s`.
pub(crate) fn progress_done(
    address: &str,
    action: Action,
    elapsed: Duration,
    style: &Style,
) -> String {
    format!(
        "{}: {} complete after {}",
        style.bold(address),
        verbs(action).1,
        format_elapsed(elapsed)
    )
}

/// `ADDR: Creation failed after 2s` (the error itself goes in the summary).
pub(crate) fn progress_failed(
    address: &str,
    action: Action,
    elapsed: Duration,
    style: &Style,
) -> String {
    format!(
        "{}: {} {} after {}",
        style.bold(address),
        verbs(action).1,
        style.red("failed"),
        format_elapsed(elapsed)
    )
}

/// The confirmation prompt shown before an interactive apply.
pub(crate) fn approval_prompt(style: &Style) -> String {
    format!(
        "{}\n  wi will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  {} ",
        style.bold("Do you want to perform these actions?"),
        style.bold("Enter a value:")
    )
}

/// Whole seconds in Go's duration style, as Terraform prints them:
/// `0s`, `42s`, `1m0s`, `1h2m3s`.
pub(crate) fn format_elapsed(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_is_go_style() {
        assert_eq!(format_elapsed(Duration::from_millis(400)), "0s");
        assert_eq!(format_elapsed(Duration::from_secs(59)), "59s");
        assert_eq!(format_elapsed(Duration::from_secs(60)), "1m0s");
        assert_eq!(format_elapsed(Duration::from_secs(3723)), "1h2m3s");
    }

    #[test]
    fn progress_lines_read_like_terraform() {
        let p = Style::PLAIN;
        assert_eq!(progress_start("a", Action::Create, &p), "a: Creating...");
        assert_eq!(
            progress_done("a", Action::Delete, Duration::from_secs(2), &p),
            "a: Destruction complete after 2s"
        );
        assert_eq!(
            progress_done("a", Action::Update, Duration::from_secs(75), &p),
            "a: Modifications complete after 1m15s"
        );
        assert_eq!(
            progress_failed("a", Action::Create, Duration::from_secs(3), &p),
            "a: Creation failed after 3s"
        );
    }
}
