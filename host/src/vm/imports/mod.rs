//! The host functions of interface §2, as a contract sees them, one file per family.
//!
//! Each one checks its lengths against their limits (no work yet), charges gas (a base
//! price plus a price per byte, from `gas.rs`), then reads or writes guest memory only
//! through the bounds-checked helpers of `guest.rs`, then acts. Names and types come
//! from `abi.rs`; a test holds the linker to that table.

mod calls;
mod env;
mod events;
mod frame_io;
mod guest;
mod storage;

use wasmtime::Linker;

use crate::vm::context::TxCtx;

/// Defines every host function in `linker` under the ABI's import module.
///
/// # Errors
/// Only if a name were defined twice (a bug).
pub(crate) fn define(linker: &mut Linker<TxCtx>) -> wasmtime::Result<()> {
    frame_io::define(linker)?;
    storage::define(linker)?;
    calls::define(linker)?;
    env::define(linker)?;
    events::define(linker)
}
