//! Finding and reading the spec file, and parsing it into [`RawSpec`].
//!
//! All YAML and TOML access lives here so a parser swap stays local. Input is
//! bounded before any parsing: a file-size limit, and serde-saphyr's budget
//! (depth, nodes, alias replays) against alias bombs and deep nesting; toml
//! has its own recursion limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

use super::diagnostic::{InvalidSpec, Problem, SpecError};
use super::model::Model;
use super::raw::RawSpec;
use super::source::{
    Format, MAX_FILE_BYTES, SpecFile, SpecSet, SpecSource, read_bounded, read_sources,
};
use super::validate;

/// At most this many problems are kept in one [`SpecError::Invalid`].
pub const MAX_PROBLEMS: usize = 200;

/// The names [`discover`] looks for, in order.
pub(crate) const SPEC_FILE_NAMES: [&str; 3] = ["wi.yaml", "wi.yml", "wi.toml"];

/// Finds the spec in `dir`: exactly one of `wi.yaml`, `wi.yml`, `wi.toml`.
pub fn discover(dir: &Path) -> Result<PathBuf, SpecError> {
    let found: Vec<PathBuf> = SPEC_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        0 => Err(SpecError::NotFound {
            dir: dir.to_path_buf(),
        }),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        _ => Err(SpecError::AmbiguousFile {
            dir: dir.to_path_buf(),
            names: found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
        }),
    }
}

/// Reads, parses and validates a spec file; the format follows the extension.
pub fn load_file(path: &Path) -> Result<Model, SpecError> {
    load_file_with_source(path).map(|(model, _)| model)
}

/// Like [`load_file`], also returning the file text (for [`digest`]).
pub fn load_file_with_source(path: &Path) -> Result<(Model, String), SpecError> {
    let src = read_bounded(path)?;
    let model = load_str(&src, &path.display().to_string(), Format::from_path(path))?;
    Ok((model, src))
}

/// Reads every source (files, directories, standard input), parses and
/// validates them as one model. The [`SpecSet`] keeps the files' names and
/// texts, in order, and their digest (what a saved plan records).
pub fn load_set(sources: &[SpecSource]) -> Result<(Model, SpecSet), SpecError> {
    let set = read_sources(sources)?;
    let model = load_spec_set(&set)?;
    Ok((model, set))
}

/// Parses and validates files already read, as one model.
///
/// A valid spec in plain YAML is read by a fast first pass
/// ([`super::yaml_subset`]); anything else, and every spec with a problem,
/// is read (again) by the span-carrying parsers, so every problem is
/// reported as they see it.
pub fn load_spec_set(set: &SpecSet) -> Result<Model, SpecError> {
    match load_spec_set_fast(set) {
        Some(model) => Ok(model),
        None => load_spec_set_spanned(set),
    }
}

/// The model of a valid spec set whose YAML files are all in the plain
/// subset [`super::yaml_subset`] reads (TOML files are read as always), or
/// `None`: some file is outside the subset, or the set has a problem.
/// Public for the tests that compare it with [`load_spec_set_spanned`].
#[doc(hidden)]
pub fn load_spec_set_fast(set: &SpecSet) -> Option<Model> {
    let mut raws = Vec::with_capacity(set.files.len());
    for f in &set.files {
        if f.text.len() as u64 > MAX_FILE_BYTES {
            return None;
        }
        let source = named_source(&f.text, &f.name, f.format);
        let raw = match f.format {
            Format::Yaml => {
                let raw = super::yaml_subset::parse(&f.text)?;
                if !super::tags::tag_problems(&f.text, &source).is_empty() {
                    return None;
                }
                raw
            }
            Format::Toml => parse_toml(&f.text, source.clone()).ok()?,
        };
        raws.push((raw, source));
    }
    validate::validate_set(&raws).ok()
}

/// Like [`load_spec_set`], every file read by the span-carrying parsers
/// (serde-saphyr, toml): what every problem is reported from.
#[doc(hidden)]
pub fn load_spec_set_spanned(set: &SpecSet) -> Result<Model, SpecError> {
    let mut raws = Vec::new();
    let mut problems = Vec::new();
    for (i, f) in set.files.iter().enumerate() {
        let source = named_source(&f.text, &f.name, f.format);
        match parse_one(&f.text, source.clone(), f.format) {
            Ok(raw) => raws.push((raw, source)),
            Err(ps) => problems.extend(ps.into_iter().map(|p| p.in_file(i))),
        }
    }
    if !problems.is_empty() {
        return Err(invalid(&set.display, problems));
    }
    validate::validate_set(&raws).map_err(|problems| invalid(&set.display, problems))
}

/// Parses and validates spec text. `name` is what diagnostics call the file.
pub fn load_str(src: &str, name: &str, format: Format) -> Result<Model, SpecError> {
    let set = SpecSet {
        files: vec![SpecFile {
            name: name.to_owned(),
            text: src.to_owned(),
            format,
        }],
        display: name.to_owned(),
    };
    load_spec_set(&set)
}

/// Parses spec text into the raw (unvalidated) types. Public for tools that
/// want the file as written (e.g. editors of the spec); most callers want [`load_str`].
pub fn parse_raw(src: &str, name: &str, format: Format) -> Result<RawSpec, SpecError> {
    parse_one(src, named_source(src, name, format), format).map_err(|ps| invalid(name, ps))
}

fn parse_one(
    src: &str,
    source: Arc<NamedSource<String>>,
    format: Format,
) -> Result<RawSpec, Vec<Problem>> {
    if src.len() as u64 > MAX_FILE_BYTES {
        let p = Problem::new(
            "wi::spec::too_large",
            format!(
                "the spec is {} bytes; at most {MAX_FILE_BYTES} are accepted",
                src.len()
            ),
            source,
        );
        return Err(vec![p]);
    }
    let blank = src
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        let p = Problem::new("wi::spec::empty", "the spec is empty", source)
            .label(Some(0..src.len().min(1)), "nothing but blanks and comments")
            .help(match format {
                Format::Yaml => "a spec starts with `version: 1`; see examples/quickstart.yaml",
                Format::Toml => "a spec starts with `version = 1`; see examples/quickstart.toml",
            });
        return Err(vec![p]);
    }
    match format {
        Format::Yaml => {
            let raw = parse_yaml(src, source.clone())?;
            let tagged = super::tags::tag_problems(src, &source);
            if tagged.is_empty() {
                Ok(raw)
            } else {
                Err(tagged)
            }
        }
        Format::Toml => parse_toml(src, source),
    }
}

fn named_source(src: &str, name: &str, format: Format) -> Arc<NamedSource<String>> {
    Arc::new(NamedSource::new(name, src.to_owned()).with_language(format.language()))
}

fn invalid(name: &str, mut problems: Vec<Problem>) -> SpecError {
    problems.sort_by_key(Problem::sort_key);
    let omitted = problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    SpecError::Invalid(Box::new(InvalidSpec {
        name: name.to_owned(),
        problems,
        omitted,
    }))
}

fn yaml_options() -> serde_saphyr::Options {
    let budget = serde_saphyr::budget! {
        max_depth: 24,
        max_nodes: 200_000,
        max_events: 1_000_000,
        max_aliases: 10_000,
        max_anchors: 10_000,
        max_documents: 1,
    };
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 200_000;
    alias_limits.max_replay_stack_depth = 16;
    serde_saphyr::options! {
        budget: budget,
        alias_limits: alias_limits,
        with_snippet: false,
        strict_booleans: true,
    }
}

fn parse_yaml(src: &str, source: Arc<NamedSource<String>>) -> Result<RawSpec, Vec<Problem>> {
    let name = source.name().to_owned();
    let name = name.as_str();
    match serde_saphyr::from_str_with_options::<RawSpec>(src, yaml_options()) {
        Ok(raw) => Ok(raw),
        Err(err) => {
            let report = serde_saphyr::miette::to_miette_report(&err, src, name);
            let message = report.to_string();
            let code = classify(&message);
            let mut p = Problem::new(code, message.clone(), source);
            if let Some(labels) = report.labels() {
                for l in labels {
                    let start = l.offset();
                    // The parser repeats its message as the label: say something shorter.
                    let text = match l.label() {
                        Some(t) if t != message => t.to_owned(),
                        _ => short_label(code).to_owned(),
                    };
                    p = p.label(Some(start..start + l.len()), text);
                }
            }
            if let Some(help) = report
                .help()
                .map(|h| h.to_string())
                .or_else(|| help_for(code, &message))
            {
                p = p.help(help);
            }
            Err(vec![p])
        }
    }
}

fn parse_toml(src: &str, source: Arc<NamedSource<String>>) -> Result<RawSpec, Vec<Problem>> {
    match toml::from_str::<RawSpec>(src) {
        Ok(raw) => Ok(raw),
        Err(err) => {
            let message = err.message().trim().to_owned();
            let span = err.span().map(|s| {
                // Point at something visible even for an empty span at the end.
                if s.start == s.end && s.start >= src.len() && !src.is_empty() {
                    src.len() - 1..src.len()
                } else {
                    s
                }
            });
            let code = classify(&message);
            let mut p = Problem::new(code, message.clone(), source).label(span, short_label(code));
            if let Some(help) = help_for(code, &message) {
                p = p.help(help);
            }
            Err(vec![p])
        }
    }
}

/// The diagnostic code for a parser's error message.
fn classify(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("unknown field") {
        "wi::spec::unknown_field"
    } else if m.contains("missing field") {
        "wi::spec::missing_field"
    } else if m.contains("duplicate") {
        "wi::spec::duplicate_key"
    } else if m.contains("budget")
        || m.contains("limit")
        || m.contains("too deep")
        || m.contains("recurs")
        || m.contains("depth")
    {
        "wi::spec::limit"
    } else if m.contains("invalid type")
        || m.contains("invalid value")
        || m.contains("unknown variant")
        || m.starts_with("invalid ")
        || m.starts_with("expected ")
    {
        "wi::spec::wrong_type"
    } else {
        "wi::spec::syntax"
    }
}

fn short_label(code: &str) -> &'static str {
    match code {
        "wi::spec::unknown_field" => "unknown field",
        "wi::spec::missing_field" => "in this item",
        "wi::spec::duplicate_key" => "duplicate key",
        "wi::spec::wrong_type" => "unexpected value",
        "wi::spec::limit" => "limit reached here",
        _ => "here",
    }
}

/// Help for a parser error: a spelling suggestion for unknown fields, the
/// limits for budget errors.
fn help_for(code: &str, message: &str) -> Option<String> {
    match code {
        "wi::spec::unknown_field" => {
            // "unknown field `X`, expected one of `a`, `b`" (toml) or "... one of a, b" (YAML).
            let (head, expected) = message.split_once(", expected ")?;
            let field = head.split('`').nth(1)?;
            let candidates: Vec<&str> = expected
                .trim_start_matches("one of ")
                .split(", ")
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            // The message already lists the fields; only add a likely spelling.
            super::suggest::closest(field, &candidates).map(|c| format!("did you mean `{c}`?"))
        }
        "wi::spec::wrong_type" if message.contains("expected sequence") => {
            Some("this field takes a list: `[a, b]`, or one `- item` per line".to_owned())
        }
        "wi::spec::wrong_type" if message.contains("expected mapping") => {
            Some("this item takes keys and values, e.g. `- name: alpha`".to_owned())
        }
        "wi::spec::limit" => Some(format!(
            "a spec may be at most {} MiB, nest at most 24 levels, and expand YAML aliases \
             to at most 200000 nodes",
            MAX_FILE_BYTES / (1024 * 1024)
        )),
        _ => None,
    }
}

/// The JSON Schema (draft-07) of the spec format, pretty-printed with a final newline.
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<RawSpec>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
