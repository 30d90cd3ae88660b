//! Every limit of `host/src/limits.rs`, at the limit and one past it (the table in
//! `docs/ABI.md` says what happens past each). Contract-side limits use
//! `contracts/wat/probe.wat`, which calls host functions with sizes from its input.

use semel::limits::*;
use semel::storage::MemoryBackend;
use semel::{
    Concurrency, Host, HostOptions, InputError, Receipt, Status, SubmitError, Transaction, TxBody,
};

use crate::util::{calls, deploy, forward, wat};

fn probe_host() -> Host {
    let host = Host::in_memory().unwrap();
    deploy(&host, "probe", "probe");
    deploy(&host, "counter", "counter");
    host
}

fn sizes(a: usize, b: usize) -> Vec<u8> {
    let mut v = u32::try_from(a).unwrap().to_le_bytes().to_vec();
    v.extend_from_slice(&u32::try_from(b).unwrap().to_le_bytes());
    v
}

fn probe(host: &Host, method: &str, a: usize, b: usize) -> Receipt {
    let tx = Transaction::call("probe", method, sizes(a, b)).with_gas_limit(GAS_LIMIT_MAX);
    host.submit(&tx).unwrap()
}

/// At the limit the call commits; one past it, it reverts naming the limit.
fn at_and_past(host: &Host, method: &str, at: (usize, usize), past: (usize, usize), limit: &str) {
    let r = probe(host, method, at.0, at.1);
    assert_eq!(
        r.status,
        Status::Committed,
        "{method} at {limit}: {:?}",
        r.error
    );
    let r = probe(host, method, past.0, past.1);
    assert_eq!(
        r.status,
        Status::Reverted,
        "{method} past {limit} committed"
    );
    let err = r.error.unwrap();
    assert!(
        err.contains(limit),
        "{method} past the limit: {err:?} does not name {limit}"
    );
}

#[test]
fn storage_event_hash_log_and_output_sizes() {
    let host = probe_host();
    at_and_past(
        &host,
        "set",
        (KEY_BYTES_MAX, 1),
        (KEY_BYTES_MAX + 1, 1),
        "KEY_BYTES_MAX",
    );
    at_and_past(
        &host,
        "get",
        (KEY_BYTES_MAX, 0),
        (KEY_BYTES_MAX + 1, 0),
        "KEY_BYTES_MAX",
    );
    at_and_past(
        &host,
        "set",
        (1, VALUE_BYTES_MAX),
        (1, VALUE_BYTES_MAX + 1),
        "VALUE_BYTES_MAX",
    );
    at_and_past(
        &host,
        "emit",
        (EVENT_TOPIC_BYTES_MAX, 0),
        (EVENT_TOPIC_BYTES_MAX + 1, 0),
        "EVENT_TOPIC_BYTES_MAX",
    );
    at_and_past(
        &host,
        "emit",
        (1, EVENT_DATA_BYTES_MAX),
        (1, EVENT_DATA_BYTES_MAX + 1),
        "EVENT_DATA_BYTES_MAX",
    );
    at_and_past(
        &host,
        "emit_many",
        (EVENTS_PER_TX_MAX, 0),
        (EVENTS_PER_TX_MAX + 1, 0),
        "EVENTS_PER_TX_MAX",
    );
    at_and_past(
        &host,
        "hash",
        (HASH_INPUT_BYTES_MAX, 0),
        (HASH_INPUT_BYTES_MAX + 1, 0),
        "HASH_INPUT_BYTES_MAX",
    );
    at_and_past(
        &host,
        "log",
        (LOG_MESSAGE_BYTES_MAX, 0),
        (LOG_MESSAGE_BYTES_MAX + 1, 0),
        "LOG_MESSAGE_BYTES_MAX",
    );
    at_and_past(
        &host,
        "output",
        (OUTPUT_BYTES_MAX, 0),
        (OUTPUT_BYTES_MAX + 1, 0),
        "OUTPUT_BYTES_MAX",
    );
    // A revert at the limit is a revert with its message; past it, the limit is named.
    let r = probe(&host, "revert", REVERT_MESSAGE_BYTES_MAX, 0);
    assert_eq!(
        r.error.unwrap().len(),
        "call 0 (probe.revert) failed: reverted: ".len() + REVERT_MESSAGE_BYTES_MAX
    );
    let r = probe(&host, "revert", REVERT_MESSAGE_BYTES_MAX + 1, 0);
    assert!(r.error.unwrap().contains("REVERT_MESSAGE_BYTES_MAX"));
    // Every over-limit call above left no trace.
    assert_eq!(
        host.state("probe", None, b"").unwrap().len(),
        2,
        "only the two successful sets"
    );
}

#[test]
fn instances_per_transaction() {
    let host = probe_host();
    // The probe's own frame is one instance: it may make INSTANCES_PER_TX_MAX - 1 calls.
    let r = probe(&host, "calls", INSTANCES_PER_TX_MAX - 1, 0);
    assert_eq!(
        r.results[0].output,
        u32::try_from(INSTANCES_PER_TX_MAX - 1)
            .unwrap()
            .to_le_bytes()
    );
    let r = probe(&host, "calls", INSTANCES_PER_TX_MAX + 5, 0);
    assert_eq!(r.status, Status::Committed);
    assert_eq!(
        r.results[0].output,
        u32::try_from(INSTANCES_PER_TX_MAX - 1)
            .unwrap()
            .to_le_bytes()
    );
}

#[test]
fn call_depth() {
    let host = Host::in_memory().unwrap();
    deploy(&host, "counter", "counter");
    let names: Vec<String> = (0..CALL_DEPTH_MAX).map(|i| format!("p{i}")).collect();
    for n in &names {
        deploy(&host, n, "proxy");
    }
    // A chain p0 → p1 → … → p{d-2} → counter.inc is d frames deep.
    let chain = |depth: usize| {
        let mut args = forward("counter", "inc", b"");
        for n in names[1..depth - 1].iter().rev() {
            args = forward(n, "forward", &args);
        }
        Transaction::call(&names[0], "forward", args)
    };
    let r = host.submit(&chain(CALL_DEPTH_MAX)).unwrap();
    assert_eq!(r.status, Status::Committed);
    assert_eq!(
        r.results[0].output, b"1",
        "the counter at depth {CALL_DEPTH_MAX} ran"
    );
    // One deeper: the innermost proxy's call is refused, and it records code 1.
    let mut args = forward("counter", "inc", b"");
    args = forward("p15", "forward", &args);
    for n in names[1..CALL_DEPTH_MAX - 1].iter().rev() {
        args = forward(n, "forward", &args);
    }
    let r = host
        .submit(&Transaction::call("p0", "forward", args))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    let deepest = host
        .state(&names[CALL_DEPTH_MAX - 1], None, b"code")
        .unwrap();
    assert_eq!(deepest, vec![(b"code".to_vec(), vec![1])]);
    assert_eq!(crate::util::count(&host, None), "1");
}

fn rejected(host: &Host, tx: &Transaction) -> InputError {
    match host.submit(tx) {
        Err(SubmitError::Rejected(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn transaction_input_sizes() {
    let host = probe_host();
    let name = |n: usize| "n".repeat(n);
    // Names: a too-long one is refused before anything runs; one at the limit runs.
    let r = host
        .submit(&Transaction::call(
            &name(CONTRACT_NAME_BYTES_MAX),
            "m",
            Vec::new(),
        ))
        .unwrap();
    assert!(r.error.unwrap().contains("unknown contract"));
    let e = rejected(
        &host,
        &Transaction::call(&name(CONTRACT_NAME_BYTES_MAX + 1), "m", Vec::new()),
    );
    assert!(e.to_string().contains("longer than 64"), "{e}");
    let r = host
        .submit(&Transaction::call(
            "counter",
            &name(METHOD_NAME_BYTES_MAX),
            Vec::new(),
        ))
        .unwrap();
    assert!(r.error.unwrap().contains("has no method"));
    let e = rejected(
        &host,
        &Transaction::call("counter", &name(METHOD_NAME_BYTES_MAX + 1), Vec::new()),
    );
    assert!(e.to_string().contains("method name"), "{e}");
    let ok = Transaction::call("counter", "inc", Vec::new()).with_sender(&name(SENDER_BYTES_MAX));
    assert_eq!(host.submit(&ok).unwrap().status, Status::Committed);
    let e = rejected(
        &host,
        &Transaction::call("counter", "inc", Vec::new()).with_sender(&name(SENDER_BYTES_MAX + 1)),
    );
    assert!(e.to_string().contains("SENDER_BYTES_MAX"), "{e}");
    // Arguments.
    let r = host
        .submit(&Transaction::call(
            "counter",
            "inc",
            vec![b'x'; ARG_BYTES_MAX],
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    let e = rejected(
        &host,
        &Transaction::call("counter", "inc", vec![b'x'; ARG_BYTES_MAX + 1]),
    );
    assert!(e.to_string().contains("ARG_BYTES_MAX"), "{e}");
    // Calls per transaction.
    let inc: (&str, &str, &[u8]) = ("counter", "inc", b"");
    let r = host.submit(&calls(&vec![inc; CALLS_PER_TX_MAX])).unwrap();
    assert_eq!(r.results.len(), CALLS_PER_TX_MAX);
    let e = rejected(&host, &calls(&vec![inc; CALLS_PER_TX_MAX + 1]));
    assert!(e.to_string().contains("1 to 64 calls"), "{e}");
    let mut empty = Transaction::call("counter", "inc", Vec::new());
    empty.body = TxBody::Calls(Vec::new());
    assert!(rejected(&host, &empty).to_string().contains("has 0"));
    // Gas.
    let r = host
        .submit(&Transaction::call("counter", "inc", Vec::new()).with_gas_limit(GAS_LIMIT_MAX))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    let e = rejected(
        &host,
        &Transaction::call("counter", "inc", Vec::new()).with_gas_limit(GAS_LIMIT_MAX + 1),
    );
    assert!(e.to_string().contains("gas limit"), "{e}");
    let e = rejected(
        &host,
        &Transaction::call("counter", "inc", Vec::new()).with_gas_limit(0),
    );
    assert!(e.to_string().contains("gas limit 0"), "{e}");
    assert_eq!(
        GAS_LIMIT_DEFAULT,
        Transaction::call("c", "m", Vec::new()).gas_limit
    );
}

/// A module of exactly `len` bytes: the counter plus a custom section of padding.
fn padded_module(len: usize) -> Vec<u8> {
    let mut code = wat("counter");
    // Custom section: id 0, size (5-byte LEB128), name length 1, name "p", payload.
    let header = 1 + 5;
    let payload = len - code.len() - header;
    let mut size = u32::try_from(payload).unwrap();
    code.push(0);
    for i in 0..5 {
        let byte = u8::try_from(size & 0x7f).unwrap();
        size >>= 7;
        code.push(if i < 4 { byte | 0x80 } else { byte });
    }
    code.push(1);
    code.push(b'p');
    code.resize(len, 0);
    code
}

#[test]
fn code_memory_and_table_sizes() {
    let host = Host::in_memory().unwrap();
    let big = Transaction::deploy("big", padded_module(CODE_BYTES_MAX), Vec::new())
        .with_gas_limit(GAS_LIMIT_MAX);
    let r = host.submit(&big).unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    let e = rejected(
        &host,
        &Transaction::deploy("bigger", padded_module(CODE_BYTES_MAX + 1), Vec::new()),
    );
    assert!(e.to_string().contains("CODE_BYTES_MAX"), "{e}");

    let memory =
        |pages: u64| format!(r#"(module (memory (export "memory") {pages}) (func (export "m")))"#);
    let r = host
        .submit(&Transaction::deploy(
            "mem",
            memory(MEMORY_PAGES_MAX),
            Vec::new(),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    assert_eq!(
        host.submit(&Transaction::call("mem", "m", Vec::new()))
            .unwrap()
            .status,
        Status::Committed
    );
    let e = rejected(
        &host,
        &Transaction::deploy("mem2", memory(MEMORY_PAGES_MAX + 1), Vec::new()),
    );
    assert!(e.to_string().contains("MEMORY_PAGES_MAX"), "{e}");

    let table = |n: u64| {
        format!(r#"(module (memory (export "memory") 1) (table {n} funcref) (func (export "m")))"#)
    };
    let r = host
        .submit(&Transaction::deploy(
            "tab",
            table(TABLE_ELEMENTS_MAX),
            Vec::new(),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed);
    assert_eq!(
        host.submit(&Transaction::call("tab", "m", Vec::new()))
            .unwrap()
            .status,
        Status::Committed
    );
    let e = rejected(
        &host,
        &Transaction::deploy("tab2", table(TABLE_ELEMENTS_MAX + 1), Vec::new()),
    );
    assert!(e.to_string().contains("TABLE_ELEMENTS_MAX"), "{e}");
}

#[test]
fn memory_grows_to_the_limit_and_no_further() {
    let host = Host::in_memory().unwrap();
    // Grows one page at a time until refused; outputs the page count reached.
    let grower = r#"(module (import "semel" "output" (func $out (param i32 i32)))
        (memory (export "memory") 1)
        (func (export "grow")
          (block $done (loop $again
            (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
            (br $again)))
          (i32.store (i32.const 0) (memory.size))
          (call $out (i32.const 0) (i32.const 4))))"#;
    deploy_text(&host, "grower", grower);
    let r = host
        .submit(&Transaction::call("grower", "grow", Vec::new()))
        .unwrap();
    assert_eq!(
        r.results[0].output,
        u32::try_from(MEMORY_PAGES_MAX).unwrap().to_le_bytes()
    );
}

fn deploy_text(host: &Host, name: &str, text: &str) {
    let r = host
        .submit(&Transaction::deploy(
            name,
            text.as_bytes().to_vec(),
            Vec::new(),
        ))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
}

#[test]
fn query_gas() {
    let host = Host::in_memory().unwrap();
    deploy(&host, "counter", "counter");
    match host.query("counter", "spin", b"", None) {
        Err(semel::QueryError::Failed(m)) => {
            assert_eq!(m, format!("out of gas (gas limit {QUERY_GAS_LIMIT})"));
        }
        other => panic!("{other:?}"),
    }
}

/// Runs at once in the tests below, each creating the most instances a transaction may:
/// together more than the pool of `INSTANCES_MAX`.
const HEAVY_AT_ONCE: usize = 8;

/// Queries at once, each creating the most instances a transaction may: without the
/// large turn (`vm/turns.rs`) they would exhaust the pool of `INSTANCES_MAX` (a host
/// failure); with it, each past an ordinary turn's share waits for the large turn, and
/// all succeed.
#[test]
fn concurrent_executions_wait_instead_of_exhausting_the_pool() {
    assert!(HEAVY_AT_ONCE * INSTANCES_PER_TX_MAX > usize::try_from(INSTANCES_MAX).unwrap());
    // All hold a turn at once.
    const { assert!(HEAVY_AT_ONCE <= CONCURRENT_EXECUTIONS_MAX) };
    let host = std::sync::Arc::new(probe_host());
    // Started together, a few times over, so that the runs overlap on two cores.
    for _ in 0..3 {
        let start = std::sync::Arc::new(std::sync::Barrier::new(HEAVY_AT_ONCE));
        let threads: Vec<_> = (0..HEAVY_AT_ONCE)
            .map(|_| {
                let (host, start) = (std::sync::Arc::clone(&host), std::sync::Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    host.query("probe", "calls", &sizes(INSTANCES_PER_TX_MAX - 1, 0), None)
                })
            })
            .collect();
        for t in threads {
            let out = t.join().unwrap().unwrap();
            assert_eq!(
                out.output,
                u32::try_from(INSTANCES_PER_TX_MAX - 1)
                    .unwrap()
                    .to_le_bytes()
            );
        }
    }
}

/// The same for transactions: a submitted run's store (its instances and its turn) is
/// freed after the writer lock, so submitters, lists of transactions and queries at once
/// must neither exhaust the pool nor wait on each other for good.
#[test]
fn concurrent_submissions_wait_instead_of_exhausting_the_pool() {
    let host = std::sync::Arc::new(probe_host());
    let heavy = || Transaction::call("probe", "calls", sizes(INSTANCES_PER_TX_MAX - 1, 0));
    // A list of several heavy runs: each must give up the large turn before the next.
    let list: Vec<_> = (0..HEAVY_AT_ONCE).map(|_| heavy()).collect();
    let (done, finished) = std::sync::mpsc::channel();
    for i in 0..HEAVY_AT_ONCE {
        let (host, list, done) = (std::sync::Arc::clone(&host), list.clone(), done.clone());
        std::thread::spawn(move || {
            let statuses: Vec<Status> = match i % 3 {
                0 => host
                    .submit_all(&list)
                    .into_iter()
                    .map(|r| r.unwrap().status)
                    .collect(),
                1 => {
                    let q = host.query("probe", "calls", &sizes(INSTANCES_PER_TX_MAX - 1, 0), None);
                    q.unwrap();
                    vec![host.submit(&heavy()).unwrap().status]
                }
                _ => (0..3)
                    .map(|_| host.submit(&heavy()).unwrap().status)
                    .collect(),
            };
            done.send(statuses).unwrap();
        });
    }
    for _ in 0..HEAVY_AT_ONCE {
        let statuses = finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a submitter waited two minutes: the turns deadlocked");
        assert!(
            statuses.iter().all(|s| *s == Status::Committed),
            "{statuses:?}"
        );
    }
}

/// A parallel batch on more workers than cores, mixing runs past an ordinary turn's share
/// of instances (they take the large turn, one at a time, in the middle of their runs)
/// with light ones that change what the heavy ones read (so they also run again): every
/// receipt as one at a time, and the batch never falls back to sequential.
#[test]
fn a_parallel_batch_of_heavy_and_light_runs_matches_one_at_a_time() {
    let calls = INSTANCES_PER_TURN * 3;
    let batch: Vec<_> = (0..24)
        .map(|i| match i % 4 {
            0 => Transaction::call("probe", "calls", sizes(calls, 0)).with_gas_limit(GAS_LIMIT_MAX),
            _ => Transaction::call("counter", "inc", Vec::new()),
        })
        .collect();
    let run = |concurrency, workers| {
        let options = HostOptions {
            concurrency,
            workers,
            ..HostOptions::default()
        };
        let host = Host::with_backend(Box::new(MemoryBackend::new()), None, options).unwrap();
        deploy(&host, "probe", "probe");
        deploy(&host, "counter", "counter");
        let receipts: Vec<_> = host
            .submit_all(&batch)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let stats = host.parallel_stats();
        (receipts, stats.batches(), stats.fallbacks())
    };
    let (expected, ..) = run(Concurrency::Sequential, 1);
    assert!(expected.iter().all(|r| r.status == Status::Committed));
    assert_eq!(
        expected[0].results[0].output,
        u32::try_from(calls).unwrap().to_le_bytes()
    );
    for workers in [2, 8] {
        let (got, batches, fallbacks) = run(Concurrency::Optimistic, workers);
        assert_eq!(got, expected, "{workers} workers");
        assert_eq!((batches, fallbacks), (1, 0), "{workers} workers");
    }
}

/// Recurses to the depth given as a u32 input; each level is one small wasm frame.
const DEEP: &str = r#"(module
  (import "semel" "input_read" (func $input_read (param i32)))
  (memory (export "memory") 1)
  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "deep")
    (call $input_read (i32.const 0))
    (drop (call $down (i32.load (i32.const 0))))))"#;

fn deep(host: &Host, contract: &str, method: &str, args: Vec<u8>) -> Receipt {
    host.submit(&Transaction::call(contract, method, args).with_gas_limit(GAS_LIMIT_MAX))
        .unwrap()
}

/// The wasm stack limit is in bytes of native stack, so its depth in frames depends on
/// the compiled frame size: the test finds the deepest recursion that fits, and checks
/// that it commits every time, one level more traps, the bound is the one
/// `WASM_STACK_BYTES_MAX` allows, and frames of an outer contract count against it.
#[test]
fn wasm_stack_bytes() {
    let host = Host::in_memory().unwrap();
    deploy_text(&host, "deep", DEEP);
    deploy(&host, "proxy", "proxy");
    let fits =
        |n: u32| deep(&host, "deep", "deep", n.to_le_bytes().to_vec()).status == Status::Committed;
    let max = deepest(fits);
    for _ in 0..3 {
        assert!(fits(max), "depth {max} fitted once, not again");
    }
    let r = deep(&host, "deep", "deep", (max + 1).to_le_bytes().to_vec());
    assert_eq!(r.status, Status::Reverted);
    assert!(
        r.error.as_deref().unwrap().contains("call stack exhausted"),
        "{:?}",
        r.error
    );
    // A frame is at least a return address and a frame pointer (16 bytes) and, for this
    // function, well under 1 KiB: the depth must be what the byte limit allows.
    let bytes = usize::try_from(max).unwrap();
    assert!(
        bytes * 16 <= WASM_STACK_BYTES_MAX,
        "{max} frames in {WASM_STACK_BYTES_MAX} bytes"
    );
    assert!(
        bytes * 1024 >= WASM_STACK_BYTES_MAX,
        "only {max} frames in {WASM_STACK_BYTES_MAX} bytes"
    );
    // Called through a proxy, the same depth no longer fits: the proxy's frame and the
    // host's own stack between the two count against the same per-transaction limit.
    let via = |n: u32| {
        let r = deep(
            &host,
            "proxy",
            "forward",
            forward("deep", "deep", &n.to_le_bytes()),
        );
        assert_eq!(r.status, Status::Committed);
        host.state("proxy", None, b"code").unwrap()[0].1 == [0]
    };
    let nested = deepest(via);
    assert!(
        nested < max && nested > max / 4,
        "{nested} nested, {max} alone"
    );
}

/// The largest `n` for which `fits(n)`, given that `fits` holds up to it and no further.
fn deepest(fits: impl Fn(u32) -> bool) -> u32 {
    let (mut lo, mut hi) = (1u32, 1u32 << 20);
    assert!(fits(lo) && !fits(hi));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}
