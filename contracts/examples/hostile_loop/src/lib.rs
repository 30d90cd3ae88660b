//! `hostile_loop`: never returns, to test that gas ends runaway code.
//!
//! Every method first writes key `touched` (so a test can check the write was
//! discarded), then loops forever:
//! - `spin`: a pure loop, no host calls — only instruction metering can stop it;
//! - `spin_host`: a loop of cheap host calls (`gas_left`);
//! - `spin_storage`: a loop of storage writes.
//!
//! Documented outcome: the transaction runs out of gas and reverts; state is untouched.
#![no_std]

use core::hint::black_box;
use semel_sdk::storage;

semel_sdk::contract_methods! {
    /// Loops forever without calling the host.
    fn spin() {
        storage::set(b"touched", b"1");
        let mut i: u64 = 0;
        loop {
            i = black_box(i.wrapping_add(1));
        }
    }

    /// Loops forever asking the host for gas left.
    fn spin_host() {
        storage::set(b"touched", b"1");
        loop {
            black_box(semel_sdk::gas_left());
        }
    }

    /// Loops forever writing storage.
    fn spin_storage() {
        let mut i: u64 = 0;
        loop {
            storage::set(b"touched", &i.to_le_bytes());
            i = i.wrapping_add(1);
        }
    }
}
