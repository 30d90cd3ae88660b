//! `hostile_recursion`: recurses without end, to test the host's stack limits.
//!
//! Each method first writes key `touched`, so a test can check it was discarded.
//! - `recurse`: plain recursion with small frames. Outcome: the 32 KiB shadow stack in
//!   linear memory runs below address 0 first (out of bounds) — or, with a bigger
//!   shadow stack, the wasm call stack is exhausted — the frame traps and the
//!   transaction reverts;
//! - `recurse_shadow`: each level keeps 1 KiB on the shadow stack in linear memory
//!   (the module reserves 32 KiB for it, below its data). Outcome: the frame traps
//!   (the shadow stack runs below address 0, out of bounds, or the wasm stack runs
//!   out first) and the transaction reverts.
#![no_std]

use core::hint::black_box;
use semel_sdk::storage;

#[inline(never)]
fn deep(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        return 0;
    }
    // The addition after the call keeps this from becoming a loop.
    deep(n + 1).wrapping_add(black_box(1))
}

#[inline(never)]
fn deep_shadow(n: u64) -> u64 {
    let mut pad = [0u8; 1024];
    pad[(n % 1024) as usize] = 1;
    let pad = black_box(&mut pad);
    if black_box(n) == u64::MAX {
        return 0;
    }
    deep_shadow(n + 1).wrapping_add(u64::from(pad[0]))
}

semel_sdk::contract_methods! {
    /// Recurses until the wasm stack runs out.
    fn recurse() -> u64 {
        storage::set(b"touched", b"1");
        deep(0)
    }

    /// Recurses with 1 KiB frames in linear memory.
    fn recurse_shadow() -> u64 {
        storage::set(b"touched", b"1");
        deep_shadow(0)
    }
}
