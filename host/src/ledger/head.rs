//! The head: the latest version and the lattice behind its root — what every commit
//! advances — with the caches that live as long as it does, and how it is read from and
//! first written to the `Meta` table.
//!
//! The writer holds the head under the writer lock. Readers of the latest version do
//! not take that lock: they read the [`Tip`] the writer publishes after each staged
//! batch.

use std::sync::Arc;

use crate::ledger::exactly_once::RecentIds;
use crate::ledger::records::{
    COMMIT_KEYS, FORMAT, META_FORMAT, META_HORIZON, META_HOST_ID, META_LATTICE, META_VERSION,
    decode_u64,
};
use crate::state::registry::ContractCache;
use crate::state::{EntryCache, LtHash};
use crate::storage::{Backend, Precondition, Snapshot, StorageError, Table, WriteBatch};
use crate::types::{HostId, StateRoot};

/// Reads of the head before [`Head::read`] gives up on a store whose head keeps moving.
const HEAD_READS_MAX: u32 = 64;

/// The latest version and the lattice behind its root: what commits advance.
#[derive(Default)]
pub(crate) struct Head {
    pub version: u64,
    pub lattice: LtHash,
    /// The oldest readable version (raised by pruning).
    pub horizon: u64,
    /// Lanes of the entries the lattice gained lately: see [`EntryCache`].
    pub entry_cache: EntryCache,
    /// Registry entries the writer read lately: see [`ContractCache`].
    pub contracts: ContractCache,
    /// Ids staged lately: see [`RecentIds`].
    pub recent: RecentIds,
    /// A run changed the lattice in place and then failed to stage: whoever takes the
    /// writer lock next reloads the head from storage (on every path that takes it).
    pub stale: bool,
}

/// What readers of the latest version see of the head, without the writer lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tip {
    pub version: u64,
    pub root: StateRoot,
    pub horizon: u64,
}

impl Head {
    /// The head of the store `backend` holds and the store's host id, writing a new
    /// store's first head when it holds nothing yet. `fresh` becomes the host id of a
    /// new store, or of a store made before host ids (in a commit of its own, before
    /// anything else is written); a store that has one keeps it.
    ///
    /// # Errors
    /// When the store holds another format, or cannot be read or written.
    pub fn open(backend: &dyn Backend, fresh: HostId) -> Result<(Self, HostId), StorageError> {
        let snap = backend.snapshot()?;
        match snap.get(Table::Meta, META_FORMAT)? {
            None => {
                let mut batch = WriteBatch::new();
                batch.put(Table::Meta, META_FORMAT, FORMAT);
                batch.put(Table::Meta, META_VERSION, &0u64.to_le_bytes()[..]);
                batch.put(Table::Meta, META_LATTICE, LtHash::default().as_bytes());
                batch.put(Table::Meta, META_HOST_ID, &fresh.as_bytes()[..]);
                // Two hosts making one store: the second finds the format written.
                batch.require(Precondition {
                    table: Table::Meta,
                    key: META_FORMAT.into(),
                    value: None,
                });
                drop(snap);
                match backend.commit(&batch) {
                    Ok(()) => Ok((Head::default(), fresh)),
                    // Another host made it first (a shared store): open what it made.
                    Err(StorageError::Conflict(_)) => Self::open(backend, fresh),
                    Err(e) => Err(e),
                }
            }
            Some(f) if f == FORMAT => {
                let head = Self::read(&*snap)?;
                let id = match snap.get(Table::Meta, META_HOST_ID)? {
                    Some(bytes) => decode_host_id(&bytes)?,
                    None => {
                        drop(snap);
                        add_host_id(backend, fresh)?
                    }
                };
                Ok((head, id))
            }
            Some(other) => Err(StorageError::Corrupt(format!(
                "not a Semel data dir of this format (format marker {:?})",
                String::from_utf8_lossy(&other)
            ))),
        }
    }

    /// Reads the head (latest version, state lattice, horizon) from the `Meta` table.
    ///
    /// # Errors
    /// When a key is missing or does not decode.
    ///
    /// A snapshot of a store that other hosts commit to may read each key at its own
    /// latest commit (`storage/postgres/read.rs`): the version is read again after the
    /// rest, and all of it once more if another commit moved it meanwhile.
    pub fn read(snap: &dyn Snapshot) -> Result<Self, StorageError> {
        let version_of = || -> Result<u64, StorageError> {
            let v = snap
                .get(Table::Meta, META_VERSION)?
                .ok_or_else(|| StorageError::Corrupt("latest version missing".into()))?;
            Ok(decode_u64(&v)?)
        };
        let mut version = version_of()?;
        for _ in 0..HEAD_READS_MAX {
            let lattice = snap
                .get(Table::Meta, META_LATTICE)?
                .ok_or_else(|| StorageError::Corrupt("state lattice missing".into()))?;
            let horizon = match snap.get(Table::Meta, META_HORIZON)? {
                Some(h) => decode_u64(&h)?,
                None => 0,
            };
            let again = version_of()?;
            if again == version {
                return Ok(Head {
                    version,
                    lattice: LtHash::from_bytes(&lattice)?,
                    horizon,
                    ..Head::default()
                });
            }
            version = again;
        }
        Err(StorageError::Unavailable(format!(
            "the head moved during each of {HEAD_READS_MAX} reads (other hosts commit faster \
             than it can be read)"
        )))
    }

    /// What readers see of this head.
    pub fn tip(&self) -> Tip {
        Tip {
            version: self.version,
            root: self.lattice.root(),
            horizon: self.horizon,
        }
    }

    /// The precondition of a batch that builds on this head: the store still holds its
    /// version. A second writer on one store (another host) then fails to commit
    /// instead of overwriting.
    pub fn precondition(&self) -> Precondition {
        Precondition {
            table: Table::Meta,
            key: Arc::clone(&COMMIT_KEYS.version),
            value: Some(self.version.to_le_bytes()[..].into()),
        }
    }
}

/// Reads the `Meta` value of the host id.
fn decode_host_id(bytes: &[u8]) -> Result<HostId, StorageError> {
    let bytes = <[u8; 16]>::try_from(bytes).map_err(|_| {
        StorageError::Corrupt(format!("the host id is {} bytes, not 16", bytes.len()))
    })?;
    Ok(HostId::from_bytes(bytes))
}

/// Gives a store made before host ids the id `fresh`, in a commit of its own that
/// requires the key to be absent: of two hosts opening it at once, the second finds
/// and keeps the first's.
fn add_host_id(backend: &dyn Backend, fresh: HostId) -> Result<HostId, StorageError> {
    let mut batch = WriteBatch::new();
    batch.put(Table::Meta, META_HOST_ID, &fresh.as_bytes()[..]);
    batch.require(Precondition {
        table: Table::Meta,
        key: META_HOST_ID.into(),
        value: None,
    });
    match backend.commit(&batch) {
        Ok(()) => Ok(fresh),
        Err(StorageError::Conflict(_)) => {
            match backend.snapshot()?.get(Table::Meta, META_HOST_ID)? {
                Some(bytes) => decode_host_id(&bytes),
                None => Err(StorageError::Corrupt(
                    "the host id was neither added nor found".into(),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// The [`Tip`] of the latest staged batch, for readers that do not take the writer lock.
#[derive(Debug, Default)]
pub(crate) struct Published(std::sync::RwLock<Tip>);

impl Published {
    /// A tip to start from.
    pub fn new(tip: Tip) -> Self {
        Self(std::sync::RwLock::new(tip))
    }

    /// The latest published tip.
    pub fn get(&self) -> Tip {
        *self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `tip` (the writer, once its batch is staged).
    pub fn set(&self, tip: Tip) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = tip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;

    fn remove_host_id(backend: &dyn Backend) {
        let mut batch = WriteBatch::new();
        batch.delete(Table::Meta, META_HOST_ID);
        backend.commit(&batch).unwrap();
    }

    #[test]
    fn a_store_keeps_its_host_id_and_one_made_before_host_ids_gets_one_once() {
        let backend = MemoryBackend::new();
        let [a, b, c] = [1, 2, 3].map(|n| HostId::from_bytes([n; 16]));
        assert_eq!(Head::open(&backend, a).unwrap().1, a);
        assert_eq!(Head::open(&backend, b).unwrap().1, a);
        // A store as one made before host ids: the next open gives it one, and keeps it.
        remove_host_id(&backend);
        let (head, id) = Head::open(&backend, b).unwrap();
        assert_eq!((id, head.version), (b, 0));
        assert_eq!(Head::open(&backend, c).unwrap().1, b);
        let stored = backend.snapshot().unwrap().get(Table::Meta, META_HOST_ID);
        assert_eq!(stored.unwrap(), Some(b.as_bytes().to_vec()));
    }

    #[test]
    fn of_two_hosts_adding_a_host_id_the_second_keeps_the_first() {
        let backend = MemoryBackend::new();
        let [a, b] = [1, 2].map(|n| HostId::from_bytes([n; 16]));
        Head::open(&backend, a).unwrap();
        remove_host_id(&backend);
        // The first host added its id after the second read the store without one: the
        // second's commit fails its precondition, and it takes the stored id.
        assert_eq!(add_host_id(&backend, b).unwrap(), b);
        assert_eq!(add_host_id(&backend, a).unwrap(), b);
    }

    #[test]
    fn a_host_id_of_another_length_is_corrupt() {
        let backend = MemoryBackend::new();
        Head::open(&backend, HostId::from_bytes([1; 16])).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Table::Meta, META_HOST_ID, &[7u8; 15][..]);
        backend.commit(&batch).unwrap();
        let Err(e) = Head::open(&backend, HostId::from_bytes([2; 16])) else {
            panic!("a 15-byte host id was read");
        };
        assert_eq!(
            e.to_string(),
            "storage is corrupt: the host id is 15 bytes, not 16"
        );
    }
}
