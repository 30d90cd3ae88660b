//! Shared helpers: fixture contracts and small builders.

use std::path::PathBuf;

use semel::{Call, Host, Receipt, Status, Transaction, TxBody};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Wasm bytes of `contracts/wat/NAME.wat`.
pub fn wat(name: &str) -> Vec<u8> {
    let path = repo().join("contracts/wat").join(format!("{name}.wat"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    semel::abi::wasm_bytes(&text).unwrap()
}

/// Deploys `contracts/wat/{code}.wat` as `name`, asserting it commits.
pub fn deploy(host: &Host, name: &str, code: &str) -> Receipt {
    let r = host
        .submit(&Transaction::deploy(name, wat(code), Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Committed, "deploy {name}: {:?}", r.error);
    r
}

/// A transaction of several calls.
pub fn calls(list: &[(&str, &str, &[u8])]) -> Transaction {
    let mut tx = Transaction::call(list[0].0, list[0].1, list[0].2.to_vec());
    if let TxBody::Calls(c) = &mut tx.body {
        c.extend(list[1..].iter().map(|(contract, method, args)| Call {
            contract: (*contract).to_owned(),
            method: (*method).to_owned(),
            args: args.to_vec(),
        }));
    }
    tx
}

/// The counter's value via a query.
pub fn count(host: &Host, at: Option<u64>) -> String {
    String::from_utf8(host.query("counter", "get", b"", at).unwrap().output).unwrap()
}

/// Argument for `proxy.forward`: call `contract.method(args)`.
pub fn forward(contract: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let mut v = vec![u8::try_from(contract.len()).unwrap()];
    v.extend_from_slice(contract.as_bytes());
    v.push(u8::try_from(method.len()).unwrap());
    v.extend_from_slice(method.as_bytes());
    v.extend_from_slice(args);
    v
}

/// A host with the counter deployed.
pub fn counter_host() -> Host {
    let host = Host::in_memory().unwrap();
    deploy(&host, "counter", "counter");
    host
}

/// Whether `text` is a host id as printed: 32 lowercase hex digits.
pub fn is_host_id_text(text: &str) -> bool {
    text.len() == 32 && text.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}
