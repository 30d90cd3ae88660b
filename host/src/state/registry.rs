//! The contract registry: which contracts exist, with what code, since which version,
//! and who may migrate them. Its entries live in the state under [`REGISTRY_NS`], so the
//! state root commits to them and historical reads see the registry as it was; a
//! migrated contract's earlier code is kept there too ([`code_history_key`]).
//! [`ContractCache`] keeps the entries the writer read lately, since every call looks
//! its contract up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{DecodeError, Reader, Writer};
pub use crate::state::REGISTRY_NS;
use crate::types::CodeHash;

/// Registry entries a [`ContractCache`] holds at most (under 100 bytes each).
pub const CONTRACT_CACHE_ENTRIES: usize = 4096;

/// A deployed contract's registry entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractRecord {
    /// Its code.
    pub code_hash: CodeHash,
    /// The version its deploy took.
    pub version: u64,
    /// The version since which it runs `code_hash`: its deploy's, or its last migrate's.
    pub code_since: u64,
    /// The account that may migrate it and change its admin; `None`: nobody.
    pub admin: Option<Arc<str>>,
}

impl ContractRecord {
    /// The entry a deploy at `version` makes.
    pub(crate) fn deployed(code_hash: CodeHash, version: u64, admin: Option<&str>) -> Self {
        Self {
            code_hash,
            version,
            code_since: version,
            admin: admin.map(Arc::from),
        }
    }

    /// `[code hash: 32][version: u64 LE]` for a contract never migrated and without an
    /// admin (as every entry was before admins existed: their state roots stay the same);
    /// else that, then `[code since: u64 LE][admin: u8 0 | 1 + str]`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&self.code_hash.0).u64(self.version);
        if self.admin.is_some() || self.code_since != self.version {
            w.u64(self.code_since);
            match &self.admin {
                None => w.u8(0),
                Some(admin) => w.u8(1).str(admin),
            };
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let code_hash = CodeHash(r.fixed()?);
        let version = r.u64()?;
        let mut record = Self {
            code_hash,
            version,
            code_since: version,
            admin: None,
        };
        if !r.is_empty() {
            record.code_since = r.u64()?;
            record.admin = match r.u8()? {
                0 => None,
                1 => Some(Arc::from(r.str()?)),
                _ => return Err(DecodeError("bad admin tag of a registry entry")),
            };
        }
        r.end()?;
        Ok(record)
    }
}

/// The registry key (under [`REGISTRY_NS`]) that keeps the code contract `name` ran
/// from version `since` until a migrate replaced it: `[name][0x00][since: u64 BE]`
/// (a name never holds a zero byte, so no contract's entry is such a key; big-endian,
/// so a scan of `[name][0x00]` lists them in version order). Its value is the code hash.
pub(crate) fn code_history_key(name: &str, since: u64) -> Vec<u8> {
    let mut key = code_history_prefix(name);
    key.extend_from_slice(&since.to_be_bytes());
    key
}

/// The prefix of contract `name`'s [`code_history_key`]s.
pub(crate) fn code_history_prefix(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 9);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key
}

/// Whether a registry key is a contract's entry (not one of its code history keys).
pub(crate) fn is_entry_key(key: &[u8]) -> bool {
    !key.contains(&0)
}

/// Reads a [`code_history_key`]'s version and value.
pub(crate) fn decode_code_history(
    key: &[u8],
    value: &[u8],
) -> Result<(u64, CodeHash), DecodeError> {
    let since = key
        .len()
        .checked_sub(8)
        .and_then(|at| <[u8; 8]>::try_from(&key[at..]).ok())
        .ok_or(DecodeError("short code history key"))?;
    let hash = <[u8; 32]>::try_from(value).map_err(|_| DecodeError("bad code history value"))?;
    Ok((u64::from_be_bytes(since), CodeHash(hash)))
}

/// Registry entries read by the writer, by contract name.
///
/// An entry is written by its contract's deploy and changed only by a migrate or a
/// set-admin, which forget it here ([`ContractCache::forget`]); the writer reads at
/// ever later versions, so a cached entry answers its reads: the entry itself at or
/// after the deploy's version, none before it. Runs fill it from the state they read (a
/// query's is its own, dropped after it); the writer's may hold batches that are not
/// durable yet, so the writer's cache lives in its head and starts empty when a failed
/// commit makes the head reload. The batch executors run a batch that changes an entry
/// in order (`TxBody::changes_registry`).
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
        Some((record.version <= version).then(|| record.clone()))
    }

    /// Remembers `name`'s entry; a full cache starts over, so it stays bounded.
    pub(crate) fn insert(&mut self, name: &str, record: ContractRecord) {
        if self.entries.len() >= CONTRACT_CACHE_ENTRIES {
            self.entries.clear();
        }
        if self.new.len() < CONTRACT_CACHE_ENTRIES {
            self.new.push((name.into(), record.code_hash));
        }
        self.entries.insert(name.into(), record);
    }

    /// Forgets `name`'s entry, which a migrate or set-admin is changing: its next read
    /// comes from the state. (Forgotten even if that transaction then reverts: a read
    /// from the state is never wrong.)
    pub(crate) fn forget(&mut self, name: &str) {
        self.entries.remove(name);
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
                .map(|(k, r)| (k.clone(), r.clone()))
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
        let record = |version| ContractRecord::deployed(CodeHash([1; 32]), version, None);
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
        let r = ContractRecord::deployed(CodeHash([3; 32]), 9, None);
        assert_eq!(r.encode().len(), 40, "the entry as before admins existed");
        assert_eq!(ContractRecord::decode(&r.encode()).unwrap(), r);
        assert!(ContractRecord::decode(&[0; 39]).is_err());
        let with_admin = ContractRecord::deployed(CodeHash([3; 32]), 9, Some("alice"));
        assert_eq!(
            ContractRecord::decode(&with_admin.encode()).unwrap(),
            with_admin
        );
        let migrated = ContractRecord {
            code_since: 12,
            admin: None,
            ..with_admin.clone()
        };
        assert_eq!(
            ContractRecord::decode(&migrated.encode()).unwrap(),
            migrated
        );
        assert_ne!(migrated.encode(), r.encode());
        let mut bad = with_admin.encode();
        bad[48] = 7;
        assert!(ContractRecord::decode(&bad).is_err(), "admin tag 7");
    }

    #[test]
    fn code_history_keys_sort_by_version_and_are_no_entry() {
        let (a, b) = (code_history_key("c", 5), code_history_key("c", 300));
        assert!(a < b && a.starts_with(&code_history_prefix("c")));
        assert!(!is_entry_key(&a) && is_entry_key(b"c"));
        assert_eq!(
            decode_code_history(&b, &[7; 32]).unwrap(),
            (300, CodeHash([7; 32]))
        );
        assert!(decode_code_history(&b, &[7; 31]).is_err());
    }
}
