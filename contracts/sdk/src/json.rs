//! JSON, the default encoding of arguments, outputs, cross-contract calls and event
//! data (serde_json without std).
//!
//! Methods declared with [`crate::contract_methods!`] use [`args`] and [`output`] for
//! you; call them directly in a method that handles its input by hand.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// This call's argument parsed as JSON; an empty argument reads as `{}`, so a method
/// whose parameters are all optional may be called without one. Reverts with serde's
/// message (`missing field `to``, …) when the argument does not fit `T`.
pub fn args<T: DeserializeOwned>() -> T {
    let input = crate::input();
    let text: &[u8] = if input.is_empty() { b"{}" } else { &input };
    serde_json::from_slice(text)
        .unwrap_or_else(|e| crate::revert(&alloc::format!("invalid arguments: {e}")))
}

/// `value` as compact JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| crate::revert("cannot encode JSON"))
}

/// Sets this call's output to `value` as compact JSON.
pub fn output<T: Serialize + ?Sized>(value: &T) {
    crate::set_output(&to_vec(value));
}

/// Emits an event whose data is `data` as compact JSON.
pub fn emit<T: Serialize + ?Sized>(topic: &str, data: &T) {
    crate::emit(topic, &to_vec(data));
}

/// Calls `method` of `contract` with `args` as JSON and parses its output as JSON (an
/// empty output reads as `null`, so `R = ()` fits a method that outputs nothing).
///
/// # Errors
///
/// The callee's error message when it failed (see [`crate::call`]). An output that
/// does not parse as `R` reverts this call instead: it is a bug, not a refusal.
pub fn call<A: Serialize + ?Sized, R: DeserializeOwned>(
    contract: &str,
    method: &str,
    args: &A,
) -> Result<R, String> {
    match crate::call(contract, method, &to_vec(args)) {
        Ok(out) => {
            let text: &[u8] = if out.is_empty() { b"null" } else { &out };
            Ok(serde_json::from_slice(text).unwrap_or_else(|e| {
                crate::revert(&alloc::format!(
                    "{contract}.{method} returned unexpected output: {e}"
                ))
            }))
        }
        Err(msg) => Err(String::from_utf8_lossy(&msg).into_owned()),
    }
}
