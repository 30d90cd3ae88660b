//! Host functions of the environment: who called (`caller`, `sender`, `self_name`), the
//! transaction (`tx_id`, `version`, `gas_left`), and hashing (`blake3`).

use wasmtime::Linker;

use super::guest::*;
use crate::limits::*;
use crate::vm::abi::IMPORT_MODULE;
use crate::vm::context::{TxCtx, charge};
use crate::vm::gas::*;

/// Defines this family's host functions in `linker`.
pub(super) fn define(linker: &mut Linker<TxCtx>) -> Res<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(m, "caller", |mut c: Ctx<'_>, dst: i32, cap: i32| {
        name_out(&mut c, dst, cap, |t| &t.frame().caller)
    })?;
    linker.func_wrap(m, "sender", |mut c: Ctx<'_>, dst: i32, cap: i32| {
        name_out(&mut c, dst, cap, |t| &t.sender)
    })?;
    linker.func_wrap(m, "self_name", |mut c: Ctx<'_>, dst: i32, cap: i32| {
        name_out(&mut c, dst, cap, |t| &t.frame().contract)
    })?;
    linker.func_wrap(m, "tx_id", |mut c: Ctx<'_>, dst: i32| {
        copy_out(&mut c, dst, |t| &t.tx_id)
    })?;
    linker.func_wrap(m, "version", |mut c: Ctx<'_>| -> Res<i64> {
        charge(&mut c, HOST_CALL_GAS)?;
        i64::try_from(c.data().base.version()).map_err(|_| fault("version beyond i64".into()))
    })?;
    linker.func_wrap(
        m,
        "blake3",
        |mut c: Ctx<'_>, ptr: i32, len: i32, dst: i32| -> Res<()> {
            let n = capped(
                len,
                HASH_INPUT_BYTES_MAX,
                "hash input",
                "HASH_INPUT_BYTES_MAX",
            )?;
            charge(&mut c, HOST_CALL_GAS + HASH_BYTE_GAS * gas_bytes(len))?;
            let hash = {
                let memory = c.data().frame().memory;
                let data = memory.data(&c);
                let r = guest_range(data.len(), ptr, n)?;
                *blake3::hash(&data[r]).as_bytes()
            };
            write(&mut c, dst, &hash)
        },
    )?;
    linker.func_wrap(m, "gas_left", |mut c: Ctx<'_>| -> Res<i64> {
        charge(&mut c, HOST_CALL_GAS)?;
        Ok(i64::try_from(c.get_fuel()?).unwrap_or(i64::MAX))
    })?;
    Ok(())
}
