//! The ledger: what a transaction is and what is recorded of it. Transactions and their
//! content hash ([`transaction`]), access sets ([`access`]), receipts ([`receipt`]), the layouts of the records
//! in storage ([`records`]), the events index ([`events`]), the head that commits advance
//! ([`head`]), and the exactly-once lookup ([`exactly_once`]), and
//! signatures ([`signature`]).

pub(crate) mod access;
pub(crate) mod events;
pub(crate) mod exactly_once;
pub(crate) mod head;
pub(crate) mod names;
pub(crate) mod receipt;
pub(crate) mod records;
pub(crate) mod signature;
pub(crate) mod transaction;

pub use access::{AccessSet, ContractAccess, KeySpec};
pub use events::{EventFilter, EventRecord};
pub use receipt::{CallResult, Event, Receipt, Status};
pub use signature::{
    ACCOUNT_PREFIX, SIGNING_DOMAIN, TxSignature, account_id, signing_bytes, signing_hash,
};
pub use transaction::{
    Batch, Call, CodeLookup, DEFAULT_SENDER, Transaction, TxBody, compact_json, parse_id,
};
