//! Semel: a WebAssembly smart-contract host with exactly-once transactions over a
//! versioned state store.
//!
//! The data path, top-down: a [`Transaction`] goes to [`Host::submit`] (`host.rs`),
//! which checks it (`tx.rs`), answers a retried id from the transaction log
//! (`txlog.rs`), prepares code (`validate.rs`, `engine.rs`), runs the executor
//! (`executor.rs` → `frames.rs` → host functions in `imports.rs`) against a versioned
//! state view (`state/`), and commits writes, state root, receipt and log entry in one
//! atomic batch to a storage backend (`storage/`). See `docs/ARCHITECTURE.md`.

mod abi;
mod codec;
mod commit;
mod context;
mod engine;
mod error;
mod executor;
mod frames;
mod gas;
pub mod hex;
mod host;
mod imports;
pub mod limits;
mod poll;
mod process;
mod prune;
mod receipt;
mod recent_ids;
mod recycler;
mod registry;
mod state;
mod storage;
mod tx;
mod txlog;
mod validate;
mod verify;
mod writer_lock;

pub use abi::{AbiType, HOST_FUNCTIONS, HostFunction, IMPORT_MODULE, signature_text};
pub use context::Event;
pub use engine::{CacheStats, CodeHash, ModuleSource, Runtime};
pub use error::{InputError, ModuleError, QueryError, StorageError, SubmitError};
pub use host::{
    CACHE_DIR, ContractInfo, DB_FILE, Host, HostOptions, LOCK_FILE, LogEntry, QueryOutput,
};
pub use process::disable_transparent_huge_pages;
pub use prune::PruneReport;
pub use receipt::{CallResult, Receipt, Status};
pub use state::{LtHash, StateRoot};
pub use storage::{
    Backend, Durability, Entry, LOG_BLOCK_BYTES, LOG_DIRECT_WRITE_BYTES, LogFile, MemoryBackend,
    Op, RedbBackend, Snapshot, Table, WAL_APPLY_BYTES, WAL_BUFFER_KEEP_BYTES, WAL_CHECKPOINT_BYTES,
    WAL_FILE, WAL_GROW_BYTES, WAL_RECORD_BYTES_MAX, WalBackend, WalTuning, WriteBatch,
};
pub use tx::{Call, DEFAULT_SENDER, Transaction, TxBody, parse_id};
pub use uuid::Uuid;
pub use validate::{ModuleInfo, check_module, wasm_bytes};
pub use verify::{VerifyError, VerifyReport};

/// Gas prices, for contract authors and tests.
pub mod gas_prices {
    pub use crate::gas::*;
}
