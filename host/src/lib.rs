//! Semel: a WebAssembly smart-contract host with exactly-once transactions over a
//! versioned state store.
//!
//! Open a [`Host`] over a data dir ([`Host::open`]) or in memory ([`Host::in_memory`]),
//! [`Host::submit`] a [`Transaction`] and get its [`Receipt`]: the same id again returns
//! the stored receipt, never a second execution. Queries, state listings, the history,
//! the events index ([`Host::events`]) and `verify` are read APIs of [`Host`].
//!
//! The crate in layers, lowest first; a layer imports only those below it (a test,
//! `tests/all/layers.rs`, holds this; `docs/ARCHITECTURE.md` explains it): the leaves
//! (`types`, `codec`, `limits`, `poll`, `process`, `text`) → `storage/` (bytes: backends, the
//! write-ahead log, group commit) → `error` → `state/` (versioned keys, views, the
//! recorded view, the state root, the contract registry) → `ledger/` (transactions,
//! receipts, record layouts, the events index, the head, the exactly-once lookup) →
//! `vm/` (wasmtime: the module cache, host functions, frames, the run of one
//! transaction, `prewarm/`) → `exec/` (executing a batch) → `host/` (open, submit,
//! reads, verify, prune).

mod codec;
mod error;
mod exec;
mod helpers;
mod host;
mod ledger;
pub mod limits;
mod poll;
mod process;
mod state;
pub mod storage;
mod text;
mod types;
mod vm;

pub use ed25519_dalek::SigningKey;
pub use error::{HostError, InputError, ModuleError, QueryError, SubmitError};
pub use exec::Simulated;
pub use helpers::use_helpers;
pub use host::{
    CACHE_DIR, Check, CheckedTx, Concurrency, ContractInfo, DB_FILE, HistoryEntry, Host,
    HostOptions, LOCK_FILE, ParallelStats, ParseStoreUrlError, Prewarm, PruneReport, QueryOutput,
    StateListing, StoreInfo, StoreUrl, VerifyError, VerifyReport, default_workers,
};
pub use ledger::{
    ACCOUNT_PREFIX, SIGNING_DOMAIN, TxSignature, account_id, signing_bytes, signing_hash,
};
pub use ledger::{
    AccessSet, Batch, Call, CodeLookup, ContractAccess, KeySpec, Transaction, TxBody, compact_json,
    parse_id,
};
pub use ledger::{CallResult, DEFAULT_SENDER, Event, Receipt, Status};
pub use ledger::{EventFilter, EventRecord};
pub use process::disable_transparent_huge_pages;
pub use state::use_avx512;
pub use storage::{Durability, StorageError};
pub use text::printable;
pub use types::{CodeHash, HostId, ParseHostIdError, StateRoot};
pub use uuid::Uuid;

/// The JSON shapes of the host's outputs, as they serialize: what a server's OpenAPI
/// document describes (`utoipa` schemas).
pub mod json {
    pub use crate::host::json::{
        CodeVersionJson, ContractJson, EntryJson, EventRecordJson, HistoryJson, QueryJson,
    };
    pub use crate::ledger::receipt::{CallResultJson, EventJson, ReceiptJson};
    pub use crate::ledger::transaction::{
        RawCall as CallJson, RawDeploy as DeployJson, RawMigrate as MigrateJson,
        RawSetAdmin as SetAdminJson, RawSignature as SignatureJson, RawTx as TransactionJson,
    };
}

/// The contract ABI: the host functions a contract may import, and the checks a module
/// passes at deploy.
pub mod abi {
    pub use crate::vm::abi::{
        AbiType, HOST_FUNCTIONS, HostFunction, IMPORT_MODULE, signature_text,
    };
    pub use crate::vm::validate::{ModuleInfo, check_module, wasm_bytes};
}

/// Gas prices, for contract authors and tests.
pub mod gas_prices {
    pub use crate::vm::gas::*;
}

/// The compiled-module cache on its own, for tools and benchmarks that measure compiles
/// and artifact loads without a host.
pub mod modules {
    pub use crate::vm::{CacheStats, ModuleSource, Runtime};
}

/// The state root's lattice hash, for benchmarks of its update.
pub mod state_root {
    pub use crate::state::LtHash;
}
