//! Interoperability of signatures (interface §7) with an independent ed25519: Python's
//! `cryptography` (and the `blake3` package) sign a transaction from docs/ABI.md's
//! bytes alone, which commits, and verify a signature Semel made. Without python3 or
//! the packages the tests say plainly that they were skipped, unless
//! `SEMEL_REQUIRE_PYTHON` is set (CI sets it), and then they fail.

use std::io::Write;
use std::process::{Command, Stdio};

use semel::{SigningKey, Status, Transaction};

use crate::util::counter_host;

/// Builds the content encoding, signing bytes and signature as docs/ABI.md says.
const SIGNER: &str = r#"
import json, struct, sys, uuid, blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
host_id = bytes.fromhex(sys.argv[1])
key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[2]))
public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
sender = "ed25519:" + public.hex()
tx_id = uuid.uuid4()
gas = 1000000
def s(b): return struct.pack("<I", len(b)) + b
content = s(sender.encode()) + struct.pack("<Q", gas) + b"\x00" + struct.pack("<I", 1)
content += s(b"counter") + s(b"inc") + s(b"")
signing = b"semel-tx-v1" + host_id + tx_id.bytes + blake3.blake3(content).digest()
sig = key.sign(blake3.blake3(signing).digest())
print(json.dumps({"id": str(tx_id), "sender": sender, "gas_limit": gas,
    "calls": [{"contract": "counter", "method": "inc"}],
    "signature": {"public_key": public.hex(), "signature": sig.hex()}}))
"#;

/// Verifies a signature from the public key, host id, tx id and content encoding.
const VERIFIER: &str = r#"
import sys, uuid, blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
public, sig, host_id, tx_id, content = sys.argv[1:6]
signing = b"semel-tx-v1" + bytes.fromhex(host_id) + uuid.UUID(tx_id).bytes \
    + blake3.blake3(bytes.fromhex(content)).digest()
Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
    bytes.fromhex(sig), blake3.blake3(signing).digest())
print("verified")
"#;

/// Whether python3 with the packages is here; says why not (or fails when required).
fn python_ready(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography, blake3"])
        .stderr(Stdio::piped())
        .output();
    let why = match probe {
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!(
            "python3 lacks `cryptography` or `blake3`: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ),
        Err(e) => format!("no python3: {e}"),
    };
    if std::env::var_os("SEMEL_REQUIRE_PYTHON").is_some() {
        panic!("{test}: SEMEL_REQUIRE_PYTHON is set but {why}");
    }
    eprintln!("SKIPPED {test}: {why} (pip install cryptography blake3 to run it)");
    false
}

fn python(script: &str, args: &[&str]) -> String {
    let mut child = Command::new("python3")
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_transaction_python_signs_from_the_docs_commits() {
    if !python_ready("a_transaction_python_signs_from_the_docs_commits") {
        return;
    }
    let host = counter_host();
    let seed = "2a".repeat(32);
    let out = python(SIGNER, &[&host.host_id().to_string(), &seed]);
    let tx = Transaction::from_json(out.trim().as_bytes()).unwrap();
    assert!(tx.signature.is_some());
    let r = host.submit(&tx).unwrap();
    assert_eq!(r.status, Status::Committed, "{:?}", r.error);
    assert!(host.submit(&tx).unwrap().duplicate);
}

#[test]
fn python_verifies_a_signature_semel_made() {
    if !python_ready("python_verifies_a_signature_semel_made") {
        return;
    }
    let host = counter_host();
    let key = SigningKey::from_bytes(&[5; 32]);
    let tx = Transaction::call("counter", "inc", b"{\"n\":1}".to_vec())
        .signed(&key, &host.host_id())
        .unwrap();
    let sig = tx.signature.as_ref().unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let out = python(
        VERIFIER,
        &[
            &hex(&sig.public_key),
            &hex(&sig.signature),
            &host.host_id().to_string(),
            &tx.id.to_string(),
            &hex(&tx.content()),
        ],
    );
    assert_eq!(out.trim(), "verified");
}
