//! The per-target checks of the fuzz targets, in one copy: the targets under
//! `fuzz/fuzz_targets/` call them on what libFuzzer generates, and
//! `tests/render/fuzz_corpus.rs` calls them on every committed corpus file, so an
//! input that once broke a parser stays in the normal test suite.
//!
//! Every check panics (an assertion) only when `wi` misbehaves: a panic
//! inside the library, a non-deterministic load, a saved plan that does not
//! survive its own round trip, a diagnostic that cannot be rendered, or
//! terminal escape codes leaking from hostile text into plain output.

use std::path::Path;

use serde_json::Value;
use wi::plan::Plan;
use wi::plan::file::{self, PlanFileError};
use wi::render::{self, GITHUB_COMMENT_MAX_BYTES, Style};
use wi::spec::{self, Format, SpecError};

/// Width the diagnostics are rendered at.
const WIDTH: usize = 100;

/// Spec text in `format`: loads to a model or to diagnostics that render.
/// A load that succeeds succeeds again with an equal model; one that fails
/// fails again with the same diagnostics.
pub fn check_spec(data: &[u8], format: Format) {
    // `load_file` refuses a file that is not UTF-8 before any parsing.
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match spec::load_str(src, "fuzz", format) {
        Ok(model) => {
            let again = spec::load_str(src, "fuzz", format);
            assert!(
                matches!(&again, Ok(m) if *m == model),
                "loading the same text twice gave different results: {model:?} then {again:?}"
            );
        }
        Err(err) => {
            let text = check_spec_error(&err, src);
            let again = spec::load_str(src, "fuzz", format)
                .err()
                .map(|e| spec::render_plain(&e, WIDTH));
            assert_eq!(
                again.as_deref(),
                Some(text.as_str()),
                "loading the same text twice gave different diagnostics"
            );
        }
    }
}

/// Renders a spec error and checks its spans; returns the rendering.
fn check_spec_error(err: &SpecError, src: &str) -> String {
    let text = spec::render_plain(err, WIDTH);
    assert!(!text.trim().is_empty(), "empty diagnostic for {err:?}");
    for problem in err.problems() {
        assert!(!problem.message().is_empty(), "problem without message");
        for label in problem.labels() {
            assert!(
                label.span.start <= label.span.end && label.span.end <= src.len().max(1),
                "label {:?} outside the {}-byte source: {problem:?}",
                label.span,
                src.len()
            );
        }
        let _ = problem.line_col();
    }
    text
}

/// Saved plan file bytes: decoded to a plan or refused with an error that
/// renders. A decoded plan renders (human, JSON, Markdown) without escape
/// codes in plain output, and re-encodes to bytes that decode to an equal plan.
///
/// The checksum stops nearly every mutation, so the input is also resealed
/// (given the correct checksum of the rest of the document) and checked
/// again: that lets the fuzzer reach the plan deserializer and the renderers.
pub fn check_plan_file(data: &[u8]) {
    check_plan_bytes(data);
    if let Some(resealed) = reseal(data) {
        check_plan_bytes(&resealed);
    }
}

/// `data` with its checksum replaced by the correct one, if it is a JSON
/// object.
fn reseal(data: &[u8]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(data).ok()?;
    let document = value.as_object_mut()?;
    document.shift_remove("checksum");
    let sum = file::checksum(&Value::Object(document.clone()));
    document.insert("checksum".into(), Value::String(sum));
    serde_json::to_vec(&value).ok()
}

fn check_plan_bytes(data: &[u8]) {
    let path = Path::new("fuzz.wiplan");
    match file::decode(data, path) {
        Ok(plan) => {
            check_plan_renders(&plan);
            let bytes = file::encode(&plan).expect("a decoded plan must encode");
            match file::decode(&bytes, path) {
                Ok(again) => assert_eq!(again, plan, "plan changed in an encode/decode round trip"),
                Err(e) => panic!("a re-encoded plan was refused: {e:?}"),
            }
        }
        Err(err) => check_plan_error(&err, path),
    }
}

fn check_plan_renders(plan: &Plan) {
    let human = render::human(plan, &Style::PLAIN);
    assert!(
        !human.contains('\u{1b}'),
        "escape code in plain human output: {human:?}"
    );
    let _ = render::human(plan, &Style::COLOR);
    let _ = render::json(plan);
    for budget in [GITHUB_COMMENT_MAX_BYTES, 1500, 0] {
        let md = render::markdown(plan, budget);
        assert!(
            md.len() <= budget,
            "markdown of {} bytes over its {budget}-byte budget",
            md.len()
        );
        assert!(!md.contains('\u{1b}'), "escape code in markdown: {md:?}");
    }
}

fn check_plan_error(err: &PlanFileError, path: &Path) {
    assert_eq!(err.path(), path, "error about another path: {err:?}");
    let text = spec::render_plain(err, WIDTH);
    assert!(!text.trim().is_empty(), "empty diagnostic for {err:?}");
}
