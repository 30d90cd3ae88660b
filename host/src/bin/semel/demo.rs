//! `semel demo`: a guided run of the main features in a fresh temporary data dir.

use anyhow::{Context, Result, bail};
use semel::{Call, Host, HostOptions, Receipt, Status, SubmitError, Transaction, TxBody, Uuid};

use crate::Exit;
use crate::print::readable;

const COUNTER_WAT: &str = include_str!("../../../../contracts/wat/counter.wat");
const PROXY_WAT: &str = include_str!("../../../../contracts/wat/proxy.wat");

fn step(title: &str) {
    println!("\n== {title}");
}

fn show(r: &Receipt) {
    let outputs: Vec<String> = r
        .results
        .iter()
        .map(|c| format!("{}.{} -> {}", c.contract, c.method, readable(&c.output)))
        .collect();
    println!(
        "   {} at version {}{}; gas {}{}",
        r.status.as_str(),
        r.version,
        if r.duplicate {
            " (duplicate: stored receipt, not run again)"
        } else {
            ""
        },
        r.gas_used,
        if outputs.is_empty() {
            String::new()
        } else {
            format!("; {}", outputs.join(", "))
        }
    );
    if let Some(e) = &r.error {
        println!("   error: {e}");
    }
}

fn count(host: &Host, at: Option<u64>) -> Result<String> {
    let out = host.query("counter", "get", b"", at)?;
    Ok(format!(
        "{} (read at version {})",
        readable(&out.output),
        out.version
    ))
}

fn forward(contract: &str, method: &str) -> Vec<u8> {
    let mut v = vec![u8::try_from(contract.len()).expect("short")];
    v.extend_from_slice(contract.as_bytes());
    v.push(u8::try_from(method.len()).expect("short"));
    v.extend_from_slice(method.as_bytes());
    v
}

pub fn run() -> Result<Exit> {
    let dir = tempfile::tempdir().context("cannot create a temporary data dir")?;
    let host = Host::open(dir.path(), HostOptions::default())?;
    println!("Semel demo in a fresh data dir: {}", dir.path().display());

    step("Deploy a counter contract (WebAssembly text; init runs inside the deploy)");
    let code = semel::wasm_bytes(COUNTER_WAT.as_bytes())?;
    show(&host.submit(&Transaction::deploy("counter", code, Vec::new()))?);

    step("Call counter.inc twice");
    for _ in 0..2 {
        show(&host.submit(&Transaction::call("counter", "inc", Vec::new()))?);
    }
    let after_incs = host.latest_version()?;
    println!("   count = {}", count(&host, None)?);

    step("One transaction, two calls: inc, then a call that reverts -> neither takes effect");
    let mut tx = Transaction::call("counter", "inc", Vec::new());
    if let TxBody::Calls(calls) = &mut tx.body {
        calls.push(Call {
            contract: "counter".into(),
            method: "fail".into(),
            args: Vec::new(),
        });
    }
    let r = host.submit(&tx)?;
    show(&r);
    if r.status != Status::Reverted {
        bail!("the failing two-call transaction should have reverted");
    }
    println!(
        "   count = {}  (unchanged: the first call's write was rolled back)",
        count(&host, None)?
    );

    step("Nested calls: proxy writes, then calls counter.inc_then_fail, which reverts");
    let code = semel::wasm_bytes(PROXY_WAT.as_bytes())?;
    show(&host.submit(&Transaction::deploy("proxy", code, Vec::new()))?);
    show(&host.submit(&Transaction::call(
        "proxy",
        "forward",
        forward("counter", "inc_then_fail"),
    ))?);
    let proxy_state = host.state("proxy", None, b"")?;
    for (k, v) in &proxy_state {
        println!("   proxy state: {} = {}", readable(k), readable(v));
    }
    println!(
        "   count = {}  (the callee's write was dropped, the caller's kept)",
        count(&host, None)?
    );

    step("Exactly once: retry a transaction id");
    let id = Uuid::new_v4();
    let tx = Transaction::call("counter", "inc", Vec::new()).with_id(id);
    show(&host.submit(&tx)?);
    show(&host.submit(&tx)?);
    println!("   count = {}  (incremented once)", count(&host, None)?);
    match host.submit(&Transaction::call("counter", "fail", Vec::new()).with_id(id)) {
        Err(e @ SubmitError::Conflict { .. }) => {
            println!("   same id, other content: refused: {e}")
        }
        other => bail!("expected a conflict, got {other:?}"),
    }

    step("Historical read: query the counter at an older version");
    println!("   count = {}", count(&host, Some(after_incs))?);

    step("Verify: re-execute the whole log from an empty state");
    let report = host.verify()?;
    println!(
        "   {} transactions re-executed; every receipt matches; state root {}",
        report.transactions, report.state_root
    );
    println!(
        "\nDone. Try it yourself: semel --data-dir DIR deploy contracts/wat/counter.wat --name counter"
    );
    Ok(Exit::Done)
}
