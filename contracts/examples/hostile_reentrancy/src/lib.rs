//! `hostile_reentrancy`: tries to enter a contract already on the call stack.
//!
//! Each method writes key `touched` before its call, so a test can check the write
//! was discarded.
//! - `self_call`: calls its own `self_call`. Outcome: the host refuses the inner call
//!   (`call` returns 1) and the method reverts with "self call failed: <the host's
//!   message>", i.e. "self call failed: reentrancy refused: <name> is already on the
//!   call stack";
//! - `ping {"peer"}`: calls `peer.pong`; `pong` calls back its caller's `ping`. Deploy
//!   it twice (say `r1`, `r2`) and call `r1.ping {"peer": "r2"}`. Outcome: the host
//!   refuses `r2`'s call back into `r1`, `pong` reverts with "call back failed: …", and
//!   `ping` reverts with "peer failed: reverted: call back failed: reentrancy refused:
//!   r1 is already on the call stack";
//! - `probe`: calls its own `probe` and, writing nothing, outputs `{"status", "result"}`:
//!   the `call` status and the host's message, for tests that want the exact refusal.
#![no_std]

extern crate alloc;

use alloc::string::String;
use semel_sdk::{call, caller, revert, self_name, storage};
use serde::Serialize;

#[derive(Serialize)]
struct PingArgs<'a> {
    peer: &'a str,
}

#[derive(Serialize)]
struct Probe {
    status: u32,
    result: String,
}

semel_sdk::contract_methods! {
    /// Calls itself.
    fn self_call() {
        storage::set(b"touched", b"1");
        if let Err(msg) = call(&self_name(), "self_call", b"") {
            revert(&alloc::format!("self call failed: {}", String::from_utf8_lossy(&msg)));
        }
        revert("reentrancy was allowed");
    }

    /// Calls `peer.pong`, which calls back into this contract.
    fn ping(peer: String) {
        storage::set(b"touched", b"1");
        if let Err(msg) = call(&peer, "pong", b"") {
            revert(&alloc::format!("peer failed: {}", String::from_utf8_lossy(&msg)));
        }
    }

    /// Calls back into the caller's `ping`.
    fn pong() {
        storage::set(b"touched", b"1");
        let me = self_name();
        let args = semel_sdk::json::to_vec(&PingArgs { peer: &me });
        if let Err(msg) = call(&caller(), "ping", &args) {
            revert(&alloc::format!("call back failed: {}", String::from_utf8_lossy(&msg)));
        }
        revert("reentrancy was allowed");
    }

    /// Calls itself and reports the outcome without writing anything.
    fn probe() -> Probe {
        match call(&self_name(), "probe", b"") {
            Ok(out) => Probe { status: 0, result: String::from_utf8_lossy(&out).into() },
            Err(msg) => Probe { status: 1, result: String::from_utf8_lossy(&msg).into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use semel_sdk::testing::MockHost;

    #[test]
    fn the_mock_refuses_reentrancy_too() {
        let host = MockHost::new();
        host.deploy("r1", super::METHODS, "").unwrap();
        host.deploy("r2", super::METHODS, "").unwrap();
        let err = host.call("r1", "self_call", "").unwrap_err();
        assert_eq!(
            err,
            "reverted: self call failed: reentrancy refused: r1 is already on the call stack"
        );
        let err = host.call("r1", "ping", r#"{"peer":"r2"}"#).unwrap_err();
        assert_eq!(
            err,
            "reverted: peer failed: reverted: call back failed: reentrancy refused: r1 is already on the call stack"
        );
        assert!(host.storage("r1").is_empty() && host.storage("r2").is_empty());
        let out = host.call("r1", "probe", "").unwrap();
        assert_eq!(
            out,
            br#"{"status":1,"result":"reentrancy refused: r1 is already on the call stack"}"#
        );
    }
}
