//! The head: the latest version and the lattice behind its root — what every commit
//! advances — with the caches that live as long as it does, and how it is read from and
//! first written to the `Meta` table.
//!
//! The writer holds the head under the writer lock. Readers of the latest version do
//! not take that lock: they read the [`Tip`] the writer publishes after each staged
//! batch.

use crate::ledger::exactly_once::RecentIds;
use crate::ledger::records::{
    FORMAT, META_FORMAT, META_HORIZON, META_LATTICE, META_VERSION, decode_u64,
};
use crate::state::registry::ContractCache;
use crate::state::{EntryCache, LtHash};
use crate::storage::{Backend, Precondition, Snapshot, StorageError, Table, WriteBatch};
use crate::types::StateRoot;

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
    /// The head of the store `backend` holds, writing a new store's first head when it
    /// holds nothing yet.
    ///
    /// # Errors
    /// When the store holds another format, or cannot be read or written.
    pub fn open(backend: &dyn Backend) -> Result<Self, StorageError> {
        let snap = backend.snapshot()?;
        match snap.get(Table::Meta, META_FORMAT)? {
            None => {
                let mut batch = WriteBatch::new();
                batch.put(Table::Meta, META_FORMAT, FORMAT);
                batch.put(Table::Meta, META_VERSION, &0u64.to_le_bytes()[..]);
                batch.put(Table::Meta, META_LATTICE, LtHash::default().as_bytes());
                // Two hosts making one store: the second finds the format written.
                batch.require(Precondition {
                    table: Table::Meta,
                    key: META_FORMAT.into(),
                    value: None,
                });
                drop(snap);
                backend.commit(&batch)?;
                Ok(Head::default())
            }
            Some(f) if f == FORMAT => Self::read(&*snap),
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
    pub fn read(snap: &dyn Snapshot) -> Result<Self, StorageError> {
        let version = snap
            .get(Table::Meta, META_VERSION)?
            .ok_or_else(|| StorageError::Corrupt("latest version missing".into()))?;
        let lattice = snap
            .get(Table::Meta, META_LATTICE)?
            .ok_or_else(|| StorageError::Corrupt("state lattice missing".into()))?;
        let horizon = match snap.get(Table::Meta, META_HORIZON)? {
            Some(h) => decode_u64(&h)?,
            None => 0,
        };
        Ok(Head {
            version: decode_u64(&version)?,
            lattice: LtHash::from_bytes(&lattice)?,
            horizon,
            ..Head::default()
        })
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
            key: META_VERSION.into(),
            value: Some(self.version.to_le_bytes()[..].into()),
        }
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
