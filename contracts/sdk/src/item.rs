//! [`Item`]: one typed value under one storage key.

use core::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{codec, storage};

/// A single value of type `T` stored under a fixed key, encoded compactly (postcard).
///
/// Declare it as a constant: `const OWNER: Item<String> = Item::new("owner");`.
#[derive(Debug)]
pub struct Item<T> {
    key: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Item<T> {
    /// An item stored under `key`.
    pub const fn new(key: &'static str) -> Self {
        Item {
            key,
            value: PhantomData,
        }
    }

    /// The storage key.
    pub const fn key(&self) -> &'static str {
        self.key
    }

    /// The stored value, if one was set.
    pub fn get(&self) -> Option<T> {
        let bytes = storage::get(self.key.as_bytes())?;
        Some(codec::decode(self.key.as_bytes(), &bytes))
    }

    /// The stored value, or `T::default()` when none was set.
    pub fn get_or_default(&self) -> T
    where
        T: Default,
    {
        self.get().unwrap_or_default()
    }

    /// Whether a value is stored.
    pub fn exists(&self) -> bool {
        storage::get(self.key.as_bytes()).is_some()
    }

    /// Stores `value`.
    pub fn set(&self, value: &T) {
        storage::set(self.key.as_bytes(), &codec::encode(value));
    }

    /// Deletes the value.
    pub fn remove(&self) {
        storage::remove(self.key.as_bytes());
    }
}
