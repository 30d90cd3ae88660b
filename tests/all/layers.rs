//! The crate's layering, held by a test: each file of `host/src` imports (through
//! `crate::` and `super::` paths, tests aside) only files of its own layer or lower ones,
//! and no files import each other in a circle. The layers, lowest first, are those of
//! `docs/ARCHITECTURE.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::repo;

/// A top-level file or folder of `host/src` and its layer (lower imports nothing higher).
const LAYERS: &[(&str, u8)] = &[
    ("types.rs", 0),
    ("codec.rs", 0),
    ("limits.rs", 0),
    ("helpers.rs", 0),
    ("poll.rs", 0),
    ("process.rs", 0),
    ("text.rs", 0),
    ("storage", 1),
    ("error.rs", 2),
    ("state", 3),
    ("ledger", 4),
    ("vm", 5),
    ("exec", 6),
    ("host", 7),
    ("lib.rs", 8),
];

fn layer(file: &str) -> u8 {
    let top = file.split('/').next().unwrap();
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .unwrap_or_else(|| panic!("{file}: a top-level module without a layer in LAYERS"))
        .1
}

/// Every `.rs` file under `dir`, as a path relative to `root`, with its source.
fn sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            if rel != "bin" {
                sources(root, &path, out);
            }
        } else if rel.ends_with(".rs") {
            out.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The module path of a file: `vm/imports/mod.rs` → `[vm, imports]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The paths a source names after `crate::` or `super::`, with one level of braces
/// expanded, outside its `#[cfg(test)] mod tests`.
fn named_paths(file: &str, source: &str) -> Vec<Vec<String>> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap();
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let own = module_of(file);
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            let mut b = own.clone();
            if !file.ends_with("mod.rs") {
                b.pop();
            }
            b.pop();
            b
        }),
    ] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let preceded = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let ident_end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let head: Vec<String> = rest[..ident_end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let mut path = base.clone();
            path.extend(head.iter().cloned());
            if rest[ident_end..].starts_with('{') {
                let inner = &rest[ident_end + 1..];
                let close = inner.find('}').unwrap_or(inner.len());
                for item in inner[..close].split(',') {
                    let first = item.trim().split(['{', ' ']).next().unwrap_or("");
                    let mut p = path.clone();
                    p.extend(
                        first
                            .split("::")
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                    );
                    out.push(p);
                }
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn lower_layers_never_import_higher_ones_and_no_files_import_in_a_circle() {
    let root = repo().join("host/src");
    let mut files = BTreeMap::new();
    sources(&root, &root, &mut files);
    let modules: BTreeMap<Vec<String>, String> =
        files.keys().map(|f| (module_of(f), f.clone())).collect();
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.get(&path[..n]).cloned())
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, source) in &files {
        for path in named_paths(file, source) {
            if let Some(target) = resolve(&path)
                && target != *file
            {
                edges.entry(file.clone()).or_default().insert(target);
            }
        }
    }
    assert!(
        edges
            .get("vm/run.rs")
            .is_some_and(|e| e.contains("vm/context.rs")),
        "the scan finds imports: {edges:?}"
    );
    let upward: Vec<String> = edges
        .iter()
        .flat_map(|(a, bs)| bs.iter().map(move |b| (a, b)))
        .filter(|(a, b)| layer(b) > layer(a))
        .map(|(a, b)| format!("{a} -> {b}"))
        .collect();
    assert!(upward.is_empty(), "imports of a higher layer: {upward:#?}");
    // A circle: a file that reaches itself.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = edges[start].iter().collect();
        while let Some(next) = todo.pop() {
            assert!(
                next != start,
                "{start} imports itself through others: {edges:#?}"
            );
            if seen.insert(next) {
                todo.extend(edges.get(next).into_iter().flatten());
            }
        }
    }
}
