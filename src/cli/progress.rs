//! Apply's log on stderr, for people and CI logs alike, in Terraform's words
//! ("Creating...", "Creation complete after 2s"), so stdout keeps only the
//! plan and the summary. Coloured by stderr's own colour decision.
//!
//! One line when a step starts and one when it ends, each with an `[n/N]`
//! counter and the full address. In between, a long step prints a "Still
//! modifying... [1m0s elapsed]" line every [`STILL_INTERVAL`] (a steady
//! interval, never per poll), with the GKE operation it runs or waits for,
//! GKE's own progress where reported, and the address shortened to its
//! labels since the counter ties it to its start line. A step that waits for
//! another operation (a sibling node pool's, another apply's) says so once,
//! naming it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::err_line;
use crate::apply::{OperationEvent, Outcome, Progress};
use crate::plan::{Action, ResourceChange};
use crate::render::Style;

/// How often a running step says it is still running.
pub(crate) const STILL_INTERVAL: Duration = Duration::from_secs(10);

/// Lines longer than this have their operation names shortened.
const MAX_LINE: usize = 120;

/// Progress lines on stderr.
pub(crate) struct StderrProgress {
    style: Style,
    interval: Duration,
    total: AtomicUsize,
    next: AtomicUsize,
    steps: Arc<Mutex<HashMap<String, Step>>>,
}

/// A step that has started and not finished.
struct Step {
    n: usize,
    short: String,
    still: &'static str,
    started: Instant,
    /// Operations already named in a line.
    announced: BTreeSet<String>,
    last: Option<OperationEvent>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl StderrProgress {
    /// A shared progress sink for `apply`.
    pub(crate) fn shared(style: Style) -> Arc<dyn Progress> {
        Arc::new(StderrProgress {
            style,
            interval: STILL_INTERVAL,
            total: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            steps: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn counter(&self, n: usize) -> String {
        let total = self.total.load(Ordering::Relaxed).max(n);
        format!("[{n}/{total}]")
    }
}

/// `node_pool alpha/default-pool`: the type and labels, for lines whose
/// `[n/N]` already ties them to the full address.
fn short_address(change: &ResourceChange) -> String {
    format!(
        "{} {}",
        change.resource.type_name(),
        change.resource.labels().join("/")
    )
}

fn still_verb(action: Action) -> &'static str {
    match action {
        Action::Create => "Still creating...",
        Action::Update => "Still modifying...",
        Action::Delete => "Still destroying...",
        Action::NoOp => "Still checking...",
    }
}

/// `operation-1733…-c0ffee` → `operation-…c0ffee` when the line is too long.
fn fit(line: String, op: Option<&str>) -> String {
    match op {
        Some(name) if line.chars().count() > MAX_LINE && name.len() > 16 => {
            let tail: String = name
                .chars()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            line.replacen(name, &format!("operation-…{tail}"), 1)
        }
        _ => line,
    }
}

/// What a still line says about the operation, if any.
fn operation_clause(event: &OperationEvent) -> String {
    let mut out = if event.own {
        format!("{} ({}) {}", event.name, event.operation_type, event.status)
    } else {
        format!("waits for {} ({})", event.target, event.name)
    };
    if let Some((metric, done, total)) = &event.progress {
        out.push_str(&format!(", {metric} {done}/{total}"));
    }
    out
}

impl Progress for StderrProgress {
    fn begin(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn started(&self, change: &ResourceChange) {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        err_line(format_args!(
            "{} {}",
            self.counter(n),
            crate::render::progress_start(&change.address, change.action, &self.style)
        ));
        let counter = self.counter(n);
        let steps = self.steps.clone();
        let address = change.address.clone();
        let interval = self.interval;
        // Only inside the runtime apply runs on; without one, no still lines.
        let ticker = tokio::runtime::Handle::try_current().ok().map(|rt| {
            rt.spawn(async move {
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
                loop {
                    tick.tick().await;
                    let line = {
                        let Ok(steps) = steps.lock() else { return };
                        let Some(step) = steps.get(&address) else {
                            return;
                        };
                        let elapsed = crate::render::format_elapsed(step.started.elapsed());
                        let mut line = format!(
                            "{counter} {}: {} [{elapsed} elapsed]",
                            step.short, step.still
                        );
                        if let Some(op) = &step.last {
                            line.push_str("; ");
                            line.push_str(&operation_clause(op));
                        }
                        fit(line, step.last.as_ref().map(|o| o.name.as_str()))
                    };
                    err_line(line);
                }
            })
        });
        if let Ok(mut steps) = self.steps.lock() {
            steps.insert(
                change.address.clone(),
                Step {
                    n,
                    short: short_address(change),
                    still: still_verb(change.action),
                    started: Instant::now(),
                    announced: BTreeSet::new(),
                    last: None,
                    ticker,
                },
            );
        }
    }

    fn note(&self, address: &str, message: &str) {
        let message = crate::render::cut_long(&crate::render::sanitize(message, false));
        let known = self
            .steps
            .lock()
            .ok()
            .and_then(|s| s.get(address).map(|s| (s.n, s.short.clone())));
        match known {
            Some((n, short)) => err_line(format_args!("{} {short}: {message}", self.counter(n))),
            None => err_line(format_args!("{address}: {message}")),
        }
    }

    fn operation(&self, change: &ResourceChange, event: &OperationEvent) {
        let line = {
            let Ok(mut steps) = self.steps.lock() else {
                return;
            };
            let Some(step) = steps.get_mut(&change.address) else {
                return;
            };
            step.last = Some(event.clone());
            if !step.announced.insert(event.name.clone()) || event.status == "DONE" && event.own {
                None
            } else {
                let what = if event.own {
                    format!(
                        "{} ({}) is {}",
                        event.name, event.operation_type, event.status
                    )
                } else {
                    format!(
                        "waits for {} ({} of {}) to finish",
                        event.name, event.operation_type, event.target
                    )
                };
                Some(fit(
                    format!("{} {}: {what}", self.counter(step.n), step.short),
                    Some(&event.name),
                ))
            }
        };
        if let Some(line) = line {
            err_line(crate::render::sanitize(&line, false));
        }
    }

    fn finished(&self, change: &ResourceChange, outcome: &Outcome, elapsed: Duration) {
        let step = self
            .steps
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&change.address));
        let n = match step {
            Some(step) => {
                if let Some(t) = step.ticker {
                    t.abort();
                }
                step.n
            }
            None => self.next.load(Ordering::Relaxed),
        };
        let counter = self.counter(n);
        match outcome {
            Outcome::Done => err_line(format_args!(
                "{counter} {}",
                crate::render::progress_done(&change.address, change.action, elapsed, &self.style)
            )),
            Outcome::Failed(_) => err_line(format_args!(
                "{counter} {}",
                crate::render::progress_failed(
                    &change.address,
                    change.action,
                    elapsed,
                    &self.style,
                )
            )),
            Outcome::Skipped(why) => {
                err_line(format_args!("{counter} {}: skipped: {why}", change.address))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_shorten_the_operation_name() {
        let name = "operation-1733071234567-0b6c9a1e-2f3d-4c5b-8a7e-123456789abc";
        let line = format!(
            "[3/12] node_pool alpha/default-pool: waits for {name} (UPGRADE_NODES of node pool batch) to finish"
        );
        let short = fit(line.clone(), Some(name));
        assert!(short.chars().count() <= MAX_LINE, "{short}");
        assert!(short.contains("operation-…56789abc"), "{short}");
        assert_eq!(fit("short".into(), Some(name)), "short");
    }
}
