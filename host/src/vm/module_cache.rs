//! The compiled-module cache: modules ready to instantiate (`InstancePre`, exports
//! resolved) by code hash, in memory up to a bound in bytes of compiled code, with the
//! least recently used evicted first (as cosmwasm-vm's size-weighted LRU does, on the
//! same crate, `clru`); behind it the disk artifacts, behind those the compiler.
//!
//! A cache hit and a miss run the same machine code, so they give the same gas and
//! results. Generic over the store's data `T`, so that it knows nothing of what a run
//! carries: the linker is given to it.

use std::collections::hash_map::RandomState;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clru::{CLruCache, CLruCacheConfig, WeightScale};
use wasmtime::{Engine, InstancePre, Linker, Module};

use crate::error::{HostError, ModuleError};
use crate::storage::StorageError;
use crate::types::CodeHash;
use crate::vm::artifact::Artifacts;
use crate::vm::exports::Exports;
use crate::vm::validate;

/// A module ready to instantiate, with its exports resolved once.
pub(crate) struct Loaded<T: 'static> {
    pub pre: InstancePre<T>,
    pub exports: Arc<Exports>,
    /// The size of its compiled image: its weight in the cache.
    pub bytes: usize,
}

impl<T> Clone for Loaded<T> {
    fn clone(&self) -> Self {
        Self {
            pre: self.pre.clone(),
            exports: Arc::clone(&self.exports),
            bytes: self.bytes,
        }
    }
}

/// How often modules were loaded from disk or compiled, since the cache started, and
/// what it holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Modules deserialized from a checked disk artifact.
    pub disk_loads: u64,
    /// Modules compiled from wasm.
    pub compiles: u64,
    /// Modules in memory now.
    pub modules: usize,
    /// Bytes of compiled code in memory now (at most the cache's bound).
    pub bytes: usize,
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

/// Weighs a cached module by the bytes of its compiled image.
struct ByBytes;

impl<T> WeightScale<CodeHash, Loaded<T>> for ByBytes {
    fn weight(&self, _: &CodeHash, value: &Loaded<T>) -> usize {
        value.bytes
    }
}

type Lru<T> = CLruCache<CodeHash, Loaded<T>, RandomState, ByBytes>;

/// Compiled modules by code hash: see the module docs.
pub(crate) struct ModuleCache<T: 'static> {
    engine: Engine,
    linker: Linker<T>,
    memory: Mutex<Lru<T>>,
    artifacts: Option<Artifacts>,
    disk_loads: AtomicU64,
    compiles: AtomicU64,
}

impl<T: 'static> ModuleCache<T> {
    /// A cache of at most `bytes` of compiled code, linking modules with `linker`;
    /// `artifacts` keeps them across processes.
    pub fn new(
        engine: Engine,
        linker: Linker<T>,
        bytes: usize,
        artifacts: Option<Artifacts>,
    ) -> Self {
        let capacity = NonZeroUsize::new(bytes).unwrap_or(NonZeroUsize::MIN);
        Self {
            engine,
            linker,
            memory: Mutex::new(CLruCache::with_config(
                CLruCacheConfig::new(capacity).with_scale(ByBytes),
            )),
            artifacts,
            disk_loads: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
        }
    }

    /// The engine modules are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker modules are linked with.
    #[cfg(test)]
    pub fn linker(&self) -> &Linker<T> {
        &self.linker
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
        let (_, source) = self.load(hash, code)?;
        Ok((hash, source))
    }

    /// Validates, loads or compiles, links and caches `code` (of hash `hash`).
    fn load(&self, hash: CodeHash, code: &[u8]) -> Result<(Loaded<T>, ModuleSource), ModuleError> {
        validate::check_module(code)?;
        let (module, source) = self.load_or_compile(&hash, code)?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| ModuleError::Link(e.to_string()))?;
        let image = module.image_range();
        let loaded = Loaded {
            pre,
            exports: Arc::new(Exports::of(&module)),
            bytes: image.end.addr().saturating_sub(image.start.addr()),
        };
        if let Ok(mut memory) = self.memory.lock() {
            // A module larger than the whole bound is used, not kept.
            let _ = memory.put_with_weight(hash, loaded.clone());
        }
        Ok((loaded, source))
    }

    /// The instantiable module for stored code, loading it on a miss.
    ///
    /// # Errors
    /// When the code cannot be read, or stored code does not match its hash or no
    /// longer compiles (corruption).
    pub fn loaded(
        &self,
        hash: &CodeHash,
        load: &dyn Fn() -> Result<Option<Vec<u8>>, StorageError>,
    ) -> Result<Loaded<T>, HostError> {
        if let Some(loaded) = self.cached(hash) {
            return Ok(loaded);
        }
        let code = load()?.ok_or_else(|| {
            HostError::Corrupt(format!("code {hash} is registered but not stored"))
        })?;
        if CodeHash::of(&code) != *hash {
            return Err(HostError::Corrupt(format!(
                "stored code {hash} does not match its hash"
            )));
        }
        let (loaded, _) = self
            .load(*hash, &code)
            .map_err(|e| HostError::Corrupt(format!("stored code {hash} no longer loads: {e}")))?;
        Ok(loaded)
    }

    /// The instantiable module of `hash`, if it is in memory (and now the most recently
    /// used).
    pub fn cached(&self, hash: &CodeHash) -> Option<Loaded<T>> {
        self.memory.lock().ok()?.get(hash).cloned()
    }

    /// Drops every in-memory module, so the next use loads from disk or compiles.
    pub fn clear_memory(&self) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.clear();
        }
    }

    /// Disk loads and compiles so far, and what memory holds.
    pub fn stats(&self) -> CacheStats {
        let (modules, bytes) = self.memory.lock().map_or((0, 0), |m| (m.len(), m.weight()));
        CacheStats {
            disk_loads: self.disk_loads.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            modules,
            bytes,
        }
    }

    /// Where the artifact of `hash` lives, when artifacts are kept.
    #[cfg(test)]
    pub fn artifact_path(&self, hash: &CodeHash) -> Option<std::path::PathBuf> {
        self.artifacts.as_ref().map(|a| a.path(hash))
    }

    fn load_or_compile(
        &self,
        hash: &CodeHash,
        code: &[u8],
    ) -> Result<(Module, ModuleSource), ModuleError> {
        if let Some(module) = self
            .artifacts
            .as_ref()
            .and_then(|a| a.load(&self.engine, hash))
        {
            self.disk_loads.fetch_add(1, Ordering::Relaxed);
            return Ok((module, ModuleSource::Disk));
        }
        let module =
            Module::new(&self.engine, code).map_err(|e| ModuleError::Compile(format!("{e:#}")))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if let Some(artifacts) = &self.artifacts {
            // A cache that cannot be written only costs a later recompile.
            let _ = artifacts.store(hash, &module);
        }
        Ok((module, ModuleSource::Compiled))
    }
}
