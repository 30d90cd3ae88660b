//! `--sign-as NAME` and `semel sign`: signing the CLI's transactions (interface §7) with
//! a key of the keys dir, for the host id of the store, of the server, or given.

use anyhow::anyhow;
use ed25519_dalek::SigningKey;
use semel::{Batch, HostId, InputError, Transaction};
use serde_json::Value;

use crate::{Failure, client};

/// The host id a server reports (`GET /v1/health`).
pub fn server_host_id(server: &client::Client) -> Result<HostId, Failure> {
    let health = server.get("/v1/health", &[])?;
    health["host_id"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| {
            Failure::new(
                crate::Exit::HostFailure,
                anyhow!("the server's /v1/health has no host_id to sign for"),
            )
        })
}

/// Parses `--host-id HEX`.
pub fn parse_host_id(text: &str) -> Result<HostId, Failure> {
    text.parse()
        .map_err(|e| Failure::bad_input(anyhow!("--host-id {text:?}: {e}")))
}

/// `tx` signed with `key` for `host`, a deploy's or migrate's WAT converted to wasm
/// first (as submission would convert it: the content hash covers the wasm).
pub fn sign_one(
    mut tx: Transaction,
    key: &SigningKey,
    host: &HostId,
) -> Result<Transaction, InputError> {
    if let Some(code) = tx.body.code_mut() {
        *code = semel::abi::wasm_bytes(code)?;
    }
    tx.signed(key, host)
}

/// Signs every transaction of `batch` with `key` for `host`.
pub fn sign_batch(batch: Batch, key: &SigningKey, host: &HostId) -> Result<Batch, InputError> {
    Ok(match batch {
        Batch::One(tx) => Batch::One(sign_one(tx, key, host)?),
        Batch::Many(txs) => Batch::Many(
            txs.into_iter()
                .enumerate()
                .map(|(i, tx)| {
                    sign_one(tx, key, host)
                        .map_err(|e| InputError::Json(format!("transaction {i} of the batch: {e}")))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The transaction file's JSON with each transaction's id, sender and signature set
/// from `signed` (parsed from the same text, so the rest is as written).
pub fn signed_json(text: &[u8], signed: &Batch) -> Result<Value, Failure> {
    let mut value: Value = serde_json::from_slice(text)
        .map_err(|e| Failure::bad_input(anyhow!("malformed transaction: {e}")))?;
    let txs: Vec<&Transaction> = match signed {
        Batch::One(tx) => vec![tx],
        Batch::Many(txs) => txs.iter().collect(),
    };
    let items: Vec<&mut Value> = match &mut value {
        Value::Array(items) => items.iter_mut().collect(),
        one => vec![one],
    };
    for (item, tx) in items.into_iter().zip(txs) {
        let Some(object) = item.as_object_mut() else {
            return Err(Failure::bad_input(anyhow!(
                "a transaction is not an object"
            )));
        };
        object.insert("id".into(), Value::String(tx.id.to_string()));
        object.insert("sender".into(), Value::String(tx.sender.clone()));
        if let Some(sig) = &tx.signature {
            object.insert("signature".into(), sig.to_json());
        }
    }
    Ok(value)
}
