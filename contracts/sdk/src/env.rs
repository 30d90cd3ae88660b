//! Safe wrappers over the host functions that are not storage: the call's argument and
//! output, reverting, the call stack's names, cross-contract calls, events, hashing,
//! gas and logging.
//!
//! Each wrapper owns the buffer handling the raw function asks for (read the length,
//! then the bytes) and nothing else; storage is in `storage.rs`, JSON in `json.rs`.

use alloc::string::String;
use alloc::vec::Vec;

use crate::abi::raw;

/// The host's length convention for the name functions: it returns the full length and
/// copies at most `cap` bytes. Names are short, so one guess usually suffices.
const NAME_GUESS_BYTES: usize = 64;

/// Reads a host value by the `(dst, cap) -> full length` convention, asking a second
/// time with a buffer of the full length when the first one was too small.
pub(crate) fn read_sized(
    mut read: impl FnMut(*mut u8, usize) -> i64,
    guess: usize,
) -> Option<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(guess);
    let len = usize::try_from(read(buf.as_mut_ptr(), buf.capacity())).ok()?;
    if len > buf.capacity() {
        buf.reserve_exact(len);
        read(buf.as_mut_ptr(), len);
    }
    // SAFETY: the host wrote `len` bytes (all of them, after the second read) into
    // `buf`, whose capacity is at least `len`.
    unsafe { buf.set_len(len) };
    Some(buf)
}

/// Reads one of the name functions (`caller`, `sender`, `self_name`).
fn read_name(mut read: impl FnMut(*mut u8, usize) -> i32) -> String {
    let bytes =
        read_sized(|dst, cap| i64::from(read(dst, cap)), NAME_GUESS_BYTES).unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_else(|_| revert("a name from the host is not UTF-8"))
}

/// This call's argument bytes (empty when the call has none).
pub fn input() -> Vec<u8> {
    // SAFETY: input_len takes nothing; input_read writes exactly input_len bytes into a
    // buffer of that capacity.
    unsafe {
        let len = usize::try_from(raw::input_len()).unwrap_or(0);
        let mut buf = Vec::with_capacity(len);
        if len > 0 {
            raw::input_read(buf.as_mut_ptr());
            buf.set_len(len);
        }
        buf
    }
}

/// Sets this call's return data, replacing an earlier one.
pub fn set_output(bytes: &[u8]) {
    // SAFETY: the pointer and length come from one live slice.
    unsafe { raw::output(bytes.as_ptr(), bytes.len()) }
}

/// Ends this call with `message`: the host discards the frame's writes and events and
/// the caller sees a failure carrying the message. Never returns.
pub fn revert(message: &str) -> ! {
    // SAFETY: the pointer and length come from one live slice.
    unsafe { raw::revert(message.as_ptr(), message.len()) }
}

/// The immediate caller: the transaction's sender for a top-level call, else the name
/// of the calling contract.
pub fn caller() -> String {
    // SAFETY: the host writes at most `cap` bytes to `dst`.
    read_name(|dst, cap| unsafe { raw::caller(dst, cap) })
}

/// The transaction's sender, whoever called this contract.
pub fn sender() -> String {
    // SAFETY: the host writes at most `cap` bytes to `dst`.
    read_name(|dst, cap| unsafe { raw::sender(dst, cap) })
}

/// This contract's name.
pub fn self_name() -> String {
    // SAFETY: the host writes at most `cap` bytes to `dst`.
    read_name(|dst, cap| unsafe { raw::self_name(dst, cap) })
}

/// The transaction id, 16 bytes (a UUID).
pub fn tx_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    // SAFETY: tx_id writes exactly 16 bytes.
    unsafe { raw::tx_id(id.as_mut_ptr()) };
    id
}

/// The state version this transaction reads from.
pub fn version() -> u64 {
    // SAFETY: no arguments.
    let v = unsafe { raw::version() };
    u64::try_from(v).unwrap_or(0)
}

/// Gas left to the whole transaction.
pub fn gas_left() -> u64 {
    // SAFETY: no arguments.
    let g = unsafe { raw::gas_left() };
    u64::try_from(g).unwrap_or(0)
}

/// Records an event with `topic` and `data`; it reaches the receipt unless this frame
/// (or one below it that fails) reverts.
pub fn emit(topic: &str, data: &[u8]) {
    // SAFETY: both pointer and length pairs come from live slices.
    unsafe { raw::emit(topic.as_ptr(), topic.len(), data.as_ptr(), data.len()) }
}

/// The 32-byte BLAKE3 hash of `data`, computed by the host.
pub fn blake3(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: the input comes from a live slice; the host writes 32 bytes to `out`.
    unsafe { raw::blake3(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out
}

/// Debug text for whoever runs the host; never part of state or receipt.
pub fn log(message: &str) {
    // SAFETY: the pointer and length come from one live slice.
    unsafe { raw::log(message.as_ptr(), message.len()) }
}

/// Calls `method` of `contract` with `args`, synchronously.
///
/// # Errors
///
/// `Err` carries the callee's error message when it failed: it reverted, trapped, does
/// not exist, or was refused (reentrancy, depth limit). Its writes and events are then
/// discarded and this contract goes on; running out of gas is not caught here, it ends
/// the whole transaction.
pub fn call(contract: &str, method: &str, args: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
    // SAFETY: the three pairs come from live slices; result_read writes exactly
    // result_len bytes into a buffer of that capacity.
    unsafe {
        let status = raw::call(
            contract.as_ptr(),
            contract.len(),
            method.as_ptr(),
            method.len(),
            args.as_ptr(),
            args.len(),
        );
        let len = usize::try_from(raw::result_len()).unwrap_or(0);
        let mut result = Vec::with_capacity(len);
        if len > 0 {
            raw::result_read(result.as_mut_ptr());
            result.set_len(len);
        }
        if status == 0 { Ok(result) } else { Err(result) }
    }
}
