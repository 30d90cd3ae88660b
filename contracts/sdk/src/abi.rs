//! The host functions of ABI version 1, declared once.
//!
//! One macro invocation below is the SDK's whole view of the ABI: it declares the raw
//! imports from wasm module `semel` (on `wasm32`), binds the same names to the mock host
//! in [`crate::testing`] (elsewhere, checking at compile time that the mock has exactly
//! these Rust signatures), and builds [`HOST_FUNCTIONS`], the table a test can hold
//! against the host's own table and `docs/ABI.md`.
//!
//! It owns no behaviour: the safe wrappers live in `env.rs` and `storage.rs`. Pointers
//! and `usize` lengths are 32 bits on `wasm32`, so `*const u8` and `usize` lower to the
//! `i32` the interface asks for.

/// One host function as wasm sees it: its import name and signature text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFunction {
    /// Import name within [`IMPORT_MODULE`].
    pub name: &'static str,
    /// Parameter types, in order (`"i32"` or `"i64"`).
    pub params: &'static [&'static str],
    /// Result types: none or one.
    pub results: &'static [&'static str],
}

/// The only wasm import module a contract imports from.
pub const IMPORT_MODULE: &str = "semel";

/// The wasm value type a Rust parameter or result lowers to on `wasm32`.
trait WasmType {
    const NAME: &'static str;
}
impl WasmType for i32 {
    const NAME: &'static str = "i32";
}
impl WasmType for i64 {
    const NAME: &'static str = "i64";
}
impl WasmType for usize {
    const NAME: &'static str = "i32";
}
impl WasmType for *const u8 {
    const NAME: &'static str = "i32";
}
impl WasmType for *mut u8 {
    const NAME: &'static str = "i32";
}

macro_rules! host_functions {
    ($( $(#[$doc:meta])* fn $name:ident ( $($p:ident : $t:ty),* ) $(-> $r:tt)? ; )*) => {
        /// The raw imports. Every function is `unsafe`: pointers must be valid for the
        /// lengths given, as the host traps the frame otherwise.
        #[cfg(target_arch = "wasm32")]
        pub mod raw {
            #[link(wasm_import_module = "semel")]
            unsafe extern "C" {
                $( $(#[$doc])* pub fn $name($($p: $t),*) $(-> $r)?; )*
            }
        }

        /// The raw functions, served by the thread's mock host.
        #[cfg(not(target_arch = "wasm32"))]
        pub mod raw {
            pub use crate::testing::raw::{$($name),*};
            // The mock must keep exactly the signatures the imports have.
            $( const _: unsafe fn($($t),*) $(-> $r)? = crate::testing::raw::$name; )*
        }

        /// Every host function of ABI version 1, in the interface's order.
        pub const HOST_FUNCTIONS: &[HostFunction] = &[
            $( HostFunction {
                name: stringify!($name),
                params: &[$(<$t as WasmType>::NAME),*],
                results: host_functions!(@results $($r)?),
            }, )*
        ];
    };
    (@results) => { &[] };
    (@results !) => { &[] };
    (@results $r:tt) => { &[<$r as WasmType>::NAME] };
}

host_functions! {
    /// Byte length of this call's argument.
    fn input_len() -> i32;
    /// Copies the argument to `dst`.
    fn input_read(dst: *mut u8);
    /// Sets this call's return data, replacing an earlier one.
    fn output(ptr: *const u8, len: usize);
    /// Ends this frame with a UTF-8 message, discarding its writes and events.
    fn revert(ptr: *const u8, len: usize) -> !;
    /// `-1` if the key is absent, else the value's full length; copies `min(len, cap)`.
    fn storage_get(kptr: *const u8, klen: usize, dst: *mut u8, cap: usize) -> i64;
    /// Writes a value.
    fn storage_set(kptr: *const u8, klen: usize, vptr: *const u8, vlen: usize);
    /// Deletes a key; no error if absent.
    fn storage_remove(kptr: *const u8, klen: usize);
    /// The smallest key with prefix `p` greater than `a` (`alen < 0`: no lower bound).
    fn storage_next(
        pptr: *const u8,
        plen: usize,
        aptr: *const u8,
        alen: i32,
        dst: *mut u8,
        cap: usize
    ) -> i64;
    /// Calls method `m` of contract `c` with argument `a`: `0` success, `1` failure.
    fn call(
        cptr: *const u8,
        clen: usize,
        mptr: *const u8,
        mlen: usize,
        aptr: *const u8,
        alen: usize
    ) -> i32;
    /// Length of the last `call`'s result (output or error message).
    fn result_len() -> i32;
    /// Copies the last `call`'s result to `dst`.
    fn result_read(dst: *mut u8);
    /// The immediate caller; returns the full length, copies `min(len, cap)`.
    fn caller(dst: *mut u8, cap: usize) -> i32;
    /// The transaction's sender, same convention.
    fn sender(dst: *mut u8, cap: usize) -> i32;
    /// This contract's name, same convention.
    fn self_name(dst: *mut u8, cap: usize) -> i32;
    /// The transaction id, 16 bytes.
    fn tx_id(dst: *mut u8);
    /// The state version this transaction reads from.
    fn version() -> i64;
    /// An event with a topic and data.
    fn emit(tptr: *const u8, tlen: usize, dptr: *const u8, dlen: usize);
    /// The 32-byte BLAKE3 hash of the bytes.
    fn blake3(ptr: *const u8, len: usize, dst: *mut u8);
    /// Gas left to the transaction.
    fn gas_left() -> i64;
    /// Debug text, never part of state or receipt.
    fn log(ptr: *const u8, len: usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interface's table (INTERFACE.md §2), written out by hand once more so that a
    /// slip in the macro input shows up here.
    const EXPECTED: &[(&str, &str)] = &[
        ("input_len", "() -> (i32)"),
        ("input_read", "(i32) -> ()"),
        ("output", "(i32, i32) -> ()"),
        ("revert", "(i32, i32) -> ()"),
        ("storage_get", "(i32, i32, i32, i32) -> (i64)"),
        ("storage_set", "(i32, i32, i32, i32) -> ()"),
        ("storage_remove", "(i32, i32) -> ()"),
        ("storage_next", "(i32, i32, i32, i32, i32, i32) -> (i64)"),
        ("call", "(i32, i32, i32, i32, i32, i32) -> (i32)"),
        ("result_len", "() -> (i32)"),
        ("result_read", "(i32) -> ()"),
        ("caller", "(i32, i32) -> (i32)"),
        ("sender", "(i32, i32) -> (i32)"),
        ("self_name", "(i32, i32) -> (i32)"),
        ("tx_id", "(i32) -> ()"),
        ("version", "() -> (i64)"),
        ("emit", "(i32, i32, i32, i32) -> ()"),
        ("blake3", "(i32, i32, i32) -> ()"),
        ("gas_left", "() -> (i64)"),
        ("log", "(i32, i32) -> ()"),
    ];

    #[test]
    fn table_matches_the_interface() {
        let got: std::vec::Vec<(&str, std::string::String)> = HOST_FUNCTIONS
            .iter()
            .map(|h| {
                let sig = std::format!("({}) -> ({})", h.params.join(", "), h.results.join(", "));
                (h.name, sig)
            })
            .collect();
        let want: std::vec::Vec<(&str, std::string::String)> = EXPECTED
            .iter()
            .map(|(n, s)| (*n, std::string::String::from(*s)))
            .collect();
        assert_eq!(got, want);
    }
}
