//! The compact value encoding of typed storage: postcard (varint integers, length-
//! prefixed strings, no field names), so a `u64` balance takes one to ten bytes.
//!
//! A value that does not decode means the contract changed its types under stored
//! data; that reverts, naming the key, rather than guessing.

use alloc::vec::Vec;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_else(|_| crate::revert("cannot encode a storage value"))
}

pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> T {
    postcard::from_bytes(bytes).unwrap_or_else(|_| {
        let key = alloc::string::String::from_utf8_lossy(key);
        crate::revert(&alloc::format!("stored value at {key:?} does not decode"))
    })
}
