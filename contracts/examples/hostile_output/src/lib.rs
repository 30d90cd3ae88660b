//! `hostile_output`: hands the host more bytes than it accepts, or bytes it cannot read.
//!
//! Each method first writes key `touched`, so a test can check it was discarded.
//! - `huge`: sets a 1 MiB output (the host's limit is far smaller). Outcome: the frame
//!   traps and the transaction reverts;
//! - `sized {"bytes"}`: sets an output of exactly `bytes` bytes of `x`, for testing the
//!   output limit at and one past it. Outcome: success up to the limit, a trap past it;
//! - `huge_revert`: reverts with a 1 MiB message. Outcome: the transaction reverts (the
//!   host refuses or cuts the message, as `docs/ABI.md` says);
//! - `out_of_bounds`: passes `output` a range past the end of memory. Outcome: the
//!   frame traps and the transaction reverts.
#![no_std]

extern crate alloc;

use alloc::vec;
use semel_sdk::storage;

const HUGE_BYTES: usize = 1 << 20;

semel_sdk::contract_methods! {
    /// Outputs 1 MiB.
    fn huge() {
        storage::set(b"touched", b"1");
        semel_sdk::set_output(&vec![b'x'; HUGE_BYTES]);
    }

    /// Outputs exactly `bytes` bytes.
    fn sized(bytes: u32) {
        storage::set(b"touched", b"1");
        let Ok(n) = usize::try_from(bytes) else { semel_sdk::revert("too large") };
        semel_sdk::set_output(&vec![b'x'; n]);
    }

    /// Reverts with a 1 MiB message.
    fn huge_revert() {
        storage::set(b"touched", b"1");
        let msg = alloc::string::String::from_utf8(vec![b'x'; HUGE_BYTES]).unwrap_or_default();
        semel_sdk::revert(&msg);
    }

    /// Points `output` past the end of memory.
    fn out_of_bounds() {
        storage::set(b"touched", b"1");
        #[cfg(target_arch = "wasm32")]
        {
            let end = core::arch::wasm32::memory_size(0) * 65536;
            // SAFETY: deliberately not: the host must trap this frame.
            unsafe { semel_sdk::abi::raw::output(end as *const u8, 16) };
        }
        semel_sdk::revert("the host read past the end of memory");
    }
}
