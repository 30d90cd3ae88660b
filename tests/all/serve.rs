//! `semel serve` (interface §6) against a real server on loopback: every endpoint and
//! status, exactly once under concurrent retries, the limits, shutdown and kill -9.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::semel_bin;
use crate::util::repo;

/// A `semel serve` process on a free loopback port; SIGTERM and a wait when dropped.
pub(crate) struct Server {
    pub child: Child,
    pub url: String,
    pub addr: String,
}

impl Server {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// A server that takes unsigned transactions too (`--allow-unsigned`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let mut flags = vec!["--allow-unsigned"];
        flags.extend_from_slice(extra);
        Self::start_strict(dir, &flags)
    }

    /// A server started with `extra` alone: without `--allow-unsigned`, it takes signed
    /// transactions only.
    pub fn start_strict(dir: &Path, extra: &[&str]) -> Self {
        Self::start_args(&["--data-dir", dir.to_str().unwrap()], extra)
    }

    /// A server on the store `url` (`--store`) taking unsigned transactions too.
    pub fn start_store(url: &str, extra: &[&str]) -> Self {
        let mut flags = vec!["--allow-unsigned"];
        flags.extend_from_slice(extra);
        Self::start_args(&["--store", url], &flags)
    }

    /// A server with the global flags `store` (which store) and `extra` serve flags.
    fn start_args(store: &[&str], extra: &[&str]) -> Self {
        Self::spawn(store, extra, "0", Stdio::null())
    }

    /// A server on the data dir `dir` taking unsigned transactions too, printing its
    /// summary every second to `stderr`.
    pub fn start_reporting(dir: &Path, stderr: std::fs::File) -> Self {
        let store = ["--data-dir", dir.to_str().unwrap()];
        Self::spawn(&store, &["--allow-unsigned"], "1", stderr.into())
    }

    fn spawn(store: &[&str], extra: &[&str], progress_secs: &str, stderr: Stdio) -> Self {
        let mut child = Command::new(semel_bin())
            .args(store)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--progress-secs",
                progress_secs,
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("semel serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let addr = url.trim_start_matches("http://").to_owned();
        Self { child, url, addr }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Signal `sig` (SIGTERM, SIGINT), then the exit status.
    pub fn stop_with(&mut self, sig: libc::c_int) -> std::process::ExitStatus {
        signal(&self.child, sig);
        self.child.wait().unwrap()
    }

    pub fn kill9(&mut self) {
        signal(&self.child, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(&self.child, libc::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid, sig);
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// Status, content type and body of an answer.
pub(crate) fn answer(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, String, Value) {
    let mut r = r.unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    let v = if ct.contains("json") {
        serde_json::from_slice(&body).unwrap()
    } else {
        Value::String(String::from_utf8_lossy(&body).into_owned())
    };
    (r.status().as_u16(), ct, v)
}

pub(crate) fn post(a: &ureq::Agent, url: &str, body: &str) -> (u16, String, Value) {
    answer(
        a.post(url)
            .header("content-type", "application/json")
            .send(body.as_bytes()),
    )
}

pub(crate) fn get(a: &ureq::Agent, url: &str) -> (u16, String, Value) {
    answer(a.get(url).call())
}

pub(crate) fn counter_deploy(id: &str) -> String {
    use std::fmt::Write as _;
    let wat = std::fs::read(repo().join("contracts/wat/counter.wat")).unwrap();
    let wasm = wat::parse_bytes(&wat).unwrap();
    let b64 = crate::serve_client::base64_of(&wasm);
    let mut s = String::new();
    write!(
        s,
        r#"{{"id":"{id}","deploy":{{"name":"counter","code_base64":"{b64}"}}}}"#
    )
    .unwrap();
    s
}

/// A server on `dir` (with `extra` flags) with the counter deployed, an agent and its URL.
fn counter_server(dir: &Path, extra: &[&str]) -> (Server, ureq::Agent, String) {
    let server = Server::start_with(dir, extra);
    let (a, u) = (agent(), server.url.clone());
    let (s, _, r) = post(
        &a,
        &format!("{u}/v1/tx"),
        &counter_deploy("00000000-0000-4000-8000-000000000001"),
    );
    assert_eq!(s, 200, "{r}");
    (server, a, u)
}

pub(crate) fn inc(id: &str) -> String {
    format!(r#"{{"id":"{id}","calls":[{{"contract":"counter","method":"inc"}}]}}"#)
}

pub(crate) fn problem_kind(v: &Value) -> &str {
    v["type"].as_str().unwrap().rsplit(':').next().unwrap()
}

fn log_len(a: &ureq::Agent, url: &str) -> usize {
    let (s, _, v) = get(a, &format!("{url}/v1/log?limit=10000"));
    assert_eq!(s, 200);
    v.as_array().unwrap().len()
}

#[test]
fn every_endpoint_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (a, u) = (agent(), server.url.clone());

    let (s, _, r) = post(
        &a,
        &format!("{u}/v1/tx"),
        &counter_deploy("00000000-0000-4000-8000-000000000001"),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "committed");
    let id = "00000000-0000-4000-8000-000000000002";
    let (s, ct, r) = post(&a, &format!("{u}/v1/tx"), &inc(id));
    assert_eq!((s, ct.as_str()), (200, "application/json"));
    assert_eq!(
        (r["version"].as_u64(), r["duplicate"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(r["events"][0]["topic"], "inc");
    // A retry: the stored receipt, marked.
    let (s, _, again) = post(&a, &format!("{u}/v1/tx"), &inc(id));
    assert_eq!((s, again["duplicate"].as_bool()), (200, Some(true)));
    assert_eq!(again["state_root"], r["state_root"]);
    // The same id with other content: 409, nothing changes.
    let other = format!(r#"{{"id":"{id}","calls":[{{"contract":"counter","method":"get"}}]}}"#);
    let (s, ct, p) = post(&a, &format!("{u}/v1/tx"), &other);
    assert_eq!(
        (s, ct.as_str(), problem_kind(&p)),
        (409, "application/problem+json", "conflict")
    );
    assert!(p["detail"].as_str().unwrap().contains(id), "{p}");
    // Idempotency-Key carries the id; a different body id is refused.
    let key = "00000000-0000-4000-8000-000000000003";
    let (s, _, r) = answer(
        a.post(format!("{u}/v1/tx"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", key)
            .send(r#"{"calls":[{"contract":"counter","method":"inc"}]}"#.as_bytes()),
    );
    assert_eq!((s, r["tx_id"].as_str()), (200, Some(key)));
    let (s, _, p) = answer(
        a.post(format!("{u}/v1/tx"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", key)
            .send(inc("00000000-0000-4000-8000-000000000004").as_bytes()),
    );
    assert_eq!((s, problem_kind(&p)), (400, "bad-input"));
    // A reverted transaction is a 200 with its receipt.
    let (s, _, r) = post(
        &a,
        &format!("{u}/v1/tx"),
        r#"{"calls":[{"contract":"counter","method":"fail"}]}"#,
    );
    assert_eq!((s, r["status"].as_str()), (200, Some("reverted")));
    // GET /v1/tx/{id}.
    let (s, _, r) = get(&a, &format!("{u}/v1/tx/{id}"));
    assert_eq!((s, r["version"].as_u64()), (200, Some(2)));
    let (s, _, p) = get(
        &a,
        &format!("{u}/v1/tx/00000000-0000-4000-8000-0000000000ff"),
    );
    assert_eq!((s, problem_kind(&p)), (404, "not-found"));
    let (s, _, p) = get(&a, &format!("{u}/v1/tx/not-a-uuid"));
    assert_eq!((s, problem_kind(&p)), (400, "bad-input"));
    // Queries.
    let (s, _, q) = post(
        &a,
        &format!("{u}/v1/query"),
        r#"{"contract":"counter","method":"get"}"#,
    );
    assert_eq!((s, q["output"].as_str()), (200, Some("2")));
    let (s, _, q) = post(
        &a,
        &format!("{u}/v1/query"),
        r#"{"contract":"counter","method":"get","at_version":2}"#,
    );
    assert_eq!((s, q["output"].as_str()), (200, Some("1")));
    let (s, _, p) = post(
        &a,
        &format!("{u}/v1/query"),
        r#"{"contract":"counter","method":"fail"}"#,
    );
    assert_eq!((s, problem_kind(&p)), (422, "reverted"));
    let (s, _, p) = post(
        &a,
        &format!("{u}/v1/query"),
        r#"{"contract":"counter","method":"get","at_version":99}"#,
    );
    assert_eq!((s, problem_kind(&p)), (400, "bad-input"));
    // Listings.
    let (s, _, c) = get(&a, &format!("{u}/v1/contracts"));
    assert_eq!((s, c[0]["name"].as_str()), (200, Some("counter")));
    let (s, _, st) = get(
        &a,
        &format!("{u}/v1/contracts/counter/state?prefix_hex=636f"),
    );
    assert_eq!((s, st[0]["key"].as_str()), (200, Some("count")));
    let (s, _, p) = get(&a, &format!("{u}/v1/contracts/nothing/state"));
    assert_eq!((s, problem_kind(&p)), (404, "not-found"));
    let (s, _, p) = get(&a, &format!("{u}/v1/contracts/counter/state?prefix_hex=zz"));
    assert_eq!((s, problem_kind(&p)), (400, "bad-input"));
    let (s, _, l) = get(&a, &format!("{u}/v1/log?from=2&limit=2"));
    assert_eq!(s, 200);
    assert_eq!(l.as_array().unwrap().len(), 2);
    assert_eq!(l[0]["tx_id"], id);
    let (s, _, p) = get(&a, &format!("{u}/v1/log?limit=99999999"));
    assert_eq!((s, problem_kind(&p)), (400, "bad-input"));
    let (s, _, e) = get(
        &a,
        &format!("{u}/v1/events?contract=counter&topic=inc&from_version=3"),
    );
    assert_eq!(s, 200);
    assert_eq!(e.as_array().unwrap().len(), 1, "{e}");
    assert_eq!(e[0]["version"], 3);
    let (s, _, h) = get(&a, &format!("{u}/v1/health"));
    assert_eq!((s, h["version"].as_u64()), (200, Some(4)));
    assert_eq!(h["host_id"].as_str().unwrap().len(), 32);
    // Simulate records nothing.
    let (s, _, sim) = post(
        &a,
        &format!("{u}/v1/simulate"),
        &inc("00000000-0000-4000-8000-000000000005"),
    );
    assert_eq!((s, sim[0]["version"].as_u64()), (200, Some(5)));
    assert_eq!(sim[0]["access"][0]["contract"], "counter");
    assert_eq!(log_len(&a, &u), 4);
    // A batch: an array of receipts and conflicts.
    let batch = format!(
        "[{},{}]",
        inc("00000000-0000-4000-8000-000000000006"),
        other
    );
    let (s, _, b) = post(&a, &format!("{u}/v1/tx"), &batch);
    assert_eq!(s, 200);
    assert_eq!(b[0]["version"], 5);
    assert_eq!(
        (b[1]["error"].as_str(), b[1]["tx_id"].as_str()),
        (Some("conflict"), Some(id))
    );
    // Metrics and the document.
    let (s, ct, m) = get(&a, &format!("{u}/metrics"));
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/plain"));
    let m = m.as_str().unwrap();
    for needle in [
        "semel_transactions_total{status=\"committed\"}",
        "semel_transactions_total{status=\"duplicate\"} 1",
        "semel_transactions_total{status=\"conflict\"} 2",
        "semel_http_request_duration_seconds_bucket",
        "semel_executor_batch_transactions_count",
        "semel_store_commits_total",
        "semel_queue_transactions 0",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
    let (s, _, doc) = get(&a, &format!("{u}/openapi.json"));
    assert_eq!((s, doc["openapi"].as_str()), (200, Some("3.1.0")));
    for path in [
        "/v1/tx",
        "/v1/tx/{id}",
        "/v1/simulate",
        "/v1/query",
        "/v1/contracts",
        "/v1/contracts/{name}/state",
        "/v1/log",
        "/v1/events",
        "/v1/health",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "the document lacks {path}"
        );
    }
    // Unknown paths and methods are problems too.
    let (s, ct, _) = get(&a, &format!("{u}/v2/nothing"));
    assert_eq!((s, ct.as_str()), (404, "application/problem+json"));
    let (s, ct, _) = answer(a.delete(format!("{u}/v1/tx")).call());
    assert_eq!((s, ct.as_str()), (405, "application/problem+json"));
}

#[test]
fn bad_input_is_400_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, a, u) = counter_server(dir.path(), &[]);
    let cases: Vec<(&str, String)> = vec![
        ("malformed JSON", r#"{"calls":[{"contract":"counter""#.into()),
        ("unknown field", r#"{"calls":[{"contract":"counter","method":"inc"}],"color":1}"#.into()),
        ("unknown call field", r#"{"calls":[{"contract":"counter","method":"inc","x":1}]}"#.into()),
        ("non-UUID id", r#"{"id":"12","calls":[{"contract":"counter","method":"inc"}]}"#.into()),
        ("huge gas", r#"{"gas_limit":123456789012345678901234567890,"calls":[{"contract":"counter","method":"inc"}]}"#.into()),
        ("float gas", r#"{"gas_limit":1.5,"calls":[{"contract":"counter","method":"inc"}]}"#.into()),
        ("negative gas", r#"{"gas_limit":-1,"calls":[{"contract":"counter","method":"inc"}]}"#.into()),
        ("no calls", r#"{"calls":[]}"#.into()),
        ("bad contract name", r#"{"calls":[{"contract":"no/pe","method":"inc"}]}"#.into()),
        ("bad wasm", r#"{"deploy":{"name":"x","code_base64":"AGFzbQEAAAAB"}}"#.into()),
        ("bad base64", r#"{"deploy":{"name":"x","code_base64":"!!!"}}"#.into()),
        ("unknown code hash", format!(r#"{{"deploy":{{"name":"x","code_hash":"{}"}}}}"#, "00".repeat(32))),
        ("empty batch", "[]".into()),
        ("batch with one bad", format!("[{},{}]", inc("00000000-0000-4000-8000-000000000009"), r#"{"calls":[]}"#)),
        ("a string", r#""hello""#.into()),
        ("bad access", r#"{"calls":[{"contract":"counter","method":"inc"}],"access":[{"contract":"counter","read":[{"key_hex":"zz"}]}]}"#.into()),
    ];
    for (what, body) in &cases {
        let (s, ct, p) = post(&a, &format!("{u}/v1/tx"), body);
        assert_eq!(
            (s, ct.as_str()),
            (400, "application/problem+json"),
            "{what}: {p}"
        );
        assert_eq!(problem_kind(&p), "bad-input", "{what}");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{what}");
    }
    // Wrong or missing content types.
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut r = a.post(format!("{u}/v1/tx"));
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        let (s, _, p) = answer(r.send(inc("00000000-0000-4000-8000-00000000000a").as_bytes()));
        assert_eq!((s, problem_kind(&p)), (400, "bad-input"), "{ct:?}");
    }
    // Nothing was recorded: only the deploy, and the ids stayed unused.
    assert_eq!(log_len(&a, &u), 1);
    let (s, _, _) = get(
        &a,
        &format!("{u}/v1/tx/00000000-0000-4000-8000-000000000009"),
    );
    assert_eq!(s, 404);
}

#[test]
fn one_byte_over_the_body_limit_is_413_and_at_it_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (server, a, u) = counter_server(dir.path(), &[]);
    let max = semel::limits::HTTP_BODY_BYTES_MAX;
    let tx = inc("00000000-0000-4000-8000-000000000002");
    // Whitespace pads a valid transaction to exactly the limit.
    let at = format!("{tx}{}", " ".repeat(max - tx.len()));
    assert_eq!(at.len(), max);
    let (s, _, r) = post(&a, &format!("{u}/v1/tx"), &at);
    assert_eq!((s, r["status"].as_str()), (200, Some("committed")), "{r}");
    // One byte more: refused from its Content-Length, before the body is read (a
    // client writing on would meet a closed connection, so this one sends headers only).
    let mut c = TcpStream::connect(&server.addr).unwrap();
    write!(
        c,
        "POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        max + 1
    )
    .unwrap();
    let mut text = String::new();
    let _ = c.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("too-large"), "{text}");
    let (s, _, _) = get(
        &a,
        &format!("{u}/v1/tx/00000000-0000-4000-8000-000000000003"),
    );
    assert_eq!(s, 404);
}

#[test]
fn thirty_two_concurrent_posts_of_one_id_execute_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, a, u) = counter_server(dir.path(), &[]);
    for round in 0..3 {
        let id = format!("00000000-0000-4000-8000-0000000001{round:02}");
        let barrier = Arc::new(std::sync::Barrier::new(32));
        let handles: Vec<_> = (0..32)
            .map(|_| {
                let (u, id, barrier) = (u.clone(), id.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let a = agent();
                    barrier.wait();
                    post(&a, &format!("{u}/v1/tx"), &inc(&id))
                })
            })
            .collect();
        let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let mut fresh = 0;
        let first = answers[0].2.clone();
        for (s, _, r) in &answers {
            assert_eq!(*s, 200, "{r}");
            if r["duplicate"] == false {
                fresh += 1;
            }
            let mut r = r.clone();
            r["duplicate"] = first["duplicate"].clone();
            assert_eq!(r, first, "every retry gets the same receipt");
        }
        assert_eq!(fresh, 1, "exactly one of the 32 executed it");
    }
    let (_, _, q) = post(
        &a,
        &format!("{u}/v1/query"),
        r#"{"contract":"counter","method":"get"}"#,
    );
    assert_eq!(q["output"], "3", "three ids, three executions");
    assert_eq!(log_len(&a, &u), 4);
}

#[test]
fn a_slow_client_is_cut_off_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let start = Instant::now();
    // Others are answered meanwhile.
    let (s, _, _) = get(&agent(), &format!("{}/v1/health", server.url));
    assert_eq!(s, 200);
    slow.set_read_timeout(Some(Duration::from_millis(
        semel::limits::HTTP_HEADER_READ_MILLIS_MAX * 3,
    )))
    .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection once the header time is up (with a 408 or
    // nothing); the read ends then, not at our own timeout.
    let _ = slow.read_to_end(&mut buf);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(semel::limits::HTTP_HEADER_READ_MILLIS_MAX - 500)
            && took < Duration::from_millis(semel::limits::HTTP_HEADER_READ_MILLIS_MAX * 3 - 500),
        "closed after {took:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

/// A request whose body comes too slowly is answered 408 once the request time is up
/// (a problem of kind `busy`, with `Retry-After`), and records nothing.
#[test]
fn a_slow_body_runs_past_the_request_time_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, a, _) = counter_server(dir.path(), &["--request-millis-max", "600"]);
    let body = inc("00000000-0000-4000-8000-0000000000b1");
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    write!(
        slow,
        "POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // Half the body, then nothing: the request time runs out while it is read.
    slow.write_all(&body.as_bytes()[..body.len() / 2]).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = slow.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&answer).contains("\"detail\"") {
            break;
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "answered when the time was up"
    );
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("retry-after:"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("urn:semel:problem:busy"), "{text}");
    let (s, _, _) = get(
        &a,
        &format!("{}/v1/tx/00000000-0000-4000-8000-0000000000b1", server.url),
    );
    assert_eq!(s, 404, "nothing was recorded");
    let (_, _, h) = get(&a, &format!("{}/v1/health", server.url));
    assert_eq!(h["version"], 1);
}

/// What one thread of [`load`] sent and got.
#[derive(Default)]
pub(crate) struct Loaded {
    /// Every id sent.
    pub sent: Vec<String>,
    /// The ids whose committed receipt came back, with its version.
    pub acked: Vec<(String, u64)>,
    /// The ids answered with a failure that records nothing (a 4xx or a 500: a host
    /// failure consumes no id), with the answer. A 503 or a cut connection says
    /// nothing of the outcome: those are only sent.
    pub failed: Vec<(String, u16, Value)>,
}

impl Loaded {
    /// The threads' results, joined into one.
    pub fn join(handles: impl IntoIterator<Item = std::thread::JoinHandle<Loaded>>) -> Loaded {
        let mut all = Loaded::default();
        for h in handles {
            all.extend(h.join().unwrap());
        }
        all
    }

    /// Adds what `other` sent and got.
    pub fn extend(&mut self, other: Loaded) {
        self.sent.extend(other.sent);
        self.acked.extend(other.acked);
        self.failed.extend(other.failed);
    }
}

/// Submits increments with fresh ids from `threads` threads until told to stop,
/// returning what each thread sent and got.
pub(crate) fn load(
    url: &str,
    threads: usize,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<Loaded>> {
    (0..threads)
        .map(|_| {
            let (url, stop) = (url.to_owned(), Arc::clone(stop));
            std::thread::spawn(move || {
                let a = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .new_agent();
                let mut got = Loaded::default();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = uuid::Uuid::new_v4().to_string();
                    got.sent.push(id.clone());
                    let r = a
                        .post(format!("{url}/v1/tx"))
                        .header("content-type", "application/json")
                        .send(inc(&id).as_bytes());
                    let Ok(mut r) = r else {
                        // Cut off (killed): the loop ends soon.
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let status = r.status().as_u16();
                    let body: Value =
                        serde_json::from_slice(&r.body_mut().read_to_vec().unwrap_or_default())
                            .unwrap_or(Value::Null);
                    match status {
                        200 if body["status"] == "committed" => {
                            let version = body["version"].as_u64().expect("a receipt's version");
                            got.acked.push((id, version));
                        }
                        // Busy, shutting down or the store unreachable: no word on it.
                        503 => std::thread::sleep(Duration::from_millis(5)),
                        _ => got.failed.push((id, status, body)),
                    }
                }
                got
            })
        })
        .collect()
}

/// Retries every acknowledged id: each is a duplicate with the version its receipt
/// gave. And every id answered with a failure: it was not recorded (a failure records
/// nothing), so its retry is no duplicate.
pub(crate) fn check_acknowledged(url: &str, loaded: &Loaded) {
    let a = agent();
    for (id, version) in &loaded.acked {
        let (s, _, r) = post(&a, &format!("{url}/v1/tx"), &inc(id));
        assert_eq!(s, 200, "retry of {id}: {r}");
        assert_eq!(
            r["duplicate"], true,
            "{id} was acknowledged, and ran again: {r}"
        );
        assert_eq!(r["version"].as_u64(), Some(*version), "{id}: {r}");
    }
    for (id, status, answer) in &loaded.failed {
        let (s, _, r) = post(&a, &format!("{url}/v1/tx"), &inc(id));
        assert_eq!(s, 200, "retry of {id}: {r}");
        assert_eq!(
            r["duplicate"], false,
            "{id} was answered {status} {answer}, but it was recorded: {r}"
        );
    }
}

#[test]
fn sigterm_under_load_answers_in_flight_and_loses_no_acknowledged_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _, _) = counter_server(dir.path(), &[]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles = load(&server.url, 8, &stop);
    std::thread::sleep(Duration::from_millis(700));
    let status = server.stop();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        status.success(),
        "semel serve exits 0 on SIGTERM: {status:?}"
    );
    let loaded = Loaded::join(handles);
    assert!(
        !loaded.acked.is_empty(),
        "the load got some receipts before the stop"
    );
    assert!(loaded.failed.is_empty(), "{:?}", loaded.failed);
    // Every acknowledged receipt is in the store, at its version.
    let host = semel::Host::open_existing(dir.path(), semel::HostOptions::default()).unwrap();
    for (id, version) in &loaded.acked {
        let id = semel::parse_id(id).unwrap();
        let receipt = host.receipt(&id).unwrap();
        assert_eq!(
            receipt.map(|r| r.version),
            Some(*version),
            "acknowledged {id} is not recorded at its version"
        );
    }
    host.verify().unwrap();
}

/// Kill -9 of a server under load, again and again: after each restart every id sent
/// is retried, and each executes exactly once (`SEMEL_SERVE_KILLS`, default 20).
#[test]
fn kill_9_under_load_then_retry_every_id_executes_each_once() {
    let kills: usize = std::env::var("SEMEL_SERVE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let a = agent();
    {
        let server = Server::start(dir.path());
        let (s, _, _) = post(
            &a,
            &format!("{}/v1/tx", server.url),
            &counter_deploy("00000000-0000-4000-8000-000000000001"),
        );
        assert_eq!(s, 200);
    }
    let mut all_ids: Vec<String> = Vec::new();
    let mut answered = Loaded::default();
    for round in 0..kills {
        let mut server = Server::start(dir.path());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles = load(&server.url, 2, &stop);
        std::thread::sleep(Duration::from_millis(
            100 + 37 * u64::try_from(round % 7).unwrap(),
        ));
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let loaded = Loaded::join(handles);
        all_ids.extend(loaded.sent.iter().cloned());
        answered.extend(loaded);
    }
    // No receipt was sent before it was durable: each acknowledged id is recorded at
    // the version its receipt said, whatever kill came after.
    let server = Server::start(dir.path());
    assert!(!answered.acked.is_empty(), "the load got receipts");
    check_acknowledged(&server.url, &answered);
    // Retry every id ever sent: each is recorded once, by this or an earlier run.
    let mut fresh = 0;
    for id in &all_ids {
        let (s, _, r) = post(&a, &format!("{}/v1/tx", server.url), &inc(id));
        assert_eq!(s, 200, "{r}");
        if r["duplicate"] == false {
            fresh += 1;
        }
    }
    let (_, _, q) = post(
        &a,
        &format!("{}/v1/query", server.url),
        r#"{"contract":"counter","method":"get"}"#,
    );
    assert_eq!(
        q["output"].as_str().unwrap(),
        all_ids.len().to_string(),
        "one increment per distinct id ({fresh} were new at the retry)"
    );
    let (_, _, h) = get(&a, &format!("{}/v1/health", server.url));
    assert_eq!(
        h["version"].as_u64(),
        Some(u64::try_from(all_ids.len()).unwrap() + 1)
    );
    let (s, _, v) = post(&a, &format!("{}/v1/verify", server.url), "{}");
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
}

/// `POST /v1/verify` re-executes the whole log: one at a time, others meanwhile are
/// 503 `busy`, and the server verifies again once it is done.
#[test]
fn verifies_run_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (server, a, _) = counter_server(dir.path(), &[]);
    // A log long enough that verifies started together overlap.
    let ids: Vec<String> = (0..2000)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let batch = format!(
        "[{}]",
        ids.iter().map(|id| inc(id)).collect::<Vec<_>>().join(",")
    );
    let (s, _, _) = post(&a, &format!("{}/v1/tx", server.url), &batch);
    assert_eq!(s, 200);
    let answers: Vec<(u16, Value)> = (0..4)
        .map(|_| {
            let url = format!("{}/v1/verify", server.url);
            std::thread::spawn(move || {
                let (s, _, v) = post(&agent(), &url, "{}");
                (s, v)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 503)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(ok + busy.len(), 4, "{answers:?}");
    assert!(ok >= 1 && !busy.is_empty(), "{answers:?}");
    for v in busy {
        assert_eq!(v["type"], "urn:semel:problem:busy", "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains("another verify"),
            "{v}"
        );
    }
    let (s, _, v) = post(&a, &format!("{}/v1/verify", server.url), "{}");
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
}

/// `semel bench --server` loads a live server over HTTP (bounded by `--txs`), each
/// answer checked; the server prints its interval summary on stderr meanwhile, and
/// SIGINT stops it cleanly (exit 0).
#[test]
fn bench_over_http_loads_a_server_that_reports_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("serve.err");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut server = Server::start_reporting(&dir.path().join("d"), err);
    let url = server.url.clone();
    for (extra, txs) in [(&[][..], 300), (&["--duplicates"][..], 100)] {
        let out = Command::new(semel_bin())
            .args(["--json", "bench", "--server", &url, "--threads", "4"])
            .args(["--txs", &txs.to_string()])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["txs"], txs, "{report}");
        assert!(report["tx_per_s"].as_f64().unwrap() > 0.0, "{report}");
        assert_eq!(report["duplicates"], !extra.is_empty(), "{report}");
    }
    // The counter of the bench's store counts every measured transaction once (the
    // duplicates' ids were recorded before their clock started).
    let (_, _, q) = post(
        &agent(),
        &format!("{url}/v1/query"),
        r#"{"contract":"counter","method":"get"}"#,
    );
    let counted: u64 = q["output"].as_str().unwrap().parse().unwrap();
    assert!(counted >= 400, "{q}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.stop_with(libc::SIGINT).success(), "SIGINT: exit 0");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        err.lines()
            .any(|l| l.starts_with("semel serve: last 1 s:") && l.contains("committed")),
        "{err}"
    );
}

type Answering = std::thread::JoinHandle<(u16, String, Value)>;

/// Keeps a one-executor server busy: the executor spins on a long transaction (out of
/// gas after a few seconds) and a batch of three waits in the queue behind it, each on
/// a connection of its own. Returns both requests, to join.
fn occupy_one_executor(u: &str) -> (Answering, Answering) {
    let spin = {
        let u = u.to_owned();
        std::thread::spawn(move || {
            post(
                &agent(),
                &format!("{u}/v1/tx"),
                r#"{"gas_limit":4000000000,"calls":[{"contract":"counter","method":"spin"}]}"#,
            )
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let waiting = {
        let u = u.to_owned();
        std::thread::spawn(move || {
            let batch = format!(
                "[{},{},{}]",
                inc("00000000-0000-4000-8000-0000000000a1"),
                inc("00000000-0000-4000-8000-0000000000a2"),
                inc("00000000-0000-4000-8000-0000000000a3")
            );
            post(&agent(), &format!("{u}/v1/tx"), &batch)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    (spin, waiting)
}

#[test]
fn a_connection_past_the_limit_is_answered_503_busy() {
    let dir = tempfile::tempdir().unwrap();
    // Two connections at most: both are held by requests in flight (the executor spins
    // on a long transaction, a batch waits behind it), so a third is refused.
    let server = Server::start_with(
        dir.path(),
        &[
            "--executors",
            "1",
            "--queue-max",
            "3",
            "--connections-max",
            "2",
        ],
    );
    let (a, u) = (agent(), server.url.clone());
    let (s, _, _) = post(
        &a,
        &format!("{u}/v1/tx"),
        &counter_deploy("00000000-0000-4000-8000-000000000001"),
    );
    assert_eq!(s, 200);
    // Its connection closes with the agent; the server notices at once (an EOF).
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let (spin, waiting) = occupy_one_executor(&u);
    let mut third = TcpStream::connect(&server.addr).unwrap();
    third
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = third.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(text.contains("urn:semel:problem:busy"), "{text}");
    let (s, _, r) = spin.join().unwrap();
    assert_eq!((s, r["status"].as_str()), (200, Some("reverted")), "{r}");
    let (s, _, b) = waiting.join().unwrap();
    assert_eq!(s, 200);
    assert_eq!(b.as_array().unwrap().len(), 3);
}

#[test]
fn a_full_queue_is_503_busy_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // One executor and a queue of three: the executor spins on a long transaction (out
    // of gas after a while), three wait behind it, and a fourth finds the queue full.
    let (_server, a, u) = counter_server(dir.path(), &["--executors", "1", "--queue-max", "3"]);
    let (spin, waiting) = occupy_one_executor(&u);
    let r = a
        .post(format!("{u}/v1/tx"))
        .header("content-type", "application/json")
        .send(inc("00000000-0000-4000-8000-0000000000b1").as_bytes())
        .unwrap();
    assert_eq!(
        r.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
            .as_deref(),
        Some("1")
    );
    let (s, _, p) = answer(Ok(r));
    assert_eq!((s, problem_kind(&p)), (503, "busy"), "{p}");
    // A batch longer than the whole queue can never wait in it: too large.
    let four = format!(
        "[{},{},{},{}]",
        inc("00000000-0000-4000-8000-0000000000c1"),
        inc("00000000-0000-4000-8000-0000000000c2"),
        inc("00000000-0000-4000-8000-0000000000c3"),
        inc("00000000-0000-4000-8000-0000000000c4")
    );
    let (s, _, p) = post(&a, &format!("{u}/v1/tx"), &four);
    assert_eq!((s, problem_kind(&p)), (413, "too-large"), "{p}");
    let (s, _, r) = spin.join().unwrap();
    assert_eq!((s, r["status"].as_str()), (200, Some("reverted")), "{r}");
    let (s, _, _) = waiting.join().unwrap();
    assert_eq!(s, 200);
    let (s, _, _) = get(
        &a,
        &format!("{u}/v1/tx/00000000-0000-4000-8000-0000000000b1"),
    );
    assert_eq!(s, 404, "the refused transaction was not recorded");
}
