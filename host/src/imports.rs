//! The host functions of interface §2, as a contract sees them.
//!
//! Each one checks its lengths against their limits (no work yet), charges gas (a base
//! price plus a price per byte, from `gas.rs`), then reads or writes guest memory only
//! through the bounds-checked helpers below, then acts. Guest integers are read as
//! unsigned with `cast_unsigned` and converted with `try_from`, never `as`. Names and
//! types come from `abi.rs`.

use std::sync::Arc;

use wasmtime::{Caller, Linker};

use crate::abi::IMPORT_MODULE;
use crate::context::{Abort, Event, TxCtx, charge};
use crate::frames::{FrameEnd, FrameKind, run_frame};
use crate::gas::{
    CALL_GAS, COPY_BYTE_GAS, EVENT_BYTE_GAS, EVENT_GAS, HASH_BYTE_GAS, HOST_CALL_GAS,
    STORAGE_READ_BYTE_GAS, STORAGE_READ_GAS, STORAGE_WRITE_BYTE_GAS, STORAGE_WRITE_GAS,
};
use crate::limits::{
    ARG_BYTES_MAX, CONTRACT_NAME_BYTES_MAX, EVENT_DATA_BYTES_MAX, EVENT_TOPIC_BYTES_MAX,
    HASH_INPUT_BYTES_MAX, KEY_BYTES_MAX, LOG_MESSAGE_BYTES_MAX, METHOD_NAME_BYTES_MAX,
    OUTPUT_BYTES_MAX, REVERT_MESSAGE_BYTES_MAX, VALUE_BYTES_MAX,
};

type Ctx<'a> = Caller<'a, TxCtx>;
type Res<T> = wasmtime::Result<T>;

fn fault(msg: String) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Fault(msg))
}

/// A guest length or pointer, read as unsigned.
fn unsigned(v: i32) -> usize {
    // u32 always fits usize on the 64-bit targets the host builds for.
    usize::try_from(v.cast_unsigned()).unwrap_or(usize::MAX)
}

/// Bytes of a guest length for gas purposes: prices are charged before any check.
fn gas_bytes(len: i32) -> u64 {
    u64::from(len.cast_unsigned())
}

/// A guest length checked against a limit named in the error.
fn capped(len: i32, max: usize, what: &str, limit: &str) -> Res<usize> {
    let n = unsigned(len);
    if n > max {
        return Err(fault(format!(
            "{what} of {n} bytes is more than {limit} ({max})"
        )));
    }
    Ok(n)
}

fn guest_range(mem_len: usize, ptr: i32, len: usize) -> Res<std::ops::Range<usize>> {
    let start = unsigned(ptr);
    match start.checked_add(len) {
        Some(end) if end <= mem_len => Ok(start..end),
        _ => Err(fault(format!(
            "memory range {start}..{start}+{len} is outside the contract's {mem_len}-byte memory"
        ))),
    }
}

fn read(caller: &mut Ctx<'_>, ptr: i32, len: usize) -> Res<Vec<u8>> {
    let memory = caller.data().frame().memory;
    let data = memory.data(&caller);
    let r = guest_range(data.len(), ptr, len)?;
    Ok(data[r].to_vec())
}

fn write(caller: &mut Ctx<'_>, dst: i32, bytes: &[u8]) -> Res<()> {
    let memory = caller.data().frame().memory;
    let data = memory.data_mut(&mut *caller);
    let r = guest_range(data.len(), dst, bytes.len())?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Copies `min(len, cap)` bytes of `bytes` to `dst` and returns the full length.
fn write_capped(caller: &mut Ctx<'_>, dst: i32, cap: i32, bytes: &[u8]) -> Res<usize> {
    let n = bytes.len().min(unsigned(cap));
    write(caller, dst, &bytes[..n])?;
    Ok(bytes.len())
}

fn to_i32(n: usize) -> Res<i32> {
    i32::try_from(n).map_err(|_| fault(format!("length {n} does not fit an i32")))
}

fn to_i64(n: usize) -> Res<i64> {
    i64::try_from(n).map_err(|_| fault(format!("length {n} does not fit an i64")))
}

fn host(e: crate::storage::StorageError) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Host(e))
}

fn read_only_refusal(caller: &Ctx<'_>, what: &str) -> Res<()> {
    if caller.data().read_only {
        return Err(fault(format!("{what} is not allowed in a read-only query")));
    }
    Ok(())
}

/// Copies one of the frame's byte strings (chosen by `pick`) to `dst`.
fn copy_out(caller: &mut Ctx<'_>, dst: i32, pick: fn(&TxCtx) -> &[u8]) -> Res<()> {
    let bytes = pick(caller.data()).to_vec();
    charge(
        &mut *caller,
        HOST_CALL_GAS + COPY_BYTE_GAS * u64::try_from(bytes.len())?,
    )?;
    write(caller, dst, &bytes)
}

/// Copies a name (chosen by `pick`) with the `(dst, cap) -> len` convention.
fn name_out(caller: &mut Ctx<'_>, dst: i32, cap: i32, pick: fn(&TxCtx) -> &str) -> Res<i32> {
    let name = pick(caller.data()).to_owned();
    let copied = name.len().min(unsigned(cap));
    charge(
        &mut *caller,
        HOST_CALL_GAS + COPY_BYTE_GAS * u64::try_from(copied)?,
    )?;
    to_i32(write_capped(caller, dst, cap, name.as_bytes())?)
}

/// Defines every host function in `linker` under [`IMPORT_MODULE`].
///
/// # Errors
/// Only if a name were defined twice (a bug).
pub(crate) fn define(linker: &mut Linker<TxCtx>) -> Res<()> {
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
    linker.func_wrap(
        m,
        "storage_get",
        |mut c: Ctx<'_>, kptr: i32, klen: i32, dst: i32, cap: i32| -> Res<i64> {
            let n = capped(klen, KEY_BYTES_MAX, "key", "KEY_BYTES_MAX")?;
            charge(
                &mut c,
                HOST_CALL_GAS + STORAGE_READ_GAS + STORAGE_READ_BYTE_GAS * gas_bytes(klen),
            )?;
            let key = read(&mut c, kptr, n)?;
            let ctx = c.data_mut();
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
            let key = read(&mut c, kptr, kn)?;
            let value = read(&mut c, vptr, vn)?;
            let ctx = c.data_mut();
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
            let key = read(&mut c, kptr, kn)?;
            let ctx = c.data_mut();
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
            let prefix = read(&mut c, pptr, pn)?;
            let after = match an {
                None => None,
                Some(an) => Some(read(&mut c, aptr, an)?),
            };
            let ctx = c.data();
            let next = ctx
                .view()
                .next_key(&ctx.frame().contract, &prefix, after.as_deref())
                .map_err(host)?;
            let Some(key) = next else { return Ok(-1) };
            let copied = key.len().min(unsigned(cap));
            charge(&mut c, STORAGE_READ_BYTE_GAS * u64::try_from(copied)?)?;
            to_i64(write_capped(&mut c, dst, cap, &key)?)
        },
    )?;
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
    linker.func_wrap(m, "result_len", |mut c: Ctx<'_>| -> Res<i32> {
        charge(&mut c, HOST_CALL_GAS)?;
        to_i32(c.data().frame().last_result.len())
    })?;
    linker.func_wrap(m, "result_read", |mut c: Ctx<'_>, dst: i32| {
        copy_out(&mut c, dst, |t| &t.frame().last_result)
    })?;
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
        "emit",
        |mut c: Ctx<'_>, tptr: i32, tlen: i32, dptr: i32, dlen: i32| -> Res<()> {
            let bytes = gas_bytes(tlen).saturating_add(gas_bytes(dlen));
            let tn = capped(
                tlen,
                EVENT_TOPIC_BYTES_MAX,
                "event topic",
                "EVENT_TOPIC_BYTES_MAX",
            )?;
            let dn = capped(
                dlen,
                EVENT_DATA_BYTES_MAX,
                "event data",
                "EVENT_DATA_BYTES_MAX",
            )?;
            charge(&mut c, HOST_CALL_GAS + EVENT_GAS + EVENT_BYTE_GAS * bytes)?;
            let topic = String::from_utf8(read(&mut c, tptr, tn)?)
                .map_err(|_| fault("event topic is not UTF-8".into()))?;
            let data = read(&mut c, dptr, dn)?;
            let ctx = c.data_mut();
            ctx.count_event().map_err(wasmtime::Error::new)?;
            if !ctx.read_only {
                let contract = ctx.frame().contract.to_string();
                ctx.events.push(Event {
                    contract,
                    topic,
                    data,
                });
            }
            Ok(())
        },
    )?;
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
    linker.func_wrap(m, "log", |mut c: Ctx<'_>, ptr: i32, len: i32| -> Res<()> {
        let n = capped(
            len,
            LOG_MESSAGE_BYTES_MAX,
            "log message",
            "LOG_MESSAGE_BYTES_MAX",
        )?;
        charge(&mut c, HOST_CALL_GAS + COPY_BYTE_GAS * gas_bytes(len))?;
        let bytes = read(&mut c, ptr, n)?;
        if c.data().debug_log {
            eprintln!(
                "[{}] {}",
                c.data().frame().contract,
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(())
    })?;
    Ok(())
}
