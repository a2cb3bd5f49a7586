//! YAML tags a spec refuses. The YAML parser honours tags the spec has no use
//! for: `!!binary` is decoded into text, a local tag such as `!secret` is
//! dropped, so a name could arrive in a form no reviewer reads. A spec
//! takes names and values as written: the core-schema tags (`!!str`,
//! `!!int`, `!!bool`, `!!float`, `!!null`, `!!map`, `!!seq`) and the
//! non-specific `!` are accepted; any other tag is refused at its line.
//!
//! The scan runs on text the deserializer already accepted (its budget has
//! bounded the input), with the same event parser serde-saphyr uses.

use std::sync::Arc;

use miette::NamedSource;
use serde_saphyr::granit_parser::{Event, Parser, Tag};

use super::diagnostic::Problem;

/// Most tag problems reported for one file.
const MAX_REPORTED: usize = 50;

/// Problems for every refused tag in `src`.
pub(crate) fn tag_problems(src: &str, source: &Arc<NamedSource<String>>) -> Vec<Problem> {
    let mut out = Vec::new();
    // Every tag starts with `!`: text without one has none, and is not parsed twice.
    if !src.contains('!') {
        return out;
    }
    for event in Parser::new_from_str(src) {
        let Ok((event, span)) = event else {
            break;
        };
        let (tag, what) = match &event {
            Event::Scalar(_, _, _, Some(tag)) => (tag, "value"),
            Event::SequenceStart(_, _, Some(tag)) => (tag, "list"),
            Event::MappingStart(_, _, Some(tag)) => (tag, "mapping"),
            _ => continue,
        };
        if accepted(tag) {
            continue;
        }
        let written = format!("{}{}", tag.original_handle(), tag.suffix());
        let start = span
            .tag_start
            .as_ref()
            .and_then(|m| m.byte_offset())
            .or_else(|| span.start.byte_offset())
            .unwrap_or(0);
        let end = span.end.byte_offset().unwrap_or(start).max(start + 1);
        let end = end.min(src.len()).max(start.min(src.len()));
        let p = Problem::new(
            "wi::spec::tagged_value",
            format!("the YAML tag `{written}` is not accepted in a spec"),
            source.clone(),
        )
        .label(Some(start..end), format!("tagged {what}"))
        .help(if tag.suffix() == "binary" {
            "names and values are written as plain text: decode the base64 and write the \
             name itself"
        } else {
            "write the value as plain text without a tag (only `!!str`, `!!int`, `!!bool`, \
             `!!float`, `!!null`, `!!map` and `!!seq` are accepted)"
        });
        out.push(p);
        if out.len() >= MAX_REPORTED {
            break;
        }
    }
    out
}

/// The core-schema tags and the non-specific `!`.
fn accepted(tag: &Tag) -> bool {
    if tag.is_yaml_core_schema() {
        return true;
    }
    // `! value`: the non-specific tag, a plain string.
    tag.original_handle().len() + tag.suffix().len() <= 1
        && format!("{}{}", tag.original_handle(), tag.suffix()) == "!"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(src: &str) -> Vec<String> {
        let source = Arc::new(NamedSource::new("t.yaml", src.to_owned()));
        tag_problems(src, &source)
            .iter()
            .map(|p| p.message().to_owned())
            .collect()
    }

    #[test]
    fn core_tags_pass_and_others_are_refused() {
        assert_eq!(
            codes("a: !!str x\nb: !!int 3\nc: ! y\nd: !!seq [1]\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            codes("name: !!binary cGF5bWVudHM=\n"),
            ["the YAML tag `!!binary` is not accepted in a spec"]
        );
        assert_eq!(
            codes("name: !secret payments\n"),
            ["the YAML tag `!secret` is not accepted in a spec"]
        );
        assert_eq!(codes("a: !!set {x}\n").len(), 1);
    }
}
