//! A run's wasmtime `Store` with its turn to execute. While either is alive, so are its
//! instances; dropping a finished one ([`Spent`]) frees them (wasmtime then clears their
//! memory), which the host does after it has released the writer lock, or hands to the
//! recycler thread (`prewarm/recycler.rs`).

use wasmtime::Store;

use crate::vm::context::TxCtx;
use crate::vm::turns::ExecutionPermit;

/// A store and the turn it holds. The fields drop in order: the instances go back to
/// the pool before the turn ends.
pub(crate) struct RunStore {
    pub store: Store<TxCtx>,
    pub turn: ExecutionPermit,
}

/// A finished run's store, to drop when convenient.
pub(crate) struct Spent(#[allow(dead_code, reason = "held to be dropped")] RunStore);

impl Spent {
    pub fn new(store: RunStore) -> Self {
        Self(store)
    }
}
