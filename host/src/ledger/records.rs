//! The records of the ledger: what is stored per recorded transaction so that a retry
//! finds its receipt (`Txs`, by id), `semel log` and `verify` can read the history
//! (`History`, by version) and `semel events` can list its events (`Events`, written and
//! read by `ledger/events.rs`), plus the host metadata (`Meta`). Layouts:
//!
//! ```text
//! Txs     key: tx id (16 bytes)   value: [version u64 LE][content hash 32][receipt]
//! History key: version (u64 BE)   value: [tx id 16][transaction content]
//! Meta    "format"  → FORMAT            "version" → u64 LE (latest version)
//!         "lattice" → LtHash bytes      "horizon" → u64 LE (absent: 0)
//!         "host_id" → 16 random bytes, made with the store (a store made before
//!                     host ids gets one the first time it is opened)
//!         "events_indexed" → u64 LE: every version up to it has its `Events` rows
//!                     (absent: 0); each batch of transactions sets it to its last
//!                     version, and opening a store indexes the versions after it
//!         "storage.wal_seq", "storage.wal_key": the write-ahead log's own
//!         (`storage/wal/`), written by the backend, not by the ledger
//! Events  one row per event of a committed receipt in each of four families, each key
//!         ending [version u64 BE][event index u32 BE] (its place in the receipt's
//!         events), so a family's rows of one contract or topic are adjacent and in
//!         version order; C = [contract length u8][contract],
//!         T = [topic length u16 BE][topic] (length-prefixed, so no contract or topic
//!         is a prefix of another's key):
//!         [0x00][version][index]        → [tx id 16][contract str][topic str][data bytes]
//!         [0x01] C [version][index]     → empty (by contract)
//!         [0x02] T [version][index]     → empty (by topic)
//!         [0x03] C T [version][index]   → empty (by contract and topic)
//!         (str and bytes u32 LE length-prefixed, as `codec.rs` writes them). The data
//!         is stored once, in the 0x00 row; the others point to it by their suffix.
//! ```

use std::sync::{Arc, LazyLock};

use uuid::Uuid;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ledger::receipt::Receipt;
use crate::ledger::transaction::LoggedTx;

/// Written once into a new data dir; a different value means a foreign format.
pub const FORMAT: &[u8] = b"semel-data-v2";
/// Meta key of the format marker.
pub const META_FORMAT: &[u8] = b"format";
/// Meta key of the latest recorded version.
pub const META_VERSION: &[u8] = b"version";
/// Meta key of the state-root lattice at the latest version.
pub const META_LATTICE: &[u8] = b"lattice";
/// Meta key of the oldest readable version, once a prune set one.
pub const META_HORIZON: &[u8] = b"horizon";
/// Meta key of the host id: the store's 16 random bytes.
pub const META_HOST_ID: &[u8] = b"host_id";
/// Meta key of the last version up to which every event is in the `Events` index.
pub const META_EVENTS_INDEXED: &[u8] = b"events_indexed";

/// The meta keys every commit writes, shared: a transaction committed on its own would
/// otherwise allocate each anew (the sequential mode commits each transaction).
pub(crate) struct CommitKeys {
    pub version: Arc<[u8]>,
    pub lattice: Arc<[u8]>,
    pub events_indexed: Arc<[u8]>,
}

/// [`CommitKeys`], made once for the process.
pub(crate) static COMMIT_KEYS: LazyLock<CommitKeys> = LazyLock::new(|| CommitKeys {
    version: Arc::from(META_VERSION),
    lattice: Arc::from(META_LATTICE),
    events_indexed: Arc::from(META_EVENTS_INDEXED),
});

/// The exactly-once record of a transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxRecord {
    pub version: u64,
    pub content_hash: [u8; 32],
    pub receipt: Receipt,
}

impl TxRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(8 + 32 + self.receipt.encoded_len());
        w.u64(self.version).fixed(&self.content_hash);
        self.receipt.encode_into(&mut w);
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u64()?;
        let content_hash = r.fixed()?;
        let receipt = Receipt::decode(bytes.get(40..).ok_or(DecodeError("tx record"))?)?;
        Ok(Self {
            version,
            content_hash,
            receipt,
        })
    }
}

/// History key of a version: big-endian, so the history iterates in version order.
pub(crate) fn history_key(version: u64) -> [u8; 8] {
    version.to_be_bytes()
}

/// A history entry: the id and the content of the transaction at a version.
pub(crate) fn encode_history_entry(id: &Uuid, content: &[u8]) -> Vec<u8> {
    Writer::with_capacity(16 + content.len())
        .fixed(id.as_bytes())
        .fixed(content)
        .finish()
}

/// Reads [`encode_history_entry`]'s bytes.
pub(crate) fn decode_history_entry(bytes: &[u8]) -> Result<(Uuid, LoggedTx), DecodeError> {
    let mut r = Reader::new(bytes);
    let id = Uuid::from_bytes(r.fixed()?);
    let tx = LoggedTx::decode(bytes.get(16..).ok_or(DecodeError("history entry"))?)?;
    Ok((id, tx))
}

/// Reads a little-endian `u64` meta value.
pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.u64()?;
    r.end()?;
    Ok(v)
}
