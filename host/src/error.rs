//! The host's typed errors, one enum per operation. A contract's failure is never here:
//! it is a recorded outcome in a receipt. These are refusals of input ([`InputError`],
//! [`ModuleError`]) and host failures ([`HostError`], of which storage's own
//! [`StorageError`] is one kind).

use thiserror::Error;
use uuid::Uuid;

pub use crate::storage::StorageError;

/// Why a module was refused at deploy.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleError {
    /// Larger than `CODE_BYTES_MAX`.
    #[error("module is {len} bytes, more than CODE_BYTES_MAX ({max})")]
    TooLarge {
        /// Its size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// Neither valid wasm nor valid WAT, or wasm that does not parse.
    #[error("module is not valid wasm: {0}")]
    Malformed(String),
    /// An import from another module, or of a name the ABI does not have.
    #[error("import {module}.{name} is not part of the Semel ABI")]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// A `semel` import whose type differs from the ABI's.
    #[error("import semel.{name} has type {found}, the ABI says {expected}")]
    ImportType {
        /// Import name.
        name: String,
        /// The ABI's signature.
        expected: String,
        /// The module's signature.
        found: String,
    },
    /// A structural rule of the interface (start function, memories, tables, names).
    #[error("module refused: {0}")]
    Refused(String),
    /// wasmtime refused the module (validation of instructions, a disabled feature).
    #[error("module does not compile: {0}")]
    Compile(String),
    /// The module does not link against the host's functions.
    #[error("module does not link: {0}")]
    Link(String),
}

/// Input refused before anything was recorded: its transaction id stays unused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The transaction JSON does not parse or has the wrong shape.
    #[error("malformed transaction: {0}")]
    Json(String),
    /// The id is not a UUID.
    #[error("transaction id {0:?} is not a UUID")]
    BadId(String),
    /// A contract name outside `[A-Za-z0-9_.-]{1,64}`.
    #[error("contract name {name:?} is invalid: {why}")]
    BadContractName {
        /// The name given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A method name that is empty or too long.
    #[error("method name {name:?} is invalid: {why}")]
    BadMethodName {
        /// The name given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A sender name that is empty or too long.
    #[error("sender {name:?} is invalid: {why}")]
    BadSender {
        /// The sender given.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A call argument larger than `ARG_BYTES_MAX`.
    #[error("arguments of call {call} are {len} bytes, more than ARG_BYTES_MAX ({max})")]
    ArgsTooLarge {
        /// Index of the call (0-based).
        call: usize,
        /// Their size in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A gas limit of zero or above `GAS_LIMIT_MAX`.
    #[error("gas limit {given} is out of range: it must be 1 to {max}")]
    GasLimit {
        /// The limit given.
        given: String,
        /// The largest accepted.
        max: u64,
    },
    /// No calls, or more than `CALLS_PER_TX_MAX`.
    #[error("a transaction needs 1 to {max} calls, this one has {count}")]
    CallCount {
        /// Calls given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A deployed module was refused.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// A listing named a contract that is not deployed at the version it reads.
    #[error("no contract {name} is deployed at version {version}")]
    UnknownContract {
        /// The name given.
        name: String,
        /// The version read.
        version: u64,
    },
    /// A query named a version the store does not hold.
    #[error("version {asked} is not available: the store holds versions {oldest} to {latest}")]
    UnknownVersion {
        /// Version asked for.
        asked: u64,
        /// Oldest version still readable.
        oldest: u64,
        /// Latest recorded version.
        latest: u64,
    },
    /// An events listing asked for more events than `EVENTS_LIST_MAX`.
    #[error("an events listing of {given} events is more than EVENTS_LIST_MAX ({max})")]
    EventsLimit {
        /// The limit asked for.
        given: usize,
        /// The largest accepted.
        max: usize,
    },
    /// A signature that does not verify, a signed transaction whose sender is not its
    /// key's account, or an unsigned one whose sender is an `ed25519:` account.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Pruning a store that other hosts share: their heads would keep the old horizon
    /// and read versions whose rows are gone.
    #[error("prune is not available on a store other hosts share ({0}): nothing was removed")]
    PruneShared(String),
    /// An events listing's topic is longer than any event's can be.
    #[error("topic of {len} bytes is more than EVENT_TOPIC_BYTES_MAX ({max})")]
    EventTopicTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
}

/// A failure of the host itself, never of a contract or of its input: nothing was
/// recorded and no transaction id was used.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum HostError {
    /// The storage backend failed (I/O, corruption, a commit conflict).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The data dir itself (not its store) could not be created, read or locked.
    #[error("data dir: {0}")]
    DataDir(String),
    /// A read-only open found no store in the data dir (nothing was created).
    #[error("{0}")]
    NoStore(String),
    /// Another process holds the data dir past the wait.
    #[error("data dir {0} is in use by another process")]
    Locked(String),
    /// wasmtime failed where no contract is at fault: its configuration, the linker, an
    /// instantiation that is not a trap, an execution error that is not an outcome.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// Stored data does not agree with itself (code that does not match its hash or no
    /// longer compiles, a record that does not decode).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A resource of the process ran out or broke: a thread could not start, a lock was
    /// poisoned by a panic.
    #[error("host resource: {0}")]
    Resource(String),
}

impl From<crate::codec::DecodeError> for HostError {
    fn from(e: crate::codec::DecodeError) -> Self {
        HostError::Storage(e.into())
    }
}

/// Why a submitted transaction got no receipt.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Bad input; nothing recorded.
    #[error(transparent)]
    Rejected(#[from] InputError),
    /// The id was recorded with different content; nothing changed.
    #[error(
        "transaction id {id} was already recorded with different content (at version {version})"
    )]
    Conflict {
        /// The id.
        id: Uuid,
        /// The version it was recorded at.
        version: u64,
    },
    /// The host failed; nothing recorded, the id stays unused.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Why a query gave no output.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Bad input (names, arguments, version).
    #[error(transparent)]
    Rejected(#[from] InputError),
    /// The contract failed: reverted, trapped, tried to write, or ran out of gas.
    #[error("query failed: {0}")]
    Failed(String),
    /// The host failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl From<StorageError> for SubmitError {
    fn from(e: StorageError) -> Self {
        SubmitError::Host(e.into())
    }
}

impl From<StorageError> for QueryError {
    fn from(e: StorageError) -> Self {
        QueryError::Host(e.into())
    }
}
