//! A compact Markdown plan for pull-request comments: one table row per
//! change, the warnings, what exists but is not managed by `wi` (as the
//! human plan lists it), and the full human plan folded in a `<details>`
//! block. Comment hosts cap the size (GitHub: 65,536 characters), and a
//! comment that fails to post hides the plan entirely, so the output is cut
//! to a byte budget: the details go first, then table rows, always with a
//! note saying what was left out.

use std::fmt::Write as _;

use super::human::{NOT_MANAGED_HEADING, human, not_managed};
use super::style::Style;
use crate::plan::{Action, Plan, ResourceChange};

/// GitHub's limit on an issue or pull-request comment body.
pub const GITHUB_COMMENT_MAX_BYTES: usize = 65_536;

/// Bytes kept free for the truncation note while filling the budget.
const NOTE_RESERVE: usize = 320;

/// Renders the plan as Markdown no longer than `max_bytes` bytes.
pub fn markdown(plan: &Plan, max_bytes: usize) -> String {
    let changes: Vec<&ResourceChange> = {
        let mut v: Vec<&ResourceChange> = plan.actionable().collect();
        v.sort_by_cached_key(|c| c.resource.sort_key());
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
    let table_head = "| | Resource | Action | Reason |\n|:-:|---|---|---|\n";
    let rows: Vec<String> = changes.iter().map(|c| row(c)).collect();
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

    // Everything, if it fits.
    let mut full = head.clone();
    if !rows.is_empty() {
        full.push_str(table_head);
        rows.iter().for_each(|r| full.push_str(r));
    }
    full.push_str(&warnings);
    full.push_str(&unmanaged);
    if !details.is_empty() {
        full.push_str(&details_open);
        for l in &details {
            full.push_str(l);
            full.push('\n');
        }
        full.push_str(details_close);
    }
    if full.len() <= max_bytes {
        return full;
    }

    // Otherwise fill the budget in priority order.
    let budget = max_bytes.saturating_sub(NOTE_RESERVE);
    let mut out = head;
    // Rows by priority (destroys, then changes with warnings, then the
    // rest), shown in plan order: a reviewer must never miss a destroy.
    let mut shown_rows = 0;
    if !rows.is_empty() && out.len() + table_head.len() <= budget {
        out.push_str(table_head);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| (priority(changes[i]), i));
        let mut keep = vec![false; rows.len()];
        let mut used = out.len();
        for i in order {
            if used + rows[i].len() <= budget {
                used += rows[i].len();
                keep[i] = true;
                shown_rows += 1;
            }
        }
        for (r, _) in rows.iter().zip(&keep).filter(|(_, k)| **k) {
            out.push_str(r);
        }
    }
    if shown_rows == rows.len() && out.len() + warnings.len() <= budget {
        out.push_str(&warnings);
        if out.len() + unmanaged.len() <= budget {
            out.push_str(&unmanaged);
        }
    }
    let mut shown_lines = 0;
    if shown_rows == rows.len()
        && out.len() + details_open.len() + details_close.len() + 40 <= budget
    {
        let room = budget - out.len() - details_open.len() - details_close.len() - 40;
        let mut used = 0;
        for l in &details {
            if used + l.len() + 1 > room {
                break;
            }
            used += l.len() + 1;
            shown_lines += 1;
        }
        if shown_lines > 0 {
            out.push_str(&details_open);
            for l in &details[..shown_lines] {
                out.push_str(l);
                out.push('\n');
            }
            let _ = writeln!(out, "… {} more lines", details.len() - shown_lines);
            out.push_str(details_close);
        }
    }
    let mut note = format!("\n> **Note:** output truncated to fit {max_bytes} bytes: ");
    if shown_rows < rows.len() {
        let _ = write!(
            note,
            "{} of {} changes listed{}, warnings and full plan omitted.",
            shown_rows,
            rows.len(),
            if s.destroy > 0 {
                " (destroys first)"
            } else {
                ""
            }
        );
    } else if shown_lines == 0 {
        note.push_str("full plan omitted.");
    } else {
        note.push_str("full plan cut short.");
    }
    note.push_str(" Run `wi plan` or read the JSON plan (`wi plan --json`) for everything.\n");
    out.push_str(&note);
    truncate_at_char(out, max_bytes)
}

/// Lower is kept first when rows must be dropped.
fn priority(c: &ResourceChange) -> u8 {
    match c.action {
        Action::Delete => 0,
        _ if !c.warnings.is_empty() => 1,
        _ => 2,
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
    super::style::sanitize(text, false).replace('|', "\\|")
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
