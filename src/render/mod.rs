//! Rendering: plans and apply results turned into what people and machines
//! read — Terraform-style text for terminals, versioned JSON for tools,
//! Markdown for pull-request comments, progress lines and the apply summary.
//!
//! Pure: nothing here does I/O, reads the environment or prints. The CLI makes
//! the one colour decision ([`Style`]) and writes the strings where they
//! belong (plans on stdout, progress and warnings on stderr).

mod apply_report;
mod human;
mod json;
mod markdown;
mod sanitize;
pub mod style;

pub use apply_report::apply_summary;
pub(crate) use apply_report::{
    approval_prompt, format_elapsed, progress_done, progress_failed, progress_start,
};
pub use human::{human, not_saved_note};
pub use json::{actions, json};
pub use markdown::{GITHUB_COMMENT_MAX_BYTES, markdown};
pub(crate) use sanitize::{cut_long, sanitize};
pub use style::Style;
