//! The contract ABI, defined once: the import module name and every host function's
//! name and wasm signature.
//!
//! Deploy validation checks a module's imports against this table, the linker in
//! `imports/` is tested to define exactly these functions with exactly these types, and
//! a test holds `docs/ABI.md` to the same list. The behaviour of each function lives in
//! `imports/`.

/// The only wasm import module a contract may import from.
pub const IMPORT_MODULE: &str = "semel";
/// The export every contract must have: its linear memory.
pub const MEMORY_EXPORT: &str = "memory";
/// The method run once, inside the deploy transaction.
pub const INIT_METHOD: &str = "init";
/// The method a migrate runs, from the new code, inside the migrate transaction
/// (interface §7). Unlike `init` it stays an ordinary method too (interface §1 makes
/// every `[] -> []` export callable but `init`): code that must run once guards itself.
pub const MIGRATE_METHOD: &str = "migrate";

/// A wasm value type in a host function signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiType {
    /// `i32`: pointers, lengths and small results.
    I32,
    /// `i64`: lengths that may be `-1`, versions, gas.
    I64,
}

impl AbiType {
    /// The name used in wasm text and in `docs/ABI.md`.
    pub fn name(self) -> &'static str {
        match self {
            AbiType::I32 => "i32",
            AbiType::I64 => "i64",
        }
    }
}

/// One host function: its import name and signature.
#[derive(Debug, Clone, Copy)]
pub struct HostFunction {
    /// Import name within [`IMPORT_MODULE`].
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [AbiType],
    /// Result types (none or one).
    pub results: &'static [AbiType],
}

use AbiType::{I32, I64};

const fn f(
    name: &'static str,
    params: &'static [AbiType],
    results: &'static [AbiType],
) -> HostFunction {
    HostFunction {
        name,
        params,
        results,
    }
}

/// Every host function of ABI version 1, in the order of the interface's table.
pub const HOST_FUNCTIONS: &[HostFunction] = &[
    f("input_len", &[], &[I32]),
    f("input_read", &[I32], &[]),
    f("output", &[I32, I32], &[]),
    f("revert", &[I32, I32], &[]),
    f("storage_get", &[I32, I32, I32, I32], &[I64]),
    f("storage_set", &[I32, I32, I32, I32], &[]),
    f("storage_remove", &[I32, I32], &[]),
    f("storage_next", &[I32, I32, I32, I32, I32, I32], &[I64]),
    f("call", &[I32, I32, I32, I32, I32, I32], &[I32]),
    f("result_len", &[], &[I32]),
    f("result_read", &[I32], &[]),
    f("caller", &[I32, I32], &[I32]),
    f("sender", &[I32, I32], &[I32]),
    f("self_name", &[I32, I32], &[I32]),
    f("tx_id", &[I32], &[]),
    f("version", &[], &[I64]),
    f("emit", &[I32, I32, I32, I32], &[]),
    f("blake3", &[I32, I32, I32], &[]),
    f("gas_left", &[], &[I64]),
    f("log", &[I32, I32], &[]),
];

/// The host function with this import name, if there is one.
pub fn host_function(name: &str) -> Option<&'static HostFunction> {
    HOST_FUNCTIONS.iter().find(|h| h.name == name)
}

/// `(i32, i32) -> i64` style text, as `docs/ABI.md` writes signatures.
pub fn signature_text(h: &HostFunction) -> String {
    let list = |ts: &[AbiType]| ts.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(h.params), list(h.results))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = HOST_FUNCTIONS.iter().map(|h| h.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HOST_FUNCTIONS.len());
    }

    #[test]
    fn signature_text_reads_like_the_docs() {
        let h = host_function("storage_get").unwrap();
        assert_eq!(signature_text(h), "(i32, i32, i32, i32) -> (i64)");
        assert!(host_function("nope").is_none());
    }
}
