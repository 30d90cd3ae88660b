//! The write-ahead log in front of redb, at the backend seam: what a reopen replays from
//! the log and what it must not — a torn or damaged last record, records of an earlier
//! log cycle — and that a clean close leaves the log empty.

use semel::{
    Backend, Durability, RedbBackend, Snapshot, StorageError, Table, WalBackend, WalTuning,
    WriteBatch,
};

use crate::faulty_disk::FaultyDisk;

const KEY: &[u8] = b"k";

fn open(disk: &FaultyDisk, tuning: WalTuning) -> Result<WalBackend, StorageError> {
    let redb = RedbBackend::with_storage(disk.storage(0), Durability::None)?;
    Ok(
        WalBackend::with_storage(redb, Box::new(disk.storage(1)), Durability::Immediate)?
            .with_tuning(tuning),
    )
}

/// Nothing applied to redb, no checkpoint: every commit lives only in the log.
fn log_only() -> WalTuning {
    WalTuning {
        apply_bytes: u64::MAX,
        checkpoint_bytes: u64::MAX,
        grow_bytes: 4 << 10,
    }
}

fn put(value: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(Table::State, KEY.to_vec(), value.to_le_bytes().to_vec());
    b.put(Table::Log, value.to_be_bytes().to_vec(), b"entry".to_vec());
    b
}

fn value(snap: &dyn Snapshot) -> Option<u64> {
    snap.get(Table::State, KEY)
        .unwrap()
        .map(|v| u64::from_le_bytes(v.try_into().unwrap()))
}

/// Offsets of the records in a log image (the magic at a record's start).
fn records(log: &[u8]) -> Vec<usize> {
    log.windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"SWL1")
        .map(|(i, _)| i)
        .collect()
}

/// Commits 1..=n, then returns the disk's bytes as a crash would leave them once every
/// write had reached the disk (the backend is leaked, so no clean close runs).
fn crashed_after(n: u64, tuning: WalTuning) -> Vec<Vec<u8>> {
    let disk = FaultyDisk::default();
    let wal = open(&disk, tuning).unwrap();
    for i in 1..=n {
        wal.commit(&put(i)).unwrap();
        assert_eq!(value(&*wal.snapshot().unwrap()), Some(i));
    }
    std::mem::forget(wal);
    disk.files()
}

#[test]
fn a_reopen_replays_the_log_in_order() {
    let image = crashed_after(5, log_only());
    let wal = open(&FaultyDisk::with_image(image), log_only()).unwrap();
    let snap = wal.snapshot().unwrap();
    assert_eq!(value(&*snap), Some(5));
    for i in 1..=5u64 {
        assert!(snap.get(Table::Log, &i.to_be_bytes()).unwrap().is_some());
    }
}

#[test]
fn a_torn_or_damaged_last_record_is_not_replayed() {
    let image = crashed_after(3, log_only());
    let at = *records(&image[1]).last().unwrap();
    // Torn: the last record cut short (its tail still zeros).
    let mut torn = image.clone();
    torn[1][at + 60..at + 80].fill(0);
    // Damaged: one payload byte flipped, length intact.
    let mut flipped = image.clone();
    flipped[1][at + 50] ^= 1;
    // Taken back: its header zeroed, as after a failed sync.
    let mut zeroed = image;
    zeroed[1][at..at + 48].fill(0);
    for (what, image) in [("torn", torn), ("flipped", flipped), ("zeroed", zeroed)] {
        let wal = open(&FaultyDisk::with_image(image), log_only()).unwrap();
        let snap = wal.snapshot().unwrap();
        assert_eq!(value(&*snap), Some(2), "{what}");
        assert!(snap.get(Table::Log, &3u64.to_be_bytes()).unwrap().is_none());
        // The log goes on from there: the next commit is replayed after another crash.
        wal.commit(&put(9)).unwrap();
    }
}

/// The end of the records a log image holds from offset 0 on, read as a reopen does.
fn end_of_records(log: &[u8]) -> usize {
    let mut at = 0;
    while log.get(at..at + 4) == Some(b"SWL1") {
        let len = u32::from_le_bytes(log[at + 12..at + 16].try_into().unwrap());
        at += 48 + usize::try_from(len).unwrap();
    }
    at
}

#[test]
fn records_of_an_earlier_log_cycle_are_not_replayed() {
    // A checkpoint every few records: the log starts over at offset 0 again and again.
    let tuning = WalTuning {
        apply_bytes: 200,
        checkpoint_bytes: 600,
        grow_bytes: 4 << 10,
    };
    // A whole record of an earlier cycle (number 1, KEY = 1), as it would lie past the
    // newest records had it started where they end. (An append zeros the rest of its
    // block, so on a real disk only a record starting on a later block boundary can.)
    let first = crashed_after(1, log_only());
    let stale = &first[1][..end_of_records(&first[1])];
    for n in 20..40 {
        let mut image = crashed_after(n, tuning);
        let end = end_of_records(&image[1]);
        image[1][end..end + stale.len()].copy_from_slice(stale);
        let wal = open(&FaultyDisk::with_image(image), tuning).unwrap();
        assert_eq!(
            value(&*wal.snapshot().unwrap()),
            Some(n),
            "after {n} commits"
        );
    }
}

#[test]
fn a_clean_close_checkpoints_and_empties_the_log() {
    let disk = FaultyDisk::default();
    let wal = open(&disk, log_only()).unwrap();
    for i in 1..=3 {
        wal.commit(&put(i)).unwrap();
    }
    drop(wal);
    let image = disk.files();
    assert_eq!(&image[1][..48], &[0; 48], "the first header is zeroed");
    // redb alone holds everything: an empty log replays nothing and loses nothing.
    let mut no_log = image;
    no_log[1].clear();
    let wal = open(&FaultyDisk::with_image(no_log), log_only()).unwrap();
    assert_eq!(value(&*wal.snapshot().unwrap()), Some(3));
}
