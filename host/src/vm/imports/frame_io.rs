//! Host functions of a frame's own input and output: `input_len`, `input_read`,
//! `output`, `revert`, and the last nested call's result (`result_len`, `result_read`).

use wasmtime::Linker;

use super::guest::*;
use crate::limits::*;
use crate::vm::abi::IMPORT_MODULE;
use crate::vm::context::{Abort, TxCtx, charge};
use crate::vm::gas::*;

/// Defines this family's host functions in `linker`.
pub(super) fn define(linker: &mut Linker<TxCtx>) -> Res<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(m, "input_len", |mut c: Ctx<'_>| -> Res<i32> {
        charge(&mut c, HOST_CALL_GAS)?;
        to_i32(c.data().frame().input.len())
    })?;
    linker.func_wrap(m, "input_read", |mut c: Ctx<'_>, dst: i32| {
        copy_out(&mut c, dst, |t| &t.frame().input)
    })?;
    linker.func_wrap(
        m,
        "output",
        |mut c: Ctx<'_>, ptr: i32, len: i32| -> Res<()> {
            let n = capped(len, OUTPUT_BYTES_MAX, "output", "OUTPUT_BYTES_MAX")?;
            charge(&mut c, HOST_CALL_GAS + COPY_BYTE_GAS * gas_bytes(len))?;
            let bytes = read(&mut c, ptr, n)?;
            c.data_mut().frame_mut().output = bytes;
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "revert",
        |mut c: Ctx<'_>, ptr: i32, len: i32| -> Res<()> {
            let n = capped(
                len,
                REVERT_MESSAGE_BYTES_MAX,
                "revert message",
                "REVERT_MESSAGE_BYTES_MAX",
            )?;
            charge(&mut c, HOST_CALL_GAS + COPY_BYTE_GAS * gas_bytes(len))?;
            let bytes = read(&mut c, ptr, n)?;
            Err(wasmtime::Error::new(Abort::Revert(
                String::from_utf8_lossy(&bytes).into_owned(),
            )))
        },
    )?;
    linker.func_wrap(m, "result_len", |mut c: Ctx<'_>| -> Res<i32> {
        charge(&mut c, HOST_CALL_GAS)?;
        to_i32(c.data().frame().last_result.len())
    })?;
    linker.func_wrap(m, "result_read", |mut c: Ctx<'_>, dst: i32| {
        copy_out(&mut c, dst, |t| &t.frame().last_result)
    })?;
    Ok(())
}
