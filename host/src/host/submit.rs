//! Submission: a transaction is checked and its id looked up before any lock (a retry
//! is answered there), run and staged under the writer lock by the executor, and its
//! receipt handed out once its batch is durable.
//!
//! While another transaction holds the writer lock, a submitter instantiates its first
//! contract instead of waiting idle; a lone submitter takes the store the recycler made
//! ready and hands its spent one back (`vm/prewarm/`). Both are switches
//! (`HostOptions::prewarm`, `HostOptions::recycler`).

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Host, Prewarm, poisoned_head};
use crate::error::HostError;
use crate::error::{InputError, SubmitError};
use crate::exec::{
    Executor, Mode, Parallel, Prepared, Sequential, Simulated, Staged, run_and_stage, simulate,
};
use crate::host::options::Concurrency;
use crate::ledger::access::AccessSet;
use crate::ledger::exactly_once::{Lookup, lookup, lookup_many};
use crate::ledger::head::Head;
use crate::ledger::receipt::Receipt;
use crate::ledger::records::META_VERSION;
use crate::ledger::signature::authorize;
use crate::ledger::transaction::{Transaction, TxBody};
use crate::limits::{BATCH_TRANSACTIONS_MAX, STORE_RACE_RETRIES_MAX, WORKERS_MAX};
use crate::storage::{StorageError, Table};
use crate::types::CodeHash;
use crate::vm::prewarm::early::prepare_early;
use crate::vm::validate;

/// Transactions a batch holds at least for its preparation to be spread over threads.
const PARALLEL_PREPARE_MIN: usize = 64;

/// What [`Host::check`] found.
#[derive(Debug)]
pub enum Check {
    /// The id is recorded with the same content: its stored receipt, marked duplicate.
    Recorded(Receipt),
    /// The id is new: the transaction, checked, for [`Host::submit_checked`].
    New(CheckedTx),
}

/// A transaction checked, hashed and looked up by [`Host::check`].
pub struct CheckedTx(Prepared<'static>);

impl std::fmt::Debug for CheckedTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CheckedTx").field(&self.0.tx.id).finish()
    }
}

impl CheckedTx {
    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.0.tx
    }
}

/// A submission after its checks outside the writer lock.
enum Checked<'a> {
    /// Its id is recorded: the stored receipt answers it.
    Recorded(Staged),
    /// New as of the checks: to run under the writer lock.
    New(Prepared<'a>),
}

impl Host {
    /// Submits a transaction: executes it once and records it with its receipt, or
    /// returns the stored receipt of an earlier submission of the same id and content.
    /// Returns only once the transaction is durable.
    ///
    /// # Errors
    /// [`SubmitError::Rejected`] for bad input and [`SubmitError::Conflict`] for an id
    /// recorded with other content (both change nothing), [`SubmitError::Host`] when
    /// the host fails (nothing recorded).
    pub fn submit(&self, tx: &Transaction) -> Result<Receipt, SubmitError> {
        let mut runs = 0;
        loop {
            match self.submit_once(tx) {
                Err(e) if self.may_run_again(&e, &mut runs) => {}
                answer => {
                    self.release_if_ran_again(runs);
                    self.end_turn_if_idle();
                    return answer;
                }
            }
        }
    }

    /// After a run again under the commit lock (see `may_run_again`): lets go of the
    /// lock if no commit used it (the run found its id recorded, say).
    fn release_if_ran_again(&self, runs: u32) {
        if runs > 0 {
            self.committer.release();
        }
    }

    /// After a submission on a shared store: an idle host ends its turn to commit.
    fn end_turn_if_idle(&self) {
        self.committer.end_turn_if_idle();
    }

    /// Whether a submission that failed with `e` runs again: on a store that other
    /// hosts share, a commit that lost the race to another host's applied nothing, and
    /// the next run finds the id recorded (a duplicate) or runs against the new head.
    /// At most [`STORE_RACE_RETRIES_MAX`] times, after a pause that grows.
    fn may_run_again(&self, e: &SubmitError, runs: &mut u32) -> bool {
        if !self.runs_again(e, runs) {
            return false;
        }
        self.hold_to_run_again(*runs);
        true
    }

    /// The test of [`Host::may_run_again`]: counts the run when it is allowed.
    fn runs_again(&self, e: &SubmitError, runs: &mut u32) -> bool {
        if !lost_race(e) || *runs >= STORE_RACE_RETRIES_MAX || !self.committer.shared() {
            return false;
        }
        *runs += 1;
        true
    }

    /// The lock of [`Host::may_run_again`], for run number `runs`.
    fn hold_to_run_again(&self, runs: u32) {
        // Taking turns, first this host's turn (`storage/commit_turns.rs`): the commit lock held
        // while waiting for it would stall the host whose turn it is. Then run again
        // under the store's commit lock (the head's row): other hosts' commits wait for
        // this one, so it cannot lose the race again — without it, two busy hosts starve
        // one another (BENCHMARKS.md), and a host that does not take turns yet (it has
        // not lost a race) loses this one and so starts taking them. Where the lock
        // cannot be taken, it runs without, after a pause that spreads colliding hosts
        // out.
        if self.committer.takes_turns() {
            self.committer.take_turn();
        }
        if self.committer.hold(Table::Meta, META_VERSION).is_err() {
            let pause = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % u64::from(runs + 1);
            std::thread::sleep(std::time::Duration::from_millis(pause));
        }
    }

    /// One run of [`Host::submit`].
    fn submit_once(&self, tx: &Transaction) -> Result<Receipt, SubmitError> {
        let visit = self.recycler.as_ref().map(|r| r.visit());
        // A retry is answered without the writer lock.
        let prepared = match self.prepare(tx)? {
            Checked::Recorded(staged) => return self.acknowledge(staged),
            Checked::New(prepared) => prepared,
        };
        self.submit_prepared(prepared, visit)
    }

    /// Checks `tx` as [`Host::submit`] would and looks its id up, executing nothing:
    /// its stored receipt when the id is recorded with the same content (marked
    /// duplicate, handed out once durable), else the checked transaction, ready for
    /// [`Host::submit_checked`] without being checked and hashed again. A server
    /// answers retries with it before queueing anything.
    ///
    /// # Errors
    /// As [`Host::submit`]: [`SubmitError::Rejected`] for bad input,
    /// [`SubmitError::Conflict`] for an id recorded with other content.
    pub fn check(&self, tx: &Transaction) -> Result<Check, SubmitError> {
        let mut runs = 0;
        loop {
            let answer = match self.prepare(tx)? {
                Checked::Recorded(staged) => self.acknowledge(staged).map(Check::Recorded),
                Checked::New(prepared) => {
                    return Ok(Check::New(CheckedTx(prepared.into_owned())));
                }
            };
            // The id was found staged by this host, in a group that then lost the race
            // to another host's commit: it is recorded nowhere yet. Looked up again, it
            // is another host's duplicate, or new (and the writer, recovered, runs it).
            match answer {
                Err(e)
                    if lost_race(&e)
                        && self.committer.shared()
                        && runs < STORE_RACE_RETRIES_MAX =>
                {
                    runs += 1;
                }
                answer => return answer,
            }
        }
    }

    /// Submits transactions [`Host::check`] found new, in order, as [`Host::submit_all`]
    /// would (one alone takes [`Host::submit`]'s path). An id recorded since its check
    /// is found under the writer lock: a duplicate or a conflict, as always.
    pub fn submit_checked(&self, txs: Vec<CheckedTx>) -> Vec<Result<Receipt, SubmitError>> {
        // On a shared store, what loses a race to another host runs again from its
        // checks (`submit_all`): the copies are kept for that.
        let again: Vec<Transaction> = match self.committer.shared() {
            true => txs.iter().map(|c| c.tx().clone()).collect(),
            false => Vec::new(),
        };
        let mut results = self.submit_checked_once(txs);
        if !again.is_empty() {
            self.run_lost_again(&again, &mut results);
            self.end_turn_if_idle();
        }
        results
    }

    /// Runs again, as one batch in their order, those of `txs` whose result lost a race
    /// to another host's commit, until none did or the retries are spent.
    fn run_lost_again(&self, txs: &[Transaction], results: &mut [Result<Receipt, SubmitError>]) {
        let mut runs = 0;
        loop {
            let lost: Vec<usize> = (0..results.len())
                .filter(|&i| results[i].as_ref().is_err_and(lost_race))
                .collect();
            let Some(Err(first)) = lost.first().map(|&i| &results[i]) else {
                return;
            };
            if !self.runs_again(first, &mut runs) {
                return;
            }
            // Checked and looked up before the lock is held: other hosts' commits wait
            // for it.
            let batch: Vec<Transaction> = lost.iter().map(|&i| txs[i].clone()).collect();
            let checked = self.prepare_all(&batch);
            self.hold_to_run_again(runs);
            for (i, r) in lost.into_iter().zip(self.submit_prepared_all(checked)) {
                results[i] = r;
            }
            self.release_if_ran_again(runs);
        }
    }

    /// One run of [`Host::submit_checked`].
    fn submit_checked_once(&self, txs: Vec<CheckedTx>) -> Vec<Result<Receipt, SubmitError>> {
        let visit = self.recycler.as_ref().map(|r| r.visit());
        let mut batch: Vec<Prepared<'static>> = txs.into_iter().map(|c| c.0).collect();
        if batch.len() == 1 {
            let one = batch.pop().expect("one transaction");
            return vec![self.submit_prepared(one, visit)];
        }
        let arrival = self.committer.arrive();
        let n = batch.len();
        let ran = match self.writer() {
            Ok(mut head) => self.execute_batch(&mut head, batch),
            Err(e) => (0..n).map(|_| Err(e.clone().into())).collect(),
        };
        drop(arrival);
        drop(visit);
        ran.into_iter()
            .map(|s| s.and_then(|s| self.acknowledge(s)))
            .collect()
    }

    /// Runs and stages one prepared transaction under the writer lock, and hands out
    /// its receipt once durable.
    fn submit_prepared(
        &self,
        prepared: Prepared<'_>,
        visit: Option<crate::vm::prewarm::recycler::Visit<'_>>,
    ) -> Result<Receipt, SubmitError> {
        let prewarm = self.options.prewarm;
        let (mut staged, first_code, alone) = {
            let _arrival = self.committer.arrive()?;
            // While another transaction holds the writer lock, instantiate ahead instead
            // of waiting idle. With the lock free, a lone submitter takes the store the
            // recycler made ready; one that is not alone has nothing to overlap.
            let free = match prewarm {
                Prewarm::Always => None,
                _ => self.head.try_lock().map_err(|_| poisoned_head())?,
            };
            // With the writer busy, join the next batch (see `exec/gather.rs`).
            if free.is_none() && prewarm != Prewarm::Always && self.gathers() {
                let staged = self.gather(prepared)?;
                return self.acknowledge(staged);
            }
            let lone = visit.as_ref().is_some_and(|v| v.alone());
            // The hints are read only where a store may be made ahead.
            let (mut head, early, first_code, alone) = match (free, &self.recycler) {
                (Some(head), Some(recycler)) if lone => {
                    let first_code = self.first_code(&prepared);
                    let early = first_code.and_then(|c| recycler.take(c, true));
                    (head, early, first_code, true)
                }
                (Some(head), _) => (head, None, None, false),
                (None, _) if prewarm == Prewarm::Off => (self.head()?, None, None, false),
                (None, recycler) => {
                    let early = self.first_code(&prepared).and_then(|c| {
                        recycler
                            .as_ref()
                            .and_then(|r| r.take(c, false))
                            .or_else(|| prepare_early(&self.runtime, c))
                    });
                    (self.head()?, early, None, false)
                }
            };
            let staged = run_and_stage(&self.env(), &mut head, &prepared, early)?;
            (staged, first_code, alone)
        };
        // Outside the writer lock: freeing instances clears their memory. A lone
        // submitter has the recycler do it (and make its next store); while others
        // submit too, each does its own (see `recycler.rs`).
        if let Some(spent) = staged.spent.take() {
            match (&self.recycler, alone) {
                (Some(recycler), true) => recycler.recycle(spent, first_code),
                _ => drop(spent),
            }
        }
        self.acknowledge(staged)
    }

    /// Whether submitters that find the writer busy are run together as a batch.
    fn gathers(&self) -> bool {
        self.options.gather
            && self.options.concurrency != Concurrency::Sequential
            && self.options.workers >= 2
    }

    /// Leaves `prepared` for the next holder of the writer lock, or, holding it first,
    /// runs everything left as one batch and answers each waiter before letting go.
    fn gather(&self, prepared: Prepared<'_>) -> Result<Staged, SubmitError> {
        let slot = self.gathered.leave(prepared.into_owned());
        let mut head = self.head()?;
        if let Some(answer) = slot.take() {
            return answer;
        }
        let (batch, slots) = self.gathered.take_all();
        let results = self.execute_batch(&mut head, batch);
        for (waiter, answer) in slots.iter().zip(results) {
            waiter.set(answer);
        }
        drop(head);
        slot.take()
            .expect("the batch the lock holder ran held its own transaction")
    }

    /// The code of the contract `p` calls first, as far as the hints know it.
    fn first_code(&self, p: &Prepared<'_>) -> Option<CodeHash> {
        let TxBody::Calls(calls) = &p.tx.body else {
            return None;
        };
        self.hints.get(&calls.first()?.contract)
    }

    /// Submits transactions in order, as one batch: each runs against the state the
    /// ones before it left, and all of them are made durable together (one commit when
    /// the host is otherwise idle). One result per transaction, in order.
    pub fn submit_all(&self, txs: &[Transaction]) -> Vec<Result<Receipt, SubmitError>> {
        let mut results = self.submit_prepared_all(self.prepare_all(txs));
        if self.committer.shared() {
            self.run_lost_again(txs, &mut results);
            self.end_turn_if_idle();
        }
        results
    }

    /// The rest of [`Host::submit_all`] once `checked` are prepared.
    fn submit_prepared_all(
        &self,
        checked: Vec<Result<Checked<'_>, SubmitError>>,
    ) -> Vec<Result<Receipt, SubmitError>> {
        // Counted as a submission: a lone submitter's recycler must not spin beside a batch.
        let _visit = self.recycler.as_ref().map(|r| r.visit());
        let arrival = self.committer.arrive();
        let mut results: Vec<Option<Result<Staged, SubmitError>>> =
            Vec::with_capacity(checked.len());
        let mut batch = Vec::new();
        for c in checked {
            match c {
                Ok(Checked::New(p)) => {
                    batch.push(p);
                    results.push(None);
                }
                Ok(Checked::Recorded(staged)) => results.push(Some(Ok(staged))),
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut ran = match self.writer() {
            Ok(mut head) => self.execute_batch(&mut head, batch),
            // Each transaction of the batch fails with the writer's own error.
            Err(e) => batch.iter().map(|_| Err(e.clone().into())).collect(),
        }
        .into_iter();
        drop(arrival);
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| ran.next().expect("one result per transaction run")))
            .map(|s| s.and_then(|s| self.acknowledge(s)))
            .collect()
    }

    /// What `txs` would do against the latest state, in order, each seeing the ones
    /// before it: per transaction the receipt it would get and the access set it used
    /// (a duplicate: its stored receipt and no accesses). Records nothing.
    pub fn simulate(&self, txs: &[Transaction]) -> Vec<Result<Simulated, SubmitError>> {
        let checked: Vec<_> = txs.iter().map(|tx| self.prepare(tx)).collect();
        let mut runs = Vec::new();
        for c in &checked {
            if let Ok(Checked::New(p)) = c {
                runs.push(p);
            }
        }
        let ran = self
            .committer
            .snapshot()
            .map_err(HostError::from)
            .and_then(|snapshot| {
                let head = Head::read(&*snapshot)?;
                simulate(&self.env(), &head, snapshot, runs)
            });
        let mut ran = match ran {
            Ok(ran) => ran.into_iter(),
            Err(e) => return txs.iter().map(|_| Err(e.clone().into())).collect(),
        };
        checked
            .into_iter()
            .map(|c| match c {
                Ok(Checked::Recorded(staged)) => Ok(Simulated {
                    receipt: staged.receipt,
                    access: AccessSet::default(),
                }),
                Ok(Checked::New(_)) => Ok(ran.next().expect("one simulation per run")),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// Runs a batch with the executor the options choose, in pieces of at most
    /// `BATCH_TRANSACTIONS_MAX`.
    fn execute_batch(
        &self,
        head: &mut Head,
        mut batch: Vec<Prepared<'_>>,
    ) -> Vec<Result<Staged, SubmitError>> {
        let mode = match self.options.concurrency {
            Concurrency::Sequential => None,
            Concurrency::Optimistic => Some(Mode::Optimistic),
            Concurrency::Pessimistic => Some(Mode::Pessimistic),
        };
        let mut out = Vec::with_capacity(batch.len());
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(BATCH_TRANSACTIONS_MAX));
            let piece = std::mem::replace(&mut batch, rest);
            out.extend(match mode {
                None => Sequential.execute(&self.env(), head, piece),
                Some(mode) => Parallel {
                    mode,
                    workers: self.options.workers.clamp(1, WORKERS_MAX),
                    delays: self.options.scheduler_delays,
                    stats: &self.parallel_stats,
                }
                .execute(&self.env(), head, piece),
            });
        }
        out
    }

    /// [`Host::prepare`] of each of `txs`, in order. A long batch that runs in parallel
    /// is prepared in parallel too, in one contiguous share per worker (hashing is work
    /// the batch's workers would otherwise wait for).
    fn prepare_all<'a>(&self, txs: &'a [Transaction]) -> Vec<Result<Checked<'a>, SubmitError>> {
        // Spread over threads started for it only for work that outweighs starting them:
        // a signature to verify or code to compile. A plain call takes about half a
        // microsecond to check, and two threads started per stage made a batch of 1,000
        // transfers prepare in twice that time (BENCHMARKS.md). The kept helpers
        // (`helpers.rs`) start nothing: kept warm, with a store in memory, they take
        // every long batch.
        let in_memory = !self.committer.commits_in_groups();
        let spread = (crate::helpers::helpers_on() && in_memory)
            || txs
                .iter()
                .any(|tx| tx.body.code().is_some() || (self.authorize && tx.signature.is_some()));
        self.on_prepare_threads(spread, in_memory, txs, |share| self.prepare_share(share))
    }

    /// [`Host::prepare`] of each of `txs`, in order, with their ids looked up in one
    /// read of the store.
    fn prepare_share<'a>(&self, txs: &'a [Transaction]) -> Vec<Result<Checked<'a>, SubmitError>> {
        let checked: Vec<_> = txs.iter().map(|tx| self.check_input(tx)).collect();
        let keys: Vec<_> = checked
            .iter()
            .flatten()
            .map(|p| (p.tx.id, p.content_hash))
            .collect();
        // A lookup that failed (a committer that failed gives no view) is left to the
        // writer, which recovers and looks the ids up itself.
        let mut found: std::vec::IntoIter<Option<_>> = match lookup_many(&self.committer, &keys) {
            Ok(found) => found.into_iter().map(Some).collect::<Vec<_>>(),
            Err(_) => keys.iter().map(|_| None).collect(),
        }
        .into_iter();
        checked
            .into_iter()
            .map(|c| {
                let p = c?;
                let found = found.next().expect("one lookup per checked transaction");
                self.finish_prepare(p, found.transpose()?)
            })
            .collect()
    }

    /// `f` of `txs`: on this thread, or for a long batch that runs in parallel and is
    /// worth `spread`ing, of one contiguous share per worker, on this thread and helpers
    /// (`helpers.rs`, kept `warm` afterwards), the shares' outputs joined in order.
    fn on_prepare_threads<'a, O: Send>(
        &self,
        spread: bool,
        warm: bool,
        txs: &'a [Transaction],
        f: impl Fn(&'a [Transaction]) -> Vec<O> + Sync,
    ) -> Vec<O> {
        let workers = self.options.workers.clamp(1, WORKERS_MAX);
        if !spread
            || self.options.concurrency == Concurrency::Sequential
            || workers < 2
            || txs.len() < PARALLEL_PREPARE_MIN
        {
            return f(txs);
        }
        let shares: Vec<&[Transaction]> = txs.chunks(txs.len().div_ceil(workers)).collect();
        let outs: Vec<Mutex<Vec<O>>> = shares.iter().map(|_| Mutex::new(Vec::new())).collect();
        crate::helpers::run_on_helpers(shares.len(), warm, &|i| *lock(&outs[i]) = f(shares[i]));
        outs.into_iter()
            .flat_map(|o| o.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect()
    }

    /// Checks input, converts WAT, hashes content, looks the id up and prepares code: all
    /// before any lock.
    fn prepare<'a>(&self, tx: &'a Transaction) -> Result<Checked<'a>, SubmitError> {
        let p = self.check_input(tx)?;
        // Looked up here, out of the writer's way; under the lock, the head's recent ids
        // tell whether the id was staged since, without a second lookup. A committer
        // that failed gives no view: the writer recovers it, then looks up itself.
        let found = match self.committer.view_of(Table::Txs, p.tx.id.as_bytes()) {
            Ok(view) => Some(lookup(view, &p.tx.id, &p.content_hash)?),
            Err(_) => None,
        };
        self.finish_prepare(p, found)
    }

    /// The checks of [`Host::prepare`] before the lookup: input, WAT converted, content
    /// hashed, signature verified.
    fn check_input<'a>(&self, tx: &'a Transaction) -> Result<Prepared<'a>, SubmitError> {
        let tx = match tx.body.code() {
            Some(code) if !code.starts_with(b"\0asm") => {
                let wasm = validate::wasm_bytes(code).map_err(InputError::from)?;
                let mut tx = tx.clone();
                *tx.body.code_mut().expect("it carries code") = wasm;
                Cow::Owned(tx)
            }
            _ => Cow::Borrowed(tx),
        };
        tx.check()?;
        let content = tx.encode_content();
        let content_hash = Transaction::hash_content(&content);
        // Outside any lock, and spread over threads for a long batch, like the rest.
        if self.authorize {
            authorize(
                &self.host_id,
                &tx.id,
                &tx.sender,
                tx.signature.as_deref(),
                &content_hash,
            )?;
        }
        Ok(Prepared {
            tx,
            content,
            content_hash,
            code_hash: None,
            seen: None,
        })
    }

    /// The rest of [`Host::prepare`] once the id was looked up (`found`; `None`: no
    /// lookup could be made): a recorded id's receipt, or the code prepared.
    fn finish_prepare<'a>(
        &self,
        mut prepared: Prepared<'a>,
        found: Option<Lookup>,
    ) -> Result<Checked<'a>, SubmitError> {
        match found {
            Some(Lookup::Recorded { receipt, wait_for }) => {
                return Ok(Checked::Recorded(Staged {
                    receipt,
                    wait_for,
                    spent: None,
                }));
            }
            Some(Lookup::New { seen }) => prepared.seen = Some(seen),
            None => {}
        }
        if let Some(code) = prepared.tx.body.code() {
            prepared.code_hash = Some(self.runtime.prepare(code).map_err(InputError::from)?.0);
        }
        Ok(Checked::New(prepared))
    }

    /// Hands out a receipt once its batch is durable.
    fn acknowledge(&self, staged: Staged) -> Result<Receipt, SubmitError> {
        if let Some(seq) = staged.wait_for {
            self.committer.wait_durable(seq)?;
        }
        Ok(staged.receipt)
    }
}

/// Whether `e` is a commit that lost the race to another host's (nothing applied).
fn lost_race(e: &SubmitError) -> bool {
    matches!(
        e,
        SubmitError::Host(HostError::Storage(StorageError::Conflict(_)))
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
