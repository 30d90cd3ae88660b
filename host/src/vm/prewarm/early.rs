//! Early instantiation: a store made ready before the writer lock — its turn taken and
//! the contract the transaction calls first already instantiated — work that needs no
//! state, so it runs while another transaction holds the lock.
//!
//! A fresh instance is the same whenever it is made (instantiation runs no wasm), and
//! the fuel its making used is charged when a frame takes it, so a run that uses it
//! behaves exactly as one that instantiates under the lock.

use std::sync::Arc;

use wasmtime::Store;

use crate::types::CodeHash;
use crate::vm::Runtime;
use crate::vm::context::{Ready, TxCtx};
use crate::vm::store::RunStore;
#[cfg(test)]
use crate::vm::store::Spent;

/// Fuel an early instantiation may use: any module's data fits many times over.
const EARLY_FUEL: u64 = u64::MAX / 2;

/// A store made ready ahead of its run: see the module docs.
pub(crate) struct Early(pub(crate) RunStore);

impl Early {
    /// The code it holds an instance of, until a frame takes that.
    pub fn code(&self) -> Option<CodeHash> {
        self.0.store.data().ready.as_ref().map(|r| r.code)
    }

    /// The store as if a run had used it.
    #[cfg(test)]
    pub fn into_spent(self) -> Spent {
        Spent::new(self.0)
    }
}

/// An [`Early`] store with `code` instantiated, when a turn is free at once and the
/// module is compiled; `None` otherwise (the run then does it all under the lock).
pub(crate) fn prepare_early(runtime: &Runtime, code: CodeHash) -> Option<Early> {
    let loaded = runtime.modules().cached(&code)?;
    let turn = runtime.turns().try_early()?;
    let mut ctx = TxCtx::new(Arc::clone(runtime.modules()));
    ctx.turn = Some(turn.handle());
    let mut store = Store::new(runtime.engine(), ctx);
    // Instantiating charges fuel (active data segments are priced per byte): measured
    // here, charged when a frame takes the instance, as if it instantiated then.
    store.set_fuel(EARLY_FUEL).ok()?;
    let instance = loaded.pre.instantiate(&mut store).ok()?;
    let cost = EARLY_FUEL.checked_sub(store.get_fuel().ok()?)?;
    store.data_mut().ready = Some(Ready {
        code,
        instance,
        exports: loaded.exports,
        cost,
    });
    Some(Early(RunStore { store, turn }))
}
