//! Errors are typed where they happen and rendered once, here: every error a
//! command can end with becomes one miette report on stderr and one exit
//! code. The codes are few and documented in the README ("Exit codes"): 0
//! success, 1 any error (usage errors included), 2 changes present (`wi plan
//! --detailed-exitcode`).
//!
//! Stdout is written through [`out`]: a reader that went away (`wi plan |
//! head -1`) is not an error. wi stops writing to stdout, finishes what it
//! was doing and exits with the code it would have had; a pipeline with
//! `pipefail` sees the command's real outcome, never a panic.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::emulator::EmulatorError;
use crate::live::LiveError;
use crate::plan::file::PlanFileError;
use crate::plan::{PlanError, StalePlan};
use crate::render::Style;
use crate::spec::SpecError;

use super::settings::SettingsError;

/// Success; for `wi plan --detailed-exitcode`, also "no changes".
pub(crate) const EXIT_OK: u8 = 0;
/// Any error, a failed or cancelled apply.
pub(crate) const EXIT_ERROR: u8 = 1;
/// `wi plan --detailed-exitcode`: the plan has changes.
pub(crate) const EXIT_CHANGES: u8 = 2;

/// How a command that did its job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Success {
    /// Exit 0.
    Done,
    /// Exit 2: `--detailed-exitcode` and the plan has changes.
    ChangesPresent,
}

/// Everything a command can fail with (boxed: errors are rare, results common).
#[derive(Debug)]
pub(crate) enum CliError {
    /// A flag or environment value (`WI_POLL_INTERVAL`, `WI_STEP_TIMEOUT`, ...).
    Settings(Box<SettingsError>),
    /// The spec: every problem at once, each pointing at its line.
    Spec(Box<SpecError>),
    /// Reading live state.
    Live(Box<LiveError>),
    /// Planning found problems live state cannot be reconciled with.
    Plan(Box<PlanError>),
    /// A saved plan file that cannot be read or trusted.
    PlanFile(Box<PlanFileError>),
    /// A saved plan whose spec or live inputs have moved.
    StalePlan(Box<StalePlan>),
    /// `wi emulator` / `wi demo` could not start the emulator.
    Emulator(Box<EmulatorError>),
    /// Anything else (I/O, credentials, endpoints), already a report.
    Other(miette::Report),
    /// Apply ran and a step failed or Ctrl-C stopped it; the summary on
    /// stdout already says which.
    ApplyFailed,
    /// The user did not answer `yes`; "Apply cancelled." is already printed.
    ApplyCancelled,
    /// `wi demo`: the second plan still had changes (already said on stderr).
    DemoDidNotConverge,
    /// Writing to stdout failed for another reason than a closed reader
    /// (a full disk, `> /dev/full`).
    Stdout(io::Error),
}

macro_rules! from {
    ($($variant:ident($ty:ty)),* $(,)?) => {$(
        impl From<$ty> for CliError {
            fn from(e: $ty) -> Self {
                CliError::$variant(Box::new(e))
            }
        }
    )*};
}

from!(
    Settings(SettingsError),
    Spec(SpecError),
    Live(LiveError),
    Plan(PlanError),
    PlanFile(PlanFileError),
    StalePlan(StalePlan),
    Emulator(EmulatorError),
);

impl From<miette::Report> for CliError {
    fn from(report: miette::Report) -> Self {
        CliError::Other(report)
    }
}

impl CliError {
    /// The one report users read, if there is anything left to say.
    pub(crate) fn into_report(self) -> Option<miette::Report> {
        Some(match self {
            CliError::Settings(e) => (*e).into(),
            CliError::Spec(e) => (*e).into(),
            CliError::Live(e) => (*e).into(),
            CliError::Plan(e) => (*e).into(),
            CliError::PlanFile(e) => (*e).into(),
            CliError::StalePlan(e) => (*e).into(),
            // The emulator's errors are plain messages (no code, no chain).
            CliError::Emulator(e) => miette::miette!("{e}"),
            CliError::Other(report) => report,
            CliError::Stdout(e) => {
                miette::miette!(code = "wi::stdout", "cannot write to stdout: {e}")
            }
            CliError::ApplyFailed | CliError::ApplyCancelled | CliError::DemoDidNotConverge => {
                return None;
            }
        })
    }
}

/// Makes error reports follow the one colour decision (stderr's). Lines
/// wrap at spaces only and long words are never broken: a URL or path split
/// across lines (miette's default breaks after `/`) cannot be clicked or
/// copied; nor at a hyphen.
pub(crate) fn install_report_hook(stderr: Style) {
    let color = stderr.color;
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .break_words(false)
                .word_separator(textwrap::WordSeparator::AsciiSpace)
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .build(),
        )
    }));
}

/// Text of an error made safe to print: what a server or the live world
/// said may hold control and bidirectional characters (shown as `\u{..}`)
/// and values megabytes long (cut, with how much was left out).
fn clean(text: &str) -> String {
    crate::render::cut_long(&crate::render::sanitize(text, true))
}

/// A report as users read it: its message, help and causes [`clean`]ed,
/// and a cause whose text the message (or the cause above) already holds
/// left out rather than printed again under itself. Labels, source code
/// and related reports (the spec's, pointing at its lines) are the
/// original's.
#[derive(Debug)]
struct CleanReport {
    message: String,
    code: Option<String>,
    help: Option<String>,
    url: Option<String>,
    severity: Option<miette::Severity>,
    cause: Option<Box<Cause>>,
    inner: miette::Report,
}

/// One cause of a [`CleanReport`], cleaned.
#[derive(Debug)]
struct Cause {
    message: String,
    source: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|c| c as _)
    }
}

impl CleanReport {
    fn new(inner: miette::Report) -> Self {
        let message = clean(&inner.to_string());
        let mut causes: Vec<String> = Vec::new();
        for source in inner.chain().skip(1) {
            let text = clean(&source.to_string());
            let said = causes.last().unwrap_or(&message);
            if text.trim().is_empty() || said.contains(text.trim()) {
                continue;
            }
            causes.push(text);
        }
        let cause = causes.into_iter().rev().fold(None, |source, message| {
            Some(Box::new(Cause { message, source }))
        });
        CleanReport {
            message,
            code: inner.code().map(|c| c.to_string()),
            help: inner.help().map(|h| clean(&h.to_string())),
            url: inner.url().map(|u| u.to_string()),
            severity: inner.severity(),
            cause,
            inner,
        }
    }
}

impl fmt::Display for CleanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CleanReport {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

impl miette::Diagnostic for CleanReport {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.as_ref().map(|c| Box::new(c) as _)
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.severity
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as _)
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.url.as_ref().map(|u| Box::new(u) as _)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.inner.diagnostic_source()
    }
}

/// The exit code of an outcome.
fn code(result: &Result<Success, CliError>) -> u8 {
    match result {
        Ok(Success::Done) => EXIT_OK,
        Ok(Success::ChangesPresent) => EXIT_CHANGES,
        Err(_) => EXIT_ERROR,
    }
}

/// Prints the report of a failed command, and the exit code of every outcome.
pub(crate) fn exit(result: Result<Success, CliError>) -> ExitCode {
    let code = code(&result);
    if let Err(e) = result
        && let Some(report) = e.into_report()
    {
        let report = miette::Report::new(CleanReport::new(report));
        err_line(format_args!("{report:?}"));
    }
    ExitCode::from(code)
}

/// Set once stdout's reader has gone: later output is dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes it. A closed pipe is not an error
/// (see the module comment); any other write error is.
pub(crate) fn out(text: impl fmt::Display) -> Result<(), CliError> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    match write!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(CliError::Stdout(e)),
    }
}

/// [`out`] with a newline.
pub(crate) fn outln(text: impl fmt::Display) -> Result<(), CliError> {
    out(format_args!("{text}\n"))
}

/// One line on stderr; a closed stderr loses it rather than panicking.
pub(crate) fn err_line(text: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(code(&Ok(Success::Done)), 0);
        assert_eq!(code(&Ok(Success::ChangesPresent)), 2);
        assert_eq!(code(&Err(CliError::ApplyFailed)), 1);
        let stale = StalePlan::SpecChanged {
            planned: "a".into(),
            current: "b".into(),
        };
        assert_eq!(code(&Err(stale.into())), 1);
        assert_eq!(
            code(&Err(CliError::Stdout(io::ErrorKind::StorageFull.into()))),
            1
        );
    }

    /// An error as a server or client library says it: the cause's text is
    /// already in the message (`{e}` formatting), holds an escape sequence
    /// and a bidirectional override, and a 3 MB value.
    #[derive(Debug, thiserror::Error, miette::Diagnostic)]
    #[error("reading cluster c1: {source}")]
    #[diagnostic(
        code(wi::test),
        help(
            "help with \u{202e}gnirts, see https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#authenticating_to_google"
        )
    )]
    struct Outer {
        source: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 503: \u{1b}[2J{value}")]
    struct Inner {
        value: String,
    }

    #[test]
    fn reports_are_cleaned_cut_and_say_a_cause_once() {
        let value = "v".repeat(3 * 1024 * 1024);
        let report = miette::Report::new(Outer {
            source: Inner { value },
        });
        let clean = CleanReport::new(report);
        let rendered = {
            let mut out = String::new();
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(80)
                .with_break_words(false)
                .with_word_separator(textwrap::WordSeparator::AsciiSpace)
                .with_word_splitter(textwrap::WordSplitter::NoHyphenation)
                .render_report(&mut out, &clean)
                .expect("render");
            out
        };
        assert!(rendered.len() < 2_000, "{} bytes", rendered.len());
        assert!(
            !rendered.contains('\u{1b}') && !rendered.contains('\u{202e}'),
            "{rendered}"
        );
        assert!(rendered.contains("\\u{1b}[2J"), "{rendered}");
        assert!(rendered.contains("more bytes)"), "{rendered}");
        assert_eq!(
            rendered.matches("HTTP 503").count(),
            1,
            "the cause is not repeated: {rendered}"
        );
        assert!(
            rendered.contains(
                "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity#authenticating_to_google"
            ),
            "the URL is on one line: {rendered}"
        );
        assert!(clean.cause.is_none());
        assert_eq!(clean.code.as_deref(), Some("wi::test"));
    }

    #[test]
    fn typed_errors_keep_their_code_and_help() {
        let stale: CliError = StalePlan::SpecChanged {
            planned: "a".into(),
            current: "b".into(),
        }
        .into();
        let report = stale.into_report().expect("a report");
        assert_eq!(
            report.code().map(|c| c.to_string()).as_deref(),
            Some("wi::apply::stale_plan")
        );
        assert!(report.help().is_some());
        assert!(CliError::ApplyCancelled.into_report().is_none());
    }
}
