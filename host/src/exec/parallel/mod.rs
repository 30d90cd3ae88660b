//! The parallel executors (interface §5): a batch's transactions run on worker threads
//! and are committed in batch order, with exactly the results of running them one at a
//! time.
//!
//! - **Optimistic** ([`Mode::Optimistic`]): Block-STM. Every transaction runs
//!   speculatively against the multi-version map ([`mv_map`]) through its own view
//!   ([`view`]), which records where each read came from and what each `storage_next`
//!   step found ([`read_set`]); the scheduler ([`scheduler`]) validates those reads and re-runs a
//!   transaction whose reads changed, and stops a run that meets an estimate until the
//!   transaction it depends on has run again.
//! - **Pessimistic** ([`Mode::Pessimistic`]): the lock table ([`lock_table`]) orders each
//!   transaction after the earlier ones whose declared access sets overlap its own; the
//!   others run at once. A transaction without a set runs alone.
//!
//! Both end the same way: each transaction's state-root change is hashed on the workers
//! (the 2 KiB expansion of every changed entry), then the runs are staged in order on
//! the caller's thread (`sequential::stage`), where adding a lattice is all that is left.
//! A host failure in any run, or the incarnation cap, falls back to the sequential
//! executor for the whole batch: nothing is staged before the parallel part is over.

mod lock_table;
mod mv_map;
mod read_set;
mod roots;
mod scheduler;
mod view;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};

use mv_map::MvMap;
use read_set::Reads;
use roots::Roots;
use scheduler::{Scheduler, Task};
use view::{At, TxView};

use crate::error::{HostError, SubmitError};
use crate::exec::sequential::{add_rows, finish_batch, work_of};
use crate::exec::{Env, Executor, Prepared, Sequential, Staged, look_again};
use crate::ledger::access::AccessSet;
use crate::ledger::head::Head;
use crate::ledger::receipt::Receipt;
use crate::ledger::transaction::TxBody;
use crate::state::registry::ContractCache;
use crate::state::{EntryCache, LtHash, SnapshotView, StateView, entry_key};
use crate::storage::{Snapshot, StorageError, Table, WriteBatch};
use crate::types::{CodeHash, StateRoot};
use crate::vm::run::{Execution, RunSetup, execute};

/// Asks for a task that found none before an optimistic worker yields its vCPU, in
/// asks: a miss is nearly always a moment's wait, and a yield is a syscall.
const MISSES_BEFORE_YIELD: u32 = 64;

/// How a parallel batch controls concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Optimistic,
    Pessimistic,
}

/// Runs batches on `workers` threads under `mode`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parallel<'a> {
    pub mode: Mode,
    pub workers: usize,
    /// Seed of the scheduler's random delays (tests).
    pub delays: Option<u64>,
    pub stats: &'a ParallelStats,
}

/// What a host's parallel batches did, since it opened.
#[derive(Debug, Default)]
pub struct ParallelStats {
    batches: AtomicU64,
    fallbacks: AtomicU64,
    reexecutions: AtomicU64,
    run_nanos: AtomicU64,
    commit_nanos: AtomicU64,
    idle_nanos: AtomicU64,
}

impl ParallelStats {
    /// Batches run in parallel (not counting those that fell back).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Batches that fell back to sequential (the incarnation cap, a host failure).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Runs beyond the first of each transaction, over every parallel batch.
    pub fn reexecutions(&self) -> u64 {
        self.reexecutions.load(Ordering::Relaxed)
    }

    /// Time the parallel part took (execution, validation, state roots), in ns.
    pub fn run_nanos(&self) -> u64 {
        self.run_nanos.load(Ordering::Relaxed)
    }

    /// Time the in-order part took (the workers' results gathered, the rows staged, the
    /// batch's maps freed: all on one thread), in ns.
    pub fn commit_nanos(&self) -> u64 {
        self.commit_nanos.load(Ordering::Relaxed)
    }

    /// Time the workers spent in the parallel part with no task to run, summed over the
    /// workers, in ns: waiting for a dependency to run again, or for the batch's last
    /// runs (optimistic); waiting for an earlier transaction of an overlapping set
    /// (pessimistic).
    pub fn idle_nanos(&self) -> u64 {
        self.idle_nanos.load(Ordering::Relaxed)
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A finished run of one transaction of the batch.
struct Output {
    run: Execution,
    reads: Reads,
    /// The entries its writes went to in the map.
    written: Vec<Vec<u8>>,
}

/// Why a run gave no output.
enum RunFail {
    /// It met an estimate of that transaction.
    Blocked(usize),
    Host(HostError),
}

/// What every run of the batch shares.
struct Batch<'a, 'p> {
    env: &'a Env<'a>,
    txs: Vec<&'a Prepared<'p>>,
    mv: Arc<MvMap>,
    base: Arc<dyn StateView>,
    code: Arc<dyn Snapshot>,
    head_version: u64,
    head_contracts: &'a ContractCache,
    outputs: Vec<Mutex<Option<Output>>>,
    failure: Mutex<Option<HostError>>,
    /// The code each run's deploy must store (the store lacks it).
    code_to_store: Vec<Option<CodeHash>>,
    /// Each run's receipt, once its rows are built.
    receipts: Vec<Mutex<Option<Receipt>>>,
    /// Each worker's rows, by worker (shares are contiguous, in worker order).
    rows: Mutex<Vec<(usize, WriteBatch)>>,
}

/// How each transaction of the batch is answered.
enum Plan {
    /// Without running it (recorded since its lookup).
    Answered(Result<Staged, SubmitError>),
    /// By its run (the next of the batch's runs).
    Run,
    /// As the same id earlier in the batch, run `k`: a duplicate or a conflict.
    Again(usize),
}

/// What the parallel part of a batch leaves for the in-order part.
struct Ran {
    /// One per run, in order.
    receipts: Vec<Receipt>,
    /// Every run's rows.
    rows: WriteBatch,
    /// The lattice after the last run.
    lattice: LtHash,
    /// When the last worker was done.
    parallel_done: std::time::Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// A transaction's answer before the batch is staged.
enum Answer {
    Done(Result<Staged, SubmitError>),
    /// Its run's receipt, once staged.
    Run,
    /// A duplicate of a run of the batch, durable with it.
    Again(Receipt),
}

impl Executor for Parallel<'_> {
    fn execute(
        &self,
        env: &Env<'_>,
        head: &mut Head,
        batch: Vec<Prepared<'_>>,
    ) -> Vec<Result<Staged, SubmitError>> {
        // One worker still runs the parallel executor: what its machinery costs.
        if batch.len() < 2 {
            return Sequential.execute(env, head, batch);
        }
        let mut batch = batch;
        match self.try_execute(env, head, &mut batch) {
            Some(results) => {
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                results
            }
            None => {
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                Sequential.execute(env, head, batch)
            }
        }
    }
}

impl Parallel<'_> {
    /// The batch in parallel, or `None` to run it sequentially instead (before anything
    /// was staged).
    fn try_execute(
        &self,
        env: &Env<'_>,
        head: &mut Head,
        batch: &mut [Prepared<'_>],
    ) -> Option<Vec<Result<Staged, SubmitError>>> {
        // Only an id staged since its lookup can be recorded now (as `run_and_stage`):
        // those are looked up again, all in one read.
        let answered = env
            .recover_if_needed(head)
            .and_then(|()| look_again(env, head, batch));
        let answered = match answered {
            Ok(answered) => answered,
            Err(e) => return Some(batch.iter().map(|_| Err(e.clone().into())).collect()),
        };
        let mut plan = Vec::with_capacity(batch.len());
        let mut runs: Vec<&Prepared<'_>> = Vec::with_capacity(batch.len());
        let mut first_of: HashMap<uuid::Uuid, usize> = HashMap::with_capacity(batch.len());
        for (p, answer) in batch.iter().zip(answered) {
            if let Some(&k) = first_of.get(&p.tx.id) {
                plan.push(Plan::Again(k));
                continue;
            }
            if let Some(answer) = answer {
                plan.push(Plan::Answered(answer));
                continue;
            }
            // A change of a registry entry is run in order: the workers' registry caches
            // would not see it (see `ContractCache`).
            if (p.tx.body.code().is_some() && p.code_hash.is_none()) || p.tx.body.changes_registry()
            {
                return None;
            }
            first_of.insert(p.tx.id, runs.len());
            plan.push(Plan::Run);
            runs.push(p);
        }
        if runs.is_empty() {
            // Every one answered without running (all recorded since their lookups).
            return Some(
                plan.into_iter()
                    .map(|step| match step {
                        Plan::Answered(r) => r,
                        Plan::Run | Plan::Again(_) => unreachable!("no runs, no repeats of one"),
                    })
                    .collect(),
            );
        }
        // The parallel part and the in-order part, timed for `semel bench`.
        let t0 = std::time::Instant::now();
        // Lent to the workers, which read it and then take in what they expanded.
        let cache = RwLock::new(std::mem::take(&mut head.entry_cache));
        let ran = self.run_all(env, head, &cache, runs.clone());
        head.entry_cache = cache.into_inner().unwrap_or_else(|e| e.into_inner());
        let ran = ran?;
        let t1 = ran.parallel_done;
        // The workers built the rows; staged once, in order. The plan answers repeats
        // from the runs they repeat.
        head.stale = true;
        let mut staged_batch = WriteBatch::new();
        staged_batch.require(head.precondition());
        staged_batch.append(ran.rows);
        let receipts = ran.receipts;
        let version = head.version + u64::try_from(receipts.len()).expect("a batch fits in u64");
        let mut answers = Vec::with_capacity(plan.len());
        for (p, step) in batch.iter().zip(plan) {
            answers.push(match step {
                Plan::Answered(r) => Answer::Done(r),
                Plan::Run => Answer::Run,
                Plan::Again(k) if runs[k].content_hash == p.content_hash => {
                    let mut receipt = receipts[k].clone();
                    receipt.duplicate = true;
                    Answer::Again(receipt)
                }
                Plan::Again(k) => Answer::Done(Err(SubmitError::Conflict {
                    id: p.tx.id,
                    version: receipts[k].version,
                })),
            });
        }
        head.lattice = ran.lattice;
        let root = receipts.last().map(|r| r.state_root);
        let ids: Vec<_> = runs.iter().map(|p| p.tx.id).collect();
        let seq = match root {
            Some(root) => finish_batch(env, head, staged_batch, version, root, &ids).map(Some),
            None => Ok(None),
        };
        let mut receipts = receipts.into_iter();
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match (answer, &seq) {
                (Answer::Done(r), _) => r,
                (Answer::Again(receipt), Ok(seq)) => Ok(Staged {
                    receipt,
                    wait_for: *seq,
                    spent: None,
                }),
                (Answer::Run, Ok(seq)) => Ok(Staged {
                    receipt: receipts.next().expect("one receipt per run"),
                    wait_for: *seq,
                    spent: None,
                }),
                (Answer::Again(_) | Answer::Run, Err(e)) => Err(copy_error(e)),
            });
        }
        self.stats
            .run_nanos
            .fetch_add(nanos(t1 - t0), Ordering::Relaxed);
        self.stats
            .commit_nanos
            .fetch_add(nanos(t1.elapsed()), Ordering::Relaxed);
        Some(results)
    }

    /// Runs `work(w)` for each worker `w`: worker 0 on this thread, the others on the
    /// process's helper threads (`helpers.rs`), kept warm between batches of a store
    /// in memory.
    fn on_workers(&self, env: &Env<'_>, work: impl Fn(usize) + Sync) {
        let warm = !env.committer.commits_in_groups();
        crate::helpers::run_on_helpers(self.workers, warm, &work);
    }

    /// Runs `runs` to their receipts and rows, with `cache` the writer's entry cache
    /// (the head's, lent). `None`: run them sequentially instead.
    fn run_all(
        &self,
        env: &Env<'_>,
        head: &Head,
        cache: &RwLock<EntryCache>,
        runs: Vec<&Prepared<'_>>,
    ) -> Option<Ran> {
        let snapshot = env.committer.snapshot().ok()?;
        let n = runs.len();
        let batch = Batch::new(env, head, runs, snapshot).ok()?;
        let roots = Roots::new(n, self.workers);
        let hash = |w: usize, go: bool| {
            let mut rows = WriteBatch::new();
            let writes = |i: usize, f: &mut dyn FnMut(&[crate::vm::run::Write])| {
                batch.with_writes(i, f);
            };
            roots.sum(w, go, &read(cache), writes);
            let done = |i: usize, root| batch.add_rows(i, root, &mut rows);
            let first = roots.hand_on(w, go, &head.lattice, done);
            lock(&batch.rows).push((w, rows));
            if first {
                // The first worker done tidies up while the others finish their shares,
                // off the in-order thread: the writer's cache takes in the lanes the
                // workers expanded, and the map, which no run reads any more, is freed.
                let mut cache = cache.write().unwrap_or_else(|e| e.into_inner());
                for (local, dead) in roots.take_caches() {
                    cache.absorb(local, &dead);
                }
                drop(cache);
                batch.mv.clear();
            }
        };
        let ok = match self.mode {
            Mode::Optimistic => {
                let mut scheduler = Scheduler::new(n, self.workers);
                if let Some(seed) = self.delays {
                    scheduler = scheduler.with_delays(seed);
                }
                self.on_workers(env, |w| {
                    let idle = batch.optimistic_worker(&scheduler);
                    self.stats.idle_nanos.fetch_add(idle, Ordering::Relaxed);
                    hash(w, !scheduler.halted());
                });
                let again = scheduler.incarnations().saturating_sub(n);
                self.stats
                    .reexecutions
                    .fetch_add(u64::try_from(again).unwrap_or(u64::MAX), Ordering::Relaxed);
                !scheduler.halted()
            }
            Mode::Pessimistic => {
                let sets: Vec<_> = batch
                    .txs
                    .iter()
                    .map(|p| match p.tx.body {
                        TxBody::Calls(_) => p.tx.access.as_deref(),
                        // A deploy writes the registry, which no set declares (a batch
                        // with a migrate or set-admin runs in order).
                        TxBody::Deploy { .. }
                        | TxBody::Migrate { .. }
                        | TxBody::SetAdmin { .. } => None,
                    })
                    .collect();
                let mut schedule = DagSchedule::new(&lock_table::dependencies(&sets));
                schedule.delays = self.delays.map(|seed| AtomicU64::new(seed | 1));
                self.on_workers(env, |w| {
                    let idle = batch.pessimistic_worker(&schedule);
                    self.stats.idle_nanos.fetch_add(idle, Ordering::Relaxed);
                    hash(w, !schedule.halted());
                });
                !schedule.halted()
            }
        };
        let parallel_done = std::time::Instant::now();
        let failed = lock(&batch.failure).is_some();
        if !ok || failed {
            return None;
        }
        let lattice = roots.finish(&head.lattice)?;
        let receipts = batch
            .receipts
            .into_iter()
            .map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect::<Option<Vec<_>>>()?;
        let mut shares = batch.rows.into_inner().unwrap_or_else(|e| e.into_inner());
        shares.sort_unstable_by_key(|(w, _)| *w);
        let mut rows = WriteBatch::new();
        for (_, share) in shares {
            rows.append(share);
        }
        Some(Ran {
            receipts,
            rows,
            lattice,
            parallel_done,
        })
    }
}

impl<'a, 'p> Batch<'a, 'p> {
    /// The batch of `runs` over `snapshot` at the head.
    fn new(
        env: &'a Env<'a>,
        head: &'a Head,
        runs: Vec<&'a Prepared<'p>>,
        snapshot: Arc<dyn Snapshot>,
    ) -> Result<Self, StorageError> {
        let mut deployed = HashMap::new();
        let mut code_to_store = Vec::with_capacity(runs.len());
        for p in &runs {
            let hash = match (p.tx.body.code(), p.code_hash) {
                (Some(code), Some(hash)) => {
                    deployed.insert(hash.0, code.to_vec());
                    let stored = snapshot.get(Table::Code, &hash.0)?.is_some();
                    (!stored).then_some(hash)
                }
                _ => None,
            };
            code_to_store.push(hash);
        }
        let n = runs.len();
        let batch = Batch {
            env,
            txs: runs,
            mv: Arc::new(MvMap::default()),
            base: Arc::new(match env.remember_base && env.committer.shared() {
                true => SnapshotView::remembering(Arc::clone(&snapshot), head.version),
                false => SnapshotView::new(Arc::clone(&snapshot), head.version),
            }),
            code: Arc::new(BatchCode { snapshot, deployed }),
            head_version: head.version,
            head_contracts: &head.contracts,
            outputs: (0..n).map(|_| Mutex::new(None)).collect(),
            failure: Mutex::new(None),
            code_to_store,
            receipts: (0..n).map(|_| Mutex::new(None)).collect(),
            rows: Mutex::new(Vec::new()),
        };
        Ok(batch)
    }

    /// Runs transaction `txn` of the batch against the map.
    fn run(
        &self,
        txn: usize,
        track: bool,
        log_access: bool,
        cache: &mut ContractCache,
    ) -> Result<(Execution, Reads), RunFail> {
        let p = self.txs[txn];
        let tx = &*p.tx;
        let offset = u64::try_from(txn).expect("a batch index fits in u64");
        let view = Arc::new(TxView {
            mv: Arc::clone(&self.mv),
            base: Arc::clone(&self.base),
            txn,
            version: self.head_version + offset,
            track,
            reads: Mutex::new(Reads::default()),
        });
        let setup = RunSetup {
            runtime: Arc::clone(self.env.runtime),
            code: Arc::clone(&self.code),
            base: Arc::clone(&view) as Arc<dyn StateView>,
            tx_id: tx.id,
            sender: Arc::from(tx.sender.as_str()),
            gas_limit: tx.gas_limit,
            new_version: self.head_version + offset + 1,
            read_only: false,
            print_logs: self.env.print_logs,
            contracts: std::mem::take(cache),
            access: p.tx.access.clone(),
            log_access,
        };
        let result = execute(setup, &work_of(tx, p.code_hash), None);
        let reads = std::mem::take(&mut *lock(&view.reads));
        // A read that met an estimate ends the run as a host error no frame can catch;
        // should one ever be swallowed, the run still saw a value it must not use, so it
        // waits for its dependency all the same.
        match (result, reads.blocked) {
            (Ok((mut run, spent)), None) => {
                drop(spent);
                // Keep only entries of contracts deployed before the batch: an entry a
                // speculative deploy made may never be committed.
                *cache = std::mem::take(&mut run.contracts);
                cache.retain_upto(self.head_version);
                Ok((run, reads))
            }
            (_, Some(j)) => {
                *cache = self.head_contracts.clone_upto(self.head_version);
                Err(RunFail::Blocked(j))
            }
            (Err(e), None) => {
                *cache = self.head_contracts.clone_upto(self.head_version);
                Err(RunFail::Host(e))
            }
        }
    }

    fn fail(&self, e: HostError) {
        *lock(&self.failure) = Some(e);
    }

    /// Block-STM's worker loop. Returns the time it had no task, in ns.
    fn optimistic_worker(&self, scheduler: &Scheduler) -> u64 {
        let mut cache = self.head_contracts.clone_upto(self.head_version);
        let mut task = None;
        let mut idle = std::time::Duration::ZERO;
        // Since when asks have found no task, and how many have.
        let mut missing: Option<std::time::Instant> = None;
        let mut misses = 0u32;
        while !scheduler.done() {
            task = task.or_else(|| scheduler.next_task());
            if task.is_some()
                && let Some(since) = missing.take()
            {
                idle += since.elapsed();
                misses = 0;
            }
            task = match task {
                Some(Task::Execute { txn, incarnation }) => {
                    self.try_execute(scheduler, txn, incarnation, &mut cache)
                }
                Some(Task::Validate { txn, incarnation }) => {
                    self.validate(scheduler, txn, incarnation)
                }
                None => {
                    // Most misses are a validation index that passed a transaction still
                    // running: the next ask finds work. Yield only when asks keep missing.
                    missing.get_or_insert_with(std::time::Instant::now);
                    misses = misses.saturating_add(1);
                    if misses < MISSES_BEFORE_YIELD {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                    None
                }
            };
        }
        if let Some(since) = missing {
            idle += since.elapsed();
        }
        nanos(idle)
    }

    fn try_execute(
        &self,
        scheduler: &Scheduler,
        txn: usize,
        incarnation: u32,
        cache: &mut ContractCache,
    ) -> Option<Task> {
        scheduler.hold_back(txn, incarnation);
        loop {
            match self.run(txn, true, false, cache) {
                Err(RunFail::Blocked(j)) => {
                    if scheduler.add_dependency(txn, j) {
                        return None;
                    }
                }
                Err(RunFail::Host(e)) => {
                    self.fail(e);
                    scheduler.halt();
                    return None;
                }
                Ok((run, reads)) => {
                    let new_path = self.record(txn, incarnation, run, reads);
                    return scheduler.finish_execution(txn, incarnation, new_path);
                }
            }
        }
    }

    /// Puts incarnation `incarnation` of `txn`'s writes in the map, in place of its
    /// earlier incarnation's, and keeps the run. True when it wrote an entry the
    /// earlier one did not.
    fn record(&self, txn: usize, incarnation: u32, run: Execution, reads: Reads) -> bool {
        let writes = map_writes(&run);
        let written = writes.iter().map(|(k, _)| k.clone()).collect();
        let mut slot = lock(&self.outputs[txn]);
        let previous = slot.as_ref().map_or(&[][..], |o| o.written.as_slice());
        let new_path = self.mv.record(txn, incarnation, writes, previous);
        *slot = Some(Output {
            run,
            reads,
            written,
        });
        new_path
    }

    fn validate(&self, scheduler: &Scheduler, txn: usize, incarnation: u32) -> Option<Task> {
        let slot = lock(&self.outputs[txn]);
        let Some(out) = slot.as_ref() else {
            unreachable!("a transaction is validated after it ran");
        };
        let at = At {
            mv: &self.mv,
            base: &*self.base,
            txn,
        };
        let valid = match at.still_valid(&out.reads) {
            Ok(valid) => valid,
            Err(e) => {
                self.fail(e.into());
                scheduler.halt();
                return None;
            }
        };
        let aborted = !valid && scheduler.try_validation_abort(txn, incarnation);
        if aborted {
            self.mv.mark_estimates(txn, &out.written);
        }
        drop(slot);
        scheduler.finish_validation(txn, aborted)
    }

    /// The pessimistic worker loop: run what is ready, release what waits for it.
    /// Returns the time it waited for a transaction to be ready, in ns.
    fn pessimistic_worker(&self, schedule: &DagSchedule) -> u64 {
        let mut cache = self.head_contracts.clone_upto(self.head_version);
        let mut idle = std::time::Duration::ZERO;
        loop {
            let t = std::time::Instant::now();
            let Some(txn) = schedule.next() else {
                return nanos(idle);
            };
            idle += t.elapsed();
            match self.run(txn, false, false, &mut cache) {
                Ok((run, reads)) => {
                    self.record(txn, 0, run, reads);
                    schedule.finish(txn);
                }
                // A declared set keeps estimates out; one met is a host bug.
                Err(RunFail::Blocked(j)) => {
                    self.fail(HostError::Resource(format!(
                        "pessimistic run of transaction {txn} met a write of {j} in progress"
                    )));
                    schedule.halt();
                }
                Err(RunFail::Host(e)) => {
                    self.fail(e);
                    schedule.halt();
                }
            }
        }
    }

    /// Builds the rows of transaction `txn`'s final run into `rows`, with `root` the
    /// state root after it, and keeps its receipt.
    fn add_rows(&self, txn: usize, root: StateRoot, rows: &mut WriteBatch) {
        let Some(out) = lock(&self.outputs[txn]).take() else {
            return;
        };
        let offset = u64::try_from(txn).expect("a batch index fits in u64");
        let version = self.head_version + offset + 1;
        let p = self.txs[txn];
        let receipt = add_rows(version, p, out.run, self.code_to_store[txn], root, rows);
        *lock(&self.receipts[txn]) = Some(receipt);
    }

    /// Calls `f` with the writes of transaction `txn`'s final run.
    fn with_writes(&self, txn: usize, f: &mut dyn FnMut(&[crate::vm::run::Write])) {
        let slot = lock(&self.outputs[txn]);
        f(slot.as_ref().map_or(&[], |o| o.run.writes.as_slice()));
    }
}

/// A pessimistic batch's schedule: a transaction is ready once every one it waits for
/// has finished; the lowest ready index goes first.
struct DagSchedule {
    state: Mutex<DagState>,
    changed: Condvar,
    dependents: Vec<Vec<usize>>,
    /// The state of the random delays between steps (tests), as the optimistic
    /// scheduler's (`Scheduler::with_delays`).
    delays: Option<AtomicU64>,
}

struct DagState {
    waiting_on: Vec<usize>,
    ready: BinaryHeap<Reverse<usize>>,
    unfinished: usize,
    halted: bool,
}

impl DagSchedule {
    fn new(deps: &[Vec<usize>]) -> Self {
        let mut dependents = vec![Vec::new(); deps.len()];
        for (txn, ds) in deps.iter().enumerate() {
            for &d in ds {
                dependents[d].push(txn);
            }
        }
        let ready = deps
            .iter()
            .enumerate()
            .filter(|(_, ds)| ds.is_empty())
            .map(|(t, _)| Reverse(t))
            .collect();
        Self {
            state: Mutex::new(DagState {
                waiting_on: deps.iter().map(Vec::len).collect(),
                ready,
                unfinished: deps.len(),
                halted: false,
            }),
            changed: Condvar::new(),
            dependents,
            delays: None,
        }
    }

    /// Yields or sleeps for a random short while when the delay hook is on.
    fn maybe_delay(&self) {
        if let Some(state) = &self.delays {
            scheduler::random_delay(state);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DagState> {
        lock(&self.state)
    }

    /// The next transaction to run, waiting for one; `None` when all are done.
    fn next(&self) -> Option<usize> {
        self.maybe_delay();
        let mut s = self.lock();
        loop {
            if s.halted || s.unfinished == 0 {
                return None;
            }
            if let Some(Reverse(t)) = s.ready.pop() {
                return Some(t);
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Marks `txn` finished. The caller takes the next ready one itself, so only the
    /// others ready now wake a sleeping worker: a chain of conflicting transactions
    /// stays on one thread instead of paying a wake-up per link.
    fn finish(&self, txn: usize) {
        self.maybe_delay();
        let mut s = self.lock();
        s.unfinished -= 1;
        let mut woken = 0;
        for &d in &self.dependents[txn] {
            s.waiting_on[d] -= 1;
            if s.waiting_on[d] == 0 {
                s.ready.push(Reverse(d));
                woken += 1;
            }
        }
        let done = s.unfinished == 0;
        drop(s);
        if done {
            self.changed.notify_all();
        } else {
            for _ in 1..woken {
                self.changed.notify_one();
            }
        }
    }

    fn halt(&self) {
        self.lock().halted = true;
        self.changed.notify_all();
    }

    fn halted(&self) -> bool {
        self.lock().halted
    }
}

/// The store's code, with the code of the batch's deploys that is not stored yet.
struct BatchCode {
    snapshot: Arc<dyn Snapshot>,
    deployed: HashMap<[u8; 32], Vec<u8>>,
}

impl Snapshot for BatchCode {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if table == Table::Code
            && let Some(code) = <[u8; 32]>::try_from(key)
                .ok()
                .and_then(|k| self.deployed.get(&k))
        {
            return Ok(Some(code.clone()));
        }
        self.snapshot.get(table, key)
    }

    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        self.snapshot.range(table, lo, hi, reverse, visit)
    }
}

/// A run's writes as the map holds them: by entry key.
fn map_writes(run: &Execution) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    run.writes
        .iter()
        .map(|w| (entry_key(&w.ns, &w.key), w.new.clone()))
        .collect()
}

/// The same failure for a repeat of the id that failed.
fn copy_error(e: &SubmitError) -> SubmitError {
    match e {
        SubmitError::Rejected(e) => SubmitError::Rejected(e.clone()),
        SubmitError::Conflict { id, version } => SubmitError::Conflict {
            id: *id,
            version: *version,
        },
        SubmitError::Host(e) => SubmitError::Host(e.clone()),
    }
}

/// What a transaction would do against the latest state: its receipt and the access
/// set it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulated {
    /// The receipt it would get now.
    pub receipt: Receipt,
    /// The keys it read, wrote and walked (callees included), ready to declare.
    pub access: AccessSet,
}

/// Runs `runs` one after the other on the head, each seeing the ones before it, and
/// stages nothing: `semel simulate`.
///
/// # Errors
/// Host failures.
pub(crate) fn simulate(
    env: &Env<'_>,
    head: &Head,
    snapshot: Arc<dyn Snapshot>,
    runs: Vec<&Prepared<'_>>,
) -> Result<Vec<Simulated>, HostError> {
    let batch = Batch::new(env, head, runs, snapshot)?;
    let mut cache = head.contracts.clone_upto(head.version);
    let mut lattice = head.lattice.clone();
    let mut out = Vec::with_capacity(batch.txs.len());
    for txn in 0..batch.txs.len() {
        let (run, _) = match batch.run(txn, false, true, &mut cache) {
            Ok(done) => done,
            Err(RunFail::Host(e)) => return Err(e),
            Err(RunFail::Blocked(j)) => {
                return Err(HostError::Resource(format!(
                    "simulation met an estimate of {j}"
                )));
            }
        };
        batch.mv.record(txn, 0, map_writes(&run), &[]);
        for w in &run.writes {
            lattice.update(&w.ns, &w.key, w.old.as_deref(), w.new.as_deref());
        }
        let version = head.version + u64::try_from(txn).expect("a batch index fits") + 1;
        out.push(Simulated {
            receipt: Receipt {
                tx_id: batch.txs[txn].tx.id,
                status: run.status,
                error: run.error,
                version,
                results: run.results,
                events: run.events,
                gas_used: run.gas_used,
                state_root: lattice.root(),
                duplicate: false,
            },
            access: run.access_used.unwrap_or_default(),
        });
    }
    Ok(out)
}
