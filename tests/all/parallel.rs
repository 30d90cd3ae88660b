//! The parallel executors against the sequential one (interface §5: the mode and the
//! worker count never change a result), in the manner of Aptos' `proptest_types`
//! baseline: generated batches — hot and cold keys, reverts, out of gas at random
//! limits, nested calls, deploys inside the batch, `storage_next` walks over keys that
//! others insert and delete, `version()`, repeated and conflicting ids, declared access
//! sets right and wrong, deploys of code new to the store, puts over many cold keys —
//! run with 1, 2, 4 and 8 workers (more than this machine's cores) in both parallel
//! modes, those with 4 and 8 with random delays in the scheduler, must give
//! byte-identical receipts, state and roots to one at a time, and run in parallel (no
//! fallback).

use proptest::prelude::*;
use semel::storage::MemoryBackend;
use semel::{
    AccessSet, Concurrency, ContractAccess, Host, HostOptions, KeySpec, Status, SubmitError,
    Transaction, Uuid,
};

use crate::util::{deploy, forward, wat};

/// One generated transaction.
#[derive(Debug, Clone)]
enum Op {
    Inc(u8),
    IncThenFail(u8),
    /// Counter `inc` with a gas limit that may run out part way.
    IncWithGas(u8, u64),
    Spin(u64),
    Put(u8, u8),
    Del(u8),
    List(bool),
    ForwardInc(u8),
    ForwardFail,
    Stamp,
    Deploy(u8),
    /// A deploy of code no earlier transaction stored (the batch supplies it to the
    /// calls after it).
    DeployNew(u8),
    IncLate(u8),
    /// A put of one of 200 cold keys: few conflicts, as transfers between many accounts.
    PutCold(u8, u8),
    /// Two calls: a counter and a key.
    Both(u8, u8),
    /// The id of an earlier transaction of the batch, with the same content or other.
    Repeat(usize, bool),
}

/// Whether and how an op declares its access set.
#[derive(Debug, Clone, Copy)]
enum Declare {
    No,
    Right,
    Wrong,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3).prop_map(Op::Inc),
        1 => (0u8..3).prop_map(Op::IncThenFail),
        1 => (0u8..3, 1_000u64..40_000).prop_map(|(c, g)| Op::IncWithGas(c, g)),
        1 => (1_000u64..100_000).prop_map(Op::Spin),
        4 => (0u8..5, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..5).prop_map(Op::Del),
        2 => any::<bool>().prop_map(Op::List),
        2 => (0u8..3).prop_map(Op::ForwardInc),
        1 => Just(Op::ForwardFail),
        1 => Just(Op::Stamp),
        1 => (0u8..2).prop_map(Op::Deploy),
        1 => (0u8..2).prop_map(Op::DeployNew),
        2 => (0u8..2).prop_map(Op::IncLate),
        4 => (0u8..200, any::<u8>()).prop_map(|(k, v)| Op::PutCold(k, v)),
        2 => (0u8..3, 0u8..5).prop_map(|(c, k)| Op::Both(c, k)),
        1 => (0usize..64, any::<bool>()).prop_map(|(i, same)| Op::Repeat(i, same)),
    ]
}

fn declare() -> impl Strategy<Value = Declare> {
    prop_oneof![3 => Just(Declare::No), 6 => Just(Declare::Right), 1 => Just(Declare::Wrong)]
}

fn key(k: u8) -> Vec<u8> {
    // Keys "a0", "a1", "b2"…: walks over prefix "a" meet inserts and deletes.
    let p = if k < 2 { b'a' } else { b'b' };
    vec![p, b'0' + k]
}

fn write(contract: &str, keys: &[&[u8]]) -> ContractAccess {
    ContractAccess {
        contract: contract.into(),
        read: Vec::new(),
        write: keys.iter().map(|k| KeySpec::Key(k.to_vec())).collect(),
    }
}

/// The transaction of `op` (a repeat is made from the batch so far) and its access set.
fn transaction(op: &Op, declare: Declare, n: usize, batch: &[Transaction]) -> Transaction {
    let counter = |c: u8| format!("c{c}");
    let (tx, set) = match op {
        Op::Inc(c) => (
            Transaction::call(&counter(*c), "inc", Vec::new()),
            vec![write(&counter(*c), &[b"count"])],
        ),
        Op::IncThenFail(c) => (
            Transaction::call(&counter(*c), "inc_then_fail", Vec::new()),
            vec![write(&counter(*c), &[b"count"])],
        ),
        Op::IncWithGas(c, gas) => (
            Transaction::call(&counter(*c), "inc", Vec::new()).with_gas_limit(*gas),
            vec![write(&counter(*c), &[b"count"])],
        ),
        Op::Spin(gas) => (
            Transaction::call("c0", "spin", Vec::new()).with_gas_limit(*gas),
            vec![],
        ),
        Op::Put(k, v) => {
            let mut args = vec![2];
            args.extend(key(*k));
            args.push(*v);
            (
                Transaction::call("kv", "put", args),
                vec![write("kv", &[&key(*k)])],
            )
        }
        Op::Del(k) => (
            Transaction::call("kv", "del", key(*k)),
            vec![write("kv", &[&key(*k)])],
        ),
        Op::List(all) => {
            let prefix = if *all { Vec::new() } else { b"a".to_vec() };
            (
                Transaction::call("kv", "list", prefix.clone()),
                vec![ContractAccess {
                    contract: "kv".into(),
                    read: vec![KeySpec::Prefix(prefix)],
                    write: Vec::new(),
                }],
            )
        }
        Op::ForwardInc(c) => (
            Transaction::call("proxy", "forward", forward(&counter(*c), "inc", b"")),
            vec![
                write("proxy", &[b"before", b"code"]),
                write(&counter(*c), &[b"count"]),
            ],
        ),
        Op::ForwardFail => (
            Transaction::call("proxy", "forward", forward("c1", "inc_then_fail", b"")),
            vec![
                write("proxy", &[b"before", b"code"]),
                write("c1", &[b"count"]),
            ],
        ),
        Op::Stamp => (
            Transaction::call("clock", "stamp", Vec::new()),
            vec![write("clock", &[b"last"])],
        ),
        Op::Deploy(l) => (
            Transaction::deploy(&format!("late{l}"), wat("counter"), Vec::new()),
            vec![],
        ),
        Op::DeployNew(l) => (
            Transaction::deploy(&format!("late{l}"), wat("counter_v2"), Vec::new()),
            vec![],
        ),
        Op::PutCold(k, v) => {
            let cold = [b'z', *k];
            let mut args = vec![2];
            args.extend(cold);
            args.push(*v);
            (
                Transaction::call("kv", "put", args),
                vec![write("kv", &[&cold])],
            )
        }
        Op::IncLate(l) => (
            Transaction::call(&format!("late{l}"), "inc", Vec::new()),
            vec![write(&format!("late{l}"), &[b"count"])],
        ),
        Op::Both(c, k) => {
            let mut args = vec![2];
            args.extend(key(*k));
            args.push(b'x');
            (
                crate::util::calls(&[(&counter(*c), "inc", b""), ("kv", "put", &args)]),
                vec![write(&counter(*c), &[b"count"]), write("kv", &[&key(*k)])],
            )
        }
        Op::Repeat(i, same) => {
            let Some(earlier) = batch.get(i % batch.len().max(1)) else {
                return Transaction::call("c0", "inc", Vec::new()).with_id(id(n));
            };
            let mut tx = earlier.clone();
            if !same {
                tx.gas_limit += 1;
            }
            return tx;
        }
    };
    let tx = tx.with_id(id(n));
    match declare {
        Declare::No => tx,
        Declare::Right => tx.with_access(AccessSet { contracts: set }),
        // Declares another counter's key: the access is undeclared, the run reverts.
        Declare::Wrong => tx.with_access(AccessSet {
            contracts: vec![write("c2", &[b"nothing"])],
        }),
    }
}

fn id(n: usize) -> Uuid {
    Uuid::from_u128(0x5e3e_1000_0000_0000_0000_0000_0000_0000 + u128::try_from(n).unwrap())
}

/// A host in memory with the fixture contracts, and a few keys to walk.
fn host(concurrency: Concurrency, workers: usize, delays: Option<u64>) -> Host {
    let options = HostOptions {
        concurrency,
        workers,
        scheduler_delays: delays,
        ..HostOptions::default()
    };
    let host = Host::with_backend(Box::new(MemoryBackend::new()), None, options).unwrap();
    for c in ["c0", "c1", "c2"] {
        deploy(&host, c, "counter");
    }
    deploy(&host, "kv", "kv");
    deploy(&host, "proxy", "proxy");
    deploy(&host, "clock", "clock");
    for k in [0u8, 2, 3] {
        let mut args = vec![2];
        args.extend(key(k));
        args.push(b'0');
        host.submit(&Transaction::call("kv", "put", args)).unwrap();
    }
    host
}

/// Everything a batch's outcome is: each result, and the state it leaves.
fn outcome(host: &Host, batch: &[Transaction]) -> (Vec<String>, String, Vec<String>) {
    let results = host
        .submit_all(batch)
        .into_iter()
        .map(|r| match r {
            Ok(receipt) => receipt.to_json().to_string(),
            Err(SubmitError::Conflict { id, version }) => format!("conflict {id} {version}"),
            Err(e) => panic!("no host failure or refusal is generated: {e}"),
        })
        .collect();
    let mut state: Vec<String> = ["c0", "c1", "c2", "kv", "proxy", "clock", "late0", "late1"]
        .iter()
        .map(|c| match host.state(c, None, b"") {
            Ok(listing) => format!("{c}: {listing:?}"),
            Err(e) => format!("{c}: {e}"),
        })
        .collect();
    // The events index the batch's rows added, as a listing reads it.
    let every = semel::EventFilter {
        limit: semel::limits::EVENTS_LIST_MAX,
        ..semel::EventFilter::default()
    };
    state.push(format!("events: {:?}", host.events(&every).unwrap()));
    (results, host.state_root().unwrap().to_string(), state)
}

fn batch_of(ops: &[(Op, Declare)]) -> Vec<Transaction> {
    let mut batch = Vec::new();
    for (n, (op, declare)) in ops.iter().enumerate() {
        let tx = transaction(op, *declare, n, &batch);
        batch.push(tx);
    }
    batch
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_mode_and_worker_count_gives_the_sequential_results(
        ops in proptest::collection::vec((op(), declare()), 2..64),
        seed in any::<u64>(),
    ) {
        let batch = batch_of(&ops);
        let expected = outcome(&host(Concurrency::Sequential, 1, None), &batch);
        for (mode, workers, delays) in [
            (Concurrency::Optimistic, 1, None),
            (Concurrency::Optimistic, 2, None),
            (Concurrency::Optimistic, 4, Some(seed)),
            (Concurrency::Optimistic, 8, Some(seed ^ 1)),
            (Concurrency::Pessimistic, 1, None),
            (Concurrency::Pessimistic, 2, None),
            (Concurrency::Pessimistic, 4, Some(seed ^ 2)),
            (Concurrency::Pessimistic, 8, Some(seed ^ 3)),
        ] {
            let host = host(mode, workers, delays);
            let got = outcome(&host, &batch);
            prop_assert_eq!(&got, &expected, "{:?} with {} workers", mode, workers);
            // It ran in parallel: no generated batch falls back to sequential.
            let stats = host.parallel_stats();
            prop_assert_eq!((stats.batches(), stats.fallbacks()), (1, 0), "{:?} {}", mode, workers);
        }
    }
}

#[test]
fn an_undeclared_access_reverts_in_every_mode_naming_the_key() {
    for mode in [
        Concurrency::Sequential,
        Concurrency::Optimistic,
        Concurrency::Pessimistic,
    ] {
        let host = host(mode, 2, None);
        let wrong = Transaction::call("c0", "inc", Vec::new()).with_access(AccessSet {
            contracts: vec![write("c0", &[b"other"])],
        });
        let right = Transaction::call("c1", "inc", Vec::new()).with_access(AccessSet {
            contracts: vec![write("c1", &[b"count"])],
        });
        let results = host.submit_all(&[wrong, right]);
        let wrong = results[0].as_ref().unwrap();
        assert_eq!(wrong.status, Status::Reverted, "{mode:?}");
        let error = wrong.error.as_deref().unwrap();
        assert!(
            error.contains("undeclared access") && error.contains("c0") && error.contains("count"),
            "{error}"
        );
        assert_eq!(results[1].as_ref().unwrap().status, Status::Committed);
    }
}

#[test]
fn hot_keys_conflict_and_are_re_executed_to_the_same_result() {
    // Every transaction increments one counter: each run but the first in order reads a
    // write of the one before it.
    let batch: Vec<_> = (0..200)
        .map(|n| Transaction::call("c0", "inc", Vec::new()).with_id(id(n)))
        .collect();
    let expected = outcome(&host(Concurrency::Sequential, 1, None), &batch);
    for seed in 0..3 {
        let parallel = host(Concurrency::Optimistic, 4, Some(seed));
        let got = outcome(&parallel, &batch);
        assert_eq!(got, expected);
        let stats = parallel.parallel_stats();
        assert_eq!(
            (stats.batches(), stats.fallbacks()),
            (1, 0),
            "ran in parallel"
        );
        assert!(stats.reexecutions() > 0, "conflicts were re-executed");
    }
    let last = expected.0.last().unwrap();
    assert!(last.contains(r#""output":"200""#), "{last}");
}

/// Every host function that reads state, in a batch where each transaction's read is of
/// what the one before it wrote: run optimistic on 4 workers (random delays, several
/// seeds, every third transaction's first run held back until the next two ran, so that
/// even a loaded machine's schedule has them read first), the reads are invalidated and
/// re-run, and the results are the sequential
/// ones. `storage_get` (a counter's `inc`), the old value a blind `storage_set` and a
/// `storage_remove` read, `storage_next` walks over keys others insert and remove, and
/// the registry read of `call` (a contract deployed in the batch, called directly and
/// from another contract).
#[test]
fn every_state_reading_path_is_invalidated_and_re_run_to_the_sequential_result() {
    let put = |k: &[u8], v: u8| {
        let mut args = vec![u8::try_from(k.len()).unwrap()];
        args.extend_from_slice(k);
        args.push(v);
        Transaction::call("kv", "put", args)
    };
    let paths: Vec<(&str, Vec<Transaction>)> = vec![
        (
            "storage_get",
            (0..60)
                .map(|_| Transaction::call("c0", "inc", Vec::new()))
                .collect(),
        ),
        (
            "storage_set's old value",
            (0..60).map(|i| put(b"a0", i)).collect(),
        ),
        (
            "storage_remove's old value",
            (0..60)
                .map(|i| match i % 2 {
                    0 => put(b"a1", i),
                    _ => Transaction::call("kv", "del", b"a1".to_vec()),
                })
                .collect(),
        ),
        (
            "storage_next",
            (0..60)
                .map(|i| match i % 3 {
                    0 => put(&[b'a', b'5' + i % 4], i),
                    1 => Transaction::call("kv", "del", vec![b'a', b'5' + (i + 1) % 4]),
                    _ => Transaction::call("kv", "list", b"a".to_vec()),
                })
                .collect(),
        ),
        (
            "call's registry read",
            std::iter::once(Transaction::deploy("late0", wat("counter"), Vec::new()))
                .chain((0..59).map(|i| match i % 2 {
                    0 => Transaction::call("late0", "inc", Vec::new()),
                    _ => Transaction::call("proxy", "forward", forward("late0", "inc", b"")),
                }))
                .collect(),
        ),
    ];
    for (path, txs) in paths {
        let batch: Vec<Transaction> = txs
            .into_iter()
            .enumerate()
            .map(|(n, tx)| tx.with_id(id(n)))
            .collect();
        let expected = outcome(&host(Concurrency::Sequential, 1, None), &batch);
        let mut reexecutions = 0;
        for seed in 0..4 {
            let parallel = host(Concurrency::Optimistic, 4, Some(seed));
            assert_eq!(outcome(&parallel, &batch), expected, "{path}, seed {seed}");
            let stats = parallel.parallel_stats();
            assert_eq!((stats.batches(), stats.fallbacks()), (1, 0), "{path}");
            reexecutions += stats.reexecutions();
        }
        assert!(reexecutions > 0, "{path}: no read was invalidated");
    }
}

/// `simulate` records what a transaction used, callees included — keys read and
/// written, and the prefix a walk covered — and records nothing: declared, that set lets
/// the transaction commit, in every mode.
#[test]
fn simulate_finds_the_keys_of_callees_and_walks_and_records_nothing() {
    let host = host(Concurrency::Optimistic, 2, None);
    let before = host.state_root().unwrap();
    let batch = vec![
        Transaction::call("proxy", "forward", forward("c1", "inc", b"")).with_id(id(1)),
        Transaction::call("kv", "list", b"a".to_vec()).with_id(id(2)),
    ];
    let simulated: Vec<_> = host
        .simulate(&batch)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(host.state_root().unwrap(), before, "nothing recorded");
    let find = |set: &AccessSet, contract: &str| {
        set.contracts
            .iter()
            .find(|c| c.contract == contract)
            .cloned()
            .unwrap_or_else(|| panic!("{contract} in {set:?}"))
    };
    // The callee's key, written, beside the proxy's own.
    let forward = &simulated[0].access;
    assert!(
        find(forward, "c1")
            .write
            .contains(&KeySpec::Key(b"count".to_vec())),
        "{forward:?}"
    );
    assert!(!find(forward, "proxy").write.is_empty(), "{forward:?}");
    // The walk's prefix, read.
    let list = &simulated[1].access;
    assert!(
        find(list, "kv")
            .read
            .contains(&KeySpec::Prefix(b"a".to_vec())),
        "{list:?}"
    );
    // Declared, each set covers its transaction: committed in every mode, with the
    // receipt the simulation gave.
    for mode in [
        Concurrency::Sequential,
        Concurrency::Optimistic,
        Concurrency::Pessimistic,
    ] {
        let host = crate::parallel::host(mode, 2, None);
        let declared: Vec<Transaction> = batch
            .iter()
            .zip(&simulated)
            .map(|(tx, s)| tx.clone().with_access(s.access.clone()))
            .collect();
        for (r, s) in host.submit_all(&declared).into_iter().zip(&simulated) {
            let r = r.unwrap();
            assert_eq!(r.status, Status::Committed, "{mode:?}: {:?}", r.error);
            assert_eq!(r.results, s.receipt.results, "{mode:?}");
        }
    }
}

/// Concurrent submitters gathered into parallel batches (`HostOptions::gather`): every
/// submission commits once, versions are one gapless order, and a re-execution of the
/// log gives the same receipts and roots.
#[test]
fn gathered_submitters_commit_once_each_in_one_order() {
    for mode in [Concurrency::Optimistic, Concurrency::Pessimistic] {
        let options = HostOptions {
            concurrency: mode,
            workers: 2,
            gather: true,
            ..HostOptions::default()
        };
        let host = std::sync::Arc::new(
            Host::with_backend(Box::new(MemoryBackend::new()), None, options).unwrap(),
        );
        deploy(&host, "c0", "counter");
        deploy(&host, "kv", "kv");
        let before = host.latest_version();
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let host = std::sync::Arc::clone(&host);
                std::thread::spawn(move || {
                    (0..40u8)
                        .map(|i| {
                            let tx = match i % 2 {
                                0 => Transaction::call("c0", "inc", Vec::new()),
                                _ => Transaction::call("kv", "put", vec![2, b'k', t, i]),
                            };
                            let r = host.submit(&tx).unwrap();
                            assert_eq!(r.status, Status::Committed);
                            r.version
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut versions: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        versions.sort_unstable();
        let want: Vec<u64> = (before + 1..=before + 320).collect();
        assert_eq!(versions, want, "{mode:?}: one gapless order");
        let count = host.query("c0", "get", b"", None).unwrap().output;
        assert_eq!(count, b"160", "{mode:?}");
        assert!(
            host.parallel_stats().batches() > 0,
            "{mode:?}: some submitters were gathered into a batch"
        );
        host.verify().unwrap();
    }
}
