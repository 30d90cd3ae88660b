//! The records of the ledger: what is stored per recorded transaction so that a retry
//! finds its receipt (`Txs`, by id) and `semel log` and `verify` can read the history
//! (`History`, by version), plus the host metadata (`Meta`). Layouts:
//!
//! ```text
//! Txs     key: tx id (16 bytes)   value: [version u64 LE][content hash 32][receipt]
//! History key: version (u64 BE)   value: [tx id 16][transaction content]
//! Meta    "format"  → FORMAT            "version" → u64 LE (latest version)
//!         "lattice" → LtHash bytes      "horizon" → u64 LE (absent: 0)
//!         "storage.wal_seq", "storage.wal_key": the write-ahead log's own
//!         (`storage/wal/`), written by the backend, not by the ledger
//! ```

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
