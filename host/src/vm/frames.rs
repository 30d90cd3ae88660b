//! One contract frame: look the contract up, instantiate it in the transaction's store,
//! run the method, and on failure roll the frame's writes and events back.
//!
//! A frame's failure (revert, trap, unknown contract or method, reentrancy, depth) is a
//! [`FrameEnd::Failed`] its caller can handle. Running out of gas and host failures are
//! not: they come back as `Err` and end the whole transaction.

use std::sync::Arc;

use wasmtime::{AsContextMut, Extern, Trap};

use crate::error::HostError;
use crate::limits::{CALL_DEPTH_MAX, INSTANCES_PER_TURN, INSTANCES_PER_TX_MAX};
use crate::storage::Table;
use crate::types::CodeHash;
use crate::vm::abi::{INIT_METHOD, MIGRATE_METHOD};
use crate::vm::context::{Abort, Frame, Ready, TxCtx, charge};
use crate::vm::gas::FRAME_GAS;

/// How a frame ended, when it did not end the transaction.
#[derive(Debug)]
pub(crate) enum FrameEnd {
    /// The method returned; its output.
    Returned(Vec<u8>),
    /// The frame failed; why. Its writes and events are gone.
    Failed(String),
}

/// Which methods a frame may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A method call: `init` is refused.
    Call,
    /// The deploy's `init`, which a module need not have.
    Init,
    /// A migrate's `migrate`, which the new code must have.
    Migrate,
}

fn host(e: impl Into<HostError>) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Host(e.into()))
}

/// Runs `contract.method(input)` as a new frame on top of the store's stack.
///
/// # Errors
/// [`Abort::OutOfGas`] or [`Abort::Host`] inside a `wasmtime::Error`: the transaction ends.
pub(crate) fn run_frame(
    mut store: impl AsContextMut<Data = TxCtx>,
    contract: &str,
    method: &str,
    input: Vec<u8>,
    caller: Arc<str>,
    kind: FrameKind,
) -> wasmtime::Result<FrameEnd> {
    let mut store = store.as_context_mut();
    let failed = |m: String| Ok(FrameEnd::Failed(m));
    let ctx = store.data();
    if ctx.frames.len() >= CALL_DEPTH_MAX {
        return failed(format!(
            "call depth limit CALL_DEPTH_MAX ({CALL_DEPTH_MAX}) reached"
        ));
    }
    if ctx.frames.iter().any(|f| &*f.contract == contract) {
        return failed(format!(
            "reentrancy refused: {contract} is already on the call stack"
        ));
    }
    if method == INIT_METHOD && kind == FrameKind::Call {
        return failed(format!(
            "method {INIT_METHOD} of {contract} runs only at deploy"
        ));
    }
    if ctx.instances >= INSTANCES_PER_TX_MAX {
        return failed(format!(
            "more than INSTANCES_PER_TX_MAX ({INSTANCES_PER_TX_MAX}) contract calls in one transaction"
        ));
    }
    // Past an ordinary turn's share, counting an instance made early that no frame took.
    if ctx.instances + 1 >= INSTANCES_PER_TURN
        && let Some(turn) = store.data_mut().turn.as_mut()
    {
        turn.hold_large();
    }
    let Some(record) = store.data_mut().contract(contract).map_err(host)? else {
        return failed(format!("unknown contract {contract}"));
    };
    // Code is named by its hash, so what it loads cannot change; recorded all the same,
    // so that a run's read set names everything it depended on.
    store.data_mut().reads_mut().note_code(record.code_hash);
    let (instance, exports) = match take_ready(&mut store, &record.code_hash)? {
        Some(ready) => (Ok(ready.instance), ready.exports),
        None => {
            let ctx = store.data();
            let modules = Arc::clone(&ctx.modules);
            let code = Arc::clone(&ctx.code);
            let loaded = modules
                .loaded(&record.code_hash, &|| {
                    code.get(Table::Code, &record.code_hash.0)
                })
                .map_err(host)?;
            charge(&mut store, FRAME_GAS)?;
            (loaded.pre.instantiate(&mut store), loaded.exports)
        }
    };
    let instance = match instance {
        Ok(instance) => instance,
        // A trap while initializing (a segment out of bounds) is the module's fault.
        Err(e) if e.downcast_ref::<Trap>().is_some() => {
            return failed(format!("cannot instantiate {contract}: {e}"));
        }
        Err(e) => {
            return Err(host(HostError::Engine(format!(
                "cannot instantiate {contract}: {e:#}"
            ))));
        }
    };
    store.data_mut().instances += 1;
    let memory = exports
        .memory()
        .and_then(|export| instance.get_module_export(&mut store, export))
        .and_then(Extern::into_memory)
        .ok_or_else(|| {
            host(HostError::Corrupt(format!(
                "{contract} has no memory export"
            )))
        })?;
    let func = exports
        .method(method)
        .and_then(|export| instance.get_module_export(&mut store, export))
        .and_then(Extern::into_func)
        .map(|f| f.typed::<(), ()>(&store))
        .transpose()?;
    let Some(func) = func else {
        return match kind {
            FrameKind::Init => Ok(FrameEnd::Returned(Vec::new())),
            FrameKind::Migrate => failed(format!(
                "the new code of {contract} exports no {MIGRATE_METHOD} method"
            )),
            FrameKind::Call => failed(format!("contract {contract} has no method {method}")),
        };
    };
    let ctx = store.data_mut();
    let write_mark = ctx.writes.mark();
    let event_mark = ctx.events.len();
    ctx.frames.push(Frame {
        contract: Arc::from(contract),
        caller,
        memory,
        input,
        output: Vec::new(),
        last_result: Vec::new(),
    });
    let outcome = func.call(&mut store, ());
    let ctx = store.data_mut();
    let frame = ctx.frames.pop().expect("the frame pushed above");
    match outcome {
        Ok(()) => Ok(FrameEnd::Returned(frame.output)),
        Err(e) => {
            ctx.writes.rollback(write_mark);
            ctx.events.truncate(event_mark);
            classify(e)
        }
    }
}

/// The instance made ahead for `code` (see `prewarm/early.rs`), with the frame's gas and
/// its instantiation's fuel charged as instantiating here would. `None` when there is
/// none, or too little fuel for it: the frame then instantiates, and fails, as ever.
fn take_ready(
    store: &mut wasmtime::StoreContextMut<'_, TxCtx>,
    code: &CodeHash,
) -> wasmtime::Result<Option<Ready>> {
    let Some(ready) = store.data_mut().ready.take_if(|r| r.code == *code) else {
        return Ok(None);
    };
    let left = store.get_fuel()?;
    // Instantiating traps unless some fuel is left after it, as wasm code does.
    let Some(rest) = left
        .checked_sub(FRAME_GAS)
        .and_then(|l| l.checked_sub(ready.cost))
        .filter(|rest| *rest > 0)
    else {
        return Ok(None);
    };
    store.set_fuel(rest)?;
    Ok(Some(ready))
}

/// Sorts a frame's error into a failure its caller sees, or one that ends the transaction.
fn classify(e: wasmtime::Error) -> wasmtime::Result<FrameEnd> {
    if let Some(abort) = e.downcast_ref::<Abort>() {
        return match abort {
            Abort::Revert(m) => Ok(FrameEnd::Failed(format!("reverted: {m}"))),
            Abort::Fault(m) => Ok(FrameEnd::Failed(m.clone())),
            Abort::OutOfGas | Abort::Undeclared(_) | Abort::Host(_) => Err(e),
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Err(wasmtime::Error::new(Abort::OutOfGas)),
        Some(trap) => Ok(FrameEnd::Failed(trap.to_string())),
        None => Err(host(HostError::Engine(format!(
            "wasm execution failed: {e:#}"
        )))),
    }
}
