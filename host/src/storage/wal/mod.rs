//! The write-ahead log in front of redb: what makes one transaction at a time cost one
//! sequential write and one fdatasync.
//!
//! A commit appends the batch to the log as one checksummed record and syncs the log.
//! Logged batches are then laid over redb in memory (an [`Overlay`]) and applied to redb,
//! without a sync, many at a time (every [`WAL_APPLY_BYTES`] of log): a redb write
//! transaction costs more than a small host transaction. An apply runs on a thread of
//! its own, beside the commits that follow: its batches stay laid over redb, under the
//! newer ones, until it is joined (by the first commit after it ends, or by one that
//! needs it done: the next apply, a checkpoint, the close).
//! A failed apply refuses every later commit until the data dir is reopened; what it
//! held is in the log, and the reopen replays it. Every
//! [`WAL_CHECKPOINT_BYTES`] of log, redb makes a durable commit (the checkpoint) and the
//! log starts over at offset 0. Each record carries a sequence number, and every batch
//! applied to redb records the number of its log record ([`WAL_SEQ_KEY`]) in the same
//! redb transaction, so redb always knows which records it holds.
//!
//! Opening replays the records after redb's number, in order, stopping at the first
//! record that is torn, fails its checksum, or does not carry the next number (a record
//! of an earlier cycle). Checksums are keyed with a secret made with the data dir
//! ([`WAL_MAC_KEY`]), so no byte string that was not a record of this data dir — a
//! contract's value inside an old record, say — passes for one. Records hold final
//! values (puts and deletes, never increments), so applying one twice changes nothing.
//! After a replay redb is checkpointed and the log cleared, so an open reads one record
//! header when nothing needs replaying.
//!
//! Every write is whole [`WAL_BLOCK_BYTES`] blocks, so that [`WalFile`] can send it
//! around the page cache: an append rewrites the bytes of its first block before the
//! record unchanged and pads the last block with zeros.
//!
//! On-disk record (integers little-endian):
//! `magic "SWL1" | seq u64 | payload length u32 | keyed BLAKE3(first 16 bytes ‖ payload) | payload`,
//! payload: per op `table u8 | kind u8 (1 put, 0 delete) | key length u32 | key
//! [| value length u32 | value]`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

mod file;

use super::redb_file::RedbBackend;
use super::{Backend, Durability, FileStorage, Overlay, Snapshot, StorageError, Table, WriteBatch};
use file::{WAL_BLOCK_BYTES, WAL_DIRECT_WRITE_BYTES, WalFile};

/// The log's file name in a data dir.
pub const WAL_FILE: &str = "semel.wal";
/// Log bytes (records since the last checkpoint) after which redb is checkpointed and
/// the log starts over: bounds the log's size and the replay after a crash.
pub const WAL_CHECKPOINT_BYTES: u64 = 64 << 20;
/// Bytes of zeros the log file grows by ahead of the records, so that appending a
/// record overwrites allocated blocks and its fdatasync need not write file metadata.
pub const WAL_GROW_BYTES: u64 = 8 << 20;
/// Log bytes after which the logged batches are applied to redb (one write transaction,
/// no sync, on a thread of its own): bounds the in-memory overlays (one gathering, one
/// being applied) and the work of one apply.
pub const WAL_APPLY_BYTES: u64 = 256 << 10;
/// Bytes of the append buffer kept between appends at most: after a larger record (a
/// big deploy) the buffer is freed rather than held for the backend's lifetime.
pub const WAL_BUFFER_KEEP_BYTES: usize = 1 << 20;
/// Bytes of one record's payload at most; a larger batch is refused before anything is
/// written.
pub const WAL_RECORD_BYTES_MAX: u64 = 1 << 30;
/// The key, in the meta table, of the last log record redb holds (u64, little-endian).
const WAL_SEQ_KEY: &[u8] = b"storage.wal_seq";
/// The key, in the meta table, of the data dir's secret checksum key (32 random bytes,
/// made with the data dir): a record's checksum is keyed with it, so bytes that were
/// never a record of this data dir — a contract's value inside an old record, met by a
/// replay past the end of the current ones — cannot pass for one.
const WAL_MAC_KEY: &[u8] = b"storage.wal_key";

const MAGIC: [u8; 4] = *b"SWL1";
const HEADER_BYTES: usize = 48;

/// When the log applies, checkpoints and grows. The defaults are the constants above;
/// tests set small values so that applies, checkpoints and new cycles happen often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalTuning {
    /// Log bytes after which logged batches are applied to redb ([`WAL_APPLY_BYTES`]).
    pub apply_bytes: u64,
    /// Log bytes after which redb is checkpointed ([`WAL_CHECKPOINT_BYTES`]).
    pub checkpoint_bytes: u64,
    /// Bytes of zeros the file grows by ([`WAL_GROW_BYTES`]).
    pub grow_bytes: u64,
    /// Whether an apply runs on a thread of its own (the default) or inside the commit
    /// that starts it: tests that crash at a numbered I/O want the order of I/O fixed.
    pub apply_in_background: bool,
}

impl Default for WalTuning {
    fn default() -> Self {
        Self {
            apply_bytes: WAL_APPLY_BYTES,
            checkpoint_bytes: WAL_CHECKPOINT_BYTES,
            grow_bytes: WAL_GROW_BYTES,
            apply_in_background: true,
        }
    }
}

/// The log's storage: any file, so tests can inject faults into it.
type LogStorage = Box<dyn FileStorage>;

/// redb behind a write-ahead log.
pub struct WalBackend {
    /// Shared with the thread of a running apply.
    redb: Arc<RedbBackend>,
    log: Mutex<Log>,
    sync: bool,
    tuning: WalTuning,
}

struct Log {
    file: LogStorage,
    /// Where the next record goes.
    end: u64,
    /// The bytes of the block `end` falls in, before `end`: every write is whole
    /// [`WAL_BLOCK_BYTES`] blocks (see `file.rs`), so an append rewrites them.
    tail: Vec<u8>,
    /// The blocks of the last append, reused; kept so a failed one can be taken back.
    blocks: Vec<u8>,
    /// Set from the write of `blocks` until its sync returned: a failure then may have
    /// left the record on disk, to be taken back.
    unsynced: bool,
    /// Bytes of the file (zeros past `end` once grown).
    len: u64,
    /// The sequence number of the last record written.
    seq: u64,
    /// The key of the records' checksums ([`WAL_MAC_KEY`]).
    mac_key: [u8; 32],
    /// Why commits are refused until the data dir is reopened: a failed append whose
    /// record may still be on disk, or a failed apply.
    failed: Option<String>,
    /// Log bytes of the records not yet applied to redb.
    unapplied_bytes: u64,
    /// The writes of those records, laid over redb for reads; an apply writes the
    /// newest write of each key from here, once however many records wrote it.
    overlay: Overlay,
    /// The apply in progress, if any: its writes lie between redb and `overlay`.
    applying: Option<Applying>,
    /// redb's snapshot, kept until an apply is done: opening one costs a read
    /// transaction.
    base: Option<Arc<dyn Snapshot>>,
}

/// Logged writes on their way into redb.
struct Applying {
    writes: Overlay,
    /// The last log record they hold.
    upto: u64,
    /// The apply's thread; `None` once joined after a failure (the writes are kept for
    /// reads until the reopen).
    thread: Option<JoinHandle<Result<(), StorageError>>>,
}

impl fmt::Debug for WalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalBackend").finish_non_exhaustive()
    }
}

fn io(what: &str, e: impl fmt::Display) -> StorageError {
    StorageError::Io(format!("write-ahead log: {what}: {e}"))
}

impl WalBackend {
    /// Opens the redb file `db` and the log `wal`, replaying what redb lacks. With
    /// `Durability::None` commits skip the log and every sync.
    ///
    /// # Errors
    /// When either file cannot be opened or read, or redb fails.
    pub fn open(db: &Path, wal: &Path, durability: Durability) -> Result<Self, StorageError> {
        let redb = RedbBackend::open(db, Durability::None)?;
        // A store that has used a log keeps its key: without the log, the records not yet
        // in redb — committed, acknowledged — would be silently lost.
        if !wal.exists() && redb.snapshot()?.get(Table::Meta, WAL_MAC_KEY)?.is_some() {
            return Err(StorageError::Corrupt(format!(
                "{} is missing, but {} has used a write-ahead log: the log may hold                  committed transactions that redb does not; restore it (after a clean                  close, an empty file in its place opens the store as it was)",
                wal.display(),
                db.display()
            )));
        }
        let file =
            WalFile::open(wal).map_err(|e| io(&format!("cannot open {}", wal.display()), e))?;
        Self::with_storage(redb, Box::new(file), durability)
    }

    /// The log over any storage (such as a fault-injecting one) in front of `redb`, which
    /// must have been opened with `Durability::None`.
    ///
    /// # Errors
    /// When the log cannot be read or the replay fails.
    pub fn with_storage(
        redb: RedbBackend,
        file: LogStorage,
        durability: Durability,
    ) -> Result<Self, StorageError> {
        let snap = redb.snapshot()?;
        let durable_seq = match snap.get(Table::Meta, WAL_SEQ_KEY)? {
            Some(bytes) => u64::from_le_bytes(bytes.as_slice().try_into().map_err(|_| {
                StorageError::Corrupt(format!("{} is not 8 bytes", WAL_SEQ_KEY.escape_ascii()))
            })?),
            None => 0,
        };
        let stored_key = snap.get(Table::Meta, WAL_MAC_KEY)?;
        drop(snap);
        let len = file.len().map_err(|e| io("length", e))?;
        let mut log = Log {
            file,
            mac_key: [0; 32],
            end: 0,
            tail: Vec::new(),
            blocks: Vec::new(),
            unsynced: false,
            len,
            seq: durable_seq,
            failed: None,
            unapplied_bytes: 0,
            overlay: Overlay::default(),
            applying: None,
            base: None,
        };
        // Read once: the first header says whether the log holds anything.
        let holds_records = log.len >= HEADER_BYTES as u64 && log.holds_a_header()?;
        log.mac_key = match stored_key {
            Some(key) => key.as_slice().try_into().map_err(|_| {
                StorageError::Corrupt(format!("{} is not 32 bytes", WAL_MAC_KEY.escape_ascii()))
            })?,
            // Records without a key to check them by: refuse rather than drop them.
            None if holds_records => {
                return Err(StorageError::Corrupt(
                    "the write-ahead log holds records but the data dir has no log key: \
                     it was written by an older version of Semel"
                        .into(),
                ));
            }
            None => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key)
                    .map_err(|e| io("make the log key (no OS randomness)", e))?;
                let mut batch = WriteBatch::new();
                batch.put(Table::Meta, WAL_MAC_KEY.to_vec(), key.to_vec());
                redb.commit_batches(&[&batch], true)?;
                key
            }
        };
        let replay = log.read_from(durable_seq)?;
        if !replay.is_empty() {
            let last = replay.last().map_or(durable_seq, |(seq, _)| *seq);
            let mut batches: Vec<&WriteBatch> = replay.iter().map(|(_, b)| b).collect();
            let marker = seq_batch(last);
            batches.push(&marker);
            redb.commit_batches(&batches, true)?;
            log.seq = last;
        }
        // The log is empty from here on: a replay is checkpointed above, and records
        // left from earlier cycles carry older numbers.
        if holds_records {
            log.clear()?;
        }
        Ok(Self {
            redb: Arc::new(redb),
            log: Mutex::new(log),
            sync: durability == Durability::Immediate,
            tuning: WalTuning::default(),
        })
    }

    /// The same backend, applying and checkpointing as `tuning` says.
    #[must_use]
    pub fn with_tuning(mut self, tuning: WalTuning) -> Self {
        self.tuning = tuning;
        self
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Log>, StorageError> {
        self.log
            .lock()
            .map_err(|_| StorageError::Backend("write-ahead log lock poisoned".into()))
    }
}

fn seq_batch(seq: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(
        Table::Meta,
        WAL_SEQ_KEY.to_vec(),
        seq.to_le_bytes().to_vec(),
    );
    b
}

/// Refuses a payload the log cannot hold.
fn check_payload_len(len: u64) -> Result<u32, StorageError> {
    if len > WAL_RECORD_BYTES_MAX {
        return Err(StorageError::Backend(format!(
            "a commit of {len} bytes exceeds the write-ahead log's record limit of \
             {WAL_RECORD_BYTES_MAX} bytes (WAL_RECORD_BYTES_MAX)"
        )));
    }
    u32::try_from(len).map_err(|_| StorageError::Backend(format!("record of {len} bytes")))
}

fn len_u32(n: usize) -> Result<[u8; 4], StorageError> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| StorageError::Backend(format!("a key or value of {n} bytes")))
}

/// Appends one record, header and payload, to `out`; returns its length. Refuses a
/// batch too large for a record before writing anything.
fn encode_into(
    out: &mut Vec<u8>,
    mac_key: &[u8; 32],
    seq: u64,
    batch: &WriteBatch,
) -> Result<usize, StorageError> {
    let payload_len: usize = batch
        .ops()
        .iter()
        .map(|(_, k, v)| 6 + k.len() + v.as_ref().map_or(0, |v| 4 + v.len()))
        .sum();
    let payload_u32 = check_payload_len(u64::try_from(payload_len).unwrap_or(u64::MAX))?;
    let start = out.len();
    out.reserve(HEADER_BYTES + payload_len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&payload_u32.to_le_bytes());
    out.extend_from_slice(&[0; 32]);
    for (table, key, value) in batch.ops() {
        out.push(u8::try_from(table.index()).unwrap_or(u8::MAX));
        out.push(u8::from(value.is_some()));
        out.extend_from_slice(&len_u32(key.len())?);
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&len_u32(v.len())?);
            out.extend_from_slice(v);
        }
    }
    let record = &mut out[start..];
    let sum = checksum(mac_key, &record[..16], &record[HEADER_BYTES..]);
    record[16..HEADER_BYTES].copy_from_slice(&sum);
    Ok(record.len())
}

#[cfg(test)]
fn encode(seq: u64, batch: &WriteBatch) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    encode_into(&mut out, &[7; 32], seq, batch)?;
    Ok(out)
}

fn checksum(mac_key: &[u8; 32], head: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(mac_key);
    h.update(head);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// The ops of a payload; `None` when it does not decode (a torn or foreign record).
fn decode(payload: &[u8]) -> Option<WriteBatch> {
    let mut batch = WriteBatch::new();
    let mut rest = payload;
    let take = |rest: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head.to_vec())
    };
    let take_len = |rest: &mut &[u8]| -> Option<usize> {
        let (head, tail) = rest.split_first_chunk::<4>()?;
        *rest = tail;
        usize::try_from(u32::from_le_bytes(*head)).ok()
    };
    while let Some((&[table, kind], tail)) = rest.split_first_chunk::<2>() {
        rest = tail;
        let table = *Table::ALL.get(usize::from(table))?;
        let key_len = take_len(&mut rest)?;
        let key = take(&mut rest, key_len)?;
        match kind {
            1 => {
                let value_len = take_len(&mut rest)?;
                batch.put(table, key, take(&mut rest, value_len)?);
            }
            0 => batch.delete(table, key),
            _ => return None,
        }
    }
    rest.is_empty().then_some(batch)
}

impl Log {
    fn holds_a_header(&self) -> Result<bool, StorageError> {
        let mut head = [0u8; 4];
        self.file
            .read(0, &mut head)
            .map_err(|e| io("read the first record", e))?;
        Ok(head != [0; 4])
    }

    /// The records after `durable_seq`, in order. Records redb already holds (a
    /// checkpoint whose clear did not happen) are skipped, but only before the first
    /// one replayed and only when their checksum holds; after that, any record but the
    /// next one ends the replay.
    fn read_from(&self, durable_seq: u64) -> Result<Vec<(u64, WriteBatch)>, StorageError> {
        let mut out = Vec::new();
        let mut at = 0u64;
        let mut expected = durable_seq + 1;
        let mut header = [0u8; HEADER_BYTES];
        while at + HEADER_BYTES as u64 <= self.len {
            self.file
                .read(at, &mut header)
                .map_err(|e| io("read a record header", e))?;
            let (magic, rest) = header.split_at(4);
            let (seq, rest) = rest.split_at(8);
            let (len, sum) = rest.split_at(4);
            if magic != MAGIC {
                break;
            }
            let seq = u64::from_le_bytes(seq.try_into().unwrap_or_default());
            let len = u64::from(u32::from_le_bytes(len.try_into().unwrap_or_default()));
            let next = at + HEADER_BYTES as u64 + len;
            let replaying = !out.is_empty();
            if len > WAL_RECORD_BYTES_MAX
                || next > self.len
                || seq > expected
                || (seq < expected && replaying)
            {
                break;
            }
            let mut payload = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
            self.file
                .read(at + HEADER_BYTES as u64, &mut payload)
                .map_err(|e| io("read a record", e))?;
            if checksum(&self.mac_key, &header[..16], &payload) != sum {
                break;
            }
            if seq == expected {
                let Some(batch) = decode(&payload) else {
                    break;
                };
                out.push((seq, batch));
                expected += 1;
            }
            at = next;
        }
        Ok(out)
    }

    /// Makes the log empty: a zeroed first block, synced.
    fn clear(&mut self) -> Result<(), StorageError> {
        self.file
            .write(0, &[0; WAL_BLOCK_BYTES])
            .map_err(|e| io("clear", e))?;
        self.file.sync_data().map_err(|e| io("sync", e))?;
        self.len = self.len.max(WAL_BLOCK_BYTES as u64);
        self.end = 0;
        self.tail.clear();
        Ok(())
    }

    /// Appends record `seq` of `batch` at `end` and syncs, first growing the file by at
    /// least `grow_bytes` of zeros when it is too short; returns the record's length.
    /// The write is whole blocks: the block's bytes before `end` again, the record, zeros
    /// to the block's end. The bytes before `end` are rewritten unchanged, as a page-cache
    /// writeback of that block would rewrite them, so a torn write cannot change an
    /// earlier record. The blocks are encoded into one buffer kept across appends: a
    /// fresh one per group costs page faults.
    fn append(
        &mut self,
        seq: u64,
        batch: &WriteBatch,
        grow_bytes: u64,
    ) -> Result<u64, StorageError> {
        self.blocks.clear();
        self.blocks.extend_from_slice(&self.tail);
        let encoded = encode_into(&mut self.blocks, &self.mac_key, seq, batch)?;
        let record_len = u64::try_from(encoded).unwrap_or(u64::MAX);
        let needed = self.end + record_len;
        let start = self.end - u64::try_from(self.tail.len()).unwrap_or(0);
        let blocks_end = round_up(needed);
        if blocks_end > self.len {
            self.grow(round_up(blocks_end.max(self.len + grow_bytes)))?;
        }
        let padded = usize::try_from(blocks_end - start).unwrap_or(usize::MAX);
        self.blocks.resize(padded, 0);
        self.unsynced = true;
        self.file
            .write(start, &self.blocks)
            .map_err(|e| io("append", e))?;
        self.file.sync_data().map_err(|e| io("sync", e))?;
        self.unsynced = false;
        let in_block = usize::try_from(needed % WAL_BLOCK_BYTES as u64).unwrap_or(0);
        let used = usize::try_from(needed - start).unwrap_or(usize::MAX);
        self.tail.clear();
        self.tail
            .extend_from_slice(&self.blocks[used - in_block..used]);
        self.end = needed;
        if self.blocks.capacity() > WAL_BUFFER_KEEP_BYTES {
            self.blocks = Vec::new();
        }
        Ok(record_len)
    }

    /// Grows the file to `grown` bytes and writes zeros over the new part, a bounded
    /// piece at a time: a length alone would leave a hole, whose blocks the first sync
    /// into it would have to allocate.
    fn grow(&mut self, grown: u64) -> Result<(), StorageError> {
        self.file.set_len(grown).map_err(|e| io("grow", e))?;
        let piece = (WAL_DIRECT_WRITE_BYTES as u64).min(grown - self.len);
        let zeros = vec![0u8; usize::try_from(piece).unwrap_or(usize::MAX)];
        while self.len < grown {
            let n = piece.min(grown - self.len);
            let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
            self.file
                .write(self.len, &zeros[..n_usize])
                .map_err(|e| io("grow", e))?;
            self.len += n;
        }
        Ok(())
    }

    /// Takes back the record of the append that just failed: its blocks written again
    /// with its header zeroed, and synced, so no replay applies it.
    fn take_back(&mut self) -> Result<(), StorageError> {
        if !self.unsynced {
            return Ok(());
        }
        let header = self.tail.len();
        if let Some(h) = self.blocks.get_mut(header..header + HEADER_BYTES) {
            h.fill(0);
        }
        let start = self.end - u64::try_from(self.tail.len()).unwrap_or(0);
        self.file
            .write(start, &self.blocks)
            .map_err(|e| io("take back a failed record", e))?;
        self.file.sync_data().map_err(|e| io("sync", e))?;
        self.unsynced = false;
        Ok(())
    }
}

/// `n` rounded up to a whole number of [`WAL_BLOCK_BYTES`] blocks.
fn round_up(n: u64) -> u64 {
    n.next_multiple_of(WAL_BLOCK_BYTES as u64)
}

impl Backend for WalBackend {
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        let mut log = self.lock()?;
        self.view(&mut log)
    }

    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        let mut log = self.lock()?;
        if let Some(why) = &log.failed {
            return Err(StorageError::Io(format!(
                "write-ahead log: refused until the data dir is reopened, after: {why}"
            )));
        }
        self.commit_locked(&mut log, batch)
    }
}

impl WalBackend {
    /// What a snapshot reads now: the logged writes over those being applied over redb.
    fn view(&self, log: &mut Log) -> Result<Arc<dyn Snapshot>, StorageError> {
        let base = match &log.base {
            Some(base) => Arc::clone(base),
            None => {
                let base = self.redb.snapshot()?;
                log.base = Some(Arc::clone(&base));
                base
            }
        };
        let base = match &log.applying {
            Some(applying) => applying.writes.over(base),
            None => base,
        };
        Ok(log.overlay.over(base))
    }

    fn commit_locked(&self, log: &mut Log, batch: &WriteBatch) -> Result<(), StorageError> {
        if !self.sync {
            log.base = None;
            return self.redb.commit_batches(&[batch], false);
        }
        // Apply and checkpoint before logging, so a failure here fails only this batch,
        // which is nowhere yet.
        let t = self.tuning;
        Self::join_apply(log, false)?;
        if log.end >= t.checkpoint_bytes {
            Self::join_apply(log, true)?;
            self.apply(log)?;
            self.redb.commit_batches(&[], true)?;
            log.clear()?;
        } else if log.unapplied_bytes >= t.apply_bytes {
            // One apply at a time: the overlay stays bounded.
            Self::join_apply(log, true)?;
            self.start_apply(log)?;
        }
        // Checked under the log's lock, which every commit holds, after the applies (so
        // the view it opens is the one the next reads use): nothing can commit between
        // the check and the append. Without the log, redb checks it in its transaction.
        if let Some(pre) = batch.precondition() {
            let found = self.view(log)?.get(pre.table, &pre.key)?;
            pre.check(found.as_deref())?;
        }
        let seq = log.seq + 1;
        let record_len = match log.append(seq, batch, t.grow_bytes) {
            Ok(n) => n,
            Err(e) => {
                // The record may have reached the disk: take it back, or a reopen would
                // replay a commit that was reported failed.
                if let Err(back) = log.take_back() {
                    log.failed = Some(format!(
                        "a failed log write that could not be taken back ({e}; {back})"
                    ));
                }
                return Err(e);
            }
        };
        log.seq = seq;
        log.overlay.insert(seq, batch);
        log.unapplied_bytes += record_len;
        Ok(())
    }
}

impl WalBackend {
    /// Starts applying the logged writes to redb (no sync) on a thread of its own, and
    /// empties the overlay: the writes stay readable under it until the apply is joined.
    fn start_apply(&self, log: &mut Log) -> Result<(), StorageError> {
        if log.overlay.is_empty() {
            return Ok(());
        }
        if !self.tuning.apply_in_background {
            return self.apply(log);
        }
        let (redb, writes, upto) = (Arc::clone(&self.redb), log.overlay.clone(), log.seq);
        let spawned = std::thread::Builder::new()
            .name("semel-wal-apply".into())
            .spawn(move || write_to_redb(&redb, &writes, upto));
        let Ok(thread) = spawned else {
            // No thread to be had: apply here, as the commit would have to wait anyway.
            return self.apply(log);
        };
        log.applying = Some(Applying {
            writes: std::mem::take(&mut log.overlay),
            thread: Some(thread),
            upto,
        });
        log.unapplied_bytes = 0;
        Ok(())
    }

    /// Joins the apply in progress once it is done, or at once with `wait`. After a
    /// failure the log refuses commits, its writes kept for reads, until reopened.
    fn join_apply(log: &mut Log, wait: bool) -> Result<(), StorageError> {
        let Some(applying) = &mut log.applying else {
            return Ok(());
        };
        let Some(thread) = applying.thread.take_if(|t| wait || t.is_finished()) else {
            return Ok(());
        };
        let result = thread.join().unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(io("apply", format!("its thread panicked: {what}")))
        });
        match result {
            Ok(()) => {
                log.applying = None;
                // The next read opens a snapshot that holds the applied writes.
                log.base = None;
                Ok(())
            }
            Err(e) => {
                let why = format!(
                    "applying log records up to {} to redb failed ({e}); the log holds \
                     them, and the reopen replays them",
                    applying.upto
                );
                log.failed = Some(why.clone());
                Err(StorageError::Io(format!("write-ahead log: {why}")))
            }
        }
    }

    /// Applies the logged writes to redb (no sync) and empties the overlay, here and
    /// now: at a checkpoint and a clean close, once no apply is in progress.
    fn apply(&self, log: &mut Log) -> Result<(), StorageError> {
        if log.overlay.is_empty() {
            return Ok(());
        }
        // Dropped first: redb frees the pages this snapshot pins only when it goes.
        log.base = None;
        write_to_redb(&self.redb, &log.overlay, log.seq)?;
        log.unapplied_bytes = 0;
        log.overlay = Overlay::default();
        Ok(())
    }
}

/// One redb write transaction (no sync) of the newest write of each key in `writes`,
/// recording `upto`, the last log record they hold.
fn write_to_redb(redb: &RedbBackend, writes: &Overlay, upto: u64) -> Result<(), StorageError> {
    let marker = upto.to_le_bytes();
    let ops = writes
        .ops()
        .chain([(Table::Meta, WAL_SEQ_KEY, Some(marker.as_slice()))]);
    redb.commit_ops(ops, None, false)
}

impl Drop for WalBackend {
    fn drop(&mut self) {
        // An apply in progress is joined even after a panic poisoned the lock: its
        // thread holds redb, which a reopen could not open beside it.
        let (mut log, poisoned) = match self.log.lock() {
            Ok(log) => (log, false),
            Err(e) => (e.into_inner(), true),
        };
        let joined = Self::join_apply(&mut log, true).is_ok();
        // A clean close checkpoints and clears the log, so the next open reads one
        // header. After a failure, leave both for the next open's replay.
        if joined
            && !poisoned
            && log.failed.is_none()
            && self.sync
            && log.end > 0
            && self.apply(&mut log).is_ok()
            && self.redb.commit_batches(&[], true).is_ok()
        {
            let _ = log.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::file::MemFile;

    #[test]
    fn records_round_trip_and_refuse_damage() {
        let mut b = WriteBatch::new();
        b.put(Table::State, b"k".to_vec(), b"v".to_vec());
        b.delete(Table::Txs, b"gone".to_vec());
        b.put(Table::Meta, Vec::new(), Vec::new());
        let rec = encode(7, &b).unwrap();
        let payload = &rec[HEADER_BYTES..];
        assert_eq!(decode(payload).unwrap().ops(), b.ops());
        assert_eq!(checksum(&[7; 32], &rec[..16], payload), rec[16..48]);
        // Another data dir's key does not pass.
        assert_ne!(checksum(&[8; 32], &rec[..16], payload), rec[16..48]);
        // A payload cut short does not decode.
        assert!(decode(&payload[..payload.len() - 1]).is_none());
        // An unknown table does not decode.
        let mut bad = payload.to_vec();
        bad[0] = 9;
        assert!(decode(&bad).is_none());
    }

    #[test]
    fn a_large_record_does_not_keep_its_buffer() {
        let redb = RedbBackend::with_storage(Box::<MemFile>::default(), Durability::None).unwrap();
        let log = Box::<MemFile>::default();
        let wal = WalBackend::with_storage(redb, log, Durability::Immediate).unwrap();
        let commit = |bytes: usize| {
            let mut b = WriteBatch::new();
            b.put(Table::State, b"k".to_vec(), vec![1; bytes]);
            wal.commit(&b).unwrap();
            wal.log.lock().unwrap().blocks.capacity()
        };
        assert!(commit(100) <= WAL_BUFFER_KEEP_BYTES);
        assert!(commit(WAL_BUFFER_KEEP_BYTES / 2) <= WAL_BUFFER_KEEP_BYTES);
        assert_eq!(
            commit(WAL_BUFFER_KEEP_BYTES + 1),
            0,
            "freed after a large record"
        );
        assert!(commit(100) > 0, "a small record keeps its buffer");
        // The newest value is what reads see.
        assert_eq!(
            wal.snapshot().unwrap().get(Table::State, b"k").unwrap(),
            Some(vec![1; 100])
        );
    }

    #[test]
    fn record_limit() {
        assert!(check_payload_len(WAL_RECORD_BYTES_MAX).is_ok());
        let e = check_payload_len(WAL_RECORD_BYTES_MAX + 1).unwrap_err();
        assert!(e.to_string().contains("WAL_RECORD_BYTES_MAX"), "{e}");
    }

    fn in_memory_wal(tuning: WalTuning) -> WalBackend {
        let redb = RedbBackend::with_storage(Box::<MemFile>::default(), Durability::None).unwrap();
        let log = Box::<MemFile>::default();
        WalBackend::with_storage(redb, log, Durability::Immediate)
            .unwrap()
            .with_tuning(tuning)
    }

    fn put(key: &[u8], value: &[u8]) -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(Table::State, key.to_vec(), value.to_vec());
        b
    }

    #[test]
    fn applies_run_beside_commits_and_their_writes_stay_readable() {
        // Every commit finds a record unapplied, so each starts an apply (joining the
        // one before).
        let wal = in_memory_wal(WalTuning {
            apply_bytes: 1,
            checkpoint_bytes: u64::MAX,
            grow_bytes: 4 << 10,
            apply_in_background: true,
        });
        for i in 0..20u8 {
            wal.commit(&put(&[i], &[i])).unwrap();
            let snap = wal.snapshot().unwrap();
            for j in 0..=i {
                assert_eq!(snap.get(Table::State, &[j]).unwrap(), Some(vec![j]));
            }
        }
        let mut log = wal.lock().unwrap();
        WalBackend::join_apply(&mut log, true).unwrap();
        assert!(log.applying.is_none());
        drop(log);
        // Applied: redb alone holds all but the last record, which is still logged.
        let redb = wal.redb.snapshot().unwrap();
        assert_eq!(redb.get(Table::State, &[18]).unwrap(), Some(vec![18]));
        assert_eq!(redb.get(Table::State, &[19]).unwrap(), None);
    }

    #[test]
    fn a_failed_apply_refuses_later_commits_and_keeps_its_writes_readable() {
        let wal = in_memory_wal(WalTuning {
            apply_bytes: u64::MAX,
            checkpoint_bytes: u64::MAX,
            grow_bytes: 4 << 10,
            apply_in_background: true,
        });
        wal.commit(&put(b"a", b"1")).unwrap();
        {
            // An apply of the logged write whose redb transaction fails.
            let mut log = wal.lock().unwrap();
            let writes = std::mem::take(&mut log.overlay);
            let thread = std::thread::spawn(|| Err(StorageError::Io("disk full".into())));
            while !thread.is_finished() {
                std::thread::yield_now();
            }
            log.applying = Some(Applying {
                writes,
                thread: Some(thread),
                upto: 1,
            });
        }
        let e = wal
            .commit(&put(b"b", b"2"))
            .expect_err("the apply's failure");
        assert!(
            e.to_string().contains("records up to 1") && e.to_string().contains("disk full"),
            "{e}"
        );
        let e = wal.commit(&put(b"c", b"3")).expect_err("refused after it");
        assert!(
            e.to_string().contains("reopened") && e.to_string().contains("disk full"),
            "{e}"
        );
        let snap = wal.snapshot().unwrap();
        assert_eq!(snap.get(Table::State, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(snap.get(Table::State, b"b").unwrap(), None);
    }
}
