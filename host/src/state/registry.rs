//! The contract registry: which contracts exist, with what code, since which version.
//! Its entries live in the state under [`REGISTRY_NS`], so the state root commits to
//! them and historical reads see the registry as it was. [`ContractCache`] keeps the
//! entries the writer read lately, since every call looks its contract up.

use std::collections::HashMap;

use crate::codec::{DecodeError, Reader, Writer};
pub use crate::state::REGISTRY_NS;
use crate::types::CodeHash;

/// Registry entries a [`ContractCache`] holds at most (under 100 bytes each).
pub const CONTRACT_CACHE_ENTRIES: usize = 4096;

/// A deployed contract's registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractRecord {
    /// Its code.
    pub code_hash: CodeHash,
    /// The version its deploy took.
    pub version: u64,
}

impl ContractRecord {
    /// `[code hash: 32][version: u64 LE]`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        Writer::new()
            .fixed(&self.code_hash.0)
            .u64(self.version)
            .finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let code_hash = CodeHash(r.fixed()?);
        let version = r.u64()?;
        r.end()?;
        Ok(Self { code_hash, version })
    }
}

/// Registry entries read by the writer, by contract name.
///
/// An entry is written once, by its contract's deploy, and never changed or removed, so
/// a cached entry answers a read at any version: the entry itself at or after the
/// deploy's version, none before it. Runs fill it from the state they read (a query's
/// is its own, dropped after it); the writer's may hold batches that are not durable
/// yet, so the writer's cache lives in its head and starts empty when a failed commit
/// makes the head reload.
#[derive(Debug, Default)]
pub(crate) struct ContractCache {
    entries: HashMap<Box<str>, ContractRecord>,
    /// Entries inserted since [`ContractCache::take_new`] last ran: the code hints to share.
    new: Vec<(Box<str>, CodeHash)>,
}

impl ContractCache {
    /// `Some(entry)` when the cache can answer a read of `name` at `version`:
    /// `Some(None)` when the contract was deployed after it. `None` when not cached.
    pub(crate) fn get(&self, name: &str, version: u64) -> Option<Option<ContractRecord>> {
        let record = self.entries.get(name)?;
        Some((record.version <= version).then_some(*record))
    }

    /// Remembers `name`'s entry; a full cache starts over, so it stays bounded.
    pub(crate) fn insert(&mut self, name: &str, record: ContractRecord) {
        if self.entries.len() >= CONTRACT_CACHE_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(name.into(), record);
        if self.new.len() < CONTRACT_CACHE_ENTRIES {
            self.new.push((name.into(), record.code_hash));
        }
    }

    /// Drops the entries of contracts deployed after `version` (and the list of new
    /// ones): what a speculative run may have read from a deploy that never commits.
    pub(crate) fn retain_upto(&mut self, version: u64) {
        self.entries.retain(|_, r| r.version <= version);
        self.new.clear();
    }

    /// A copy of the entries of contracts deployed at or before `version`.
    pub(crate) fn clone_upto(&self, version: u64) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .filter(|(_, r)| r.version <= version)
                .map(|(k, r)| (k.clone(), *r))
                .collect(),
            new: Vec::new(),
        }
    }

    /// The contracts and code of the entries inserted since the last call.
    pub(crate) fn take_new(&mut self) -> Vec<(Box<str>, CodeHash)> {
        std::mem::take(&mut self.new)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_answers_by_version_and_stays_bounded() {
        let record = |version| ContractRecord {
            code_hash: CodeHash([1; 32]),
            version,
        };
        let mut cache = ContractCache::default();
        assert_eq!(cache.get("a", 9), None);
        cache.insert("a", record(5));
        assert_eq!(cache.get("a", 4), Some(None), "not deployed yet at 4");
        assert_eq!(cache.get("a", 5), Some(Some(record(5))));
        assert_eq!(cache.get("a", 9), Some(Some(record(5))));
        assert_eq!(cache.take_new(), vec![("a".into(), CodeHash([1; 32]))]);
        assert!(cache.take_new().is_empty(), "each entry is new once");
        for i in 0..CONTRACT_CACHE_ENTRIES + 10 {
            cache.insert(&format!("c{i}"), record(1));
            assert!(cache.len() <= CONTRACT_CACHE_ENTRIES);
        }
        assert!(cache.take_new().len() <= CONTRACT_CACHE_ENTRIES);
        assert_eq!(cache.get("a", 9), None, "a full cache started over");
    }

    #[test]
    fn round_trip() {
        let r = super::ContractRecord {
            code_hash: crate::types::CodeHash([3; 32]),
            version: 9,
        };
        assert_eq!(super::ContractRecord::decode(&r.encode()).unwrap(), r);
        assert!(super::ContractRecord::decode(&[0; 39]).is_err());
    }
}
