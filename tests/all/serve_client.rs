//! Client mode (interface §6): the CLI's commands through `--server` give the same
//! output and exit codes as on a local store. One script of commands runs against a
//! fresh store and against a fresh server; every command's stdout and exit code must
//! match (receipts, roots and versions included: the same transactions in the same
//! order give the same bytes).

use std::path::Path;
use std::process::Command;

use crate::cli::semel_bin;
use crate::serve::Server;
use crate::util::repo;

/// A command's exit code, stdout and stderr.
type Ran = (i32, String, String);

/// Runs `args` on the store in `dir`, or through `server` when given.
fn run(dir: &Path, server: Option<&str>, args: &[&str]) -> Ran {
    let mut c = Command::new(semel_bin());
    match server {
        Some(url) => c
            .env("SEMEL_SERVER", url)
            .arg("--data-dir")
            .arg("/nonexistent-semel"),
        None => c.env_remove("SEMEL_SERVER").arg("--data-dir").arg(dir),
    };
    let o = c.args(args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs the CLI script on a local data dir and through `other`, one command after the
/// other, and compares each output and exit code (error messages too); gives the local
/// data dir.
fn every_command_matches_the_local_store(
    other: &dyn Fn(&[&str]) -> Ran,
    what: &str,
) -> tempfile::TempDir {
    let local = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let counter = repo()
        .join("contracts/wat/counter.wat")
        .display()
        .to_string();
    let kv = repo().join("contracts/wat/kv.wat").display().to_string();
    let counter_v2 = repo()
        .join("contracts/wat/counter_v2.wat")
        .display()
        .to_string();
    let batch = files.path().join("batch.json");
    std::fs::write(
        &batch,
        r#"[{"id":"00000000-0000-4000-8000-0000000000b1","calls":[{"contract":"counter","method":"inc"}]},
            {"id":"00000000-0000-4000-8000-000000000002","calls":[{"contract":"counter","method":"get"}]},
            {"id":"00000000-0000-4000-8000-0000000000b3","calls":[{"contract":"counter","method":"fail"}]}]"#,
    )
    .unwrap();
    let one = files.path().join("one.json");
    std::fs::write(
        &one,
        r#"{"id":"00000000-0000-4000-8000-0000000000c1","sender":"bob","calls":[{"contract":"counter","method":"inc"}]}"#,
    )
    .unwrap();
    let bad = files.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"calls":[{"contract":"counter","method":"inc"}],"oops":1}"#,
    )
    .unwrap();
    let batch = batch.display().to_string();
    let one = one.display().to_string();
    let bad = bad.display().to_string();
    let script: Vec<Vec<&str>> = vec![
        vec![
            "deploy",
            &counter,
            "--name",
            "counter",
            "--tx-id",
            "00000000-0000-4000-8000-000000000001",
        ],
        vec![
            "deploy",
            &kv,
            "--name",
            "kv",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000a1",
            "--args",
            "{}",
        ],
        vec![
            "call",
            "counter",
            "inc",
            "--tx-id",
            "00000000-0000-4000-8000-000000000002",
            "--sender",
            "alice",
        ],
        vec![
            "call",
            "counter",
            "inc",
            "--tx-id",
            "00000000-0000-4000-8000-000000000002",
            "--sender",
            "alice",
        ],
        vec![
            "call",
            "counter",
            "inc",
            "--tx-id",
            "00000000-0000-4000-8000-000000000002",
            "--sender",
            "eve",
        ],
        vec![
            "call",
            "counter",
            "fail",
            "--tx-id",
            "00000000-0000-4000-8000-000000000003",
        ],
        vec![
            "call",
            "nothing",
            "inc",
            "--tx-id",
            "00000000-0000-4000-8000-000000000004",
        ],
        vec![
            "call",
            "counter",
            "inc",
            "{\"spaced\": 1}",
            "--tx-id",
            "00000000-0000-4000-8000-000000000005",
        ],
        vec!["call", "counter", "inc", "not json"],
        vec!["tx", &one],
        vec!["tx", &batch],
        vec!["tx", &bad],
        vec!["simulate", &one],
        vec!["query", "counter", "get"],
        vec!["query", "counter", "get", "--at-version", "3"],
        vec!["query", "counter", "get", "--at-version", "999"],
        vec!["query", "counter", "fail"],
        vec!["receipt", "00000000-0000-4000-8000-000000000002"],
        vec!["receipt", "00000000-0000-4000-8000-0000000000ff"],
        vec!["receipt", "nope"],
        vec!["state", "counter"],
        vec!["state", "counter", "--prefix", "co", "--at-version", "3"],
        vec!["state", "nothing"],
        // Admins and upgrades (interface §7).
        vec![
            "deploy",
            &counter,
            "--name",
            "up",
            "--admin",
            "alice",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000e1",
        ],
        vec![
            "migrate",
            "up",
            &counter_v2,
            "--sender",
            "bob",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000e2",
        ],
        vec![
            "migrate",
            "up",
            &counter_v2,
            "--sender",
            "alice",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000e3",
        ],
        vec![
            "migrate",
            "up",
            &counter_v2,
            "--args",
            "1",
            "--sender",
            "alice",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000e3",
        ],
        vec!["query", "up", "get"],
        vec![
            "set-admin",
            "up",
            "--none",
            "--sender",
            "alice",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000e4",
        ],
        vec![
            "set-admin",
            "up",
            "carol",
            "--sender",
            "alice",
            "--tx-id",
            "00000000-0000-4000-8000-0000000000e5",
        ],
        vec!["contracts"],
        vec!["log"],
        vec!["log", "--from", "2", "--limit", "2"],
        vec!["events"],
        vec![
            "events",
            "--contract",
            "counter",
            "--topic",
            "inc",
            "--from-version",
            "4",
        ],
        vec!["verify"],
    ];
    for args in &script {
        for json in [false, true] {
            let mut full: Vec<&str> = Vec::new();
            if json {
                full.push("--json");
            }
            full.extend(args.iter().copied());
            // Run once each way, in the same order, so both stores see the same history.
            let l = run(local.path(), None, &full);
            let s = other(&full);
            assert_eq!(
                (l.0, &l.1),
                (s.0, &s.1),
                "`semel {}` differs:\nlocal stderr: {}\n{what} stderr: {}",
                full.join(" "),
                l.2,
                s.2
            );
            if l.0 == 2 || l.0 == 3 || l.0 == 1 {
                let msg = |e: &str| e.trim().to_owned();
                assert_eq!(
                    msg(&l.2),
                    msg(&s.2),
                    "`semel {}`: error messages differ",
                    full.join(" ")
                );
            }
        }
    }
    local
}

#[test]
fn every_command_through_the_server_matches_the_local_store() {
    let served = tempfile::tempdir().unwrap();
    let server = Server::start(served.path());
    let local = every_command_matches_the_local_store(
        &|args| run(served.path(), Some(&server.url), args),
        "server",
    );
    // `info` names the store and its host id, which differ; the rest matches.
    let l: serde_json::Value =
        serde_json::from_str(&run(local.path(), None, &["--json", "info"]).1).unwrap();
    let s: serde_json::Value =
        serde_json::from_str(&run(served.path(), Some(&server.url), &["--json", "info"]).1)
            .unwrap();
    assert_eq!(
        (l["version"].clone(), l["state_root"].clone()),
        (s["version"].clone(), s["state_root"].clone())
    );
    // Commands that need a store refuse --server.
    let (code, _, err) = run(
        served.path(),
        Some(&server.url),
        &["prune", "--keep-versions", "1"],
    );
    assert_eq!(code, 2, "{err}");
}

/// Deploys as JSON (interface §6) through `semel tx`, locally and through a server: by
/// `code_base64`, then by the `code_hash` that deploy stored; an unknown hash and a
/// malformed `admin` are refused, naming the problem.
#[test]
fn deploys_as_json_by_code_and_by_hash() {
    let local = tempfile::tempdir().unwrap();
    let served = tempfile::tempdir().unwrap();
    let server = Server::start(served.path());
    let files = tempfile::tempdir().unwrap();
    let wat = std::fs::read(repo().join("contracts/wat/counter.wat")).unwrap();
    let b64 = base64_of(&wat);
    let by_code = files.path().join("by_code.json");
    std::fs::write(
        &by_code,
        format!(
            r#"{{"id":"00000000-0000-4000-8000-0000000000d1","deploy":{{"name":"c1","code_base64":"{b64}","args":null}}}}"#
        ),
    )
    .unwrap();
    let by_code = by_code.display().to_string();
    for server_url in [None, Some(server.url.as_str())] {
        let dir = if server_url.is_some() {
            served.path()
        } else {
            local.path()
        };
        let (code, out, err) = run(dir, server_url, &["--json", "tx", &by_code]);
        assert_eq!(code, 0, "{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["status"], "committed");
        let (_, out, _) = run(dir, server_url, &["--json", "contracts"]);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        let hash = list[0]["code_hash"].as_str().unwrap().to_owned();
        let by_hash = files.path().join("by_hash.json");
        std::fs::write(
            &by_hash,
            format!(r#"{{"id":"00000000-0000-4000-8000-0000000000d2","deploy":{{"name":"c2","code_hash":"{hash}"}}}}"#),
        )
        .unwrap();
        let (code, out, err) = run(
            dir,
            server_url,
            &["--json", "tx", &by_hash.display().to_string()],
        );
        assert_eq!(code, 0, "{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["status"], "committed");
        let (_, out, _) = run(dir, server_url, &["--json", "contracts"]);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(list[1]["name"], "c2");
        assert_eq!(list[1]["code_hash"], hash.as_str());
        // Refused, nothing recorded.
        for (body, needle) in [
            (
                format!(
                    r#"{{"deploy":{{"name":"c3","code_hash":"{}"}}}}"#,
                    "ab".repeat(32)
                ),
                "no code with hash",
            ),
            (
                format!(
                    r#"{{"deploy":{{"name":"c3","code_hash":"{hash}","admin":"ed25519:ab"}}}}"#
                ),
                "is not an account id",
            ),
            (
                format!(
                    r#"{{"deploy":{{"name":"c3","code_hash":"{hash}","code_base64":"{b64}"}}}}"#
                ),
                "both",
            ),
        ] {
            let f = files.path().join("bad.json");
            std::fs::write(&f, body).unwrap();
            let (code, _, err) = run(dir, server_url, &["tx", &f.display().to_string()]);
            assert_eq!(code, 2, "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let (_, out, _) = run(dir, server_url, &["--json", "log"]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}

/// Standard base64 with padding, as `code_base64` takes it.
pub(crate) fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The same script on a PostgreSQL store (`--store postgres://…`) as on a data dir:
/// the same outputs and exit codes.
#[test]
fn every_command_on_a_postgres_store_matches_the_local_store() {
    let Some(pg) = crate::pg::Pg::start() else {
        return;
    };
    let url = pg.url.clone();
    every_command_matches_the_local_store(
        &|args| {
            let o = Command::new(semel_bin())
                .env_remove("SEMEL_SERVER")
                .args(["--store", &url])
                .args(args)
                .output()
                .unwrap();
            (
                o.status.code().unwrap(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        },
        "postgres",
    );
}
