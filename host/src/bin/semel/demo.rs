//! `semel demo`: a guided run of the main features in a fresh temporary data dir, on the
//! example contracts (two tokens and an exchange, built from `contracts/`).

use anyhow::{Context, Result, bail};
use semel::{Host, HostOptions, Receipt, Status, SubmitError, Transaction, Uuid};
use serde_json::{Value, json};

use crate::Exit;
use crate::print::outln;
use crate::print::{printable, readable};

const TOKEN_WASM: &[u8] = include_bytes!("../../../../contracts/wasm/token.wasm");
const EXCHANGE_WASM: &[u8] = include_bytes!("../../../../contracts/wasm/exchange.wasm");
const COUNTER_WAT: &[u8] = include_bytes!("../../../../contracts/wat/counter.wat");
const COUNTER_V2_WAT: &[u8] = include_bytes!("../../../../contracts/wat/counter_v2.wat");

fn step(title: &str) {
    outln!("\n== {title}");
}

fn show(r: &Receipt) {
    let outputs: Vec<String> = r
        .results
        .iter()
        .filter(|c| !c.output.is_empty())
        .map(|c| format!("{}.{} -> {}", c.contract, c.method, readable(&c.output)))
        .collect();
    outln!(
        "   {} at version {}{}, gas {}{}",
        r.status.as_str(),
        r.version,
        if r.duplicate {
            " (duplicate: the stored receipt, not run again)"
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
    for e in &r.events {
        outln!(
            "   event {}/{}: {}",
            e.contract,
            printable(&e.topic),
            readable(&e.data)
        );
    }
    if let Some(e) = &r.error {
        outln!("   error: {}", printable(e));
    }
}

fn call(sender: &str, contract: &str, method: &str, args: Value) -> Transaction {
    Transaction::call(contract, method, args.to_string().into_bytes()).with_sender(sender)
}

fn committed(host: &Host, tx: &Transaction) -> Result<Receipt> {
    let r = host.submit(tx)?;
    show(&r);
    if r.status != Status::Committed {
        bail!(
            "a demo transaction reverted: {}",
            r.error.unwrap_or_default()
        );
    }
    Ok(r)
}

fn balance(host: &Host, token: &str, of: &str, at: Option<u64>) -> Result<String> {
    let out = host.query(
        token,
        "balance",
        json!({ "of": of }).to_string().as_bytes(),
        at,
    )?;
    Ok(readable(&out.output))
}

fn balances(host: &Host) -> Result<String> {
    let mut parts = Vec::new();
    for who in ["alice", "bob", "ex"] {
        parts.push(format!(
            "{who}: {} A / {} B",
            balance(host, "apple", who, None)?,
            balance(host, "banana", who, None)?
        ));
    }
    Ok(parts.join(", "))
}

pub fn run() -> Result<Exit> {
    let dir = tempfile::tempdir().context("cannot create a temporary data dir")?;
    let host = Host::open(dir.path(), HostOptions::default())?;
    outln!("Semel demo in a fresh data dir: {}", dir.path().display());
    outln!("Every transaction below is durable (fsynced) before its receipt is shown.");

    step("Deploy two tokens and an exchange between them (init runs inside each deploy)");
    for name in ["apple", "banana"] {
        let tx = Transaction::deploy(
            name,
            TOKEN_WASM,
            json!({"supply": 1_000_000}).to_string().into_bytes(),
        )
        .with_sender("alice");
        committed(&host, &tx)?;
    }
    let init = json!({"token_a": "apple", "token_b": "banana"})
        .to_string()
        .into_bytes();
    committed(
        &host,
        &Transaction::deploy("ex", EXCHANGE_WASM, init).with_sender("alice"),
    )?;

    step("Alice funds the pool: approve the exchange on both tokens, add liquidity");
    for token in ["apple", "banana"] {
        committed(
            &host,
            &call(
                "alice",
                token,
                "approve",
                json!({"spender": "ex", "amount": 100_000}),
            ),
        )?;
    }
    committed(
        &host,
        &call(
            "alice",
            "ex",
            "add_liquidity",
            json!({"amount_a": 100_000, "amount_b": 100_000}),
        ),
    )?;
    committed(
        &host,
        &call(
            "alice",
            "apple",
            "transfer",
            json!({"to": "bob", "amount": 1_000}),
        ),
    )?;
    let before_swap = host.latest_version();
    outln!("   balances: {}", balances(&host)?);

    step("Bob swaps 100 apple for banana: the exchange pays him, then collects (3 contracts)");
    committed(
        &host,
        &call(
            "bob",
            "apple",
            "approve",
            json!({"spender": "ex", "amount": 100}),
        ),
    )?;
    let swap_id = Uuid::new_v4();
    let swap = call(
        "bob",
        "ex",
        "swap",
        json!({"token_in": "apple", "amount_in": 100}),
    )
    .with_id(swap_id);
    committed(&host, &swap)?;
    outln!("   balances: {}", balances(&host)?);

    step("Bob swaps again with no allowance left: the payout is made, collecting fails");
    let root = host.state_root()?;
    let r = host.submit(&call(
        "bob",
        "ex",
        "swap",
        json!({"token_in": "apple", "amount_in": 100}),
    ))?;
    show(&r);
    if r.status != Status::Reverted || host.state_root()? != root {
        bail!("the unpaid swap should have reverted and changed nothing");
    }
    outln!(
        "   balances: {}  (unchanged in all three contracts)",
        balances(&host)?
    );

    step("Exactly once: Bob's client retries the first swap with the same transaction id");
    let again = host.submit(&swap)?;
    show(&again);
    outln!("   balances: {}  (not swapped twice)", balances(&host)?);
    match host.submit(
        &call(
            "bob",
            "ex",
            "swap",
            json!({"token_in": "apple", "amount_in": 1}),
        )
        .with_id(swap_id),
    ) {
        Err(e @ SubmitError::Conflict { .. }) => {
            outln!("   the same id with other content is refused: {e}")
        }
        other => bail!("expected a conflict, got {other:?}"),
    }

    step("Historical read: Bob's banana balance at an older version");
    outln!(
        "   at version {before_swap}: {}; now: {}",
        balance(&host, "banana", "bob", Some(before_swap))?,
        balance(&host, "banana", "bob", None)?
    );

    step("Upgrades: a counter alice administers, migrated to new code by her alone");
    let deploy = Transaction::deploy("counter", COUNTER_WAT, Vec::new()).with_admin("alice");
    committed(&host, &deploy)?;
    committed(&host, &call("bob", "counter", "inc", Value::Null))?;
    let before_migrate = host.latest_version();
    let by_bob = host
        .submit(&Transaction::migrate("counter", COUNTER_V2_WAT, Vec::new()).with_sender("bob"))?;
    show(&by_bob);
    let by_alice = Transaction::migrate("counter", COUNTER_V2_WAT, Vec::new()).with_sender("alice");
    committed(&host, &by_alice)?;
    let get =
        |at| -> Result<String> { Ok(readable(&host.query("counter", "get", b"", at)?.output)) };
    outln!(
        "   counter.get at version {before_migrate} (the old code): {}; now (the new code, after its migrate): {}",
        get(Some(before_migrate))?,
        get(None)?
    );

    step("Verify: re-execute the whole log from an empty state");
    let report = host.verify()?;
    outln!(
        "   {} transactions re-executed; every receipt matches; state root {}",
        report.transactions,
        report.state_root
    );
    outln!(
        "\nDone. Next: README.md has a tour of the CLI; docs/CONTRACTS.md shows how to write a contract."
    );
    Ok(Exit::Done)
}
