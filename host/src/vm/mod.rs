//! The wasm layer: everything that knows about wasmtime. It runs one transaction (or
//! query) against a state view it is given and returns the run's complete output; it
//! never touches storage or the ledger's records.
//!
//! Lowest first: [`abi`] (the import table) and [`gas`] (prices), [`validate`] (deploy
//! checks), `engine` (the deterministic wasmtime configuration), [`turns`] (how many
//! runs may hold instances at once), [`module_cache`] (compiled modules, bounded by
//! bytes, with `exports` resolved once and `artifact` files on disk), [`context`] (what a run's `Store` carries),
//! [`frames`] (one contract call), [`imports`] (the host functions, by family),
//! `runtime` (engine, linker and module cache together), [`store`] (a run's store and
//! its turn), [`prewarm`] (work done ahead of a run, for latency), and [`run`] (one
//! transaction to an outcome).

pub(crate) mod abi;
mod artifact;
pub(crate) mod context;
mod engine;
mod exports;
pub(crate) mod frames;
pub(crate) mod gas;
pub(crate) mod imports;
pub(crate) mod module_cache;
pub(crate) mod prewarm;
pub(crate) mod run;
mod runtime;
pub(crate) mod store;
pub(crate) mod turns;
pub(crate) mod validate;

pub use module_cache::{CacheStats, ModuleSource};
pub use runtime::Runtime;
