//! The loader never panics: every prefix of every example, and a few thousand
//! deterministic mutations of them, load to a model or to diagnostics.

use std::path::{Path, PathBuf};

use wi::spec::{self, Format};

fn examples() -> Vec<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["examples", "tests/fixtures/specs/valid"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            if let Ok(src) = std::fs::read_to_string(&path) {
                out.push((path, src));
            }
        }
    }
    out.sort();
    out
}

/// Loads and, on failure, renders: rendering must not panic either.
fn exercise(src: &str, format: Format) {
    if let Err(e) = spec::load_str(src, "fuzz", format) {
        let text = spec::render_plain(&e, 100);
        assert!(!text.is_empty());
        for p in e.problems() {
            for l in p.labels() {
                assert!(l.span.start <= l.span.end && l.span.end <= src.len().max(1));
            }
        }
    }
}

#[test]
fn every_prefix_loads_or_fails_cleanly() {
    for (path, src) in examples() {
        let format = Format::from_path(&path);
        // Every char boundary of small files; a stride on bigger ones.
        let step = (src.len() / 1500).max(1);
        for end in (0..=src.len()).step_by(step) {
            if src.is_char_boundary(end) {
                exercise(&src[..end], format);
            }
        }
    }
}

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    ":",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a",
    "*a",
    "<<: *a",
    "\"",
    "'",
    "\n",
    "  ",
    "\t",
    "#",
    "!!str",
    "!!int ",
    "|",
    ">",
    "~",
    "null",
    "0",
    "-1",
    "99999999999999999999",
    "=",
    "[[",
    "]]",
    ",",
    "é",
    "\u{0}",
    "\\",
    "*",
    "/",
    "@",
    "version",
    "clusters",
    "\n- name: x\n",
];

fn mutate(src: &str, rng: &mut Lcg) -> String {
    let mut s = src.to_owned();
    for _ in 0..(1 + rng.below(4)) {
        let mut at = rng.below(s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        match rng.below(4) {
            0 => s.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
            1 => {
                let mut end = (at + 1 + rng.below(8)).min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.replace_range(at..end, "");
            }
            2 => {
                // Duplicate a line (duplicate keys, repeated items).
                let start = s[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = s[at..].find('\n').map_or(s.len(), |i| at + i + 1);
                let line = s[start..end].to_owned();
                s.insert_str(end, &line);
            }
            _ => {
                let mut end = (at + 1).min(s.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                s.replace_range(at..end, TOKENS[rng.below(TOKENS.len())]);
            }
        }
    }
    s
}

#[test]
fn mutations_load_or_fail_cleanly() {
    let mut rng = Lcg(0x5eed);
    for (path, src) in examples() {
        let format = Format::from_path(&path);
        for _ in 0..300 {
            exercise(&mutate(&src, &mut rng), format);
        }
    }
}

#[test]
fn hostile_inputs() {
    let deep_yaml = format!(
        "version: 1\nclusters: {}{}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_map = format!(
        "version: 1\nclusters:\n{}",
        (0..2_000)
            .map(|i| format!("{}- a:\n", " ".repeat(i)))
            .collect::<String>()
    );
    let deep_toml = format!("version = {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let inline_tables = format!(
        "version = 1\ndefaults = {}{}",
        "{a = ".repeat(5_000),
        "}".repeat(5_000)
    );
    let cases: Vec<(String, Format)> = vec![
        (deep_yaml, Format::Yaml),
        (deep_map, Format::Yaml),
        (deep_toml, Format::Toml),
        (inline_tables, Format::Toml),
        ("---\nversion: 1\n---\nversion: 1\n".into(), Format::Yaml),
        ("version: !!binary aGVsbG8=\n".into(), Format::Yaml),
        ("\u{feff}version: 1\n".into(), Format::Yaml),
        ("".into(), Format::Yaml),
        ("".into(), Format::Toml),
        ("\0".into(), Format::Yaml),
        (
            "version: 1\nclusters:\n  - name: a\n    groups: &x [*x]\n".into(),
            Format::Yaml,
        ),
    ];
    for (src, format) in cases {
        exercise(&src, format);
    }
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .is_dir()
    );
}
