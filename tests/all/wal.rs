//! The write-ahead log in front of redb, at the backend seam: what a reopen replays from
//! the log and what it must not — a torn or damaged last record, an older record or
//! another data dir's where the next record would be — and that a clean close leaves
//! the log empty.

use semel::storage::{Backend, RedbBackend, Snapshot, Table, WalBackend, WalTuning, WriteBatch};
use semel::{Durability, StorageError};

use crate::faulty_disk::FaultyDisk;

const KEY: &[u8] = b"k";

fn open(disk: &FaultyDisk, tuning: WalTuning) -> Result<WalBackend, StorageError> {
    let redb = RedbBackend::with_storage(Box::new(disk.storage(0)), Durability::None)?;
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
        apply_in_background: false,
    }
}

fn put(value: u64) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(Table::State, KEY.to_vec(), value.to_le_bytes().to_vec());
    b.put(
        Table::History,
        value.to_be_bytes().to_vec(),
        b"entry".to_vec(),
    );
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
        assert!(
            snap.get(Table::History, &i.to_be_bytes())
                .unwrap()
                .is_some()
        );
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
        assert!(
            snap.get(Table::History, &3u64.to_be_bytes())
                .unwrap()
                .is_none()
        );
        // The log goes on from there: the next commit is replayed after another crash.
        wal.commit(&put(9)).unwrap();
    }
}

/// The offsets of the records a log image holds from offset 0 on, read as a reopen
/// does, and the end of the last.
fn record_spans(log: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 0;
    while log.get(at..at + 4) == Some(b"SWL1") {
        let len = u32::from_le_bytes(log[at + 12..at + 16].try_into().unwrap());
        let next = at + 48 + usize::try_from(len).unwrap();
        spans.push((at, next));
        at = next;
    }
    spans
}

#[test]
fn only_the_next_record_of_this_data_dir_is_replayed() {
    // A checkpoint every few records: the log starts over at offset 0 again and again.
    let tuning = WalTuning {
        apply_bytes: 200,
        checkpoint_bytes: 600,
        grow_bytes: 4 << 10,
        // The image is taken while nothing writes: no apply beside the commits.
        apply_in_background: false,
    };
    for n in 20..40 {
        let image = crashed_after(n, tuning);
        let spans = record_spans(&image[1]);
        let (first, end) = (spans[0], spans.last().unwrap().1);
        // An older record of this data dir where the next one would be (as stale bytes
        // of an earlier cycle can be, at a block boundary): not replayed.
        let mut older = image.clone();
        let copy = image[1][first.0..first.1].to_vec();
        older[1][end..end + copy.len()].copy_from_slice(&copy);
        // The next number, well formed, but another data dir's (checksummed with its
        // key): not replayed either.
        let other = crashed_after(n + 1, log_only());
        let (at, next) = *record_spans(&other[1]).last().unwrap();
        assert_eq!(other[1][at + 4..at + 12], (n + 1).to_le_bytes());
        let mut foreign = image;
        foreign[1][end..end + (next - at)].copy_from_slice(&other[1][at..next]);
        for (what, image) in [("older", older), ("foreign", foreign)] {
            let wal = open(&FaultyDisk::with_image(image), tuning).unwrap();
            assert_eq!(
                value(&*wal.snapshot().unwrap()),
                Some(n),
                "{what} record after {n} commits"
            );
        }
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

#[test]
fn records_without_their_data_dirs_key_are_refused_not_dropped() {
    // A log that holds records, beside a redb that has no log key (a data dir of an
    // older version, or a log moved from another data dir): opening fails and says
    // why, and the log is left as it was.
    let mut image = crashed_after(3, log_only());
    image[0].clear();
    let disk = FaultyDisk::with_image(image.clone());
    let e = open(&disk, log_only()).expect_err("refused");
    assert!(e.to_string().contains("no log key"), "{e}");
    assert_eq!(disk.files()[1], image[1]);
}
