//! What a transaction's wasmtime `Store` carries: the state it reads, the writes and
//! events it buffers, its stack of contract frames, and the ways a frame can end early.
//!
//! Host functions (`imports/`) and frame execution (`frames.rs`) both work on
//! [`TxCtx`]; the run of a transaction (`run.rs`) builds one and takes it apart. Every
//! read of the state goes through [`TxCtx::get`], [`TxCtx::next_key`] and
//! [`TxCtx::contract`], which record it in the run's [`ReadSet`].

use std::ops::Bound;
use std::sync::{Arc, LazyLock, Mutex};

use wasmtime::{AsContextMut, Instance, Memory};

use crate::error::HostError;
use crate::ledger::access::{AccessLog, AccessSet, KeySpec, undeclared};
pub(crate) use crate::ledger::receipt::Event;
use crate::limits::EVENTS_PER_TX_MAX;
use crate::state::registry::{ContractCache, ContractRecord, REGISTRY_NS};
use crate::state::{self, MergedView, ReadSet, RecordingView, StateView, WriteSet};
use crate::storage::{Snapshot, StorageError, Table};
use crate::types::CodeHash;
use crate::vm::exports::Exports;
use crate::vm::module_cache::ModuleCache;
use crate::vm::turns::TurnHandle;

/// One contract call on the stack.
pub(crate) struct Frame {
    pub contract: Arc<str>,
    /// The immediate caller: the sender for a top-level call, else the calling contract.
    pub caller: Arc<str>,
    pub memory: Memory,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    /// The last nested `call`'s result: the callee's output or its error message.
    pub last_result: Vec<u8>,
}

/// Why a frame stopped before returning. Crosses wasm as a `wasmtime::Error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Abort {
    /// The contract called `revert`.
    #[error("reverted: {0}")]
    Revert(String),
    /// The contract broke a rule of the ABI (bad pointer, a limit, a write in a query).
    #[error("{0}")]
    Fault(String),
    /// Gas ran out: ends the whole transaction, no frame can catch it.
    #[error("out of gas")]
    OutOfGas,
    /// An access outside the transaction's declared set: ends the whole transaction
    /// (reverted), so that what it did not declare it never read.
    #[error("{0}")]
    Undeclared(String),
    /// The host failed under the contract: ends the transaction with an `Err`.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The data of a transaction's (or a query's) wasmtime `Store`.
pub(crate) struct TxCtx {
    /// Where a frame finds its contract's compiled module.
    pub modules: Arc<ModuleCache<TxCtx>>,
    /// Where code is read from when a callee's module is not compiled yet.
    pub code: Arc<dyn Snapshot>,
    pub base: Arc<dyn StateView>,
    pub writes: WriteSet,
    /// Everything read from the base so far (never this transaction's own writes).
    pub reads: Mutex<ReadSet>,
    pub events: Vec<Event>,
    /// Events emitted so far, kept or discarded: the limit counts every one.
    pub events_emitted: usize,
    pub frames: Vec<Frame>,
    /// Instances created in this store so far.
    pub instances: usize,
    pub read_only: bool,
    pub tx_id: [u8; 16],
    pub sender: Arc<str>,
    /// Print the text of the contract's `log` calls to stderr.
    pub print_logs: bool,
    /// Registry entries read lately: the writer's, lent to this run.
    pub contracts: ContractCache,
    /// An instance made before the run (see `prewarm/early.rs`), until a frame of its
    /// code takes it.
    pub ready: Option<Ready>,
    /// The transaction's declared access set, enforced on every access when given.
    pub access: Option<Arc<AccessSet>>,
    /// Every access made, when the run is a simulation that reports them.
    pub access_log: Option<AccessLog>,
    /// The run's turn to execute, to take the large turn with before an instance past
    /// `INSTANCES_PER_TURN` (`vm/turns.rs`).
    pub turn: Option<TurnHandle>,
}

/// A contract's access to its own keys, as an access set allows it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access<'a> {
    /// `storage_get` of a key.
    Read(&'a [u8]),
    /// `storage_set` or `storage_remove` of a key.
    Write(&'a [u8]),
    /// `storage_next` over the keys with a prefix.
    Scan(&'a [u8]),
}

/// A fresh instance made ahead of its frame.
pub(crate) struct Ready {
    pub code: CodeHash,
    pub instance: Instance,
    pub exports: Arc<Exports>,
    /// The fuel its instantiation took, charged when a frame takes it.
    pub cost: u64,
}

impl TxCtx {
    /// A context that reads nothing yet: the executor gives it its run's state and ids.
    pub fn new(modules: Arc<ModuleCache<TxCtx>>) -> Self {
        let released: Arc<Released> = Arc::clone(&RELEASED);
        Self {
            modules,
            code: released.clone(),
            base: released,
            writes: WriteSet::new(),
            reads: Mutex::new(ReadSet::new()),
            events: Vec::new(),
            events_emitted: 0,
            frames: Vec::new(),
            instances: 0,
            read_only: true,
            tx_id: [0; 16],
            sender: Arc::clone(&NO_SENDER),
            print_logs: false,
            contracts: ContractCache::default(),
            ready: None,
            access: None,
            turn: None,
            access_log: None,
        }
    }

    /// Checks an access of the running frame's contract against the declared set, and
    /// logs it when the run reports its accesses.
    ///
    /// # Errors
    /// [`Abort::Undeclared`] when a set is declared and does not allow it.
    pub fn allow(&mut self, access: Access<'_>) -> Result<(), Abort> {
        if self.access.is_none() && self.access_log.is_none() {
            return Ok(());
        }
        let contract = Arc::clone(&self.frame().contract);
        if let Some(set) = &self.access {
            let (allowed, what, key) = match access {
                Access::Read(k) => (set.allows_read(&contract, k), "a read", k),
                Access::Write(k) => (set.allows_write(&contract, k), "a write", k),
                Access::Scan(p) => (
                    set.allows_scan(&contract, p),
                    "a walk (storage_next) of the prefix",
                    p,
                ),
            };
            if !allowed {
                return Err(Abort::Undeclared(undeclared(what, &contract, key)));
            }
        }
        if let Some(log) = &mut self.access_log {
            match access {
                Access::Read(k) => log.note(&contract, KeySpec::Key(k.to_vec()), false),
                Access::Write(k) => log.note(&contract, KeySpec::Key(k.to_vec()), true),
                Access::Scan(p) => log.note(&contract, KeySpec::Prefix(p.to_vec()), false),
            }
        }
        Ok(())
    }

    /// The value of `(ns, key)` as the running frame sees it.
    ///
    /// # Errors
    /// When the base view fails.
    pub fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(v) = self.writes.get(ns, key) {
            return Ok(v.map(<[u8]>::to_vec));
        }
        state::lock(&self.reads).read(&*self.base, ns, key)
    }

    /// The first key of `ns` with `prefix` after `after`, as the running frame sees it:
    /// the base (recorded) merged with this transaction's writes.
    ///
    /// # Errors
    /// When the base view fails.
    pub fn next_key(
        &self,
        ns: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let base = RecordingView {
            base: &*self.base,
            reads: &self.reads,
        };
        MergedView {
            base: &base,
            writes: &self.writes,
        }
        .next_key(ns, prefix, after)
    }

    /// The registry entry of contract `name` as the running frame sees it. A read the
    /// contract cache answers is recorded as if the base had.
    ///
    /// # Errors
    /// When the base view fails or the entry does not decode.
    pub fn contract(&mut self, name: &str) -> Result<Option<ContractRecord>, StorageError> {
        if let Some(v) = self.writes.get(REGISTRY_NS, name.as_bytes()) {
            return Ok(v.map(ContractRecord::decode).transpose()?);
        }
        if let Some(cached) = self.contracts.get(name, self.base.version()) {
            self.reads_mut().note(REGISTRY_NS, name.as_bytes(), || {
                cached.as_ref().map(ContractRecord::encode)
            });
            return Ok(cached);
        }
        let reads = self.reads.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(bytes) = reads.read(&*self.base, REGISTRY_NS, name.as_bytes())? else {
            return Ok(None);
        };
        let record = ContractRecord::decode(&bytes)?;
        self.contracts.insert(name, record.clone());
        Ok(Some(record))
    }

    /// The read set, when the context is held mutably (no lock taken).
    pub fn reads_mut(&mut self) -> &mut ReadSet {
        self.reads.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets go of the state this run read (once it is over), so that the store can
    /// outlive the writer's turn without holding a snapshot: an in-memory backend
    /// commits in place only when no snapshot shares its maps.
    pub fn release_state(&mut self) {
        let released: Arc<Released> = Arc::clone(&RELEASED);
        self.base = released.clone();
        self.code = released;
    }

    /// The running frame.
    ///
    /// # Panics
    /// Outside a frame; host functions only run inside one.
    pub fn frame(&self) -> &Frame {
        self.frames
            .last()
            .expect("host functions run inside a frame")
    }

    /// The running frame, mutably.
    pub fn frame_mut(&mut self) -> &mut Frame {
        self.frames
            .last_mut()
            .expect("host functions run inside a frame")
    }

    /// Counts an emitted event against [`EVENTS_PER_TX_MAX`].
    pub fn count_event(&mut self) -> Result<(), Abort> {
        if self.events_emitted >= EVENTS_PER_TX_MAX {
            return Err(Abort::Fault(format!(
                "more than EVENTS_PER_TX_MAX ({EVENTS_PER_TX_MAX}) events in one transaction"
            )));
        }
        self.events_emitted += 1;
        Ok(())
    }
}

/// Takes `gas` from the transaction's fuel, or ends it when there is not enough.
///
/// # Errors
/// [`Abort::OutOfGas`] when less than `gas` is left (the fuel is then spent).
pub(crate) fn charge(mut store: impl AsContextMut<Data = TxCtx>, gas: u64) -> wasmtime::Result<()> {
    let mut store = store.as_context_mut();
    let left = store.get_fuel()?;
    match left.checked_sub(gas) {
        Some(rest) => store.set_fuel(rest),
        None => {
            store.set_fuel(0)?;
            Err(wasmtime::Error::new(Abort::OutOfGas))
        }
    }
}

/// The state of a context before its run and after it: nothing, and a read of it fails.
struct Released;

static RELEASED: LazyLock<Arc<Released>> = LazyLock::new(|| Arc::new(Released));

/// The sender of a context that has no run yet.
static NO_SENDER: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));

impl StateView for Released {
    fn version(&self) -> u64 {
        0
    }

    fn get(&self, _: &str, _: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Err(released())
    }

    fn next_key(
        &self,
        _: &str,
        _: &[u8],
        _: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Err(released())
    }
}

impl Snapshot for Released {
    fn get(&self, _: Table, _: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Err(released())
    }

    fn range(
        &self,
        _: Table,
        _: Bound<&[u8]>,
        _: Bound<&[u8]>,
        _: bool,
        _: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        Err(released())
    }
}

/// A read through a context that has no run's state: a host bug, never an answer.
fn released() -> StorageError {
    StorageError::Backend("read outside a run: the context holds no state".into())
}
