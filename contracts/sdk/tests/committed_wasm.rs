//! Holds the committed `contracts/wasm/*.wasm` to the ABI (INTERFACE.md §1–2): imports
//! only from `semel`, each one a host function of the SDK's table with exactly its
//! type; no start function; one memory, not shared, exported as `memory`; every
//! exported function of type `[] -> []`; no bulk-memory data count section. Each
//! contract exports exactly the methods its docs list.
//!
//! A small reader of the wasm binary format is enough for this and keeps the SDK's
//! dependencies to what contracts use.

use std::collections::BTreeSet;
use std::path::PathBuf;

use semel_sdk::abi::{HOST_FUNCTIONS, IMPORT_MODULE};

/// Every example and its methods, as its module docs list them.
const CONTRACTS: &[(&str, &[&str])] = &[
    ("counter", &["init", "inc", "get"]),
    (
        "token",
        &[
            "init",
            "transfer",
            "approve",
            "transfer_from",
            "balance",
            "allowance",
            "supply",
        ],
    ),
    (
        "exchange",
        &[
            "init",
            "add_liquidity",
            "remove_liquidity",
            "swap",
            "quote",
            "pool",
            "shares",
        ],
    ),
    ("escrow", &["open", "release", "refund", "deal"]),
    ("hostile_loop", &["spin", "spin_host", "spin_storage"]),
    ("hostile_memory", &["grow", "huge", "pages"]),
    ("hostile_recursion", &["recurse", "recurse_shadow"]),
    (
        "hostile_reentrancy",
        &["self_call", "ping", "pong", "probe"],
    ),
    (
        "hostile_output",
        &["huge", "sized", "huge_revert", "out_of_bounds"],
    ),
    ("hostile_panic", &["boom", "unwrap_none", "trap", "divide"]),
];

#[derive(Debug, Default)]
struct Module {
    types: Vec<(Vec<u8>, Vec<u8>)>,
    /// (module, name, type index) of imported functions.
    func_imports: Vec<(String, String, u32)>,
    other_imports: Vec<(String, String)>,
    /// Type index of each defined function.
    funcs: Vec<u32>,
    /// Limits flags of each defined memory.
    memories: Vec<u8>,
    /// (name, kind, index).
    exports: Vec<(String, u8, u32)>,
    start: bool,
    data_count: bool,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes[self.pos];
        self.pos += 1;
        b
    }
    fn u32(&mut self) -> u32 {
        let (mut result, mut shift) = (0u32, 0);
        loop {
            let b = self.byte();
            result |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return result;
            }
            shift += 7;
            assert!(shift < 35, "LEB128 too long");
        }
    }
    fn len(&mut self) -> usize {
        usize::try_from(self.u32()).unwrap()
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn name(&mut self) -> String {
        let n = self.len();
        String::from_utf8(self.take(n).to_vec()).expect("UTF-8 name")
    }
    fn limits(&mut self) -> u8 {
        let flags = self.byte();
        self.u32();
        if flags & 1 != 0 {
            self.u32();
        }
        flags
    }
}

fn parse(bytes: &[u8]) -> Module {
    assert_eq!(
        &bytes[..8],
        b"\0asm\x01\0\0\0",
        "not a core wasm module, version 1"
    );
    let mut r = Reader { bytes, pos: 8 };
    let mut m = Module::default();
    while r.pos < bytes.len() {
        let id = r.byte();
        let size = r.len();
        let mut s = Reader {
            bytes: r.take(size),
            pos: 0,
        };
        match id {
            1 => {
                for _ in 0..s.u32() {
                    assert_eq!(s.byte(), 0x60, "function type");
                    let n = s.len();
                    let params = s.take(n).to_vec();
                    let n = s.len();
                    let results = s.take(n).to_vec();
                    m.types.push((params, results));
                }
            }
            2 => {
                for _ in 0..s.u32() {
                    let (module, name) = (s.name(), s.name());
                    match s.byte() {
                        0 => {
                            let t = s.u32();
                            m.func_imports.push((module, name, t));
                        }
                        1 => {
                            s.byte();
                            s.limits();
                            m.other_imports.push((module, name));
                        }
                        2 => {
                            s.limits();
                            m.other_imports.push((module, name));
                        }
                        3 => {
                            s.byte();
                            s.byte();
                            m.other_imports.push((module, name));
                        }
                        k => panic!("unknown import kind {k}"),
                    }
                }
            }
            3 => {
                for _ in 0..s.u32() {
                    let t = s.u32();
                    m.funcs.push(t);
                }
            }
            5 => {
                for _ in 0..s.u32() {
                    let flags = s.limits();
                    m.memories.push(flags);
                }
            }
            7 => {
                for _ in 0..s.u32() {
                    let name = s.name();
                    let kind = s.byte();
                    let index = s.u32();
                    m.exports.push((name, kind, index));
                }
            }
            8 => m.start = true,
            12 => m.data_count = true,
            _ => {}
        }
    }
    m
}

fn wasm_type(code: u8) -> &'static str {
    match code {
        0x7f => "i32",
        0x7e => "i64",
        0x7d => "f32",
        0x7c => "f64",
        _ => "other",
    }
}

fn wasm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wasm")
}

#[test]
fn every_committed_contract_keeps_the_abi() {
    for (name, methods) in CONTRACTS {
        let path = wasm_dir().join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run contracts/build.sh)", path.display()));
        let m = parse(&bytes);

        assert!(
            m.other_imports.is_empty(),
            "{name}: imports other than functions: {:?}",
            m.other_imports
        );
        for (module, field, t) in &m.func_imports {
            assert_eq!(module, IMPORT_MODULE, "{name}: import {module}.{field}");
            let host = HOST_FUNCTIONS
                .iter()
                .find(|h| h.name == field)
                .unwrap_or_else(|| panic!("{name}: imports unknown host function {field}"));
            let (params, results) = &m.types[usize::try_from(*t).unwrap()];
            let params: Vec<_> = params.iter().map(|&c| wasm_type(c)).collect();
            let results: Vec<_> = results.iter().map(|&c| wasm_type(c)).collect();
            assert_eq!(
                (params.as_slice(), results.as_slice()),
                (host.params, host.results),
                "{name}: type of {field}"
            );
        }
        assert!(!m.start, "{name}: has a start function");
        assert!(
            !m.data_count,
            "{name}: has a data count section (bulk memory)"
        );
        assert_eq!(m.memories.len(), 1, "{name}: memories");
        assert_eq!(m.memories[0] & 2, 0, "{name}: shared memory");
        assert!(
            m.exports.iter().any(|(n, k, _)| n == "memory" && *k == 2),
            "{name}: memory not exported"
        );

        let mut exported = BTreeSet::new();
        for (export, kind, index) in &m.exports {
            if *kind != 0 {
                continue;
            }
            let imported = u32::try_from(m.func_imports.len()).unwrap();
            assert!(
                *index >= imported,
                "{name}: re-exports an import as {export}"
            );
            let t = m.funcs[usize::try_from(index - imported).unwrap()];
            let (params, results) = &m.types[usize::try_from(t).unwrap()];
            assert!(
                params.is_empty() && results.is_empty(),
                "{name}: export {export} is not [] -> []"
            );
            exported.insert(export.as_str());
        }
        let expected: BTreeSet<&str> = methods.iter().copied().collect();
        assert_eq!(exported, expected, "{name}: exported methods");
    }
}

#[test]
fn every_committed_file_is_an_example_and_in_the_manifest() {
    let manifest =
        std::fs::read_to_string(wasm_dir().join("MANIFEST")).expect("contracts/wasm/MANIFEST");
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(wasm_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = file.strip_suffix(".wasm") {
            assert!(
                CONTRACTS.iter().any(|(n, _)| *n == stem),
                "{file} is not a known example"
            );
            assert!(
                manifest.lines().any(|l| l.ends_with(&format!("  {file}"))),
                "{file} missing from MANIFEST"
            );
            files.insert(stem.to_string());
        }
    }
    assert_eq!(files.len(), CONTRACTS.len(), "committed wasm files");
}
