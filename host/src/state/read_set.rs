//! The base-state values a transaction read, by entry key: repeated reads are served
//! from here, the commit finds old values here for the state root, and a parallel
//! executor can validate a transaction against them.

use std::collections::HashMap;

use super::keys::entry_key;
use super::view::StateView;
use crate::storage::StorageError;

/// Values read from the base view (`None`: the key was absent).
#[derive(Debug, Default)]
pub struct ReadSet {
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl ReadSet {
    /// An empty read set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The base value of `(ns, key)`, read once and remembered.
    ///
    /// # Errors
    /// When the base view fails.
    pub fn read(
        &mut self,
        base: &dyn StateView,
        ns: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let entry = entry_key(ns, key);
        if let Some(v) = self.values.get(&entry) {
            return Ok(v.clone());
        }
        let v = base.get(ns, key)?;
        self.values.insert(entry, v.clone());
        Ok(v)
    }

    /// The recorded base value of `(ns, key)`, if this transaction read it.
    pub fn recorded(&self, ns: &str, key: &[u8]) -> Option<Option<&[u8]>> {
        self.values.get(&entry_key(ns, key)).map(Option::as_deref)
    }
}
