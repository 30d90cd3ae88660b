//! Gas prices: what each host function and each byte it touches costs.
//!
//! Gas is wasmtime fuel: one unit per wasm instruction executed, plus these host charges,
//! taken from the same counter before the host function does any work. Changing a price
//! changes gas figures in receipts, so it is a new ABI version.

/// Every host function call, before any per-byte charge.
pub const HOST_CALL_GAS: u64 = 40;
/// Each byte copied between guest memory and the host (arguments, outputs, results, names).
pub const COPY_BYTE_GAS: u64 = 1;
/// A storage read (`storage_get`, and each step of `storage_next`).
pub const STORAGE_READ_GAS: u64 = 1_000;
/// Each byte of key or value a storage read touches.
pub const STORAGE_READ_BYTE_GAS: u64 = 2;
/// A storage write or removal.
pub const STORAGE_WRITE_GAS: u64 = 5_000;
/// Each byte of key or value written.
pub const STORAGE_WRITE_BYTE_GAS: u64 = 20;
/// A cross-contract `call`, on top of the callee's own gas.
pub const CALL_GAS: u64 = 10_000;
/// An emitted event.
pub const EVENT_GAS: u64 = 500;
/// Each byte of event topic and data.
pub const EVENT_BYTE_GAS: u64 = 10;
/// Each byte hashed by `blake3`.
pub const HASH_BYTE_GAS: u64 = 2;
/// Each top-level call of a transaction, and a deploy, for the instance it sets up.
pub const FRAME_GAS: u64 = 2_000;
/// Each byte of code deployed.
pub const DEPLOY_BYTE_GAS: u64 = 10;
