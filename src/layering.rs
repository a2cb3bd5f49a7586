//! The layer map of `lib.rs`, checked: a unit test reads every file under
//! `src/` (std only, no parser) and fails when a module imports a layer above
//! it, when `gcp` or `kube` import `spec` or each other, when the engine and
//! the emulator import each other, or when files import each other in a cycle.
//!
//! The rules mirror `modgraph.py` of the review hooks: an edge is a
//! `crate::` / `super::` / `self::` path (or a `use` group under one), resolved
//! to the longest module file it names; comments and everything after the
//! first `#[cfg(test)]` of a file are left out, and so are a hub (`mod.rs`,
//! `lib.rs`) re-exporting its own children and a child naming its own
//! ancestor hub as a path prefix. Top-level files (`ids.rs`, `ownership.rs`,
//! ...) are the bottom layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Ranks of the engine layers; a module may import its own rank or lower.
const RANK: &[(&str, u8)] = &[
    ("spec", 1),
    ("gcp", 2),
    ("kube", 2),
    ("live", 3),
    ("plan", 4),
    ("audit", 4),
    ("drift", 4),
    ("import", 4),
    ("apply", 5),
    ("verify", 5),
    ("permissions", 5),
    ("render", 6),
    ("cli", 7),
];

/// Layers of equal or lower rank that still must not import each other.
const FORBIDDEN_SIDEWAYS: &[(&str, &str)] = &[
    ("gcp", "kube"),
    ("kube", "gcp"),
    ("gcp", "spec"),
    ("kube", "spec"),
    ("apply", "verify"),
    ("verify", "apply"),
    ("audit", "plan"),
    ("plan", "audit"),
    ("import", "plan"),
    ("import", "audit"),
    ("plan", "import"),
    ("import", "drift"),
    ("drift", "import"),
];

/// A module path (`["plan", "compute"]`) from a file path relative to `src/`.
fn mod_path(rel: &str) -> Vec<String> {
    let stem = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut segs: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

fn is_hub(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    matches!(name, "mod.rs" | "lib.rs" | "main.rs")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The text that counts: no `//` comments, nothing after the first `#[cfg(test)]`.
fn significant(text: &str) -> String {
    let no_comments: String = text
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    match no_comments.find("#[cfg(test)]") {
        Some(i) => no_comments[..i].to_string(),
        None => no_comments,
    }
}

/// Reads an identifier at `i`, returning it and the index after it.
fn ident_at(b: &[u8], i: usize) -> Option<(String, usize)> {
    let start = i;
    let mut j = i;
    if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        Some((String::from_utf8_lossy(&b[start..j]).into_owned(), j))
    } else {
        None
    }
}

/// Every `(root, segments)` path reference in `text`: `crate::a::b` gives
/// `("crate", [a, b])`; `super::{x, y::z}` gives `("super", [x])` and `("super", [y])`.
fn references(text: &str) -> Vec<(String, Vec<String>)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let root = ["crate", "super", "self"].into_iter().find(|r| {
            b[i..].starts_with(r.as_bytes())
                && (i == 0 || !is_ident(b[i - 1]))
                && b[i + r.len()..].starts_with(b"::")
        });
        let Some(root) = root else {
            i += 1;
            continue;
        };
        let mut j = i + root.len();
        let mut segs = Vec::new();
        let mut group = None;
        while b[j..].starts_with(b"::") {
            j += 2;
            if b.get(j) == Some(&b'{') {
                group = Some(j + 1);
                break;
            }
            match ident_at(b, j) {
                Some((id, next)) => {
                    segs.push(id);
                    j = next;
                }
                None => break,
            }
        }
        if !segs.is_empty() {
            out.push((root.to_string(), segs.clone()));
        }
        if let Some(start) = group {
            // The items of the group, split at top-level commas.
            let mut depth = 0usize;
            let mut item_start = start;
            let mut k = start;
            while k < b.len() {
                match b[k] {
                    b'{' => depth += 1,
                    b'}' if depth == 0 => break,
                    b'}' => depth -= 1,
                    b',' if depth == 0 => {
                        push_item(&mut out, root, &segs, &text[item_start..k]);
                        item_start = k + 1;
                    }
                    _ => {}
                }
                k += 1;
            }
            push_item(&mut out, root, &segs, &text[item_start..k.min(b.len())]);
            i = start;
        } else {
            i = j.max(i + 1);
        }
    }
    out
}

fn push_item(out: &mut Vec<(String, Vec<String>)>, root: &str, head: &[String], item: &str) {
    let first: String = item
        .trim()
        .bytes()
        .take_while(|&c| is_ident(c))
        .map(char::from)
        .collect();
    if !first.is_empty() && first != "self" {
        let mut segs = head.to_vec();
        segs.push(first);
        out.push((root.to_string(), segs));
    }
}

/// The file → file import graph of a crate whose files are `rel path → text`.
fn edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let by_mod: BTreeMap<Vec<String>, &String> =
        files.keys().map(|rel| (mod_path(rel), rel)).collect();
    let resolve = |segs: &[String]| {
        (1..=segs.len())
            .rev()
            .find_map(|k| by_mod.get(&segs[..k]).copied())
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let here = mod_path(rel);
        let targets = graph.entry(rel.clone()).or_default();
        for (root, segs) in references(&significant(text)) {
            let full: Vec<String> = match root.as_str() {
                "crate" => segs,
                "self" => here.iter().cloned().chain(segs).collect(),
                _ => {
                    let mut base = here[..here.len().saturating_sub(1)].to_vec();
                    let mut rest = &segs[..];
                    while rest.first().map(String::as_str) == Some("super") {
                        rest = &rest[1..];
                        base.pop();
                    }
                    base.into_iter().chain(rest.iter().cloned()).collect()
                }
            };
            let Some(target) = resolve(&full) else {
                continue;
            };
            if target == rel {
                continue;
            }
            let there = mod_path(target);
            if is_hub(rel) && there.len() > here.len() && there[..here.len()] == here[..] {
                continue; // a hub re-exporting its own children
            }
            if is_hub(target) && here.len() >= there.len() && here[..there.len()] == there[..] {
                continue; // a child naming its ancestor hub as a path prefix
            }
            targets.insert(target.clone());
        }
    }
    graph
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// The layer of a file: its top-level module, `lib` for the crate root.
fn layer(rel: &str) -> String {
    mod_path(rel)
        .first()
        .cloned()
        .unwrap_or_else(|| "lib".into())
}

/// The rank of a file's layer: top-level files (`ids.rs`, ...) are 0.
fn rank(rel: &str) -> Option<u8> {
    let top = layer(rel);
    if let Some((_, r)) = RANK.iter().find(|(name, _)| *name == top) {
        return Some(*r);
    }
    (!rel.contains('/') && top != "lib").then_some(0)
}

/// Every import that breaks the layer rules, as `layer: FROM -> TO`.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let engine = |rel: &str| rank(rel).is_some_and(|r| r < 7);
    let mut out = BTreeSet::new();
    for (from, targets) in graph {
        for to in targets {
            let (lf, lt) = (layer(from), layer(to));
            if lf == lt {
                continue;
            }
            let upward = matches!((rank(from), rank(to)), (Some(a), Some(b)) if b > a);
            let sideways = FORBIDDEN_SIDEWAYS.contains(&(lf.as_str(), lt.as_str()));
            let emulator = (engine(from) && lt == "emulator")
                || (lf == "emulator" && engine(to) && rank(to) != Some(0));
            if upward || sideways || emulator {
                out.insert(format!("layer: {from} -> {to}"));
            }
        }
    }
    out.into_iter().collect()
}

/// Every `.rs` file under `dir`, as `path relative to src → text`
/// (`tests.rs` files are test code and left out).
fn read_tree(src: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            read_tree(src, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(rel, std::fs::read_to_string(&path).expect("read source"));
        }
    }
}

/// What is wrong with the crate whose files are given: layer violations,
/// then cycles, one line each.
fn problems(files: &BTreeMap<String, String>) -> Vec<String> {
    let graph = edges(files);
    let mut out = violations(&graph);
    for cycle in cycles(&graph) {
        out.push(format!("cycle: {}", cycle.join(" <-> ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_of(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn the_crate_follows_the_layer_map() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        read_tree(&src, &src, &mut files);
        assert!(files.contains_key("lib.rs") && files.len() > 20);
        let problems = problems(&files);
        assert!(
            problems.is_empty(),
            "the layer map of lib.rs is broken:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn an_upward_import_is_reported() {
        let files = crate_of(&[
            ("lib.rs", "pub mod live; pub mod plan;"),
            ("live/mod.rs", "use crate::plan::Fingerprint;"),
            ("plan/mod.rs", "use crate::live::LiveState;"),
        ]);
        assert_eq!(
            problems(&files),
            [
                "layer: live/mod.rs -> plan/mod.rs",
                "cycle: live/mod.rs <-> plan/mod.rs"
            ]
        );
    }

    #[test]
    fn sideways_and_emulator_imports_are_reported() {
        let files = crate_of(&[
            ("lib.rs", ""),
            ("ids.rs", "use crate::spec::Model;"),
            ("spec/mod.rs", ""),
            (
                "gcp/client.rs",
                "use crate::{kube::KubeError, spec::ClusterKey};",
            ),
            ("kube/mod.rs", ""),
            (
                "plan/compute/mod.rs",
                "use super::super::emulator::Emulator;",
            ),
            ("plan/mod.rs", "mod compute; pub use compute::compute;"),
            ("emulator/mod.rs", "use crate::ids::ClusterKey;"),
            ("emulator/seed.rs", "fn f() { crate::live::read(); }"),
            (
                "live/mod.rs",
                "// use crate::plan::Plan;\n#[cfg(test)]\nuse crate::plan::Plan;",
            ),
        ]);
        assert_eq!(
            problems(&files),
            [
                "layer: emulator/seed.rs -> live/mod.rs",
                "layer: gcp/client.rs -> kube/mod.rs",
                "layer: gcp/client.rs -> spec/mod.rs",
                "layer: ids.rs -> spec/mod.rs",
                "layer: plan/compute/mod.rs -> emulator/mod.rs",
            ]
        );
    }

    #[test]
    fn paths_resolve_to_the_longest_module_file() {
        let refs = references("use super::{Action, x::{Y, Z}};\nlet v = crate::VERSION;");
        assert_eq!(
            refs,
            [
                ("super".to_string(), vec!["Action".to_string()]),
                ("super".to_string(), vec!["x".to_string()]),
                ("crate".to_string(), vec!["VERSION".to_string()]),
            ]
        );
        assert_eq!(mod_path("plan/compute/mod.rs"), ["plan", "compute"]);
        assert_eq!(mod_path("lib.rs"), Vec::<String>::new());
    }
}
