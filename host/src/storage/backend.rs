//! The backend trait and its vocabulary: tables, write batches, errors.

use std::ops::Bound;
use std::sync::Arc;

use thiserror::Error;

/// The tables every backend holds. Keys and values are opaque bytes here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Versioned contract state (and the contract registry): see `state/keys.rs`.
    State,
    /// Contract code by BLAKE3 hash.
    Code,
    /// Transaction id → version, content hash and receipt: the exactly-once index.
    Txs,
    /// The history: version → the recorded transaction, for `semel log` and `verify`
    /// (named `log` on disk, as before the rename).
    History,
    /// Host metadata: format, latest version, the state-root lattice, the horizon, and
    /// the write-ahead log's keys (`ledger/records.rs` and `storage/wal/` list them).
    Meta,
    /// The events index: every event of a committed receipt by version, and by
    /// contract, topic, or both (`ledger/events.rs`; layout in `ledger/records.rs`).
    /// Last, so the write-ahead log's table numbers of the others stay as they were.
    Events,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 6] = [
        Table::State,
        Table::Code,
        Table::Txs,
        Table::History,
        Table::Meta,
        Table::Events,
    ];

    /// The table's stable name, used as its name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Table::State => "state",
            Table::Code => "code",
            Table::Txs => "txs",
            // The on-disk name predates the variant's: kept, so old data dirs open.
            Table::History => "log",
            Table::Meta => "meta",
            Table::Events => "events",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A failure of the storage layer: never a contract's fault, never recorded.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The disk or file system failed.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Stored bytes do not decode or do not agree with each other.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// A commit's precondition failed: the store does not hold what the batch was built
    /// on (another writer committed first). Nothing of the batch was applied.
    #[error("commit conflict: {0}")]
    Conflict(String),
    /// The store cannot be reached (a database that is down or unreachable): nothing is
    /// known to have changed, and the same request may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A backend failed for another reason (its own message).
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl From<crate::codec::DecodeError> for StorageError {
    fn from(e: crate::codec::DecodeError) -> Self {
        StorageError::Corrupt(e.to_string())
    }
}

/// Whether a backend commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Each commit is synced (fsync) before it returns: acknowledged means on disk.
    #[default]
    Immediate,
    /// Commits are not synced: a crash may lose the latest ones (never half of one).
    /// For benchmarks and tests.
    None,
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write of a batch: a put (`Some`) or delete (`None`) of a key in a table. Keys
/// and values are shared: the committer's and the log's overlays, a group's merge and
/// the in-memory backend hold them without copying their bytes (the in-memory backend
/// copies only short keys, into its map nodes).
pub type Op = (Table, Arc<[u8]>, Option<Arc<[u8]>>);

/// What a batch requires of the store to commit: `key` of `table` holds `value`
/// (`None`: is absent). The host requires the head version its batch builds on, so that
/// a second writer on one store is detected, not overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    /// The table of the key.
    pub table: Table,
    /// The key.
    pub key: Arc<[u8]>,
    /// The value it must hold, or `None` for absent.
    pub value: Option<Arc<[u8]>>,
}

impl Precondition {
    /// `Ok` when `found` is what the precondition requires.
    ///
    /// # Errors
    /// [`StorageError::Conflict`] naming the key, what it required and what was found.
    pub fn check(&self, found: Option<&[u8]>) -> Result<(), StorageError> {
        if found == self.value.as_deref() {
            return Ok(());
        }
        let show = |v: Option<&[u8]>| {
            v.map_or_else(|| "absent".to_owned(), |v| format!("0x{}", hex::encode(v)))
        };
        Err(StorageError::Conflict(format!(
            "{} key {:?} must hold {}, the store holds {}",
            self.table.name(),
            self.key.escape_ascii().to_string(),
            show(self.value.as_deref()),
            show(found)
        )))
    }
}

/// Puts and deletes across tables, applied all together or not at all — and only if
/// its [`Precondition`], when it has one, holds.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<Op>,
    precondition: Option<Precondition>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set `key` to `value` in `table`. Slices are copied once into shared bytes; a
    /// `Vec` is copied too (an `Arc<[u8]>` holds its bytes beside the counts).
    pub fn put(&mut self, table: Table, key: impl Into<Arc<[u8]>>, value: impl Into<Arc<[u8]>>) {
        self.ops.push((table, key.into(), Some(value.into())));
    }
    /// Delete `key` from `table` (no error if absent).
    pub fn delete(&mut self, table: Table, key: impl Into<Arc<[u8]>>) {
        self.ops.push((table, key.into(), None));
    }
    /// Adds a write already shared with another batch.
    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }
    /// Moves every operation of `other` to the end of this batch (its precondition is
    /// dropped).
    pub fn append(&mut self, other: WriteBatch) {
        // Taken whole into an empty batch: a parallel batch's rows are thousands of
        // operations, moved twice on their way to the store otherwise.
        if self.ops.is_empty() {
            self.ops = other.ops;
        } else {
            self.ops.extend(other.ops);
        }
    }
    /// The operations in the order they were added; later ones win.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Commit only if `precondition` holds in the store (checked by the backend inside
    /// the commit, atomically with it).
    pub fn require(&mut self, precondition: Precondition) {
        self.precondition = Some(precondition);
    }
    /// What the batch requires of the store, if anything.
    pub fn precondition(&self) -> Option<&Precondition> {
        self.precondition.as_ref()
    }
    /// A batch of `ops`, in order, requiring `precondition`.
    pub(crate) fn from_ops(ops: Vec<Op>, precondition: Option<Precondition>) -> Self {
        Self { ops, precondition }
    }
    /// The batch's operations, to reuse their buffer.
    pub(crate) fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// A consistent, read-only view of every table as of one commit.
pub trait Snapshot: Send + Sync {
    /// The value at `key`.
    ///
    /// # Errors
    /// When the backend cannot read.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// The values at `keys`, in their order: one read where the backend can batch
    /// them (a database answers them in one round trip), else one [`Snapshot::get`]
    /// each.
    ///
    /// # Errors
    /// When the backend cannot read.
    fn get_many(&self, table: Table, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        keys.iter().map(|k| self.get(table, k)).collect()
    }

    /// Visits the entries with keys in `(lo, hi)` in key order (descending when `reverse`),
    /// until `visit` returns `false`.
    ///
    /// # Errors
    /// When the backend cannot read.
    fn range(
        &self,
        table: Table,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StorageError>;

    /// The value of the greatest key in `[lo, hi]`, for keys that are written in
    /// increasing order (the versions of one state entry): a layer of newer writes that
    /// holds a put in the range then answers without reading the layers below it.
    ///
    /// # Errors
    /// When the backend cannot read.
    fn newest_in(
        &self,
        table: Table,
        lo: &[u8],
        hi: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        last_in_range(self, table, lo, hi)
    }
}

/// The value of the greatest key in `[lo, hi]`, by a reverse range walk of `snapshot`.
pub(crate) fn last_in_range(
    snapshot: &(impl Snapshot + ?Sized),
    table: Table,
    lo: &[u8],
    hi: &[u8],
) -> Result<Option<Vec<u8>>, StorageError> {
    let mut found = None;
    snapshot.range(
        table,
        Bound::Included(lo),
        Bound::Included(hi),
        true,
        &mut |_, v| {
            found = Some(v.to_vec());
            false
        },
    )?;
    Ok(found)
}

/// Where the host's tables live.
pub trait Backend: Send + Sync {
    /// A snapshot of the latest commit.
    ///
    /// # Errors
    /// When the backend cannot start a read.
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError>;

    /// Applies `batch` atomically; when this returns `Ok` the batch is as durable as the
    /// backend promises.
    ///
    /// # Errors
    /// When the write or its sync fails; then nothing of the batch is visible.
    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError>;

    /// Whether commits are worth grouping (each one pays for a write transaction or a
    /// sync). When `false`, batches are committed one by one as they are staged.
    fn groups_commits(&self) -> bool {
        true
    }

    /// Whether other processes commit to this store too (several hosts on one
    /// database): the host then checks the stored head before each run, and runs again
    /// what lost a race to another host's commit.
    fn shared(&self) -> bool {
        false
    }

    /// For a shared store: blocks until this process holds the lock commits take on
    /// `key` of `table` (for the host, the head's row), so that no other process
    /// commits until this one's next commit, which runs under it — or [`release`].
    /// A host that lost a race runs again under it, so it cannot lose twice.
    /// Nothing to hold for a store no one else commits to.
    ///
    /// [`release`]: Backend::release
    ///
    /// # Errors
    /// When the lock cannot be taken (the caller runs without it).
    fn hold(&self, _table: Table, _key: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }

    /// Lets go of a lock [`Backend::hold`] took that no commit used.
    fn release(&self) {}

    /// For a shared store: waits, at most `wait`, for this process's turn to commit —
    /// one process at a time holds it, until [`end_turn`] or its end — and takes it.
    /// False when the wait passed first, or when the store has no turns. A turn is for
    /// throughput only, never for correctness: a process that commits without one is
    /// still ordered by the commit's precondition; it only risks losing the race.
    ///
    /// [`end_turn`]: Backend::end_turn
    ///
    /// # Errors
    /// When the store cannot be reached.
    fn take_turn(&self, _wait: std::time::Duration) -> Result<bool, StorageError> {
        Ok(false)
    }

    /// Ends the turn [`Backend::take_turn`] took, if it holds one; the next process
    /// waiting for one takes it.
    fn end_turn(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_keeps_its_number_and_has_a_name_of_its_own() {
        // The write-ahead log stores a table by its place in `ALL`: new ones go last.
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(table.index(), i);
        }
        let names: std::collections::BTreeSet<_> = Table::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Table::ALL.len());
        assert_eq!(
            Table::ALL.map(Table::name),
            ["state", "code", "txs", "log", "meta", "events"]
        );
    }
}
