//! The durable data dir: reopening shows the same state, receipts and root; `verify`
//! re-executes the log and catches tampering; one process holds a data dir at a time.

use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use semel::{Host, HostError, HostOptions, Status, Transaction, VerifyError};

use crate::util::{calls, forward, is_host_id_text, wat};

fn options() -> HostOptions {
    HostOptions {
        lock_wait: Duration::from_millis(50),
        ..HostOptions::default()
    }
}

/// A data dir with a few committed, reverted and nested transactions.
fn populated(dir: &std::path::Path) -> Vec<semel::Receipt> {
    let host = Host::open(dir, options()).unwrap();
    let mut receipts = vec![
        host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
            .unwrap(),
        host.submit(&Transaction::deploy("proxy", wat("proxy"), Vec::new()))
            .unwrap(),
    ];
    for tx in [
        Transaction::call("counter", "inc", Vec::new()),
        calls(&[("counter", "inc", b""), ("counter", "fail", b"")]),
        Transaction::call("proxy", "forward", forward("counter", "inc", b"")),
        Transaction::call("proxy", "forward", forward("counter", "inc_then_fail", b"")),
        Transaction::call("counter", "spin", Vec::new()).with_gas_limit(100_000),
    ] {
        receipts.push(host.submit(&tx).unwrap());
    }
    receipts
}

#[test]
fn reopening_shows_the_same_state_receipts_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = populated(dir.path());
    let (root, state) = {
        let host = Host::open(dir.path(), options()).unwrap();
        (
            host.state_root().unwrap(),
            host.state("counter", None, b"").unwrap(),
        )
    };
    let host = Host::open(dir.path(), options()).unwrap();
    assert_eq!(host.latest_version(), 7);
    assert_eq!(host.state_root().unwrap(), root);
    assert_eq!(root, receipts.last().unwrap().state_root);
    assert_eq!(host.state("counter", None, b"").unwrap(), state);
    for r in &receipts {
        assert_eq!(host.receipt(&r.tx_id).unwrap().as_ref(), Some(r));
    }
    let log = host.history(1, 100).unwrap();
    assert_eq!(log.len(), 7);
    assert_eq!(log[3].status, Status::Reverted);
    assert_eq!(log[3].calls, vec!["counter.inc", "counter.fail"]);
    assert_eq!(log[0].calls, vec!["deploy counter"]);
    // A retry after reopening is still a duplicate.
    let again = Transaction::call("counter", "inc", Vec::new()).with_id(receipts[2].tx_id);
    let dup = host.submit(&again).unwrap();
    assert!(dup.duplicate);
    assert_eq!(host.latest_version(), 7);
}

#[test]
fn verify_passes_on_an_honest_log() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = populated(dir.path());
    let host = Host::open(dir.path(), options()).unwrap();
    let report = host.verify().unwrap();
    assert_eq!(report.transactions, 7);
    assert_eq!(report.state_root, receipts.last().unwrap().state_root);
}

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("txs");

fn tamper(
    dir: &std::path::Path,
    table: TableDefinition<&[u8], &[u8]>,
    pick: impl Fn(&[u8]) -> bool,
) {
    let db = redb::Database::open(dir.join(semel::DB_FILE)).unwrap();
    let (key, mut value) = {
        let read = db.begin_read().unwrap();
        let t = read.open_table(table).unwrap();
        let mut found = None;
        for item in t.iter().unwrap() {
            let (k, v) = item.unwrap();
            if pick(k.value()) {
                found = Some((k.value().to_vec(), v.value().to_vec()));
            }
        }
        found.expect("an entry to tamper with")
    };
    let last = value.len() - 1;
    value[last] ^= 0x01;
    let write = db.begin_write().unwrap();
    write
        .open_table(table)
        .unwrap()
        .insert(key.as_slice(), value.as_slice())
        .unwrap();
    write.commit().unwrap();
}

#[test]
fn verify_names_the_version_of_a_tampered_state_value() {
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    // The counter's "count" written by version 5 (the proxy's nested inc).
    tamper(dir.path(), STATE, |k| {
        k.ends_with(&5u64.to_be_bytes()) && k.windows(5).any(|w| w == b"count")
    });
    let host = Host::open(dir.path(), options()).unwrap();
    match host.verify() {
        Err(VerifyError::Mismatch { version, what }) => {
            assert_eq!(version, 5, "{what}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn verify_names_the_version_of_a_tampered_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = populated(dir.path());
    let target = receipts[3].tx_id;
    tamper(dir.path(), TXS, |k| k == target.as_bytes());
    let host = Host::open(dir.path(), options()).unwrap();
    match host.verify() {
        Err(VerifyError::Mismatch { version, .. }) => assert_eq!(version, 4),
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn a_second_host_on_the_same_dir_waits_then_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Host::open(dir.path(), options()).unwrap();
    match Host::open(dir.path(), options()) {
        Err(HostError::Locked(msg)) => assert!(msg.contains("still held after 50 ms"), "{msg}"),
        other => panic!("expected the dir to be locked, got {other:?}"),
    }
}

#[test]
fn a_foreign_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = redb::Database::create(dir.path().join(semel::DB_FILE)).unwrap();
        let w = db.begin_write().unwrap();
        w.open_table(TableDefinition::<&[u8], &[u8]>::new("meta"))
            .unwrap()
            .insert(&b"format"[..], &b"something-else"[..])
            .unwrap();
        w.commit().unwrap();
    }
    let err = Host::open(dir.path(), options()).unwrap_err();
    assert!(err.to_string().contains("not a Semel data dir"), "{err}");
}

#[test]
fn gas_and_results_do_not_depend_on_where_the_module_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let inc = || Transaction::call("counter", "inc", Vec::new());
    let from_memory = {
        let host = Host::open(dir.path(), options()).unwrap();
        host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
            .unwrap();
        let r = host.submit(&inc()).unwrap();
        assert_eq!(host.module_cache_stats().compiles, 1);
        r
    };
    let host = Host::open(dir.path(), options()).unwrap();
    let from_disk = host.submit(&inc()).unwrap();
    let stats = host.module_cache_stats();
    assert_eq!((stats.disk_loads, stats.compiles), (1, 0));
    host.clear_module_cache();
    std::fs::remove_dir_all(dir.path().join(semel::CACHE_DIR)).unwrap();
    std::fs::create_dir_all(dir.path().join(semel::CACHE_DIR)).unwrap();
    let compiled = host.submit(&inc()).unwrap();
    assert_eq!(host.module_cache_stats().compiles, 1);
    assert_eq!(from_memory.gas_used, from_disk.gas_used);
    assert_eq!(from_disk.gas_used, compiled.gas_used);
    let outputs: Vec<_> = [&from_memory, &from_disk, &compiled]
        .iter()
        .map(|r| r.results[0].output.clone())
        .collect();
    assert_eq!(outputs, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
}

#[test]
fn prune_keeps_what_retained_versions_read_and_every_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = populated(dir.path());
    let host = Host::open(dir.path(), options()).unwrap();
    let inc = |n: usize| {
        (0..n)
            .map(|_| {
                host.submit(&Transaction::call("counter", "inc", Vec::new()))
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    inc(4);
    let latest = host.latest_version();
    let horizon = latest - 3;
    let before: Vec<_> = (horizon..=latest)
        .map(|v| {
            (
                host.query("counter", "get", b"", Some(v)).unwrap(),
                host.state("proxy", Some(v), b"").unwrap(),
            )
        })
        .collect();
    let root = host.state_root().unwrap();
    let report = host.prune(horizon).unwrap();
    assert_eq!(report.horizon, horizon);
    assert!(report.rows_removed > 0);
    let after: Vec<_> = (horizon..=latest)
        .map(|v| {
            (
                host.query("counter", "get", b"", Some(v)).unwrap(),
                host.state("proxy", Some(v), b"").unwrap(),
            )
        })
        .collect();
    assert_eq!(before, after);
    assert_eq!(host.state_root().unwrap(), root);
    match host.query("counter", "get", b"", Some(horizon - 1)) {
        Err(semel::QueryError::Rejected(e)) => {
            assert!(
                e.to_string()
                    .contains(&format!("the store holds versions {horizon} to {latest}")),
                "{e}"
            )
        }
        other => panic!("expected a refusal before the horizon, got {other:?}"),
    }
    // Receipts and exactly-once records are kept: every old id is still a duplicate.
    for r in &receipts {
        assert_eq!(host.receipt(&r.tx_id).unwrap().as_ref(), Some(r));
    }
    let again = Transaction::call("counter", "inc", Vec::new()).with_id(receipts[2].tx_id);
    assert!(host.submit(&again).unwrap().duplicate);
    // A lower horizon changes nothing; one past the latest version is refused.
    assert_eq!(host.prune(1).unwrap().rows_removed, 0);
    assert!(host.prune(latest + 5).is_err());
    host.verify().unwrap();
    drop(host);
    let host = Host::open(dir.path(), options()).unwrap();
    assert_eq!(host.horizon(), horizon);
    host.verify().unwrap();
}

const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");

/// The host id a closed data dir's database holds, if any.
fn stored_host_id(dir: &std::path::Path) -> Option<Vec<u8>> {
    let db = redb::Database::open(dir.join(semel::DB_FILE)).unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(META).unwrap();
    t.get(&b"host_id"[..]).unwrap().map(|v| v.value().to_vec())
}

/// Makes a closed data dir as one made before host ids: its `meta` without `host_id`.
fn remove_host_id(dir: &std::path::Path) {
    let db = redb::Database::open(dir.join(semel::DB_FILE)).unwrap();
    let write = db.begin_write().unwrap();
    assert!(
        write
            .open_table(META)
            .unwrap()
            .remove(&b"host_id"[..])
            .unwrap()
            .is_some(),
        "the store had no host id to remove"
    );
    write.commit().unwrap();
}

#[test]
fn a_data_dir_keeps_its_host_id_through_reopen_verify_and_prune() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    populated(one.path());
    let host = Host::open(one.path(), options()).unwrap();
    let id = host.host_id();
    assert!(is_host_id_text(&id.to_string()), "{id}");
    assert_eq!(id.to_string().parse::<semel::HostId>(), Ok(id));
    let info = host.info().unwrap();
    assert_eq!(info.host_id, id);
    assert_eq!(
        info.store,
        format!(
            "redb:{}",
            std::path::absolute(one.path()).unwrap().display()
        )
    );
    assert_eq!(info.format, "semel-data-v2");
    assert_eq!(
        (info.version, info.state_root),
        (7, host.state_root().unwrap())
    );
    host.verify().unwrap();
    host.prune(host.latest_version()).unwrap();
    assert_eq!(host.host_id(), id);
    drop(host);
    assert_eq!(stored_host_id(one.path()), Some(id.as_bytes().to_vec()));
    for open in [Host::open, Host::open_existing] {
        assert_eq!(open(one.path(), options()).unwrap().host_id(), id);
    }
    // Another store has another id.
    let other = Host::open(two.path(), options()).unwrap();
    assert!(other.created_store());
    assert_ne!(other.host_id(), id);
    // So do in-memory hosts, which say where they live.
    let (m, n) = (Host::in_memory().unwrap(), Host::in_memory().unwrap());
    assert_ne!(m.host_id(), n.host_id());
    assert_eq!(m.info().unwrap().store, "memory");
    assert_eq!(m.info().unwrap().version, 0);
}

#[test]
fn a_data_dir_made_before_host_ids_gets_one_when_first_opened_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = populated(dir.path());
    let old = Host::open(dir.path(), options()).unwrap().host_id();
    remove_host_id(dir.path());
    assert_eq!(stored_host_id(dir.path()), None);
    // A read-only open (as `semel info` makes) gives it one, durably, and changes
    // nothing else.
    let host = Host::open_existing(dir.path(), options()).unwrap();
    let id = host.host_id();
    assert!(is_host_id_text(&id.to_string()), "{id}");
    assert_ne!(id, old);
    assert_eq!(host.latest_version(), 7);
    assert_eq!(
        host.state_root().unwrap(),
        receipts.last().unwrap().state_root
    );
    assert_eq!(host.verify().unwrap().transactions, 7);
    drop(host);
    assert_eq!(stored_host_id(dir.path()), Some(id.as_bytes().to_vec()));
    for _ in 0..2 {
        let host = Host::open(dir.path(), options()).unwrap();
        assert!(!host.created_store());
        assert_eq!(host.host_id(), id);
        host.submit(&Transaction::call("counter", "inc", Vec::new()))
            .unwrap();
    }
    assert_eq!(
        Host::open_existing(dir.path(), options())
            .unwrap()
            .info()
            .unwrap()
            .host_id,
        id
    );
}
