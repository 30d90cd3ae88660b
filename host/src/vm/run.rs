//! Runs one transaction (or query) to an outcome: a fresh `Store` with the gas limit as
//! fuel, the deploy or the calls in order, and the decision — committed or reverted.
//!
//! The run reads state only through the recorded view of its context and returns an
//! [`Execution`] that is complete on its own: every write with its old value (read in
//! the run, recorded), the events, results, gas, and the read set. Committing it — the
//! state root, the records, the batch — is the executor's (`exec/`).

use std::sync::Arc;

use uuid::Uuid;
use wasmtime::Store;

use crate::error::HostError;
use crate::ledger::access::{AccessLog, AccessSet};
use crate::ledger::receipt::{CallResult, Status};
use crate::ledger::transaction::Call;
use crate::state::registry::{ContractCache, ContractRecord, REGISTRY_NS, code_history_key};
use crate::state::{ReadSet, StateView};
use crate::storage::Snapshot;
use crate::types::CodeHash;
use crate::vm::Runtime;
use crate::vm::abi::MIGRATE_METHOD;
use crate::vm::context::{Abort, Event, TxCtx, charge};
use crate::vm::frames::{FrameEnd, FrameKind, run_frame};
use crate::vm::gas::{DEPLOY_BYTE_GAS, FRAME_GAS};
use crate::vm::prewarm::early::Early;
use crate::vm::store::{RunStore, Spent};

/// What a transaction does, as the run needs it.
pub(crate) enum Work<'a> {
    /// Calls in order.
    Calls(&'a [Call]),
    /// A deploy of already validated and prepared code.
    Deploy {
        name: &'a str,
        code_hash: CodeHash,
        init_args: &'a [u8],
        code_len: usize,
        admin: Option<&'a str>,
    },
    /// A migrate to already validated and prepared code.
    Migrate {
        name: &'a str,
        code_hash: CodeHash,
        args: &'a [u8],
        code_len: usize,
    },
    /// A change of admin.
    SetAdmin {
        name: &'a str,
        admin: Option<&'a str>,
    },
}

/// Everything a run needs besides the work itself.
pub(crate) struct RunSetup {
    pub runtime: Arc<Runtime>,
    /// Where code is read from when a callee's module is not compiled yet.
    pub code: Arc<dyn Snapshot>,
    pub base: Arc<dyn StateView>,
    pub tx_id: Uuid,
    pub sender: Arc<str>,
    pub gas_limit: u64,
    /// The version this transaction will take (recorded in a deployed contract's entry).
    pub new_version: u64,
    pub read_only: bool,
    pub print_logs: bool,
    /// Registry entries read lately; the run hands them back in its [`Execution`].
    pub contracts: ContractCache,
    /// The transaction's declared access set, enforced when given.
    pub access: Option<Arc<AccessSet>>,
    /// Whether to report the accesses made (`simulate`).
    pub log_access: bool,
}

/// One key a run changed: its value before the run and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub ns: String,
    pub key: Vec<u8>,
    /// The base value (`None`: absent).
    pub old: Option<Vec<u8>>,
    /// The value the run left (`None`: removed).
    pub new: Option<Vec<u8>>,
}

/// The outcome of a run, before it is committed: complete, so that committing it reads
/// nothing more.
#[derive(Debug)]
pub(crate) struct Execution {
    pub status: Status,
    pub error: Option<String>,
    pub results: Vec<CallResult>,
    pub events: Vec<Event>,
    pub gas_used: u64,
    /// The keys whose value changed, in key order (none when reverted).
    pub writes: Vec<Write>,
    /// Everything the run read from the base: what a parallel executor validates.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the record a parallel executor validates")
    )]
    pub reads: ReadSet,
    /// The setup's registry entries, with those this run read.
    pub contracts: ContractCache,
    /// The accesses the run made, as a set to declare, when the setup asked for them.
    pub access_used: Option<AccessSet>,
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
) -> Result<(Execution, Spent), HostError> {
    // Held until the store is dropped with its instances (see `Spent`).
    let RunStore { mut store, turn } = match early {
        Some(Early(ready)) => ready,
        None => {
            let turn = setup.runtime.turns().wait();
            let mut ctx = TxCtx::new(Arc::clone(setup.runtime.modules()));
            ctx.turn = Some(turn.handle());
            RunStore {
                store: Store::new(setup.runtime.engine(), ctx),
                turn,
            }
        }
    };
    let ctx = store.data_mut();
    ctx.code = Arc::clone(&setup.code);
    ctx.base = Arc::clone(&setup.base);
    ctx.read_only = setup.read_only;
    ctx.tx_id = *setup.tx_id.as_bytes();
    ctx.sender = Arc::clone(&setup.sender);
    ctx.print_logs = setup.print_logs;
    ctx.contracts = std::mem::take(&mut setup.contracts);
    ctx.access = setup.access.take();
    ctx.access_log = setup.log_access.then(AccessLog::default);
    store
        .set_fuel(setup.gas_limit)
        .map_err(|e| HostError::Engine(format!("fuel: {e:#}")))?;
    let outcome = match work {
        Work::Calls(calls) => run_calls(&mut store, calls, &setup.sender),
        Work::Deploy {
            name,
            code_hash,
            init_args,
            code_len,
            admin,
        } => {
            let record = ContractRecord::deployed(*code_hash, setup.new_version, *admin);
            run_deploy(&mut store, name, record, init_args, *code_len, &setup)
        }
        Work::Migrate {
            name,
            code_hash,
            args,
            code_len,
        } => run_migrate(&mut store, name, *code_hash, args, *code_len, &setup),
        Work::SetAdmin { name, admin } => run_set_admin(&mut store, name, *admin, &setup),
    };
    let gas_left = store.get_fuel().unwrap_or(0);
    let gas_used = setup.gas_limit.saturating_sub(gas_left);
    let (status, error, results) = match outcome {
        Ok(Ok(results)) => (Status::Committed, None, results),
        Ok(Err(message)) => (Status::Reverted, Some(message), Vec::new()),
        Err(e) => match e.downcast::<Abort>() {
            Ok(Abort::OutOfGas) => (
                Status::Reverted,
                Some(format!("out of gas (gas limit {})", setup.gas_limit)),
                Vec::new(),
            ),
            Ok(Abort::Undeclared(message)) => (Status::Reverted, Some(message), Vec::new()),
            Ok(Abort::Host(e)) => return Err(e),
            Ok(other) => return Err(HostError::Engine(format!("unexpected abort: {other}"))),
            Err(e) => return Err(HostError::Engine(format!("wasm execution failed: {e:#}"))),
        },
    };
    let committed = status == Status::Committed;
    let ctx = store.data_mut();
    let writes = match committed {
        true => changed(ctx)?,
        false => Vec::new(),
    };
    ctx.release_state();
    let (reads, events, contracts) = (
        std::mem::take(ctx.reads_mut()),
        std::mem::take(&mut ctx.events),
        std::mem::take(&mut ctx.contracts),
    );
    ctx.writes = Default::default();
    ctx.access = None;
    let access_used = ctx.access_log.take().map(|log| log.to_set());
    let spent = Spent::new(RunStore { store, turn });
    let run = Execution {
        status,
        error,
        results,
        events: if committed { events } else { Vec::new() },
        gas_used,
        writes,
        reads,
        contracts,
        access_used,
    };
    Ok((run, spent))
}

/// The run's final writes that change a value, each with the base value it replaces
/// (read through the recorded view when the run did not read it itself).
fn changed(ctx: &mut TxCtx) -> Result<Vec<Write>, HostError> {
    let mut out = Vec::new();
    let base = Arc::clone(&ctx.base);
    for (ns, key, new) in ctx.writes.changes()? {
        // A repeated read answers from the set: the value the run saw.
        let old = ctx.reads_mut().read(&*base, &ns, &key)?;
        if old != new {
            out.push(Write { ns, key, old, new });
        }
    }
    Ok(out)
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

/// Charges a frame and `code_len` bytes of new code.
fn charge_code(store: &mut Store<TxCtx>, code_len: usize) -> wasmtime::Result<()> {
    let bytes = u64::try_from(code_len).unwrap_or(u64::MAX);
    charge(
        &mut *store,
        FRAME_GAS.saturating_add(DEPLOY_BYTE_GAS.saturating_mul(bytes)),
    )
}

/// Contract `name`'s registry entry, as this run sees it.
fn registry_entry(
    store: &mut Store<TxCtx>,
    name: &str,
) -> wasmtime::Result<Option<ContractRecord>> {
    store
        .data_mut()
        .contract(name)
        .map_err(|e| wasmtime::Error::new(Abort::Host(e.into())))
}

fn run_deploy(
    store: &mut Store<TxCtx>,
    name: &str,
    record: ContractRecord,
    init_args: &[u8],
    code_len: usize,
    setup: &RunSetup,
) -> RunOutcome {
    charge_code(store, code_len)?;
    if registry_entry(store, name)?.is_some() {
        return Ok(Err(format!(
            "deploy failed: contract name {name} is already taken"
        )));
    }
    store
        .data_mut()
        .writes
        .put(REGISTRY_NS, name.as_bytes(), Some(record.encode()));
    let end = run_frame(
        &mut *store,
        name,
        crate::vm::abi::INIT_METHOD,
        init_args.to_vec(),
        Arc::clone(&setup.sender),
        FrameKind::Init,
    )?;
    match end {
        FrameEnd::Returned(output) => Ok(Ok(vec![CallResult {
            contract: name.to_owned(),
            method: crate::vm::abi::INIT_METHOD.to_owned(),
            output,
        }])),
        FrameEnd::Failed(message) => Ok(Err(format!("deploy failed: init of {name}: {message}"))),
    }
}

/// Why `sender` may not `act` on contract `name` (`None`: it is the admin).
fn refusal(record: &ContractRecord, name: &str, sender: &str, act: &str) -> Option<String> {
    match record.admin.as_deref() {
        None => Some(format!(
            "{act} failed: contract {name} has no admin, so nobody may {act} it"
        )),
        Some(admin) if admin != sender => Some(format!(
            "{act} failed: only the admin of {name} ({admin}) may {act} it, not {sender}"
        )),
        Some(_) => None,
    }
}

/// Gives `name` the code `code_hash` (its old code kept in its history) and runs that
/// code's `migrate`: a revert anywhere leaves the old code and state.
fn run_migrate(
    store: &mut Store<TxCtx>,
    name: &str,
    code_hash: CodeHash,
    args: &[u8],
    code_len: usize,
    setup: &RunSetup,
) -> RunOutcome {
    // Who may migrate is decided first: a refusal names that, never the gas.
    let Some(old) = registry_entry(store, name)? else {
        return Ok(Err(format!("migrate failed: unknown contract {name}")));
    };
    if let Some(why) = refusal(&old, name, &setup.sender, "migrate") {
        return Ok(Err(why));
    }
    charge_code(store, code_len)?;
    let ctx = store.data_mut();
    ctx.contracts.forget(name);
    let history = code_history_key(name, old.code_since);
    ctx.writes
        .put(REGISTRY_NS, &history, Some(old.code_hash.0.to_vec()));
    let new = ContractRecord {
        code_hash,
        code_since: setup.new_version,
        ..old
    };
    ctx.writes
        .put(REGISTRY_NS, name.as_bytes(), Some(new.encode()));
    let end = run_frame(
        &mut *store,
        name,
        MIGRATE_METHOD,
        args.to_vec(),
        Arc::clone(&setup.sender),
        FrameKind::Migrate,
    )?;
    match end {
        FrameEnd::Returned(output) => Ok(Ok(vec![CallResult {
            contract: name.to_owned(),
            method: MIGRATE_METHOD.to_owned(),
            output,
        }])),
        FrameEnd::Failed(message) => Ok(Err(format!(
            "migrate failed: {MIGRATE_METHOD} of {name}: {message}"
        ))),
    }
}

/// Makes `admin` the admin of `name` (`None`: nobody, for good).
fn run_set_admin(
    store: &mut Store<TxCtx>,
    name: &str,
    admin: Option<&str>,
    setup: &RunSetup,
) -> RunOutcome {
    let Some(old) = registry_entry(store, name)? else {
        return Ok(Err(format!("set-admin failed: unknown contract {name}")));
    };
    if let Some(why) = refusal(&old, name, &setup.sender, "set-admin") {
        return Ok(Err(why));
    }
    charge(&mut *store, FRAME_GAS)?;
    let ctx = store.data_mut();
    ctx.contracts.forget(name);
    let new = ContractRecord {
        admin: admin.map(Arc::from),
        ..old
    };
    ctx.writes
        .put(REGISTRY_NS, name.as_bytes(), Some(new.encode()));
    Ok(Ok(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SnapshotView, encode_stored_value, entry_key, versioned_key};
    use crate::storage::{Backend, MemoryBackend, Table, WriteBatch};
    use crate::vm::validate;

    /// A run over a store holding the `kv` contract and one key, with the contract's
    /// registry entry already in the writer's cache (as after an earlier transaction).
    fn run_kv(calls: &[Call]) -> Execution {
        let code = validate::wasm_bytes(include_bytes!("../../../contracts/wat/kv.wat")).unwrap();
        let runtime = Arc::new(Runtime::new(None).unwrap());
        let (hash, _) = runtime.prepare(&code).unwrap();
        let record = ContractRecord::deployed(hash, 1, None);
        let backend = MemoryBackend::new();
        let mut batch = WriteBatch::new();
        batch.put(Table::Code, &hash.0[..], &code[..]);
        let row = |ns, key: &[u8], v: &[u8]| {
            (
                versioned_key(&entry_key(ns, key), 1),
                encode_stored_value(Some(v)),
            )
        };
        for (k, v) in [
            row(REGISTRY_NS, b"kv", &record.encode()),
            row("kv", b"k1", b"a"),
        ] {
            batch.put(Table::State, k, v);
        }
        backend.commit(&batch).unwrap();
        let snapshot = backend.snapshot().unwrap();
        let mut contracts = ContractCache::default();
        contracts.insert("kv", record);
        let setup = RunSetup {
            runtime,
            code: Arc::clone(&snapshot),
            base: Arc::new(SnapshotView::new(snapshot, 1)),
            tx_id: Uuid::nil(),
            sender: Arc::from("s"),
            gas_limit: 10_000_000,
            new_version: 2,
            read_only: false,
            print_logs: false,
            contracts,
            access: None,
            log_access: false,
        };
        execute(setup, &Work::Calls(calls), None).unwrap().0
    }

    fn call(method: &str, args: &[u8]) -> Call {
        Call {
            contract: "kv".into(),
            method: method.into(),
            args: args.to_vec(),
        }
    }

    #[test]
    fn a_run_records_every_read_and_carries_old_values() {
        let run = run_kv(&[
            call("put", b"\x02k2new"),
            call("put", b"\x02k1b"),
            call("list", b"k"),
        ]);
        assert_eq!(run.status, Status::Committed, "{:?}", run.error);
        assert_eq!(run.results[2].output, b"\x02k1\x02k2");
        // Complete on its own: each changed key with the value it replaces.
        let writes: Vec<_> = run
            .writes
            .iter()
            .map(|w| (&w.key[..], w.old.as_deref(), w.new.as_deref()))
            .collect();
        assert_eq!(
            writes,
            [
                (&b"k1"[..], Some(&b"a"[..]), Some(&b"b"[..])),
                (&b"k2"[..], None, Some(&b"new"[..]))
            ]
        );
        // The registry read was a cache hit, recorded all the same; so is the code.
        let record = run.reads.recorded(REGISTRY_NS, b"kv").unwrap().unwrap();
        assert_eq!(ContractRecord::decode(record).unwrap().version, 1);
        assert_eq!(run.reads.code().len(), 1);
        // The old values were read through the view; the scan's steps are recorded with
        // what the base held (k1; the buffered k2 is the write set's, not a base read).
        assert_eq!(run.reads.recorded("kv", b"k1"), Some(Some(&b"a"[..])));
        assert_eq!(run.reads.recorded("kv", b"k2"), Some(None));
        let found: Vec<_> = run.reads.scans().iter().map(|s| s.found.clone()).collect();
        assert!(found.contains(&Some(b"k1".to_vec())), "{found:?}");
        assert!(
            found.contains(&None),
            "the scan's end is recorded: {found:?}"
        );
        assert_eq!(run.reads.point_reads(), 3);
    }

    #[test]
    fn a_reverted_run_has_no_writes_but_keeps_its_reads() {
        let run = run_kv(&[call("put", b"\x02k2new"), call("missing", b"")]);
        assert_eq!(run.status, Status::Reverted);
        assert!(run.writes.is_empty() && run.events.is_empty());
        assert!(run.reads.recorded(REGISTRY_NS, b"kv").is_some());
    }
}
