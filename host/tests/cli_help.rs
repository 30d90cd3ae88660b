//! The `semel` binary's usage surface (interface §4). Being an integration test of this
//! package, it also makes `cargo test --workspace` build the binary that the CLI tests
//! in `tests/all/cli.rs` run.

use std::process::Command;

#[test]
fn help_lists_every_command_and_bad_usage_exits_2() {
    let bin = env!("CARGO_BIN_EXE_semel");
    let o = Command::new(bin).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for command in [
        "deploy",
        "call",
        "tx",
        "query",
        "receipt",
        "state",
        "contracts",
        "info",
        "log",
        "events",
        "verify",
        "demo",
        "bench",
        "prune",
    ] {
        assert!(help.contains(command), "--help does not list {command}");
    }
    for option in ["--data-dir", "--json"] {
        assert!(help.contains(option), "--help does not list {option}");
    }
    let o = Command::new(bin).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(bin)
        .args(["call", "counter"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!o.stderr.is_empty());
}
