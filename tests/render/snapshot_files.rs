//! The committed snapshots are one set: a reviewer accepts a change of what
//! users read once, not in two copies that can drift apart (issue 8 found
//! the same four human plans committed twice, from two fixture sets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::root;

/// Every `.snap` file under `dir`, recursively.
fn snap_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && name != ".git" {
            snap_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "snap") {
            out.push(path);
        }
    }
}

/// A snapshot's content without insta's header (source, expression).
fn body(text: &str) -> &str {
    match text.strip_prefix("---\n") {
        Some(rest) => rest.split_once("\n---\n").map_or(text, |(_, body)| body),
        None => text,
    }
}

#[test]
fn no_snapshot_is_committed_twice() {
    let mut files = Vec::new();
    for dir in ["src", "tests"] {
        snap_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} snapshots", files.len());
    let mut by_body: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read snapshot");
        let rel = path.strip_prefix(root()).unwrap_or(path);
        by_body
            .entry(body(&text).to_string())
            .or_default()
            .push(rel.display().to_string());
    }
    let twice: Vec<&Vec<String>> = by_body.values().filter(|paths| paths.len() > 1).collect();
    assert!(twice.is_empty(), "snapshots committed twice: {twice:?}");
}

#[test]
fn body_skips_the_header_only() {
    assert_eq!(
        body("---\nsource: a\nexpression: b\n---\nhello\n"),
        "hello\n"
    );
    assert_eq!(body("plain\n"), "plain\n");
}
