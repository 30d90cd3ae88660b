//! Bulk memory and table operations are charged per byte and per element
//! (`semel::gas::BULK_MEMORY_BYTE_GAS`, `TABLE_ELEMENT_GAS`), so one instruction cannot
//! do unbounded work for one unit of gas, and a bomb made of them ends out of gas.

use semel::gas_prices::{BULK_MEMORY_BYTE_GAS, TABLE_ELEMENT_GAS};
use semel::limits::{GAS_LIMIT_DEFAULT, MEMORY_PAGES_MAX, WASM_PAGE_BYTES};
use semel::{Host, Receipt, Status, Transaction};

/// Each method reads a u32 `n` from its input and runs one bulk operation of `n` bytes
/// or elements; `bomb` grows memory to the limit and fills all of it in one instruction.
const BULK: &str = r#"(module
  (import "semel" "input_read" (func $input_read (param i32)))
  (import "semel" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (table $t 64 funcref)
  (elem $e func $n $n $n $n $n $n $n $n $n $n $n $n $n $n $n $n
               $n $n $n $n $n $n $n $n $n $n $n $n $n $n $n $n)
  (data $d "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
  (func $n)
  (func $len (result i32) (call $input_read (i32.const 0)) (i32.load (i32.const 0)))
  (func (export "fill") (memory.fill (i32.const 1024) (i32.const 7) (call $len)))
  (func (export "copy") (memory.copy (i32.const 4096) (i32.const 1024) (call $len)))
  (func (export "data_init") (memory.init $d (i32.const 1024) (i32.const 0) (call $len)))
  (func (export "table_fill") (table.fill $t (i32.const 0) (ref.null func) (call $len)))
  (func (export "table_copy") (table.copy $t $t (i32.const 32) (i32.const 0) (call $len)))
  (func (export "table_init") (table.init $t $e (i32.const 0) (i32.const 0) (call $len)))
  (func (export "table_grow") (drop (table.grow $t (ref.null func) (call $len))))
  ;; Writes a key first so the test can see the write rolled back.
  (func (export "bomb")
    (call $set (i32.const 8) (i32.const 1) (i32.const 8) (i32.const 1))
    (drop (memory.grow (i32.const 254)))
    (memory.fill (i32.const 0) (i32.const 1) (i32.mul (memory.size) (i32.const 65536)))))"#;

fn bulk_host() -> Host {
    let host = Host::in_memory().unwrap();
    let r = host
        .submit(&Transaction::deploy(
            "bulk",
            BULK.as_bytes().to_vec(),
            Vec::new(),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    host
}

fn run(host: &Host, method: &str, n: u32) -> Receipt {
    let r = host
        .submit(&Transaction::call("bulk", method, n.to_le_bytes().to_vec()))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{method}({n}): {:?}", r.error);
    r
}

#[test]
fn bulk_operations_cost_per_byte_and_per_element() {
    let host = bulk_host();
    for (method, unit, small, large) in [
        ("fill", BULK_MEMORY_BYTE_GAS, 0, 60_000),
        ("copy", BULK_MEMORY_BYTE_GAS, 0, 60_000),
        ("data_init", BULK_MEMORY_BYTE_GAS, 0, 64),
        ("table_fill", TABLE_ELEMENT_GAS, 0, 64),
        ("table_copy", TABLE_ELEMENT_GAS, 0, 32),
        ("table_init", TABLE_ELEMENT_GAS, 0, 32),
        ("table_grow", TABLE_ELEMENT_GAS, 0, 1_000),
    ] {
        let base = run(&host, method, small).gas_used;
        let more = run(&host, method, large).gas_used;
        assert_eq!(
            more - base,
            u64::from(large - small) * u64::from(unit),
            "{method}: {base} gas for {small}, {more} for {large}"
        );
    }
}

#[test]
fn out_of_bounds_bulk_operations_trap_and_roll_back() {
    let host = bulk_host();
    for (method, n) in [
        ("fill", 3 * 65_536),
        ("copy", 3 * 65_536),
        ("data_init", 65),
        ("table_copy", 33),
    ] {
        let r = host
            .submit(&Transaction::call(
                "bulk",
                method,
                u32::to_le_bytes(n).to_vec(),
            ))
            .unwrap();
        assert_eq!(r.status, Status::Reverted, "{method}({n})");
        assert!(
            r.error.as_deref().unwrap_or("").contains("out of bounds"),
            "{method}({n}): {:?}",
            r.error
        );
    }
}

#[test]
fn a_bulk_memory_bomb_ends_out_of_gas_with_state_untouched() {
    let host = bulk_host();
    let root = host.state_root().unwrap();
    let r = host
        .submit(&Transaction::call("bulk", "bomb", Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(
        r.error.as_deref(),
        Some(format!("out of gas (gas limit {GAS_LIMIT_DEFAULT})").as_str())
    );
    // One fill of the whole memory costs more than the default limit: it runs out of gas
    // only because it is charged per byte.
    let memory_bytes = MEMORY_PAGES_MAX * WASM_PAGE_BYTES;
    assert!(memory_bytes * u64::from(BULK_MEMORY_BYTE_GAS) > GAS_LIMIT_DEFAULT);
    assert_eq!(r.gas_used, GAS_LIMIT_DEFAULT);
    assert!(host.state("bulk", None, b"").unwrap().is_empty());
    assert_eq!(host.state_root().unwrap(), root);
}

/// `dirty` fills the table with function references, grows it and writes memory;
/// `probe` outputs what a call starts with: table size, whether slot 0 is null, and a
/// byte of memory.
const FRESH: &str = r#"(module
  (import "semel" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (table $t 8 funcref)
  (elem declare func $n)
  (func $n)
  (func (export "dirty")
    (table.fill $t (i32.const 0) (ref.func $n) (i32.const 8))
    (drop (table.grow $t (ref.func $n) (i32.const 8)))
    (i32.store8 (i32.const 100) (i32.const 1)))
  (func (export "probe")
    (i32.store8 (i32.const 0) (table.size $t))
    (i32.store8 (i32.const 1) (ref.is_null (table.get $t (i32.const 0))))
    (i32.store8 (i32.const 2) (i32.load8_u (i32.const 100)))
    (call $output (i32.const 0) (i32.const 3))))"#;

#[test]
fn every_call_starts_with_a_fresh_table_and_memory() {
    // The pool reuses instance slots and resets tables and memories with memset
    // (`table_keep_resident`, `linear_memory_keep_resident`): nothing a call leaves
    // may reach the next one.
    let host = Host::in_memory().unwrap();
    let r = host
        .submit(&Transaction::deploy(
            "fresh",
            FRESH.as_bytes().to_vec(),
            Vec::new(),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    for round in 0..20 {
        let dirty = host
            .submit(&Transaction::call("fresh", "dirty", Vec::new()))
            .unwrap();
        assert_eq!(dirty.status, Status::Committed, "{:?}", dirty.error);
        let probe = host
            .submit(&Transaction::call("fresh", "probe", Vec::new()))
            .unwrap();
        assert_eq!(probe.status, Status::Committed, "{:?}", probe.error);
        assert_eq!(probe.results[0].output, vec![8, 1, 0], "round {round}");
    }
}
