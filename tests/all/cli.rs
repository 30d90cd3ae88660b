//! The `semel` binary: commands, `--json` shapes and exit codes of interface §4.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use redb::ReadableTable;
use serde_json::Value;

use crate::util::repo;

/// The `semel` binary cargo built beside this test binary.
pub(crate) fn semel_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(format!("semel{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p semel` first, or the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

fn semel(dir: &Path, args: &[&str]) -> Output {
    Command::new(semel_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn counter_wat() -> String {
    repo()
        .join("contracts/wat/counter.wat")
        .display()
        .to_string()
}

#[test]
fn deploy_call_query_and_listings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = semel(
        d,
        &["--json", "deploy", &counter_wat(), "--name", "counter"],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let r = json(&o);
    assert_eq!(r["status"], "committed");
    assert_eq!(r["version"], 1);
    for field in [
        "tx_id",
        "error",
        "results",
        "events",
        "gas_used",
        "state_root",
        "duplicate",
    ] {
        assert!(r.get(field).is_some(), "receipt lacks {field}");
    }

    let id = "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11";
    let o = semel(
        d,
        &[
            "--json", "call", "counter", "inc", "--tx-id", id, "--sender", "alice",
        ],
    );
    assert_eq!(code(&o), 0);
    let r = json(&o);
    assert_eq!(r["tx_id"], id);
    assert_eq!(r["results"][0]["output"], "1");
    assert_eq!(r["results"][0]["output_hex"], "31");
    assert_eq!(r["events"][0]["topic"], "inc");

    // The same id again: the stored receipt, marked duplicate, exit 0.
    let o = semel(
        d,
        &[
            "--json", "call", "counter", "inc", "--tx-id", id, "--sender", "alice",
        ],
    );
    assert_eq!(code(&o), 0);
    let dup = json(&o);
    assert_eq!(dup["duplicate"], true);
    assert_eq!(dup["version"], r["version"]);
    // The same id with other content: a conflict, exit 3.
    let o = semel(
        d,
        &["call", "counter", "inc", "--tx-id", id, "--sender", "bob"],
    );
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stderr).contains("different content"));

    let o = semel(d, &["--json", "query", "counter", "get"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        json(&o),
        serde_json::json!({"version": 2, "output_hex": "31", "output": "1"})
    );
    let o = semel(
        d,
        &["--json", "query", "counter", "get", "--at-version", "1"],
    );
    assert_eq!(json(&o)["output"], "0");

    let o = semel(d, &["--json", "state", "counter"]);
    let rows = json(&o);
    assert_eq!(rows[0]["key"], "count");
    assert_eq!(rows[0]["key_hex"], "636f756e74");
    assert_eq!(rows[0]["value_hex"], "0100000000000000");

    let o = semel(d, &["--json", "contracts"]);
    let rows = json(&o);
    assert_eq!(rows[0]["name"], "counter");
    assert_eq!(rows[0]["version"], 1);
    assert_eq!(rows[0]["code_hash"].as_str().unwrap().len(), 64);

    let o = semel(d, &["--json", "log", "--from", "2"]);
    let rows = json(&o);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["tx_id"], id);
    assert_eq!(rows[0]["status"], "committed");
    assert_eq!(rows[0]["calls"][0], "counter.inc");

    let o = semel(d, &["--json", "receipt", id]);
    assert_eq!(json(&o)["version"], 2);
    let o = semel(d, &["verify"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified 2 transactions"));
}

#[test]
fn exit_codes_for_reverts_bad_input_and_host_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    let o = semel(d, &["call", "counter", "fail"]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("counter says no"));
    for bad in [
        vec!["call", "counter", "inc", "{not json"],
        vec!["call", "bad name", "inc"],
        vec!["call", "counter", "inc", "--tx-id", "not-a-uuid"],
        vec!["call", "counter", "inc", "--gas", "0"],
        vec!["deploy", "/nonexistent.wasm", "--name", "x"],
        vec!["receipt", "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f11"],
        vec!["query", "counter", "get", "--at-version", "99"],
        vec!["no-such-command"],
    ] {
        let o = semel(d, &bad);
        assert_eq!(
            code(&o),
            2,
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.stderr.is_empty(), "{bad:?} printed no error");
    }
    // Nothing above was recorded.
    let o = semel(d, &["--json", "log"]);
    assert_eq!(json(&o).as_array().unwrap().len(), 2);

    let garbage = d.join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0\xff").unwrap();
    let o = semel(d, &["deploy", garbage.to_str().unwrap(), "--name", "g"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not valid wasm"));

    // A data dir path that is a file: a host failure.
    let file = d.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let o = Command::new(semel_bin())
        .arg("--data-dir")
        .arg(&file)
        .arg("contracts")
        .output()
        .unwrap();
    assert_eq!(code(&o), 4);
}

#[test]
fn tx_reads_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    let tx = r#"{"sender": "alice", "calls": [{"contract": "counter", "method": "inc"},
                                             {"contract": "counter", "method": "inc"}]}"#;
    let mut child = Command::new(semel_bin())
        .arg("--data-dir")
        .arg(d)
        .args(["--json", "tx", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(tx.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)["results"][1]["output"], "2");

    let file = d.join("tx.json");
    std::fs::write(
        &file,
        r#"{"calls": [{"contract": "counter", "method": "get", "extra": 1}]}"#,
    )
    .unwrap();
    let o = semel(d, &["tx", file.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("extra"));
}

#[test]
fn verify_exits_4_on_a_tampered_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    assert_eq!(code(&semel(d, &["call", "counter", "inc"])), 0);
    {
        let db = redb::Database::open(d.join(semel::DB_FILE)).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
                .unwrap();
            let mut lattice = t.get(&b"lattice"[..]).unwrap().unwrap().value().to_vec();
            lattice[0] ^= 1;
            t.insert(&b"lattice"[..], lattice.as_slice()).unwrap();
        }
        w.commit().unwrap();
    }
    let o = semel(d, &["verify"]);
    assert_eq!(code(&o), 4);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("version 2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn demo_runs() {
    let o = Command::new(semel_bin()).arg("demo").output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("duplicate"));
    assert!(out.contains("transactions re-executed"));
    assert!(out.contains("(the old code): 1; now (the new code, after its migrate): v2:1001"));
}

#[test]
fn a_second_process_waits_its_turn_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    let holder = semel::Host::open(d, semel::HostOptions::default()).unwrap();
    let waiting = Command::new(semel_bin())
        .arg("--data-dir")
        .arg(d)
        .args(["call", "counter", "inc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(holder);
    let o = waiting.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is in use by another semel process; waiting")
    );
    let o = semel(d, &["--json", "query", "counter", "get"]);
    assert_eq!(json(&o)["output"], "1");
}

#[test]
fn prune_and_bench_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    for _ in 0..4 {
        assert_eq!(code(&semel(d, &["call", "counter", "inc"])), 0);
    }
    let o = semel(d, &["--json", "prune", "--keep-versions", "2"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["horizon"], 4);
    let o = semel(d, &["query", "counter", "get", "--at-version", "3"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("versions 4 to 5"));
    assert_eq!(code(&semel(d, &["prune"])), 2);
    assert_eq!(code(&semel(d, &["verify"])), 0);

    let o = semel(
        d,
        &[
            "--json",
            "bench",
            "--workload",
            "transfer",
            "--txs",
            "40",
            "--accounts",
            "10",
            "--batch",
            "8",
            "--in-memory",
        ],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let r = json(&o);
    for field in [
        "workload",
        "txs",
        "seconds",
        "tx_per_s",
        "p50_us",
        "p99_us",
        "fsyncs",
        "peak_rss_bytes",
        "cpu_seconds",
    ] {
        assert!(r.get(field).is_some(), "bench JSON lacks {field}");
    }
    assert_eq!(r["txs"], 40);
    // The process's CPU time while it measured: some, and no more than every core
    // busy for the whole time (plus getrusage's rounding).
    let (cpu, wall) = (
        r["cpu_seconds"].as_f64().unwrap(),
        r["seconds"].as_f64().unwrap(),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(cpu > 0.0 && cpu <= wall * cores + 0.01, "{r}");
    assert_eq!(r["workload"], "transfer");
    let o = semel(
        d,
        &[
            "--json",
            "bench",
            "--workload",
            "counter",
            "--txs",
            "32",
            "--batch",
            "16",
        ],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let r = json(&o);
    assert!(r["fsyncs"].as_u64().unwrap() >= 2 && r["fsyncs"].as_u64().unwrap() <= 32);
    assert_eq!(code(&semel(d, &["bench", "--txs", "0"])), 2);
}

/// Contract `log` text reaches stderr only when asked for, by `SEMEL_LOG` (any value) or
/// `--print-logs`, and is never part of stdout or the receipt.
#[test]
fn contract_logs_print_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let wat = dir.path().join("talker.wat");
    std::fs::write(
        &wat,
        r#"(module (import "semel" "log" (func $log (param i32 i32)))
             (memory (export "memory") 1) (data (i32.const 0) "hello from a contract")
             (func (export "hi") (call $log (i32.const 0) (i32.const 21))))"#,
    )
    .unwrap();
    let run = |env_log: bool, args: &[&str]| {
        let mut cmd = Command::new(semel_bin());
        cmd.env_remove("SEMEL_LOG")
            .arg("--data-dir")
            .arg(&d)
            .args(args);
        if env_log {
            cmd.env("SEMEL_LOG", "yes");
        }
        let o = cmd.output().unwrap();
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    run(
        false,
        &["deploy", wat.to_str().unwrap(), "--name", "talker"],
    );
    let line = "[talker] hello from a contract";
    let (out, err) = run(false, &["call", "talker", "hi"]);
    assert!(!err.contains(line) && !out.contains(line), "{err}");
    let (out, err) = run(true, &["call", "talker", "hi"]);
    assert!(err.contains(line) && !out.contains(line), "{err}");
    let (_, err) = run(false, &["--print-logs", "call", "talker", "hi"]);
    assert!(err.contains(line), "{err}");
    let (_, err) = run(false, &["query", "talker", "hi", "--print-logs"]);
    assert!(err.contains(line), "{err}");
}

/// A closed or full stdout never panics: after a commit, the exit code (5) says the
/// output was lost, not the transaction, and stderr says it was recorded.
#[test]
fn a_closed_or_full_stdout_after_a_commit_exits_5_and_says_it_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let run = |args: &[&str], stdout: Stdio| {
        let mut child = Command::new(semel_bin())
            .arg("--data-dir")
            .arg(&d)
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A reader that has gone away: the pipe's read end is closed at once.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        (code(&o), String::from_utf8(o.stderr).unwrap())
    };
    let full = || Stdio::from(std::fs::File::create("/dev/full").unwrap());
    let (exit, err) = run(&["deploy", &counter_wat(), "--name", "counter"], full());
    assert_eq!(exit, 5, "{err}");
    assert!(
        err.contains("was recorded (committed") && !err.contains("panicked"),
        "{err}"
    );
    let id = "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f13";
    let (exit, err) = run(
        &["--json", "call", "counter", "inc", "--tx-id", id],
        Stdio::piped(),
    );
    assert_eq!(exit, 5, "{err}");
    assert!(
        err.contains("was recorded") && err.contains("Broken pipe"),
        "{err}"
    );
    // Recorded indeed, exactly once.
    let o = semel(&d, &["--json", "receipt", id]);
    assert_eq!(json(&o)["version"], 2);
    let (exit, err) = run(&["log"], full());
    assert_eq!(exit, 5, "{err}");
    assert!(
        err.contains("output could not be written") && !err.contains("recorded"),
        "{err}"
    );
}

/// Contract text with terminal escapes (a revert message, `log` text, an event topic)
/// reaches the terminal escaped, never raw; JSON output carries it as JSON does.
#[test]
fn contract_text_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let wat = dir.path().join("rude.wat");
    std::fs::write(
        &wat,
        r#"(module (import "semel" "log" (func $log (param i32 i32)))
             (import "semel" "revert" (func $revert (param i32 i32)))
             (memory (export "memory") 1) (data (i32.const 0) "\1b[2J\1b]0;owned\07\0dgone")
             (func (export "boom") (call $revert (i32.const 0) (i32.const 20)))
             (func (export "talk") (call $log (i32.const 0) (i32.const 20))))"#,
    )
    .unwrap();
    let o = semel(&d, &["deploy", wat.to_str().unwrap(), "--name", "rude"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let raw = |bytes: &[u8]| bytes.iter().any(|&b| b == 0x1b || b == 0x07 || b == b'\r');
    let o = semel(&d, &["call", "rude", "boom"]);
    assert_eq!(code(&o), 1);
    assert!(
        !raw(&o.stdout) && !raw(&o.stderr),
        "{:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains(r"\u{1b}[2J"));
    let o = semel(&d, &["query", "rude", "boom"]);
    assert_eq!(code(&o), 1);
    assert!(!raw(&o.stderr) && String::from_utf8_lossy(&o.stderr).contains(r"\u{1b}]0;owned"));
    let o = semel(&d, &["--print-logs", "call", "rude", "talk"]);
    assert_eq!(code(&o), 0);
    assert!(!raw(&o.stderr) && String::from_utf8_lossy(&o.stderr).contains(r"\u{7}\rgone"));
    // JSON escapes control characters itself; the text is all there.
    let o = semel(&d, &["--json", "call", "rude", "boom"]);
    assert!(!raw(&o.stdout));
    assert!(
        json(&o)["error"]
            .as_str()
            .unwrap()
            .contains("\u{1b}[2J\u{1b}]0;owned\u{7}\rgone")
    );
}

/// `semel state` of a contract that is not deployed is an error naming it, not an empty
/// listing; a deployed contract without keys lists none.
#[test]
fn state_of_an_unknown_contract_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    let o = semel(d, &["state", "countr"]);
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no contract countr is deployed at version 1")
    );
    let o = semel(d, &["state", "counter", "--at-version", "0"]);
    assert_eq!(code(&o), 2, "not deployed yet at version 0");
    let o = semel(d, &["--json", "state", "counter"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o).as_array().unwrap().len(), 1, "the count, 0");
}

/// Every command's `--json` output is one JSON document on stdout, errors included
/// (`{"error", "exit"}` with the exit code the process returns).
#[test]
fn every_command_speaks_json_errors_included() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f14";
    let tx = d.join("tx.json");
    std::fs::write(
        &tx,
        r#"{"calls": [{"contract": "counter", "method": "inc"}]}"#,
    )
    .unwrap();
    let tx = tx.to_str().unwrap();
    let ok: &[(&[&str], &str)] = &[
        (&["deploy", &counter_wat(), "--name", "counter"], "status"),
        (&["call", "counter", "inc", "--tx-id", id], "status"),
        (&["tx", tx], "status"),
        (&["query", "counter", "get"], "output"),
        (&["receipt", id], "tx_id"),
        (&["state", "counter"], "[0].key_hex"),
        (&["contracts"], "[0].code_hash"),
        (&["info"], "host_id"),
        (&["log"], "[2].calls"),
        (&["verify"], "state_root"),
        (&["prune", "--keep-versions", "2"], "rows_removed"),
    ];
    for (args, field) in ok {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let o = semel(d, &all);
        assert_eq!(
            code(&o),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = json(&o);
        let got = match field.strip_prefix("[0].").or(field.strip_prefix("[2].")) {
            Some(key) => &v[if field.starts_with("[2]") { 2 } else { 0 }][key],
            None => &v[*field],
        };
        assert!(!got.is_null(), "{args:?}: no {field} in {v}");
    }
    let bad: &[(&[&str], i64)] = &[
        (
            &["call", "counter", "inc", "--tx-id", id, "--sender", "eve"],
            3,
        ),
        (&["query", "counter", "nope"], 1),
        (&["receipt", "not-a-uuid"], 2),
        (&["state", "nobody"], 2),
        (&["call", "counter", "inc", "{not json"], 2),
        (&["query", "counter", "get", "--at-version", "99"], 2),
    ];
    for (args, exit) in bad {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let o = semel(d, &all);
        assert_eq!(i64::from(code(&o)), *exit, "{args:?}");
        let v = json(&o);
        assert_eq!(v["exit"], *exit, "{args:?}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{args:?}: {v}"
        );
    }
    let missing = d.join("elsewhere");
    let o = semel(&missing, &["--json", "contracts"]);
    assert_eq!((code(&o), json(&o)["exit"].as_i64()), (2, Some(2)));
}

/// `semel bench --data-dir DIR` runs in DIR (fresh) instead of ignoring it, and says so
/// when it leaves it alone (it holds a store, or `--in-memory`); `--json demo` says it has
/// no JSON form instead of printing text.
#[test]
fn bench_uses_a_given_data_dir_and_demo_refuses_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("bench");
    let o = semel(&d, &["--json", "bench", "--txs", "20"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["txs"], 20);
    assert!(d.join("semel.redb").exists(), "the bench ran elsewhere");
    let before = std::fs::read(d.join("semel.redb")).unwrap();
    let o = semel(&d, &["bench", "--txs", "20"]);
    assert_eq!(code(&o), 0);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds a store, so the bench runs in a fresh")
    );
    assert_eq!(
        std::fs::read(d.join("semel.redb")).unwrap(),
        before,
        "the store was touched"
    );
    let o = semel(
        &dir.path().join("m"),
        &["bench", "--txs", "20", "--in-memory"],
    );
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--data-dir is not used"));
    assert!(!dir.path().join("m").exists());
    let o = Command::new(semel_bin())
        .args(["--json", "demo"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        json(&o)["error"]
            .as_str()
            .unwrap()
            .contains("no --json form")
    );
}

/// Interface §5 from the command line: a batch file, its exit codes and JSON, access
/// sets refused before anything is recorded, `simulate`, and `verify --workers`.
#[test]
fn batches_access_sets_simulate_and_parallel_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        code(&semel(d, &["deploy", &counter_wat(), "--name", "counter"])),
        0
    );
    let file = d.join("batch.json");
    let id = "6d8a4c0e-0000-4000-8000-000000000001";
    let inc = r#""calls": [{"contract": "counter", "method": "inc"}]"#;
    let batch = format!(
        r#"[{{"id": "{id}", {inc}}},
            {{{inc}, "access": [{{"contract": "counter", "write": [{{"key_hex": "636f756e74"}}]}}]}},
            {{{inc}, "access": [{{"contract": "counter", "read": [{{"prefix_hex": "6e"}}]}}]}},
            {{"id": "{id}", {inc}}}]"#
    );
    std::fs::write(&file, &batch).unwrap();
    for mode in ["optimistic", "pessimistic", "sequential"] {
        let o = semel(
            d,
            &[
                "--json",
                "tx",
                file.to_str().unwrap(),
                "--concurrency",
                mode,
                "--workers",
                "3",
            ],
        );
        // The third reverts (its set does not cover "count"): exit 1.
        assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
        let out = json(&o);
        let list = out.as_array().unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0]["tx_id"], id);
        assert_eq!(list[1]["status"], "committed");
        assert_eq!(list[2]["status"], "reverted");
        assert!(
            list[2]["error"]
                .as_str()
                .unwrap()
                .contains("undeclared access")
        );
        assert_eq!(
            list[3]["duplicate"], true,
            "an id twice in a batch: a duplicate"
        );
        assert_eq!(list[3]["version"], list[0]["version"]);
    }
    // The same id with other content, in a batch: a conflict entry, exit 3.
    let conflict = format!(r#"[{{"id": "{id}", "gas_limit": 5, {inc}}}]"#);
    std::fs::write(&file, &conflict).unwrap();
    let o = semel(d, &["--json", "tx", file.to_str().unwrap()]);
    assert_eq!(code(&o), 3);
    assert_eq!(json(&o)[0]["error"], "conflict");
    // Malformed sets are refused naming the entry; nothing is recorded.
    let log_len = || {
        json(&semel(d, &["--json", "log", "--limit", "1000"]))
            .as_array()
            .unwrap()
            .len()
    };
    let before = log_len();
    for (set, names) in [
        (
            r#"[{"contract": "counter", "write": [{"key_hex": "zz"}]}]"#,
            "write 0",
        ),
        (r#"[{"contract": "counter", "read": [{}]}]"#, "read 0"),
        (
            r#"[{"contract": "counter", "read": [{"key_hex": "", "prefix_hex": ""}]}]"#,
            "not both",
        ),
        (r#"[{"contract": "counter", "reads": []}]"#, "unknown field"),
    ] {
        let bad = format!(r#"[{{{inc}}}, {{{inc}, "access": {set}}}]"#);
        std::fs::write(&file, &bad).unwrap();
        let o = semel(d, &["tx", file.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{set}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("transaction 1 of the batch") && err.contains(names),
            "{err}"
        );
    }
    assert_eq!(log_len(), before, "a refused batch records nothing");
    // Simulate: the receipts it would get and the set used; nothing recorded.
    std::fs::write(&file, format!("[{{{inc}}}, {{{inc}}}]")).unwrap();
    let o = semel(d, &["--json", "simulate", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let sims = json(&o);
    let latest = u64::try_from(before).unwrap();
    assert_eq!(sims[0]["version"], latest + 1);
    assert_eq!(
        sims[1]["version"],
        latest + 2,
        "each sees the ones before it"
    );
    assert_eq!(
        sims[1]["access"],
        serde_json::json!([{"contract": "counter", "read": [], "write": [{"key_hex": "636f756e74"}]}])
    );
    assert_eq!(log_len(), before);
    for workers in ["1", "2", "5"] {
        let o = semel(d, &["verify", "--workers", workers]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = semel(d, &["verify", "--workers", "0"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn info_prints_the_store_host_id_format_latest_version_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("store");
    // No store: exit 2, like the other read commands, and nothing is created.
    for args in [&["info"][..], &["--json", "info"]] {
        let o = semel(&d, args);
        assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("no Semel store"));
        assert!(!d.exists());
    }
    let o = semel(
        &d,
        &["--json", "deploy", &counter_wat(), "--name", "counter"],
    );
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let mut last = json(&o);
    for _ in 0..2 {
        let o = semel(&d, &["--json", "call", "counter", "inc"]);
        assert_eq!(code(&o), 0);
        last = json(&o);
    }
    let o = semel(&d, &["--json", "info"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let info = json(&o);
    let fields = ["store", "host_id", "format", "version", "state_root"];
    assert_eq!(info.as_object().unwrap().len(), fields.len(), "{info}");
    // In the order of the interface.
    let text = String::from_utf8_lossy(&o.stdout);
    let at: Vec<usize> = fields
        .iter()
        .map(|f| text.find(&format!("\"{f}\":")).unwrap())
        .collect();
    assert!(at.is_sorted(), "{text}");
    assert_eq!(info["store"], format!("redb:{}", d.display()));
    let host_id = info["host_id"].as_str().unwrap().to_owned();
    assert!(crate::util::is_host_id_text(&host_id), "{host_id}");
    assert_eq!(info["format"], "semel-data-v2");
    assert_eq!(info["version"], 3);
    assert_eq!(info["version"], last["version"]);
    assert_eq!(info["state_root"], last["state_root"]);
    let log = json(&semel(&d, &["--json", "log"]));
    assert_eq!(info["version"], log[2]["version"]);
    let receipt = json(&semel(
        &d,
        &["--json", "receipt", last["tx_id"].as_str().unwrap()],
    ));
    assert_eq!(info["state_root"], receipt["state_root"]);
    // Stable from run to run, and the library says the same.
    assert_eq!(json(&semel(&d, &["--json", "info"]))["host_id"], host_id);
    {
        let host = semel::Host::open_existing(&d, semel::HostOptions::default()).unwrap();
        assert_eq!(host.host_id().to_string(), host_id);
    }
    // Human text: one field per line.
    let o = semel(&d, &["info"]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let values = [
        format!("redb:{}", d.display()),
        host_id.clone(),
        "semel-data-v2".into(),
        "3".into(),
        info["state_root"].as_str().unwrap().to_owned(),
    ];
    for (line, value) in lines.iter().zip(&values) {
        assert!(
            line.ends_with(&format!(" {value}")),
            "{line:?} lacks {value}"
        );
    }
    // Another store, named relative to the working dir: another id, an absolute path.
    let o = Command::new(semel_bin())
        .current_dir(dir.path())
        .args([
            "--data-dir",
            "other",
            "deploy",
            &counter_wat(),
            "--name",
            "c",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(semel_bin())
        .current_dir(dir.path())
        .args(["--data-dir", "other", "--json", "info"])
        .output()
        .unwrap();
    let other = json(&o);
    assert_eq!(
        other["store"],
        format!("redb:{}", dir.path().join("other").display())
    );
    assert_ne!(other["host_id"], host_id);
    assert_eq!(other["version"], 1);
}

/// `semel events` (interface §6): the events index listed with every filter optional,
/// `--json` as `GET /v1/events` answers it, text otherwise; bad limits and a missing
/// store as the other read commands.
#[test]
fn events_lists_the_index_with_filters_as_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["counter", "other"] {
        let o = semel(d, &["deploy", &counter_wat(), "--name", name]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    }
    let id = "0b6f0e0e-5d1c-4a8e-9a43-2f0c6c2a9f21";
    assert_eq!(
        code(&semel(d, &["call", "counter", "inc", "--tx-id", id])),
        0
    );
    assert_eq!(code(&semel(d, &["call", "other", "inc"])), 0);
    assert_eq!(code(&semel(d, &["call", "counter", "inc"])), 0);
    // A reverted transaction (version 6) has no events.
    assert_eq!(code(&semel(d, &["call", "counter", "fail"])), 1);

    let o = semel(d, &["--json", "events"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    // Exactly the interface's five fields, in its order.
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    let first = format!(
        r#"[{{"version":3,"tx_id":"{id}","contract":"counter","topic":"inc","data_hex":"0100000000000000"}},"#
    );
    assert!(text.starts_with(&first), "{text}");
    let all = json(&o);
    let list = all.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for e in list {
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["contract", "data_hex", "topic", "tx_id", "version"]);
    }
    assert_eq!(list[2]["data_hex"], "0200000000000000");
    let versions = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["--json", "events"];
        all.extend_from_slice(args);
        let o = semel(d, &all);
        assert_eq!(
            code(&o),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        json(&o)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(versions(&[]), [3, 4, 5]);
    assert_eq!(versions(&["--contract", "counter"]), [3, 5]);
    assert_eq!(versions(&["--topic", "inc", "--from-version", "4"]), [4, 5]);
    assert_eq!(versions(&["--contract", "other", "--topic", "inc"]), [4]);
    assert_eq!(versions(&["--limit", "1"]), [3]);
    assert_eq!(versions(&["--from-version", "6"]), Vec::<u64>::new());
    assert_eq!(versions(&["--topic", "nope"]), Vec::<u64>::new());

    // Text: one line per event, data as hex when it is not printable text.
    let o = semel(d, &["events", "--contract", "counter"]);
    assert_eq!(code(&o), 0);
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(words, ["3", id, "counter", "inc", "0x0100000000000000"]);
    let o = semel(d, &["events", "--topic", "nope"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "(no events)");

    // Past the limit: bad input, naming it.
    let o = semel(d, &["events", "--limit", "10001"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("EVENTS_LIST_MAX"));
    let o = semel(d, &["--json", "events", "--contract", "bad name"]);
    assert_eq!((code(&o), json(&o)["exit"].as_i64()), (2, Some(2)));
    // No store: as the other read commands, and nothing is created.
    let missing = d.join("elsewhere");
    let o = semel(&missing, &["events"]);
    assert_eq!(code(&o), 2);
    assert!(!missing.exists());
}
