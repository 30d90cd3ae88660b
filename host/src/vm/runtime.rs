//! The runtime: the engine, the linker with every host function, the module cache and
//! the turns to execute, shared by every run of a host. Built here, at the top of the
//! wasm layer, because the linker needs the host functions (`imports/`) and they need
//! what a run carries (`context.rs`); the module cache below is generic and needs
//! neither.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::{Engine, Linker};

use crate::error::{HostError, ModuleError};
use crate::limits::MODULE_CACHE_BYTES_DEFAULT;
use crate::types::CodeHash;
use crate::vm::artifact::Artifacts;
use crate::vm::context::TxCtx;
use crate::vm::engine::new_engine;
use crate::vm::imports;
use crate::vm::module_cache::{CacheStats, ModuleCache, ModuleSource};
use crate::vm::turns::Turns;

/// Engine, linker, module cache and turns, shared by every transaction of a host.
pub struct Runtime {
    modules: Arc<ModuleCache<TxCtx>>,
    turns: Arc<Turns>,
    cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime whose module cache keeps [`MODULE_CACHE_BYTES_DEFAULT`] in memory;
    /// `cache_dir` keeps compiled artifacts across processes.
    ///
    /// # Errors
    /// When wasmtime rejects the configuration or the linker (a build problem, not an
    /// input one), or the cache folder cannot be made.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, HostError> {
        Self::with_cache_bytes(cache_dir, MODULE_CACHE_BYTES_DEFAULT)
    }

    /// A runtime whose module cache keeps at most `bytes` of compiled code in memory.
    ///
    /// # Errors
    /// As [`Runtime::new`].
    pub fn with_cache_bytes(cache_dir: Option<PathBuf>, bytes: usize) -> Result<Self, HostError> {
        let (engine, compat) = new_engine()?;
        let mut linker = Linker::new(&engine);
        imports::define(&mut linker).map_err(|e| HostError::Engine(format!("linker: {e:#}")))?;
        let artifacts = match &cache_dir {
            Some(dir) => Some(Artifacts::open(dir.clone(), compat).map_err(|e| {
                HostError::DataDir(format!("cannot create {}: {e}", dir.display()))
            })?),
            None => None,
        };
        Ok(Self {
            modules: Arc::new(ModuleCache::new(engine, linker, bytes, artifacts)),
            turns: Arc::new(Turns::default()),
            cache_dir,
        })
    }

    /// Validates `code` against the ABI and makes it instantiable, from the caches when
    /// possible.
    ///
    /// # Errors
    /// [`ModuleError`] naming what is wrong with the module.
    pub fn prepare(&self, code: &[u8]) -> Result<(CodeHash, ModuleSource), ModuleError> {
        self.modules.prepare(code)
    }

    /// Disk loads and compiles so far, and what the in-memory cache holds.
    pub fn cache_stats(&self) -> CacheStats {
        self.modules.stats()
    }

    /// Drops every in-memory module, so the next use loads from disk or compiles.
    pub fn clear_memory_cache(&self) {
        self.modules.clear_memory();
    }

    pub(crate) fn modules(&self) -> &Arc<ModuleCache<TxCtx>> {
        &self.modules
    }

    pub(crate) fn turns(&self) -> &Arc<Turns> {
        &self.turns
    }

    pub(crate) fn engine(&self) -> &Engine {
        self.modules.engine()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wasmtime::{Store, ValType};

    use super::*;
    use crate::limits::{
        CONCURRENT_EXECUTIONS_MAX, INSTANCES_MAX, INSTANCES_PER_TURN, INSTANCES_PER_TX_MAX,
    };
    use crate::state::SnapshotView;
    use crate::storage::{Backend, MemoryBackend};
    use crate::vm::abi::{AbiType, HOST_FUNCTIONS, IMPORT_MODULE};
    use crate::vm::validate;

    fn store(runtime: &Runtime) -> Store<TxCtx> {
        let snap = MemoryBackend::new().snapshot().unwrap();
        let mut ctx = TxCtx::new(Arc::clone(runtime.modules()));
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

    fn module(body: &str) -> Vec<u8> {
        let wat = format!(r#"(module (memory (export "memory") 1) {body})"#);
        validate::wasm_bytes(wat.as_bytes()).unwrap()
    }

    #[test]
    fn concurrent_executions_fit_the_instance_pool() {
        let pool = usize::try_from(INSTANCES_MAX).unwrap();
        // Every run its ordinary share, and the large turn's holder the rest of its own
        // (plus one: a store may keep an instance made early that no frame took).
        let large = INSTANCES_PER_TX_MAX + 1 - INSTANCES_PER_TURN;
        assert!(CONCURRENT_EXECUTIONS_MAX * INSTANCES_PER_TURN + large <= pool);
        // An ordinary share holds the early instance and a call or two.
        const { assert!(INSTANCES_PER_TURN >= 3) };
    }

    #[test]
    fn linker_defines_exactly_the_abi_table() {
        let runtime = Runtime::new(None).unwrap();
        let mut store = store(&runtime);
        let externs: Vec<_> = runtime
            .modules()
            .linker()
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
        let code = module(r#"(func (export "m"))"#);
        let first = Runtime::new(Some(dir.path().to_owned())).unwrap();
        let (hash, source) = first.prepare(&code).unwrap();
        assert_eq!(source, ModuleSource::Compiled);
        assert_eq!(first.prepare(&code).unwrap().1, ModuleSource::Memory);
        let second = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(second.prepare(&code).unwrap(), (hash, ModuleSource::Disk));
        // Flip one byte of the artifact body: the checksum must catch it.
        let path = second.modules().artifact_path(&hash).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let third = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(third.prepare(&code).unwrap().1, ModuleSource::Compiled);
        // A foreign file under the right name is not loaded either.
        std::fs::write(&path, b"SEMELCW2 not an artifact").unwrap();
        let fourth = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(fourth.prepare(&code).unwrap().1, ModuleSource::Compiled);
    }

    #[test]
    fn artifacts_are_bound_to_their_code_and_to_this_caches_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            module(r#"(func (export "a"))"#),
            module(r#"(func (export "b"))"#),
        );
        let first = Runtime::new(Some(dir.path().to_owned())).unwrap();
        let (ha, _) = first.prepare(&a).unwrap();
        let (hb, _) = first.prepare(&b).unwrap();
        let (pa, pb) = (
            first.modules().artifact_path(&ha).unwrap(),
            first.modules().artifact_path(&hb).unwrap(),
        );
        // Two files swapped: each is refused, recompiled, and runs its own code.
        let (fa, fb) = (std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        std::fs::write(&pa, &fb).unwrap();
        std::fs::write(&pb, &fa).unwrap();
        let second = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(second.prepare(&a).unwrap(), (ha, ModuleSource::Compiled));
        let loaded = second.modules().cached(&ha).unwrap();
        assert!(loaded.exports.method("a").is_some() && loaded.exports.method("b").is_none());
        // Recompiled and overwritten: the next process loads it.
        let third = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(third.prepare(&a).unwrap().1, ModuleSource::Disk);
        // A genuine artifact of the same code from another cache (another key) is not
        // trusted either.
        let elsewhere = tempfile::tempdir().unwrap();
        let other = Runtime::new(Some(elsewhere.path().to_owned())).unwrap();
        other.prepare(&b).unwrap();
        std::fs::copy(other.modules().artifact_path(&hb).unwrap(), &pb).unwrap();
        let fourth = Runtime::new(Some(dir.path().to_owned())).unwrap();
        assert_eq!(fourth.prepare(&b).unwrap().1, ModuleSource::Compiled);
        // The key is the cache's own, readable by its owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("artifact.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn the_memory_cache_stays_within_its_bytes_and_evicts_the_least_recently_used() {
        let codes: Vec<_> = (0..4)
            .map(|i| module(&format!(r#"(func (export "m{i}") (drop (i32.const {i})))"#)))
            .collect();
        let probe = Runtime::new(None).unwrap();
        probe.prepare(&codes[0]).unwrap();
        let one = probe.cache_stats().bytes;
        assert!(one > 0, "a compiled module has a size");
        // Room for two modules (and their count), not three.
        let bound = 2 * one + one / 2;
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime::with_cache_bytes(Some(dir.path().to_owned()), bound).unwrap();
        let hashes: Vec<_> = codes.iter().map(|c| rt.prepare(c).unwrap().0).collect();
        let stats = rt.cache_stats();
        assert!(
            stats.bytes + stats.modules <= bound,
            "{stats:?} over {bound}"
        );
        assert_eq!(stats.modules, 2);
        assert_eq!(stats.compiles, 4);
        // The two most recent stay; the oldest went and comes back from its artifact.
        assert!(rt.modules().cached(&hashes[3]).is_some());
        assert!(rt.modules().cached(&hashes[0]).is_none());
        assert_eq!(rt.prepare(&codes[0]).unwrap().1, ModuleSource::Disk);
        // Now 3 is the least recently used: 1 coming back pushes it out, not 0.
        assert_eq!(rt.prepare(&codes[1]).unwrap().1, ModuleSource::Disk);
        assert!(rt.modules().cached(&hashes[0]).is_some());
        assert!(rt.modules().cached(&hashes[3]).is_none());
        // A bound smaller than one module keeps nothing, and still runs it.
        let tiny = Runtime::with_cache_bytes(None, 1).unwrap();
        assert_eq!(tiny.prepare(&codes[0]).unwrap().1, ModuleSource::Compiled);
        assert_eq!(tiny.cache_stats().modules, 0);
        assert_eq!(tiny.prepare(&codes[0]).unwrap().1, ModuleSource::Compiled);
    }
}
