//! Transactions end to end on the in-memory host: deploy and call, exactly-once,
//! atomicity across calls and frames, reentrancy, gas, historical queries.

use std::sync::Arc;

use semel::{Host, QueryError, Receipt, Status, SubmitError, Transaction, Uuid};

use crate::util::{calls, count, counter_host, deploy, forward, wat};

#[test]
fn deploy_and_call_a_wat_counter() {
    let host = counter_host();
    let r = host
        .submit(&Transaction::call("counter", "inc", Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    assert_eq!(r.version, 2);
    assert_eq!(r.results[0].output, b"1");
    assert_eq!(r.events[0].topic, "inc");
    assert_eq!(r.events[0].data, 1u64.to_le_bytes());
    assert!(r.gas_used > 0);
    assert_eq!(r.state_root, host.state_root().unwrap());
    assert_eq!(count(&host, None), "1");
    let listed = host.contracts().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "counter");
    assert_eq!(listed[0].version, 1);
    assert_eq!(listed[0].code_hash, semel::CodeHash::of(&wat("counter")));
}

#[test]
fn a_duplicate_returns_the_stored_receipt_and_executes_once() {
    let host = counter_host();
    let tx = Transaction::call("counter", "inc", Vec::new());
    let first = host.submit(&tx).unwrap();
    let again = host.submit(&tx).unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(
        semel::Receipt {
            duplicate: false,
            ..again.clone()
        },
        first
    );
    assert_eq!(count(&host, None), "1");
    assert_eq!(host.latest_version(), first.version);
    assert_eq!(host.receipt(&tx.id).unwrap().unwrap(), first);
}

#[test]
fn a_conflicting_id_is_refused_and_changes_nothing() {
    let host = counter_host();
    let tx = Transaction::call("counter", "inc", Vec::new());
    host.submit(&tx).unwrap();
    let root = host.state_root().unwrap();
    let version = host.latest_version();
    let other = Transaction::call("counter", "inc", b"x".to_vec()).with_id(tx.id);
    match host.submit(&other) {
        Err(SubmitError::Conflict { id, version: v }) => {
            assert_eq!(id, tx.id);
            assert_eq!(v, version);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(host.latest_version(), version);
    assert_eq!(host.state_root().unwrap(), root);
    assert_eq!(count(&host, None), "1");
}

#[test]
fn refused_input_leaves_the_id_unused() {
    let host = counter_host();
    let id = Uuid::new_v4();
    let bad = Transaction::call("no such name!", "inc", Vec::new()).with_id(id);
    assert!(matches!(host.submit(&bad), Err(SubmitError::Rejected(_))));
    let bad_code = Transaction::deploy("x", b"\0asm garbage".to_vec(), Vec::new()).with_id(id);
    let err = host.submit(&bad_code).unwrap_err();
    assert!(err.to_string().contains("not valid wasm"), "{err}");
    assert_eq!(host.latest_version(), 1);
    // The id is still free for a good transaction.
    let good = Transaction::call("counter", "inc", Vec::new()).with_id(id);
    assert_eq!(host.submit(&good).unwrap().status, Status::Committed);
}

#[test]
fn a_second_call_that_reverts_leaves_no_trace_of_the_first() {
    let host = counter_host();
    let root = host.state_root().unwrap();
    let r = host
        .submit(&calls(&[("counter", "inc", b""), ("counter", "fail", b"")]))
        .unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(
        r.error.as_deref(),
        Some("call 1 (counter.fail) failed: reverted: counter says no")
    );
    assert!(r.results.is_empty() && r.events.is_empty());
    assert_eq!(r.version, 2, "a reverted transaction still takes a version");
    assert_eq!(r.state_root, root);
    assert_eq!(count(&host, None), "0");
    assert_eq!(host.receipt(&r.tx_id).unwrap().unwrap(), r);
}

#[test]
fn a_reverting_callee_loses_its_writes_and_the_caller_keeps_its_own() {
    let host = counter_host();
    deploy(&host, "proxy", "proxy");
    let r = host
        .submit(&Transaction::call(
            "proxy",
            "forward",
            forward("counter", "inc_then_fail", b""),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    assert_eq!(r.results[0].output, b"reverted: counter says no");
    let state = host.state("proxy", None, b"").unwrap();
    assert_eq!(
        state,
        vec![
            (b"before".to_vec(), b"1".to_vec()),
            (b"code".to_vec(), vec![1])
        ]
    );
    assert_eq!(count(&host, None), "0");
    // A callee that succeeds keeps its writes and events.
    let r = host
        .submit(&Transaction::call(
            "proxy",
            "forward",
            forward("counter", "inc", b""),
        ))
        .unwrap();
    assert_eq!(r.results[0].output, b"1");
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].contract, "counter");
    assert_eq!(count(&host, None), "1");
    let code = host.state("proxy", None, b"code").unwrap();
    assert_eq!(code, vec![(b"code".to_vec(), vec![0])]);
}

#[test]
fn unknown_contracts_and_methods_fail_the_frame_not_the_host() {
    let host = counter_host();
    deploy(&host, "proxy", "proxy");
    for (target, method, expect) in [
        ("ghost", "inc", "unknown contract ghost"),
        ("counter", "nope", "contract counter has no method nope"),
        (
            "counter",
            "init",
            "method init of counter runs only at deploy",
        ),
        (
            "counter",
            "trap",
            "wasm trap: wasm `unreachable` instruction executed",
        ),
    ] {
        let r = host
            .submit(&Transaction::call(
                "proxy",
                "forward",
                forward(target, method, b""),
            ))
            .unwrap();
        assert_eq!(r.status, Status::Committed);
        assert_eq!(String::from_utf8_lossy(&r.results[0].output), expect);
    }
    let r = host
        .submit(&Transaction::call("ghost", "inc", Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(
        r.error.as_deref(),
        Some("call 0 (ghost.inc) failed: unknown contract ghost")
    );
}

#[test]
fn reentrancy_is_refused_directly_and_through_another_contract() {
    let host = counter_host();
    deploy(&host, "p1", "proxy");
    deploy(&host, "p2", "proxy");
    let r = host
        .submit(&Transaction::call(
            "p1",
            "forward",
            forward("p1", "forward", b""),
        ))
        .unwrap();
    assert_eq!(
        r.results[0].output,
        b"reentrancy refused: p1 is already on the call stack"
    );
    let inner = forward("p1", "forward", &forward("counter", "inc", b""));
    let r = host
        .submit(&Transaction::call(
            "p1",
            "forward",
            forward("p2", "forward", &inner),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    // p2's call into p1 failed, so p2 stored code 1 and output p1's refusal.
    assert_eq!(host.state("p2", None, b"code").unwrap()[0].1, vec![1]);
    assert_eq!(count(&host, None), "0");
}

#[test]
fn an_infinite_loop_runs_out_of_gas_and_is_recorded_as_reverted() {
    let host = counter_host();
    let root = host.state_root().unwrap();
    let tx = Transaction::call("counter", "spin", Vec::new()).with_gas_limit(200_000);
    let r = host.submit(&tx).unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(r.error.as_deref(), Some("out of gas (gas limit 200000)"));
    assert_eq!(r.gas_used, 200_000);
    assert_eq!(r.state_root, root);
    assert_eq!(host.receipt(&tx.id).unwrap().unwrap(), r);
    // Out of gas inside a nested call is not catchable: the caller reverts too.
    deploy(&host, "proxy", "proxy");
    let tx = Transaction::call("proxy", "forward", forward("counter", "spin", b""))
        .with_gas_limit(300_000);
    let r = host.submit(&tx).unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert!(host.state("proxy", None, b"").unwrap().is_empty());
}

#[test]
fn gas_is_deterministic_across_hosts() {
    let a = counter_host();
    let b = counter_host();
    let tx = Transaction::call("counter", "inc", Vec::new());
    let ra = a.submit(&tx).unwrap();
    let rb = b.submit(&tx).unwrap();
    assert_eq!(ra, rb);
}

#[test]
fn queries_read_old_versions_and_refuse_writes() {
    let host = counter_host();
    for _ in 0..3 {
        host.submit(&Transaction::call("counter", "inc", Vec::new()))
            .unwrap();
    }
    assert_eq!(count(&host, Some(1)), "0");
    assert_eq!(count(&host, Some(3)), "2");
    assert_eq!(count(&host, None), "3");
    let out = host.query("counter", "get", b"", Some(2)).unwrap();
    assert_eq!(out.version, 2);
    match host.query("counter", "get", b"", Some(0)) {
        Err(QueryError::Failed(m)) => assert!(m.contains("unknown contract counter"), "{m}"),
        other => panic!("{other:?}"),
    }
    match host.query("counter", "get", b"", Some(99)) {
        Err(QueryError::Rejected(e)) => {
            assert!(e.to_string().contains("version 99 is not available"))
        }
        other => panic!("{other:?}"),
    }
    match host.query("counter", "inc", b"", None) {
        Err(QueryError::Failed(m)) => assert!(
            m.contains("storage_set is not allowed in a read-only query"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.latest_version(), 4, "queries record nothing");
}

#[test]
fn deploying_onto_a_taken_name_is_a_reverted_receipt() {
    let host = counter_host();
    let r = host
        .submit(&Transaction::deploy("counter", wat("proxy"), Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(
        r.error.as_deref(),
        Some("deploy failed: contract name counter is already taken")
    );
    assert_eq!(
        host.contracts().unwrap()[0].code_hash,
        semel::CodeHash::of(&wat("counter"))
    );
}

#[test]
fn wat_text_is_accepted_by_the_library_too() {
    let host = Host::in_memory().unwrap();
    let text = std::fs::read(crate::util::repo().join("contracts/wat/counter.wat")).unwrap();
    let r = host
        .submit(&Transaction::deploy("counter", text, Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    assert_eq!(
        host.contracts().unwrap()[0].code_hash,
        semel::CodeHash::of(&wat("counter"))
    );
}

#[test]
fn concurrent_submissions_of_one_id_execute_once() {
    let host = Arc::new(counter_host());
    let tx = Transaction::call("counter", "inc", Vec::new());
    let receipts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let host = Arc::clone(&host);
                let tx = tx.clone();
                s.spawn(move || host.submit(&tx).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(receipts.iter().filter(|r| !r.duplicate).count(), 1);
    for r in &receipts {
        assert_eq!(
            semel::Receipt {
                duplicate: false,
                ..r.clone()
            },
            receipts.iter().find(|r| !r.duplicate).unwrap().clone()
        );
    }
    assert_eq!(count(&host, None), "1");
}

/// Both copies are looked up before the writer lock and found new; the writer must still
/// see that the first was staged before it runs the second.
#[test]
fn a_list_holding_one_id_twice_executes_it_once() {
    let host = counter_host();
    let tx = Transaction::call("counter", "inc", Vec::new());
    let other = Transaction::call("counter", "inc", Vec::new());
    let results = host.submit_all(&[tx.clone(), other, tx]);
    let receipts: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        receipts.iter().map(|r| r.duplicate).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(receipts[2].version, receipts[0].version);
    assert_eq!(count(&host, None), "2");
}

/// A memory backend whose commits wait for a gate: batches stay staged (visible, not
/// durable) until the test opens it.
struct Gated {
    inner: semel::storage::MemoryBackend,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl semel::storage::Backend for Gated {
    fn snapshot(&self) -> Result<Arc<dyn semel::storage::Snapshot>, semel::StorageError> {
        self.inner.snapshot()
    }
    fn commit(&self, batch: &semel::storage::WriteBatch) -> Result<(), semel::StorageError> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        self.inner.commit(batch)
    }
}

#[test]
fn a_duplicate_of_a_staged_transaction_waits_for_its_commit() {
    let gate = Arc::new(Gated {
        inner: semel::storage::MemoryBackend::new(),
        open: std::sync::Mutex::new(true),
        opened: std::sync::Condvar::new(),
    });
    struct Shared(Arc<Gated>);
    impl semel::storage::Backend for Shared {
        fn snapshot(&self) -> Result<Arc<dyn semel::storage::Snapshot>, semel::StorageError> {
            self.0.snapshot()
        }
        fn commit(&self, batch: &semel::storage::WriteBatch) -> Result<(), semel::StorageError> {
            self.0.commit(batch)
        }
    }
    let host = Arc::new(
        Host::with_backend(
            Box::new(Shared(Arc::clone(&gate))),
            None,
            semel::HostOptions::default(),
        )
        .unwrap(),
    );
    host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
        .unwrap();
    *gate.open.lock().unwrap() = false;
    let tx = Transaction::call("counter", "inc", Vec::new());
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first = {
        let (host, tx) = (Arc::clone(&host), tx.clone());
        std::thread::spawn(move || host.submit(&tx).unwrap())
    };
    // Wait until the first is staged: the latest version moves (reads of it wait for
    // it to be durable, so they would wait for the gate).
    while host.latest_version() != 2 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let second = {
        let (host, tx, released) = (Arc::clone(&host), tx.clone(), Arc::clone(&released));
        std::thread::spawn(move || {
            let r = host.submit(&tx).unwrap();
            assert!(
                released.load(std::sync::atomic::Ordering::SeqCst),
                "a duplicate returned before its batch was durable"
            );
            r
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        !first.is_finished() && !second.is_finished(),
        "a receipt came back before the commit"
    );
    released.store(true, std::sync::atomic::Ordering::SeqCst);
    *gate.open.lock().unwrap() = true;
    gate.opened.notify_all();
    let (a, b) = (first.join().unwrap(), second.join().unwrap());
    assert!(!a.duplicate && b.duplicate);
    assert_eq!(
        Receipt {
            duplicate: false,
            ..b
        },
        a
    );
    assert_eq!(count(&host, None), "1");
}

/// A submitter that finds the writer lock busy instantiates the contract it calls first
/// while it waits (`submit`, forced here); a list (`submit_all`) instantiates under the
/// lock. Both must give the same receipts at every gas limit, including those where the
/// gas runs out before, during and just after the instantiation (which costs fuel: data
/// segments are priced per byte). The counter has a data segment; the token also a
/// table with an element segment and globals.
#[test]
fn instantiating_before_the_writer_lock_changes_no_receipt() {
    let rust = |name: &str| {
        std::fs::read(crate::util::repo().join(format!("contracts/wasm/{name}.wasm"))).unwrap()
    };
    same_receipts_at_every_gas_limit(
        Transaction::deploy("counter", rust("counter"), Vec::new()),
        |gas| Transaction::call("counter", "inc", Vec::new()).with_gas_limit(gas),
    );
    same_receipts_at_every_gas_limit(
        Transaction::deploy("token", rust("token"), br#"{"supply": 1000000}"#.to_vec())
            .with_sender("alice"),
        |gas| {
            Transaction::call(
                "token",
                "transfer",
                br#"{"to": "bob", "amount": 1}"#.to_vec(),
            )
            .with_sender("alice")
            .with_gas_limit(gas)
        },
    );
}

fn same_receipts_at_every_gas_limit(deploy: Transaction, call: impl Fn(u64) -> Transaction) {
    let always_early = semel::HostOptions {
        prewarm: semel::Prewarm::Always,
        ..semel::HostOptions::default()
    };
    let early = Host::with_backend(
        Box::new(semel::storage::MemoryBackend::new()),
        None,
        always_early,
    )
    .unwrap();
    let late = Host::in_memory().unwrap();
    let both = |tx: &Transaction| -> Receipt {
        let a = early.submit(tx).unwrap();
        let b = late
            .submit_all(std::slice::from_ref(tx))
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(a, b, "gas limit {}", tx.gas_limit);
        a
    };
    assert_eq!(both(&deploy).status, Status::Committed);
    let full = both(&call(semel::limits::GAS_LIMIT_DEFAULT));
    assert_eq!(full.status, Status::Committed, "{:?}", full.error);
    // The smallest limit that gets past instantiation, found by bisection.
    let instantiates = |gas: u64| {
        let r = both(&call(gas));
        !r.error.unwrap_or_default().contains("cannot instantiate") && gas >= 2_000
    };
    let (mut lo, mut hi) = (2_000, full.gas_used);
    assert!(!instantiates(lo) && instantiates(hi));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if instantiates(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    assert!(
        hi > 2_001,
        "instantiation took no fuel, so this test shows nothing"
    );
    let mut limits: Vec<u64> = (0..full.gas_used).step_by(997).collect();
    limits.extend([1_999, 2_000, 2_001, hi - 2, hi - 1, hi, hi + 1]);
    limits.extend((full.gas_used - 2)..=(full.gas_used + 2));
    for gas in limits {
        both(&call(gas.max(1)));
    }
}

/// `Host::check` then `Host::submit_checked` (the server's path) keeps exactly once:
/// a recorded id is answered by the check, two checks of one new id run once, a
/// conflict is refused at the check or under the lock, bad input at the check.
#[test]
fn checked_submissions_are_exactly_once() {
    let host = counter_host();
    let tx = Transaction::call("counter", "inc", Vec::new());
    let new = |t: &Transaction| match host.check(t).unwrap() {
        semel::Check::New(c) => c,
        semel::Check::Recorded(r) => panic!("{} is recorded: {r:?}", t.id),
    };
    // Checked twice before either runs: one execution, the second a duplicate.
    let (a, b) = (new(&tx), new(&tx));
    assert_eq!(a.tx(), &tx);
    let results = host.submit_checked(vec![a, b]);
    let first = results[0].as_ref().unwrap();
    let second = results[1].as_ref().unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(first.version, second.version);
    assert_eq!(count(&host, None), "1");
    // Checked again now: answered by the check itself.
    match host.check(&tx).unwrap() {
        semel::Check::Recorded(r) => assert!(r.duplicate && r.version == first.version),
        semel::Check::New(_) => panic!("a recorded id checked as new"),
    }
    // Other content under a recorded id: a conflict at the check.
    let other = Transaction::call("counter", "get", Vec::new()).with_id(tx.id);
    assert!(matches!(
        host.check(&other),
        Err(SubmitError::Conflict { .. })
    ));
    // Recorded between the check and the run: found under the lock.
    let late = Transaction::call("counter", "inc", Vec::new());
    let checked = new(&late);
    host.submit(&Transaction::call("counter", "get", Vec::new()).with_id(late.id))
        .unwrap();
    let r = host.submit_checked(vec![checked]);
    assert!(
        matches!(r[0], Err(SubmitError::Conflict { .. })),
        "{:?}",
        r[0]
    );
    // A lone checked transaction takes the lone path and commits.
    let one = Transaction::call("counter", "inc", Vec::new());
    let r = host.submit_checked(vec![new(&one)]);
    assert_eq!(r[0].as_ref().unwrap().status, Status::Committed);
    // Bad input is refused by the check.
    let bad = Transaction::call("no/such", "inc", Vec::new());
    assert!(matches!(host.check(&bad), Err(SubmitError::Rejected(_))));
}
