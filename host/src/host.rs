//! The host: the coordinator of interface §3. It checks input, decides duplicate or
//! conflict by transaction id, runs the executor against the latest state, and commits
//! the state changes, state root, receipt and log entry in one atomic batch — so a
//! transaction is recorded exactly once or not at all.

use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::commit::{Committer, Reopen, View};
use crate::engine::{CodeHash, Runtime};
use crate::error::{InputError, QueryError, StorageError, SubmitError};
use crate::executor::{Early, Execution, RunSetup, Spent, Work, execute, prepare_early};
use crate::limits::QUERY_GAS_LIMIT;
use crate::receipt::{Receipt, Status};
use crate::recent_ids::RecentIds;
use crate::recycler::Recycler;
use crate::registry::{CodeHints, ContractCache, ContractRecord, REGISTRY_NS};
use crate::state::{
    EntryCache, LtHash, SnapshotView, StateRoot, StateView, encode_stored_value, entry_key,
    versioned_key,
};
use crate::storage::{
    Backend, Durability, Entry, MemoryBackend, Snapshot, Table, WAL_FILE, WalBackend, WriteBatch,
};
use crate::tx::{LoggedTx, Transaction, TxBody, check_contract_name, check_method_name};
use crate::txlog::{
    FORMAT, META_FORMAT, META_HORIZON, META_LATTICE, META_VERSION, TxRecord, decode_log_entry,
    decode_u64, encode_log_entry, log_key,
};
use crate::validate;
use crate::writer_lock::WriterLock;

/// File name of the database inside a data dir.
pub const DB_FILE: &str = "semel.redb";
/// File whose lock marks a data dir as in use by one process.
pub const LOCK_FILE: &str = "LOCK";
/// Folder of compiled-module artifacts inside a data dir.
pub const CACHE_DIR: &str = "cache";

/// How a host is opened.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// How long to wait for another process to release the data dir.
    pub lock_wait: Duration,
    /// Called once when the data dir is held by another process and waiting starts.
    pub on_lock_wait: Option<fn(&Path, Duration)>,
    /// Print contracts' `log` text to stderr.
    pub debug_log: bool,
    /// Whether an acknowledged transaction survives a crash (the default) or may be lost
    /// with the last few before it (benchmarks and tests only).
    pub durability: Durability,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            lock_wait: Duration::from_millis(crate::limits::DATA_DIR_LOCK_WAIT_MS),
            on_lock_wait: None,
            debug_log: false,
            durability: Durability::Immediate,
        }
    }
}

/// The output of a read-only query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutput {
    /// The version it read.
    pub version: u64,
    /// What the method output.
    pub output: Vec<u8>,
}

/// A deployed contract, as `semel contracts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractInfo {
    /// Its name.
    pub name: String,
    /// Its code.
    pub code_hash: CodeHash,
    /// The version its deploy took.
    pub version: u64,
}

/// A recorded transaction, as `semel log` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The version it took.
    pub version: u64,
    /// Its id.
    pub tx_id: Uuid,
    /// Committed or reverted.
    pub status: Status,
    /// `contract.method` per call, or `deploy NAME`.
    pub calls: Vec<String>,
}

/// The latest version and the lattice behind its root: what commits advance.
#[derive(Default)]
pub(crate) struct Head {
    pub version: u64,
    pub lattice: LtHash,
    /// The oldest readable version (raised by pruning).
    pub horizon: u64,
    /// Lanes of the entries the lattice gained lately: see [`EntryCache`].
    pub entry_cache: EntryCache,
    /// Registry entries the writer read lately: see [`ContractCache`].
    pub contracts: ContractCache,
    /// Ids staged lately: see [`RecentIds`].
    pub recent: RecentIds,
    /// A run changed the lattice in place and then failed to stage: whoever takes the
    /// writer lock next reloads the head from storage (`Host::recover_if_needed`, on
    /// every path that takes it).
    pub stale: bool,
}

/// A transaction checked, hashed, not found recorded, and with its code prepared: ready
/// to run.
struct Prepared<'a> {
    tx: std::borrow::Cow<'a, Transaction>,
    /// The content's encoding, as the log stores it; hashed once, encoded once.
    content: Vec<u8>,
    content_hash: [u8; 32],
    code_hash: Option<CodeHash>,
    /// The last batch staged before the snapshot that did not hold the id, if any was
    /// taken.
    seen: Option<u64>,
}

/// What a lookup of a transaction id found.
enum Lookup {
    /// Its stored receipt.
    Recorded(Staged),
    /// Nothing, in a view that held every batch up to `seen`.
    New { seen: u64 },
}

/// A submission after its checks outside the writer lock.
enum Checked<'a> {
    /// Its id is recorded: the stored receipt answers it.
    Recorded(Staged),
    /// New as of the checks: to run under the writer lock.
    New(Prepared<'a>),
}

/// A receipt and the batch that must be durable before it is handed out.
struct Staged {
    receipt: Receipt,
    wait_for: Option<u64>,
    /// The run's store, to drop once the writer lock is released.
    spent: Option<Spent>,
}

/// A Semel host over one backend.
pub struct Host {
    runtime: Arc<Runtime>,
    committer: Committer,
    /// Which code each contract runs, for instantiating before the writer lock.
    hints: CodeHints,
    /// Frees a lone submitter's stores and makes its next one ready.
    recycler: Recycler,
    head: WriterLock<Head>,
    options: HostOptions,
    _lock: Option<File>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

fn lock_data_dir(
    dir: &Path,
    wait: Duration,
    on_wait: Option<fn(&Path, Duration)>,
) -> Result<File, StorageError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StorageError::Io(format!("cannot create data dir {}: {e}", dir.display())))?;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::Io(format!("cannot open {}: {e}", path.display())))?;
    let start = Instant::now();
    let mut notify = on_wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                if let Some(f) = notify.take() {
                    f(dir, wait);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Locked(format!(
                    "{} (still held after {} ms)",
                    dir.display(),
                    wait.as_millis()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StorageError::Io(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

impl Host {
    /// Opens (or creates) the durable data dir `dir`, waiting up to
    /// `options.lock_wait` for another process that holds it.
    ///
    /// # Errors
    /// When the dir is locked past the wait, unreadable, or not a Semel data dir.
    pub fn open(dir: &Path, options: HostOptions) -> Result<Self, StorageError> {
        let lock = lock_data_dir(dir, options.lock_wait, options.on_lock_wait)?;
        let (db, wal) = (dir.join(DB_FILE), dir.join(WAL_FILE));
        let durability = options.durability;
        let backend = WalBackend::open(&db, &wal, durability)?;
        let reopen: Reopen = Box::new(move || {
            Ok(Box::new(WalBackend::open(&db, &wal, durability)?) as Box<dyn Backend>)
        });
        let runtime = Arc::new(Runtime::new(Some(dir.join(CACHE_DIR)))?);
        let mut host = Self::build(Box::new(backend), Some(reopen), runtime, options)?;
        host._lock = Some(lock);
        Ok(host)
    }

    /// A host whose state lives only in memory.
    ///
    /// # Errors
    /// Only if the wasm engine cannot start.
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::with_backend(Box::new(MemoryBackend::new()), None, HostOptions::default())
    }

    /// A host over any backend; `cache_dir` keeps compiled modules on disk.
    ///
    /// # Errors
    /// When the backend holds data of another format, or cannot be read.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        cache_dir: Option<PathBuf>,
        options: HostOptions,
    ) -> Result<Self, StorageError> {
        let runtime = Arc::new(Runtime::new(cache_dir)?);
        Self::build(backend, None, runtime, options)
    }

    /// A host over a backend that can be reopened after a failed commit (by `reopen`).
    ///
    /// # Errors
    /// As [`Host::with_backend`].
    pub fn with_reopenable_backend(
        backend: Box<dyn Backend>,
        reopen: Box<dyn Fn() -> Result<Box<dyn Backend>, StorageError> + Send + Sync>,
        options: HostOptions,
    ) -> Result<Self, StorageError> {
        let runtime = Arc::new(Runtime::new(None)?);
        Self::build(backend, Some(reopen), runtime, options)
    }

    fn build(
        backend: Box<dyn Backend>,
        reopen: Option<Reopen>,
        runtime: Arc<Runtime>,
        options: HostOptions,
    ) -> Result<Self, StorageError> {
        let snap = backend.snapshot()?;
        let head = match snap.get(Table::Meta, META_FORMAT)? {
            None => {
                let mut batch = WriteBatch::new();
                batch.put(Table::Meta, META_FORMAT.to_vec(), FORMAT.to_vec());
                batch.put(
                    Table::Meta,
                    META_VERSION.to_vec(),
                    0u64.to_le_bytes().to_vec(),
                );
                batch.put(
                    Table::Meta,
                    META_LATTICE.to_vec(),
                    LtHash::default().to_bytes(),
                );
                backend.commit(&batch)?;
                Head::default()
            }
            Some(f) if f == FORMAT => read_head(&*snap)?,
            Some(other) => {
                return Err(StorageError::Corrupt(format!(
                    "not a Semel data dir of this format (format marker {:?})",
                    String::from_utf8_lossy(&other)
                )));
            }
        };
        let recycler = Recycler::start(Arc::clone(&runtime))
            .map_err(|e| StorageError::Backend(format!("cannot start the recycler thread: {e}")))?;
        Ok(Self {
            runtime,
            committer: Committer::new(backend, reopen),
            hints: CodeHints::default(),
            recycler,
            head: WriterLock::new(head),
            options,
            _lock: None,
        })
    }

    /// The wasm runtime (engine and module caches) this host runs contracts on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn head(&self) -> Result<MutexGuard<'_, Head>, StorageError> {
        self.head.lock().map_err(|_| poisoned_head())
    }

    /// The latest recorded version (0 before any transaction).
    ///
    /// # Errors
    /// Only if a panic poisoned the host.
    pub fn latest_version(&self) -> Result<u64, StorageError> {
        Ok(self.head()?.version)
    }

    /// The state root at the latest version.
    ///
    /// # Errors
    /// When storage fails while the host recovers from a failed commit.
    pub fn state_root(&self) -> Result<StateRoot, StorageError> {
        Ok(self.writer()?.lattice.root())
    }

    /// Submits a transaction: executes it once and records it with its receipt, or
    /// returns the stored receipt of an earlier submission of the same id and content.
    /// Returns only once the transaction is durable.
    ///
    /// # Errors
    /// [`SubmitError::Rejected`] for bad input and [`SubmitError::Conflict`] for an id
    /// recorded with other content (both change nothing), [`SubmitError::Host`] when
    /// storage fails (nothing recorded).
    pub fn submit(&self, tx: &Transaction) -> Result<Receipt, SubmitError> {
        self.submit_one(tx, false)
    }

    /// [`Host::submit`], always instantiating ahead of the writer lock: for tests that
    /// hold that path to the same receipts as the other.
    #[doc(hidden)]
    pub fn submit_instantiating_early(&self, tx: &Transaction) -> Result<Receipt, SubmitError> {
        self.submit_one(tx, true)
    }

    fn submit_one(&self, tx: &Transaction, always_early: bool) -> Result<Receipt, SubmitError> {
        let visit = self.recycler.visit();
        // A retry is answered without the writer lock.
        let prepared = match self.prepare(tx)? {
            Checked::Recorded(staged) => return self.acknowledge(staged),
            Checked::New(prepared) => prepared,
        };
        let (mut staged, first_code, alone) = {
            let _arrival = self.committer.arrive()?;
            // While another transaction holds the writer lock, instantiate ahead instead
            // of waiting idle. With the lock free, a lone submitter takes the store the
            // recycler made ready; one that is not alone has nothing to overlap.
            let free = if always_early {
                None
            } else {
                self.head.try_lock().map_err(|_| poisoned_head())?
            };
            // The hints are read only where a store may be made ahead.
            let (mut head, early, first_code, alone) = match free {
                Some(head) if visit.alone() => {
                    let first_code = self.first_code(&prepared);
                    let early = first_code.and_then(|c| self.recycler.take(c, true));
                    (head, early, first_code, true)
                }
                Some(head) => (head, None, None, false),
                None => {
                    let early = self.first_code(&prepared).and_then(|c| {
                        self.recycler
                            .take(c, false)
                            .or_else(|| prepare_early(&self.runtime, c))
                    });
                    (self.head()?, early, None, false)
                }
            };
            let staged = self.run_and_stage(&mut head, &prepared, early)?;
            (staged, first_code, alone)
        };
        // Outside the writer lock: freeing instances clears their memory. A lone
        // submitter has the recycler do it (and make its next store); while others
        // submit too, each does its own (see `recycler.rs`).
        if let Some(spent) = staged.spent.take() {
            if alone {
                self.recycler.recycle(spent, first_code);
            } else {
                drop(spent);
            }
        }
        self.acknowledge(staged)
    }

    /// The code of the contract `p` calls first, as far as the hints know it.
    fn first_code(&self, p: &Prepared<'_>) -> Option<CodeHash> {
        let TxBody::Calls(calls) = &p.tx.body else {
            return None;
        };
        self.hints.get(&calls.first()?.contract)
    }

    /// Submits transactions in order, as one group: each runs against the state the ones
    /// before it left, and all of them are made durable together (one commit when the
    /// host is otherwise idle). One result per transaction, in order.
    pub fn submit_all(&self, txs: &[Transaction]) -> Vec<Result<Receipt, SubmitError>> {
        // Counted as a submission: a lone submitter's recycler must not spin beside a list.
        let _visit = self.recycler.visit();
        let prepared: Vec<_> = txs.iter().map(|tx| self.prepare(tx)).collect();
        let arrival = self.committer.arrive();
        let staged: Vec<Result<Staged, SubmitError>> = match self.writer() {
            // Each run's store is dropped at once: kept, they would hold every turn to
            // execute, which the next run of the list waits for.
            Ok(mut head) => prepared
                .into_iter()
                .map(|p| match p? {
                    Checked::Recorded(staged) => Ok(staged),
                    Checked::New(p) => {
                        let mut staged = self.run_and_stage(&mut head, &p, None)?;
                        staged.spent = None;
                        Ok(staged)
                    }
                })
                .collect(),
            Err(e) => {
                let msg = e.to_string();
                prepared
                    .into_iter()
                    .map(|p| p.and_then(|_| Err(StorageError::Backend(msg.clone()).into())))
                    .collect()
            }
        };
        drop(arrival);
        staged
            .into_iter()
            .map(|s| s.and_then(|s| self.acknowledge(s)))
            .collect()
    }

    /// Checks input, converts WAT, hashes content, looks the id up and prepares code: all
    /// before any lock.
    fn prepare<'a>(&self, tx: &'a Transaction) -> Result<Checked<'a>, SubmitError> {
        let tx = match &tx.body {
            TxBody::Deploy {
                name,
                code,
                init_args,
            } if !code.starts_with(b"\0asm") => std::borrow::Cow::Owned(Transaction {
                body: TxBody::Deploy {
                    name: name.clone(),
                    code: validate::wasm_bytes(code).map_err(InputError::from)?,
                    init_args: init_args.clone(),
                },
                ..tx.clone()
            }),
            _ => std::borrow::Cow::Borrowed(tx),
        };
        tx.check()?;
        let content = tx.encode_content();
        let content_hash = Transaction::hash_content(&content);
        // Looked up here, out of the writer's way; under the lock, `Head::recent` tells
        // whether the id was staged since, without a second lookup. A committer that
        // failed gives no snapshot: the writer recovers it, then looks up itself. A
        // receipt found in a batch that is not durable yet waits for that batch, and
        // fails with it if its commit fails.
        let mut seen = None;
        if let Ok(view) = self.committer.view_of(Table::Txs, tx.id.as_bytes()) {
            match self.lookup(view, &tx.id, &content_hash)? {
                Lookup::Recorded(staged) => return Ok(Checked::Recorded(staged)),
                Lookup::New { seen: last } => seen = Some(last),
            }
        }
        let mut prepared = Prepared {
            tx,
            content,
            content_hash,
            code_hash: None,
            seen,
        };
        if let TxBody::Deploy { code, .. } = &prepared.tx.body {
            prepared.code_hash = Some(self.runtime.prepare(code).map_err(InputError::from)?.0);
        }
        Ok(Checked::New(prepared))
    }

    /// The host's writer lock, after reopening storage if a commit failed.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Head>, StorageError> {
        let mut head = self.head()?;
        self.recover_if_needed(&mut head)?;
        Ok(head)
    }

    fn recover_if_needed(&self, head: &mut Head) -> Result<(), StorageError> {
        if self.committer.is_poisoned()? {
            self.committer.recover()?;
            head.stale = true;
        }
        if head.stale {
            *head = self.stored_head()?;
        }
        Ok(())
    }

    /// A duplicate's stored receipt (and the batch to wait for if it is not durable yet).
    fn already_recorded(&self, p: &Prepared<'_>) -> Result<Option<Staged>, SubmitError> {
        let view = self.committer.view_of(Table::Txs, p.tx.id.as_bytes())?;
        Ok(match self.lookup(view, &p.tx.id, &p.content_hash)? {
            Lookup::Recorded(staged) => Some(staged),
            Lookup::New { .. } => None,
        })
    }

    /// Looks `id` up in `view`: its stored receipt, to hand out once the batch that
    /// recorded it is durable, or the last batch the view held.
    fn lookup(
        &self,
        view: View,
        id: &Uuid,
        content_hash: &[u8; 32],
    ) -> Result<Lookup, SubmitError> {
        let recorded = self.recorded(&view.snapshot, id, content_hash)?;
        // Dropped before the writer commits: a memory backend then updates in place.
        drop(view.snapshot);
        Ok(match recorded {
            Some(receipt) => Lookup::Recorded(Staged {
                receipt,
                wait_for: view.pending,
                spent: None,
            }),
            None => Lookup::New { seen: view.seen },
        })
    }

    /// Runs a prepared transaction against the latest state and stages its batch.
    fn run_and_stage(
        &self,
        head: &mut Head,
        p: &Prepared<'_>,
        early: Option<Early>,
    ) -> Result<Staged, SubmitError> {
        self.recover_if_needed(head)?;
        // Only an id staged since `prepare` looked can be recorded now.
        if p.seen
            .is_none_or(|seen| head.recent.may_hold_since(&p.tx.id, seen))
            && let Some(staged) = self.already_recorded(p)?
        {
            return Ok(staged);
        }
        let tx = &*p.tx;
        let code_hash = match (&tx.body, p.code_hash) {
            (TxBody::Deploy { code, .. }, None) => {
                Some(self.runtime.prepare(code).map_err(InputError::from)?.0)
            }
            (_, hash) => hash,
        };
        let snapshot = self.committer.snapshot()?;
        let new_version = head.version + 1;
        let base: Arc<dyn StateView> =
            Arc::new(SnapshotView::new(Arc::clone(&snapshot), head.version));
        let work = match &tx.body {
            TxBody::Calls(calls) => Work::Calls(calls),
            TxBody::Deploy {
                name,
                code,
                init_args,
            } => Work::Deploy {
                name,
                code_hash: code_hash
                    .ok_or_else(|| StorageError::Backend("code not prepared".into()))?,
                init_args,
                code_len: code.len(),
            },
        };
        let setup = RunSetup {
            runtime: Arc::clone(&self.runtime),
            code: Arc::clone(&snapshot),
            base: Arc::clone(&base),
            tx_id: tx.id,
            sender: Arc::from(tx.sender.as_str()),
            gas_limit: tx.gas_limit,
            new_version,
            read_only: false,
            debug_log: self.options.debug_log,
            contracts: std::mem::take(&mut head.contracts),
        };
        let (mut run, spent) = execute(setup, &work, early)?;
        head.contracts = std::mem::take(&mut run.contracts);
        // Only entries just read from storage: the others are noted already.
        for (name, code) in head.contracts.take_new() {
            self.hints.note(&name, code);
        }
        // The lattice changes in place, not in a copy: until the batch is staged, a
        // failure leaves the head stale (reloaded before the lock's next use).
        head.stale = true;
        let mut batch = WriteBatch::new();
        self.stage_writes(
            &run,
            &*base,
            new_version,
            (&mut head.lattice, &mut head.entry_cache),
            &mut batch,
        )?;
        if let (TxBody::Deploy { code, .. }, Some(hash)) = (&tx.body, code_hash)
            && snapshot.get(Table::Code, &hash.0)?.is_none()
        {
            batch.put(Table::Code, hash.0.to_vec(), code.clone());
        }
        let state_root = head.lattice.root();
        let receipt = Receipt {
            tx_id: tx.id,
            status: run.status,
            error: run.error,
            version: new_version,
            results: run.results,
            events: run.events,
            gas_used: run.gas_used,
            state_root,
            duplicate: false,
        };
        let record = TxRecord {
            version: new_version,
            content_hash: p.content_hash,
            receipt,
        };
        // Slices, each copied once into the batch's shared bytes.
        batch.put(Table::Txs, &tx.id.as_bytes()[..], &record.encode()[..]);
        let entry = encode_log_entry(&tx.id, &p.content);
        batch.put(Table::Log, &log_key(new_version)[..], &entry[..]);
        batch.put(Table::Meta, META_VERSION, &new_version.to_le_bytes()[..]);
        batch.put(Table::Meta, META_LATTICE, head.lattice.as_bytes());
        // Release this run's snapshot first: an in-memory backend then commits in place.
        drop((base, snapshot));
        let seq = self.committer.stage(batch)?;
        head.stale = false;
        head.recent.note(seq, tx.id);
        head.version = new_version;
        Ok(Staged {
            receipt: record.receipt,
            wait_for: Some(seq),
            spent: Some(spent),
        })
    }

    /// Stages a batch that is not a transaction (a prune); the caller holds the writer.
    pub(crate) fn stage(&self, batch: WriteBatch) -> Result<u64, StorageError> {
        self.committer.stage(batch)
    }

    /// Waits until staged batch `seq` is durable.
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<(), StorageError> {
        self.committer.wait_durable(seq)
    }

    /// The oldest version queries may read (0 until a prune).
    ///
    /// # Errors
    /// Only if a panic poisoned the host.
    pub fn horizon(&self) -> Result<u64, StorageError> {
        Ok(self.head()?.horizon)
    }

    /// Hands out a receipt once its batch is durable.
    fn acknowledge(&self, staged: Staged) -> Result<Receipt, SubmitError> {
        if let Some(seq) = staged.wait_for {
            self.committer.wait_durable(seq)?;
        }
        Ok(staged.receipt)
    }

    /// Backend commits since the host opened: with durability on, one fsync each.
    pub fn commits(&self) -> u64 {
        self.committer.commits()
    }

    /// Adds a run's writes to `batch` at `version` and to the lattice.
    fn stage_writes(
        &self,
        run: &Execution,
        base: &dyn StateView,
        version: u64,
        (lattice, cache): (&mut LtHash, &mut EntryCache),
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        for (ns, key, value) in run.writes.changes()? {
            let old = match run.reads.recorded(&ns, &key) {
                Some(v) => v.map(<[u8]>::to_vec),
                None => base.get(&ns, &key)?,
            };
            if old == value {
                continue;
            }
            lattice.update_cached(cache, &ns, &key, old.as_deref(), value.as_deref());
            batch.put(
                Table::State,
                versioned_key(&entry_key(&ns, &key), version),
                encode_stored_value(value.as_deref()),
            );
        }
        Ok(())
    }

    /// The stored receipt for `id` marked duplicate, a conflict, or `None` if unrecorded.
    fn recorded(
        &self,
        snapshot: &Arc<dyn Snapshot>,
        id: &Uuid,
        content_hash: &[u8; 32],
    ) -> Result<Option<Receipt>, SubmitError> {
        let Some(bytes) = snapshot.get(Table::Txs, id.as_bytes())? else {
            return Ok(None);
        };
        let record = TxRecord::decode(&bytes).map_err(StorageError::from)?;
        if record.content_hash != *content_hash {
            return Err(SubmitError::Conflict {
                id: *id,
                version: record.version,
            });
        }
        let mut receipt = record.receipt;
        receipt.duplicate = true;
        Ok(Some(receipt))
    }

    /// The recorded receipt of `id`.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    pub fn receipt(&self, id: &Uuid) -> Result<Option<Receipt>, StorageError> {
        let snap = self.committer.snapshot()?;
        snap.get(Table::Txs, id.as_bytes())?
            .map(|b| Ok(TxRecord::decode(&b)?.receipt))
            .transpose()
    }

    /// A view of the state at `at` (latest when `None`).
    fn view_at(&self, at: Option<u64>) -> Result<(Arc<dyn Snapshot>, SnapshotView), QueryError> {
        let (latest, horizon) = {
            let head = self.head()?;
            (head.version, head.horizon)
        };
        let snapshot = self.committer.snapshot()?;
        let version = at.unwrap_or(latest);
        if version > latest || version < horizon {
            return Err(InputError::UnknownVersion {
                asked: version,
                oldest: horizon,
                latest,
            }
            .into());
        }
        Ok((Arc::clone(&snapshot), SnapshotView::new(snapshot, version)))
    }

    /// Runs `contract.method(args)` read-only at version `at` (latest when `None`);
    /// nothing is recorded and writes are refused.
    ///
    /// # Errors
    /// [`QueryError::Rejected`] for bad names or versions, [`QueryError::Failed`] when the
    /// contract fails, [`QueryError::Host`] when storage fails.
    pub fn query(
        &self,
        contract: &str,
        method: &str,
        args: &[u8],
        at: Option<u64>,
    ) -> Result<QueryOutput, QueryError> {
        check_contract_name(contract)?;
        check_method_name(method)?;
        crate::tx::check_args(0, args)?;
        let (snapshot, view) = self.view_at(at)?;
        let version = view.version();
        let calls = [crate::tx::Call {
            contract: contract.to_owned(),
            method: method.to_owned(),
            args: args.to_vec(),
        }];
        let setup = RunSetup {
            runtime: Arc::clone(&self.runtime),
            code: snapshot,
            base: Arc::new(view),
            tx_id: Uuid::nil(),
            sender: Arc::from(crate::tx::DEFAULT_SENDER),
            gas_limit: QUERY_GAS_LIMIT,
            new_version: version,
            read_only: true,
            debug_log: self.options.debug_log,
            contracts: ContractCache::default(),
        };
        let (mut run, _spent) = execute(setup, &Work::Calls(&calls), None)?;
        match run.status {
            Status::Committed => Ok(QueryOutput {
                version,
                output: run.results.pop().map(|r| r.output).unwrap_or_default(),
            }),
            Status::Reverted => Err(QueryError::Failed(run.error.unwrap_or_default())),
        }
    }

    /// The keys and values of `contract` that start with `prefix`, at `at` (latest when
    /// `None`), in key order.
    ///
    /// # Errors
    /// For a bad name or version, or when storage fails.
    pub fn state(
        &self,
        contract: &str,
        at: Option<u64>,
        prefix: &[u8],
    ) -> Result<Vec<Entry>, QueryError> {
        check_contract_name(contract)?;
        let (_, view) = self.view_at(at)?;
        Ok(entries(&view, contract, prefix)?)
    }

    /// Every deployed contract at the latest version, by name.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    pub fn contracts(&self) -> Result<Vec<ContractInfo>, StorageError> {
        let view = SnapshotView::new(self.committer.snapshot()?, self.latest_version()?);
        entries(&view, REGISTRY_NS, b"")?
            .into_iter()
            .map(|(name, record)| {
                let record = ContractRecord::decode(&record)?;
                Ok(ContractInfo {
                    name: String::from_utf8(name)
                        .map_err(|_| StorageError::Corrupt("contract name not UTF-8".into()))?,
                    code_hash: record.code_hash,
                    version: record.version,
                })
            })
            .collect()
    }

    /// Up to `limit` recorded transactions from version `from` on, in version order.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    pub fn log(&self, from: u64, limit: usize) -> Result<Vec<LogEntry>, StorageError> {
        let snap = self.committer.snapshot()?;
        let mut raw = Vec::new();
        let start = log_key(from);
        snap.range(
            Table::Log,
            Bound::Included(&start),
            Bound::Unbounded,
            false,
            &mut |k, v| {
                raw.push((k.to_vec(), v.to_vec()));
                raw.len() < limit
            },
        )?;
        raw.into_iter()
            .map(|(k, v)| {
                let version = u64::from_be_bytes(
                    k.as_slice()
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("log key".into()))?,
                );
                let (tx_id, tx) = decode_log_entry(&v)?;
                let record = snap.get(Table::Txs, tx_id.as_bytes())?.ok_or_else(|| {
                    StorageError::Corrupt(format!("log entry {version} has no receipt"))
                })?;
                let record = TxRecord::decode(&record)?;
                Ok(LogEntry {
                    version,
                    tx_id,
                    status: record.receipt.status,
                    calls: tx.call_names(),
                })
            })
            .collect()
    }

    /// The recorded transaction at `version`, rebuilt for re-execution (`verify`).
    pub(crate) fn logged_transaction(
        &self,
        snap: &dyn Snapshot,
        version: u64,
    ) -> Result<Transaction, StorageError> {
        let bytes = snap.get(Table::Log, &log_key(version))?.ok_or_else(|| {
            StorageError::Corrupt(format!("version {version} missing from the log"))
        })?;
        let (id, logged): (Uuid, LoggedTx) = decode_log_entry(&bytes)?;
        let body = match logged.body {
            crate::tx::LoggedBody::Calls(calls) => TxBody::Calls(calls),
            crate::tx::LoggedBody::Deploy {
                name,
                code_hash,
                init_args,
            } => {
                let code = snap.get(Table::Code, &code_hash.0)?.ok_or_else(|| {
                    StorageError::Corrupt(format!(
                        "code {code_hash} of version {version} is missing"
                    ))
                })?;
                TxBody::Deploy {
                    name,
                    code,
                    init_args,
                }
            }
        };
        Ok(Transaction {
            id,
            sender: logged.sender,
            gas_limit: logged.gas_limit,
            body,
        })
    }

    pub(crate) fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        self.committer.snapshot()
    }

    /// An empty in-memory host sharing this host's compiled modules, for re-execution.
    pub(crate) fn scratch(&self) -> Result<Host, StorageError> {
        Self::build(
            Box::new(MemoryBackend::new()),
            None,
            Arc::clone(&self.runtime),
            HostOptions::default(),
        )
    }

    /// The head as stored (not as held in memory).
    pub(crate) fn stored_head(&self) -> Result<Head, StorageError> {
        read_head(&*self.committer.snapshot()?)
    }
}

fn poisoned_head() -> StorageError {
    StorageError::Backend("host state lock poisoned by a panic".into())
}

/// Reads the head (latest version, state lattice, horizon) from the `meta` table.
fn read_head(snap: &dyn Snapshot) -> Result<Head, StorageError> {
    let version = snap
        .get(Table::Meta, META_VERSION)?
        .ok_or_else(|| StorageError::Corrupt("latest version missing".into()))?;
    let lattice = snap
        .get(Table::Meta, META_LATTICE)?
        .ok_or_else(|| StorageError::Corrupt("state lattice missing".into()))?;
    let horizon = match snap.get(Table::Meta, META_HORIZON)? {
        Some(h) => decode_u64(&h)?,
        None => 0,
    };
    Ok(Head {
        version: decode_u64(&version)?,
        lattice: LtHash::from_bytes(&lattice)?,
        horizon,
        ..Head::default()
    })
}

/// Every `(key, value)` of `ns` with `prefix` in `view`, in key order.
fn entries(view: &dyn StateView, ns: &str, prefix: &[u8]) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = view.next_key(ns, prefix, after.as_deref())? {
        let value = view
            .get(ns, &key)?
            .ok_or_else(|| StorageError::Corrupt("listed key has no value".into()))?;
        after = Some(key.clone());
        out.push((key, value));
    }
    Ok(out)
}
