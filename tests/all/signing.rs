//! Signed transactions (interface §7): what verifies commits once, every refusal records
//! nothing, malformed and malleable signatures are refused, and the CLI's keys,
//! `--sign-as`, `semel sign` and a server without `--allow-unsigned`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use semel::{Host, InputError, SigningKey, Status, SubmitError, Transaction, TxSignature};
use serde_json::Value;

use crate::cli::semel_bin;
use crate::util::{counter_host, repo};

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn inc() -> Transaction {
    Transaction::call("counter", "inc", Vec::new())
}

/// Submits `tx` and asserts it is refused as unauthorized with `what` in the message,
/// nothing recorded.
fn refused(host: &Host, tx: &Transaction, what: &str) {
    let before = host.latest_version();
    match host.submit(tx) {
        Err(SubmitError::Rejected(e @ InputError::Unauthorized(_))) => {
            assert!(e.to_string().contains(what), "{e}");
        }
        other => panic!("expected unauthorized, got {other:?}"),
    }
    assert_eq!(host.latest_version(), before);
    assert!(host.receipt(&tx.id).unwrap().is_none());
}

#[test]
fn a_signed_transaction_commits_once_and_a_replay_is_a_duplicate() {
    let host = counter_host();
    let tx = inc().signed(&key(1), &host.host_id()).unwrap();
    assert_eq!(
        tx.sender,
        semel::account_id(&key(1).verifying_key().to_bytes())
    );
    let r = host.submit(&tx).unwrap();
    assert_eq!(r.status, Status::Committed);
    let again = host.submit(&tx).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.version, r.version);
    // The signature is not content: the same transaction unsigned... is refused for
    // its ed25519 sender, but its content hash is the signed one's.
    // A deploy is signed over its wasm: WAT must be converted first.
    let wat = std::fs::read(repo().join("contracts/wat/counter.wat")).unwrap();
    let e = Transaction::deploy("c2", wat.clone(), Vec::new())
        .signed(&key(1), &host.host_id())
        .unwrap_err();
    assert!(e.to_string().contains("not WAT"), "{e}");
    let wasm = semel::abi::wasm_bytes(&wat).unwrap();
    let deploy = Transaction::deploy("c2", wasm, Vec::new())
        .signed(&key(1), &host.host_id())
        .unwrap();
    assert_eq!(host.submit(&deploy).unwrap().status, Status::Committed);
    let mut bare = tx.clone();
    bare.signature = None;
    assert_eq!(bare.content_hash(), tx.content_hash());
}

#[test]
fn each_refusal_records_nothing() {
    let host = counter_host();
    let signed = inc().signed(&key(1), &host.host_id()).unwrap();
    // A signature that does not verify.
    let mut bad = signed.clone();
    bad.signature.as_mut().unwrap().signature[0] ^= 1;
    refused(&host, &bad, "does not verify");
    // Content changed after signing.
    let mut changed = signed.clone();
    changed.gas_limit -= 1;
    refused(&host, &changed, "does not verify");
    // A sender that is not the key's account.
    let mut other = signed.clone();
    other.sender = "alice".into();
    refused(&host, &other, "its sender is alice");
    let mut other_key = signed.clone();
    other_key.sender = semel::account_id(&key(2).verifying_key().to_bytes());
    refused(&host, &other_key, "but its sender is ed25519:");
    // Unsigned with an ed25519 sender.
    let unsigned = inc().with_sender(&signed.sender);
    refused(&host, &unsigned, "is unsigned");
    // Plain unsigned ones are fine.
    assert_eq!(
        host.submit(&inc().with_sender("alice")).unwrap().status,
        Status::Committed
    );
}

#[test]
fn a_signature_from_one_store_is_refused_on_another() {
    let a = counter_host();
    let b = counter_host();
    assert_ne!(a.host_id(), b.host_id());
    let tx = inc().signed(&key(1), &a.host_id()).unwrap();
    refused(&b, &tx, "does not verify");
    assert_eq!(a.submit(&tx).unwrap().status, Status::Committed);
}

/// The order of the ed25519 group, little endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn malleable_signatures_are_refused() {
    let host = counter_host();
    let tx = inc().signed(&key(1), &host.host_id()).unwrap();
    // s + L: the same point equation, a non-canonical scalar.
    let mut high = tx.clone();
    let sig = &mut high.signature.as_mut().unwrap().signature;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = u8::try_from(sum & 0xff).unwrap();
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + L fits 256 bits");
    refused(&host, &high, "does not verify");
    // A small-order public key (the identity) with R = identity and s = 0 satisfies the
    // unbatched equation for every message; strict verification refuses it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let weak = inc()
        .with_sender(&semel::account_id(&identity))
        .with_id(semel::Uuid::new_v4());
    let weak = Transaction {
        signature: Some(Box::new(TxSignature {
            public_key: identity,
            signature: sig,
        })),
        ..weak
    };
    refused(&host, &weak, "");
    assert_eq!(host.latest_version(), 1);
}

#[test]
fn malformed_signatures_are_refused_at_parse_naming_the_field() {
    let pk = "ab".repeat(32);
    let sig = "cd".repeat(64);
    let tx = |signature: &str| {
        format!(
            r#"{{"sender":"x","calls":[{{"contract":"c","method":"m"}}],"signature":{signature}}}"#
        )
    };
    for (signature, what) in [
        (
            format!(r#"{{"public_key":"{}","signature":"{sig}"}}"#, &pk[2..]),
            "signature.public_key must be 64 hex digits",
        ),
        (
            format!(r#"{{"public_key":"{pk}","signature":"{}00"}}"#, sig),
            "signature.signature must be 128 hex digits",
        ),
        (
            format!(r#"{{"public_key":"{}zz","signature":"{sig}"}}"#, &pk[2..]),
            "signature.public_key is not hex",
        ),
        (
            format!(r#"{{"public_key":"{pk}"}}"#),
            "missing field `signature`",
        ),
        (
            format!(r#"{{"signature":"{sig}"}}"#),
            "missing field `public_key`",
        ),
        (
            format!(r#"{{"public_key":"{pk}","signature":"{sig}","extra":1}}"#),
            "unknown field `extra`",
        ),
        ("\"abc\"".to_owned(), "invalid type"),
    ] {
        let e = Transaction::from_json(tx(&signature).as_bytes()).unwrap_err();
        assert!(e.to_string().contains(what), "{signature}: {e}");
    }
    let good = Transaction::from_json(
        tx(&format!(r#"{{"public_key":"{pk}","signature":"{sig}"}}"#)).as_bytes(),
    )
    .unwrap();
    assert_eq!(good.signature.unwrap().public_key, [0xab; 32]);
}

fn semel(data: &Path, keys: &Path, args: &[&str]) -> Output {
    Command::new(semel_bin())
        .arg("--data-dir")
        .arg(data)
        .arg("--keys-dir")
        .arg(keys)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn counter_wat() -> String {
    repo()
        .join("contracts/wat/counter.wat")
        .display()
        .to_string()
}

#[test]
fn keys_commands_and_key_file_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let account = ok(&semel(&data, &keys, &["keys", "new", "alice"]));
    let account = account.trim();
    assert!(
        account.starts_with("ed25519:") && account.len() == 72,
        "{account}"
    );
    let file = keys.join("alice.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(text["format"], "semel-key-v1");
    assert_eq!(
        format!("ed25519:{}", text["public_key_hex"].as_str().unwrap()),
        account
    );
    // An existing name is refused; a bad name is refused.
    let o = semel(&data, &keys, &["keys", "new", "alice"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    let o = semel(&data, &keys, &["keys", "new", "../evil"]);
    assert_eq!(o.status.code(), Some(2));
    ok(&semel(&data, &keys, &["keys", "new", "bob"]));
    let list = ok(&semel(&data, &keys, &["keys", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], format!("alice\t{account}"));
    assert!(lines[1].starts_with("bob\ted25519:"));
    let list: Value =
        serde_json::from_str(&ok(&semel(&data, &keys, &["--json", "keys", "list"]))).unwrap();
    assert_eq!(list[0]["name"], "alice");
    assert_eq!(list[0]["account_id"], account);
    let show: Value = serde_json::from_str(&ok(&semel(
        &data,
        &keys,
        &["--json", "keys", "show", "alice"],
    )))
    .unwrap();
    assert_eq!(show, list[0]);
    // Readable by others: refused, naming the file.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = semel(&data, &keys, &["keys", "show", "alice"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("alice.json") && err.contains("group or others"),
        "{err}"
    );
    // `keys list` still lists the good keys, names the bad one and exits 2.
    let o = semel(&data, &keys, &["keys", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("bob\ted25519:"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("key alice") && err.contains("1 of 2 key files"),
        "{err}"
    );
    let o = semel(&data, &keys, &["--json", "keys", "list"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    // The list, then the failure as `--json` prints every failure.
    let listed: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(listed[0]["name"], "alice");
    assert!(
        listed[0]["error"]
            .as_str()
            .unwrap()
            .contains("group or others")
    );
    assert_eq!(listed[1]["name"], "bob");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Corrupt: refused, naming the file and the problem.
    std::fs::write(keys.join("bob.json"), b"{\"format\":\"semel-key-v1\"}").unwrap();
    let o = semel(&data, &keys, &["keys", "show", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bob.json is corrupt") && err.contains("missing field"),
        "{err}"
    );
    // Longer than KEY_FILE_BYTES_MAX (4,096): refused unread, naming the bound.
    std::fs::write(keys.join("bob.json"), vec![b' '; 4097]).unwrap();
    let o = semel(&data, &keys, &["keys", "show", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("longer than 4096 bytes"), "{err}");
}

#[test]
fn sign_as_and_semel_sign_on_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let account = ok(&semel(&data, &keys, &["keys", "new", "alice"]))
        .trim()
        .to_owned();
    let r: Value = serde_json::from_str(&ok(&semel(
        &data,
        &keys,
        &[
            "--json",
            "deploy",
            &counter_wat(),
            "--name",
            "counter",
            "--sign-as",
            "alice",
        ],
    )))
    .unwrap();
    assert_eq!(r["status"], "committed");
    let r: Value = serde_json::from_str(&ok(&semel(
        &data,
        &keys,
        &["--json", "call", "counter", "inc", "--sign-as", "alice"],
    )))
    .unwrap();
    assert_eq!(r["status"], "committed");
    // `semel sign` gives the file an id and a signature; `semel tx` then commits it.
    let file = dir.path().join("tx.json");
    std::fs::write(
        &file,
        r#"{"calls":[{"contract":"counter","method":"inc"}]}"#,
    )
    .unwrap();
    let signed = ok(&semel(
        &data,
        &keys,
        &["sign", file.to_str().unwrap(), "--sign-as", "alice"],
    ));
    let v: Value = serde_json::from_str(&signed).unwrap();
    assert_eq!(v["sender"], account.as_str());
    assert_eq!(v["signature"]["public_key"].as_str().unwrap().len(), 64);
    assert_eq!(v["signature"]["signature"].as_str().unwrap().len(), 128);
    std::fs::write(&file, &signed).unwrap();
    let r: Value = serde_json::from_str(&ok(&semel(
        &data,
        &keys,
        &["--json", "tx", file.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(r["status"], "committed");
    assert_eq!(r["tx_id"], v["id"]);
    // Signed for another host id: refused, nothing recorded.
    let other = ok(&semel(
        &data,
        &keys,
        &[
            "sign",
            file.to_str().unwrap(),
            "--sign-as",
            "alice",
            "--host-id",
            &"00".repeat(16),
        ],
    ));
    let mut other: Value = serde_json::from_str(&other).unwrap();
    other["id"] = Value::String(semel::Uuid::new_v4().to_string());
    std::fs::write(&file, other.to_string()).unwrap();
    let o = semel(&data, &keys, &["tx", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unauthorized"));
    // A batch: each transaction signed.
    std::fs::write(
        &file,
        r#"[{"calls":[{"contract":"counter","method":"inc"}]},{"calls":[{"contract":"counter","method":"inc"}]}]"#,
    )
    .unwrap();
    let out = ok(&semel(
        &data,
        &keys,
        &["--json", "tx", file.to_str().unwrap(), "--sign-as", "alice"],
    ));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "committed")
    );
    // The log holds no signatures; re-execution replays it all the same.
    ok(&semel(&data, &keys, &["verify"]));
}

#[test]
fn a_server_without_allow_unsigned_takes_signed_transactions_only() {
    use crate::serve::{Server, agent, post};
    let dir = tempfile::tempdir().unwrap();
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    ok(&semel(&data, &keys, &["keys", "new", "alice"]));
    let mut server = Server::start_strict(&data, &[]);
    let agent = agent();
    let (status, _, problem) = post(
        &agent,
        &format!("{}/v1/tx", server.url),
        r#"{"calls":[{"contract":"counter","method":"inc"}]}"#,
    );
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["type"], "urn:semel:problem:unauthorized");
    let remote = |args: &[&str]| {
        Command::new(semel_bin())
            .arg("--server")
            .arg(&server.url)
            .arg("--keys-dir")
            .arg(&keys)
            .args(args)
            .output()
            .unwrap()
    };
    let o = remote(&["--json", "deploy", &counter_wat(), "--name", "counter"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_str(&ok(&remote(&[
        "--json",
        "deploy",
        &counter_wat(),
        "--name",
        "counter",
        "--sign-as",
        "alice",
    ])))
    .unwrap();
    assert_eq!(r["status"], "committed");
    let r: Value = serde_json::from_str(&ok(&remote(&[
        "--json",
        "call",
        "counter",
        "inc",
        "--sign-as",
        "alice",
    ])))
    .unwrap();
    assert_eq!(r["status"], "committed");
    let file = dir.path().join("tx.json");
    std::fs::write(
        &file,
        r#"{"calls":[{"contract":"counter","method":"inc"}]}"#,
    )
    .unwrap();
    let r: Value = serde_json::from_str(&ok(&remote(&[
        "--json",
        "tx",
        file.to_str().unwrap(),
        "--sign-as",
        "alice",
    ])))
    .unwrap();
    assert_eq!(r["status"], "committed");
    assert_eq!(r["version"], 3);
    // `semel sign --server` signs for the server's host id (GET /v1/health).
    let signed = ok(&remote(&[
        "sign",
        file.to_str().unwrap(),
        "--sign-as",
        "alice",
    ]));
    std::fs::write(&file, signed).unwrap();
    let r: Value =
        serde_json::from_str(&ok(&remote(&["--json", "tx", file.to_str().unwrap()]))).unwrap();
    assert_eq!(
        (r["status"].as_str(), r["version"].as_u64()),
        (Some("committed"), Some(4))
    );
    // Signed, but not good: each is 401 `unauthorized` naming what failed, and nothing
    // is recorded: a signature with a bit flipped, and a good signature on a
    // transaction whose sender is not the key's account.
    let mut tampered: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    tampered["id"] = Value::String(semel::Uuid::new_v4().to_string());
    let mut other_sender = tampered.clone();
    other_sender["sender"] = Value::String("bob".into());
    let mut bad_sig = tampered.clone();
    let sig = bad_sig["signature"]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    bad_sig["signature"]["signature"] = Value::String(format!("{flipped}{}", &sig[1..]));
    for (body, says) in [
        (&bad_sig, "does not verify"),
        (&other_sender, "but its sender is bob"),
    ] {
        let (status, _, problem) =
            post(&agent, &format!("{}/v1/tx", server.url), &body.to_string());
        assert_eq!(status, 401, "{problem}");
        assert_eq!(problem["type"], "urn:semel:problem:unauthorized");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{problem}"
        );
        let (s, _, _) = crate::serve::get(
            &agent,
            &format!("{}/v1/tx/{}", server.url, body["id"].as_str().unwrap()),
        );
        assert_eq!(s, 404, "nothing recorded");
    }
    let (_, _, h) = crate::serve::get(&agent, &format!("{}/v1/health", server.url));
    assert_eq!(h["version"], 4, "nothing was recorded");
    assert!(server.stop().success());
}

/// `--sign-as` on `migrate` and `set-admin` from the CLI: the key's account is the
/// sender, so a contract whose admin is that account is migrated by it, and another
/// key's signature is a reverted receipt.
#[test]
fn sign_as_migrates_and_sets_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (data, keys) = (dir.path().join("data"), dir.path().join("keys"));
    let alice = ok(&semel(&data, &keys, &["keys", "new", "alice"]))
        .trim()
        .to_owned();
    ok(&semel(&data, &keys, &["keys", "new", "mallory"]));
    let wat = |name: &str| {
        crate::util::repo()
            .join("contracts/wat")
            .join(name)
            .to_str()
            .unwrap()
            .to_owned()
    };
    ok(&semel(
        &data,
        &keys,
        &[
            "deploy",
            &wat("counter.wat"),
            "--name",
            "counter",
            "--admin",
            &alice,
        ],
    ));
    let migrate = |who: &str| {
        semel(
            &data,
            &keys,
            &[
                "--json",
                "migrate",
                "counter",
                &wat("counter_v2.wat"),
                "--sign-as",
                who,
            ],
        )
    };
    let o = migrate("mallory");
    assert_eq!(o.status.code(), Some(1), "not the admin: reverted");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "reverted", "{r}");
    let r: Value = serde_json::from_str(&ok(&migrate("alice"))).unwrap();
    assert_eq!(r["status"], "committed", "{r}");
    let r: Value = serde_json::from_str(&ok(&semel(
        &data,
        &keys,
        &[
            "--json",
            "set-admin",
            "counter",
            "--none",
            "--sign-as",
            "alice",
        ],
    )))
    .unwrap();
    assert_eq!(r["status"], "committed", "{r}");
    let contracts: Value =
        serde_json::from_str(&ok(&semel(&data, &keys, &["--json", "contracts"]))).unwrap();
    assert_eq!(contracts[0]["admin"], Value::Null, "{contracts}");
    ok(&semel(&data, &keys, &["verify"]));
}

/// `semel bench --signed` signs every transaction (the host verifies each) and says so;
/// other workloads than the counter are refused (the sender becomes the key's account).
#[test]
fn bench_signed_signs_counter_increments_only() {
    let run = |args: &[&str]| {
        std::process::Command::new(crate::cli::semel_bin())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["bench", "--in-memory", "--signed", "--txs", "30", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["txs"].as_u64(), report["signed"].as_bool()),
        (Some(30), Some(true))
    );
    let out = run(&["bench", "--in-memory", "--signed", "--workload", "transfer"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("counter"));
}
