//! The text form of a drift report (`wi drift`, the default format): one
//! block per drifted item, destructive and disruptive items first, then the
//! projects and clusters that could not be read. Plain text; the CLI prints
//! it. Markdown and GitHub annotations live in `render`.

use std::fmt::Write as _;

use serde_json::Value;

use super::{DriftItem, DriftReport, clean};

/// The heading line: what the report covers and what it found.
pub(crate) fn headline(r: &DriftReport) -> String {
    let scope = match (r.shard, r.merged_shards) {
        (Some(s), _) => format!(" (shard {s})"),
        (None, Some(n)) => format!(" ({n} shards merged)"),
        _ => String::new(),
    };
    let s = &r.summary;
    let mut line = if s.drifted == 0 {
        format!("No drift{scope}: the live world matches the spec")
    } else {
        format!(
            "Drift{scope}: {} item{} in {} project{} and {} cluster{}",
            s.drifted,
            plural(s.drifted),
            s.by_project.len(),
            plural(s.by_project.len()),
            s.by_cluster.len(),
            plural(s.by_cluster.len()),
        )
    };
    if s.unknown > 0 {
        let _ = write!(
            line,
            "; {} project{} or cluster{} not read, drift there is unknown",
            s.unknown,
            plural(s.unknown),
            plural(s.unknown)
        );
    }
    line.push('.');
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The items in the order people read them: destructive and disruptive first.
pub(crate) fn ordered(r: &DriftReport) -> Vec<&DriftItem> {
    let mut items: Vec<&DriftItem> = r.items.iter().collect();
    items.sort_by_key(|i| !i.disruptive);
    items
}

/// `where` of an item as one phrase.
pub(crate) fn place(i: &DriftItem) -> String {
    let l = &i.location;
    let mut parts = vec![format!("project {}", l.project)];
    if let Some(c) = &l.cluster {
        parts.push(format!("cluster {c}"));
    }
    if let Some(a) = &l.account {
        parts.push(format!("account {a}"));
    }
    if let Some(n) = &l.namespace {
        parts.push(format!("namespace {n}"));
    }
    if let Some(k) = &l.ksa {
        parts.push(format!("KSA {k}"));
    }
    clean(&parts.join(", "))
}

/// `who` of an item as one phrase, when the API told.
pub(crate) fn who(i: &DriftItem) -> Option<String> {
    let w = i.who.as_ref()?;
    let mut text = String::new();
    if !w.managers.is_empty() {
        let _ = write!(text, "field managers {}; ", w.managers.join(", "));
    }
    let _ = write!(text, "{} at version {}", w.source, w.version);
    Some(clean(&text))
}

/// `expected` or `found` attributes as one phrase.
pub(crate) fn values(v: Option<&std::collections::BTreeMap<String, Value>>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(m) if m.is_empty() => "(no attribute differs)".to_string(),
        Some(m) => clean(
            &m.iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

fn symbol(action: &str) -> &'static str {
    match action {
        "create" => "+",
        "delete" => "-",
        _ => "~",
    }
}

/// The report as text for a terminal or a log.
pub fn text(r: &DriftReport) -> String {
    let mut out = headline(r);
    out.push('\n');
    for i in ordered(r) {
        let _ = writeln!(out, "\n  {} {}", symbol(&i.action), clean(&i.address));
        let _ = writeln!(out, "      what:     {} ({})", clean(&i.message), i.reason);
        let _ = writeln!(out, "      where:    {}", place(i));
        let _ = writeln!(out, "      expected: {}", values(i.expected.as_ref()));
        let _ = writeln!(out, "      found:    {}", values(i.found.as_ref()));
        if let Some(who) = who(i) {
            let _ = writeln!(out, "      who:      {who}");
        }
        if let Some(o) = &i.origin {
            let _ = writeln!(out, "      declared: {}:{}", clean(&o.file), o.line);
        }
    }
    if !r.unknowns.is_empty() {
        out.push_str("\nNot read (drift unknown):\n");
        for u in &r.unknowns {
            let _ = writeln!(
                out,
                "  - {} {} ({}): {}\n    fix: {}",
                u.kind, u.name, u.code, u.reason, u.help
            );
        }
    }
    if !r.items.is_empty() {
        out.push_str("\n`wi plan` shows the changes that bring the live world back to the spec; `wi apply` makes them.\n");
    }
    out
}
