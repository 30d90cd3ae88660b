//! The parallel executors against the sequential one (interface §5: the mode and the
//! worker count never change a result), in the manner of Aptos' `proptest_types`
//! baseline: generated batches — hot and cold keys, reverts, out of gas at random
//! limits, nested calls, deploys inside the batch, `storage_next` walks over keys that
//! others insert and delete, `version()`, repeated and conflicting ids, declared access
//! sets right and wrong — run with 1, 2, 4 and 8 workers (more than this machine's
//! cores) in both parallel modes, some with random delays in the scheduler, must give
//! byte-identical receipts, state and roots to one at a time.

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
    IncLate(u8),
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
        2 => (0u8..2).prop_map(Op::IncLate),
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
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_mode_and_worker_count_gives_the_sequential_results(
        ops in proptest::collection::vec((op(), declare()), 2..48),
        seed in any::<u64>(),
    ) {
        let batch = batch_of(&ops);
        let expected = outcome(&host(Concurrency::Sequential, 1, None), &batch);
        for (mode, workers, delays) in [
            (Concurrency::Optimistic, 1, None),
            (Concurrency::Optimistic, 2, None),
            (Concurrency::Optimistic, 4, Some(seed)),
            (Concurrency::Optimistic, 8, Some(seed ^ 1)),
            (Concurrency::Pessimistic, 2, None),
            (Concurrency::Pessimistic, 8, None),
        ] {
            let got = outcome(&host(mode, workers, delays), &batch);
            prop_assert_eq!(&got, &expected, "{:?} with {} workers", mode, workers);
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
