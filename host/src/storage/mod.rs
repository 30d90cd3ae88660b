//! Storage: where bytes live. A small, byte-oriented seam with no wasm and no
//! transaction semantics in it, public for those who bring a backend of their own.
//!
//! [`Backend`] gives consistent read snapshots and applies a [`WriteBatch`] atomically,
//! optionally only if the head it builds on is still the stored one
//! ([`WriteBatch::require`], failing with [`StorageError::Conflict`]).
//! [`MemoryBackend`] serves tests and benchmarks; [`RedbBackend`] is one redb file
//! holding every table; [`WalBackend`], the durable default, puts a write-ahead log
//! (`wal/`) in front of it so a commit costs one sequential write and one fdatasync.
//! [`PostgresBackend`] keeps the tables in a PostgreSQL database that several hosts share.
//! [`FileStorage`] is the file both of those write through, so tests can inject faults.
//! Group commit (`group_commit.rs`) makes many staged batches one backend commit; on a
//! shared store, hosts whose commits collide take turns (`commit_turns.rs`). The
//! layout of keys and values inside the tables belongs to `state/` and `ledger/`.

mod backend;
pub(crate) mod commit_turns;
pub(crate) mod file;
pub(crate) mod group_commit;
mod memory;
mod overlay;
mod postgres;
mod redb_file;
mod wal;

pub use backend::{
    Backend, Durability, Entry, Op, Precondition, Snapshot, StorageError, Table, WriteBatch,
};
pub use file::FileStorage;
pub use memory::MemoryBackend;
pub(crate) use memory::bounds_empty;
pub(crate) use overlay::Overlay;
pub use postgres::{PG_FORMAT, PostgresBackend};
pub use redb_file::RedbBackend;
pub(crate) use wal::WAL_FILE;
pub use wal::{WalBackend, WalTuning};
