//! The PostgreSQL store (interface §8) against a real, throwaway PostgreSQL server
//! (`pg.rs`): the backend against the in-memory one, a host on it against a host in
//! memory, and several `semel serve` hosts on one database — the same ids sent to all
//! at once, kill -9 of a host, the database restarted and killed under load, a host cut
//! off from it, injected serialization failures and a connection lost during `COMMIT`.
//! After each: every acknowledged id is a duplicate on retry, the state is one
//! execution per distinct id, the log is gapless and `verify` passes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use semel::storage::{Backend, MemoryBackend, PostgresBackend, Precondition, Table, WriteBatch};
use semel::{Concurrency, Host, HostOptions, StoreUrl, Transaction};
use serde_json::Value;

use crate::cli::semel_bin;
use crate::pg::Pg;
use crate::serve::{
    Loaded, Server, agent, check_acknowledged, counter_deploy, get, inc, load, post,
};
use crate::util::{calls, count, deploy, wat};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn key(&mut self) -> Vec<u8> {
        // Few distinct bytes, 0x00 and 0xFF among them, so keys collide and share prefixes.
        let len = self.below(4);
        (0..len)
            .map(|_| [0x00, 0x01, 0x7F, 0xFF][usize::try_from(self.below(4)).unwrap()])
            .collect()
    }
}

/// A host on the PostgreSQL store at `url` with the counter deployed.
/// A host on the store at `url`.
fn open_host(url: &str, options: HostOptions) -> Host {
    let store: StoreUrl = url.parse().unwrap();
    Host::open_store(&store, options).unwrap()
}

fn host_with_counter(url: &str) -> Host {
    let host = open_host(url, HostOptions::default());
    deploy(&host, "counter", "counter");
    host
}

fn walk(
    b: &dyn Backend,
    table: Table,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    reverse: bool,
    stop: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    b.snapshot()
        .unwrap()
        .range(table, lo, hi, reverse, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            out.len() < stop
        })
        .unwrap();
    out
}

fn bound(kind: u64, key: &[u8]) -> Bound<&[u8]> {
    match kind {
        0 => Bound::Unbounded,
        1 => Bound::Included(key),
        _ => Bound::Excluded(key),
    }
}

/// Random batches — puts and deletes over colliding keys, preconditions that hold and
/// that fail — committed to both backends; every read agrees after each batch.
#[test]
fn the_postgres_backend_agrees_with_the_in_memory_one() {
    let Some(pg) = Pg::start() else { return };
    let pgb = PostgresBackend::connect(&pg.url, true).unwrap().unwrap();
    let mem = MemoryBackend::new();
    let tables = [
        Table::State,
        Table::Code,
        Table::History,
        Table::Meta,
        Table::Events,
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut txs_key = 0u32;
    for round in 0..80u32 {
        let mut batch = WriteBatch::new();
        for _ in 0..=rng.below(12) {
            let table = tables[usize::try_from(rng.below(5)).unwrap()];
            let key = rng.key();
            match rng.below(3) {
                0 => batch.delete(table, key),
                _ => batch.put(table, key, round.to_le_bytes().to_vec()),
            }
        }
        // Transaction ids are recorded once: always new keys.
        txs_key += 1;
        batch.put(Table::Txs, txs_key.to_be_bytes().to_vec(), vec![1]);
        if rng.below(3) == 0 {
            let key = rng.key();
            let held = mem.snapshot().unwrap().get(Table::Meta, &key).unwrap();
            let value = match rng.below(2) {
                0 => held.map(Into::into),
                _ => Some(vec![9, 9].into()),
            };
            batch.require(Precondition {
                table: Table::Meta,
                key: key.into(),
                value,
            });
        }
        let (a, b) = (pgb.commit(&batch), mem.commit(&batch));
        assert_eq!(
            a.is_ok(),
            b.is_ok(),
            "round {round}: postgres {a:?}, memory {b:?}"
        );
        if let Err(e) = a {
            assert!(matches!(e, semel::StorageError::Conflict(_)), "{e}");
        }
        for _ in 0..6 {
            let table = tables[usize::try_from(rng.below(5)).unwrap()];
            let (lo, hi) = (rng.key(), rng.key());
            let (lk, hk, reverse) = (rng.below(3), rng.below(3), rng.below(2) == 1);
            let stop = usize::try_from(1 + rng.below(30)).unwrap();
            assert_eq!(
                walk(&pgb, table, bound(lk, &lo), bound(hk, &hi), reverse, stop),
                walk(&mem, table, bound(lk, &lo), bound(hk, &hi), reverse, stop),
                "round {round}: {table:?} {lo:?}..{hi:?} ({lk},{hk}) reverse {reverse}"
            );
            let key = rng.key();
            let (p, m) = (pgb.snapshot().unwrap(), mem.snapshot().unwrap());
            assert_eq!(p.get(table, &key).unwrap(), m.get(table, &key).unwrap());
            assert_eq!(
                p.newest_in(table, &lo, &hi).unwrap(),
                m.newest_in(table, &lo, &hi).unwrap()
            );
        }
    }
    // A long walk crosses pages.
    let mut batch = WriteBatch::new();
    for i in 0u32..3000 {
        batch.put(Table::History, i.to_be_bytes().to_vec(), vec![1]);
    }
    pgb.commit(&batch).unwrap();
    mem.commit(&batch).unwrap();
    for reverse in [false, true] {
        let (p, m) = (
            walk(
                &pgb,
                Table::History,
                Bound::Unbounded,
                Bound::Unbounded,
                reverse,
                5000,
            ),
            walk(
                &mem,
                Table::History,
                Bound::Unbounded,
                Bound::Unbounded,
                reverse,
                5000,
            ),
        );
        assert_eq!(p.len(), m.len());
        assert_eq!(p, m);
    }
    // A transaction id recorded by another host first: a conflict, nothing applied.
    let mut twice = WriteBatch::new();
    twice.put(Table::Txs, 1u32.to_be_bytes().to_vec(), vec![2]);
    twice.put(Table::History, b"not-applied".to_vec(), vec![1]);
    assert!(matches!(
        pgb.commit(&twice),
        Err(semel::StorageError::Conflict(_))
    ));
    assert_eq!(
        pgb.snapshot()
            .unwrap()
            .get(Table::History, b"not-applied")
            .unwrap(),
        None
    );
}

/// One script on a host over PostgreSQL and on one in memory: the same receipts, the
/// same roots; reopened, the same head; `verify` passes.
#[test]
fn a_host_on_postgres_gives_the_receipts_and_roots_of_one_in_memory() {
    let Some(pg) = Pg::start() else { return };
    let url: StoreUrl = pg.url.parse().unwrap();
    let on_pg = Host::open_store(&url, HostOptions::default()).unwrap();
    assert!(on_pg.created_store());
    let in_mem = Host::in_memory().unwrap();
    let d = Transaction::deploy("counter", crate::util::wat("counter"), Vec::new());
    assert_eq!(
        on_pg.submit(&d).unwrap().to_json(),
        in_mem.submit(&d).unwrap().to_json()
    );
    let txs: Vec<Transaction> = (0..40)
        .map(|i| match i % 5 {
            4 => calls(&[("counter", "nope", b"")]),
            _ => calls(&[("counter", "inc", b"")]),
        })
        .collect();
    for chunk in txs.chunks(10) {
        let (x, y) = (on_pg.submit_all(chunk), in_mem.submit_all(chunk));
        for (x, y) in x.into_iter().zip(y) {
            assert_eq!(x.unwrap().to_json(), y.unwrap().to_json());
        }
    }
    for tx in &txs[..5] {
        let again = on_pg.submit(tx).unwrap();
        assert!(again.duplicate);
    }
    assert_eq!(on_pg.state_root().unwrap(), in_mem.state_root().unwrap());
    assert_eq!(count(&on_pg, None), count(&in_mem, None));
    assert_eq!(count(&on_pg, Some(10)), count(&in_mem, Some(10)));
    let info = on_pg.info().unwrap();
    assert_eq!(info.store, pg.url);
    let (version, root) = (on_pg.latest_version(), on_pg.state_root().unwrap());
    drop(on_pg);
    let reopened = Host::open_existing_store(&url, HostOptions::default()).unwrap();
    assert!(!reopened.created_store());
    assert_eq!(
        (reopened.latest_version(), reopened.state_root().unwrap()),
        (version, root)
    );
    assert_eq!(reopened.host_id(), info.host_id);
    reopened.verify().unwrap();
    // A database with no store: opening it only to read is refused, naming it.
    let empty: StoreUrl = pg.database("empty").parse().unwrap();
    let e = Host::open_existing_store(&empty, HostOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no Semel store"), "{e}");
}

/// Two hosts in one process on one database: each sees what the other committed before
/// it runs, reads and queries follow, and neither runs an id the other recorded.
#[test]
fn two_hosts_on_one_database_see_each_others_commits() {
    let Some(pg) = Pg::start() else { return };
    let a = open_host(&pg.url, HostOptions::default());
    let b = open_host(&pg.url, HostOptions::default());
    assert_eq!(a.host_id(), b.host_id());
    deploy(&a, "counter", "counter");
    let inc = calls(&[("counter", "inc", b"")]);
    let on_b = b.submit(&inc).unwrap();
    assert_eq!((on_b.version, on_b.duplicate), (2, false));
    let on_a = a.submit(&inc).unwrap();
    assert_eq!(
        (on_a.version, on_a.duplicate),
        (2, true),
        "a ran an id b recorded"
    );
    let next = a.submit(&calls(&[("counter", "inc", b"")])).unwrap();
    assert_eq!(next.version, 3);
    assert_eq!(count(&b, None), "2", "b's reads follow a's commit");
    assert_eq!(b.state_root().unwrap(), a.state_root().unwrap());
    assert_eq!(b.receipt(&next.tx_id).unwrap().unwrap().version, 3);
    // A contract b has looked up and not found, deployed by a: b's next run finds it.
    let other = calls(&[("other", "inc", b"")]);
    assert_eq!(b.submit(&other).unwrap().status, semel::Status::Reverted);
    deploy(&a, "other", "counter");
    let found = b.submit(&calls(&[("other", "inc", b"")])).unwrap();
    assert_eq!(found.status, semel::Status::Committed, "{:?}", found.error);
    // A contract b has run, migrated by a: b's next run runs the new code.
    let up = semel::Transaction::deploy("up", wat("counter"), Vec::new()).with_admin("alice");
    assert_eq!(a.submit(&up).unwrap().status, semel::Status::Committed);
    let inc_up = || calls(&[("up", "inc", b"")]);
    assert_eq!(b.submit(&inc_up()).unwrap().results[0].output, b"1");
    let migrate =
        semel::Transaction::migrate("up", wat("counter_v2"), Vec::new()).with_sender("alice");
    assert_eq!(a.submit(&migrate).unwrap().status, semel::Status::Committed);
    assert_eq!(
        b.submit(&inc_up()).unwrap().results[0].output,
        b"1011",
        "b runs the code a migrated to"
    );
    // A prune would move the horizon under the other host's feet: refused.
    let e = a.prune(2).unwrap_err();
    assert!(
        matches!(
            e,
            semel::QueryError::Rejected(semel::InputError::PruneShared(_))
        ),
        "{e}"
    );
    assert_eq!(b.horizon(), 0);
    b.verify().unwrap();
}

/// Two hosts busy on one hot key (two threads each, batches of 32 increments): every
/// transaction commits once, and with turns (the default) they take turns to commit
/// instead of running group after group that loses the race to the other's commit.
/// Counted after the first half second, when each host has lost the race that makes
/// it take turns; without turns (the switch's other side) most groups lose.
#[test]
fn two_busy_hosts_take_turns_instead_of_losing_races() {
    let Some(pg) = Pg::start() else { return };
    let setup = open_host(&pg.url, HostOptions::default());
    deploy(&setup, "counter", "counter");
    drop(setup);
    let mut expected = 0u64;
    for turns in [true, false] {
        let options = HostOptions {
            store_turns: turns,
            ..HostOptions::default()
        };
        let hosts: Vec<Arc<Host>> = (0..2)
            .map(|_| Arc::new(open_host(&pg.url, options.clone())))
            .collect();
        let batches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = hosts
            .iter()
            .flat_map(|h| [Arc::clone(h), Arc::clone(h)])
            .map(|host| {
                let (batches, stop) = (Arc::clone(&batches), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut txs = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let batch: Vec<_> =
                            (0..32).map(|_| calls(&[("counter", "inc", b"")])).collect();
                        for r in host.submit_all(&batch) {
                            let r = r.unwrap();
                            assert_eq!(r.status, semel::Status::Committed, "{:?}", r.error);
                            assert!(!r.duplicate);
                        }
                        batches.fetch_add(1, Ordering::Relaxed);
                        txs += 32;
                    }
                    txs
                })
            })
            .collect();
        let lost = || hosts.iter().map(|h| h.lost_races()).sum::<u64>();
        std::thread::sleep(Duration::from_millis(500));
        let before = (lost(), batches.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(1500));
        let (lost, ran) = (
            lost() - before.0,
            u64::try_from(batches.load(Ordering::Relaxed) - before.1).unwrap(),
        );
        stop.store(true, Ordering::Relaxed);
        expected += threads.into_iter().map(|t| t.join().unwrap()).sum::<u64>();
        assert_eq!(
            count(&hosts[1], None),
            expected.to_string(),
            "turns {turns}"
        );
        if turns {
            assert!(
                lost * 10 <= ran,
                "turns: {lost} lost races in {ran} batches"
            );
        } else {
            assert!(
                lost * 4 > ran,
                "no turns: {lost} lost races in {ran} batches"
            );
        }
        hosts[0].verify().unwrap();
    }
}

/// An id found staged by this host in a group that then loses the race (a trigger
/// holds the first `semel_txs` insert half a second, then refuses it as a unique
/// violation) is looked up again by `check`, not answered with the lost race: the
/// retry is a duplicate of the one run that commits.
#[test]
fn a_check_that_finds_its_id_in_a_group_that_loses_the_race_looks_again() {
    let Some(pg) = Pg::start() else { return };
    let host = std::sync::Arc::new(host_with_counter(&pg.url));
    pg.psql(
        "CREATE SEQUENCE attempts;
         CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('attempts') = 1 THEN
             PERFORM pg_sleep(0.5);
             RAISE EXCEPTION 'taken' USING ERRCODE = 'unique_violation';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_once BEFORE INSERT ON semel_txs FOR EACH ROW
           EXECUTE FUNCTION refuse_once();",
    );
    let tx = calls(&[("counter", "inc", b"")]);
    let first = {
        let (host, tx) = (std::sync::Arc::clone(&host), tx.clone());
        std::thread::spawn(move || host.submit(&tx))
    };
    // Inside the half second: the id is staged, its group not yet refused.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let checked = host.check(&tx).unwrap();
    let first = first.join().unwrap().unwrap();
    assert_eq!(first.status, semel::Status::Committed, "{:?}", first.error);
    match checked {
        semel::Check::Recorded(r) => assert_eq!((r.version, r.duplicate), (first.version, true)),
        semel::Check::New(c) => {
            let again = host.submit_checked(vec![c]).remove(0).unwrap();
            assert_eq!((again.version, again.duplicate), (first.version, true));
        }
    }
    let runs: u32 = pg.psql("SELECT last_value FROM attempts").parse().unwrap();
    assert!(
        runs >= 2,
        "the first commit was refused and run again ({runs})"
    );
    assert_eq!(count(&host, None), "1", "one execution");
    pg.psql("DROP TRIGGER refuse_once ON semel_txs");
    host.verify().unwrap();
}

/// A commit that loses every race (a trigger refuses each `semel_txs` insert as a
/// unique violation, as if another host had recorded the id) is run again exactly
/// `STORE_RACE_RETRIES_MAX` times, then answered with the conflict; nothing recorded.
#[test]
fn a_transaction_that_always_loses_the_race_is_run_again_up_to_the_bound() {
    let Some(pg) = Pg::start() else { return };
    let host = host_with_counter(&pg.url);
    // nextval is not rolled back with the refused transaction: it counts the attempts.
    pg.psql(
        "CREATE SEQUENCE attempts;
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           PERFORM nextval('attempts');
           RAISE EXCEPTION 'taken' USING ERRCODE = 'unique_violation';
         END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON semel_txs FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    let version = host.info().unwrap().version;
    let e = host.submit(&calls(&[("counter", "inc", b"")])).unwrap_err();
    assert!(e.to_string().contains("commit conflict"), "{e}");
    let runs: u32 = pg.psql("SELECT last_value FROM attempts").parse().unwrap();
    assert_eq!(runs, 1 + semel::limits::STORE_RACE_RETRIES_MAX);
    pg.psql("DROP TRIGGER refuse ON semel_txs");
    assert_eq!(host.info().unwrap().version, version);
    assert_eq!(count(&host, None), "0");
    host.verify().unwrap();
}

/// A retry of a recorded id is answered with one statement to the database: the
/// lookup of its `semel_txs` row (the server's statement log counts them).
#[test]
fn a_duplicate_is_answered_with_one_round_trip_to_the_database() {
    let Some(pg) = Pg::start() else { return };
    let host = host_with_counter(&pg.url);
    let tx = calls(&[("counter", "inc", b"")]);
    host.submit(&tx).unwrap();
    log_every_statement(&pg);
    pg.psql("SELECT 'semel-mark-start'");
    let retries = 25;
    for _ in 0..retries {
        assert!(host.submit(&tx).unwrap().duplicate);
    }
    pg.psql("SELECT 'semel-mark-end'");
    let log = pg.log();
    let lines: Vec<&str> = log.lines().collect();
    let at = |mark: &str| lines.iter().position(|l| l.contains(mark)).unwrap();
    let (start, end) = (at("semel-mark-start"), at("semel-mark-end"));
    let statements: Vec<&str> = lines[start + 1..end]
        .iter()
        .copied()
        .filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement:"))
        .collect();
    assert_eq!(statements.len(), retries, "{statements:#?}");
    assert!(
        statements
            .iter()
            .all(|l| l.contains("FROM semel_txs WHERE k = $1"))
    );
}

/// Has the server log every statement from now on (for [`statements_of`]).
fn log_every_statement(pg: &Pg) {
    pg.psql("ALTER SYSTEM SET log_statement = 'all'");
    pg.psql("SELECT pg_reload_conf()");
    // The reload reaches the server's processes a moment later.
    std::thread::sleep(Duration::from_millis(300));
}

/// The statements between two marks in the server's statement log (`log_statement`
/// must be `all`), after `f` ran between them.
fn statements_of(pg: &Pg, f: impl FnOnce()) -> Vec<String> {
    pg.psql("SELECT 'semel-mark-start'");
    f();
    pg.psql("SELECT 'semel-mark-end'");
    let log = pg.log();
    let lines: Vec<&str> = log.lines().collect();
    let at = |mark: &str| lines.iter().rposition(|l| l.contains(mark)).unwrap();
    let (start, end) = (at("semel-mark-start"), at("semel-mark-end"));
    lines[start + 1..end]
        .iter()
        .filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement:"))
        .map(|l| (*l).to_owned())
        .collect()
}

/// Turns to commit (the store's lock queue): one backend at a time holds the turn,
/// another's wait for it passes (false, nothing taken), and it passes to the next once
/// ended or once its holder is gone. A host that lost a race takes a turn for its run
/// again and, idle after it, ends the turn by itself (its keeper thread): another
/// waiting for it gets it, where without the keeper it would wait until the database
/// ended the idle transaction (`PG_STATEMENT_MILLIS_MAX`).
#[test]
fn one_backend_at_a_time_holds_the_turn_and_an_idle_host_lets_it_go() {
    let Some(pg) = Pg::start() else { return };
    let host = host_with_counter(&pg.url);
    let a = PostgresBackend::connect(&pg.url, false).unwrap().unwrap();
    let b = PostgresBackend::connect(&pg.url, false).unwrap().unwrap();
    let wait = Duration::from_millis(100);
    assert!(a.take_turn(wait).unwrap());
    assert!(
        a.take_turn(wait).unwrap(),
        "taken again by its holder: still held"
    );
    assert!(!b.take_turn(wait).unwrap(), "a holds the turn");
    a.end_turn();
    assert!(b.take_turn(wait).unwrap(), "a ended its turn");
    drop(b);
    assert!(a.take_turn(wait).unwrap(), "b's holder is gone");
    a.end_turn();

    // The host's first commit is refused as if another host had won the race.
    pg.psql(
        "CREATE SEQUENCE attempts;
         CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('attempts') = 1 THEN
             RAISE EXCEPTION 'taken' USING ERRCODE = 'unique_violation';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_once BEFORE INSERT ON semel_txs FOR EACH ROW
           EXECUTE FUNCTION refuse_once();",
    );
    log_every_statement(&pg);
    let log = statements_of(&pg, || {
        let r = host.submit(&calls(&[("counter", "inc", b"")])).unwrap();
        assert_eq!(r.status, semel::Status::Committed, "{:?}", r.error);
    });
    assert_eq!(host.lost_races(), 1);
    assert!(
        log.iter()
            .any(|l| l.contains("FROM semel_schema FOR UPDATE")),
        "the run again took a turn: {log:#?}"
    );
    assert!(
        a.take_turn(Duration::from_millis(5_000)).unwrap(),
        "the idle host ended its turn"
    );
    a.end_turn();
    assert_eq!(count(&host, None), "1");
    host.verify().unwrap();
}

/// A parallel batch on a shared store reads each entry of its base once: its runs
/// read the base again and again (each run that met no earlier write, each validation
/// of one), and with nothing of this host staged — after another host's commit — each
/// read was a round trip (`HostOptions::remember_base_reads`). Counted in the server's
/// statement log, for a batch of 64 increments of one counter on 2 workers.
#[test]
fn a_parallel_batch_reads_each_entry_of_its_base_once() {
    let Some(pg) = Pg::start() else { return };
    let a = host_with_counter(&pg.url);
    let options = HostOptions {
        concurrency: Concurrency::Optimistic,
        workers: 2,
        ..HostOptions::default()
    };
    let b = open_host(&pg.url, options);
    b.submit(&calls(&[("counter", "inc", b"")])).unwrap();
    log_every_statement(&pg);
    // Another host commits: nothing of b's is staged, its head is stale.
    a.submit(&calls(&[("counter", "inc", b"")])).unwrap();
    let batch: Vec<Transaction> = (0..64).map(|_| calls(&[("counter", "inc", b"")])).collect();
    let log = statements_of(&pg, || {
        for r in b.submit_all(&batch) {
            assert_eq!(r.unwrap().status, semel::Status::Committed);
        }
    });
    let reads: Vec<_> = log
        .iter()
        .filter(|l| l.contains("FROM semel_state WHERE k >= $1 AND k <= $2"))
        .collect();
    // Two entries (the contract's registry entry and its count), each read at most
    // once per worker: both may miss at once. Without the memo, 10 to 27 here.
    assert!(
        reads.len() <= 4,
        "{} reads of state: {reads:#?}",
        reads.len()
    );
    assert_eq!(count(&b, None), "66");
    b.verify().unwrap();
}

/// A batch's ids are looked up in one statement: before the writer lock, and again
/// under it when another host's commit made this host's head stale (which forgets the
/// ids it staged). One statement per transaction there held the writer lock for
/// hundreds of round trips per batch.
#[test]
fn a_batch_looks_its_ids_up_in_one_statement() {
    let Some(pg) = Pg::start() else { return };
    let a = host_with_counter(&pg.url);
    let b = open_host(&pg.url, HostOptions::default());
    log_every_statement(&pg);
    for sequential in [false, true] {
        // Another host commits: `a`'s head is stale at its next batch.
        b.submit(&calls(&[("counter", "inc", b"")])).unwrap();
        let a_seq;
        let host = if sequential {
            let opts = HostOptions {
                concurrency: Concurrency::Sequential,
                ..HostOptions::default()
            };
            a_seq = open_host(&pg.url, opts);
            b.submit(&calls(&[("counter", "inc", b"")])).unwrap();
            &a_seq
        } else {
            &a
        };
        let batch: Vec<Transaction> = (0..50).map(|_| calls(&[("counter", "inc", b"")])).collect();
        let lookups = |log: &[String]| {
            log.iter()
                .filter(|l| l.contains("FROM semel_txs"))
                .cloned()
                .collect::<Vec<_>>()
        };
        let log = statements_of(&pg, || {
            for r in host.submit_all(&batch) {
                assert!(!r.unwrap().duplicate);
            }
        });
        let found = lookups(&log);
        assert_eq!(found.len(), 2, "sequential: {sequential}: {found:#?}");
        assert!(found.iter().all(|l| l.contains("k = ANY")), "{found:#?}");
        // Retried whole: every one a duplicate, answered by one statement.
        let log = statements_of(&pg, || {
            for r in host.submit_all(&batch) {
                assert!(r.unwrap().duplicate);
            }
        });
        assert_eq!(lookups(&log).len(), 1, "{log:#?}");
    }
}

/// `--store`: what it takes and refuses, the data dir as `redb:DIR`, and a PostgreSQL
/// store through the CLI (its URL shown without the password).
#[test]
fn the_store_flag_takes_redb_and_postgres_urls_and_refuses_others() {
    for bad in ["mysql://x/y", "semel-data", "redb:"] {
        let out = semel(&["--store", bad, "info"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not redb:DIR, postgres://"), "{bad}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let redb = format!("redb:{}", d.display());
    let wat = crate::util::repo().join("contracts/wat/counter.wat");
    let out = semel(&[
        "--store",
        &redb,
        "deploy",
        wat.to_str().unwrap(),
        "--name",
        "counter",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = semel(&["--data-dir", d.to_str().unwrap(), "--json", "info"]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["version"], 1, "--data-dir DIR is --store redb:DIR");
    let out = semel(&["--store", &redb, "--data-dir", d.to_str().unwrap(), "info"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give one"));

    let Some(pg) = Pg::start() else { return };
    pg.psql("ALTER USER semel PASSWORD 'hunter2'");
    let with_password = pg.url.replace("semel@", "semel:hunter2@");
    let out = semel(&["--store", &with_password, "info"]);
    assert_eq!(out.status.code(), Some(2), "reading creates nothing");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    let out = semel(&[
        "--store",
        &with_password,
        "deploy",
        wat.to_str().unwrap(),
        "--name",
        "counter",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("created a new store at postgres://semel:***@")
    );
    let out = semel(&["--store", &with_password, "call", "counter", "inc"]);
    assert!(out.status.success());
    let out = semel(&["--store", &with_password, "--json", "info"]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["version"], 2);
    assert!(
        !info["store"].as_str().unwrap().contains("hunter2"),
        "{info}"
    );
    let out = semel(&["--store", &with_password, "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `semel bench --store` is one host of the store, beside what is there.
    let bench = pg.database("bench");
    let out = semel(&[
        "--store", &bench, "bench", "--txs", "40", "--batch", "8", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["txs"], 40);
    let out = semel(&["--store", &bench, "--json", "info"]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["version"], 41, "the deploy and 40 increments");
    let out = semel(&["--store", &bench, "bench", "--in-memory"]);
    assert_eq!(out.status.code(), Some(2));
}

fn semel(args: &[&str]) -> std::process::Output {
    std::process::Command::new(semel_bin())
        .args(args)
        .output()
        .unwrap()
}

/// Every distinct id of `ids` sent again to `url`: 200 each, a duplicate for each of
/// `acked` (answered committed before), and the counter is one increment per distinct
/// id; the log is gapless; `semel verify --store` passes.
fn check_once_each(url: &str, store: &str, ids: &[String], loaded: &Loaded) {
    let a = agent();
    check_acknowledged(url, loaded);
    let mut distinct: Vec<&String> = ids.iter().collect();
    distinct.sort();
    distinct.dedup();
    for id in &distinct {
        let (s, _, r) = post(&a, &format!("{url}/v1/tx"), &inc(id));
        assert_eq!(s, 200, "retry of {id}: {r}");
    }
    let (_, _, q) = post(
        &a,
        &format!("{url}/v1/query"),
        r#"{"contract":"counter","method":"get"}"#,
    );
    assert_eq!(
        q["output"].as_str().unwrap(),
        distinct.len().to_string(),
        "one increment per distinct id"
    );
    let (_, _, log) = get(&a, &format!("{url}/v1/log?limit=10000"));
    let versions: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = (1..=u64::try_from(distinct.len()).unwrap() + 1).collect();
    assert_eq!(versions, want, "the log is one gapless order");
    let out = semel(&["--store", store, "verify"]);
    assert!(
        out.status.success(),
        "verify --store: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn deploy_counter(url: &str) {
    let (s, _, r) = post(
        &agent(),
        &format!("{url}/v1/tx"),
        &counter_deploy("00000000-0000-4000-8000-000000000001"),
    );
    assert_eq!(s, 200, "{r}");
}

/// Two `semel serve` hosts on one database, the same ids sent to both at once.
#[test]
fn two_servers_given_the_same_ids_at_once_execute_each_once() {
    servers_given_the_same_ids_at_once_execute_each_once(2);
}

/// Three `semel serve` hosts on one database, the same ids sent to all of them at once.
#[test]
fn three_servers_given_the_same_ids_at_once_execute_each_once() {
    servers_given_the_same_ids_at_once_execute_each_once(3);
}

/// `hosts` `semel serve` hosts on one database, the same ids sent to all of them at
/// once, in two orders each: one execution per id, the same receipt from every host.
fn servers_given_the_same_ids_at_once_execute_each_once(hosts: usize) {
    let Some(pg) = Pg::start() else { return };
    let servers: Vec<Server> = (0..hosts)
        .map(|_| Server::start_store(&pg.url, &[]))
        .collect();
    deploy_counter(&servers[0].url);
    let ids: Vec<String> = (0..60).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let ids = Arc::new(ids);
    let handles: Vec<_> = servers
        .iter()
        .flat_map(|s| (0..2).map(move |k| (s.url.clone(), k)))
        .map(|(url, k)| {
            let ids = Arc::clone(&ids);
            std::thread::spawn(move || {
                let a = agent();
                let order: Vec<&String> = match k {
                    0 => ids.iter().collect(),
                    _ => ids.iter().rev().collect(),
                };
                order
                    .into_iter()
                    .map(|id| {
                        let (s, _, r) = post(&a, &format!("{url}/v1/tx"), &inc(id));
                        assert_eq!(s, 200, "{r}");
                        (id.clone(), r)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut by_id: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for h in handles {
        for (id, r) in h.join().unwrap() {
            by_id.entry(id).or_default().push(r);
        }
    }
    for (id, answers) in &by_id {
        let fresh = answers.iter().filter(|r| r["duplicate"] == false).count();
        assert!(fresh <= 1, "{id} ran {fresh} times");
        let strip = |r: &Value| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("duplicate");
            r
        };
        for r in answers {
            assert_eq!(strip(r), strip(&answers[0]), "{id}: receipts differ");
        }
    }
    // Every host agrees on the head.
    let heads: Vec<Value> = servers
        .iter()
        .map(|s| get(&agent(), &format!("{}/v1/health", s.url)).2)
        .collect();
    for h in &heads {
        assert_eq!(h["version"], heads[0]["version"]);
        assert_eq!(h["state_root"], heads[0]["state_root"]);
    }
    // Each host keeps at most PG_CONNECTIONS_MAX connections: all of them, and psql.
    let open: usize = pg
        .psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'semel'")
        .parse()
        .unwrap();
    let bound = 3 * usize::try_from(semel::limits::PG_CONNECTIONS_MAX).unwrap();
    assert!((3..=bound).contains(&open), "{open} connections");
    check_once_each(&servers[1].url, &pg.url, &ids, &Loaded::default());
}

/// Two busy hosts on one database: both make progress and every request commits — a
/// host that lost a race runs again under the commit lock, so neither starves.
#[test]
fn two_busy_hosts_both_commit_every_request() {
    let Some(pg) = Pg::start() else { return };
    let servers: Vec<Server> = (0..2).map(|_| Server::start_store(&pg.url, &[])).collect();
    deploy_counter(&servers[0].url);
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<Vec<_>> = servers.iter().map(|s| load(&s.url, 3, &stop)).collect();
    std::thread::sleep(Duration::from_millis(2000));
    stop.store(true, Ordering::Relaxed);
    let mut all = Loaded::default();
    for (host, threads) in handles.into_iter().enumerate() {
        let one = Loaded::join(threads);
        assert!(!one.acked.is_empty(), "host {host} starved");
        assert_eq!(
            one.acked.len(),
            one.sent.len(),
            "host {host}: every request committed: {:?}",
            one.failed
        );
        all.sent.extend(one.sent);
        all.acked.extend(one.acked);
    }
    check_once_each(&servers[0].url, &pg.url, &all.sent, &all);
}

/// Load on two hosts over one database, one of them killed with SIGKILL again and
/// again and started again.
#[test]
fn kill_9_of_a_host_during_commits_loses_nothing_and_runs_nothing_twice() {
    let Some(pg) = Pg::start() else { return };
    let steady = Server::start_store(&pg.url, &[]);
    deploy_counter(&steady.url);
    let stop = Arc::new(AtomicBool::new(false));
    let on_steady = load(&steady.url, 2, &stop);
    let mut all = Loaded::default();
    for round in 0..5u64 {
        let mut victim = Server::start_store(&pg.url, &[]);
        let stop_victim = Arc::new(AtomicBool::new(false));
        let on_victim = load(&victim.url, 2, &stop_victim);
        std::thread::sleep(Duration::from_millis(150 + 40 * round));
        victim.kill9();
        stop_victim.store(true, Ordering::Relaxed);
        all.extend(Loaded::join(on_victim));
    }
    stop.store(true, Ordering::Relaxed);
    all.extend(Loaded::join(on_steady));
    check_once_each(&steady.url, &pg.url, &all.sent, &all);
}

/// The database restarted (`-m fast`) and killed (`-m immediate`, then started) under
/// load on two hosts: requests meanwhile get 503 or wait, never a wrong answer; after,
/// every id is recorded at most once and the state agrees.
#[test]
fn the_database_restarted_and_killed_under_load() {
    let Some(pg) = Pg::start() else { return };
    let servers: Vec<Server> = (0..2).map(|_| Server::start_store(&pg.url, &[])).collect();
    deploy_counter(&servers[0].url);
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = servers
        .iter()
        .flat_map(|s| load(&s.url, 2, &stop))
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    pg.restart_server("fast");
    std::thread::sleep(Duration::from_millis(400));
    pg.stop_server("immediate");
    // Meanwhile a host answers 503 with Retry-After: the store cannot be reached.
    let (s, _, r) = post(
        &agent(),
        &format!("{}/v1/tx", servers[1].url),
        &inc(&uuid::Uuid::new_v4().to_string()),
    );
    assert_eq!(s, 503, "{r}");
    assert_eq!(r["type"], "urn:semel:problem:host-failure");
    pg.start_server();
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let all = Loaded::join(handles);
    assert!(!all.acked.is_empty(), "the load got receipts");
    check_once_each(&servers[1].url, &pg.url, &all.sent, &all);
}

/// A host cut off from its database for a few seconds under load (the server stopped,
/// then started): 503 and exit 4 meanwhile, service again after; every acknowledged id
/// a duplicate on retry, one execution per id, `verify` passes.
#[test]
fn a_host_cut_off_from_the_database_answers_503_then_serves_again() {
    let Some(pg) = Pg::start() else { return };
    let server = Server::start_store(&pg.url, &[]);
    deploy_counter(&server.url);
    let stop = Arc::new(AtomicBool::new(false));
    let handles = load(&server.url, 2, &stop);
    std::thread::sleep(Duration::from_millis(300));
    pg.stop_server("fast");
    let started = Instant::now();
    let (s, _, r) = post(
        &agent(),
        &format!("{}/v1/tx", server.url),
        &inc(&uuid::Uuid::new_v4().to_string()),
    );
    assert_eq!(s, 503, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "it answered in bounded time"
    );
    let (s, _, _) = get(&agent(), &format!("{}/v1/contracts", server.url));
    assert_eq!(s, 503);
    let out = semel(&["--store", &pg.url, "call", "counter", "inc"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(2000));
    pg.start_server();
    let id = uuid::Uuid::new_v4().to_string();
    let (s, _, r) = post(&agent(), &format!("{}/v1/tx", server.url), &inc(&id));
    assert_eq!(s, 200, "{r}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut all = Loaded::join(handles);
    assert!(!all.acked.is_empty(), "the load got receipts");
    all.sent.push(id.clone());
    all.acked.push((id, r["version"].as_u64().unwrap()));
    check_once_each(&server.url, &pg.url, &all.sent, &all);
}

/// Serialization failures and deadlocks (SQLSTATE 40001, then 40P01), raised by a
/// trigger at random in a third of the commits, are retried; raised in every commit,
/// the commit gives up with 503 and records nothing.
#[test]
fn injected_serialization_failures_are_retried_and_bounded() {
    let Some(pg) = Pg::start() else { return };
    let server = Server::start_store(&pg.url, &[]);
    deploy_counter(&server.url);
    pg.psql(
        "CREATE TABLE fail_rate (p float8 NOT NULL, code text NOT NULL);
         INSERT INTO fail_rate VALUES (0.33, '40001');
         CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS $$
         DECLARE c text;
         BEGIN
           SELECT code INTO c FROM fail_rate;
           IF random() < (SELECT p FROM fail_rate) THEN
             RAISE EXCEPTION 'injected' USING ERRCODE = c;
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER inject BEFORE UPDATE ON semel_sessions FOR EACH ROW EXECUTE FUNCTION inject();",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let handles = load(&server.url, 3, &stop);
    std::thread::sleep(Duration::from_millis(800));
    pg.psql("UPDATE fail_rate SET code = '40P01'");
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let all = Loaded::join(handles);
    let acked = all.acked.len();
    assert!(
        acked * 2 > all.sent.len(),
        "most commits got through: {acked} of {}",
        all.sent.len()
    );
    pg.psql("UPDATE fail_rate SET p = 2, code = '40001'");
    let before = get(&agent(), &format!("{}/v1/health", server.url)).2;
    let (s, _, r) = post(
        &agent(),
        &format!("{}/v1/tx", server.url),
        &inc(&uuid::Uuid::new_v4().to_string()),
    );
    assert_eq!(s, 503, "{r}");
    assert!(r["detail"].as_str().unwrap().contains("40001"), "{r}");
    pg.psql("UPDATE fail_rate SET p = 0");
    let after = get(&agent(), &format!("{}/v1/health", server.url)).2;
    assert_eq!(before["version"], after["version"], "nothing was recorded");
    check_once_each(&server.url, &pg.url, &all.sent, &all);
}

/// Where a [`CuttingProxy`] cuts a connection at its next `COMMIT`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Not at all.
    Off,
    /// The database never gets the `COMMIT`: the transaction is rolled back.
    Before,
    /// The database commits; its answer is dropped.
    After,
}

/// A TCP proxy between a host and its database that cuts a connection at its next
/// `COMMIT`, as `cut` says: either way the host cannot know whether it committed.
struct CuttingProxy {
    port: u16,
    cut: Arc<std::sync::Mutex<Cut>>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(to: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::Mutex::new(Cut::Off));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (armed, count) = (Arc::clone(&cut), Arc::clone(&cuts));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let (armed, count) = (Arc::clone(&armed), Arc::clone(&count));
                // Set once this connection's COMMIT went on: its answer is dropped.
                let drop_answer = Arc::new(AtomicBool::new(false));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_in, mut c_out) = (server, client);
                let dropping = Arc::clone(&drop_answer);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        let n = match s_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if dropping.load(Ordering::SeqCst) || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        let n = match c_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
                        let mode = match commit {
                            true => std::mem::replace(&mut *armed.lock().unwrap(), Cut::Off),
                            false => Cut::Off,
                        };
                        match mode {
                            Cut::Off => {}
                            Cut::Before => {
                                count.fetch_add(1, Ordering::SeqCst);
                                let _ = c_in.shutdown(std::net::Shutdown::Both);
                                let _ = s_out.shutdown(std::net::Shutdown::Both);
                                break;
                            }
                            Cut::After => {
                                count.fetch_add(1, Ordering::SeqCst);
                                drop_answer.store(true, Ordering::SeqCst);
                                let _ = s_out.write_all(&buf[..n]);
                                // The answer (read and dropped) ends the host's side.
                                std::thread::sleep(Duration::from_millis(200));
                                let _ = s_out.shutdown(std::net::Shutdown::Both);
                                break;
                            }
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { port, cut, cuts }
    }
}

/// The connection breaks during `COMMIT` — before the database got it, and after it
/// committed: the host asks the database whether it committed before it answers, and
/// answers committed, once: never failed, never run twice.
#[test]
fn a_connection_lost_during_commit_is_resolved_before_anyone_is_answered() {
    let Some(pg) = Pg::start() else { return };
    let proxy = CuttingProxy::start(pg.port);
    let url = format!("postgres://semel@127.0.0.1:{}/postgres", proxy.port);
    let host = host_with_counter(&url);
    let rounds = [Cut::After, Cut::Before, Cut::After, Cut::Before];
    for (round, cut) in (1u64..).zip(rounds) {
        let tokens_before = pg.psql("SELECT count(*) FROM semel_sessions");
        *proxy.cut.lock().unwrap() = cut;
        let tx = calls(&[("counter", "inc", b"")]);
        let r = host.submit(&tx).unwrap();
        assert_eq!(
            (r.version, r.duplicate),
            (round + 1, false),
            "round {round}"
        );
        assert_eq!(
            proxy.cuts.load(Ordering::SeqCst),
            usize::try_from(round).unwrap()
        );
        assert!(host.submit(&tx).unwrap().duplicate);
        assert_eq!(count(&host, None), round.to_string(), "committed once");
        // Resolved inside the backend: the host kept its session.
        assert_eq!(
            pg.psql("SELECT count(*) FROM semel_sessions"),
            tokens_before
        );
    }
    host.verify().unwrap();
}
