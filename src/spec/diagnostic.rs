//! Spec errors as miette diagnostics.
//!
//! Every problem found in a spec becomes one [`Problem`] that points at the
//! offending value in the file; [`SpecError::Invalid`] carries all of them so
//! `wi validate` reports everything at once. Errors that are not about the
//! file's content (missing file, too large, not UTF-8) are their own variants.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// Everything that can go wrong while finding, reading or validating a spec.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum SpecError {
    /// `discover` found no spec file.
    #[error("no spec found in {}: looked for wi.yaml, wi.yml and wi.toml", dir.display())]
    #[diagnostic(
        code(wi::spec::not_found),
        help("create wi.yaml (see examples/quickstart.yaml) or pass a file with -f")
    )]
    NotFound {
        /// The directory searched.
        dir: PathBuf,
    },

    /// `discover` found more than one candidate and will not guess.
    #[error("several spec files in {}: {}", dir.display(), names.join(", "))]
    #[diagnostic(
        code(wi::spec::ambiguous_file),
        help("keep one of them, or choose with -f")
    )]
    AmbiguousFile {
        /// The directory searched.
        dir: PathBuf,
        /// The file names found.
        names: Vec<String>,
    },

    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    #[diagnostic(code(wi::spec::io))]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file is larger than [`super::MAX_FILE_BYTES`].
    #[error("{} is {size} bytes; a spec may be at most {limit} bytes", path.display())]
    #[diagnostic(code(wi::spec::too_large), help("split the fleet into several specs"))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// The file is not UTF-8 text.
    #[error("{} is not UTF-8 text", path.display())]
    #[diagnostic(code(wi::spec::not_utf8))]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },

    /// A spec path that is not a regular file (a FIFO, a device): refused
    /// before it is opened, so reading never blocks.
    #[error("{} is {kind}, not a spec file", path.display())]
    #[diagnostic(
        code(wi::spec::not_a_file),
        help("pass a regular file, a directory of spec files, or `-f -` to read standard input")
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },

    /// `-f DIR` where the directory holds no spec file.
    #[error("no spec files in {}: looked for *.yaml, *.yml and *.toml (hidden ones are skipped)", dir.display())]
    #[diagnostic(code(wi::spec::empty_directory))]
    EmptyDirectory {
        /// The directory.
        dir: PathBuf,
    },

    /// The same file reached twice (`-f a.yaml -f a.yaml`, or a file inside a directory also given).
    #[error("{} is given twice", path.display())]
    #[diagnostic(
        code(wi::spec::given_twice),
        help("each file of a spec set is read once: drop the repeated `-f`")
    )]
    GivenTwice {
        /// The second path that reaches it.
        path: PathBuf,
    },

    /// `-f -` more than once.
    #[error("standard input is given twice (`-f -`)")]
    #[diagnostic(code(wi::spec::given_twice), help("standard input can be read once"))]
    StdinTwice,

    /// More bytes than [`super::MAX_SET_BYTES`], all files together.
    #[error("the spec set is {size} bytes; at most {limit} are read")]
    #[diagnostic(
        code(wi::spec::too_large),
        help("pass fewer files or directories with -f")
    )]
    SetTooLarge {
        /// Bytes read so far.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// More files than [`super::MAX_FILES`].
    #[error("more than {limit} spec files in one set")]
    #[diagnostic(
        code(wi::spec::too_many_files),
        help("pass fewer files or directories with -f")
    )]
    TooManyFiles {
        /// The limit.
        limit: usize,
    },

    /// The file was read but its content has problems (all of them are listed).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidSpec>),
}

impl SpecError {
    /// True when no spec file exists (from `discover`, or a path that does not exist).
    pub fn is_not_found(&self) -> bool {
        match self {
            SpecError::NotFound { .. } => true,
            SpecError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// True when the file was read and its content is invalid.
    pub fn is_invalid(&self) -> bool {
        matches!(self, SpecError::Invalid(_))
    }

    /// The problems found in the file's content (empty for I/O errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            SpecError::Invalid(inv) => &inv.problems,
            _ => &[],
        }
    }
}

/// A spec whose content has one or more problems.
#[derive(Debug)]
pub struct InvalidSpec {
    /// The file name shown in diagnostics.
    pub name: String,
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
    /// How many problems were found beyond those kept (see [`super::MAX_PROBLEMS`]).
    pub omitted: usize,
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len() + self.omitted;
        let noun = if n == 1 { "problem" } else { "problems" };
        write!(f, "{} is not a valid spec: {n} {noun}", self.name)
    }
}

impl std::error::Error for InvalidSpec {}

impl Diagnostic for InvalidSpec {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("wi::spec::invalid"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.omitted > 0 {
            Some(Box::new(format!(
                "{} more problems are not shown; fix these first",
                self.omitted
            )))
        } else {
            None
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

/// One label: a byte range of the file and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Byte range in the source.
    pub span: Range<usize>,
    /// The text shown under the underline.
    pub text: String,
}

/// One problem in a spec, pointing at the offending value.
#[derive(Debug, Clone)]
pub struct Problem {
    code: &'static str,
    message: String,
    help: Option<String>,
    labels: Vec<Label>,
    src: Arc<NamedSource<String>>,
    /// Position of `src` in the spec set (problems sort by file, then offset).
    file: usize,
    /// Places in other files of the set (rendered as advice with their own source).
    notes: Vec<Problem>,
    /// `Some` for a note: its severity.
    severity: Option<miette::Severity>,
}

impl Problem {
    /// A problem with a message; add labels and help with the builder methods.
    pub(crate) fn new(
        code: &'static str,
        message: impl Into<String>,
        src: Arc<NamedSource<String>>,
    ) -> Self {
        Problem {
            code,
            message: message.into(),
            help: None,
            labels: Vec::new(),
            src,
            file: 0,
            notes: Vec::new(),
            severity: None,
        }
    }

    /// The problem belongs to file `file` of the set (for ordering).
    pub(crate) fn in_file(mut self, file: usize) -> Self {
        self.file = file;
        self
    }

    /// A label in `src`: an ordinary label when `src` is this problem's own
    /// source, else a note (advice) showing that other file at `span`.
    pub(crate) fn label_in(
        mut self,
        src: &Arc<NamedSource<String>>,
        span: Option<Range<usize>>,
        text: impl Into<String>,
    ) -> Self {
        if Arc::ptr_eq(src, &self.src) {
            return self.label(span, text);
        }
        let mut note = Problem::new(self.code, text, src.clone()).label(span, "here");
        note.severity = Some(miette::Severity::Advice);
        self.notes.push(note);
        self
    }

    pub(crate) fn label(mut self, span: Option<Range<usize>>, text: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.labels.push(Label {
                span,
                text: text.into(),
            });
        }
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The diagnostic code, like `wi::spec::invalid_account_id`.
    pub fn code(&self) -> &str {
        self.code
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help text, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The labelled spans; the first is the primary one.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// 1-based (line, column) of the primary label, if the problem has one.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let span = &self.labels.first()?.span;
        Some(line_col(self.src.inner(), span.start))
    }

    /// The name of the file the problem is in.
    pub fn file_name(&self) -> &str {
        self.src.name()
    }

    /// The places in other files of the set this problem also points at,
    /// each as (file name, 1-based line, text).
    pub fn other_places(&self) -> Vec<(String, usize, String)> {
        self.notes
            .iter()
            .filter_map(|n| {
                let (line, _) = n.line_col()?;
                Some((n.file_name().to_owned(), line, n.message.clone()))
            })
            .collect()
    }

    /// File position in the set, then byte offset of the primary label:
    /// problems are reported file by file, in file order.
    pub(crate) fn sort_key(&self) -> (usize, usize) {
        (
            self.file,
            self.labels.first().map_or(usize::MAX, |l| l.span.start),
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        // A note (a place in another file) is part of its problem: no code of its own.
        match self.severity {
            Some(_) => None,
            None => Some(Box::new(self.code)),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&*self.src)
    }

    fn severity(&self) -> Option<miette::Severity> {
        self.severity
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.notes.is_empty() {
            return None;
        }
        Some(Box::new(self.notes.iter().map(|p| p as &dyn Diagnostic)))
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(|(i, l)| {
            let span = (l.span.start, l.span.end.saturating_sub(l.span.start));
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(l.text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(l.text.clone()), span)
            }
        })))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Renders a diagnostic as plain text (no colour, Unicode box drawing) at the
/// given width: what tests snapshot and what non-terminal callers may print.
pub fn render_plain(diagnostic: &dyn Diagnostic, width: usize) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(width);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = diagnostic.to_string();
    }
    out
}
