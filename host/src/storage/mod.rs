//! Storage backends: where bytes live. A small, byte-oriented seam with no wasm and no
//! transaction semantics in it.
//!
//! [`Backend`] gives consistent read snapshots and applies a [`WriteBatch`] atomically.
//! [`MemoryBackend`] serves tests and benchmarks; [`RedbBackend`] is the durable default,
//! one redb file holding every table. The layout of keys and values inside the tables
//! belongs to `state/` and `txlog.rs`, not to this module.

mod backend;
mod memory;
mod redb_file;

pub use backend::{Backend, Durability, Entry, Op, Snapshot, StorageError, Table, WriteBatch};
pub use memory::MemoryBackend;
pub(crate) use memory::bounds_empty;
pub use redb_file::RedbBackend;
