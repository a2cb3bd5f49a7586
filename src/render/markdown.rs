//! Markdown for pull-request comments (`--format markdown` of `wi plan`,
//! `wi show` and `wi drift`): a summary table per project and cluster,
//! destructive and disruptive changes first in their own table, the rest
//! folded in a `<details>` block, the warnings, what exists but is not
//! managed by `wi` (as the human plan lists it), and the full human plan
//! folded too. Comment hosts cap the size (GitHub: 65,536 characters), and
//! a comment that fails to post hides the plan entirely, so the output is
//! cut to a byte budget (bytes, so never more characters either), filled in
//! reading order, always with a note saying what was left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::human::{NOT_MANAGED_HEADING, human, not_managed};
use super::style::Style;
use crate::drift::DriftReport;
use crate::plan::{Action, Group, Plan, ResourceChange, WarningCode};

/// GitHub's limit on an issue or pull-request comment body.
pub const GITHUB_COMMENT_MAX_BYTES: usize = 65_536;

/// The budget `--format markdown` renders to: under GitHub's limit with
/// room for a header a CI step adds (a title, a link to the run).
pub const PR_COMMENT_MAX_BYTES: usize = 60_000;

/// Bytes kept free for the truncation note while filling the budget.
const NOTE_RESERVE: usize = 320;

/// Fills a byte budget section by section, in reading order.
struct Filler {
    out: String,
    budget: usize,
    /// A section or row did not fit: everything after it is left out.
    full: bool,
}

impl Filler {
    fn new(budget: usize) -> Self {
        Filler {
            out: String::new(),
            budget,
            full: false,
        }
    }

    /// Adds `text` whole, if it fits and nothing before was cut.
    fn add(&mut self, text: &str) -> bool {
        if self.full || self.out.len() + text.len() > self.budget {
            self.full = self.full || !text.is_empty();
            return false;
        }
        self.out.push_str(text);
        true
    }

    /// Adds `open`, as many of `rows` as fit (in order) and `close`;
    /// returns how many rows were added.
    fn rows(&mut self, open: &str, rows: &[String], close: &str) -> usize {
        if rows.is_empty() {
            return 0;
        }
        if self.full || self.out.len() + open.len() + close.len() > self.budget {
            self.full = true;
            return 0;
        }
        self.out.push_str(open);
        let mut n = 0;
        for r in rows {
            if self.out.len() + r.len() + close.len() > self.budget {
                self.full = true;
                break;
            }
            self.out.push_str(r);
            n += 1;
        }
        self.out.push_str(close);
        n
    }
}

/// Whether a warning makes a change disruptive (it interrupts workloads).
fn disruptive_warning(code: WarningCode) -> bool {
    super::github::disruptive(code)
}

/// Destructive (a destroy) or disruptive (a warning that interrupts workloads).
fn is_disruptive(c: &ResourceChange) -> bool {
    c.action == Action::Delete || c.warnings.iter().any(|w| disruptive_warning(w.code))
}

/// The summary row key of a change: its project, or its cluster.
fn scope_key(c: &ResourceChange) -> String {
    match c.resource.group() {
        Group::Project { project } => format!("project `{}`", code_cell(&project)),
        Group::Cluster { cluster } | Group::Namespace { cluster, .. } => {
            format!("cluster `{}`", code_cell(&cluster.to_string()))
        }
    }
}

fn summary_table(plan: &Plan) -> Vec<String> {
    let mut counts: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    for c in plan.actionable() {
        let e = counts.entry(scope_key(c)).or_default();
        match c.action {
            Action::Create => e[0] += 1,
            Action::Update => e[1] += 1,
            Action::Delete => e[2] += 1,
            Action::NoOp => {}
        }
    }
    counts
        .into_iter()
        .map(|(k, [a, c, d])| format!("| {k} | {a} | {c} | {d} |\n"))
        .collect()
}

/// Past this many rows, the table of the changes that are neither
/// destructive nor disruptive is folded in `<details>`.
const FOLD_AFTER: usize = 10;

/// The opening and closing of the table of the other changes: a heading
/// for a few, a folded `<details>` block for more.
fn rest_table(n: usize, after_hot: bool, noun: &str, table_head: &str) -> (String, &'static str) {
    let plural = if n == 1 { "" } else { "s" };
    let label = if after_hot {
        format!("{n} other {noun}{plural}")
    } else {
        format!("All {n} {noun}{plural}")
    };
    if n > FOLD_AFTER {
        (
            format!("\n<details><summary>{label}</summary>\n\n{table_head}"),
            "\n</details>\n",
        )
    } else {
        let mut heading = label;
        if let Some(first) = heading.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        (format!("\n#### {heading}\n\n{table_head}"), "")
    }
}

/// Renders the plan as Markdown no longer than `max_bytes` bytes.
pub fn markdown(plan: &Plan, max_bytes: usize) -> String {
    let changes: Vec<&ResourceChange> = {
        let mut v: Vec<&ResourceChange> = plan.actionable().collect();
        v.sort_by_cached_key(|c| (priority(c), c.resource.sort_key()));
        v
    };
    let s = plan.summary();
    let head = if plan.has_changes() {
        format!(
            "### wi plan: {} to add, {} to change, {} to destroy\n\n",
            s.add, s.change, s.destroy
        )
    } else {
        "### wi plan: no changes\n\nYour infrastructure matches the spec.\n".to_string()
    };
    let head = head + &unknowns_section(plan);
    let summary_open = "| Project / cluster | Add | Change | Destroy |\n|---|--:|--:|--:|\n";
    let summary_rows = summary_table(plan);
    let table_head = "| | Resource | Action | Reason |\n|:-:|---|---|---|\n";
    let (hot, rest): (Vec<&ResourceChange>, Vec<&ResourceChange>) =
        changes.iter().partition(|c| is_disruptive(c));
    let hot_rows: Vec<String> = hot.iter().map(|c| row(c)).collect();
    let rest_rows: Vec<String> = rest.iter().map(|c| row(c)).collect();
    let hot_open = format!("\n#### Destructive and disruptive changes\n\n{table_head}");
    let (rest_open, rest_close) = rest_table(rest.len(), !hot.is_empty(), "change", table_head);
    let warnings = warnings_section(plan);
    let unmanaged = not_managed_section(plan);
    let details: Vec<String> = if plan.has_changes() {
        human(plan, &Style::PLAIN)
            .lines()
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let details_open = format!(
        "\n<details><summary>Full plan ({} change{})</summary>\n\n````text\n",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    );
    let details_close = "````\n\n</details>\n";
    let detail_rows: Vec<String> = details.iter().map(|l| format!("{l}\n")).collect();

    let fill = |budget: usize| {
        let mut f = Filler::new(budget);
        f.add(&head);
        f.rows(summary_open, &summary_rows, "");
        let shown = f.rows(&hot_open, &hot_rows, "") + f.rows(&rest_open, &rest_rows, rest_close);
        f.add(&warnings);
        f.add(&unmanaged);
        let lines = f.rows(&details_open, &detail_rows, details_close);
        (f.out, f.full, shown, lines)
    };

    // Everything, if it fits.
    let (full, cut, _, _) = fill(max_bytes);
    if !cut {
        return full;
    }
    let (mut out, _, shown_rows, shown_lines) = fill(max_bytes.saturating_sub(NOTE_RESERVE));
    let mut note = format!("\n> **Note:** output truncated to fit {max_bytes} bytes: ");
    if shown_rows < changes.len() {
        let _ = write!(
            note,
            "{} of {} changes listed{}, warnings and full plan omitted.",
            shown_rows,
            changes.len(),
            if s.destroy > 0 {
                " (destroys first)"
            } else {
                ""
            }
        );
    } else if shown_lines == 0 {
        note.push_str("full plan omitted.");
    } else {
        let _ = write!(
            note,
            "full plan cut short ({} of {} lines).",
            shown_lines,
            details.len()
        );
    }
    note.push_str(
        " Run `wi plan` or read the JSON plan (`wi plan --format json`) for everything.\n",
    );
    out.push_str(&note);
    truncate_at_char(out, max_bytes)
}

/// Renders a drift report as Markdown no longer than `max_bytes` bytes.
pub fn drift_markdown(report: &DriftReport, max_bytes: usize) -> String {
    let mut head = format!("### {}\n\n", cell(&crate::drift::headline(report)));
    if !report.unknowns.is_empty() {
        head.push_str("#### Not read: drift unknown (`wi drift` exits 1)\n\n");
        for u in &report.unknowns {
            let _ = writeln!(
                head,
                "- **{} {}** (`{}`): {}. Help: {}.",
                u.kind,
                cell(&u.name),
                u.code,
                cell(u.reason.trim().trim_end_matches('.')),
                cell(u.help.trim().trim_end_matches('.'))
            );
        }
        head.push('\n');
    }
    // Per project, then per cluster (a project's own items have no cluster).
    let mut per: BTreeMap<(String, String), usize> = BTreeMap::new();
    for i in &report.items {
        let cluster = i
            .location
            .cluster
            .clone()
            .unwrap_or_else(|| "(project)".into());
        *per.entry((i.location.project.clone(), cluster))
            .or_default() += 1;
    }
    let summary_open = "| Project | Cluster | Drifted |\n|---|---|--:|\n";
    let summary_rows: Vec<String> = per
        .into_iter()
        .map(|((p, c), n)| format!("| `{}` | `{}` | {n} |\n", code_cell(&p), code_cell(&c)))
        .collect();
    let table_head = "| | Item | Where | Expected | Found | Who |\n|:-:|---|---|---|---|---|\n";
    let ordered = crate::drift::ordered(report);
    let (hot, rest): (Vec<_>, Vec<_>) = ordered.into_iter().partition(|i| i.disruptive);
    let drift_row = |i: &crate::drift::DriftItem| {
        let sym = match i.action.as_str() {
            "create" => "+",
            "delete" => "-",
            _ => "~",
        };
        let mut declared = String::new();
        if let Some(o) = &i.origin {
            let _ = write!(declared, " ({}:{})", cell(&o.file), o.line);
        }
        format!(
            "| `{sym}` | `{}`{declared} | {} | {} | {} | {} |\n",
            code_cell(&i.address),
            cell(&crate::drift::place(i)),
            cell(&crate::drift::values(i.expected.as_ref())),
            cell(&crate::drift::values(i.found.as_ref())),
            cell(&crate::drift::who_text(i).unwrap_or_default()),
        )
    };
    let hot_rows: Vec<String> = hot.iter().map(|i| drift_row(i)).collect();
    let rest_rows: Vec<String> = rest.iter().map(|i| drift_row(i)).collect();
    let hot_open = format!("\n#### Destructive and disruptive\n\n{table_head}");
    let (rest_open, rest_close) =
        rest_table(rest.len(), !hot.is_empty(), "drifted item", table_head);
    let fill = |budget: usize| {
        let mut f = Filler::new(budget);
        f.add(&head);
        f.rows(summary_open, &summary_rows, "");
        let shown = f.rows(&hot_open, &hot_rows, "") + f.rows(&rest_open, &rest_rows, rest_close);
        (f.out, f.full, shown)
    };
    let (full, cut, _) = fill(max_bytes);
    if !cut {
        return full;
    }
    let (mut out, _, shown) = fill(max_bytes.saturating_sub(NOTE_RESERVE));
    let _ = write!(
        out,
        "\n> **Note:** output truncated to fit {max_bytes} bytes: {shown} of {} drifted items listed (destructive and disruptive first). Run `wi drift` or read the JSON report (`wi drift --format json`) for everything.\n",
        report.items.len()
    );
    truncate_at_char(out, max_bytes)
}

/// Lower is kept first when rows must be dropped.
fn priority(c: &ResourceChange) -> u8 {
    match c.action {
        Action::Delete => 0,
        _ if is_disruptive(c) => 1,
        _ if !c.warnings.is_empty() => 2,
        _ => 3,
    }
}

fn row(c: &ResourceChange) -> String {
    let (sym, action) = match c.action {
        Action::Create => ("+", "create"),
        Action::Update => ("~", "update in-place"),
        Action::Delete => ("-", "**destroy**"),
        Action::NoOp => (" ", "no-op"),
    };
    let mut reason = cell(c.reason.message.trim());
    if !c.warnings.is_empty() {
        let _ = write!(reason, " ⚠️ {}", c.warnings.len());
    }
    format!(
        "| `{sym}` | `{}` | {action} | {reason} |\n",
        code_cell(&c.address)
    )
}

/// The projects and clusters that could not be read: always shown, before
/// the changes (a reviewer must know the plan is partial).
fn unknowns_section(plan: &Plan) -> String {
    if plan.unknowns.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("#### Unknown: not read, nothing planned (`wi apply` refuses this plan)\n\n");
    for u in &plan.unknowns {
        let _ = write!(
            out,
            "- **{}** (`{}`): {}. Help: {}.",
            cell(&u.scope.to_string()),
            u.code,
            cell(u.reason.trim().trim_end_matches('.')),
            cell(u.help.trim().trim_end_matches('.'))
        );
        if !u.held_back.is_empty() {
            let _ = write!(out, " Also held back: {}.", u.held_back.len());
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

fn warnings_section(plan: &Plan) -> String {
    let mut items = Vec::new();
    for c in plan.actionable() {
        for w in &c.warnings {
            items.push(format!(
                "- **{}** (`{}`): {}\n",
                w.code.title(),
                code_cell(&c.address),
                cell(w.message.trim())
            ));
        }
    }
    for w in &plan.warnings {
        let at = w
            .address
            .as_deref()
            .map(|a| format!(" (`{}`)", code_cell(a)))
            .unwrap_or_default();
        items.push(format!(
            "- **{}**{at}: {}\n",
            w.code.title(),
            cell(w.message.trim())
        ));
    }
    if items.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n#### Warnings\n\n");
    items.iter().for_each(|i| out.push_str(i));
    out
}

/// What the spec names that exists but is not this owner's, one bullet
/// each, under the human plan's heading.
fn not_managed_section(plan: &Plan) -> String {
    let items = not_managed(plan);
    if items.is_empty() {
        return String::new();
    }
    let heading = NOT_MANAGED_HEADING.trim_end_matches(':');
    let mut out = format!("\n#### {heading}\n\n");
    for (address, why) in items {
        let _ = writeln!(out, "- `{}`: {}", code_cell(address), cell(why.trim()));
    }
    out
}

/// Text safe inside a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    super::sanitize(text, false).replace('|', "\\|")
}

/// Text safe inside a code span in a table cell: as [`cell`], and no backticks.
fn code_cell(text: &str) -> String {
    cell(text).replace('`', "'")
}

fn truncate_at_char(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_escape_pipes() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_at_char("aé".to_string(), 2), "a");
        assert_eq!(truncate_at_char("abc".to_string(), 5), "abc");
    }
}
