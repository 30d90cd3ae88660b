//! The events index (`Table::Events`): every event of a committed transaction's
//! receipt, listed by version, by contract, by topic, or by both, without reading the
//! receipts or the log. Its rows are written in the batch of the transaction that
//! emitted the events ([`add_rows`]), so the index holds exactly the recorded
//! transactions, whatever commits or crashes; a store made before the index gets its
//! rows on open ([`catch_up`]). The key layout is in `ledger/records.rs`.
//!
//! A listing ([`list`]) reads one range of one family: the rows of the matching events
//! from the asked version on, and nothing else. The event's data is stored once, in its
//! row of the family of all events; the rows of the other three are empty and name it
//! by their key's suffix (version and index). A listing by contract or topic then pays
//! one point read per event it returns, where storing the data four times would cost
//! up to four times `EVENT_DATA_BYTES_MAX` per event in every transaction's batch (and
//! in the write-ahead log) for reads that are rarer than writes.

use std::ops::Bound;
use std::sync::Arc;

use uuid::Uuid;

use crate::codec::{Reader, Writer};
use crate::error::InputError;
use crate::ledger::head::Head;
use crate::ledger::names::check_contract_name;
use crate::ledger::receipt::{Event, Receipt, Status};
use crate::ledger::records::{META_EVENTS_INDEXED, TxRecord, decode_u64, history_key};
use crate::limits::{
    CONTRACT_NAME_BYTES_MAX, EVENT_TOPIC_BYTES_MAX, EVENTS_LIST_DEFAULT, EVENTS_LIST_MAX,
};
use crate::storage::{Backend, Snapshot, StorageError, Table, WriteBatch};

/// Family tag of the rows of every event (these hold the data).
const ALL: u8 = 0x00;
/// Family tag of the rows by contract.
const BY_CONTRACT: u8 = 0x01;
/// Family tag of the rows by topic.
const BY_TOPIC: u8 = 0x02;
/// Family tag of the rows by contract and topic.
const BY_BOTH: u8 = 0x03;
/// Bytes of a key's suffix: version u64 BE, event index u32 BE.
const SUFFIX_BYTES: usize = 12;

/// Which events a listing asks for: every filter is optional (`None`: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events this contract emitted.
    pub contract: Option<String>,
    /// Only events with this topic.
    pub topic: Option<String>,
    /// Only events of transactions at this version or later (0 and 1: from the first).
    pub from_version: u64,
    /// Most events returned, at most `EVENTS_LIST_MAX` (default `EVENTS_LIST_DEFAULT`).
    pub limit: usize,
}

impl Default for EventFilter {
    /// Every event, up to `EVENTS_LIST_DEFAULT` of them.
    fn default() -> Self {
        Self {
            contract: None,
            topic: None,
            from_version: 0,
            limit: EVENTS_LIST_DEFAULT,
        }
    }
}

impl EventFilter {
    /// Checks the filter: a contract name a deploy would accept, a topic no longer than
    /// `EVENT_TOPIC_BYTES_MAX`, a limit no larger than `EVENTS_LIST_MAX`.
    ///
    /// # Errors
    /// [`InputError::BadContractName`], [`InputError::EventTopicTooLong`] or
    /// [`InputError::EventsLimit`].
    pub fn check(&self) -> Result<(), InputError> {
        if let Some(contract) = &self.contract {
            check_contract_name(contract)?;
        }
        if let Some(topic) = &self.topic
            && topic.len() > EVENT_TOPIC_BYTES_MAX
        {
            return Err(InputError::EventTopicTooLong {
                len: topic.len(),
                max: EVENT_TOPIC_BYTES_MAX,
            });
        }
        if self.limit > EVENTS_LIST_MAX {
            return Err(InputError::EventsLimit {
                given: self.limit,
                max: EVENTS_LIST_MAX,
            });
        }
        Ok(())
    }
}

/// An event of a committed transaction, as a listing returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The version of the transaction that emitted it.
    pub version: u64,
    /// Its place among that transaction's receipt events, from 0.
    pub index: u32,
    /// That transaction's id.
    pub tx_id: Uuid,
    /// The contract that emitted it.
    pub contract: String,
    /// Its topic.
    pub topic: String,
    /// Its data.
    pub data: Vec<u8>,
}

/// `[len u8][contract]`: contract names are at most 64 bytes (checked before any
/// transaction or listing gets here).
fn push_contract(key: &mut Vec<u8>, contract: &str) {
    let len = u8::try_from(contract.len()).expect("contract names are at most 64 bytes");
    key.push(len);
    key.extend_from_slice(contract.as_bytes());
}

/// `[len u16 BE][topic]`: topics are at most `EVENT_TOPIC_BYTES_MAX` (256) bytes.
fn push_topic(key: &mut Vec<u8>, topic: &str) {
    let len = u16::try_from(topic.len()).expect("event topics are at most 256 bytes");
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(topic.as_bytes());
}

/// The key prefix of the family a filter reads: every row under it is a matching event.
fn prefix(contract: Option<&str>, topic: Option<&str>) -> Vec<u8> {
    let mut key = Vec::with_capacity(
        4 + contract.map_or(0, str::len) + topic.map_or(0, str::len) + SUFFIX_BYTES,
    );
    push_prefix(&mut key, contract, topic);
    key
}

/// Appends [`prefix`]'s bytes to `key`.
fn push_prefix(key: &mut Vec<u8>, contract: Option<&str>, topic: Option<&str>) {
    match (contract, topic) {
        (None, None) => key.push(ALL),
        (Some(c), None) => {
            key.push(BY_CONTRACT);
            push_contract(key, c);
        }
        (None, Some(t)) => {
            key.push(BY_TOPIC);
            push_topic(key, t);
        }
        (Some(c), Some(t)) => {
            key.push(BY_BOTH);
            push_contract(key, c);
            push_topic(key, t);
        }
    }
}

/// `prefix` followed by the suffix of event `index` at `version`.
fn with_suffix(mut prefix: Vec<u8>, version: u64, index: u32) -> Vec<u8> {
    prefix.extend_from_slice(&version.to_be_bytes());
    prefix.extend_from_slice(&index.to_be_bytes());
    prefix
}

/// The key of event `index` at `version` in the family of all events: where its data is.
fn all_key(version: u64, index: u32) -> Vec<u8> {
    with_suffix(vec![ALL], version, index)
}

/// The inclusive key range a listing with `filter`'s contract and topic reads from
/// `from_version` on: exactly the rows of matching events at that version or later.
pub(crate) fn scan_range(
    contract: Option<&str>,
    topic: Option<&str>,
    from_version: u64,
) -> (Vec<u8>, Vec<u8>) {
    let prefix = prefix(contract, topic);
    (
        with_suffix(prefix.clone(), from_version, 0),
        with_suffix(prefix, u64::MAX, u32::MAX),
    )
}

/// The version and index a key ends with.
fn suffix(key: &[u8]) -> Result<(u64, u32), StorageError> {
    let corrupt = || StorageError::Corrupt("an events index key is too short".into());
    let at = key.len().checked_sub(SUFFIX_BYTES).ok_or_else(corrupt)?;
    let (version, index) = key[at..].split_at(8);
    Ok((
        u64::from_be_bytes(version.try_into().map_err(|_| corrupt())?),
        u32::from_be_bytes(index.try_into().map_err(|_| corrupt())?),
    ))
}

/// The value of an event's row in the family of all events.
fn encode_all_value(tx_id: &Uuid, event: &Event) -> Vec<u8> {
    Writer::with_capacity(16 + 12 + event.contract.len() + event.topic.len() + event.data.len())
        .fixed(tx_id.as_bytes())
        .str(&event.contract)
        .str(&event.topic)
        .bytes(&event.data)
        .finish()
}

/// Reads [`encode_all_value`]'s bytes as the event at `version`, `index`.
fn decode_all_value(version: u64, index: u32, bytes: &[u8]) -> Result<EventRecord, StorageError> {
    let mut r = Reader::new(bytes);
    let tx_id = Uuid::from_bytes(r.fixed()?);
    let contract = r.str()?.to_owned();
    let topic = r.str()?.to_owned();
    let data = r.bytes()?.to_vec();
    r.end()?;
    Ok(EventRecord {
        version,
        index,
        tx_id,
        contract,
        topic,
        data,
    })
}

/// Adds the index rows of `receipt`'s events (none unless it committed) to `batch`, as
/// the transaction at `receipt.version`. Reads nothing, so the workers of a parallel
/// batch add them with the rest of their runs' rows. Returns the bytes added.
pub(crate) fn add_rows(receipt: &Receipt, batch: &mut WriteBatch) -> usize {
    if receipt.status != Status::Committed || receipt.events.is_empty() {
        return 0;
    }
    let version = receipt.version;
    let empty: Arc<[u8]> = Arc::from(&[][..]);
    let mut bytes = 0;
    let mut key = Vec::with_capacity(64);
    for (i, event) in receipt.events.iter().enumerate() {
        // At most EVENTS_PER_TX_MAX (1,024) events per transaction.
        let index = u32::try_from(i).expect("a receipt holds at most 1,024 events");
        let value = encode_all_value(&receipt.tx_id, event);
        let (contract, topic) = (event.contract.as_str(), event.topic.as_str());
        // Each key built in one buffer and copied once into the batch's shared bytes:
        // four keys an event, the three index rows with no value.
        for (n, (c, t)) in [
            (None, None),
            (Some(contract), None),
            (None, Some(topic)),
            (Some(contract), Some(topic)),
        ]
        .into_iter()
        .enumerate()
        {
            key.clear();
            push_prefix(&mut key, c, t);
            key.extend_from_slice(&version.to_be_bytes());
            key.extend_from_slice(&index.to_be_bytes());
            bytes += key.len();
            let row_value = match n {
                0 => Arc::from(&value[..]),
                _ => Arc::clone(&empty),
            };
            batch.push((Table::Events, Arc::from(&key[..]), Some(row_value)));
        }
        bytes += value.len();
    }
    bytes
}

/// The events `filter` matches in `snap`, in version order (receipt order within a
/// version), at most `filter.limit` of them. Reads only the rows of matching events
/// from `filter.from_version` on, plus, outside the family of all events, one point
/// read per event for its data. The filter must have passed [`EventFilter::check`].
///
/// # Errors
/// When storage fails or an index row does not decode.
pub(crate) fn list(
    snap: &dyn Snapshot,
    filter: &EventFilter,
) -> Result<Vec<EventRecord>, StorageError> {
    let mut out = Vec::new();
    if filter.limit == 0 {
        return Ok(out);
    }
    let (contract, topic) = (filter.contract.as_deref(), filter.topic.as_deref());
    let (lo, hi) = scan_range(contract, topic, filter.from_version);
    let holds_data = contract.is_none() && topic.is_none();
    let mut found: Vec<(u64, u32)> = Vec::new();
    let mut bad = None;
    snap.range(
        Table::Events,
        Bound::Included(&lo),
        Bound::Included(&hi),
        false,
        &mut |k, v| {
            let step = suffix(k).and_then(|(version, index)| {
                if holds_data {
                    out.push(decode_all_value(version, index, v)?);
                } else {
                    found.push((version, index));
                }
                Ok(())
            });
            if let Err(e) = step {
                bad = Some(e);
                return false;
            }
            out.len() + found.len() < filter.limit
        },
    )?;
    if let Some(e) = bad {
        return Err(e);
    }
    for (version, index) in found {
        let value = snap
            .get(Table::Events, &all_key(version, index))?
            .ok_or_else(|| {
                StorageError::Corrupt(format!(
                    "event {index} of version {version} is indexed without its data"
                ))
            })?;
        out.push(decode_all_value(version, index, &value)?);
    }
    Ok(out)
}

/// The version an index key ends with (0 when it is too short), for naming where two
/// indexes differ (`verify`).
pub(crate) fn version_of_key(key: &[u8]) -> u64 {
    suffix(key).map_or(0, |(version, _)| version)
}

/// Versions [`catch_up`] indexes in one batch at most.
const CATCH_UP_VERSIONS: u64 = 1024;
/// Bytes of index rows [`catch_up`] puts in one batch before it commits it.
const CATCH_UP_BYTES: usize = 8 << 20;

/// Brings the index up to `head`: adds the rows of every version after the `Meta` key
/// `events_indexed` (absent: 0, a store made before the index) from the receipts, in
/// batches that each require the head's version (so a second writer is detected) and
/// move the key on. Rows are final values, so an interrupted catch-up that runs again
/// writes the same bytes. Returns the versions indexed.
///
/// # Errors
/// When storage fails, or the history or a receipt is missing or does not decode.
pub(crate) fn catch_up(backend: &dyn Backend, head: &Head) -> Result<u64, StorageError> {
    let snap = backend.snapshot()?;
    let indexed = match snap.get(Table::Meta, META_EVENTS_INDEXED)? {
        Some(bytes) => decode_u64(&bytes)?,
        None => 0,
    };
    if indexed >= head.version {
        return Ok(0);
    }
    let mut batch = WriteBatch::new();
    let (mut versions, mut bytes) = (0u64, 0usize);
    for version in indexed + 1..=head.version {
        let entry = snap
            .get(Table::History, &history_key(version))?
            .ok_or_else(|| {
                StorageError::Corrupt(format!("version {version} is missing from the history"))
            })?;
        let id = entry
            .get(..16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Uuid::from_bytes)
            .ok_or_else(|| StorageError::Corrupt(format!("history entry {version} is short")))?;
        let record = snap.get(Table::Txs, id.as_bytes())?.ok_or_else(|| {
            StorageError::Corrupt(format!("history entry {version} has no receipt"))
        })?;
        let record = TxRecord::decode(&record)?;
        if record.version != version || record.receipt.version != version {
            return Err(StorageError::Corrupt(format!(
                "the receipt of {id} does not hold version {version}"
            )));
        }
        // Stored names past their limits would not fit their length prefixes.
        if let Some(e) = record.receipt.events.iter().find(|e| {
            e.contract.len() > CONTRACT_NAME_BYTES_MAX || e.topic.len() > EVENT_TOPIC_BYTES_MAX
        }) {
            return Err(StorageError::Corrupt(format!(
                "an event of version {version} has a contract name or topic past its limit \
                 ({} and {} bytes)",
                e.contract.len(),
                e.topic.len()
            )));
        }
        bytes += add_rows(&record.receipt, &mut batch);
        versions += 1;
        if versions.is_multiple_of(CATCH_UP_VERSIONS)
            || bytes >= CATCH_UP_BYTES
            || version == head.version
        {
            batch.put(Table::Meta, META_EVENTS_INDEXED, &version.to_le_bytes()[..]);
            batch.require(head.precondition());
            backend.commit(&std::mem::take(&mut batch))?;
            bytes = 0;
        }
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::storage::MemoryBackend;
    use crate::types::StateRoot;

    fn receipt(version: u64, status: Status, events: &[(&str, &str, &[u8])]) -> Receipt {
        Receipt {
            tx_id: Uuid::from_u128(u128::from(version)),
            status,
            error: None,
            version,
            results: Vec::new(),
            events: events
                .iter()
                .map(|(c, t, d)| Event {
                    contract: (*c).to_owned(),
                    topic: (*t).to_owned(),
                    data: d.to_vec(),
                })
                .collect(),
            gas_used: 0,
            state_root: StateRoot([0; 32]),
            duplicate: false,
        }
    }

    /// A snapshot that counts the rows its reads visit.
    struct Counting {
        inner: Arc<dyn Snapshot>,
        visited: AtomicUsize,
        gets: AtomicUsize,
    }

    impl Snapshot for Counting {
        fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.inner.get(table, key)
        }
        fn range(
            &self,
            table: Table,
            lo: Bound<&[u8]>,
            hi: Bound<&[u8]>,
            reverse: bool,
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), StorageError> {
            self.inner.range(table, lo, hi, reverse, &mut |k, v| {
                self.visited.fetch_add(1, Ordering::Relaxed);
                visit(k, v)
            })
        }
    }

    fn filter(contract: Option<&str>, topic: Option<&str>, from: u64, limit: usize) -> EventFilter {
        EventFilter {
            contract: contract.map(str::to_owned),
            topic: topic.map(str::to_owned),
            from_version: from,
            limit,
        }
    }

    #[test]
    fn length_prefixes_keep_every_contract_and_topic_apart() {
        // Without them, ("a", "bc") and ("ab", "c") would share a prefix.
        let (lo, hi) = scan_range(Some("a"), Some("bc"), 0);
        for (c, t) in [("ab", "c"), ("a", "b"), ("a", "bcd"), ("", "abc")] {
            for version in [0, 1, u64::MAX] {
                let key = with_suffix(prefix(Some(c), Some(t)), version, 0);
                assert!(key < lo || key > hi, "{c}/{t} falls in a/bc's range");
            }
        }
        let inside = with_suffix(prefix(Some("a"), Some("bc")), 7, 3);
        assert!(lo <= inside && inside <= hi);
        // A contract's range holds none of a longer name's keys, nor another family's.
        let (lo, hi) = scan_range(Some("tok"), None, 0);
        let longer = with_suffix(prefix(Some("token"), None), 1, 0);
        assert!(longer < lo || longer > hi);
        for other in [
            all_key(5, 0),
            with_suffix(prefix(None, Some("tok")), 5, 0),
            with_suffix(prefix(Some("tok"), Some("x")), 5, 0),
        ] {
            assert!(other < lo || other > hi);
        }
        // from_version starts the range at that version's first event.
        let (lo, _) = scan_range(None, Some("t"), 9);
        assert!(with_suffix(prefix(None, Some("t")), 8, u32::MAX) < lo);
        assert_eq!(lo, with_suffix(prefix(None, Some("t")), 9, 0));
        // The longest topic fits its u16 length.
        let long = "x".repeat(EVENT_TOPIC_BYTES_MAX);
        assert_eq!(prefix(None, Some(&long))[1..3], [1, 0]);
    }

    /// Many events that do not match, a few that do: a listing visits only the latter.
    #[test]
    fn a_listing_reads_only_the_rows_of_matching_events() {
        let backend = MemoryBackend::new();
        let mut batch = WriteBatch::new();
        for version in 1..=500u64 {
            let events: &[(&str, &str, &[u8])] = match version {
                100 | 300 | 400 => &[("token", "transfer", b"x"), ("noise", "transfer", b"n")],
                200 => &[("token", "approval", b"y")],
                _ => &[("noise", "tick", b"n"), ("other", "transfer", b"o")],
            };
            add_rows(&receipt(version, Status::Committed, events), &mut batch);
        }
        // A reverted receipt's events (there are none in practice) are not indexed.
        add_rows(
            &receipt(501, Status::Reverted, &[("token", "transfer", b"r")]),
            &mut batch,
        );
        backend.commit(&batch).unwrap();
        let snap = Counting {
            inner: backend.snapshot().unwrap(),
            visited: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
        };
        let run = |f: EventFilter| {
            snap.visited.store(0, Ordering::Relaxed);
            snap.gets.store(0, Ordering::Relaxed);
            let out = list(&snap, &f).unwrap();
            let reads = (
                snap.visited.load(Ordering::Relaxed),
                snap.gets.load(Ordering::Relaxed),
            );
            (out, reads)
        };
        let versions = |out: &[EventRecord]| out.iter().map(|e| e.version).collect::<Vec<_>>();

        let (out, reads) = run(filter(Some("token"), Some("transfer"), 0, 100));
        assert_eq!(versions(&out), [100, 300, 400]);
        assert!(out.iter().all(|e| e.data == b"x" && e.index == 0));
        assert_eq!(out[0].tx_id, Uuid::from_u128(100));
        assert_eq!(reads, (3, 3), "three index rows and three data rows");

        let (out, reads) = run(filter(Some("token"), None, 150, 100));
        assert_eq!(versions(&out), [200, 300, 400]);
        assert_eq!(out[0].topic, "approval");
        assert_eq!(reads, (3, 3));

        let (out, reads) = run(filter(None, Some("approval"), 0, 100));
        assert_eq!(versions(&out), [200]);
        assert_eq!(reads, (1, 1));

        // The limit stops the walk.
        let (out, reads) = run(filter(None, Some("transfer"), 0, 5));
        assert_eq!(out.len(), 5);
        assert_eq!(reads, (5, 5));

        // No filter: the rows of all events hold the data, so no point reads.
        let (out, reads) = run(filter(None, None, 499, 100));
        assert_eq!(versions(&out), [499, 499, 500, 500]);
        assert_eq!((out[1].index, out[1].contract.as_str()), (1, "other"));
        assert_eq!(reads, (4, 0));

        let (out, reads) = run(filter(Some("token"), Some("transfer"), 401, 100));
        assert!(out.is_empty());
        assert_eq!(reads, (0, 0));
        let (out, reads) = run(filter(None, None, 0, 0));
        assert!(out.is_empty());
        assert_eq!(reads, (0, 0));
    }

    /// Fails every commit after the first `ok` ones.
    struct Failing {
        inner: MemoryBackend,
        ok: AtomicUsize,
        commits: AtomicUsize,
    }

    impl Backend for Failing {
        fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
            self.inner.snapshot()
        }
        fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
            if self.commits.fetch_add(1, Ordering::Relaxed) >= self.ok.load(Ordering::Relaxed) {
                return Err(StorageError::Io("the disk is full".into()));
            }
            self.inner.commit(batch)
        }
    }

    /// A store of `versions` recorded transactions as a binary before the index left
    /// it: history, receipts (every third reverted, events and all) and the head's
    /// version, no index rows and no mark.
    fn old_store(versions: u64, ok: usize) -> Failing {
        let inner = MemoryBackend::new();
        let mut batch = WriteBatch::new();
        for version in 1..=versions {
            let status = match version % 3 {
                0 => Status::Reverted,
                _ => Status::Committed,
            };
            let r = receipt(version, status, &[("c", "t", b"d"), ("c", "u", b"")]);
            let record = TxRecord {
                version,
                content_hash: [0; 32],
                receipt: r,
            };
            let id = Uuid::from_u128(u128::from(version));
            batch.put(Table::Txs, &id.as_bytes()[..], record.encode());
            let entry = crate::ledger::records::encode_history_entry(&id, b"content");
            batch.put(Table::History, &history_key(version)[..], entry);
        }
        let version = versions.to_le_bytes();
        batch.put(
            Table::Meta,
            crate::ledger::records::META_VERSION,
            &version[..],
        );
        inner.commit(&batch).unwrap();
        Failing {
            inner,
            ok: AtomicUsize::new(ok),
            commits: AtomicUsize::new(0),
        }
    }

    fn rows(backend: &dyn Backend) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let snap = backend.snapshot().unwrap();
        snap.range(
            Table::Events,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                true
            },
        )
        .unwrap();
        out
    }

    fn mark(backend: &dyn Backend) -> Option<u64> {
        let snap = backend.snapshot().unwrap();
        let bytes = snap.get(Table::Meta, META_EVENTS_INDEXED).unwrap()?;
        Some(decode_u64(&bytes).unwrap())
    }

    #[test]
    fn catching_up_goes_in_batches_and_resumes_where_it_stopped() {
        let head = Head {
            version: 2500,
            ..Head::default()
        };
        let whole = old_store(2500, usize::MAX);
        assert_eq!(catch_up(&whole, &head).unwrap(), 2500);
        assert_eq!(
            whole.commits.load(Ordering::Relaxed),
            3,
            "1,024 versions a batch"
        );
        assert_eq!(mark(&whole), Some(2500));
        let want = rows(&whole);
        // Two rows of four for each committed version; none for the reverted ones.
        assert_eq!(want.len(), 8 * (2500 - 2500 / 3));
        let f = list(
            &*whole.snapshot().unwrap(),
            &filter(None, Some("u"), 2998, 10),
        )
        .unwrap();
        assert!(f.is_empty());
        let f = list(
            &*whole.snapshot().unwrap(),
            &filter(Some("c"), Some("u"), 2497, 10),
        )
        .unwrap();
        assert_eq!(
            f.iter().map(|e| (e.version, e.index)).collect::<Vec<_>>(),
            [(2497, 1), (2498, 1), (2500, 1)]
        );
        // Indexed already: nothing to do.
        assert_eq!(catch_up(&whole, &head).unwrap(), 0);
        assert_eq!(whole.commits.load(Ordering::Relaxed), 3);

        // A disk that fails the second batch: the first stands, and the next open
        // goes on from its mark to the same rows.
        let broken = old_store(2500, 1);
        assert!(catch_up(&broken, &head).is_err());
        assert_eq!(mark(&broken), Some(1024));
        broken.ok.store(usize::MAX, Ordering::Relaxed);
        assert_eq!(catch_up(&broken, &head).unwrap(), 2500 - 1024);
        assert_eq!(rows(&broken), want);

        // Another writer moved the head on: the catch-up conflicts, writing nothing.
        let moved = old_store(2500, usize::MAX);
        let stale = Head {
            version: 2499,
            ..Head::default()
        };
        assert!(matches!(
            catch_up(&moved, &stale),
            Err(StorageError::Conflict(_))
        ));
        assert!(rows(&moved).is_empty());
    }

    #[test]
    fn a_filter_is_checked() {
        assert!(EventFilter::default().check().is_ok());
        assert_eq!(EventFilter::default().limit, EVENTS_LIST_DEFAULT);
        let f = filter(None, None, 0, EVENTS_LIST_MAX + 1);
        assert!(matches!(f.check(), Err(InputError::EventsLimit { .. })));
        assert!(filter(None, None, 0, EVENTS_LIST_MAX).check().is_ok());
        let long = "t".repeat(EVENT_TOPIC_BYTES_MAX + 1);
        let f = filter(None, Some(&long), 0, 1);
        assert!(matches!(
            f.check(),
            Err(InputError::EventTopicTooLong { .. })
        ));
        let f = filter(Some("not a name"), None, 0, 1);
        assert!(matches!(f.check(), Err(InputError::BadContractName { .. })));
    }
}
