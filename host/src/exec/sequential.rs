//! The sequential executor: each transaction runs against the state the ones before it
//! left, and its batch is staged before the next one runs. [`run_and_stage`] is one
//! transaction of it, which a lone submitter calls directly (with a store made ready
//! ahead, when there is one).

use std::sync::Arc;

use crate::error::{InputError, SubmitError};
use crate::exec::{Env, Executor, Prepared, Staged, look_again};
use crate::ledger::events;
use crate::ledger::exactly_once::{Lookup, lookup, must_look_again};
use crate::ledger::head::{Head, Tip};
use crate::ledger::receipt::Receipt;
use crate::ledger::records::{COMMIT_KEYS, TxRecord, encode_history_entry, history_key};
use crate::ledger::transaction::{Transaction, TxBody};
use crate::state::{SnapshotView, StateView, state_row};
use crate::storage::{Table, WriteBatch};
use crate::types::{CodeHash, StateRoot};
use crate::vm::prewarm::early::Early;
use crate::vm::run::{Execution, RunSetup, Work, execute};

/// Runs a batch one transaction at a time, in order.
#[derive(Debug, Default)]
pub(crate) struct Sequential;

impl Executor for Sequential {
    fn execute(
        &self,
        env: &Env<'_>,
        head: &mut Head,
        batch: Vec<Prepared<'_>>,
    ) -> Vec<Result<Staged, SubmitError>> {
        let mut batch = batch;
        // The ids that must be looked up again, in one read first (each run below then
        // finds its own in the head's recent ids).
        let answered = match env.recent_ids && batch.len() > 1 {
            true => env
                .recover_if_needed(head)
                .and_then(|()| look_again(env, head, &mut batch)),
            false => Ok((0..batch.len()).map(|_| None).collect()),
        };
        let answered = match answered {
            Ok(answered) => answered,
            Err(e) => return batch.iter().map(|_| Err(e.clone().into())).collect(),
        };
        // Each run's store is dropped at once: kept, they would hold every turn to
        // execute, which the next run of the batch waits for.
        batch
            .into_iter()
            .zip(answered)
            .map(|(p, answer)| {
                if let Some(answer) = answer {
                    return answer;
                }
                let mut staged = run_and_stage(env, head, &p, None)?;
                staged.spent = None;
                Ok(staged)
            })
            .collect()
    }
}

/// Runs a prepared transaction against the head and stages its batch: the head then
/// includes it.
///
/// # Errors
/// [`SubmitError::Conflict`] for an id recorded since the lookup with other content,
/// bad input found only now, host failures (the head is then reloaded before its next
/// use).
pub(crate) fn run_and_stage(
    env: &Env<'_>,
    head: &mut Head,
    p: &Prepared<'_>,
    early: Option<Early>,
) -> Result<Staged, SubmitError> {
    env.recover_if_needed(head)?;
    // Only an id staged since the lookup can be recorded now.
    let recent = env.recent_ids.then_some(&head.recent);
    if must_look_again(recent, &p.tx.id, p.seen) {
        let view = env.committer.view_of(Table::Txs, p.tx.id.as_bytes())?;
        if let Lookup::Recorded { receipt, wait_for } = lookup(view, &p.tx.id, &p.content_hash)? {
            return Ok(Staged {
                receipt,
                wait_for,
                spent: None,
            });
        }
    }
    let tx = &*p.tx;
    let code_hash = match (tx.body.code(), p.code_hash) {
        (Some(code), None) => Some(env.runtime.prepare(code).map_err(InputError::from)?.0),
        (_, hash) => hash,
    };
    let snapshot = env.committer.snapshot()?;
    let base: Arc<dyn StateView> = Arc::new(SnapshotView::new(Arc::clone(&snapshot), head.version));
    let setup = RunSetup {
        runtime: Arc::clone(env.runtime),
        code: Arc::clone(&snapshot),
        base,
        tx_id: tx.id,
        sender: Arc::from(tx.sender.as_str()),
        gas_limit: tx.gas_limit,
        new_version: head.version + 1,
        read_only: false,
        print_logs: env.print_logs,
        contracts: std::mem::take(&mut head.contracts),
        access: p.tx.access.clone(),
        log_access: false,
    };
    let (mut run, spent) = execute(setup, &work_of(tx, code_hash), early)?;
    head.contracts = std::mem::take(&mut run.contracts);
    // Only entries just read from storage: the others are noted already.
    for (name, code) in head.contracts.take_new() {
        env.hints.note(&name, code);
    }
    let code_to_store = match code_hash {
        Some(hash) => snapshot
            .get(Table::Code, &hash.0)?
            .is_none()
            .then_some(hash),
        None => None,
    };
    // Release this run's snapshot first: an in-memory backend then commits in place.
    drop(snapshot);
    let mut staged = stage(env, head, p, run, code_to_store)?;
    staged.spent = Some(spent);
    Ok(staged)
}

/// What the run of `tx` does; a deploy's or migrate's code must be prepared
/// (`code_hash`).
pub(crate) fn work_of(tx: &Transaction, code_hash: Option<CodeHash>) -> Work<'_> {
    let prepared = || code_hash.expect("a deploy's or migrate's code is prepared first");
    match &tx.body {
        TxBody::Calls(calls) => Work::Calls(calls),
        TxBody::Deploy {
            name,
            code,
            init_args,
            admin,
        } => Work::Deploy {
            name,
            code_hash: prepared(),
            init_args,
            code_len: code.len(),
            admin: admin.as_deref(),
        },
        TxBody::Migrate { name, code, args } => Work::Migrate {
            name,
            code_hash: prepared(),
            args,
            code_len: code.len(),
        },
        TxBody::SetAdmin { name, admin } => Work::SetAdmin {
            name,
            admin: admin.as_deref(),
        },
    }
}

/// Stages the run of `p` as the head's next version, as one batch of its own (see
/// [`add_rows`] and [`finish_batch`]).
///
/// # Errors
/// When the batch cannot be staged (the head is then reloaded before its next use).
pub(crate) fn stage(
    env: &Env<'_>,
    head: &mut Head,
    p: &Prepared<'_>,
    run: Execution,
    code_to_store: Option<CodeHash>,
) -> Result<Staged, SubmitError> {
    // The lattice changes in place, not in a copy: until the batch is staged, a
    // failure leaves the head stale (reloaded before the lock's next use).
    head.stale = true;
    let mut batch = WriteBatch::new();
    batch.require(head.precondition());
    let version = head.version + 1;
    // The run's output carries each write's old value: nothing is read here.
    for w in &run.writes {
        let (old, new) = (w.old.as_deref(), w.new.as_deref());
        head.lattice
            .update_cached(&mut head.entry_cache, &w.ns, &w.key, old, new);
    }
    let root = head.lattice.root();
    let receipt = add_rows(version, p, run, code_to_store, root, &mut batch);
    let seq = finish_batch(env, head, batch, version, receipt.state_root, &[p.tx.id])?;
    Ok(Staged {
        receipt,
        wait_for: Some(seq),
        spent: None,
    })
}

/// Adds the run of `p` to `batch` as `version`, the state root after it being `root`:
/// its writes, the deployed code under `code_to_store` (when the store lacks it), the
/// receipt, the records and the events index rows of its receipt. Reads nothing and
/// needs no head, so the workers of a parallel batch build their runs' rows themselves.
/// Returns the receipt.
pub(crate) fn add_rows(
    version: u64,
    p: &Prepared<'_>,
    run: Execution,
    code_to_store: Option<CodeHash>,
    root: StateRoot,
    batch: &mut WriteBatch,
) -> Receipt {
    let tx = &*p.tx;
    let mut buf = Vec::with_capacity(if run.writes.is_empty() { 0 } else { 128 });
    for w in &run.writes {
        let (key, value) = state_row(&w.ns, &w.key, version, w.new.as_deref(), &mut buf);
        batch.push((Table::State, key, Some(value)));
    }
    if let (Some(code), Some(hash)) = (tx.body.code(), code_to_store) {
        batch.put(Table::Code, hash.0.to_vec(), code.to_vec());
    }
    let record = TxRecord {
        version,
        content_hash: p.content_hash,
        receipt: Receipt {
            tx_id: tx.id,
            status: run.status,
            error: run.error,
            version,
            results: run.results,
            events: run.events,
            gas_used: run.gas_used,
            state_root: root,
            duplicate: false,
        },
    };
    // Slices, each copied once into the batch's shared bytes.
    batch.put(Table::Txs, &tx.id.as_bytes()[..], &record.encode()[..]);
    let entry = encode_history_entry(&tx.id, &p.content);
    batch.put(Table::History, &history_key(version)[..], &entry[..]);
    // In the same batch as the receipt: the index holds exactly the recorded events.
    events::add_rows(&record.receipt, batch);
    record.receipt
}

/// Stages `batch`, which takes the head to `version` (with `root`) and records `ids`:
/// the head's meta rows go in once, however many transactions the batch holds.
/// Returns its sequence number.
///
/// # Errors
/// When the batch cannot be staged (the head stays stale and is reloaded).
pub(crate) fn finish_batch(
    env: &Env<'_>,
    head: &mut Head,
    mut batch: WriteBatch,
    version: u64,
    root: StateRoot,
    ids: &[uuid::Uuid],
) -> Result<u64, SubmitError> {
    let keys = &*COMMIT_KEYS;
    let version_bytes: Arc<[u8]> = Arc::from(&version.to_le_bytes()[..]);
    let meta = |key: &Arc<[u8]>, value| (Table::Meta, Arc::clone(key), Some(value));
    batch.push(meta(&keys.version, Arc::clone(&version_bytes)));
    batch.push(meta(&keys.lattice, Arc::from(head.lattice.as_bytes())));
    // Every version up to the head's was indexed at open: so is every one up to this.
    batch.push(meta(&keys.events_indexed, version_bytes));
    let seq = env.committer.stage(batch)?;
    head.stale = false;
    for id in ids {
        head.recent.note(seq, *id);
    }
    head.version = version;
    env.published.set(Tip {
        version,
        root,
        horizon: head.horizon,
    });
    Ok(seq)
}
