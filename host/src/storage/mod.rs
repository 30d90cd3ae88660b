//! Storage backends: where bytes live. A small, byte-oriented seam with no wasm and no
//! transaction semantics in it.
//!
//! [`Backend`] gives consistent read snapshots and applies a [`WriteBatch`] atomically.
//! [`MemoryBackend`] serves tests and benchmarks; [`RedbBackend`] is one redb file
//! holding every table; [`WalBackend`], the durable default, puts a write-ahead log in
//! front of it so a commit costs one sequential write and one fdatasync. The layout of keys and values inside the tables
//! belongs to `state/` and `txlog.rs`, not to this module.

mod backend;
mod log_file;
mod memory;
mod overlay;
mod redb_file;
mod wal;

pub use backend::{Backend, Durability, Entry, Op, Snapshot, StorageError, Table, WriteBatch};
pub use log_file::{LOG_BLOCK_BYTES, LOG_DIRECT_WRITE_BYTES, LogFile};
pub use memory::MemoryBackend;
pub(crate) use memory::bounds_empty;
pub(crate) use overlay::Overlay;
pub use redb_file::RedbBackend;
pub use wal::{
    WAL_APPLY_BYTES, WAL_BUFFER_KEEP_BYTES, WAL_CHECKPOINT_BYTES, WAL_FILE, WAL_GROW_BYTES,
    WAL_RECORD_BYTES_MAX, WalBackend, WalTuning,
};
