//! A data dir that has held a store never silently becomes a new one, and commands that
//! only read never create one: a missing or emptied database, a deleted log, a mistyped
//! path are each refused with a message naming what is missing, and nothing is created.

use std::path::Path;
use std::process::{Command, Output};

use semel::{Host, HostError, HostOptions, StorageError, Transaction};

use crate::util::{count, deploy};

/// A data dir with the counter deployed and incremented twice, closed cleanly.
fn store(dir: &Path) {
    let host = Host::open(dir, HostOptions::default()).unwrap();
    assert!(host.created_store());
    deploy(&host, "counter", "counter");
    for _ in 0..2 {
        host.submit(&Transaction::call("counter", "inc", Vec::new()))
            .unwrap();
    }
}

fn refusal(dir: &Path) -> String {
    match Host::open(dir, HostOptions::default()) {
        Err(e @ (HostError::DataDir(_) | HostError::Storage(StorageError::Corrupt(_)))) => {
            e.to_string()
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a data dir that held a store opened as a new one"),
    }
}

#[test]
fn an_emptied_or_missing_database_is_refused_not_started_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    store(d);
    let db = d.join(semel::DB_FILE);
    let saved = std::fs::read(&db).unwrap();
    std::fs::write(&db, b"").unwrap();
    let msg = refusal(d);
    assert!(
        msg.contains("semel.redb is empty") && msg.contains("semel.wal"),
        "{msg}"
    );
    std::fs::remove_file(&db).unwrap();
    let msg = refusal(d);
    assert!(msg.contains("semel.redb is missing"), "{msg}");
    // Without the log too, the compiled artifacts still tell.
    std::fs::remove_file(d.join("semel.wal")).unwrap();
    let msg = refusal(d);
    assert!(msg.contains("compiled artifacts"), "{msg}");
    assert!(!db.exists(), "a refused open created the database");
    // Restored, the store is as it was.
    std::fs::write(&db, &saved).unwrap();
    std::fs::write(d.join("semel.wal"), b"").unwrap();
    let host = Host::open(d, HostOptions::default()).unwrap();
    assert!(!host.created_store());
    assert_eq!(count(&host, None), "2");
}

#[test]
fn a_deleted_log_is_refused_because_it_may_hold_committed_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    store(d);
    std::fs::remove_file(d.join("semel.wal")).unwrap();
    let msg = refusal(d);
    assert!(
        msg.contains("semel.wal is missing") && msg.contains("write-ahead log"),
        "{msg}"
    );
    assert!(
        !d.join("semel.wal").exists(),
        "the refused open made a new log"
    );
    // After a clean close the log held nothing: an empty file in its place opens it.
    std::fs::write(d.join("semel.wal"), b"").unwrap();
    let host = Host::open(d, HostOptions::default()).unwrap();
    assert_eq!(count(&host, None), "2");
    assert_eq!(host.verify().unwrap().transactions, 3);
}

#[test]
fn reading_a_data_dir_that_holds_no_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let e = Host::open_existing(&missing, HostOptions::default()).unwrap_err();
    assert!(matches!(e, HostError::NoStore(_)), "{e}");
    assert!(e.to_string().contains("typo"), "{e}");
    assert!(!missing.exists());
    // An existing but empty folder stays as it was too (bar the lock file).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        Host::open_existing(&empty, HostOptions::default()),
        Err(HostError::NoStore(_))
    ));
    assert!(!empty.join(semel::DB_FILE).exists());
    // A store is read as ever.
    let real = dir.path().join("real");
    store(&real);
    let host = Host::open_existing(&real, HostOptions::default()).unwrap();
    assert_eq!(count(&host, None), "2");
}

fn semel(dir: &Path, args: &[&str]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("semel");
    Command::new(bin)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn read_only_commands_exit_2_on_a_path_without_a_store_and_recording_ones_say_they_made_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("mistyped");
    for args in [
        &["contracts"][..],
        &["info"],
        &["verify"],
        &["log"],
        &["query", "counter", "get"],
        &["state", "counter"],
        &["receipt", "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11"],
        &["prune", "--keep-versions", "1"],
    ] {
        let o = semel(&d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no Semel store") && err.contains("mistyped"),
            "{args:?}: {err}"
        );
        assert!(!d.exists(), "{args:?} created the data dir");
    }
    let wat = crate::util::repo().join("contracts/wat/counter.wat");
    let o = semel(&d, &["deploy", wat.to_str().unwrap(), "--name", "counter"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("created a new data dir"));
    let o = semel(&d, &["call", "counter", "inc"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("created"));
    // An emptied database is a host failure (exit 4) that names it, for every command.
    std::fs::write(d.join(semel::DB_FILE), b"").unwrap();
    for args in [&["call", "counter", "inc"][..], &["contracts"]] {
        let o = semel(&d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {err}");
        assert!(err.contains("semel.redb is empty"), "{args:?}: {err}");
    }
}
