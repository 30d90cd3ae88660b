//! Real processes killed with SIGKILL: several `semel` processes at once on one data dir
//! submit transactions with known ids and are killed at random moments; then every id
//! is retried. Each id must be applied exactly once, every acknowledged id must come back
//! as a duplicate with its receipt, and `verify` must pass. Most processes submit a fresh
//! id (so that a kill interrupts a transaction, not a retry's lookup) and some retry an
//! earlier one; the test prints how many kills interrupted a transaction that turned out
//! recorded, and how many one that did not. Kill times are random up to twice the time
//! one unkilled process takes (measured first), so some finish. One process in four sends a batch of three
//! ids (`semel tx` with an array: a parallel batch on two workers). A data dir whose
//! database was emptied after the kills is refused, never opened as a new one.
//!
//! `SEMEL_KILLS=N` sets how many processes are killed (default 200).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use semel::{Host, HostOptions, Transaction, Uuid};
use serde_json::Value;

use crate::faulty_disk::Rng;
use crate::util::wat;

const DEFAULT_KILLS: usize = 200;
/// Processes running at once.
const PARALLEL: usize = 3;
/// Percent of processes that submit an id never submitted before; the others retry one.
const FRESH_PERCENT: u64 = 80;
/// Percent of processes that send a batch of three (one parallel batch).
const BATCH_PERCENT: u64 = 25;

/// A process that submits `ids`: one as `semel call`, several as a batch file through
/// `semel tx` (run in parallel by two workers, optimistic or — when the first id is
/// even — pessimistic, where transactions without declared sets run one at a time),
/// each `counter.inc`. (A declared set would be content: the same id sent alone would
/// then be a conflict.)
fn spawn(dir: &std::path::Path, files: &std::path::Path, ids: &[Uuid]) -> Child {
    let mut command = Command::new(crate::cli::semel_bin());
    command.arg("--data-dir").arg(dir).arg("--json");
    if let [id] = ids {
        command.args(["call", "counter", "inc", "--tx-id", &id.to_string()]);
    } else {
        let batch: Vec<Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!({"id": id.to_string(), "calls": [{"contract": "counter", "method": "inc"}]})
            })
            .collect();
        let file = files.join(format!("batch-{}.json", ids[0]));
        std::fs::write(&file, serde_json::to_vec(&batch).unwrap()).unwrap();
        let mode = match ids[0].as_bytes()[15] % 2 {
            0 => "pessimistic",
            _ => "optimistic",
        };
        command
            .arg("tx")
            .arg(&file)
            .args(["--workers", "2", "--concurrency", mode]);
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killed_processes_never_apply_a_transaction_twice() {
    let kills_wanted: usize = std::env::var("SEMEL_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    {
        let host = Host::open(dir.path(), HostOptions::default()).unwrap();
        host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
            .unwrap();
    }
    let mut rng = Rng::new(2026);
    let mut ids: Vec<Uuid> = Vec::new();
    let mut acked: BTreeMap<Uuid, Value> = BTreeMap::new();
    // Kills land anywhere in a process's life: up to twice as long as one whole run
    // takes on this machine and build (at least 60 ms), measured here, unkilled.
    let first = Uuid::from_u64_pair(rng.next(), rng.next());
    let started = Instant::now();
    let out = spawn(dir.path(), files.path(), &[first])
        .wait_with_output()
        .unwrap();
    let life_max = (started.elapsed() * 2).max(Duration::from_millis(60));
    assert!(out.status.success(), "an unkilled process failed");
    let mut receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    receipt["duplicate"] = Value::Bool(false);
    ids.push(first);
    acked.insert(first, receipt);
    let mut running: Vec<(Vec<Uuid>, Child, Instant, Duration)> = Vec::new();
    let mut kills = 0;
    // Ids whose process was killed before any process acknowledged them.
    let mut interrupted: Vec<Uuid> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while kills < kills_wanted {
        assert!(
            Instant::now() < deadline,
            "only {kills} kills in 10 minutes"
        );
        while running.len() < PARALLEL {
            let id = match ids.is_empty() || rng.chance(FRESH_PERCENT) {
                true => {
                    ids.push(Uuid::from_u64_pair(rng.next(), rng.next()));
                    ids[ids.len() - 1]
                }
                false => {
                    ids[usize::try_from(rng.below(u64::try_from(ids.len()).unwrap())).unwrap()]
                }
            };
            // One process in four sends a batch: this id and two fresh ones.
            let mut batch = vec![id];
            if rng.chance(BATCH_PERCENT) {
                for _ in 0..2 {
                    ids.push(Uuid::from_u64_pair(rng.next(), rng.next()));
                    batch.push(ids[ids.len() - 1]);
                }
            }
            let life =
                Duration::from_micros(rng.below(u64::try_from(life_max.as_micros()).unwrap()));
            running.push((
                batch.clone(),
                spawn(dir.path(), files.path(), &batch),
                Instant::now(),
                life,
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
        let mut still = Vec::new();
        for (batch, mut child, started, life) in running.drain(..) {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                if status.code() == Some(0) {
                    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
                    let receipts = match printed {
                        Value::Array(list) => list,
                        one => vec![one],
                    };
                    assert_eq!(receipts.len(), batch.len());
                    for (id, receipt) in batch.iter().zip(receipts) {
                        assert_eq!(receipt["tx_id"], id.to_string());
                        let mut first = receipt.clone();
                        first["duplicate"] = Value::Bool(false);
                        if let Some(earlier) = acked.get(id) {
                            assert_eq!(earlier, &first, "two different receipts for {id}");
                        }
                        acked.insert(*id, first);
                    }
                } else {
                    assert_eq!(status.code(), Some(4), "a process failed with {status}");
                }
            } else if started.elapsed() >= life {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                interrupted.extend(batch.iter().filter(|id| !acked.contains_key(id)));
            } else {
                still.push((batch, child, started, life));
            }
        }
        running = still;
    }
    for (_, mut child, _, _) in running {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // A database emptied after the kills (beside its log) is refused, not made anew.
    let db = dir.path().join(semel::DB_FILE);
    let saved = std::fs::read(&db).unwrap();
    std::fs::write(&db, b"").unwrap();
    assert!(matches!(
        Host::open(dir.path(), HostOptions::default()),
        Err(semel::HostError::DataDir(_))
    ));
    std::fs::write(&db, &saved).unwrap();

    let host = Host::open(dir.path(), HostOptions::default()).unwrap();
    // What the kills interrupted, counted before the retries record the rest.
    interrupted.retain(|id| !acked.contains_key(id));
    interrupted.sort_unstable();
    interrupted.dedup();
    let recorded = interrupted
        .iter()
        .filter(|id| host.receipt(id).unwrap().is_some())
        .count();
    for id in &ids {
        let r = host
            .submit(&Transaction::call("counter", "inc", Vec::new()).with_id(*id))
            .unwrap();
        if let Some(before) = acked.get(id) {
            assert!(r.duplicate, "acknowledged {id} ran again");
            let mut now = r.to_json();
            now["duplicate"] = Value::Bool(false);
            assert_eq!(&now, before, "the receipt of {id} changed");
        }
    }
    let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len();
    let count = host.query("counter", "get", b"", None).unwrap().output;
    assert_eq!(String::from_utf8(count).unwrap(), distinct.to_string());
    let log = host.history(1, usize::MAX).unwrap();
    assert_eq!(log.len(), 1 + distinct, "each id once, plus the deploy");
    host.verify().unwrap();
    eprintln!(
        "kill test: {kills} kills, {} ids, {} acknowledged by a process; of the {} ids a \
         kill interrupted before any acknowledgement, {recorded} turned out recorded and {} \
         not",
        ids.len(),
        acked.len(),
        interrupted.len(),
        interrupted.len() - recorded
    );
    assert!(
        acked.len() > 1,
        "no killed-at-random process finished before being killed"
    );
}
