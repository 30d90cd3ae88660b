//! Crash safety: a workload of deploys, migrates, multi-call, nested, reverted and
//! duplicate transactions crashes at I/O points of a fault-injecting disk; the crash image is
//! reopened, and every acknowledged transaction must be there exactly once with a
//! byte-identical receipt, nothing half-applied (`verify` re-executes the log), and the
//! host must go on working; written out as a data dir with its database emptied or
//! removed, the image is refused, never opened as a new store. Injected I/O errors give
//! `Err`, never a receipt.
//!
//! `SEMEL_CRASH_POINTS=all` crashes at every I/O point; a number samples that many.

use std::collections::{BTreeMap, HashSet};

use semel::storage::{Backend, RedbBackend, WalBackend, WalTuning};
use semel::{
    Durability, Host, HostOptions, Receipt, Status, StorageError, SubmitError, Transaction, Uuid,
};

use crate::faulty_disk::{Fault, FaultyDisk, Rng};
use crate::util::{calls, forward, wat};

/// Crash points sampled when `SEMEL_CRASH_POINTS` is unset.
const DEFAULT_CRASH_POINTS: usize = 60;

/// The durable default, as `Host::open` builds it: redb (file 0) behind the write-ahead
/// log (file 1). Without `background`, applies run inside the commit that starts them,
/// so that the I/O of a run comes in the same order every time and a crash at I/O `n`
/// means the same point.
fn backend(disk: &FaultyDisk, background: bool) -> Result<Box<dyn Backend>, StorageError> {
    let redb = RedbBackend::with_storage(Box::new(disk.storage(0)), Durability::None)?;
    let wal = WalBackend::with_storage(redb, Box::new(disk.storage(1)), Durability::Immediate)?;
    // Small enough that the workload applies, checkpoints and starts the log over often.
    Ok(Box::new(wal.with_tuning(WalTuning {
        apply_bytes: 4 << 10,
        checkpoint_bytes: 16 << 10,
        grow_bytes: 4 << 10,
        apply_in_background: background,
    })))
}

/// A host on `disk`. Lists run as parallel batches on two workers: optimistic, or
/// pessimistic with applies in the background (their transactions declare no sets, so
/// each runs alone, in order).
fn open(disk: &FaultyDisk, background: bool) -> Host {
    let reopen_disk = disk.clone();
    let options = HostOptions {
        workers: 2,
        concurrency: match background {
            false => semel::Concurrency::Optimistic,
            true => semel::Concurrency::Pessimistic,
        },
        ..HostOptions::default()
    };
    Host::with_reopenable_backend(
        backend(disk, background).unwrap(),
        Box::new(move || backend(&reopen_disk, background)),
        options,
    )
    .unwrap()
}

fn id(rng: &mut Rng) -> Uuid {
    Uuid::from_u64_pair(rng.next(), rng.next())
}

fn kv_put(key: u64) -> Vec<u8> {
    let k = format!("k{key}");
    let mut v = vec![u8::try_from(k.len()).unwrap()];
    v.extend_from_slice(k.as_bytes());
    v.extend_from_slice(b"value");
    v
}

/// The deterministic workload (for a seed): transactions in the order they are sent.
/// Lists of more than one are sent with `submit_all` (one group commit).
fn workload(seed: u64) -> Vec<Vec<Transaction>> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Vec<Transaction>> = ["counter", "proxy", "kv"]
        .iter()
        .map(|name| vec![Transaction::deploy(name, wat(name), Vec::new()).with_id(id(&mut rng))])
        .collect();
    // A counter its sender (the default) administers, for migrates.
    out.push(vec![
        Transaction::deploy("upgradable", wat("counter"), Vec::new())
            .with_admin(semel::DEFAULT_SENDER)
            .with_id(id(&mut rng)),
    ]);
    let mut sent: Vec<Transaction> = out.iter().flatten().cloned().collect();
    for _ in 0..14 {
        let one = |rng: &mut Rng, sent: &[Transaction]| -> Transaction {
            let tx = match rng.below(11) {
                0 => Transaction::call("counter", "inc", Vec::new()),
                1 => calls(&[("counter", "inc", b""), ("counter", "fail", b"")]),
                2 => Transaction::call("proxy", "forward", forward("counter", "inc", b"")),
                3 => {
                    Transaction::call("proxy", "forward", forward("counter", "inc_then_fail", b""))
                }
                4 => Transaction::call("kv", "put", kv_put(rng.below(5))),
                5 => Transaction::call("kv", "del", format!("k{}", rng.below(5)).into_bytes()),
                6 => Transaction::deploy("counter", wat("kv"), Vec::new()),
                7 => Transaction::call("counter", "spin", Vec::new()).with_gas_limit(50_000),
                // A migrate, and one whose `migrate` reverts.
                8 => Transaction::migrate("upgradable", wat("counter_v2"), Vec::new()),
                9 => Transaction::migrate("upgradable", wat("counter_v2"), b"no".to_vec()),
                _ => {
                    return sent
                        [usize::try_from(rng.below(u64::try_from(sent.len()).unwrap())).unwrap()]
                    .clone();
                }
            };
            tx.with_id(id(rng))
        };
        let group: Vec<Transaction> = if rng.chance(25) {
            (0..3).map(|_| one(&mut rng, &sent)).collect()
        } else {
            vec![one(&mut rng, &sent)]
        };
        sent.extend(group.iter().cloned());
        out.push(group);
    }
    out
}

/// Runs the workload until the first host failure; returns acknowledged receipts by id.
fn run(host: &Host, work: &[Vec<Transaction>]) -> (BTreeMap<Uuid, Receipt>, bool) {
    let mut acked = BTreeMap::new();
    for group in work {
        let results = if group.len() == 1 {
            vec![host.submit(&group[0])]
        } else {
            host.submit_all(group)
        };
        for result in results {
            match result {
                Ok(r) => {
                    let first = Receipt {
                        duplicate: false,
                        ..r.clone()
                    };
                    if let Some(earlier) = acked.get(&r.tx_id) {
                        assert_eq!(
                            earlier, &first,
                            "a duplicate's receipt differs from the original"
                        );
                    } else {
                        assert!(!r.duplicate, "a duplicate of an id never acknowledged");
                        acked.insert(r.tx_id, first);
                    }
                }
                Err(SubmitError::Host(_)) => return (acked, true),
                Err(e) => panic!("unexpected refusal: {e}"),
            }
        }
    }
    (acked, false)
}

/// Checks a reopened host against what was acknowledged before the crash.
fn check_recovered(
    host: &Host,
    acked: &BTreeMap<Uuid, Receipt>,
    work: &[Vec<Transaction>],
    what: &str,
) {
    for (id, receipt) in acked {
        let stored = host.receipt(id).unwrap();
        assert_eq!(
            stored.as_ref(),
            Some(receipt),
            "{what}: acknowledged {id} lost or changed"
        );
    }
    let log = host.history(1, usize::MAX).unwrap();
    let ids: HashSet<Uuid> = log.iter().map(|e| e.tx_id).collect();
    assert_eq!(ids.len(), log.len(), "{what}: an id is recorded twice");
    host.verify()
        .unwrap_or_else(|e| panic!("{what}: verify failed: {e}"));
    // The host goes on: every transaction of the workload, retried, is recorded once.
    for tx in work.iter().flatten() {
        let r = host
            .submit(tx)
            .unwrap_or_else(|e| panic!("{what}: retry failed: {e}"));
        if let Some(earlier) = acked.get(&tx.id) {
            assert!(r.duplicate, "{what}: an acknowledged transaction ran twice");
            assert_eq!(
                &Receipt {
                    duplicate: false,
                    ..r
                },
                earlier
            );
        }
    }
    let log = host.history(1, usize::MAX).unwrap();
    let ids: HashSet<Uuid> = log.iter().map(|e| e.tx_id).collect();
    assert_eq!(
        ids.len(),
        log.len(),
        "{what}: an id is recorded twice after retries"
    );
    let distinct: HashSet<Uuid> = work.iter().flatten().map(|t| t.id).collect();
    assert_eq!(
        ids, distinct,
        "{what}: retries did not record every id once"
    );
    host.verify()
        .unwrap_or_else(|e| panic!("{what}: verify after retries failed: {e}"));
}

fn crash_points(total: u64) -> Vec<u64> {
    match std::env::var("SEMEL_CRASH_POINTS").as_deref() {
        Ok("all") => (0..total).collect(),
        other => {
            let n = other
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(DEFAULT_CRASH_POINTS);
            let mut rng = Rng::new(0xC0FFEE);
            let mut points: Vec<u64> = (0..n).map(|_| rng.below(total)).collect();
            points.extend([0, 1, total - 1]);
            points.sort_unstable();
            points.dedup();
            points
        }
    }
}

#[test]
fn acknowledged_transactions_survive_a_crash_at_any_io_point() {
    crash_at_io_points(false);
}

/// With applies beside the commits, the I/O order differs from run to run: a crash
/// point may fall on an apply that ends after the last commit and stop nothing, so only
/// what was acknowledged is checked.
#[test]
fn acknowledged_transactions_survive_a_crash_while_applies_run_beside_commits() {
    crash_at_io_points(true);
}

/// The crash image as a real data dir, its database then emptied and then removed beside
/// its log: `Host::open` must refuse it each time, never start a new store (every
/// acknowledged id would run again).
fn a_lost_database_is_refused(image: &[Vec<u8>], point: u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(semel::DB_FILE);
    std::fs::write(&db, b"").unwrap();
    std::fs::write(
        dir.path().join("semel.wal"),
        image.get(1).map_or(&[][..], Vec::as_slice),
    )
    .unwrap();
    for missing in ["is empty", "is missing"] {
        match Host::open(dir.path(), HostOptions::default()) {
            Err(semel::HostError::DataDir(msg)) => {
                assert!(msg.contains(missing), "crash at I/O {point}: {msg}");
            }
            Err(other) => panic!("crash at I/O {point}: {other}"),
            Ok(_) => panic!("crash at I/O {point}: a lost database opened as a new store"),
        }
        let _ = std::fs::remove_file(&db);
    }
}

fn crash_at_io_points(background: bool) {
    let work = workload(7);
    // A run without faults: how many I/O operations the workload makes.
    let disk = FaultyDisk::default();
    let host = open(&disk, background);
    let start = disk.ops();
    let (all_acked, failed) = run(&host, &work);
    assert!(!failed);
    assert!(
        host.parallel_stats().batches() > 0,
        "the workload's lists ran as parallel batches"
    );
    assert!(all_acked.values().any(|r| r.status == Status::Reverted));
    let total = disk.ops() - start;
    drop(host);

    let mut partial = 0;
    for point in crash_points(total) {
        let disk = FaultyDisk::default();
        let host = open(&disk, background);
        disk.fault_at(point, Fault::Crash);
        let (acked, crashed) = run(&host, &work);
        assert!(
            crashed || background,
            "the crash at I/O {point} did not stop the workload"
        );
        partial += usize::from(!acked.is_empty() && acked.len() < all_acked.len());
        drop(host);
        let mut rng = Rng::new(point);
        for attempt in 0..2 {
            let image = disk.crash_image(&mut rng);
            if attempt == 0 {
                a_lost_database_is_refused(&image, point);
            }
            let reopened = open(&FaultyDisk::with_image(image), background);
            check_recovered(
                &reopened,
                &acked,
                &work,
                &format!("crash at I/O {point}/{total}, image {attempt}"),
            );
        }
    }
    assert!(
        partial > 10,
        "only {partial} crashes fell between acknowledgements"
    );
}

#[test]
fn injected_io_errors_give_err_and_the_host_recovers() {
    let work = workload(11);
    let mut rng = Rng::new(99);
    let mut faults_hit = 0;
    for round in 0..12 {
        let disk = FaultyDisk::default();
        // Inline applies: the fault's number names the same I/O in every run.
        let host = open(&disk, false);
        disk.fault_at(rng.below(400), Fault::Error);
        let mut acked = BTreeMap::new();
        let mut errors = 0;
        for tx in work.iter().flatten() {
            match host.submit(tx) {
                Ok(r) => {
                    acked.entry(r.tx_id).or_insert(Receipt {
                        duplicate: false,
                        ..r
                    });
                }
                Err(SubmitError::Host(_)) => {
                    errors += 1;
                    // The next submit reopens from disk; retrying the same id is safe.
                    let r = host
                        .submit(tx)
                        .unwrap_or_else(|e| panic!("round {round}: retry: {e}"));
                    // A host failure consumes no id: the retry runs, it is no duplicate.
                    assert!(
                        !r.duplicate || acked.contains_key(&r.tx_id),
                        "round {round}: the failed submit of {} was recorded",
                        tx.id
                    );
                    acked.entry(r.tx_id).or_insert(Receipt {
                        duplicate: false,
                        ..r
                    });
                }
                Err(e) => panic!("round {round}: unexpected refusal: {e}"),
            }
        }
        assert!(
            errors <= 1,
            "round {round}: one injected fault, {errors} errors"
        );
        faults_hit += errors;
        check_recovered(&host, &acked, &work, &format!("error round {round}"));
    }
    assert!(
        faults_hit >= 6,
        "only {faults_hit} of 12 injected faults hit a submit"
    );
}

/// A call that ran after a deploy staged in the same group read the new registry entry;
/// when that group's commit fails, the writer must forget the entry with the rest of
/// the group, so later calls see the contract only if the deploy is really recorded.
#[test]
fn a_failed_groups_deploy_is_forgotten_by_the_contract_cache() {
    let mut lost = 0;
    for point in 0..12 {
        let disk = FaultyDisk::default();
        let host = open(&disk, false);
        // Warm: the log and redb have been written once, so the fault lands in the group.
        host.submit(&Transaction::deploy("other", wat("counter"), Vec::new()))
            .unwrap();
        let deploy = Transaction::deploy("counter", wat("counter"), Vec::new());
        let call = Transaction::call("counter", "inc", Vec::new());
        disk.fault_at(point, Fault::Error);
        let results = host.submit_all(&[deploy.clone(), call]);
        if results.iter().any(Result::is_ok) {
            continue;
        }
        // Past the version the lost deploy had taken, so only the cache could claim it.
        host.submit(&Transaction::call("other", "inc", Vec::new()))
            .unwrap();
        let after = host
            .submit(&Transaction::call("counter", "inc", Vec::new()))
            .unwrap_or_else(|e| panic!("fault at {point}: the call after recovery: {e}"));
        match host.receipt(&deploy.id).unwrap() {
            None => {
                lost += 1;
                assert_eq!(after.status, Status::Reverted, "fault at {point}");
                let error = after.error.unwrap_or_default();
                assert!(
                    error.contains("unknown contract counter"),
                    "fault at {point}: {error}"
                );
            }
            Some(_) => assert_eq!(after.status, Status::Committed, "fault at {point}"),
        }
    }
    assert!(lost > 0, "no fault point lost the group's deploy");
}
