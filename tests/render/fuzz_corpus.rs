//! The committed fuzz corpora as a regression suite: every file under
//! `fuzz/corpus/<target>/` goes through the same checks as the fuzz target
//! (`fuzz/checks.rs`, shared), so an input that once broke a parser stays
//! tested without cargo-fuzz or a nightly compiler.
//!
//! The saved-plan seeds are generated, not hand-written (a plan file carries
//! a checksum): `cargo test --test render -- --ignored write_plan_seeds`
//! rewrites them from the render fixtures.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

use crate::harness::fixtures as fx;
use serde_json::{Value, json};
use wi::plan::file;
use wi::spec::Format;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every corpus file of `target`, naming the file that fails.
fn run_corpus(target: &str, min_files: usize, check: impl Fn(&[u8])) {
    let files = corpus(target);
    assert!(
        files.len() >= min_files,
        "{target}: only {} corpus files",
        files.len()
    );
    for path in files {
        let data = std::fs::read(&path).expect("read corpus file");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(
            outcome.is_ok(),
            "corpus file {} fails its fuzz check",
            path.display()
        );
    }
}

#[test]
fn spec_yaml_corpus_passes_its_checks() {
    run_corpus("spec_yaml", 40, |d| checks::check_spec(d, Format::Yaml));
}

#[test]
fn spec_toml_corpus_passes_its_checks() {
    run_corpus("spec_toml", 10, |d| checks::check_spec(d, Format::Toml));
}

#[test]
fn plan_file_corpus_passes_its_checks() {
    run_corpus("plan_file", 10, checks::check_plan_file);
}

/// The corpus holds real plans: the generated seeds decode, so the fuzzer
/// starts from inputs that pass the checksum.
#[test]
fn plan_seeds_include_valid_plans() {
    let valid = corpus("plan_file")
        .iter()
        .filter(|p| file::decode(&std::fs::read(p).expect("read"), p).is_ok())
        .count();
    assert!(valid >= 6, "only {valid} plan seeds decode");
}

fn plan_seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/plan_file")
}

/// The committed plan seeds are the ones [`plan_seeds`] generates from the
/// shared fixtures (regenerate with `write_plan_seeds`).
#[test]
fn plan_seeds_are_current() {
    let dir = plan_seed_dir();
    let stale: Vec<String> = plan_seeds()
        .into_iter()
        .filter(|(name, bytes)| std::fs::read(dir.join(name)).ok().as_deref() != Some(&bytes[..]))
        .map(|(name, _)| name)
        .collect();
    assert!(
        stale.is_empty(),
        "stale plan seeds {stale:?}: run `cargo test --test render -- --ignored write_plan_seeds`"
    );
}

/// Rewrites the generated plan seeds. Run by hand after a plan format change.
#[test]
#[ignore = "writes into fuzz/corpus/plan_file; run by hand"]
fn write_plan_seeds() {
    let dir = plan_seed_dir();
    for (name, bytes) in plan_seeds() {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Every generated plan seed: (file name, bytes).
fn plan_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| seeds.push((name.to_string(), bytes.to_vec()));
    let plans = [
        ("create_everything", fx::create_everything()),
        ("partial_drift", fx::partial_drift()),
        ("foreign_members", fx::foreign_members()),
        ("removal", fx::removal()),
        ("no_changes", fx::no_changes()),
        ("structured_values", fx::structured_values()),
    ];
    for (name, plan) in &plans {
        write(
            &format!("valid_{name}.json"),
            &file::encode(plan).expect("encode"),
        );
    }

    // Hostile text inside a correctly checksummed plan: escape codes, bidi
    // overrides, zero-width and combining characters, NUL, huge numbers.
    let mut odd = fx::removal();
    for (i, change) in odd.changes.iter_mut().enumerate() {
        change.address = format!("{}\u{1b}[31m\u{202e}{i}", change.address);
        change.reason.message = "gone\r\n\u{1b}]0;title\u{7}\u{200b}e\u{301}\0".into();
        if let Some(after) = change.after.as_mut() {
            after.insert("display_name", json!("\u{1b}[2J\u{feff}💳"));
            after.insert("big", json!(u64::MAX));
            after.insert("neg", json!(i64::MIN));
            after.insert("float", json!(1.0e308));
        }
        change.depends_on.push(change.address.clone());
    }
    odd.spec_digest = "\u{0}".into();
    write(
        "hostile_odd_text.json",
        &file::encode(&odd).expect("encode"),
    );

    // A tampered plan: one attribute changed after writing.
    let good = file::encode(&fx::create_everything()).expect("encode");
    let text = String::from_utf8(good).expect("utf-8");
    write(
        "hostile_tampered.json",
        text.replacen("[payments/api]", "[payments/apj]", 1)
            .as_bytes(),
    );

    // Document problems, each correctly checksummed.
    let sealed = |mut doc: Value| -> Vec<u8> {
        if let Some(map) = doc.as_object_mut() {
            let sum = file::checksum(&Value::Object(map.clone()));
            map.insert("checksum".into(), Value::String(sum));
        }
        serde_json::to_vec(&doc).expect("json")
    };
    write(
        "hostile_future_version.json",
        text.replacen(
            "\"format_version\": \"2.0\"",
            "\"format_version\": \"3.0\"",
            1,
        )
        .as_bytes(),
    );
    // Format 1: the plan inside a `wi_plan` envelope.
    let plan = json!({"format_version": "1.0", "spec_digest": "", "changes": [], "warnings": [], "fingerprints": []});
    write(
        "hostile_format_1_envelope.json",
        &serde_json::to_vec(
            &json!({"wi_plan": "1.0", "checksum": file::checksum(&plan), "plan": plan}),
        )
        .expect("json"),
    );
    write(
        "hostile_wrong_shape.json",
        &sealed(json!({"format_version": "2.0", "resource_changes": {"a": 1}})),
    );
    write(
        "hostile_null_changes.json",
        &sealed(json!({"format_version": "2.0", "resource_changes": null})),
    );
    write(
        "hostile_unknown_resource.json",
        &sealed(
            json!({"format_version": "2.0", "wi_version": "0", "spec_digest": "x", "warnings": [],
            "fingerprints": [], "summary": {"add": 0, "change": 0, "destroy": 0}, "has_changes": true,
            "resource_changes": [{"address": "a", "type": "bucket", "group": {"kind": "project", "project": "p"},
                "resource": {"name": "b"}, "change": {"actions": ["explode"], "before": null, "after": null},
                "action_reason": "c", "reason": "m"}]}),
        ),
    );
    write(
        "hostile_missing_identity.json",
        &sealed(
            json!({"format_version": "2.0", "wi_version": "0", "spec_digest": "x", "warnings": [],
            "fingerprints": [], "summary": {"add": 1, "change": 0, "destroy": 0}, "has_changes": true,
            "resource_changes": [{"address": "node_pool[\"x\"]", "type": "node_pool",
                "group": {"kind": "project", "project": "p"}, "resource": {"pool": "b"},
                "change": {"actions": ["create", "delete"], "before": null, "after": null},
                "action_reason": "missing", "reason": "m"}]}),
        ),
    );
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    write("hostile_deep_nesting.json", deep.as_bytes());
    write(
        "hostile_huge_number.json",
        b"{\"format_version\": \"2.0\", \"checksum\": \"sha256:00\", \"summary\": 1e400}",
    );
    write(
        "hostile_not_json.json",
        b"\xff\xfe{\"format_version\": \"2.0\"\0",
    );
    write("hostile_array.json", b"[]");
    seeds
}
