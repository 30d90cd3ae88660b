//! Host functions of the contract's own keys: `storage_get`, `storage_set`,
//! `storage_remove` and `storage_next`. Reads go through the run's recorded view
//! (`TxCtx::get`, `TxCtx::next_key`); writes into its write set.

use std::sync::Arc;

use wasmtime::Linker;

use super::guest::*;
use crate::limits::*;
use crate::vm::abi::IMPORT_MODULE;
use crate::vm::context::{Access, TxCtx, charge};
use crate::vm::gas::*;

/// Defines this family's host functions in `linker`.
pub(super) fn define(linker: &mut Linker<TxCtx>) -> Res<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(
        m,
        "storage_get",
        |mut c: Ctx<'_>, kptr: i32, klen: i32, dst: i32, cap: i32| -> Res<i64> {
            let n = capped(klen, KEY_BYTES_MAX, "key", "KEY_BYTES_MAX")?;
            charge(
                &mut c,
                HOST_CALL_GAS + STORAGE_READ_GAS + STORAGE_READ_BYTE_GAS * gas_bytes(klen),
            )?;
            let key = read_key(&mut c, kptr, n)?;
            let ctx = c.data_mut();
            ctx.allow(Access::Read(&key))?;
            let contract = Arc::clone(&ctx.frame().contract);
            let value = ctx.get(&contract, &key).map_err(host)?;
            let Some(value) = value else { return Ok(-1) };
            let copied = value.len().min(unsigned(cap));
            charge(&mut c, STORAGE_READ_BYTE_GAS * u64::try_from(copied)?)?;
            to_i64(write_capped(&mut c, dst, cap, &value)?)
        },
    )?;
    linker.func_wrap(
        m,
        "storage_set",
        |mut c: Ctx<'_>, kptr: i32, klen: i32, vptr: i32, vlen: i32| -> Res<()> {
            let kn = capped(klen, KEY_BYTES_MAX, "key", "KEY_BYTES_MAX")?;
            let vn = capped(vlen, VALUE_BYTES_MAX, "value", "VALUE_BYTES_MAX")?;
            let bytes = gas_bytes(klen).saturating_add(gas_bytes(vlen));
            charge(
                &mut c,
                HOST_CALL_GAS + STORAGE_WRITE_GAS + STORAGE_WRITE_BYTE_GAS * bytes,
            )?;
            read_only_refusal(&c, "storage_set")?;
            let key = read_key(&mut c, kptr, kn)?;
            let value = read(&mut c, vptr, vn)?;
            let ctx = c.data_mut();
            ctx.allow(Access::Write(&key))?;
            let contract = ctx.frame().contract.clone();
            ctx.writes.put(&contract, &key, Some(value));
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "storage_remove",
        |mut c: Ctx<'_>, kptr: i32, klen: i32| -> Res<()> {
            let kn = capped(klen, KEY_BYTES_MAX, "key", "KEY_BYTES_MAX")?;
            charge(
                &mut c,
                HOST_CALL_GAS + STORAGE_WRITE_GAS + STORAGE_WRITE_BYTE_GAS * gas_bytes(klen),
            )?;
            read_only_refusal(&c, "storage_remove")?;
            let key = read_key(&mut c, kptr, kn)?;
            let ctx = c.data_mut();
            ctx.allow(Access::Write(&key))?;
            let contract = ctx.frame().contract.clone();
            ctx.writes.put(&contract, &key, None);
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "storage_next",
        |mut c: Ctx<'_>,
         pptr: i32,
         plen: i32,
         aptr: i32,
         alen: i32,
         dst: i32,
         cap: i32|
         -> Res<i64> {
            let pn = capped(plen, KEY_BYTES_MAX, "prefix", "KEY_BYTES_MAX")?;
            let an = if alen < 0 {
                None
            } else {
                Some(capped(
                    alen,
                    KEY_BYTES_MAX,
                    "lower bound key",
                    "KEY_BYTES_MAX",
                )?)
            };
            let after_bytes = if alen < 0 { 0 } else { gas_bytes(alen) };
            let bytes = gas_bytes(plen).saturating_add(after_bytes);
            charge(
                &mut c,
                HOST_CALL_GAS + STORAGE_READ_GAS + STORAGE_READ_BYTE_GAS * bytes,
            )?;
            let prefix = read_key(&mut c, pptr, pn)?;
            let after = match an {
                None => None,
                Some(an) => Some(read_key(&mut c, aptr, an)?),
            };
            c.data_mut().allow(Access::Scan(&prefix))?;
            let ctx = c.data();
            let next = ctx
                .next_key(&ctx.frame().contract, &prefix, after.as_deref())
                .map_err(host)?;
            let Some(key) = next else { return Ok(-1) };
            let copied = key.len().min(unsigned(cap));
            charge(&mut c, STORAGE_READ_BYTE_GAS * u64::try_from(copied)?)?;
            to_i64(write_capped(&mut c, dst, cap, &key)?)
        },
    )?;
    Ok(())
}
