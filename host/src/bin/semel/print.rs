//! What the CLI prints: readable text by default, the JSON of interface §3–§4 with
//! `--json`. Every line goes through [`outln!`], which never panics: a closed or full
//! stdout is remembered ([`output_failure`]) and turned into exit code 5 by `main`, since
//! a transaction may already be recorded when its receipt cannot be shown.

use std::io::Write;
use std::sync::Mutex;

pub use semel::printable;

/// The first write to stdout that failed, if one did.
static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes one line to stdout; a failure is kept for [`output_failure`], never a panic.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
        failed.get_or_insert(e);
    }
}

/// `println!` that never panics: see [`write_line`].
macro_rules! outln {
    () => { $crate::print::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::print::write_line(format_args!($($arg)*)) };
}
pub(crate) use outln;

/// Why stdout could not take the output, if it could not (after a final flush).
pub fn output_failure() -> Option<std::io::Error> {
    let flushed = std::io::stdout().lock().flush();
    let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
    failed.take().or(flushed.err())
}

use semel::{
    ContractInfo, HistoryEntry, PruneReport, QueryOutput, Receipt, StateListing, Status, StoreInfo,
    VerifyReport,
};
use serde::Serialize;

/// The JSON of `value` (the library's `Serialize` shapes) on one line.
fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => outln!("{text}"),
        Err(e) => eprintln!("semel: cannot encode the output as JSON: {e}"),
    }
}

/// `value` as a JSON value (the shapes here always encode).
fn json_value(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
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
    outln!(
        "{} {} at version {}{dup}",
        r.status.as_str(),
        r.tx_id,
        r.version
    );
    if r.status == Status::Reverted {
        outln!(
            "  error: {}",
            printable(r.error.as_deref().unwrap_or("unknown"))
        );
    }
    for c in &r.results {
        outln!("  {}.{} -> {}", c.contract, c.method, readable(&c.output));
    }
    for e in &r.events {
        outln!(
            "  event {}/{}: {}",
            e.contract,
            printable(&e.topic),
            readable(&e.data)
        );
    }
    outln!("  gas used {}, state root {}", r.gas_used, r.state_root);
}

pub fn query(q: &QueryOutput, json: bool) {
    if json {
        print_json(q);
    } else {
        outln!("{}", readable(&q.output));
    }
}

pub fn state(entries: &[(Vec<u8>, Vec<u8>)], json: bool) {
    if json {
        print_json(&StateListing(entries));
        return;
    }
    if entries.is_empty() {
        outln!("(no keys)");
    }
    for (k, v) in entries {
        outln!("{} = {}", readable(k), readable(v));
    }
}

pub fn contracts(list: &[ContractInfo], json: bool) {
    if json {
        print_json(&list);
        return;
    }
    if list.is_empty() {
        outln!("(no contracts)");
    }
    for c in list {
        let admin = c.admin.as_deref().unwrap_or("none");
        match c.code_since == c.version {
            true => outln!(
                "{:<24} code {}  deployed at version {}  admin {admin}",
                c.name,
                c.code_hash,
                c.version
            ),
            false => outln!(
                "{:<24} code {}  deployed at version {}, migrated at {}  admin {admin}",
                c.name,
                c.code_hash,
                c.version,
                c.code_since
            ),
        }
    }
}

pub fn info(i: &StoreInfo, json: bool) {
    if json {
        print_json(i);
        return;
    }
    outln!("store       {}", printable(&i.store));
    outln!("host id     {}", i.host_id);
    outln!("format      {}", i.format);
    outln!("version     {}", i.version);
    outln!("state root  {}", i.state_root);
}

pub fn history(entries: &[HistoryEntry], json: bool) {
    if json {
        print_json(&entries);
        return;
    }
    for e in entries {
        outln!(
            "{:>8}  {}  {:<9}  {}",
            e.version,
            e.tx_id,
            e.status.as_str(),
            e.calls.join(", ")
        );
    }
}

/// `semel events`: one line per event, `VERSION  TX_ID  CONTRACT  TOPIC  DATA` (data as
/// text when it is printable UTF-8, else hex).
pub fn events(list: &[semel::EventRecord], json: bool) {
    if json {
        print_json(&list);
        return;
    }
    if list.is_empty() {
        outln!("(no events)");
    }
    for e in list {
        outln!(
            "{:>8}  {}  {}  {}  {}",
            e.version,
            e.tx_id,
            e.contract,
            printable(&e.topic),
            readable(&e.data)
        );
    }
}

pub fn verified(r: &VerifyReport, json: bool) {
    if json {
        print_json(r);
    } else {
        outln!(
            "verified {} transactions: every receipt and the state root {} match re-execution",
            r.transactions,
            r.state_root
        );
    }
}

pub fn pruned(r: &PruneReport, json: bool) {
    if json {
        print_json(r);
    } else {
        outln!(
            "removed {} state rows; versions {} to {} are readable (receipts and ids are all kept)",
            r.rows_removed,
            r.horizon,
            r.latest
        );
    }
}

/// `semel simulate`: per transaction the receipt it would get and the access set it
/// used; exit as a batch's (a conflict, else a revert, else done).
pub fn simulated(
    ids: &[semel::Uuid],
    results: Vec<Result<semel::Simulated, semel::SubmitError>>,
    json: bool,
) -> Result<crate::Exit, crate::Failure> {
    let (mut conflict, mut reverted) = (false, false);
    let mut out = Vec::with_capacity(results.len());
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok(sim) => {
                reverted |= sim.receipt.status == Status::Reverted;
                let value = json_value(&crate::answers::SimulatedJson::new(&sim));
                if !json {
                    receipt(&sim.receipt, false);
                    outln!("  access: {}", sim.access.to_json());
                }
                out.push(value);
            }
            Err(e @ semel::SubmitError::Conflict { .. }) => {
                conflict = true;
                if !json {
                    outln!("conflict {id}: {e}");
                }
                out.push(json_value(&crate::answers::ConflictJson::new(*id, &e)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if json {
        outln!("{}", serde_json::Value::Array(out));
    }
    Ok(match (conflict, reverted) {
        (true, _) => crate::Exit::Conflict,
        (false, true) => crate::Exit::Reverted,
        _ => crate::Exit::Done,
    })
}
