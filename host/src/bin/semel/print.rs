//! What the CLI prints: readable text by default, the JSON of interface §3–§4 with
//! `--json`.

use semel::{ContractInfo, HistoryEntry, PruneReport, QueryOutput, Receipt, Status, VerifyReport};
use serde_json::{Value, json};

fn text_or_null(bytes: &[u8]) -> Value {
    std::str::from_utf8(bytes).map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// Bytes as text when they are printable UTF-8, else as `0x` hex.
pub fn readable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => format!("0x{}", hex::encode(bytes)),
    }
}

pub fn receipt(r: &Receipt, json: bool) {
    if json {
        println!("{}", r.to_json());
        return;
    }
    let dup = if r.duplicate {
        " (duplicate: the stored receipt; not executed again)"
    } else {
        ""
    };
    println!(
        "{} {} at version {}{dup}",
        r.status.as_str(),
        r.tx_id,
        r.version
    );
    if r.status == Status::Reverted {
        println!("  error: {}", r.error.as_deref().unwrap_or("unknown"));
    }
    for c in &r.results {
        println!("  {}.{} -> {}", c.contract, c.method, readable(&c.output));
    }
    for e in &r.events {
        println!("  event {}/{}: {}", e.contract, e.topic, readable(&e.data));
    }
    println!("  gas used {}, state root {}", r.gas_used, r.state_root);
}

pub fn query(q: &QueryOutput, json: bool) {
    if json {
        println!(
            "{}",
            json!({"version": q.version, "output_hex": hex::encode(&q.output), "output": text_or_null(&q.output)})
        );
    } else {
        println!("{}", readable(&q.output));
    }
}

pub fn state(entries: &[(Vec<u8>, Vec<u8>)], json: bool) {
    if json {
        let rows: Vec<Value> = entries
            .iter()
            .map(|(k, v)| {
                json!({"key_hex": hex::encode(k), "key": text_or_null(k),
                       "value_hex": hex::encode(v), "value": text_or_null(v)})
            })
            .collect();
        println!("{}", Value::Array(rows));
        return;
    }
    if entries.is_empty() {
        println!("(no keys)");
    }
    for (k, v) in entries {
        println!("{} = {}", readable(k), readable(v));
    }
}

pub fn contracts(list: &[ContractInfo], json: bool) {
    if json {
        let rows: Vec<Value> = list
            .iter()
            .map(|c| json!({"name": c.name, "code_hash": c.code_hash.to_string(), "version": c.version}))
            .collect();
        println!("{}", Value::Array(rows));
        return;
    }
    if list.is_empty() {
        println!("(no contracts)");
    }
    for c in list {
        println!(
            "{:<24} code {}  deployed at version {}",
            c.name, c.code_hash, c.version
        );
    }
}

pub fn history(entries: &[HistoryEntry], json: bool) {
    if json {
        let rows: Vec<Value> = entries
            .iter()
            .map(|e| json!({"version": e.version, "tx_id": e.tx_id.to_string(), "status": e.status.as_str(), "calls": e.calls}))
            .collect();
        println!("{}", Value::Array(rows));
        return;
    }
    for e in entries {
        println!(
            "{:>8}  {}  {:<9}  {}",
            e.version,
            e.tx_id,
            e.status.as_str(),
            e.calls.join(", ")
        );
    }
}

pub fn verified(r: &VerifyReport, json: bool) {
    if json {
        println!(
            "{}",
            json!({"ok": true, "transactions": r.transactions, "state_root": r.state_root.to_string()})
        );
    } else {
        println!(
            "verified {} transactions: every receipt and the state root {} match re-execution",
            r.transactions, r.state_root
        );
    }
}

pub fn pruned(r: &PruneReport, latest: u64, json: bool) {
    if json {
        println!(
            "{}",
            json!({"horizon": r.horizon, "rows_removed": r.rows_removed, "latest": latest})
        );
    } else {
        println!(
            "removed {} state rows; versions {} to {latest} are readable (receipts and ids are all kept)",
            r.rows_removed, r.horizon
        );
    }
}
