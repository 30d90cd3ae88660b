//! What a host says about its store (`semel info`, a server's health): where the store
//! is, its host id, its format, the latest version and the state root.

use std::path::PathBuf;

use super::Host;
use crate::error::HostError;
use crate::ledger::records::FORMAT;
use crate::types::{HostId, StateRoot};

/// Where a host's store lives.
#[derive(Debug, Clone)]
pub(crate) enum StoreKind {
    /// A data dir (the write-ahead log in front of redb), by its absolute path.
    DataDir(PathBuf),
    /// A PostgreSQL database, by its URL without a password.
    Postgres(String),
    /// Memory only ([`Host::in_memory`]).
    Memory,
    /// A backend handed to [`Host::with_backend`] or [`Host::with_reopenable_backend`].
    Backend,
}

/// A summary of a host's store: [`Host::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// Where the store lives: `redb:<data dir>`, a `postgres://` URL without its
    /// password, `memory`, or `backend` for a backend
    /// given to [`Host::with_backend`].
    pub store: String,
    /// The store's host id.
    pub host_id: HostId,
    /// The store's format marker, as text (`semel-data-v2`).
    pub format: String,
    /// The latest recorded version.
    pub version: u64,
    /// The state root at that version.
    pub state_root: StateRoot,
}

impl Host {
    /// The store's host id: 16 random bytes made with the store and kept in it. Every
    /// host over one store gives the same. Takes no lock.
    pub fn host_id(&self) -> HostId {
        self.host_id
    }

    /// Where the store lives, its host id and format, and the latest version with its
    /// state root (one published tip: the two belong together). Does not wait for the
    /// writer, unless a failed commit must be recovered from first.
    ///
    /// # Errors
    /// When storage fails while the host recovers from a failed commit.
    pub fn info(&self) -> Result<StoreInfo, HostError> {
        if self.committer.is_poisoned()? {
            drop(self.writer()?);
        }
        self.follow_others()?;
        let tip = self.published.get();
        Ok(StoreInfo {
            store: match &self.store {
                StoreKind::DataDir(dir) => format!("redb:{}", dir.display()),
                StoreKind::Postgres(url) => url.clone(),
                StoreKind::Memory => "memory".to_owned(),
                StoreKind::Backend => "backend".to_owned(),
            },
            host_id: self.host_id,
            format: String::from_utf8_lossy(FORMAT).into_owned(),
            version: tip.version,
            state_root: tip.root,
        })
    }
}
