//! What the CLI prints: readable text by default, the JSON of interface §3–§4 with
//! `--json`.

use semel::{
    ContractInfo, HistoryEntry, PruneReport, QueryOutput, Receipt, StateListing, Status,
    VerifyReport,
};
use serde::Serialize;

/// The JSON of `value` (the library's `Serialize` shapes) on one line.
fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("semel: cannot encode the output as JSON: {e}"),
    }
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
        print_json(r);
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
        print_json(q);
    } else {
        println!("{}", readable(&q.output));
    }
}

pub fn state(entries: &[(Vec<u8>, Vec<u8>)], json: bool) {
    if json {
        print_json(&StateListing(entries));
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
        print_json(&list);
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
        print_json(&entries);
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
        print_json(r);
    } else {
        println!(
            "verified {} transactions: every receipt and the state root {} match re-execution",
            r.transactions, r.state_root
        );
    }
}

pub fn pruned(r: &PruneReport, json: bool) {
    if json {
        print_json(r);
    } else {
        println!(
            "removed {} state rows; versions {} to {} are readable (receipts and ids are all kept)",
            r.rows_removed, r.horizon, r.latest
        );
    }
}
