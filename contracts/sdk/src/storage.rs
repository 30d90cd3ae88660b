//! Raw storage: this contract's own key space, bytes to bytes.
//!
//! Keys and values are byte strings; the host bounds their sizes (`docs/ABI.md`).
//! Typed storage over serde is [`crate::Item`] and [`crate::Map`], built on this.

use alloc::vec::Vec;

use crate::abi::raw;
use crate::env::read_sized;

/// First guess at a value's size; a larger value costs a second host call.
const VALUE_GUESS_BYTES: usize = 64;
/// First guess at a key's size, for iteration.
const KEY_GUESS_BYTES: usize = 64;

/// The value stored at `key`, if any.
pub fn get(key: &[u8]) -> Option<Vec<u8>> {
    read_sized(
        // SAFETY: the key comes from a live slice; the host writes at most `cap` bytes.
        |dst, cap| unsafe { raw::storage_get(key.as_ptr(), key.len(), dst, cap) },
        VALUE_GUESS_BYTES,
    )
}

/// Stores `value` at `key`, replacing any earlier value.
pub fn set(key: &[u8], value: &[u8]) {
    // SAFETY: both pairs come from live slices.
    unsafe { raw::storage_set(key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

/// Deletes `key`; nothing happens if it is absent.
pub fn remove(key: &[u8]) {
    // SAFETY: the pair comes from a live slice.
    unsafe { raw::storage_remove(key.as_ptr(), key.len()) }
}

/// The smallest key that starts with `prefix` and is greater than `after` (no lower
/// bound when `None`), in byte order, as this call sees storage.
pub fn next(prefix: &[u8], after: Option<&[u8]>) -> Option<Vec<u8>> {
    let (aptr, alen) = match after {
        Some(a) => match i32::try_from(a.len()) {
            Ok(len) => (a.as_ptr(), len),
            Err(_) => crate::revert("storage key too long"),
        },
        None => (core::ptr::null(), -1),
    };
    read_sized(
        // SAFETY: prefix and bound come from live slices (or no bound); the host writes
        // at most `cap` bytes.
        |dst, cap| unsafe {
            raw::storage_next(prefix.as_ptr(), prefix.len(), aptr, alen, dst, cap)
        },
        KEY_GUESS_BYTES,
    )
}

/// Every key starting with `prefix`, in byte order, read lazily.
pub fn keys(prefix: &[u8]) -> Keys {
    Keys {
        prefix: prefix.to_vec(),
        last: None,
        done: false,
    }
}

/// The iterator of [`keys`]. Each step asks the host for the next key after the last
/// one, so writes made while iterating are seen as the host sees them.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: Vec<u8>,
    last: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let key = next(&self.prefix, self.last.as_deref());
        match &key {
            Some(k) => self.last = Some(k.clone()),
            None => self.done = true,
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockHost;
    use alloc::vec;

    #[test]
    fn next_respects_prefix_and_lower_bound() {
        let _host = MockHost::new();
        for k in [&b"a"[..], b"b/1", b"b/2", b"b/3", b"c"] {
            set(k, b"v");
        }
        assert_eq!(next(b"b/", None), Some(b"b/1".to_vec()));
        assert_eq!(next(b"b/", Some(b"b/1")), Some(b"b/2".to_vec()));
        assert_eq!(next(b"b/", Some(b"a")), Some(b"b/1".to_vec()));
        assert_eq!(next(b"b/", Some(b"b/3")), None);
        assert_eq!(keys(b"").count(), 5);
        assert_eq!(
            keys(b"b").collect::<Vec<_>>(),
            vec![b"b/1".to_vec(), b"b/2".to_vec(), b"b/3".to_vec()]
        );
        remove(b"b/2");
        assert_eq!(get(b"b/2"), None);
    }

    #[test]
    fn long_values_are_read_whole() {
        let _host = MockHost::new();
        let long = vec![7u8; 1000];
        set(b"k", &long);
        assert_eq!(get(b"k"), Some(long));
        set(b"empty", b"");
        assert_eq!(get(b"empty"), Some(vec![]));
    }
}
