//! What every host function shares: reading and writing guest memory only through
//! bounds-checked helpers, lengths checked against their limits before any work, guest
//! integers read as unsigned and converted with `try_from`, never `as`.

use smallvec::SmallVec;
use wasmtime::Caller;

use crate::error::HostError;
use crate::vm::context::{Abort, TxCtx, charge};
use crate::vm::gas::{COPY_BYTE_GAS, HOST_CALL_GAS};

pub(super) type Ctx<'a> = Caller<'a, TxCtx>;
pub(super) type Res<T> = wasmtime::Result<T>;

pub(super) fn fault(msg: String) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Fault(msg))
}

/// A guest length or pointer, read as unsigned.
pub(super) fn unsigned(v: i32) -> usize {
    // u32 always fits usize on the 64-bit targets the host builds for.
    usize::try_from(v.cast_unsigned()).unwrap_or(usize::MAX)
}

/// Bytes of a guest length for gas purposes: prices are charged before any check.
pub(super) fn gas_bytes(len: i32) -> u64 {
    u64::from(len.cast_unsigned())
}

/// A guest length checked against a limit named in the error.
pub(super) fn capped(len: i32, max: usize, what: &str, limit: &str) -> Res<usize> {
    let n = unsigned(len);
    if n > max {
        return Err(fault(format!(
            "{what} of {n} bytes is more than {limit} ({max})"
        )));
    }
    Ok(n)
}

pub(super) fn guest_range(mem_len: usize, ptr: i32, len: usize) -> Res<std::ops::Range<usize>> {
    let start = unsigned(ptr);
    match start.checked_add(len) {
        Some(end) if end <= mem_len => Ok(start..end),
        _ => Err(fault(format!(
            "memory range {start}..{start}+{len} is outside the contract's {mem_len}-byte memory"
        ))),
    }
}

pub(super) fn read(caller: &mut Ctx<'_>, ptr: i32, len: usize) -> Res<Vec<u8>> {
    let memory = caller.data().frame().memory;
    let data = memory.data(&caller);
    let r = guest_range(data.len(), ptr, len)?;
    Ok(data[r].to_vec())
}

/// A key or prefix read from guest memory for the length of one host call: on the
/// stack, on the heap only past 64 bytes (a contract's keys are mostly far shorter).
pub(super) type GuestKey = SmallVec<[u8; 64]>;

/// [`read`], for a key the host call only looks at.
pub(super) fn read_key(caller: &mut Ctx<'_>, ptr: i32, len: usize) -> Res<GuestKey> {
    let memory = caller.data().frame().memory;
    let data = memory.data(&caller);
    let r = guest_range(data.len(), ptr, len)?;
    Ok(GuestKey::from_slice(&data[r]))
}

pub(super) fn write(caller: &mut Ctx<'_>, dst: i32, bytes: &[u8]) -> Res<()> {
    let memory = caller.data().frame().memory;
    let data = memory.data_mut(&mut *caller);
    let r = guest_range(data.len(), dst, bytes.len())?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

/// Copies `min(len, cap)` bytes of `bytes` to `dst` and returns the full length.
pub(super) fn write_capped(caller: &mut Ctx<'_>, dst: i32, cap: i32, bytes: &[u8]) -> Res<usize> {
    let n = bytes.len().min(unsigned(cap));
    write(caller, dst, &bytes[..n])?;
    Ok(bytes.len())
}

pub(super) fn to_i32(n: usize) -> Res<i32> {
    i32::try_from(n).map_err(|_| fault(format!("length {n} does not fit an i32")))
}

pub(super) fn to_i64(n: usize) -> Res<i64> {
    i64::try_from(n).map_err(|_| fault(format!("length {n} does not fit an i64")))
}

pub(super) fn host(e: impl Into<HostError>) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Host(e.into()))
}

pub(super) fn read_only_refusal(caller: &Ctx<'_>, what: &str) -> Res<()> {
    if caller.data().read_only {
        return Err(fault(format!("{what} is not allowed in a read-only query")));
    }
    Ok(())
}

/// Copies one of the frame's byte strings (chosen by `pick`) to `dst`.
pub(super) fn copy_out(caller: &mut Ctx<'_>, dst: i32, pick: fn(&TxCtx) -> &[u8]) -> Res<()> {
    let bytes = pick(caller.data()).to_vec();
    charge(
        &mut *caller,
        HOST_CALL_GAS + COPY_BYTE_GAS * u64::try_from(bytes.len())?,
    )?;
    write(caller, dst, &bytes)
}

/// Copies a name (chosen by `pick`) with the `(dst, cap) -> len` convention.
pub(super) fn name_out(
    caller: &mut Ctx<'_>,
    dst: i32,
    cap: i32,
    pick: fn(&TxCtx) -> &str,
) -> Res<i32> {
    let name = pick(caller.data()).to_owned();
    let copied = name.len().min(unsigned(cap));
    charge(
        &mut *caller,
        HOST_CALL_GAS + COPY_BYTE_GAS * u64::try_from(copied)?,
    )?;
    to_i32(write_capped(caller, dst, cap, name.as_bytes())?)
}
