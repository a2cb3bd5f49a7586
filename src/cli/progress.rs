//! Apply's progress on stderr, in Terraform's words ("Creating...",
//! "Creation complete after 2s"), so stdout keeps only the plan and the
//! summary. Coloured by stderr's own colour decision.

use std::sync::Arc;
use std::time::Duration;

use super::error::err_line;
use crate::apply::{Outcome, Progress};
use crate::plan::ResourceChange;
use crate::render::Style;

/// Progress lines on stderr.
pub(crate) struct StderrProgress {
    style: Style,
}

impl StderrProgress {
    /// A shared progress sink for `apply`.
    pub(crate) fn shared(style: Style) -> Arc<dyn Progress> {
        Arc::new(StderrProgress { style })
    }
}

impl Progress for StderrProgress {
    fn started(&self, change: &ResourceChange) {
        err_line(crate::render::progress_start(
            &change.address,
            change.action,
            &self.style,
        ));
    }
    fn note(&self, address: &str, message: &str) {
        err_line(format_args!(
            "{}: {}",
            address,
            crate::render::sanitize(message, false)
        ));
    }
    fn finished(&self, change: &ResourceChange, outcome: &Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Done => err_line(crate::render::progress_done(
                &change.address,
                change.action,
                elapsed,
                &self.style,
            )),
            Outcome::Failed(_) => err_line(crate::render::progress_failed(
                &change.address,
                change.action,
                elapsed,
                &self.style,
            )),
            Outcome::Skipped(why) => err_line(format_args!("{}: skipped: {why}", change.address)),
        }
    }
}
