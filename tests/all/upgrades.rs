//! Contract admins and upgrades (interface §7): a migrate by the admin gives the contract
//! new code and runs its `migrate` in the same transaction; by anyone else, after
//! `set-admin --none`, or when `migrate` reverts, nothing changes. Queries at earlier
//! versions run the code of their version, the registry keeps the code history in the
//! state, `verify` re-executes migrates, and a batch holding a migrate gives the
//! receipts of one at a time in every mode.

use std::process::Command;

use semel::storage::MemoryBackend;
use semel::{
    CodeHash, Concurrency, Host, HostOptions, InputError, SigningKey, Status, SubmitError,
    Transaction,
};
use serde_json::Value;

use crate::cli::semel_bin;
use crate::util::{repo, wat};

fn inc() -> Transaction {
    Transaction::call("counter", "inc", Vec::new())
}

/// A host with the counter deployed with `admin`, and counted up to 2.
fn admin_host(admin: Option<&str>) -> Host {
    let host = Host::in_memory().unwrap();
    let mut deploy = Transaction::deploy("counter", wat("counter"), Vec::new());
    if let Some(admin) = admin {
        deploy = deploy.with_admin(admin);
    }
    assert_eq!(host.submit(&deploy).unwrap().status, Status::Committed);
    for _ in 0..2 {
        assert_eq!(host.submit(&inc()).unwrap().status, Status::Committed);
    }
    host
}

fn get(host: &Host, at: Option<u64>) -> String {
    String::from_utf8(host.query("counter", "get", b"", at).unwrap().output).unwrap()
}

fn migrate(sender: &str, args: &[u8]) -> Transaction {
    Transaction::migrate("counter", wat("counter_v2"), args.to_vec()).with_sender(sender)
}

/// Submits `tx`, asserts it reverted with `why` in its error and that nothing but the
/// version changed: the code, the admin and the state root.
fn reverted(host: &Host, tx: &Transaction, why: &str) {
    let (before, root) = (host.contracts().unwrap(), host.state_root().unwrap());
    let r = host.submit(tx).unwrap();
    assert_eq!(r.status, Status::Reverted);
    let error = r.error.unwrap();
    assert!(error.contains(why), "{error}");
    assert_eq!(host.contracts().unwrap(), before);
    assert_eq!(r.state_root, root);
}

#[test]
fn the_admin_migrates_and_the_new_code_runs_its_migrate_in_the_same_transaction() {
    let host = admin_host(Some("alice"));
    let before = host.latest_version();
    // Simulated first: the receipt it would get, nothing recorded.
    let simulated = host.simulate(&[migrate("alice", b""), inc()]);
    let outputs: Vec<_> = simulated
        .into_iter()
        .map(|s| s.unwrap().receipt.results[0].output.clone())
        .collect();
    assert_eq!(
        outputs,
        [&b"1002"[..], b"1012"],
        "the inc after it runs the new code"
    );
    assert_eq!(
        (host.latest_version(), get(&host, None)),
        (before, "2".into())
    );
    let r = host.submit(&migrate("alice", b"")).unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    assert_eq!(r.results[0].method, "migrate");
    assert_eq!(
        r.results[0].output, b"1002",
        "migrate ran on the state: 2 + 1000"
    );
    assert_eq!(get(&host, None), "v2:1002");
    // The old code answers at the old versions; the new one from the migrate on.
    assert_eq!(get(&host, Some(before)), "2");
    assert_eq!(get(&host, Some(r.version)), "v2:1002");
    assert_eq!(
        host.submit(&inc()).unwrap().results[0].output,
        b"1012",
        "the new inc adds 10"
    );
    // `migrate` is an ordinary method too (interface §1): this code guards it, so neither
    // a direct call nor a second migrate to it runs it again.
    let direct = Transaction::call("counter", "migrate", Vec::new()).with_sender("mallory");
    reverted(&host, &direct, "already at schema 2");
    reverted(&host, &migrate("alice", b""), "already at schema 2");
    assert_eq!(get(&host, None), "v2:1012");
    let [c] = &host.contracts().unwrap()[..] else {
        panic!("one contract")
    };
    assert_eq!(c.admin.as_deref(), Some("alice"));
    assert_eq!(c.code_hash, CodeHash::of(&wat("counter_v2")));
    assert_eq!((c.version, c.code_since), (1, r.version));
    assert_eq!(c.earlier_code, vec![(1, CodeHash::of(&wat("counter")))]);
    // The log re-executes to the same receipts and roots, migrate included.
    assert_eq!(host.verify().unwrap().transactions, host.latest_version());
}

#[test]
fn a_migrate_from_anyone_but_the_admin_or_whose_migrate_reverts_changes_nothing() {
    let host = admin_host(Some("alice"));
    reverted(
        &host,
        &migrate("bob", b""),
        "only the admin of counter (alice)",
    );
    reverted(&host, &migrate("alice", b"x"), "migrate refused");
    // New code without a `migrate` export: refused the same way.
    let no_migrate = Transaction::migrate("counter", wat("kv"), Vec::new()).with_sender("alice");
    reverted(&host, &no_migrate, "exports no migrate method");
    let unknown = Transaction::migrate("nobody", wat("counter_v2"), Vec::new());
    reverted(&host, &unknown, "unknown contract nobody");
    assert_eq!(get(&host, None), "2", "the old code and state stay");
    let [c] = &host.contracts().unwrap()[..] else {
        panic!("one contract")
    };
    assert!(c.earlier_code.is_empty());
    // The old code has no `migrate` method to call.
    let call = Transaction::call("counter", "migrate", Vec::new()).with_sender("alice");
    reverted(&host, &call, "contract counter has no method migrate");
}

#[test]
fn without_an_admin_a_contract_is_never_upgradable() {
    let host = admin_host(None);
    reverted(&host, &migrate("anonymous", b""), "has no admin");
    let host = admin_host(Some("alice"));
    reverted(
        &host,
        &Transaction::set_admin("counter", Some("bob")).with_sender("bob"),
        "only the admin of counter (alice) may set-admin it, not bob",
    );
    let r = host
        .submit(&Transaction::set_admin("counter", Some("bob")).with_sender("alice"))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    reverted(
        &host,
        &migrate("alice", b""),
        "only the admin of counter (bob)",
    );
    let none = Transaction::set_admin("counter", None).with_sender("bob");
    assert_eq!(host.submit(&none).unwrap().status, Status::Committed);
    assert_eq!(host.contracts().unwrap()[0].admin, None);
    reverted(&host, &migrate("bob", b""), "has no admin");
    reverted(
        &host,
        &Transaction::set_admin("counter", Some("bob")).with_sender("bob"),
        "has no admin",
    );
    assert_eq!(get(&host, None), "2");
    assert_eq!(host.verify().unwrap().transactions, host.latest_version());
}

#[test]
fn a_migrate_is_exactly_once_and_signed_by_the_admin_key() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let account = semel::account_id(&key.verifying_key().to_bytes());
    let host = admin_host(Some(&account));
    let tx = Transaction::migrate("counter", wat("counter_v2"), Vec::new())
        .signed(&key, &host.host_id())
        .unwrap();
    let first = host.submit(&tx).unwrap();
    assert_eq!(first.status, Status::Committed, "{:?}", first.error);
    let again = host.submit(&tx).unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (again.version, get(&host, None)),
        (first.version, "v2:1002".into())
    );
    // The same id with other arguments is a conflict; nothing runs.
    let other = Transaction::migrate("counter", wat("counter_v2"), b"x".to_vec())
        .with_id(tx.id)
        .signed(&key, &host.host_id())
        .unwrap();
    assert!(matches!(
        host.submit(&other),
        Err(SubmitError::Conflict { .. })
    ));
    // Signed by another key, the admin's account is not the sender: reverted.
    let stranger = SigningKey::from_bytes(&[8; 32]);
    let tx = Transaction::migrate("counter", wat("counter_v2"), Vec::new())
        .signed(&stranger, &host.host_id())
        .unwrap();
    reverted(&host, &tx, "only the admin of counter");
}

#[test]
fn bad_admins_and_bad_code_are_refused_before_anything_is_recorded() {
    let host = admin_host(Some("alice"));
    let before = host.latest_version();
    let refused = |tx: &Transaction, what: &str| match host.submit(tx) {
        Err(SubmitError::Rejected(e)) => assert!(e.to_string().contains(what), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    };
    refused(
        &Transaction::deploy("c2", wat("counter"), Vec::new()).with_admin("ed25519:00ff"),
        "is not an account id",
    );
    refused(
        &Transaction::set_admin("counter", Some("ed25519:ABCD")),
        "is not an account id",
    );
    refused(&Transaction::set_admin("counter", Some("")), "admin");
    refused(
        &Transaction::migrate("counter", b"\0asm\x01\0\0\0junk".to_vec(), Vec::new()),
        "wasm",
    );
    refused(
        &Transaction::migrate("bad name", wat("counter_v2"), Vec::new()),
        "contract name",
    );
    assert_eq!(host.latest_version(), before);
    // The JSON forms: exactly one body, and set_admin names its admin (null for none).
    let json_err = |j: &str| {
        Transaction::from_json(j.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert!(json_err(r#"{"set_admin": {"name": "counter"}}"#).contains("needs \"admin\""));
    assert!(
        json_err(r#"{"migrate": {"name": "c", "code_hash": "00"}, "calls": []}"#)
            .contains("not several")
    );
    assert!(json_err(r#"{"migrate": {"name": "c"}}"#).contains("needs \"code_base64\""));
    assert!(json_err(r#"{"set_admin": 5}"#).contains("a set_admin must be a JSON object"));
    let none = Transaction::from_json(br#"{"set_admin": {"name": "counter", "admin": null}}"#);
    assert_eq!(
        none.unwrap().body,
        semel::TxBody::SetAdmin {
            name: "counter".into(),
            admin: None
        }
    );
    assert!(matches!(
        Transaction::from_json(br#"{"deploy": {"name": "c", "code_base64": "", "admin": 5}}"#),
        Err(InputError::Json(_))
    ));
}

/// A batch with migrates and set-admins among calls, in each mode, against one at a time.
#[test]
fn a_batch_with_migrates_gives_the_sequential_receipts_in_every_mode() {
    let batch = || {
        vec![
            inc(),
            migrate("bob", b""),
            migrate("alice", b""),
            inc(),
            Transaction::set_admin("counter", Some("bob")).with_sender("alice"),
            migrate("alice", b""),
            migrate("bob", b"x"),
            inc(),
            migrate("bob", b""),
            inc(),
        ]
    };
    let run = |concurrency: Concurrency| {
        let options = HostOptions {
            concurrency,
            workers: 4,
            ..HostOptions::default()
        };
        let host = Host::with_backend(Box::new(MemoryBackend::new()), None, options).unwrap();
        let deploy = Transaction::deploy("counter", wat("counter"), Vec::new()).with_admin("alice");
        host.submit(&deploy).unwrap();
        let txs: Vec<Transaction> = batch()
            .into_iter()
            .enumerate()
            .map(|(i, tx)| tx.with_id(semel::Uuid::from_u128(u128::try_from(i).unwrap() + 1)))
            .collect();
        let mut receipts: Vec<_> = host
            .submit_all(&txs)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        // Then a batch of calls alone, which runs in parallel: on the new code.
        let incs: Vec<Transaction> = (0..8).map(|_| inc()).collect();
        receipts.extend(host.submit_all(&incs).into_iter().map(|r| {
            let mut r = r.unwrap();
            r.tx_id = semel::Uuid::nil();
            r
        }));
        (receipts, host.contracts().unwrap(), get(&host, None))
    };
    let sequential = run(Concurrency::Sequential);
    assert_eq!(
        sequential.2, "v2:1111",
        "1 + 1000 + 10 + 10 (the second migrate finds schema 2) + 10, then 8 × 10"
    );
    for mode in [Concurrency::Optimistic, Concurrency::Pessimistic] {
        assert_eq!(run(mode), sequential, "{mode:?}");
    }
}

#[test]
fn a_migrated_contract_survives_reopening_and_verify_re_executes_the_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let host = Host::open(dir.path(), HostOptions::default()).unwrap();
        let deploy = Transaction::deploy("counter", wat("counter"), Vec::new()).with_admin("alice");
        host.submit(&deploy).unwrap();
        host.submit(&inc()).unwrap();
        assert_eq!(
            host.submit(&migrate("alice", b"")).unwrap().status,
            Status::Committed
        );
        host.state_root().unwrap()
    };
    let host = Host::open(dir.path(), HostOptions::default()).unwrap();
    assert_eq!(host.state_root().unwrap(), root);
    assert_eq!(get(&host, None), "v2:1001");
    assert_eq!(get(&host, Some(2)), "1");
    let report = host.verify().unwrap();
    assert_eq!((report.transactions, report.state_root), (3, root));
}

fn semel(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(semel_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_deploys_with_an_admin_migrates_and_sets_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let wat_file = |n: &str| {
        repo()
            .join(format!("contracts/wat/{n}.wat"))
            .display()
            .to_string()
    };
    let (v1, v2) = (wat_file("counter"), wat_file("counter_v2"));
    let ok = |out: std::process::Output, code: i32| {
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(
        semel(
            &data,
            &["deploy", &v1, "--name", "counter", "--admin", "alice"],
        ),
        0,
    );
    ok(semel(&data, &["call", "counter", "inc"]), 0);
    // Not the admin: reverted (exit 1), receipt printed.
    let out = ok(semel(&data, &["--json", "migrate", "counter", &v2]), 1);
    let receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        receipt["error"]
            .as_str()
            .unwrap()
            .contains("only the admin")
    );
    let out = ok(
        semel(
            &data,
            &["--json", "migrate", "counter", &v2, "--sender", "alice"],
        ),
        0,
    );
    let receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt["results"][0]["output"], "1001");
    let out = ok(semel(&data, &["--json", "contracts"]), 0);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["admin"], "alice");
    let history = list[0]["code_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["since"], 1);
    assert_eq!(history[1]["code_hash"], list[0]["code_hash"]);
    // --none and an account together are a usage error; then --none by the admin.
    ok(
        semel(
            &data,
            &["set-admin", "counter", "bob", "--none", "--sender", "alice"],
        ),
        2,
    );
    ok(semel(&data, &["set-admin", "counter"]), 2);
    ok(
        semel(
            &data,
            &["set-admin", "counter", "--none", "--sender", "alice"],
        ),
        0,
    );
    let out = ok(semel(&data, &["--json", "contracts"]), 0);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["admin"], Value::Null);
    ok(
        semel(&data, &["migrate", "counter", &v2, "--sender", "alice"]),
        1,
    );
    // A bad admin is refused before anything is recorded.
    let out = ok(
        semel(
            &data,
            &["deploy", &v1, "--name", "c2", "--admin", "ed25519:zz"],
        ),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an account id"));
    let out = ok(
        semel(
            &data,
            &["--json", "query", "counter", "get", "--at-version", "2"],
        ),
        0,
    );
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["output"], "1", "the old code at an old version");
    ok(semel(&data, &["verify"]), 0);
}
