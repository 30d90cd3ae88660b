//! The example Rust contracts (`contracts/wasm/`, built by `contracts/build.sh`) driven
//! through the host: token transfers, events and allowances; swaps that succeed and swaps
//! that revert across three contracts; each hostile contract ending in its documented
//! outcome with its state untouched.

use semel::{Host, Receipt, Status, Transaction};
use serde_json::{Value, json};

use crate::util::repo;

/// The committed wasm of an example contract.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = repo().join("contracts/wasm").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn deploy(host: &Host, name: &str, code: &str, args: Value, sender: &str) {
    let tx =
        Transaction::deploy(name, wasm(code), args.to_string().into_bytes()).with_sender(sender);
    let r = host.submit(&tx).unwrap();
    assert_eq!(r.status, Status::Committed, "deploy {name}: {:?}", r.error);
}

fn call(host: &Host, sender: &str, contract: &str, method: &str, args: Value) -> Receipt {
    let tx = Transaction::call(contract, method, args.to_string().into_bytes()).with_sender(sender);
    host.submit(&tx).unwrap()
}

fn ok(r: Receipt) -> Receipt {
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    r
}

fn query(host: &Host, contract: &str, method: &str, args: Value) -> Value {
    let out = host
        .query(contract, method, args.to_string().as_bytes(), None)
        .unwrap();
    serde_json::from_slice(&out.output).unwrap()
}

fn balance(host: &Host, token: &str, of: &str) -> u64 {
    query(host, token, "balance", json!({"of": of}))
        .as_u64()
        .unwrap()
}

#[test]
fn token_transfers_events_and_allowances() {
    let host = Host::in_memory().unwrap();
    deploy(&host, "token", "token", json!({"supply": 1000}), "alice");
    assert_eq!(balance(&host, "token", "alice"), 1000);

    let r = ok(call(
        &host,
        "alice",
        "token",
        "transfer",
        json!({"to": "bob", "amount": 5}),
    ));
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].contract, "token");
    assert_eq!(r.events[0].topic, "transfer");
    let data: Value = serde_json::from_slice(&r.events[0].data).unwrap();
    assert_eq!(data, json!({"from": "alice", "to": "bob", "amount": 5}));
    assert_eq!(
        (
            balance(&host, "token", "alice"),
            balance(&host, "token", "bob")
        ),
        (995, 5)
    );

    let root = host.state_root().unwrap();
    let r = call(
        &host,
        "bob",
        "token",
        "transfer",
        json!({"to": "carol", "amount": 6}),
    );
    assert_eq!(r.status, Status::Reverted);
    assert!(
        r.error.as_deref().unwrap().contains("insufficient balance"),
        "{:?}",
        r.error
    );
    assert_eq!(host.state_root().unwrap(), root);

    ok(call(
        &host,
        "alice",
        "token",
        "approve",
        json!({"spender": "carol", "amount": 50}),
    ));
    ok(call(
        &host,
        "carol",
        "token",
        "transfer_from",
        json!({"from": "alice", "to": "dave", "amount": 20}),
    ));
    assert_eq!(
        query(
            &host,
            "token",
            "allowance",
            json!({"owner": "alice", "spender": "carol"})
        ),
        30
    );
    assert_eq!(balance(&host, "token", "dave"), 20);
    let r = call(
        &host,
        "carol",
        "token",
        "transfer_from",
        json!({"from": "alice", "to": "dave", "amount": 31}),
    );
    assert_eq!(r.status, Status::Reverted);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("insufficient allowance"),
        "{:?}",
        r.error
    );
    assert_eq!(balance(&host, "token", "alice"), 975);
}

/// Two tokens, an exchange with liquidity, and bob holding 1,000 of token a.
fn market() -> Host {
    let host = Host::in_memory().unwrap();
    deploy(&host, "ta", "token", json!({"supply": 1_000_000}), "alice");
    deploy(&host, "tb", "token", json!({"supply": 1_000_000}), "alice");
    deploy(
        &host,
        "ex",
        "exchange",
        json!({"token_a": "ta", "token_b": "tb"}),
        "alice",
    );
    for t in ["ta", "tb"] {
        ok(call(
            &host,
            "alice",
            t,
            "approve",
            json!({"spender": "ex", "amount": 100_000}),
        ));
    }
    ok(call(
        &host,
        "alice",
        "ex",
        "add_liquidity",
        json!({"amount_a": 100_000, "amount_b": 100_000}),
    ));
    ok(call(
        &host,
        "alice",
        "ta",
        "transfer",
        json!({"to": "bob", "amount": 1000}),
    ));
    host
}

fn all_state(host: &Host) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    ["ta", "tb", "ex"]
        .iter()
        .map(|c| host.state(c, None, b"").unwrap())
        .collect()
}

#[test]
fn a_paid_swap_moves_both_tokens() {
    let host = market();
    ok(call(
        &host,
        "bob",
        "ta",
        "approve",
        json!({"spender": "ex", "amount": 1000}),
    ));
    let quoted = query(
        &host,
        "ex",
        "quote",
        json!({"token_in": "ta", "amount_in": 100}),
    );
    let r = ok(call(
        &host,
        "bob",
        "ex",
        "swap",
        json!({"token_in": "ta", "amount_in": 100}),
    ));
    let bought: u64 = serde_json::from_slice(&r.results[0].output).unwrap();
    assert_eq!(json!(bought), quoted);
    assert!(bought > 0 && bought < 100);
    assert_eq!(balance(&host, "ta", "bob"), 900);
    assert_eq!(balance(&host, "tb", "bob"), bought);
    assert_eq!(balance(&host, "ta", "ex"), 100_100);
    assert_eq!(balance(&host, "tb", "ex"), 100_000 - bought);
    let topics: Vec<_> = r
        .events
        .iter()
        .map(|e| (e.contract.as_str(), e.topic.as_str()))
        .collect();
    assert!(
        topics.contains(&("tb", "transfer")) && topics.contains(&("ta", "transfer")),
        "{topics:?}"
    );
    assert!(topics.contains(&("ex", "swap")), "{topics:?}");
}

#[test]
fn a_swap_that_cannot_be_paid_leaves_all_three_contracts_untouched() {
    let host = market();
    let before = all_state(&host);
    let root = host.state_root().unwrap();
    // No allowance for the exchange: the payout to bob happens, then collecting fails.
    let r = call(
        &host,
        "bob",
        "ex",
        "swap",
        json!({"token_in": "ta", "amount_in": 100}),
    );
    assert_eq!(r.status, Status::Reverted);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("insufficient allowance"),
        "{:?}",
        r.error
    );
    assert!(r.events.is_empty());
    assert_eq!(all_state(&host), before);
    assert_eq!(host.state_root().unwrap(), root);
    // An allowance but not the balance: the same.
    ok(call(
        &host,
        "bob",
        "ta",
        "approve",
        json!({"spender": "ex", "amount": 5000}),
    ));
    let before = all_state(&host);
    let r = call(
        &host,
        "bob",
        "ex",
        "swap",
        json!({"token_in": "ta", "amount_in": 5000}),
    );
    assert_eq!(r.status, Status::Reverted);
    assert!(
        r.error.as_deref().unwrap().contains("insufficient balance"),
        "{:?}",
        r.error
    );
    assert_eq!(all_state(&host), before);
    assert_eq!(balance(&host, "tb", "bob"), 0);
}

/// Runs a hostile method; when it fails, checks that its write ("touched") left no trace.
fn hostile(host: &Host, contract: &str, method: &str, args: Value) -> Receipt {
    let tx = Transaction::call(contract, method, args.to_string().into_bytes())
        .with_gas_limit(50_000_000);
    let (root, before) = (
        host.state_root().unwrap(),
        host.state(contract, None, b"").unwrap(),
    );
    let r = host.submit(&tx).unwrap();
    if r.status == Status::Reverted {
        assert_eq!(
            host.state(contract, None, b"").unwrap(),
            before,
            "{contract}.{method} left state"
        );
        assert_eq!(
            host.state_root().unwrap(),
            root,
            "{contract}.{method} changed the state"
        );
    }
    r
}

fn reverted_with(r: &Receipt, text: &str) {
    assert_eq!(
        r.status,
        Status::Reverted,
        "expected a revert containing {text:?}"
    );
    let err = r.error.as_deref().unwrap();
    assert!(err.contains(text), "{err:?} does not contain {text:?}");
}

#[test]
fn hostile_contracts_end_in_their_documented_outcomes() {
    let host = Host::in_memory().unwrap();
    for name in [
        "hostile_loop",
        "hostile_memory",
        "hostile_recursion",
        "hostile_output",
        "hostile_panic",
    ] {
        deploy(&host, name, name, Value::Null, "eve");
    }
    deploy(&host, "r1", "hostile_reentrancy", Value::Null, "eve");
    deploy(&host, "r2", "hostile_reentrancy", Value::Null, "eve");

    for m in ["spin", "spin_host", "spin_storage"] {
        let r = hostile(&host, "hostile_loop", m, Value::Null);
        reverted_with(&r, "out of gas");
        assert_eq!(r.gas_used, 50_000_000);
    }
    let r = hostile(&host, "hostile_output", "sized", json!({"bytes": 65536}));
    assert_eq!(r.status, Status::Committed);
    assert_eq!(r.results[0].output.len(), 65536);
    // (contract, method, arguments, what the revert says)
    let reverts = [
        (
            "hostile_memory",
            "grow",
            Value::Null,
            "memory allocation of",
        ),
        (
            "hostile_memory",
            "huge",
            Value::Null,
            "memory allocation of",
        ),
        (
            "hostile_memory",
            "pages",
            Value::Null,
            "memory.grow refused at 256 pages",
        ),
        ("hostile_recursion", "recurse", Value::Null, "out of bounds"),
        (
            "hostile_recursion",
            "recurse_shadow",
            Value::Null,
            "out of bounds",
        ),
        ("hostile_output", "huge", Value::Null, "OUTPUT_BYTES_MAX"),
        (
            "hostile_output",
            "sized",
            json!({"bytes": 65537}),
            "OUTPUT_BYTES_MAX",
        ),
        (
            "hostile_output",
            "huge_revert",
            Value::Null,
            "REVERT_MESSAGE_BYTES_MAX",
        ),
        (
            "hostile_output",
            "out_of_bounds",
            Value::Null,
            "outside the contract's",
        ),
        (
            "hostile_panic",
            "boom",
            Value::Null,
            "reverted: panicked: hostile panic: this contract always panics",
        ),
        (
            "hostile_panic",
            "unwrap_none",
            Value::Null,
            "panicked: called",
        ),
        ("hostile_panic", "trap", Value::Null, "trap"),
        (
            "hostile_panic",
            "divide",
            json!({"by": 0}),
            "panicked: attempt to divide by zero",
        ),
        (
            "r1",
            "self_call",
            Value::Null,
            "self call failed: reentrancy refused: r1 is already on the call stack",
        ),
        (
            "r1",
            "ping",
            json!({"peer": "r2"}),
            "peer failed: reverted: call back failed: reentrancy refused: r1 is already on the call stack",
        ),
    ];
    for (contract, method, args, says) in reverts {
        reverted_with(&hostile(&host, contract, method, args), says);
    }
    let r = hostile(&host, "r1", "probe", Value::Null);
    assert_eq!(r.status, Status::Committed);
    let probe: Value = serde_json::from_slice(&r.results[0].output).unwrap();
    assert_eq!(probe["status"], 1);
    host.verify().unwrap();
}

#[test]
fn the_sdk_imports_the_hosts_abi() {
    let sdk: Vec<(String, String)> = semel_sdk::abi::HOST_FUNCTIONS
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                format!("({}) -> ({})", h.params.join(", "), h.results.join(", ")),
            )
        })
        .collect();
    let host: Vec<(String, String)> = semel::abi::HOST_FUNCTIONS
        .iter()
        .map(|h| (h.name.to_owned(), semel::abi::signature_text(h)))
        .collect();
    assert_eq!(sdk, host);
}
