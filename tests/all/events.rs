//! The events index behind `Host::events` (interface §6): filters by contract, topic,
//! both or neither, from a version, up to a limit, always equal to filtering every
//! receipt's events; nothing from reverted transactions; a nested call's events under
//! its own contract; the same index from every executor; a store without the index (as
//! made before it) caught up when it is opened; `verify` holding the index to
//! re-execution.

use std::ops::Bound;
use std::sync::Arc;

use semel::limits::{EVENT_TOPIC_BYTES_MAX, EVENTS_LIST_MAX};
use semel::storage::{Backend, MemoryBackend, Snapshot, Table, WriteBatch};
use semel::{
    AccessSet, Concurrency, ContractAccess, EventFilter, EventRecord, Host, HostOptions,
    InputError, KeySpec, QueryError, Status, StorageError, Transaction, Uuid, VerifyError,
};
use serde_json::{Value, json};

use crate::contracts::wasm;
use crate::util::{calls, forward, repo, wat};

/// One store shared by several hosts in turn, so a test can reach under them.
struct Shared(Arc<MemoryBackend>);

impl Backend for Shared {
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        self.0.snapshot()
    }
    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.0.commit(batch)
    }
}

fn options(concurrency: Concurrency, workers: usize) -> HostOptions {
    HostOptions {
        concurrency,
        workers,
        ..HostOptions::default()
    }
}

fn host_on(store: &Arc<MemoryBackend>) -> Host {
    Host::with_backend(
        Box::new(Shared(Arc::clone(store))),
        None,
        HostOptions::default(),
    )
    .unwrap()
}

fn filter(contract: Option<&str>, topic: Option<&str>, from: u64, limit: usize) -> EventFilter {
    EventFilter {
        contract: contract.map(str::to_owned),
        topic: topic.map(str::to_owned),
        from_version: from,
        limit,
    }
}

/// Every event, as many as a listing may hold.
fn all_events(host: &Host) -> Vec<EventRecord> {
    host.events(&filter(None, None, 0, EVENTS_LIST_MAX))
        .unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0xe7e7_0000_0000_0000_0000_0000_0000_0000 + n)
}

fn token_deploy(name: &str, supply: u64, sender: &str, n: u128) -> Transaction {
    let args = json!({ "supply": supply }).to_string().into_bytes();
    Transaction::deploy(name, wasm("token"), args)
        .with_sender(sender)
        .with_id(id(n))
}

/// `from` moves `amount` of `token` to `to`.
fn pay(token: &str, from: &str, to: &str, amount: u64, n: u128) -> Transaction {
    let args = json!({"to": to, "amount": amount}).to_string().into_bytes();
    Transaction::call(token, "transfer", args)
        .with_sender(from)
        .with_id(id(n))
}

/// Records the fixture history, one transaction at a time, and returns the versions of
/// the reverted one and of the nested call.
///
/// v1 deploy gold (mints: an event), v2 deploy silver (an event), v3 deploy counter,
/// v4 deploy proxy, v5 a gold transfer, v6 counter.inc, v7 three calls with an event
/// each, v8 reverted (an overdraft after a transfer), v9 a gold approval, v10 proxy
/// forwarding counter.inc (the event is counter's).
fn record(host: &Host) -> (u64, u64) {
    let ok = |tx: &Transaction| {
        let r = host.submit(tx).unwrap();
        assert_eq!(r.status, Status::Committed, "{:?}", r.error);
        r.version
    };
    ok(&token_deploy("gold", 1000, "alice", 1));
    ok(&token_deploy("silver", 50, "bob", 2));
    ok(&Transaction::deploy("counter", wat("counter"), Vec::new()).with_id(id(3)));
    ok(&Transaction::deploy("proxy", wat("proxy"), Vec::new()).with_id(id(4)));
    ok(&pay("gold", "alice", "carol", 5, 5));
    ok(&Transaction::call("counter", "inc", Vec::new()).with_id(id(6)));
    let to_bob = json!({"to": "bob", "amount": 1}).to_string().into_bytes();
    let three = calls(&[
        ("gold", "transfer", &to_bob),
        ("counter", "inc", b""),
        ("gold", "transfer", &to_bob),
    ])
    .with_sender("alice")
    .with_id(id(7));
    assert_eq!(ok(&three), 7);
    let overdraft = json!({"to": "dave", "amount": 1_000_000})
        .to_string()
        .into_bytes();
    let reverted = calls(&[
        ("gold", "transfer", &to_bob),
        ("gold", "transfer", &overdraft),
    ])
    .with_sender("alice")
    .with_id(id(8));
    let r = host.submit(&reverted).unwrap();
    assert_eq!((r.status, r.version), (Status::Reverted, 8));
    let approve = json!({"spender": "bob", "amount": 10})
        .to_string()
        .into_bytes();
    ok(&Transaction::call("gold", "approve", approve)
        .with_sender("alice")
        .with_id(id(9)));
    let nested =
        Transaction::call("proxy", "forward", forward("counter", "inc", b"")).with_id(id(10));
    assert_eq!(ok(&nested), 10);
    (8, 10)
}

/// Every event of every recorded receipt, in version and receipt order: what the index
/// must answer, filtered.
fn from_receipts(host: &Host) -> Vec<EventRecord> {
    let mut out = Vec::new();
    for entry in host.history(1, 1000).unwrap() {
        let receipt = host.receipt(&entry.tx_id).unwrap().unwrap();
        for (i, e) in receipt.events.iter().enumerate() {
            out.push(EventRecord {
                version: receipt.version,
                index: u32::try_from(i).unwrap(),
                tx_id: receipt.tx_id,
                contract: e.contract.clone(),
                topic: e.topic.clone(),
                data: e.data.clone(),
            });
        }
    }
    out
}

fn shape(events: &[EventRecord]) -> Vec<(u64, &str, &str)> {
    events
        .iter()
        .map(|e| (e.version, e.contract.as_str(), e.topic.as_str()))
        .collect()
}

#[test]
fn filters_by_contract_topic_both_or_neither_match_the_receipts() {
    let host = Host::in_memory().unwrap();
    record(&host);
    let truth = from_receipts(&host);
    assert_eq!(truth.len(), 9, "{:?}", shape(&truth));
    assert_eq!(all_events(&host), truth);
    for contract in [
        None,
        Some("gold"),
        Some("silver"),
        Some("counter"),
        Some("proxy"),
        Some("nobody"),
    ] {
        for topic in [
            None,
            Some("transfer"),
            Some("approval"),
            Some("inc"),
            Some(""),
        ] {
            let want: Vec<_> = truth
                .iter()
                .filter(|e| contract.is_none_or(|c| e.contract == c))
                .filter(|e| topic.is_none_or(|t| e.topic == t))
                .cloned()
                .collect();
            let got = host.events(&filter(contract, topic, 0, 100)).unwrap();
            assert_eq!(got, want, "contract {contract:?}, topic {topic:?}");
        }
    }
    assert_eq!(
        shape(&host.events(&filter(Some("gold"), None, 0, 100)).unwrap()),
        [
            (1, "gold", "transfer"),
            (5, "gold", "transfer"),
            (7, "gold", "transfer"),
            (7, "gold", "transfer"),
            (9, "gold", "approval"),
        ]
    );
    assert_eq!(
        shape(
            &host
                .events(&filter(None, Some("transfer"), 0, 100))
                .unwrap()
        ),
        [
            (1, "gold", "transfer"),
            (2, "silver", "transfer"),
            (5, "gold", "transfer"),
            (7, "gold", "transfer"),
            (7, "gold", "transfer"),
        ]
    );
    let both = host
        .events(&filter(Some("gold"), Some("approval"), 0, 100))
        .unwrap();
    assert_eq!(shape(&both), [(9, "gold", "approval")]);
    let data: Value = serde_json::from_slice(&both[0].data).unwrap();
    assert_eq!(
        data,
        json!({"owner": "alice", "spender": "bob", "amount": 10})
    );
    assert_eq!(both[0].tx_id, id(9));
}

#[test]
fn within_a_transaction_events_keep_their_receipt_order() {
    let host = Host::in_memory().unwrap();
    record(&host);
    let at_7 = host.events(&filter(None, None, 7, 3)).unwrap();
    assert_eq!(
        shape(&at_7),
        [
            (7, "gold", "transfer"),
            (7, "counter", "inc"),
            (7, "gold", "transfer")
        ]
    );
    assert_eq!(at_7.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(at_7.iter().all(|e| e.tx_id == id(7)));
    // The counter's data is its new count, 2, as 8 bytes little-endian.
    assert_eq!(at_7[1].data, 2u64.to_le_bytes());
}

#[test]
fn from_version_and_limit() {
    let host = Host::in_memory().unwrap();
    record(&host);
    let truth = from_receipts(&host);
    for from in 0..=11 {
        for limit in [0, 1, 2, 3, 100] {
            let want: Vec<_> = truth
                .iter()
                .filter(|e| e.version >= from)
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(host.events(&filter(None, None, from, limit)).unwrap(), want);
            let want: Vec<_> = truth
                .iter()
                .filter(|e| e.version >= from && e.contract == "gold")
                .take(limit)
                .cloned()
                .collect();
            let got = host
                .events(&filter(Some("gold"), None, from, limit))
                .unwrap();
            assert_eq!(got, want, "gold from {from}, limit {limit}");
        }
    }
    // The limit stops inside a transaction: the first two of version 7's three.
    assert_eq!(
        shape(&host.events(&filter(None, None, 6, 3)).unwrap()),
        [
            (6, "counter", "inc"),
            (7, "gold", "transfer"),
            (7, "counter", "inc")
        ]
    );
    assert_eq!(
        EventFilter::default().limit,
        semel::limits::EVENTS_LIST_DEFAULT
    );
    assert_eq!(host.events(&EventFilter::default()).unwrap(), truth);
}

#[test]
fn bad_filters_are_refused_naming_the_limit() {
    let host = Host::in_memory().unwrap();
    record(&host);
    assert!(host.events(&filter(None, None, 0, EVENTS_LIST_MAX)).is_ok());
    match host.events(&filter(None, None, 0, EVENTS_LIST_MAX + 1)) {
        Err(QueryError::Rejected(e @ InputError::EventsLimit { .. })) => {
            assert!(e.to_string().contains("EVENTS_LIST_MAX"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let long = "t".repeat(EVENT_TOPIC_BYTES_MAX + 1);
    assert!(matches!(
        host.events(&filter(None, Some(&long), 0, 1)),
        Err(QueryError::Rejected(InputError::EventTopicTooLong { .. }))
    ));
    let longest = "t".repeat(EVENT_TOPIC_BYTES_MAX);
    assert!(
        host.events(&filter(None, Some(&longest), 0, 1))
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        host.events(&filter(Some("no spaces"), None, 0, 1)),
        Err(QueryError::Rejected(InputError::BadContractName { .. }))
    ));
}

#[test]
fn reverted_transactions_add_nothing_and_nested_calls_are_their_contracts() {
    let host = Host::in_memory().unwrap();
    let (reverted, nested) = record(&host);
    let all = all_events(&host);
    assert!(all.iter().all(|e| e.version != reverted));
    // The reverted transaction's first call moved gold and emitted before the second
    // failed: its event went with the rest of it.
    assert!(host.receipt(&id(8)).unwrap().unwrap().events.is_empty());
    let at = host.events(&filter(None, None, nested, 100)).unwrap();
    assert_eq!(shape(&at), [(nested, "counter", "inc")]);
    assert_eq!(at[0].tx_id, id(10));
    assert!(
        host.events(&filter(Some("proxy"), None, 0, 100))
            .unwrap()
            .is_empty()
    );
    // Out of gas ends the transaction: its events too.
    let starved = Transaction::call("counter", "inc", Vec::new())
        .with_gas_limit(3_000)
        .with_id(id(11));
    let r = host.submit(&starved).unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(all_events(&host), all);
}

/// A batch with transfers between accounts in two tokens, counter increments, reverts
/// and calls through the proxy, each with a fixed id (so every host records the same).
fn batch() -> Vec<Transaction> {
    let mut txs = Vec::new();
    let people = ["alice", "bob", "carol", "dave"];
    for n in 0..24u128 {
        let i = usize::try_from(n).unwrap();
        let from = people[i % 4];
        let to = people[(i + 1) % 4];
        let tx = match n % 6 {
            0 | 1 => {
                let token = if n % 2 == 0 { "gold" } else { "silver" };
                pay(
                    token,
                    "alice",
                    to,
                    1 + u64::try_from(n % 3).unwrap(),
                    100 + n,
                )
            }
            2 => Transaction::call("counter", "inc", Vec::new()).with_id(id(100 + n)),
            // Most of these overdraw and revert.
            3 => pay("gold", from, to, 7, 100 + n),
            4 => Transaction::call("proxy", "forward", forward("counter", "inc", b""))
                .with_id(id(100 + n)),
            _ => {
                // Declares its keys, so the pessimistic executor may run it beside others.
                let access = AccessSet {
                    contracts: vec![ContractAccess {
                        contract: "counter".into(),
                        read: Vec::new(),
                        write: vec![KeySpec::Key(b"count".to_vec())],
                    }],
                };
                Transaction::call("counter", "inc", Vec::new())
                    .with_access(access)
                    .with_id(id(100 + n))
            }
        };
        txs.push(tx);
    }
    txs
}

fn fixture_host(o: HostOptions) -> Host {
    let host = Host::with_backend(Box::new(MemoryBackend::new()), None, o).unwrap();
    for tx in [
        token_deploy("gold", 1000, "alice", 1),
        token_deploy("silver", 1000, "alice", 2),
        Transaction::deploy("counter", wat("counter"), Vec::new()).with_id(id(3)),
        Transaction::deploy("proxy", wat("proxy"), Vec::new()).with_id(id(4)),
    ] {
        assert_eq!(host.submit(&tx).unwrap().status, Status::Committed);
    }
    host
}

#[test]
fn every_executor_writes_the_same_index() {
    let one_at_a_time = fixture_host(options(Concurrency::Sequential, 1));
    for tx in batch() {
        one_at_a_time.submit(&tx).unwrap();
    }
    let want = all_events(&one_at_a_time);
    assert_eq!(want, from_receipts(&one_at_a_time));
    assert!(want.len() > 20, "{}", want.len());
    let reverted = (5..=28)
        .filter(|&v| {
            let entry = &one_at_a_time.history(v, 1).unwrap()[0];
            entry.status == Status::Reverted
        })
        .count();
    assert!(reverted > 0, "the batch holds reverts");
    for (concurrency, workers) in [
        (Concurrency::Sequential, 1),
        (Concurrency::Optimistic, 1),
        (Concurrency::Optimistic, 4),
        (Concurrency::Pessimistic, 2),
        (Concurrency::Pessimistic, 4),
    ] {
        let host = fixture_host(options(concurrency, workers));
        for r in host.submit_all(&batch()) {
            r.unwrap();
        }
        let got = all_events(&host);
        assert_eq!(got, want, "{concurrency:?} with {workers} workers");
        for (c, t) in [
            (Some("counter"), None),
            (None, Some("transfer")),
            (Some("silver"), Some("transfer")),
        ] {
            assert_eq!(
                host.events(&filter(c, t, 10, 1000)).unwrap(),
                one_at_a_time.events(&filter(c, t, 10, 1000)).unwrap(),
                "{concurrency:?}, {c:?}/{t:?}"
            );
        }
        // verify re-executes on a scratch host with the same executor, and compares
        // the index it writes with this one.
        assert_eq!(host.verify().unwrap().transactions, 28);
    }
}

/// The rows of the events table, and the `Meta` mark of how far it is indexed.
fn index_rows(store: &MemoryBackend) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    store
        .snapshot()
        .unwrap()
        .range(
            Table::Events,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |k, v| {
                rows.push((k.to_vec(), v.to_vec()));
                true
            },
        )
        .unwrap();
    rows
}

const MARK: &[u8] = b"events_indexed";

fn mark(store: &MemoryBackend) -> Option<u64> {
    let bytes = store.snapshot().unwrap().get(Table::Meta, MARK).unwrap()?;
    Some(u64::from_le_bytes(bytes.try_into().unwrap()))
}

/// Deletes index rows `keep` rejects, and sets the mark to `to` (`None`: removes it).
fn strip(store: &MemoryBackend, keep: impl Fn(&[u8]) -> bool, to: Option<u64>) {
    let mut batch = WriteBatch::new();
    for (k, _) in index_rows(store) {
        if !keep(&k) {
            batch.delete(Table::Events, k);
        }
    }
    match to {
        Some(v) => batch.put(Table::Meta, MARK, &v.to_le_bytes()[..]),
        None => batch.delete(Table::Meta, MARK),
    }
    store.commit(&batch).unwrap();
}

/// The version an index key ends with (version u64 BE, then event index u32 BE).
fn version_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[key.len() - 12..key.len() - 4].try_into().unwrap())
}

/// A store as a binary from before the index leaves it — every record, no index rows and
/// no mark — gets its index on open, the same bytes execution writes.
#[test]
fn a_store_without_the_index_is_caught_up_on_open() {
    let store = Arc::new(MemoryBackend::new());
    let first = host_on(&store);
    record(&first);
    let want = all_events(&first);
    drop(first);
    let rows = index_rows(&store);
    assert_eq!(rows.len(), 4 * want.len(), "four families per event");
    assert_eq!(mark(&store), Some(10));

    strip(&store, |_| false, None);
    assert!(index_rows(&store).is_empty());
    let reopened = host_on(&store);
    assert_eq!(index_rows(&store), rows, "caught up to the same rows");
    assert_eq!(mark(&store), Some(10));
    assert_eq!(all_events(&reopened), want);
    assert_eq!(
        reopened
            .events(&filter(Some("gold"), Some("transfer"), 2, 100))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(reopened.verify().unwrap().transactions, 10);
    // It goes on recording with the index.
    reopened
        .submit(&pay("gold", "alice", "erin", 4, 20))
        .unwrap();
    assert_eq!(
        shape(&reopened.events(&filter(None, None, 11, 100)).unwrap()),
        [(11, "gold", "transfer")]
    );
    drop(reopened);
    assert_eq!(mark(&store), Some(11));

    // A store a binary without the index recorded into after version 6: the rows after
    // the mark are missing, and only they are added.
    strip(&store, |k| version_of(k) <= 6, Some(6));
    let again = host_on(&store);
    assert_eq!(all_events(&again).len(), want.len() + 1);
    assert_eq!(mark(&store), Some(11));
    assert_eq!(again.verify().unwrap().transactions, 11);
}

#[test]
fn verify_finds_an_index_that_differs_from_re_execution() {
    let store = Arc::new(MemoryBackend::new());
    let host = host_on(&store);
    record(&host);
    drop(host);
    // One row of version 7 lost, the mark left as it is: open does not notice it.
    let lost = index_rows(&store)
        .into_iter()
        .find(|(k, _)| version_of(k) == 7 && k[0] == 0x02)
        .unwrap()
        .0;
    strip(&store, |k| k != lost.as_slice(), Some(10));
    let host = host_on(&store);
    match host.verify() {
        Err(VerifyError::Mismatch { version, what }) => {
            assert_eq!(version, 7);
            assert!(what.contains("events index"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

/// The data dir of `tests/fixtures/datadir-v2` was made by a binary from before the
/// index (see `compat.rs`): opened, it lists its two token transfers.
#[test]
fn a_data_dir_made_before_the_index_lists_its_events() {
    let dir = tempfile::tempdir().unwrap();
    for file in [semel::DB_FILE, "semel.wal"] {
        std::fs::copy(
            repo().join("tests/fixtures/datadir-v2").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    let want = [
        (1, json!({"from": "", "to": "alice", "amount": 1000})),
        (2, json!({"from": "alice", "to": "bob", "amount": 5})),
    ];
    let check = |host: &Host| {
        let events = all_events(host);
        assert_eq!(events.len(), 2);
        for (e, (version, data)) in events.iter().zip(&want) {
            assert_eq!(
                (e.version, e.contract.as_str(), e.topic.as_str()),
                (*version, "token", "transfer")
            );
            assert_eq!(serde_json::from_slice::<Value>(&e.data).unwrap(), *data);
        }
        assert_eq!(events, from_receipts(host));
    };
    let host = Host::open(dir.path(), HostOptions::default()).unwrap();
    check(&host);
    assert_eq!(host.verify().unwrap().transactions, 2);
    drop(host);
    // Opened again: nothing added twice.
    let host = Host::open(dir.path(), HostOptions::default()).unwrap();
    check(&host);
    let more = Transaction::call(
        "token",
        "transfer",
        br#"{"to": "bob", "amount": 2}"#.to_vec(),
    )
    .with_sender("alice");
    assert_eq!(host.submit(&more).unwrap().version, 3);
    assert_eq!(
        shape(
            &host
                .events(&filter(Some("token"), Some("transfer"), 2, 10))
                .unwrap()
        ),
        [(2, "token", "transfer"), (3, "token", "transfer")]
    );
    assert_eq!(host.verify().unwrap().transactions, 3);
}
