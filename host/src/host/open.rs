//! Opening a host: a data dir and its lock, the durable backend (the write-ahead log in
//! front of redb) or any other, the runtime, and the head read from the store.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::store::StoreUrl;
use super::writer_lock::WriterLock;
use super::{Host, HostOptions, StoreKind};
use crate::error::HostError;
use crate::ledger::head::{Head, Published};
use crate::storage::group_commit::{Committer, Reopen};
use crate::storage::{Backend, MemoryBackend, PostgresBackend, StorageError, WAL_FILE, WalBackend};
use crate::types::HostId;
use crate::vm::Runtime;
use crate::vm::prewarm::hints::CodeHints;
use crate::vm::prewarm::recycler::Recycler;

/// File name of the database inside a data dir.
pub const DB_FILE: &str = "semel.redb";
/// File whose lock marks a data dir as in use by one process.
pub const LOCK_FILE: &str = "LOCK";
/// Folder of compiled-module artifacts inside a data dir.
pub const CACHE_DIR: &str = "cache";

/// How often a process waiting for a data dir's lock tries again, in milliseconds.
const LOCK_RETRY_MS: u64 = 5;

fn lock_data_dir(
    dir: &Path,
    wait: Duration,
    on_wait: Option<fn(&Path, Duration)>,
) -> Result<File, HostError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| HostError::DataDir(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HostError::DataDir(format!("cannot open {}: {e}", path.display())))?;
    let start = Instant::now();
    let mut notify = on_wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                if let Some(f) = notify.take() {
                    f(dir, wait);
                }
                std::thread::sleep(Duration::from_millis(LOCK_RETRY_MS));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(HostError::Locked(format!(
                    "{} (still held after {} ms)",
                    dir.display(),
                    wait.as_millis()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(HostError::DataDir(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

/// Whether `dir` (held under its lock) has a store: `Ok(false)` only when it never had
/// one. A database that is missing or empty beside the files a store leaves — its
/// write-ahead log, compiled artifacts — is refused: starting a new store there would
/// silently run every recorded id again.
fn has_store(dir: &Path) -> Result<bool, HostError> {
    let db = dir.join(DB_FILE);
    let db_len = match std::fs::metadata(&db) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(HostError::DataDir(format!(
                "cannot read {}: {e}",
                db.display()
            )));
        }
    };
    if db_len.is_some_and(|n| n > 0) {
        return Ok(true);
    }
    let wal = dir.join(WAL_FILE).exists();
    let artifacts = std::fs::read_dir(dir.join(CACHE_DIR))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        })
        .unwrap_or(false);
    if wal || artifacts {
        let what = match db_len {
            Some(_) => "is empty",
            None => "is missing",
        };
        let beside = match (wal, artifacts) {
            (true, true) => format!("{WAL_FILE} and compiled artifacts in {CACHE_DIR}/"),
            (true, false) => WAL_FILE.to_owned(),
            _ => format!("compiled artifacts in {CACHE_DIR}/"),
        };
        return Err(HostError::DataDir(format!(
            "{} {what}, but {beside} show that {} held a store: refusing to start a new              one there (every recorded transaction would run again); restore {DB_FILE},              or remove the data dir to start afresh",
            db.display(),
            dir.display()
        )));
    }
    Ok(false)
}

impl Host {
    /// Opens the durable data dir `dir`, creating it and its store when it never had
    /// one, waiting up to `options.lock_wait` for another process that holds it.
    /// [`Host::created_store`] tells whether it did.
    ///
    /// # Errors
    /// When the dir is locked past the wait, unreadable, not a Semel data dir, or lost
    /// its database (see [`Host::open_existing`]).
    pub fn open(dir: &Path, options: HostOptions) -> Result<Self, HostError> {
        let lock = lock_data_dir(dir, options.lock_wait, options.on_lock_wait)?;
        let created = !has_store(dir)?;
        let mut host = Self::open_locked(dir, lock, options)?;
        host.created = created;
        Ok(host)
    }

    /// Opens the data dir `dir` only if it holds a store: for commands that only read,
    /// which must not create one on a mistyped path. Nothing is created when there is
    /// none.
    ///
    /// # Errors
    /// [`HostError::NoStore`] naming the path when there is no store; otherwise as
    /// [`Host::open`].
    pub fn open_existing(dir: &Path, options: HostOptions) -> Result<Self, HostError> {
        let none = || {
            HostError::NoStore(format!(
                "no Semel store at {} ({DB_FILE} is not there); only commands that record                  create one",
                dir.display()
            ))
        };
        if dir.exists() && !dir.is_dir() {
            return Err(HostError::DataDir(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        if !dir.join(DB_FILE).exists() && !dir.join(WAL_FILE).exists() {
            return Err(none());
        }
        let lock = lock_data_dir(dir, options.lock_wait, options.on_lock_wait)?;
        if !has_store(dir)? {
            return Err(none());
        }
        Self::open_locked(dir, lock, options)
    }

    /// Whether [`Host::open`] made a new store (the data dir had none).
    pub fn created_store(&self) -> bool {
        self.created
    }

    fn open_locked(dir: &Path, lock: File, options: HostOptions) -> Result<Self, HostError> {
        let (db, wal) = (dir.join(DB_FILE), dir.join(WAL_FILE));
        let durability = options.durability;
        let backend = WalBackend::open(&db, &wal, durability)?;
        let reopen: Reopen = Box::new(move || {
            Ok(Box::new(WalBackend::open(&db, &wal, durability)?) as Box<dyn Backend>)
        });
        let runtime =
            Runtime::with_cache_bytes(Some(dir.join(CACHE_DIR)), options.module_cache_bytes)?;
        let mut host = Self::build(Box::new(backend), Some(reopen), Arc::new(runtime), options)?;
        host._lock = Some(lock);
        host.store = StoreKind::DataDir(std::path::absolute(dir).unwrap_or_else(|_| dir.into()));
        Ok(host)
    }

    /// Opens the store `url`, creating it when it has none (see [`Host::open`] for a
    /// data dir, [`Host::open_postgres`] for a database).
    ///
    /// # Errors
    /// As those.
    pub fn open_store(url: &StoreUrl, options: HostOptions) -> Result<Self, HostError> {
        match url {
            StoreUrl::Redb(dir) => Self::open(dir, options),
            StoreUrl::Postgres(db) => Self::open_postgres(db, true, options),
        }
    }

    /// Opens the store `url` only if it holds one, creating nothing.
    ///
    /// # Errors
    /// [`HostError::NoStore`] when there is none; otherwise as [`Host::open_store`].
    pub fn open_existing_store(url: &StoreUrl, options: HostOptions) -> Result<Self, HostError> {
        match url {
            StoreUrl::Redb(dir) => Self::open_existing(dir, options),
            StoreUrl::Postgres(db) => Self::open_postgres(db, false, options),
        }
    }

    /// Opens the PostgreSQL store at the libpq URL `url`, making its schema and first
    /// head when `create` and it has none. Other hosts may use the store at the same
    /// time (interface §8). Compiled modules are cached in memory only.
    ///
    /// # Errors
    /// [`HostError::NoStore`] when it has none and `create` is false;
    /// [`StorageError::Unavailable`] when the database cannot be reached; a schema of
    /// another format.
    pub fn open_postgres(url: &str, create: bool, options: HostOptions) -> Result<Self, HostError> {
        let Some(backend) = PostgresBackend::connect(url, create)? else {
            return Err(HostError::NoStore(format!(
                "no Semel store in the PostgreSQL database {} (no semel_schema table); only \
                 commands that record create one",
                super::store::redacted(url)
            )));
        };
        let owned = url.to_owned();
        let reopen: Reopen = Box::new(move || {
            let backend = PostgresBackend::connect(&owned, false)?.ok_or_else(|| {
                StorageError::Corrupt("the PostgreSQL store's schema is gone".into())
            })?;
            Ok(Box::new(backend) as Box<dyn Backend>)
        });
        let runtime = Runtime::with_cache_bytes(None, options.module_cache_bytes)?;
        let mut host = Self::build(Box::new(backend), Some(reopen), Arc::new(runtime), options)?;
        host.store = StoreKind::Postgres(super::store::redacted(url));
        Ok(host)
    }

    /// A host whose state lives only in memory.
    ///
    /// # Errors
    /// Only if the wasm engine cannot start.
    pub fn in_memory() -> Result<Self, HostError> {
        let mut host =
            Self::with_backend(Box::new(MemoryBackend::new()), None, HostOptions::default())?;
        host.store = StoreKind::Memory;
        Ok(host)
    }

    /// A host over any backend; `cache_dir` keeps compiled modules on disk.
    ///
    /// # Errors
    /// When the backend holds data of another format, or cannot be read.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        cache_dir: Option<PathBuf>,
        options: HostOptions,
    ) -> Result<Self, HostError> {
        let runtime = Runtime::with_cache_bytes(cache_dir, options.module_cache_bytes)?;
        Self::build(backend, None, Arc::new(runtime), options)
    }

    /// A host over a backend that can be reopened after a failed commit (by `reopen`).
    ///
    /// # Errors
    /// As [`Host::with_backend`].
    pub fn with_reopenable_backend(
        backend: Box<dyn Backend>,
        reopen: Box<dyn Fn() -> Result<Box<dyn Backend>, StorageError> + Send + Sync>,
        options: HostOptions,
    ) -> Result<Self, HostError> {
        let runtime = Runtime::with_cache_bytes(None, options.module_cache_bytes)?;
        Self::build(backend, Some(reopen), Arc::new(runtime), options)
    }

    fn build(
        backend: Box<dyn Backend>,
        reopen: Option<Reopen>,
        runtime: Arc<Runtime>,
        options: HostOptions,
    ) -> Result<Self, HostError> {
        let fresh = HostId::random().map_err(|e| {
            HostError::Resource(format!("cannot make a host id (no OS randomness): {e}"))
        })?;
        let (head, host_id) = Head::open(&*backend, fresh)?;
        // The fresh id is kept only by a store made now (or one made before host ids,
        // which has versions); `open` of a data dir decides by its files instead.
        let created = host_id == fresh && head.version == 0;
        // A store made before the events index (or recorded into by a binary without
        // it) gets the rows of the versions it lacks, before anything else is written.
        crate::ledger::events::catch_up(&*backend, &head)?;
        let recycler = match options.recycler {
            true => Some(Recycler::start(Arc::clone(&runtime)).map_err(|e| {
                HostError::Resource(format!("cannot start the recycler thread: {e}"))
            })?),
            false => None,
        };
        Ok(Self {
            runtime,
            committer: Committer::new(backend, reopen, options.reuse_merge_buffer)
                .with_turns(options.store_turns)
                .with_lazy_staging(options.lazy_staging),
            hints: CodeHints::default(),
            recycler,
            published: Published::new(head.tip()),
            parallel_stats: crate::exec::ParallelStats::default(),
            gathered: crate::exec::Gathered::default(),
            head: WriterLock::new(head, options.writer_spin),
            options,
            created,
            host_id,
            authorize: true,
            store: StoreKind::Backend,
            _lock: None,
        })
    }

    /// An empty in-memory host sharing this host's compiled modules, for re-execution.
    pub(super) fn scratch(&self) -> Result<Host, HostError> {
        let mut scratch = Self::build(
            Box::new(MemoryBackend::new()),
            None,
            Arc::clone(&self.runtime),
            HostOptions {
                concurrency: self.options.concurrency,
                workers: self.options.workers,
                ..HostOptions::default()
            },
        )?;
        scratch.store = StoreKind::Memory;
        // The log holds no signatures: its senders were authorized when recorded.
        scratch.authorize = false;
        Ok(scratch)
    }
}
