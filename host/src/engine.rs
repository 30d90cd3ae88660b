//! The wasm engine: one deterministic wasmtime `Engine` and `Linker` per host, and the
//! compiled-module cache in front of it — `InstancePre` in memory by code hash, with the
//! module's memory and method exports resolved once, and compiled artifacts on disk
//! keyed by code hash and engine compatibility.
//!
//! A cache hit and a miss run the same machine code, so they give the same gas and
//! results. A disk artifact is checksummed before `Module::deserialize` sees it; a
//! corrupt or foreign one is recompiled and overwritten, never loaded.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module,
    ModuleExport, PoolingAllocationConfig,
};

use crate::abi::MEMORY_EXPORT;
use crate::context::TxCtx;
use crate::error::ModuleError;
use crate::limits::{
    CONCURRENT_EXECUTIONS_MAX, INSTANCES_MAX, MEMORY_PAGES_MAX, TABLE_ELEMENTS_MAX,
    WASM_PAGE_BYTES, WASM_STACK_BYTES_MAX,
};
use crate::storage::StorageError;
use crate::{gas, hex, imports, validate};

/// The BLAKE3 hash of a contract's wasm bytes: how code is stored and cached.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeHash(pub [u8; 32]);

impl CodeHash {
    /// The hash of `code`.
    pub fn of(code: &[u8]) -> Self {
        Self(*blake3::hash(code).as_bytes())
    }
}

impl std::fmt::Display for CodeHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl std::fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeHash({self})")
    }
}

/// Bumped whenever the host changes anything that compiled code depends on (the
/// linker's functions, engine settings): old disk artifacts then miss.
const HOST_CODE_CONFIG_VERSION: u32 = 2;
/// First bytes of a disk artifact, then its BLAKE3 checksum, then wasmtime's bytes.
const ARTIFACT_MAGIC: &[u8; 8] = b"SEMELCW1";

/// Engine, linker and module caches, shared by every transaction of a host.
pub struct Runtime {
    engine: Engine,
    linker: Linker<TxCtx>,
    modules: RwLock<HashMap<CodeHash, Loaded>>,
    cache_dir: Option<PathBuf>,
    compat: String,
    disk_loads: AtomicU64,
    compiles: AtomicU64,
    /// Executions running now (at most [`CONCURRENT_EXECUTIONS_MAX`]) and threads
    /// waiting for a turn.
    running: Mutex<Turns>,
    finished: Condvar,
}

/// A module ready to instantiate, with its exports resolved once: a frame then finds its
/// method and memory in the instance by index, not by name.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub pre: InstancePre<TxCtx>,
    pub exports: Arc<Exports>,
}

/// Where a module's memory and methods are. A method is an exported function without
/// parameters or results: the only kind a call runs.
pub(crate) struct Exports {
    memory: Option<ModuleExport>,
    methods: HashMap<Box<str>, ModuleExport>,
}

impl Exports {
    fn of(module: &Module) -> Self {
        let mut memory = None;
        let mut methods = HashMap::new();
        for export in module.exports() {
            let (name, index) = (export.name(), module.get_export_index(export.name()));
            match export.ty() {
                ExternType::Memory(_) if name == MEMORY_EXPORT => memory = index,
                ExternType::Func(f) if f.params().len() == 0 && f.results().len() == 0 => {
                    if let Some(index) = index {
                        methods.insert(name.into(), index);
                    }
                }
                _ => {}
            }
        }
        Self { memory, methods }
    }

    /// The exported memory.
    pub fn memory(&self) -> Option<&ModuleExport> {
        self.memory.as_ref()
    }

    /// The method `name`, if the module exports one.
    pub fn method(&self, name: &str) -> Option<&ModuleExport> {
        self.methods.get(name)
    }
}

/// A turn to execute; the next waiting execution goes when it is dropped.
pub(crate) struct ExecutionPermit(Arc<Runtime>);

/// Executions running and threads waiting for one to finish.
#[derive(Debug, Default)]
struct Turns {
    running: usize,
    waiting: usize,
}

impl Drop for ExecutionPermit {
    fn drop(&mut self) {
        let rt = &self.0;
        let mut turns = rt.running.lock().unwrap_or_else(|e| e.into_inner());
        turns.running -= 1;
        // Only when someone waits: a notify is a futex syscall even with no waiter.
        if turns.waiting > 0 {
            rt.finished.notify_one();
        }
    }
}

/// How often modules were loaded from disk or compiled, since the runtime started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Modules deserialized from a checked disk artifact.
    pub disk_loads: u64,
    /// Modules compiled from wasm.
    pub compiles: u64,
}

/// Where a module came from: counted so tests and benches can tell hits from misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleSource {
    /// Already instantiable in memory.
    Memory,
    /// Deserialized from a checked disk artifact.
    Disk,
    /// Compiled from wasm.
    Compiled,
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

impl Runtime {
    /// A runtime; `cache_dir` keeps compiled artifacts across processes.
    ///
    /// # Errors
    /// When wasmtime rejects the configuration (a build problem, not an input one).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, StorageError> {
        let engine = Engine::new(&engine_config())
            .map_err(|e| StorageError::Backend(format!("wasm engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        imports::define(&mut linker).map_err(|e| StorageError::Backend(format!("linker: {e}")))?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        HOST_CODE_CONFIG_VERSION.hash(&mut h);
        let compat = format!("{:016x}", h.finish());
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Io(e.to_string()))?;
        }
        Ok(Self {
            engine,
            linker,
            modules: RwLock::new(HashMap::new()),
            cache_dir,
            compat,
            disk_loads: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            running: Mutex::new(Turns::default()),
            finished: Condvar::new(),
        })
    }

    /// Waits for a turn to execute, so that concurrent executions never exhaust the
    /// instance pool.
    pub(crate) fn execution_permit(self: &Arc<Self>) -> ExecutionPermit {
        let mut turns = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while turns.running >= CONCURRENT_EXECUTIONS_MAX {
            turns.waiting += 1;
            turns = self.finished.wait(turns).unwrap_or_else(|e| e.into_inner());
            turns.waiting -= 1;
        }
        turns.running += 1;
        ExecutionPermit(Arc::clone(self))
    }

    /// A turn for a transaction that is about to wait for the writer lock, if one is
    /// free now, nobody waits for one, and another stays free. Those who hold such a
    /// turn wait for the writer lock, so they never take the last free turn nor one a
    /// waiter (perhaps the lock's holder) was woken for: the holder of the writer lock
    /// never waits for them.
    pub(crate) fn try_early_permit(self: &Arc<Self>) -> Option<ExecutionPermit> {
        let mut turns = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if turns.waiting > 0 || turns.running + 1 >= CONCURRENT_EXECUTIONS_MAX {
            return None;
        }
        turns.running += 1;
        Some(ExecutionPermit(Arc::clone(self)))
    }

    /// Disk loads and compiles so far.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            disk_loads: self.disk_loads.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
        }
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Validates `code` against the ABI and makes it instantiable, from the caches when
    /// possible.
    ///
    /// # Errors
    /// [`ModuleError`] naming what is wrong with the module.
    pub fn prepare(&self, code: &[u8]) -> Result<(CodeHash, ModuleSource), ModuleError> {
        let hash = CodeHash::of(code);
        if self.cached(&hash).is_some() {
            return Ok((hash, ModuleSource::Memory));
        }
        validate::check_module(code)?;
        let (module, source) = self.load_or_compile(&hash, code)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| ModuleError::Link(e.to_string()))?;
        let exports = Arc::new(Exports::of(&module));
        self.insert(hash, Loaded { pre, exports });
        Ok((hash, source))
    }

    /// The instantiable module for stored code, compiling it on a miss.
    ///
    /// # Errors
    /// When the code cannot be loaded, or stored code no longer compiles (corruption).
    pub(crate) fn loaded(
        &self,
        hash: &CodeHash,
        load: &dyn Fn() -> Result<Option<Vec<u8>>, StorageError>,
    ) -> Result<Loaded, StorageError> {
        if let Some(pre) = self.cached(hash) {
            return Ok(pre);
        }
        let code = load()?.ok_or_else(|| {
            StorageError::Corrupt(format!("code {hash} is registered but not stored"))
        })?;
        if CodeHash::of(&code) != *hash {
            return Err(StorageError::Corrupt(format!(
                "stored code {hash} does not match its hash"
            )));
        }
        self.prepare(&code).map_err(|e| {
            StorageError::Corrupt(format!("stored code {hash} no longer loads: {e}"))
        })?;
        self.cached(hash)
            .ok_or_else(|| StorageError::Backend("module cache lost an entry".into()))
    }

    /// The instantiable module of `hash`, if it is in memory.
    pub(crate) fn cached(&self, hash: &CodeHash) -> Option<Loaded> {
        self.modules.read().ok()?.get(hash).cloned()
    }

    fn insert(&self, hash: CodeHash, loaded: Loaded) {
        if let Ok(mut m) = self.modules.write() {
            m.insert(hash, loaded);
        }
    }

    /// Drops every in-memory module, so the next use loads from disk or compiles.
    pub fn clear_memory_cache(&self) {
        if let Ok(mut m) = self.modules.write() {
            m.clear();
        }
    }

    fn artifact_path(&self, hash: &CodeHash) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!("{hash}-{}.cwasm", self.compat)))
    }

    fn load_or_compile(
        &self,
        hash: &CodeHash,
        code: &[u8],
    ) -> Result<(Module, ModuleSource), ModuleError> {
        let path = self.artifact_path(hash);
        if let Some(module) = path.as_ref().and_then(|p| self.load_artifact(p)) {
            self.disk_loads.fetch_add(1, Ordering::Relaxed);
            return Ok((module, ModuleSource::Disk));
        }
        let module =
            Module::new(&self.engine, code).map_err(|e| ModuleError::Compile(format!("{e:#}")))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = path {
            // A cache that cannot be written only costs a later recompile.
            let _ = self.store_artifact(&path, &module);
        }
        Ok((module, ModuleSource::Compiled))
    }

    fn load_artifact(&self, path: &std::path::Path) -> Option<Module> {
        let bytes = std::fs::read(path).ok()?;
        let rest = bytes.strip_prefix(ARTIFACT_MAGIC.as_slice())?;
        let (sum, body) = rest.split_at_checked(32)?;
        if blake3::hash(body).as_bytes() != sum {
            return None;
        }
        // SAFETY: `body` is exactly what `Module::serialize` wrote for an engine with
        // this compatibility hash (it is in the file name) and it passed its checksum,
        // so it is not a truncated, corrupt or foreign file.
        unsafe { Module::deserialize(&self.engine, body) }.ok()
    }

    fn store_artifact(&self, path: &std::path::Path, module: &Module) -> std::io::Result<()> {
        let body = module.serialize().map_err(std::io::Error::other)?;
        let mut file = Vec::with_capacity(body.len() + 40);
        file.extend_from_slice(ARTIFACT_MAGIC);
        file.extend_from_slice(blake3::hash(&body).as_bytes());
        file.extend_from_slice(&body);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &file)?;
        std::fs::rename(&tmp, path)
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .field("compat", &self.compat)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wasmtime::{Store, ValType};

    use super::*;
    use crate::abi::{AbiType, HOST_FUNCTIONS, IMPORT_MODULE};
    use crate::state::SnapshotView;
    use crate::storage::{Backend, MemoryBackend};

    fn store(runtime: &Arc<Runtime>) -> Store<TxCtx> {
        let snap = MemoryBackend::new().snapshot().unwrap();
        let mut ctx = TxCtx::new(Arc::clone(runtime));
        ctx.code = Arc::clone(&snap);
        ctx.base = Arc::new(SnapshotView::new(snap, 0));
        ctx.sender = Arc::from("s");
        Store::new(runtime.engine(), ctx)
    }

    fn abi(v: &ValType) -> AbiType {
        match v {
            ValType::I32 => AbiType::I32,
            ValType::I64 => AbiType::I64,
            other => panic!("host function uses {other}"),
        }
    }

    #[test]
    fn exports_hold_the_memory_and_only_callable_methods() {
        let runtime = Runtime::new(None).unwrap();
        let wat = br#"(module
            (memory (export "memory") 1)
            (global (export "g") i32 (i32.const 0))
            (func (export "run"))
            (func (export "also_run"))
            (func (export "add") (param i32))
            (func (export "get") (result i64) (i64.const 0)))"#;
        let code = validate::wasm_bytes(wat).unwrap();
        let module = Module::new(runtime.engine(), &code).unwrap();
        let exports = Exports::of(&module);
        assert!(exports.memory().is_some());
        let mut methods: Vec<_> = exports.methods.keys().map(|k| &**k).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["also_run", "run"]);
        assert!(exports.method("add").is_none() && exports.method("g").is_none());
        let bare =
            Module::new(runtime.engine(), validate::wasm_bytes(b"(module)").unwrap()).unwrap();
        assert!(Exports::of(&bare).memory().is_none());
    }

    #[test]
    fn concurrent_executions_fit_the_instance_pool() {
        use crate::limits::INSTANCES_PER_TX_MAX;
        let pool = usize::try_from(INSTANCES_MAX).unwrap();
        // Plus one each: a store may keep an instance made early that no frame took.
        assert!(CONCURRENT_EXECUTIONS_MAX * (INSTANCES_PER_TX_MAX + 1) <= pool);
        assert!(
            (CONCURRENT_EXECUTIONS_MAX + 1) * (INSTANCES_PER_TX_MAX + 1) > pool,
            "room for more"
        );
    }

    #[test]
    fn early_turns_leave_a_turn_free_and_never_overtake_a_waiter() {
        let runtime = Arc::new(Runtime::new(None).unwrap());
        // A thread waiting for a turn (perhaps the writer lock's holder) goes first.
        runtime.running.lock().unwrap().waiting = 1;
        assert!(runtime.try_early_permit().is_none());
        runtime.running.lock().unwrap().waiting = 0;
        let early: Vec<_> = std::iter::from_fn(|| runtime.try_early_permit()).collect();
        assert_eq!(early.len(), CONCURRENT_EXECUTIONS_MAX - 1);
        // The last turn stays for the writer lock's holder, who does not take it early.
        drop(runtime.execution_permit());
        drop(early);
        assert!(runtime.try_early_permit().is_some());
    }

    #[test]
    fn linker_defines_exactly_the_abi_table() {
        let runtime = Arc::new(Runtime::new(None).unwrap());
        let mut store = store(&runtime);
        let externs: Vec<_> = runtime
            .linker
            .iter(&mut store)
            .map(|(module, name, ext)| (module.to_owned(), name.to_owned(), ext))
            .collect();
        let mut defined: Vec<(String, Vec<AbiType>, Vec<AbiType>)> = externs
            .into_iter()
            .map(|(module, name, ext)| {
                assert_eq!(module, IMPORT_MODULE);
                let f = ext.ty(&store).unwrap_func().clone();
                (
                    name,
                    f.params().map(|p| abi(&p)).collect(),
                    f.results().map(|r| abi(&r)).collect(),
                )
            })
            .collect();
        defined.sort_by(|a, b| a.0.cmp(&b.0));
        let mut table: Vec<_> = HOST_FUNCTIONS
            .iter()
            .map(|h| (h.name.to_owned(), h.params.to_vec(), h.results.to_vec()))
            .collect();
        table.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(defined, table);
    }

    #[test]
    fn disk_cache_hits_and_corrupt_artifacts_are_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let wat = r#"(module (memory (export "memory") 1) (func (export "m")))"#;
        let code = crate::validate::wasm_bytes(wat.as_bytes()).unwrap();
        let first = Runtime::new(Some(dir.path().to_owned())).unwrap();
        let (hash, source) = first.prepare(&code).unwrap();
        assert_eq!(source, ModuleSource::Compiled);
        assert_eq!(first.prepare(&code).unwrap().1, ModuleSource::Memory);
        let second = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(second.prepare(&code).unwrap(), (hash, ModuleSource::Disk));
        // Flip one byte of the artifact body: the checksum must catch it.
        let path = second.artifact_path(&hash).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let third = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(third.prepare(&code).unwrap().1, ModuleSource::Compiled);
        // A foreign file under the right name is not loaded either.
        std::fs::write(&path, b"SEMELCW1 not an artifact").unwrap();
        let fourth = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(fourth.prepare(&code).unwrap().1, ModuleSource::Compiled);
    }
}
