//! The seams the next capabilities build on, held at the public interface: a commit's
//! precondition detects a second writer on one store (each backend refuses, applies
//! nothing, and the host recovers), and reads of the latest version do not wait for the
//! writer lock.

use std::sync::Arc;
use std::time::Duration;

use semel::storage::{
    Backend, MemoryBackend, Precondition, RedbBackend, Snapshot, Table, WalBackend, WriteBatch,
};
use semel::{Durability, Host, HostError, HostOptions, StorageError, SubmitError, Transaction};

use crate::util::{count, deploy, wat};

/// One store shared by several hosts, as several hosts share one database.
struct Shared(Arc<dyn Backend>);

impl Backend for Shared {
    fn snapshot(&self) -> Result<Arc<dyn Snapshot>, StorageError> {
        self.0.snapshot()
    }
    fn commit(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.0.commit(batch)
    }
}

fn host_on(store: &Arc<dyn Backend>) -> Host {
    Host::with_backend(
        Box::new(Shared(Arc::clone(store))),
        None,
        HostOptions::default(),
    )
    .unwrap()
}

fn is_conflict(r: &Result<semel::Receipt, SubmitError>) -> bool {
    matches!(
        r,
        Err(SubmitError::Host(HostError::Storage(
            StorageError::Conflict(_)
        )))
    )
}

#[test]
fn a_second_host_on_one_store_is_detected_and_recovers_without_losing_anything() {
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let a = host_on(&store);
    deploy(&a, "counter", "counter");
    let b = host_on(&store);
    assert_eq!(b.latest_version(), 1);
    let inc = || Transaction::call("counter", "inc", Vec::new());
    assert_eq!(a.submit(&inc()).unwrap().version, 2);
    // B builds on version 1, which the store no longer holds as its head.
    let late = inc();
    let refused = b.submit(&late);
    assert!(is_conflict(&refused), "{refused:?}");
    let msg = refused.unwrap_err().to_string();
    assert!(
        msg.contains("version") && msg.contains("commit conflict"),
        "{msg}"
    );
    // Nothing of B's batch was applied, and its id stays unused.
    assert_eq!(a.receipt(&late.id).unwrap(), None);
    assert_eq!(count(&a, None), "1");
    // B reloads the head from the store and runs the same transaction once, on top.
    let r = b.submit(&late).unwrap();
    assert_eq!((r.version, r.duplicate), (3, false));
    assert_eq!(count(&b, None), "2");
    assert!(b.submit(&late).unwrap().duplicate);
    // A, now behind, is refused in turn, then catches up.
    assert!(is_conflict(&a.submit(&inc())));
    assert_eq!(a.submit(&inc()).unwrap().version, 4);
    assert_eq!(a.verify().unwrap().transactions, 4);
}

/// Each backend checks a batch's precondition inside its commit: a batch whose
/// precondition fails applies nothing; one whose precondition holds applies whole.
fn preconditions_hold_or_nothing_applies(backend: &dyn Backend) {
    let require = |value: Option<&[u8]>| Precondition {
        table: Table::Meta,
        key: b"head".as_slice().into(),
        value: value.map(Into::into),
    };
    let batch = |head: &[u8], key: &[u8], pre: Precondition| {
        let mut b = WriteBatch::new();
        b.put(Table::Meta, b"head".as_slice(), head);
        b.put(Table::State, key, b"v".as_slice());
        b.require(pre);
        b
    };
    backend.commit(&batch(b"1", b"a", require(None))).unwrap();
    for (pre, key) in [(require(None), b"b"), (require(Some(b"0")), b"c")] {
        let refused = backend.commit(&batch(b"2", key, pre));
        assert!(
            matches!(refused, Err(StorageError::Conflict(_))),
            "{refused:?}"
        );
        let snap = backend.snapshot().unwrap();
        assert_eq!(
            snap.get(Table::State, key).unwrap(),
            None,
            "half a refused batch"
        );
        assert_eq!(snap.get(Table::Meta, b"head").unwrap(), Some(b"1".to_vec()));
    }
    backend
        .commit(&batch(b"2", b"d", require(Some(b"1"))))
        .unwrap();
    let snap = backend.snapshot().unwrap();
    assert_eq!(snap.get(Table::State, b"d").unwrap(), Some(b"v".to_vec()));
    assert_eq!(snap.get(Table::Meta, b"head").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn every_backend_checks_preconditions_inside_the_commit() {
    preconditions_hold_or_nothing_applies(&MemoryBackend::new());
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbBackend::open(&dir.path().join("plain.redb"), Durability::Immediate).unwrap();
    preconditions_hold_or_nothing_applies(&redb);
    let wal = WalBackend::open(
        &dir.path().join("w.redb"),
        &dir.path().join("w.wal"),
        Durability::Immediate,
    )
    .unwrap();
    preconditions_hold_or_nothing_applies(&wal);
    drop(wal);
    // The refused batches were never logged: a reopen replays only what committed.
    let wal = WalBackend::open(
        &dir.path().join("w.redb"),
        &dir.path().join("w.wal"),
        Durability::Immediate,
    )
    .unwrap();
    let snap = wal.snapshot().unwrap();
    assert_eq!(snap.get(Table::State, b"c").unwrap(), None);
    assert_eq!(snap.get(Table::Meta, b"head").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn reads_of_the_latest_version_do_not_wait_for_the_writer() {
    let host = Arc::new(Host::in_memory().unwrap());
    deploy(&host, "counter", "counter");
    let spin = r#"(module (memory (export "memory") 1) (func (export "spin") (loop (br 0))))"#;
    host.submit(&Transaction::deploy(
        "spinner",
        semel::abi::wasm_bytes(spin.as_bytes()).unwrap(),
        Vec::new(),
    ))
    .unwrap();
    let root = host.state_root().unwrap();
    // Holds the writer lock until its gas runs out (seconds, not milliseconds).
    let writer = {
        let host = Arc::clone(&host);
        std::thread::spawn(move || {
            host.submit(
                &Transaction::call("spinner", "spin", Vec::new()).with_gas_limit(2_000_000_000),
            )
            .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!writer.is_finished(), "the spinner should still be running");
    assert_eq!(host.latest_version(), 2);
    assert_eq!(host.horizon(), 0);
    assert_eq!(host.state_root().unwrap(), root);
    assert_eq!(count(&host, None), "0");
    let state = host.state("counter", None, b"").unwrap();
    assert_eq!(state, [(b"count".to_vec(), 0u64.to_le_bytes().to_vec())]);
    assert_eq!(host.contracts().unwrap().len(), 2);
    assert_eq!(host.history(1, 10).unwrap().len(), 2);
    assert!(
        !writer.is_finished(),
        "the reads above finished only once the writer released its lock"
    );
    let spun = writer.join().unwrap();
    assert!(spun.error.unwrap().contains("out of gas"));
    assert_eq!(host.latest_version(), 3);
}

#[test]
fn every_latency_switch_off_gives_the_same_receipts_and_root() {
    let run_on = |host: Host| {
        let mut receipts = vec![
            host.submit(
                &Transaction::deploy("counter", wat("counter"), Vec::new())
                    .with_id(semel::Uuid::from_u128(1)),
            )
            .unwrap(),
        ];
        for i in 2..40 {
            receipts.push(
                host.submit(
                    &Transaction::call("counter", "inc", Vec::new())
                        .with_id(semel::Uuid::from_u128(i)),
                )
                .unwrap(),
            );
        }
        let batch: Vec<_> = (40..60)
            .map(|i| {
                Transaction::call("counter", "inc", Vec::new()).with_id(semel::Uuid::from_u128(i))
            })
            .collect();
        receipts.extend(host.submit_all(&batch).into_iter().map(Result::unwrap));
        receipts.push(
            host.submit(
                &Transaction::call("counter", "inc", Vec::new()).with_id(semel::Uuid::from_u128(5)),
            )
            .unwrap(),
        );
        (receipts, host.state_root().unwrap())
    };
    let run = |options: HostOptions| {
        run_on(Host::with_backend(Box::new(MemoryBackend::new()), None, options).unwrap())
    };
    // Lazy staging matters only where commits are grouped: on a durable store.
    let durable = |lazy_staging: bool| {
        let dir = tempfile::tempdir().unwrap();
        let options = HostOptions {
            lazy_staging,
            ..HostOptions::default()
        };
        run_on(Host::open(dir.path(), options).unwrap())
    };
    let plain = run(HostOptions::default().plain());
    assert_eq!(plain, durable(true));
    assert_eq!(plain, durable(false));
    assert_eq!(plain, run(HostOptions::default()));
    assert_eq!(
        plain,
        run(HostOptions {
            prewarm: semel::Prewarm::Always,
            ..HostOptions::default()
        })
    );
    // The state root's AVX-512 switch is the process's (other tests meanwhile only run
    // slower): a parallel batch's roots, and every expansion, from the crates' code.
    semel::use_avx512(false);
    let crates_code = run(HostOptions::default());
    semel::use_avx512(true);
    assert_eq!(plain, crates_code);
    // So are the helper threads: a batch's workers on threads started for it.
    semel::use_helpers(false);
    let started_threads = run(HostOptions::default());
    semel::use_helpers(true);
    assert_eq!(plain, started_threads);
    assert!(plain.0.last().unwrap().duplicate);
}
