//! Runs one transaction (or query) to an outcome: a fresh `Store` with the gas limit as
//! fuel, the deploy or the calls in order, and the decision — committed or reverted.
//!
//! The executor reads state only through the [`StateView`] it is given and returns its
//! writes buffered in a [`WriteSet`]; committing them, the state root, the log and the
//! receipt are the host's (`host.rs`).

use std::sync::Arc;

use uuid::Uuid;
use wasmtime::Store;

use crate::context::{Abort, Event, Ready, TxCtx, charge};
use crate::engine::{CodeHash, ExecutionPermit, Runtime};
use crate::frames::{FrameEnd, FrameKind, run_frame};
use crate::gas::{DEPLOY_BYTE_GAS, FRAME_GAS};
use crate::receipt::{CallResult, Status};
use crate::registry::{ContractCache, ContractRecord, REGISTRY_NS};
use crate::state::{ReadSet, StateView, WriteSet};
use crate::storage::{Snapshot, StorageError};
use crate::tx::Call;

/// What a transaction does, as the executor needs it.
pub(crate) enum Work<'a> {
    /// Calls in order.
    Calls(&'a [Call]),
    /// A deploy of already validated and prepared code.
    Deploy {
        name: &'a str,
        code_hash: CodeHash,
        init_args: &'a [u8],
        code_len: usize,
    },
}

/// Everything a run needs besides the work itself.
pub(crate) struct RunSetup {
    pub runtime: Arc<Runtime>,
    pub code: Arc<dyn Snapshot>,
    pub base: Arc<dyn StateView>,
    pub tx_id: Uuid,
    pub sender: Arc<str>,
    pub gas_limit: u64,
    /// The version this transaction will take (recorded in a deployed contract's entry).
    pub new_version: u64,
    pub read_only: bool,
    pub debug_log: bool,
    /// Registry entries read lately; the run hands them back in its [`Execution`].
    pub contracts: ContractCache,
}

/// The outcome of a run, before it is committed.
#[derive(Debug)]
pub(crate) struct Execution {
    pub status: Status,
    pub error: Option<String>,
    pub results: Vec<CallResult>,
    pub events: Vec<Event>,
    pub gas_used: u64,
    pub writes: WriteSet,
    /// Base values the run read: the commit takes old values from here.
    pub reads: ReadSet,
    /// The setup's registry entries, with those this run read.
    pub contracts: ContractCache,
}

/// A finished run's store, with its instances, and its turn to execute. Dropping it
/// frees the instances (wasmtime then clears their memory): `Host::submit` does that
/// after it has released the writer lock, so the next transaction need not wait for it
/// (or, for a lone submitter, hands it to the recycler thread: `recycler.rs`).
pub(crate) struct Spent {
    // Dropped in this order: the instances go back to the pool before the turn ends.
    _store: Store<TxCtx>,
    _turn: ExecutionPermit,
}

/// Fuel an early instantiation may use: any module's data fits many times over.
const EARLY_FUEL: u64 = u64::MAX / 2;

/// A store made ready before the writer lock — its turn taken and the contract the
/// transaction calls first already instantiated — work that needs no state, so it runs
/// while another transaction holds the lock. A fresh instance is the same whenever it
/// is made (instantiation runs no wasm), and the fuel its making used is charged when a
/// frame takes it, so a run that uses it behaves exactly as one that instantiates under
/// the lock.
pub(crate) struct Early {
    store: Store<TxCtx>,
    turn: ExecutionPermit,
}

impl Early {
    /// The code it holds an instance of, until a frame takes that.
    pub fn code(&self) -> Option<CodeHash> {
        self.store.data().ready.as_ref().map(|r| r.code)
    }

    /// The store as if a run had used it.
    #[cfg(test)]
    pub fn into_spent(self) -> Spent {
        Spent {
            _store: self.store,
            _turn: self.turn,
        }
    }
}

/// An [`Early`] store with `code` instantiated, when a turn is free at once and the
/// module is compiled; `None` otherwise (the run then does it all under the lock).
pub(crate) fn prepare_early(runtime: &Arc<Runtime>, code: CodeHash) -> Option<Early> {
    let loaded = runtime.cached(&code)?;
    let turn = runtime.try_early_permit()?;
    let mut store = Store::new(runtime.engine(), TxCtx::new(Arc::clone(runtime)));
    // Instantiating charges fuel (active data segments are priced per byte): measured
    // here, charged when a frame takes the instance, as if it instantiated then.
    store.set_fuel(EARLY_FUEL).ok()?;
    let instance = loaded.pre.instantiate(&mut store).ok()?;
    let cost = EARLY_FUEL.checked_sub(store.get_fuel().ok()?)?;
    store.data_mut().ready = Some(Ready {
        code,
        instance,
        exports: loaded.exports,
        cost,
    });
    Some(Early { store, turn })
}

/// Runs `work`, in the `early` store when there is one; the run's store comes back
/// [`Spent`], to drop when convenient.
///
/// # Errors
/// Only host failures; every contract failure is an [`Execution`] with
/// [`Status::Reverted`].
pub(crate) fn execute(
    mut setup: RunSetup,
    work: &Work<'_>,
    early: Option<Early>,
) -> Result<(Execution, Spent), StorageError> {
    // Held until the store is dropped with its instances (see `Spent`).
    // Bound turn first, so that on an early return the store (declared after) goes first.
    let (turn, mut store) = match early {
        Some(Early { store, turn }) => (turn, store),
        None => {
            let turn = setup.runtime.execution_permit();
            let ctx = TxCtx::new(Arc::clone(&setup.runtime));
            (turn, Store::new(setup.runtime.engine(), ctx))
        }
    };
    let ctx = store.data_mut();
    ctx.code = Arc::clone(&setup.code);
    ctx.base = Arc::clone(&setup.base);
    ctx.read_only = setup.read_only;
    ctx.tx_id = *setup.tx_id.as_bytes();
    ctx.sender = Arc::clone(&setup.sender);
    ctx.debug_log = setup.debug_log;
    ctx.contracts = std::mem::take(&mut setup.contracts);
    store
        .set_fuel(setup.gas_limit)
        .map_err(|e| StorageError::Backend(format!("fuel: {e}")))?;
    let outcome = match work {
        Work::Calls(calls) => run_calls(&mut store, calls, &setup.sender),
        Work::Deploy {
            name,
            code_hash,
            init_args,
            code_len,
        } => run_deploy(&mut store, name, *code_hash, init_args, *code_len, &setup),
    };
    let gas_left = store.get_fuel().unwrap_or(0);
    let gas_used = setup.gas_limit.saturating_sub(gas_left);
    let ctx = store.data_mut();
    ctx.release_state();
    let (writes, reads, events, contracts) = (
        std::mem::take(&mut ctx.writes),
        std::mem::take(&mut ctx.reads),
        std::mem::take(&mut ctx.events),
        std::mem::take(&mut ctx.contracts),
    );
    let spent = Spent {
        _store: store,
        _turn: turn,
    };
    let (status, error, results) = match outcome {
        Ok(Ok(results)) => (Status::Committed, None, results),
        Ok(Err(message)) => (Status::Reverted, Some(message), Vec::new()),
        Err(e) => match e.downcast::<Abort>() {
            Ok(Abort::OutOfGas) => (
                Status::Reverted,
                Some(format!("out of gas (gas limit {})", setup.gas_limit)),
                Vec::new(),
            ),
            Ok(Abort::Host(e)) => return Err(e),
            Ok(other) => return Err(StorageError::Backend(format!("unexpected abort: {other}"))),
            Err(e) => return Err(StorageError::Backend(format!("wasm execution failed: {e}"))),
        },
    };
    let committed = status == Status::Committed;
    let run = Execution {
        status,
        error,
        results,
        events: if committed { events } else { Vec::new() },
        gas_used,
        writes: if committed { writes } else { WriteSet::new() },
        reads,
        contracts,
    };
    Ok((run, spent))
}

/// `Ok(Ok(results))`: every call returned; `Ok(Err(msg))`: a call failed.
type RunOutcome = wasmtime::Result<Result<Vec<CallResult>, String>>;

fn run_calls(store: &mut Store<TxCtx>, calls: &[Call], sender: &Arc<str>) -> RunOutcome {
    let mut results = Vec::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        let end = run_frame(
            &mut *store,
            &call.contract,
            &call.method,
            call.args.clone(),
            Arc::clone(sender),
            FrameKind::Call,
        )?;
        match end {
            FrameEnd::Returned(output) => results.push(CallResult {
                contract: call.contract.clone(),
                method: call.method.clone(),
                output,
            }),
            FrameEnd::Failed(message) => {
                return Ok(Err(format!(
                    "call {i} ({}.{}) failed: {message}",
                    call.contract, call.method
                )));
            }
        }
    }
    Ok(Ok(results))
}

fn run_deploy(
    store: &mut Store<TxCtx>,
    name: &str,
    code_hash: CodeHash,
    init_args: &[u8],
    code_len: usize,
    setup: &RunSetup,
) -> RunOutcome {
    let bytes = u64::try_from(code_len).unwrap_or(u64::MAX);
    charge(
        &mut *store,
        FRAME_GAS.saturating_add(DEPLOY_BYTE_GAS.saturating_mul(bytes)),
    )?;
    let taken = store
        .data_mut()
        .contract(name)
        .map_err(|e| wasmtime::Error::new(Abort::Host(e)))?;
    if taken.is_some() {
        return Ok(Err(format!(
            "deploy failed: contract name {name} is already taken"
        )));
    }
    let record = ContractRecord {
        code_hash,
        version: setup.new_version,
    };
    store
        .data_mut()
        .writes
        .put(REGISTRY_NS, name.as_bytes(), Some(record.encode()));
    let end = run_frame(
        &mut *store,
        name,
        crate::abi::INIT_METHOD,
        init_args.to_vec(),
        Arc::clone(&setup.sender),
        FrameKind::Init,
    )?;
    match end {
        FrameEnd::Returned(output) => Ok(Ok(vec![CallResult {
            contract: name.to_owned(),
            method: crate::abi::INIT_METHOD.to_owned(),
            output,
        }])),
        FrameEnd::Failed(message) => Ok(Err(format!("deploy failed: init of {name}: {message}"))),
    }
}
