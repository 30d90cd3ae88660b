//! The host function `call`: a nested call to another contract, run as a new frame;
//! its failure is a result the caller sees, not the end of the transaction.

use wasmtime::Linker;

use super::guest::*;
use crate::limits::*;
use crate::vm::abi::IMPORT_MODULE;
use crate::vm::context::{TxCtx, charge};
use crate::vm::frames::{FrameEnd, FrameKind, run_frame};
use crate::vm::gas::*;

/// Defines this family's host functions in `linker`.
pub(super) fn define(linker: &mut Linker<TxCtx>) -> Res<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(
        m,
        "call",
        |mut c: Ctx<'_>,
         cptr: i32,
         clen: i32,
         mptr: i32,
         mlen: i32,
         aptr: i32,
         alen: i32|
         -> Res<i32> {
            let an = capped(alen, ARG_BYTES_MAX, "call argument", "ARG_BYTES_MAX")?;
            // Names longer than any name are not read (the call fails as unknown), so
            // they cost nothing per byte.
            let name_bytes = |len: i32, max: usize| {
                if unsigned(len) <= max {
                    gas_bytes(len)
                } else {
                    0
                }
            };
            let bytes = name_bytes(clen, CONTRACT_NAME_BYTES_MAX)
                .saturating_add(name_bytes(mlen, METHOD_NAME_BYTES_MAX))
                .saturating_add(gas_bytes(alen));
            charge(&mut c, HOST_CALL_GAS + CALL_GAS + COPY_BYTE_GAS * bytes)?;
            let contract = if unsigned(clen) <= CONTRACT_NAME_BYTES_MAX {
                Some(read(&mut c, cptr, unsigned(clen))?)
            } else {
                None
            };
            let method = if unsigned(mlen) <= METHOD_NAME_BYTES_MAX {
                Some(read(&mut c, mptr, unsigned(mlen))?)
            } else {
                None
            };
            let args = read(&mut c, aptr, an)?;
            let contract = contract.and_then(|b| String::from_utf8(b).ok());
            let method = method.and_then(|b| String::from_utf8(b).ok());
            let end = match (contract, method) {
                (Some(contract), Some(method)) => {
                    let caller_name = c.data().frame().contract.clone();
                    run_frame(
                        &mut c,
                        &contract,
                        &method,
                        args,
                        caller_name,
                        FrameKind::Call,
                    )?
                }
                (None, _) => {
                    FrameEnd::Failed("unknown contract: the name is not a contract name".into())
                }
                (_, None) => {
                    FrameEnd::Failed("unknown method: the name is not a method name".into())
                }
            };
            let (code, result) = match end {
                FrameEnd::Returned(output) => (0, output),
                FrameEnd::Failed(message) => (1, message.into_bytes()),
            };
            c.data_mut().frame_mut().last_result = result;
            Ok(code)
        },
    )?;
    Ok(())
}
