//! `counter`: a number anyone can increment.
//!
//! Storage: one key, `count`, holding the count as a `u64` in 8 little-endian bytes
//! (absent means 0). The layout is deliberately raw, not [`semel_sdk::Item`], so the
//! host's hand-written WAT tests can read and write the same key.
//!
//! Methods (no arguments; outputs are JSON numbers):
//! - `init`: at deploy, sets the count to 0;
//! - `inc`: adds 1, emits event `inc` with the new count (8 bytes, little-endian) and
//!   outputs the new count;
//! - `get`: outputs the count.
//!
//! For these methods it behaves exactly as the host's `contracts/wat/counter.wat`.
#![no_std]

use semel_sdk::storage;

/// The storage key of the count.
const COUNT_KEY: &[u8] = b"count";

fn count() -> u64 {
    match storage::get(COUNT_KEY) {
        None => 0,
        Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
            Ok(le) => u64::from_le_bytes(le),
            Err(_) => semel_sdk::revert("count is not 8 bytes"),
        },
    }
}

semel_sdk::contract_methods! {
    /// Starts the count at 0.
    fn init() {
        storage::set(COUNT_KEY, &0u64.to_le_bytes());
    }

    /// Adds 1 to the count and outputs the new count.
    fn inc() -> u64 {
        let Some(n) = count().checked_add(1) else { semel_sdk::revert("count overflow") };
        storage::set(COUNT_KEY, &n.to_le_bytes());
        semel_sdk::emit("inc", &n.to_le_bytes());
        n
    }

    /// Outputs the count.
    fn get() -> u64 {
        count()
    }
}

#[cfg(test)]
mod tests {
    use semel_sdk::testing::MockHost;

    #[test]
    fn inc_counts_up_from_zero() {
        let host = MockHost::new();
        host.deploy("counter", super::METHODS, "").unwrap();
        assert_eq!(host.query::<u64>("counter", "get", ""), 0);
        assert_eq!(host.query::<u64>("counter", "inc", ""), 1);
        assert_eq!(host.query::<u64>("counter", "inc", ""), 2);
        let events = host.events();
        assert_eq!(
            (events[1].topic.as_str(), events[1].data.as_slice()),
            ("inc", &2u64.to_le_bytes()[..])
        );
        assert_eq!(
            host.storage("counter").get(&b"count"[..]),
            Some(&2u64.to_le_bytes().to_vec())
        );
    }
}
