//! The wasm engine: one deterministic wasmtime configuration for every host — fuel on,
//! NaNs canonical, features fixed, bulk memory priced per byte, instances from a pool —
//! and the compatibility string that names which compiled artifacts fit it.

use std::hash::{Hash, Hasher};

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::HostError;
use crate::limits::{
    INSTANCES_MAX, MEMORY_PAGES_MAX, TABLE_ELEMENTS_MAX, WASM_PAGE_BYTES, WASM_STACK_BYTES_MAX,
};
use crate::vm::gas;

/// Bumped whenever the host changes anything that compiled code depends on (the
/// linker's functions, engine settings): old disk artifacts then miss.
const HOST_CODE_CONFIG_VERSION: u32 = 2;

/// A wasmtime engine configured for contracts, and the compatibility string of the code
/// it compiles (wasmtime's own hash and [`HOST_CODE_CONFIG_VERSION`]).
///
/// # Errors
/// [`HostError::Engine`] when wasmtime rejects the configuration (a build problem, not
/// an input one).
pub(crate) fn new_engine() -> Result<(Engine, String), HostError> {
    let engine = Engine::new(&engine_config()).map_err(|e| HostError::Engine(format!("{e:#}")))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    HOST_CODE_CONFIG_VERSION.hash(&mut h);
    let compat = format!("{:016x}", h.finish());
    Ok((engine, compat))
}

fn engine_config() -> Config {
    let mut c = Config::new();
    // Threads stay off: this build of wasmtime has no `threads` feature at all.
    c.consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        // Bulk memory (and reference types, on by default, which need it) is what
        // current compilers emit (Rust's wasm32-unknown-unknown). It is safe because
        // `operator_costs` charges `memory.copy`/`fill`/`init` per byte and table
        // operations per element, so one instruction cannot do unbounded work.
        .wasm_bulk_memory(true)
        .operator_cost(gas::operator_costs())
        .wasm_backtrace_max_frames(None)
        .max_wasm_stack(WASM_STACK_BYTES_MAX)
        .memory_init_cow(false);
    let memory_bytes = MEMORY_PAGES_MAX * WASM_PAGE_BYTES;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(INSTANCES_MAX)
        .total_memories(INSTANCES_MAX)
        .total_tables(INSTANCES_MAX)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .table_elements(usize::try_from(TABLE_ELEMENTS_MAX).expect("small"))
        .max_memory_size(usize::try_from(memory_bytes).expect("16 MiB fits usize"))
        .linear_memory_keep_resident(256 * 1024)
        // Tables (at most 4,096 funcref slots of at most 16 bytes) are reset with a
        // memset, not a madvise per instance: a syscall costs more than 64 KiB of writes.
        .table_keep_resident(64 * 1024);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}
