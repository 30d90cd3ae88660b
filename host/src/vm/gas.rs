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

/// Each byte `memory.copy`, `memory.fill` or `memory.init` touches, charged by the
/// compiled code before the operation runs, so one instruction cannot move megabytes
/// for one unit of gas. A `u8` because that is how wasmtime takes it.
pub const BULK_MEMORY_BYTE_GAS: u8 = 1;
/// Each table element `table.copy`, `table.fill`, `table.init` or `table.grow` touches.
pub const TABLE_ELEMENT_GAS: u8 = 1;
/// Each page `memory.grow` asks for, beyond the instruction itself. Pages are bounded by
/// `MEMORY_PAGES_MAX` and fresh pages cost nothing until written (by charged code).
pub const MEMORY_GROW_PAGE_GAS: u8 = 0;

/// Wasmtime's per-instruction costs (its defaults: one unit per instruction, control
/// flow free) with the per-byte and per-element charges above.
pub(crate) fn operator_costs() -> wasmtime::OperatorCost {
    let mut cost = wasmtime::OperatorCost::new();
    let v = &mut cost.variable;
    v.memory_copy_per_byte = BULK_MEMORY_BYTE_GAS;
    v.memory_fill_per_byte = BULK_MEMORY_BYTE_GAS;
    v.memory_init_per_byte = BULK_MEMORY_BYTE_GAS;
    v.memory_grow_per_page = MEMORY_GROW_PAGE_GAS;
    v.table_copy_per_element = TABLE_ELEMENT_GAS;
    v.table_fill_per_element = TABLE_ELEMENT_GAS;
    v.table_init_per_element = TABLE_ELEMENT_GAS;
    v.table_grow_per_element = TABLE_ELEMENT_GAS;
    cost
}
