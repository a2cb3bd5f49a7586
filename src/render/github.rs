//! GitHub workflow-command annotations (`--format github`): one
//! `::error file=F,line=L,title=T::MSG` (or `::warning`, `::notice`) line
//! per finding, pointing at the spec file and line that declares it, so a
//! pull request shows it on the diff.
//!
//! GitHub shows at most 10 error, 10 warning and 10 notice annotations of
//! a step; the rest are dropped silently. So each level is emitted most
//! important first, at most [`MAX_PER_LEVEL`] of it, then one summary
//! notice says what was left out and where to read everything. Values are
//! escaped as the runner requires (`%`, CR and LF in the message; also `:`
//! and `,` in properties).

use std::fmt::Write as _;

use crate::drift::DriftReport;
use crate::plan::{Action, Plan, WarningCode};
use crate::spec::{Model, SpecError};

/// The annotations GitHub shows per level and step.
pub const MAX_PER_LEVEL: usize = 10;

/// The level of one annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// One annotation before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub title: String,
    pub message: String,
}

/// Escapes the message part of a workflow command.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Live or user text on one annotation: no control or bidi characters.
fn clean(text: &str) -> String {
    crate::drift::clean(text)
}

impl Annotation {
    /// The workflow command line (with its newline).
    pub fn line(&self) -> String {
        let mut props = Vec::new();
        if let Some(f) = &self.file {
            props.push(format!("file={}", escape_property(&clean(f))));
        }
        if let Some(l) = self.line {
            props.push(format!("line={l}"));
        }
        props.push(format!("title={}", escape_property(&clean(&self.title))));
        format!(
            "::{} {}::{}\n",
            self.level.command(),
            props.join(","),
            escape_data(
                &self
                    .message
                    .lines()
                    .map(clean)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        )
    }
}

/// Writes `annotations` (already most important first within each level)
/// within GitHub's limits, then one summary notice: what was found, what
/// was left out, and `rerun` (how to see everything).
pub fn write(annotations: &[Annotation], summary: &str, rerun: &str) -> String {
    let mut out = String::new();
    let mut left_out = Vec::new();
    for level in [Level::Error, Level::Warning, Level::Notice] {
        let of: Vec<&Annotation> = annotations.iter().filter(|a| a.level == level).collect();
        // The summary notice takes one notice slot.
        let room = if level == Level::Notice {
            MAX_PER_LEVEL - 1
        } else {
            MAX_PER_LEVEL
        };
        for a in of.iter().take(room) {
            out.push_str(&a.line());
        }
        if of.len() > room {
            left_out.push(format!("{} {}s", of.len() - room, level.command()));
        }
    }
    let mut text = summary.to_string();
    if !left_out.is_empty() {
        let _ = write!(
            text,
            " Not shown (GitHub shows {MAX_PER_LEVEL} annotations of each kind per step): {}. {rerun}",
            left_out.join(", ")
        );
    }
    out.push_str(
        &Annotation {
            level: Level::Notice,
            file: None,
            line: None,
            title: "wi".into(),
            message: text,
        }
        .line(),
    );
    out
}

/// A validation failure: one error per problem, at its file and line.
pub fn validation(error: &SpecError) -> String {
    let problems = error.problems();
    let annotations: Vec<Annotation> = if problems.is_empty() {
        vec![Annotation {
            level: Level::Error,
            file: None,
            line: None,
            title: "wi validate".into(),
            message: error.to_string(),
        }]
    } else {
        problems
            .iter()
            .map(|p| {
                let mut message = p.message().to_string();
                if let Some(help) = p.help_text() {
                    let _ = write!(message, "\nhelp: {help}");
                }
                Annotation {
                    level: Level::Error,
                    file: Some(p.file_name().to_string()),
                    line: p.line_col().map(|(l, _)| l),
                    title: format!("wi validate: {}", p.code()),
                    message,
                }
            })
            .collect()
    };
    let n = annotations.len();
    write(
        &annotations,
        &format!(
            "The spec is not valid: {n} problem{}.",
            if n == 1 { "" } else { "s" }
        ),
        "Run `wi validate` for every problem.",
    )
}

/// A valid spec: the one summary notice.
pub fn valid(summary: &str) -> String {
    write(&[], summary, "")
}

/// Whether a warning makes a change disruptive.
pub(crate) fn disruptive(code: WarningCode) -> bool {
    matches!(
        code,
        WarningCode::RollsNodes
            | WarningCode::RunningPodsLoseAccess
            | WarningCode::DisablesWorkloadIdentity
            | WarningCode::HostNetwork
    )
}

/// A plan: unknowns as errors, destroys and disruptive changes as
/// warnings, other changes as notices, each at the spec line that declares it.
pub fn plan(plan: &Plan, model: &Model) -> String {
    let mut annotations = Vec::new();
    for u in &plan.unknowns {
        annotations.push(Annotation {
            level: Level::Error,
            file: None,
            line: None,
            title: format!("wi plan: {} not read", u.scope),
            message: format!("{} ({}): {}\nfix: {}", u.scope, u.code, u.reason, u.help),
        });
    }
    let mut changes: Vec<_> = plan.actionable().collect();
    // Destroys first, then disruptive changes, then the rest, in plan order.
    changes.sort_by_key(|c| {
        if c.action == Action::Delete {
            0
        } else if c.warnings.iter().any(|w| disruptive(w.code)) {
            1
        } else {
            2
        }
    });
    for c in changes {
        let origin = crate::drift::origin(model, &c.resource);
        let level = if c.action == Action::Delete || c.warnings.iter().any(|w| disruptive(w.code)) {
            Level::Warning
        } else {
            Level::Notice
        };
        let verb = match c.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "destroy",
            Action::NoOp => "no-op",
        };
        let mut message = format!("{}: {}", c.address, c.reason.message);
        for w in &c.warnings {
            let _ = write!(message, "\nwarning: {}: {}", w.code.title(), w.message);
        }
        annotations.push(Annotation {
            level,
            file: origin.as_ref().map(|o| o.file.clone()),
            line: origin.as_ref().map(|o| o.line),
            title: format!("wi plan: {verb} {}", c.resource.type_name()),
            message,
        });
    }
    let s = plan.summary();
    let summary = if plan.has_changes() {
        format!(
            "wi plan: {} to add, {} to change, {} to destroy.",
            s.add, s.change, s.destroy
        )
    } else {
        "wi plan: no changes.".to_string()
    };
    let summary = if plan.has_unknowns() {
        format!(
            "{summary} Partial: {} project(s) or cluster(s) not read.",
            plan.unknowns.len()
        )
    } else {
        summary
    };
    write(
        &annotations,
        &summary,
        "Run `wi plan` (or read `wi plan --format json`) for everything.",
    )
}

/// A drift report: unknowns then drifted items as errors (destructive and
/// disruptive first), each at the spec line that declares it.
pub fn drift(report: &DriftReport) -> String {
    let mut annotations = Vec::new();
    for u in &report.unknowns {
        annotations.push(Annotation {
            level: Level::Error,
            file: None,
            line: None,
            title: format!("wi drift: {} {} not read", u.kind, u.name),
            message: format!(
                "{} {} ({}): {}\nfix: {}",
                u.kind, u.name, u.code, u.reason, u.help
            ),
        });
    }
    for i in crate::drift::ordered(report) {
        let mut message = format!(
            "{}: {} ({})\nwhere: {}\nexpected: {}\nfound: {}",
            i.address,
            i.message,
            i.reason,
            crate::drift::place(i),
            crate::drift::values(i.expected.as_ref()),
            crate::drift::values(i.found.as_ref()),
        );
        if let Some(who) = crate::drift::who_text(i) {
            let _ = write!(message, "\nwho: {who}");
        }
        annotations.push(Annotation {
            level: Level::Error,
            file: i.origin.as_ref().map(|o| o.file.clone()),
            line: i.origin.as_ref().map(|o| o.line),
            title: format!("wi drift: {}", i.kind),
            message,
        });
    }
    write(
        &annotations,
        &crate::drift::headline(report),
        "Run `wi drift` (or read `wi drift --format json`) for everything.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_the_runner() {
        assert_eq!(escape_data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn each_level_is_cut_at_ten_with_one_summary() {
        let many: Vec<Annotation> = (0..12)
            .map(|i| Annotation {
                level: Level::Error,
                file: Some("wi.yaml".into()),
                line: Some(i + 1),
                title: "t".into(),
                message: format!("m{i}"),
            })
            .collect();
        let out = write(&many, "S.", "Rerun.");
        assert_eq!(out.lines().filter(|l| l.starts_with("::error")).count(), 10);
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("::notice title=wi::S. Not shown"),
            "{last}"
        );
        assert!(last.contains("2 errors"), "{last}");
    }
}
