//! `docs/ABI.md` and the host agree: every host function in the ABI table is documented
//! with its exact wasm signature, and the docs list no others.

use crate::util::repo;

#[test]
fn docs_abi_lists_exactly_the_host_functions() {
    let doc = std::fs::read_to_string(repo().join("docs/ABI.md")).unwrap();
    let documented: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | `name` | `(i32, i32) -> (i64)` | meaning |
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let sig = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            sig.contains("->")
                .then(|| (name.to_owned(), sig.to_owned()))
        })
        .collect();
    let expected: Vec<(String, String)> = semel::abi::HOST_FUNCTIONS
        .iter()
        .map(|h| (h.name.to_owned(), semel::abi::signature_text(h)))
        .collect();
    assert_eq!(documented, expected);
}

#[test]
fn docs_abi_names_every_limit() {
    let doc = std::fs::read_to_string(repo().join("docs/ABI.md")).unwrap();
    let source = std::fs::read_to_string(repo().join("host/src/limits.rs")).unwrap();
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("pub const ") {
            let name = rest.split(':').next().unwrap();
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/ABI.md does not list {name}"
            );
        }
    }
}
