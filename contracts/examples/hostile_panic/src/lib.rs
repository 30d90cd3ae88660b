//! `hostile_panic`: fails in the ways Rust code fails.
//!
//! Each method first writes key `touched` and emits event `touched`, so a test can
//! check both were discarded.
//! - `boom`: panics. Outcome: the SDK's panic handler reverts with "panicked: hostile
//!   panic: this contract always panics";
//! - `unwrap_none`: unwraps `None`. Outcome: reverts with "panicked: called
//!   `Option::unwrap()` on a `None` value";
//! - `trap`: executes `unreachable`. Outcome: the frame traps and the transaction
//!   reverts;
//! - `divide {"by"}`: divides 1 by `by`. Outcome: outputs the quotient, or with
//!   `{"by": 0}` reverts with "panicked: attempt to divide by zero".
#![no_std]

use core::hint::black_box;
use semel_sdk::storage;

fn touch() {
    storage::set(b"touched", b"1");
    semel_sdk::emit("touched", b"");
}

semel_sdk::contract_methods! {
    /// Panics with a message.
    fn boom() {
        touch();
        panic!("hostile panic: this contract always panics");
    }

    /// Unwraps `None`.
    fn unwrap_none() -> u32 {
        touch();
        black_box(None::<u32>).unwrap()
    }

    /// Executes `unreachable`.
    fn trap() {
        touch();
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        panic!("trap");
    }

    /// Outputs 1 / `by`.
    fn divide(by: u64) -> u64 {
        touch();
        black_box(1u64) / by
    }
}

#[cfg(test)]
mod tests {
    use semel_sdk::testing::MockHost;

    #[test]
    fn panics_revert_with_their_message_and_undo_writes() {
        let host = MockHost::new();
        host.deploy("p", super::METHODS, "").unwrap();
        let err = host.call("p", "boom", "").unwrap_err();
        assert_eq!(
            err,
            "reverted: panicked: hostile panic: this contract always panics"
        );
        let err = host.call("p", "divide", r#"{"by":0}"#).unwrap_err();
        assert_eq!(err, "reverted: panicked: attempt to divide by zero");
        assert!(host.storage("p").is_empty());
        assert!(host.events().is_empty());
        assert_eq!(host.query::<u64>("p", "divide", r#"{"by":1}"#), 1);
    }
}
