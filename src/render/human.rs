//! The human plan, in Terraform's conventions, so that anyone who has read a
//! `terraform plan` can review a `wi plan` without learning anything new:
//! a legend of the actions present, one commented block per change with
//! `+ ~ -` lines aligned on `=`, `"old" -> "new"`, unchanged attributes hidden
//! and counted, and the `Plan: N to add, N to change, N to destroy.` summary.
//!
//! IAM is always shown member by member (that is how [`Resource`] models it),
//! never as a policy blob, so removing one member reads as one line.

use std::fmt::Write as _;

use serde_json::Value;
use similar::{Algorithm, DiffTag, capture_diff_slices};

use super::sanitize::cut_long;
use super::style::{Style, sanitize};
use crate::plan::{Action, Group, Plan, ReasonCode, Resource, ResourceChange, Warning};

/// Attributes shown even when unchanged, so an update names what it touches
/// (Terraform does the same with `id`, `name` and `tags`).
const IDENTIFYING: &[&str] = &[
    "id",
    "name",
    "email",
    "account_id",
    "member",
    "role",
    "service",
];

/// Width of group heading rules and wrapped warning text.
const WIDTH: usize = 76;

/// Collections whose one-line form is at most this long stay on one line.
const INLINE_MAX: usize = 60;

/// Renders a plan for people. With `style.color == false` the result contains
/// no escape codes. No-op changes are hidden; their count is not shown.
pub fn human(plan: &Plan, style: &Style) -> String {
    HumanPlan { plan, style }.to_string()
}

/// The human plan as it is written: [`human`] without holding the whole
/// text, one change at a time (a fleet's plan is megabytes of text).
pub struct HumanPlan<'p> {
    pub plan: &'p Plan,
    pub style: &'p Style,
}

impl std::fmt::Display for HumanPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_human(self.plan, self.style, f)
    }
}

/// Writes the human plan to `sink`, a block at a time.
fn write_human(plan: &Plan, style: &Style, sink: &mut dyn std::fmt::Write) -> std::fmt::Result {
    let mut out = String::new();
    for u in &plan.unknowns {
        out.push_str(&unknown_box(u, style));
        out.push('\n');
    }
    if plan.has_changes() {
        render_changes(plan, style, &mut out, sink)?;
        let s = plan.summary();
        let _ = writeln!(
            out,
            "{} {} to add, {} to change, {} to destroy.",
            style.bold("Plan:"),
            s.add,
            s.change,
            s.destroy
        );
    } else if plan.has_unknowns() {
        let _ = writeln!(
            out,
            "{} What wi could read matches the spec; the unknowns above were not planned.",
            style.bold("No changes.")
        );
    } else {
        let _ = writeln!(
            out,
            "{} Your infrastructure matches the spec.",
            style.bold_green("No changes.")
        );
        out.push('\n');
        out.push_str(
            "wi compared the spec with the live state of your projects and clusters\n\
             and found no differences, so no changes are needed.\n",
        );
    }
    render_not_managed(plan, style, &mut out);
    for w in &plan.warnings {
        out.push('\n');
        out.push_str(&warning_box(w, style));
    }
    sink.write_str(&out)
}

/// The changes, each written to `sink` once rendered into `out`.
fn render_changes(
    plan: &Plan,
    style: &Style,
    out: &mut String,
    sink: &mut dyn std::fmt::Write,
) -> std::fmt::Result {
    let mut changes: Vec<&ResourceChange> = plan.actionable().collect();
    changes.sort_by_cached_key(|c| c.resource.sort_key());

    out.push_str(
        "wi compared the spec with the live state and computed the following plan.\n\
         Resource actions are indicated with the following symbols:\n",
    );
    for (action, label) in [
        (Action::Create, "create"),
        (Action::Update, "update in-place"),
        (Action::Delete, "destroy"),
    ] {
        if changes.iter().any(|c| c.action == action) {
            let _ = writeln!(out, "  {} {label}", style.symbol(action));
        }
    }
    out.push('\n');
    out.push_str("wi will perform the following actions:\n");

    // Where each actionable change is shown, to point out waits that cross
    // groups (a binding waiting for a cluster's workload pool, failure 3.1
    // of the reference); waits inside a group are evident from the order.
    let groups: std::collections::BTreeMap<&str, Group> = changes
        .iter()
        .map(|c| (c.address.as_str(), c.resource.group()))
        .collect();
    let mut current: Option<Group> = None;
    for change in changes {
        let group = change.resource.group();
        if current.as_ref() != Some(&group) {
            out.push('\n');
            out.push_str(&style.bold(&heading(&group)));
            out.push('\n');
            current = Some(group);
        }
        out.push('\n');
        let waits: Vec<&str> = change
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| groups.get(d).is_some_and(|g| Some(g) != current.as_ref()))
            .collect();
        render_change(change, &waits, style, out);
        sink.write_str(out)?;
        out.clear();
    }
    out.push('\n');
    Ok(())
}

/// What the spec names that exists but is not this spec's owner's (an
/// account nobody owns, or another owner's, and the bindings on it; a KSA
/// made by hand, by Helm or by another owner, which wi only annotates): wi
/// only adds to these and never removes from them, which a reviewer must
/// know, because removing such a mapping later leaves its binding.
pub(crate) fn not_managed(plan: &Plan) -> Vec<(&str, &str)> {
    plan.changes
        .iter()
        .filter_map(|c| match &c.not_managed {
            Some(why) => Some((c.address.as_str(), why.as_str())),
            None if c.action == Action::NoOp && c.reason.code == ReasonCode::NotOwned => {
                Some((c.address.as_str(), c.reason.message.as_str()))
            }
            None => None,
        })
        .collect()
}

/// The heading of the [`not_managed`] list.
pub(crate) const NOT_MANAGED_HEADING: &str =
    "Exists, not managed by wi (wi only adds to these and never removes from them):";

fn render_not_managed(plan: &Plan, style: &Style, out: &mut String) {
    let items = not_managed(plan);
    if items.is_empty() {
        return;
    }
    out.push('\n');
    let _ = writeln!(out, "{}", style.bold(NOT_MANAGED_HEADING));
    for (address, why) in items {
        let _ = writeln!(out, "  # {}", sanitize(address, false));
        let _ = writeln!(out, "    ({})", sanitize(why.trim(), false));
    }
}

/// Terraform's reminder, for the CLI to print after a plan made without
/// `--out`: only a saved plan guarantees what apply will do.
pub fn not_saved_note(style: &Style) -> String {
    let mut out = "─".repeat(WIDTH);
    out.push_str("\n\n");
    let _ = writeln!(
        out,
        "{} You didn't use the --out option to save this plan, so wi can't guarantee\n\
         to take exactly these actions if you run \"wi apply\" now.",
        style.bold("Note:")
    );
    out
}

/// `# ── project wi-demo ─────────…`, padded to a fixed width.
fn heading(group: &Group) -> String {
    let mut h = format!("# ── {group} ");
    let used = h.chars().count();
    for _ in used..WIDTH {
        h.push('─');
    }
    if used >= WIDTH {
        h.push_str("──");
    }
    h
}

/// One change: comment lines (what, why, what it waits for, warnings), then
/// the block.
fn render_change(change: &ResourceChange, waits: &[&str], style: &Style, out: &mut String) {
    let verb = match change.action {
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in-place".to_string(),
        Action::Delete => format!("will be {}", style.bold_red("destroyed")),
        Action::NoOp => "is up to date".to_string(),
    };
    let _ = writeln!(
        out,
        "  {} {verb}",
        style.bold(&format!("# {}", sanitize(&change.address, false)))
    );
    let reason = sanitize(&change.reason.message, false);
    let reason = reason.trim().trim_end_matches('.');
    if !reason.is_empty() {
        if reason.to_ascii_lowercase().starts_with("because ") {
            let _ = writeln!(out, "  # ({reason})");
        } else {
            let _ = writeln!(out, "  # (because {reason})");
        }
    }
    for w in waits {
        let _ = writeln!(out, "  # (waits for {w})");
    }
    for w in &change.warnings {
        let _ = writeln!(
            out,
            "  {}",
            style.yellow(&format!(
                "# Warning: {}",
                cut_long(&sanitize(w.message.trim(), false))
            ))
        );
    }
    let _ = writeln!(
        out,
        "  {} {} {{",
        style.symbol(change.action),
        block_header(&change.resource)
    );
    let mut lines = Vec::new();
    let r = Renderer { style };
    r.entries(attribute_entries(change), 6, true, &mut lines);
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("    }\n");
}

/// `service_account_iam_member "roles/iam.workloadIdentityUser"`.
fn block_header(resource: &Resource) -> String {
    let mut h = resource.type_name().to_string();
    for label in resource.labels() {
        h.push(' ');
        h.push_str(&json_string(label));
    }
    h
}

/// How one attribute (or element) moves from before to after.
#[derive(Debug, Clone, Copy)]
enum Diff<'a> {
    Added(&'a Value),
    Removed(&'a Value),
    Changed(&'a Value, &'a Value),
    Same(&'a Value),
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn pair<'a>(before: Option<&'a Value>, after: Option<&'a Value>) -> Option<Diff<'a>> {
    match (non_null(before), non_null(after)) {
        (None, None) => None,
        (None, Some(b)) => Some(Diff::Added(b)),
        (Some(a), None) => Some(Diff::Removed(a)),
        (Some(a), Some(b)) if a == b => Some(Diff::Same(a)),
        (Some(a), Some(b)) => Some(Diff::Changed(a, b)),
    }
}

fn attribute_entries(change: &ResourceChange) -> Vec<(String, Diff<'_>)> {
    let before = change.before.as_ref();
    let after = change.after.as_ref();
    match change.action {
        Action::Create => after
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| pair(None, Some(v)).map(|d| (k.to_string(), d)))
            .collect(),
        Action::Delete => before
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| pair(Some(v), None).map(|d| (k.to_string(), d)))
            .collect(),
        Action::Update | Action::NoOp => {
            let mut keys: Vec<&str> = before
                .into_iter()
                .flatten()
                .chain(after.into_iter().flatten())
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter_map(|k| {
                    pair(before.and_then(|m| m.get(k)), after.and_then(|m| m.get(k)))
                        .map(|d| (k.to_string(), d))
                })
                .collect()
        }
    }
}

struct Renderer<'s> {
    style: &'s Style,
}

impl Renderer<'_> {
    /// Keyed entries at symbol column `ind`: unchanged ones hidden and
    /// counted (top-level identifying attributes excepted), keys aligned.
    fn entries(
        &self,
        entries: Vec<(String, Diff<'_>)>,
        ind: usize,
        top: bool,
        out: &mut Vec<String>,
    ) {
        let total = entries.len();
        let shown: Vec<(String, Diff<'_>)> = entries
            .into_iter()
            .filter(|(k, d)| {
                !matches!(d, Diff::Same(_)) || (top && IDENTIFYING.contains(&k.as_str()))
            })
            .collect();
        let hidden = total - shown.len();
        // Attribute names are data too (a saved plan's, or a nested object's keys).
        let shown: Vec<(String, Diff<'_>)> = shown
            .into_iter()
            .map(|(k, d)| (sanitize(&k, false), d))
            .collect();
        let width = shown
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (k, d) in &shown {
            let pad = width - k.chars().count();
            let key = format!("{k}{} = ", " ".repeat(pad));
            self.entry(&key, *d, ind, "", true, out);
        }
        if hidden > 0 {
            let word = match (top, hidden) {
                (true, 1) => "attribute",
                (true, _) => "attributes",
                (false, 1) => "element",
                (false, _) => "elements",
            };
            out.push(format!(
                "{}{}",
                " ".repeat(ind + 2),
                self.style
                    .dim(&format!("# ({hidden} unchanged {word} hidden)"))
            ));
        }
    }

    /// One entry; `key` is `"name = "` (padded) or empty for list elements,
    /// `suffix` is `","` for list elements. `tail` puts `-> null` after a
    /// removed value (only at the root of a removed subtree).
    fn entry(
        &self,
        key: &str,
        d: Diff<'_>,
        ind: usize,
        suffix: &str,
        tail: bool,
        out: &mut Vec<String>,
    ) {
        let s = self.style;
        let lead = |action: Action| format!("{}{} {key}", " ".repeat(ind), s.symbol(action));
        let null_tail = if tail {
            format!(" {}", s.dim("-> null"))
        } else {
            String::new()
        };
        match d {
            Diff::Same(v) => {
                out.push(format!("{}{}{suffix}", lead(Action::NoOp), inline(v)));
            }
            Diff::Added(v) | Diff::Removed(v) => {
                let (action, tail_text) = match d {
                    Diff::Added(_) => (Action::Create, String::new()),
                    _ => (Action::Delete, null_tail),
                };
                let wrap = |e| match action {
                    Action::Create => Diff::Added(e),
                    _ => Diff::Removed(e),
                };
                match v {
                    Value::Array(items) if !fits_inline(v) => {
                        out.push(format!("{}[", lead(action)));
                        for item in items {
                            self.entry("", wrap(item), ind + 4, ",", false, out);
                        }
                        out.push(format!("{}]{tail_text}{suffix}", " ".repeat(ind + 2)));
                    }
                    Value::Object(map) if !fits_inline(v) => {
                        out.push(format!("{}{{", lead(action)));
                        let mut entries = map
                            .iter()
                            .map(|(k, e)| (json_string(k), wrap(e)))
                            .collect::<Vec<_>>();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        let mut inner = Vec::new();
                        self.nested(entries, ind + 4, &mut inner);
                        out.extend(inner);
                        out.push(format!("{}}}{tail_text}{suffix}", " ".repeat(ind + 2)));
                    }
                    _ => out.push(format!("{}{}{tail_text}{suffix}", lead(action), inline(v))),
                }
            }
            Diff::Changed(Value::Array(a), Value::Array(b)) => {
                out.push(format!("{}[", lead(Action::Update)));
                let old: Vec<String> = a.iter().map(inline).collect();
                let new: Vec<String> = b.iter().map(inline).collect();
                let mut same = 0usize;
                for op in capture_diff_slices(Algorithm::Myers, &old, &new) {
                    let (tag, old_range, new_range) = op.as_tag_tuple();
                    match tag {
                        DiffTag::Equal => same += old_range.len(),
                        DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                            for item in &a[old_range] {
                                self.entry("", Diff::Removed(item), ind + 4, ",", false, out);
                            }
                            for item in &b[new_range] {
                                self.entry("", Diff::Added(item), ind + 4, ",", false, out);
                            }
                        }
                    }
                }
                if same > 0 {
                    let word = if same == 1 { "element" } else { "elements" };
                    out.push(format!(
                        "{}{}",
                        " ".repeat(ind + 6),
                        s.dim(&format!("# ({same} unchanged {word} hidden)"))
                    ));
                }
                out.push(format!("{}]{suffix}", " ".repeat(ind + 2)));
            }
            Diff::Changed(Value::Object(a), Value::Object(b)) => {
                out.push(format!("{}{{", lead(Action::Update)));
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                let entries = keys
                    .into_iter()
                    .filter_map(|k| pair(a.get(k), b.get(k)).map(|d| (json_string(k), d)))
                    .collect();
                self.entries(entries, ind + 4, false, out);
                out.push(format!("{}}}{suffix}", " ".repeat(ind + 2)));
            }
            Diff::Changed(a, b) => {
                out.push(format!(
                    "{}{} {} {}{suffix}",
                    lead(Action::Update),
                    inline(a),
                    s.yellow("->"),
                    inline(b)
                ));
            }
        }
    }

    /// Entries of an added or removed object: all shown, keys aligned.
    fn nested(&self, entries: Vec<(String, Diff<'_>)>, ind: usize, out: &mut Vec<String>) {
        let entries: Vec<(String, Diff<'_>)> = entries
            .into_iter()
            .map(|(k, d)| (sanitize(&k, false), d))
            .collect();
        let width = entries
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (k, d) in entries {
            let pad = width - k.chars().count();
            let key = format!("{k}{} = ", " ".repeat(pad));
            self.entry(&key, d, ind, "", false, out);
        }
    }
}

/// A JSON string literal (quotes and escapes).
pub(crate) fn json_string(s: &str) -> String {
    // serde_json escapes C0 controls but not C1, bidirectional overrides
    // or invisible characters: those are shown too.
    sanitize(
        &serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\"")),
        false,
    )
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Short collections of scalars stay on one line.
fn fits_inline(v: &Value) -> bool {
    match v {
        Value::Array(items) => {
            items.is_empty()
                || (items.iter().all(is_scalar) && inline(v).chars().count() <= INLINE_MAX)
        }
        Value::Object(map) => {
            map.is_empty()
                || (map.values().all(is_scalar) && inline(v).chars().count() <= INLINE_MAX)
        }
        _ => true,
    }
}

/// A value as a one-line JSON literal: `"s"`, `3`, `["a", "b"]`, `{"k": "v"}`
/// (object keys sorted, so the same value always reads the same).
pub(crate) fn inline(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            if map.is_empty() {
                return "{}".to_string();
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .filter_map(|k| {
                    map.get(k)
                        .map(|v| format!("{}: {}", json_string(k), inline(v)))
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::String(s) => json_string(s),
        other => other.to_string(),
    }
}

/// A project or cluster that could not be read, as a diagnostic box at the
/// top of the plan: what, why, what to do, and what it held back.
fn unknown_box(u: &crate::plan::Unknown, style: &Style) -> String {
    let bar = |s: &str| style.red(s);
    let mut out = String::new();
    let _ = writeln!(out, "{}", bar("╷"));
    let _ = writeln!(
        out,
        "{} {}{}",
        bar("│"),
        style.bold_red("Unknown: "),
        style.bold(&format!(
            "{} could not be read ({})",
            sanitize(&u.scope.to_string(), false),
            u.code
        ))
    );
    let _ = writeln!(out, "{}", bar("│"));
    let mut paragraphs = vec![
        cut_long(&sanitize(u.reason.trim(), true)),
        format!("help: {}", cut_long(&sanitize(u.help.trim(), true))),
    ];
    if !u.held_back.is_empty() {
        paragraphs.push(format!(
            "Also not planned, because they depend on it: {}",
            u.held_back.join(", ")
        ));
    }
    paragraphs.push(
        "Nothing is planned for it. `wi apply` refuses this plan unless --exclude (or --target) leaves it out.".to_string(),
    );
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out, "{}", bar("│"));
        }
        for line in wrap(paragraph, WIDTH - 2) {
            let _ = writeln!(out, "{} {line}", bar("│"));
        }
    }
    let _ = writeln!(out, "{}", bar("╵"));
    out
}

/// A plan-level warning as a Terraform diagnostic box.
fn warning_box(w: &Warning, style: &Style) -> String {
    let bar = |s: &str| style.yellow(s);
    let mut out = String::new();
    let _ = writeln!(out, "{}", bar("╷"));
    let _ = writeln!(
        out,
        "{} {}{}",
        bar("│"),
        style.bold_yellow("Warning: "),
        style.bold(w.code.title())
    );
    let _ = writeln!(out, "{}", bar("│"));
    if let Some(addr) = &w.address {
        let _ = writeln!(out, "{}   with {addr}", bar("│"));
        let _ = writeln!(out, "{}", bar("│"));
    }
    for paragraph in cut_long(&sanitize(w.message.trim(), true)).split('\n') {
        for line in wrap(paragraph, WIDTH - 2) {
            if line.is_empty() {
                let _ = writeln!(out, "{}", bar("│"));
            } else {
                let _ = writeln!(out, "{} {line}", bar("│"));
            }
        }
    }
    let _ = writeln!(out, "{}", bar("╵"));
    out
}

/// Greedy word wrap; words longer than `width` stay whole.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_renders_json_literals() {
        assert_eq!(inline(&serde_json::json!("a\"b")), r#""a\"b""#);
        assert_eq!(
            inline(&serde_json::json!(["a", 1, true])),
            r#"["a", 1, true]"#
        );
        assert_eq!(inline(&serde_json::json!({"k": null})), r#"{"k": null}"#);
        assert_eq!(
            inline(&serde_json::json!({"b": 1, "a": [2]})),
            r#"{"a": [2], "b": 1}"#
        );
    }

    #[test]
    fn wrap_breaks_on_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5), vec![""]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abcdefgh"]);
    }
}
