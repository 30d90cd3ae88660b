//! The on-disk format stays readable: a data dir made by the `semel` binary of
//! 2026-11-27 (commit d22bc97, before the crate's reshape) opens, answers, verifies and
//! goes on recording. `tests/fixtures/datadir-v2/` holds it, as that binary left it
//! after `deploy token.wasm --args '{"supply": 1000}' --sender alice`, a transfer of 5
//! to bob with id 0b6f0e0e-…, and `prune --keep-versions 1`.

use semel::{Host, HostOptions, Status, Transaction, Uuid};

use crate::util::repo;

const TRANSFER_ID: &str = "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11";
const ROOT_AT_2: &str = "93e559ac53a1a9a42966f2c21f089c4a9995650adf28d2e80246c1da4a9e0fde";

#[test]
fn a_data_dir_made_before_the_reshape_opens_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    for file in [semel::DB_FILE, "semel.wal"] {
        std::fs::copy(
            repo().join("tests/fixtures/datadir-v2").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    let host = Host::open(dir.path(), HostOptions::default()).unwrap();
    assert_eq!((host.latest_version(), host.horizon()), (2, 2));
    assert_eq!(host.state_root().unwrap().to_string(), ROOT_AT_2);
    let id = Uuid::parse_str(TRANSFER_ID).unwrap();
    let receipt = host.receipt(&id).unwrap().unwrap();
    assert_eq!((receipt.status, receipt.version), (Status::Committed, 2));
    assert_eq!(receipt.state_root.to_string(), ROOT_AT_2);
    let balance = |who: &str| {
        let args = format!(r#"{{"of": "{who}"}}"#);
        host.query("token", "balance", args.as_bytes(), None)
            .unwrap()
            .output
    };
    assert_eq!(balance("bob"), b"5");
    assert_eq!(host.contracts().unwrap()[0].name, "token");
    assert_eq!(host.history(1, 10).unwrap().len(), 2);
    assert_eq!(host.verify().unwrap().transactions, 2);
    // The recorded id is still a duplicate; a new transaction records on top.
    let same = Transaction::call(
        "token",
        "transfer",
        br#"{"to": "bob", "amount": 5}"#.to_vec(),
    )
    .with_sender("alice")
    .with_id(id);
    assert!(host.submit(&same).unwrap().duplicate);
    let more = Transaction::call(
        "token",
        "transfer",
        br#"{"to": "bob", "amount": 2}"#.to_vec(),
    )
    .with_sender("alice");
    assert_eq!(host.submit(&more).unwrap().version, 3);
    assert_eq!(balance("bob"), b"7");
    assert_eq!(host.verify().unwrap().transactions, 3);
}

#[test]
fn a_data_dir_made_before_host_ids_gets_one_on_first_open_and_keeps_it() {
    use redb::ReadableDatabase;
    let stored = |dir: &std::path::Path| {
        let db = redb::Database::open(dir.join(semel::DB_FILE)).unwrap();
        let read = db.begin_read().unwrap();
        let meta = read
            .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
            .unwrap();
        meta.get(&b"host_id"[..])
            .unwrap()
            .map(|v| v.value().to_vec())
    };
    let dir = tempfile::tempdir().unwrap();
    for file in [semel::DB_FILE, "semel.wal"] {
        std::fs::copy(
            repo().join("tests/fixtures/datadir-v2").join(file),
            dir.path().join(file),
        )
        .unwrap();
    }
    assert_eq!(
        stored(dir.path()),
        None,
        "the fixture already has a host id"
    );
    // The first open, even a read-only one, gives it an id, stored at once.
    let host = Host::open_existing(dir.path(), HostOptions::default()).unwrap();
    let id = host.host_id();
    assert!(crate::util::is_host_id_text(&id.to_string()), "{id}");
    assert_eq!(host.info().unwrap().version, 2);
    assert_eq!(host.state_root().unwrap().to_string(), ROOT_AT_2);
    drop(host);
    assert_eq!(stored(dir.path()), Some(id.as_bytes().to_vec()));
    let host = Host::open(dir.path(), HostOptions::default()).unwrap();
    assert_eq!(host.host_id(), id);
    assert_eq!(host.verify().unwrap().transactions, 2);
}
