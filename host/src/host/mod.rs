//! The host: the coordinator of interface §3. It checks input, decides duplicate or
//! conflict by transaction id, has the executor run and stage each transaction, and
//! hands out a receipt only once its batch is durable — so a transaction is recorded
//! exactly once or not at all.
//!
//! One concept a file: [`options`](HostOptions), `open.rs` (a data dir, its lock, the
//! backend), `submit.rs` (checks, the exactly-once lookup before the lock, the writer
//! lock, acknowledgement), `reads.rs` (queries, state, contracts, history, receipts),
//! `info.rs` (the store's host id and summary), `json.rs` (the JSON shapes of its
//! outputs), `verify.rs`, `prune.rs`, and `writer_lock.rs`.

mod info;
pub(crate) mod json;
mod open;
mod options;
mod prune;
mod reads;
mod store;
mod submit;
mod verify;
mod writer_lock;

use std::fs::File;
use std::sync::{Arc, MutexGuard};

pub use crate::exec::ParallelStats;
pub use info::StoreInfo;
pub use json::StateListing;
pub use open::{CACHE_DIR, DB_FILE, LOCK_FILE};
pub use options::{Concurrency, HostOptions, Prewarm, default_workers};
pub use prune::PruneReport;
pub use reads::{ContractInfo, HistoryEntry, QueryOutput};
pub use store::{ParseStoreUrlError, StoreUrl};
pub use submit::{Check, CheckedTx};
pub use verify::{VerifyError, VerifyReport};

use self::info::StoreKind;
use self::writer_lock::WriterLock;
use crate::error::HostError;
use crate::exec::{Env, Gathered};
use crate::ledger::head::{Head, Published, Tip};
use crate::ledger::records::META_VERSION;
use crate::storage::group_commit::Committer;
use crate::storage::{Snapshot, Table, WriteBatch};
use crate::types::{HostId, StateRoot};
use crate::vm::Runtime;
use crate::vm::prewarm::hints::CodeHints;
use crate::vm::prewarm::recycler::Recycler;

/// A Semel host over one store.
pub struct Host {
    runtime: Arc<Runtime>,
    committer: Committer,
    /// Which code each contract runs, for instantiating before the writer lock.
    hints: CodeHints,
    /// Frees a lone submitter's stores and makes its next one ready (when switched on).
    recycler: Option<Recycler>,
    /// The writer lock, over the head.
    head: WriterLock<Head>,
    /// The latest staged version, for readers that do not take the writer lock.
    published: Published,
    options: HostOptions,
    /// What its parallel batches did.
    parallel_stats: ParallelStats,
    /// Submitters waiting for the writer, to run as one batch.
    gathered: Gathered,
    /// Whether opening made a new store.
    created: bool,
    /// The store's host id, read (or made) at open.
    host_id: HostId,
    /// Whether submissions' signatures are checked (a re-execution's scratch host
    /// replays the log, whose transactions were checked when recorded, without them).
    authorize: bool,
    /// What the store is, for [`Host::info`].
    store: StoreKind,
    /// The data dir's lock, held while the host lives.
    _lock: Option<File>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// What this host's parallel batches did since it opened: batches, fallbacks to
    /// sequential, re-executions.
    pub fn parallel_stats(&self) -> &ParallelStats {
        &self.parallel_stats
    }

    /// The latest recorded version (0 before any transaction). Does not wait for the
    /// writer.
    pub fn latest_version(&self) -> u64 {
        self.published.get().version
    }

    /// The oldest version queries may read (0 until a prune). Does not wait for the
    /// writer.
    pub fn horizon(&self) -> u64 {
        self.published.get().horizon
    }

    /// The state root at the latest version. Does not wait for the writer, unless a
    /// failed commit must be recovered from first.
    ///
    /// # Errors
    /// When storage fails while the host recovers from a failed commit.
    pub fn state_root(&self) -> Result<StateRoot, HostError> {
        Ok(self.durable_tip()?.root)
    }

    /// The latest version and the state root at it, together, once durable (as
    /// [`Host::state_root`]).
    ///
    /// # Errors
    /// As [`Host::state_root`].
    pub fn durable_head(&self) -> Result<(u64, StateRoot), HostError> {
        let tip = self.durable_tip()?;
        Ok((tip.version, tip.root))
    }

    /// Whether batches staged by this host are not durable yet: a read of the latest
    /// version waits for them (see [`Host::state_root`]). A hint, at once out of date.
    pub fn has_staged(&self) -> bool {
        self.committer.last_pending().is_ok_and(|p| p.is_some())
    }

    /// The latest version for a read, once durable. A staged batch may yet fail (its
    /// fsync; on a shared store, a race lost to another host), so a read sees it only
    /// once it is durable, as a receipt is handed out only then: nobody reads a state
    /// that a crash could take back.
    fn durable_tip(&self) -> Result<Tip, HostError> {
        if self.committer.is_poisoned()? {
            drop(self.writer()?);
        }
        self.follow_others()?;
        // Read before the pending batch: the tip's batch was staged before it was
        // published, so it is that batch or an earlier one.
        let tip = self.published.get();
        if let Some(seq) = self.committer.last_pending()? {
            self.wait_durable(seq)?;
        }
        Ok(tip)
    }

    /// On a store that other hosts commit to: waits for what this host staged to be
    /// durable, and reloads the head when another host moved the stored version past
    /// the published one, so that a read of the latest version sees only committed
    /// state, theirs included. One point read; the writer lock only when the head moved.
    fn follow_others(&self) -> Result<(), HostError> {
        if !self.committer.shared() {
            return Ok(());
        }
        // What is staged may yet lose a race to another host: a read sees it only once
        // it is durable (or, failed, gone).
        if let Some(seq) = self.committer.last_pending()? {
            let _ = self.committer.wait_durable(seq);
        }
        if self.committer.is_poisoned()? {
            // Recovering reloads the head from the store.
            drop(self.writer()?);
            return Ok(());
        }
        let tip = self.published.get().version.to_le_bytes();
        if let Some(stored) = self.committer.stored_if_idle(Table::Meta, META_VERSION)?
            && stored.as_deref() != Some(&tip[..])
        {
            drop(self.writer()?);
        }
        Ok(())
    }

    /// Whether other hosts may commit to this host's store too (a PostgreSQL store):
    /// its reads and commits are then round trips to a database.
    pub fn shares_store(&self) -> bool {
        self.committer.shared()
    }

    /// Backend commits since the host opened: with durability on, one fsync each.
    pub fn commits(&self) -> u64 {
        self.committer.commits()
    }

    /// Commits that lost the race to another host's on a shared store (each ran again,
    /// or found its ids recorded), since the host opened.
    pub fn lost_races(&self) -> u64 {
        self.committer.lost_races()
    }

    /// How often compiled modules were loaded from disk or compiled, and what the
    /// in-memory module cache holds.
    pub fn module_cache_stats(&self) -> crate::vm::CacheStats {
        self.runtime.cache_stats()
    }

    /// Drops every compiled module from memory, so the next use loads from disk or
    /// compiles.
    pub fn clear_module_cache(&self) {
        self.runtime.clear_memory_cache();
    }

    /// What the executor works with.
    fn env(&self) -> Env<'_> {
        Env {
            runtime: &self.runtime,
            committer: &self.committer,
            hints: &self.hints,
            published: &self.published,
            print_logs: self.options.print_contract_logs,
            recent_ids: self.options.recent_ids,
            remember_base: self.options.remember_base_reads,
        }
    }

    fn head(&self) -> Result<MutexGuard<'_, Head>, HostError> {
        self.head.lock().map_err(|_| poisoned_head())
    }

    /// The writer lock, after reopening storage if a commit failed.
    fn writer(&self) -> Result<MutexGuard<'_, Head>, HostError> {
        let mut head = self.head()?;
        self.env().recover_if_needed(&mut head)?;
        Ok(head)
    }

    /// Stages a batch that is not a transaction (a prune); the caller holds the writer.
    fn stage(&self, batch: WriteBatch) -> Result<u64, HostError> {
        Ok(self.committer.stage(batch)?)
    }

    /// Waits until staged batch `seq` is durable.
    fn wait_durable(&self, seq: u64) -> Result<(), HostError> {
        Ok(self.committer.wait_durable(seq)?)
    }

    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, HostError> {
        Ok(self.committer.snapshot()?)
    }

    /// The head as stored (not as held in memory).
    fn stored_head(&self) -> Result<Head, HostError> {
        Ok(Head::read(&*self.committer.snapshot()?)?)
    }
}

fn poisoned_head() -> HostError {
    HostError::Resource("the writer lock was poisoned by a panic".into())
}
