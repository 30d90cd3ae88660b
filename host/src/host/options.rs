//! How a host is opened: [`HostOptions`], with one switch for each mechanism that exists
//! only for latency (BENCHMARKS.md's index says what each buys). Turning any of them off
//! changes timings, never a receipt or a state root.

use std::path::Path;
use std::time::Duration;

use crate::limits::{DATA_DIR_LOCK_WAIT_MS, MODULE_CACHE_BYTES_DEFAULT, WORKERS_MAX};
use crate::storage::Durability;

/// When a submitter instantiates its first contract before it holds the writer lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prewarm {
    /// Never: every run instantiates under the writer lock.
    Off,
    /// While another transaction holds the writer lock (the default): the wait is spent
    /// instantiating, and a lone submitter takes what the recycler made ready.
    #[default]
    WhileWaiting,
    /// Always, even when the lock is free: for tests that hold the early path to the
    /// same receipts as the plain one.
    Always,
}

/// How a batch's transactions are run (interface §5). Never changes a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// One at a time, in order.
    Sequential,
    /// In parallel, speculatively, re-run when a read is invalidated (Block-STM).
    #[default]
    Optimistic,
    /// In parallel under locks from the declared access sets; without a set, alone.
    Pessimistic,
}

impl Concurrency {
    /// The name the CLI and the benchmark JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Concurrency::Sequential => "sequential",
            Concurrency::Optimistic => "optimistic",
            Concurrency::Pessimistic => "pessimistic",
        }
    }
}

impl std::str::FromStr for Concurrency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sequential" => Ok(Concurrency::Sequential),
            "optimistic" => Ok(Concurrency::Optimistic),
            "pessimistic" => Ok(Concurrency::Pessimistic),
            _ => Err(format!(
                "concurrency {s:?} is not one of optimistic, pessimistic, sequential"
            )),
        }
    }
}

/// Executor threads by default: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(WORKERS_MAX)
}

/// How a host is opened.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// How long to wait for another process to release the data dir.
    pub lock_wait: Duration,
    /// Called once when the data dir is held by another process and waiting starts.
    pub on_lock_wait: Option<fn(&Path, Duration)>,
    /// Print the text contracts pass to the `log` host function to stderr.
    pub print_contract_logs: bool,
    /// Whether an acknowledged transaction survives a crash (the default) or may be lost
    /// with the last few before it (benchmarks and tests only).
    pub durability: Durability,
    /// Bytes of compiled code the in-memory module cache keeps at most (least recently
    /// used modules go first; they reload from disk artifacts).
    pub module_cache_bytes: usize,
    /// Latency: instantiating ahead of the writer lock (`vm/prewarm/early.rs`).
    pub prewarm: Prewarm,
    /// Latency: a thread that frees a lone submitter's spent stores and makes its next
    /// one ready (`vm/prewarm/recycler.rs`). Off, each submitter frees its own.
    pub recycler: bool,
    /// Latency: waiters for the writer lock poll briefly before they sleep
    /// (`host/writer_lock.rs`).
    pub writer_spin: bool,
    /// Latency: the ids staged lately answer the exactly-once check under the writer lock
    /// without a second lookup (`ledger/exactly_once.rs`).
    pub recent_ids: bool,
    /// Latency: a group commit's merge buffer is kept for the next group
    /// (`storage/group_commit.rs`).
    pub reuse_merge_buffer: bool,
    /// Throughput: on a store other hosts share, hosts whose commits collide take turns
    /// to run and commit instead of running groups that lose the race
    /// (`storage/commit_turns.rs`).
    pub store_turns: bool,
    /// Throughput: on a store other hosts share, where each read is a round trip, a
    /// parallel batch remembers each entry of its base it read (`state/view.rs`).
    pub remember_base_reads: bool,
    /// Throughput: a staged batch joins the committer's overlay only when a read needs it,
    /// so a batch durable before any read never does (`storage/group_commit.rs`).
    pub lazy_staging: bool,
    /// How batches run (`submit_all`, a batch file).
    pub concurrency: Concurrency,
    /// Executor threads for a batch, 1 to `WORKERS_MAX`.
    pub workers: usize,
    /// Submitters that find the writer busy leave their transaction for the lock holder,
    /// who runs all of them as one parallel batch (`exec/gather.rs`). Off by default:
    /// on two cores it measured slower than instantiating ahead while waiting
    /// (BENCHMARKS.md).
    pub gather: bool,
    /// Test hook: random yields and sleeps in the optimistic scheduler, from this seed,
    /// so that rare interleavings happen on few cores. Changes timings only.
    pub scheduler_delays: Option<u64>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            lock_wait: Duration::from_millis(DATA_DIR_LOCK_WAIT_MS),
            on_lock_wait: None,
            print_contract_logs: false,
            durability: Durability::Immediate,
            module_cache_bytes: MODULE_CACHE_BYTES_DEFAULT,
            prewarm: Prewarm::WhileWaiting,
            recycler: true,
            writer_spin: true,
            recent_ids: true,
            reuse_merge_buffer: true,
            store_turns: true,
            remember_base_reads: true,
            lazy_staging: true,
            concurrency: Concurrency::default(),
            workers: default_workers(),
            gather: false,
            scheduler_delays: None,
        }
    }
}

impl HostOptions {
    /// These options with every latency mechanism off: the plain path.
    pub fn plain(self) -> Self {
        Self {
            prewarm: Prewarm::Off,
            recycler: false,
            writer_spin: false,
            recent_ids: false,
            reuse_merge_buffer: false,
            ..self
        }
    }
}
