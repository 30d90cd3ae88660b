//! [`Map`]: typed values under keys that share a prefix.

use core::marker::PhantomData;

use alloc::vec::Vec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::key::Key;
use crate::{codec, storage};

/// Values of type `V` under keys of type `K`; the storage key is the map's prefix
/// followed by the key's encoding ([`Key`]), the value is postcard-encoded.
///
/// End the prefix with a separator so that no two maps' key spaces overlap:
/// `const BALANCES: Map<String, u64> = Map::new("balance/");` stores Alice's balance
/// under `balance/alice`.
#[derive(Debug)]
pub struct Map<K, V> {
    prefix: &'static str,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K: Key, V: Serialize + DeserializeOwned> Map<K, V> {
    /// A map whose keys all start with `prefix`.
    pub const fn new(prefix: &'static str) -> Self {
        Map {
            prefix,
            types: PhantomData,
        }
    }

    /// The storage key of `key`.
    pub fn storage_key(&self, key: K::Ref<'_>) -> Vec<u8> {
        let mut out = Vec::from(self.prefix.as_bytes());
        K::encode(key, &mut out);
        out
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: K::Ref<'_>) -> Option<V> {
        let k = self.storage_key(key);
        let bytes = storage::get(&k)?;
        Some(codec::decode(&k, &bytes))
    }

    /// The value under `key`, or `V::default()`.
    pub fn get_or_default(&self, key: K::Ref<'_>) -> V
    where
        V: Default,
    {
        self.get(key).unwrap_or_default()
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: K::Ref<'_>) -> bool {
        storage::get(&self.storage_key(key)).is_some()
    }

    /// Stores `value` under `key`.
    pub fn set(&self, key: K::Ref<'_>, value: &V) {
        storage::set(&self.storage_key(key), &codec::encode(value));
    }

    /// Deletes `key`.
    pub fn remove(&self, key: K::Ref<'_>) {
        storage::remove(&self.storage_key(key));
    }

    /// Every entry, in key byte order (numeric order for integer keys).
    pub fn iter(&self) -> MapIter<K, V> {
        MapIter::new(Vec::from(self.prefix.as_bytes()))
    }
}

impl<A: Key, B: Key, V: Serialize + DeserializeOwned> Map<(A, B), V> {
    /// The entries whose first key component is `first`, keyed by the second.
    pub fn prefix(&self, first: A::Ref<'_>) -> MapIter<B, V> {
        let mut prefix = Vec::from(self.prefix.as_bytes());
        A::encode_part(first, &mut prefix);
        MapIter::new(prefix)
    }
}

/// Entries of a [`Map`] (or of one [`Map::prefix`]) in key byte order.
#[derive(Debug)]
pub struct MapIter<K, V> {
    prefix_len: usize,
    keys: storage::Keys,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> MapIter<K, V> {
    fn new(prefix: Vec<u8>) -> Self {
        MapIter {
            prefix_len: prefix.len(),
            keys: storage::keys(&prefix),
            types: PhantomData,
        }
    }
}

impl<K: Key, V: DeserializeOwned> Iterator for MapIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            let k = self.keys.next()?;
            // A key under the prefix that this map did not write (another map with an
            // overlapping prefix) is skipped rather than misread.
            let Some(key) = K::decode(&k[self.prefix_len..]) else {
                continue;
            };
            let Some(bytes) = storage::get(&k) else {
                continue;
            };
            return Some((key, codec::decode(&k, &bytes)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockHost;
    use alloc::string::{String, ToString};
    use alloc::vec;

    #[test]
    fn entries_round_trip_and_iterate_in_key_order() {
        let _host = MockHost::new();
        let m: Map<u64, String> = Map::new("m/");
        for k in [300u64, 2, 70_000] {
            m.set(k, &k.to_string());
        }
        assert_eq!(m.get(2).as_deref(), Some("2"));
        assert!(m.contains(300) && !m.contains(3));
        let keys: Vec<u64> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![2, 300, 70_000]);
        m.remove(300);
        assert_eq!(m.iter().count(), 2);
        assert_eq!(m.storage_key(2), b"m/\0\0\0\0\0\0\0\x02");
    }

    #[test]
    fn prefix_walks_one_owner_and_maps_stay_apart() {
        let _host = MockHost::new();
        let allow: Map<(String, String), u64> = Map::new("a/");
        let other: Map<String, u64> = Map::new("a");
        allow.set(("bob", "x"), &1);
        allow.set(("alice", "z"), &3);
        allow.set(("alice", "y"), &2);
        other.set("zzz", &9);
        let alice: Vec<(String, u64)> = allow.prefix("alice").collect();
        assert_eq!(alice, vec![("y".to_string(), 2), ("z".to_string(), 3)]);
        assert_eq!(
            allow.iter().count(),
            3,
            "the other map's key under the prefix is skipped"
        );
    }

    #[test]
    fn items_hold_structured_values() {
        let _host = MockHost::new();
        let item: crate::Item<(u64, String)> = crate::Item::new("pair");
        assert!(item.get().is_none() && !item.exists());
        item.set(&(7, "seven".to_string()));
        assert_eq!(item.get(), Some((7, "seven".to_string())));
        assert_eq!(
            crate::storage::get(b"pair"),
            Some(vec![7, 5, b's', b'e', b'v', b'e', b'n'])
        );
        item.remove();
        assert!(!item.exists());
    }
}
