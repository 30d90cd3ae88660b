//! `semel bench --server URL`: the benchmark's workloads as a load generator over HTTP,
//! for a `semel serve` on this machine. Each of `--threads` connections sends its
//! transactions one request at a time (`--batch` per request), bounded by `--txs` and
//! `--seconds`. Reports throughput, per-request latency, and the server's fsyncs and
//! memory from its `/metrics`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use semel::Transaction;
use serde_json::json;
use tokio::net::TcpStream;

use crate::Exit;
use crate::bench::{ACCOUNT_FUNDS, BenchArgs, COUNTER_WASM, Rng, TOKEN_WASM, Workload};
use crate::print::outln;

/// Setup transactions per request.
const SETUP_BATCH: usize = 500;

/// The server's address, from a URL that must name this machine.
fn loopback(url: &str) -> Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("--server {url}: only http:// URLs are served"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = match authority.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}").parse(),
        None => authority.parse(),
    }
    .with_context(|| format!("--server {url}: expected http://ADDR:PORT"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "--server {url}: the load generator only targets this machine (a loopback \
             address), so that a benchmark never loads someone else's server"
        );
    }
    Ok((addr, authority.to_owned()))
}

/// One HTTP/1.1 connection.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl Conn {
    async fn open(addr: SocketAddr, authority: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Self {
            sender,
            authority: authority.to_owned(),
        })
    }

    async fn send(&mut self, method: &str, path: &str, body: Bytes) -> Result<(u16, Bytes)> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }
}

fn tx_json(tx: &Transaction) -> Result<Vec<u8>> {
    crate::client::tx_json(tx)
}

/// A request body: one transaction, or an array of them.
fn body(txs: &[Transaction]) -> Result<Bytes> {
    if let [tx] = txs {
        return Ok(Bytes::from(tx_json(tx)?));
    }
    let mut out = vec![b'['];
    for (i, tx) in txs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(tx_json(tx)?);
    }
    out.push(b']');
    Ok(Bytes::from(out))
}

/// How many of an answer's receipts committed.
fn committed(answer: &[u8]) -> usize {
    let needle = br#""status":"committed""#;
    answer.windows(needle.len()).filter(|w| w == needle).count()
}

/// Sends `txs` in requests of `SETUP_BATCH`, each of which must commit (a deploy onto a
/// name the server already has counts: an earlier run made it).
async fn must_commit(conn: &mut Conn, txs: &[Transaction]) -> Result<()> {
    for chunk in txs.chunks(SETUP_BATCH) {
        let (status, answer) = conn.send("POST", "/v1/tx", body(chunk)?).await?;
        let text = String::from_utf8_lossy(&answer);
        if status != 200 || (committed(&answer) != chunk.len() && !text.contains("already taken")) {
            bail!("a setup request failed ({status}): {text}");
        }
    }
    Ok(())
}

async fn setup(conn: &mut Conn, args: &BenchArgs) -> Result<()> {
    let deploy = |name: &str, code: &[u8], init: serde_json::Value, sender: &str| {
        Transaction::deploy(name, code, init.to_string().into_bytes()).with_sender(sender)
    };
    match args.workload {
        Workload::Counter => {
            must_commit(
                conn,
                &[deploy("counter", COUNTER_WASM, json!(null), "bench")],
            )
            .await
        }
        Workload::Transfer => {
            let supply = ACCOUNT_FUNDS * args.accounts;
            must_commit(
                conn,
                &[deploy(
                    "token",
                    TOKEN_WASM,
                    json!({"supply": supply}),
                    "bank",
                )],
            )
            .await?;
            let funding: Vec<_> = (0..args.accounts)
                .map(|i| {
                    crate::bench::call(
                        "bank",
                        "token",
                        "transfer",
                        json!({"to": crate::bench::account(i), "amount": ACCOUNT_FUNDS}),
                    )
                })
                .collect();
            must_commit(conn, &funding).await
        }
        Workload::Swap => bail!("--workload swap is not offered over --server yet"),
    }
}

/// The server's metric `name` (a plain gauge or counter line), if it reports it. On a
/// connection of its own: the server closes idle ones.
async fn metric(addr: SocketAddr, authority: &str, name: &str) -> Result<f64> {
    let mut conn = Conn::open(addr, authority).await?;
    let (_, text) = conn
        .send("GET", "/metrics", Bytes::new())
        .await
        .context("reading the server's /metrics")?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| anyhow!("the server's /metrics has no {name}"))
}

/// Runs the benchmark against the server at `url`.
pub fn run(args: &BenchArgs, url: &str, json_out: bool) -> Result<Exit> {
    let (addr, authority) = loopback(url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(args, addr, &authority, url, json_out))
}

async fn measure(
    args: &BenchArgs,
    addr: SocketAddr,
    authority: &str,
    url: &str,
    json_out: bool,
) -> Result<Exit> {
    let mut control = Conn::open(addr, authority).await?;
    setup(&mut control, args).await?;
    // Made before the clock starts.
    let per_conn = args.txs.div_ceil(args.threads);
    let batch = usize::try_from(args.batch)?;
    let mut work = Vec::new();
    for t in 0..args.threads {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
        let count = per_conn.min(args.txs.saturating_sub(t * per_conn));
        let txs: Vec<_> = (0..count)
            .map(|n| crate::bench::transaction(args, &mut rng, n))
            .collect();
        let bodies = txs
            .chunks(batch)
            .map(|c| Ok((c.len(), body(c)?)))
            .collect::<Result<Vec<_>>>()?;
        work.push(bodies);
    }
    if args.duplicates {
        // Recorded first: the measured requests are all retries.
        for bodies in &work {
            for (n, b) in bodies {
                let (status, answer) = control.send("POST", "/v1/tx", b.clone()).await?;
                if status != 200 || committed(&answer) != *n {
                    bail!("a setup request failed ({status})");
                }
            }
        }
    }
    let commits_before = metric(addr, authority, "semel_store_commits_total").await?;
    let rss_before = metric(addr, authority, "semel_process_resident_memory_bytes").await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for bodies in work {
        let mut conn = Conn::open(addr, authority).await?;
        let duplicates = args.duplicates;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(bodies.len());
            for (n, b) in bodies {
                if Instant::now() >= deadline {
                    break;
                }
                let t0 = Instant::now();
                let (status, answer) = conn.send("POST", "/v1/tx", b).await.with_context(|| {
                    format!(
                        "request {} of a connection, {:.1} s into the run",
                        latencies.len() / n.max(1),
                        started.elapsed().as_secs_f64()
                    )
                })?;
                let took = t0.elapsed();
                if status != 200 || committed(&answer) != n {
                    bail!(
                        "a measured request failed ({status}): {}",
                        String::from_utf8_lossy(&answer)
                    );
                }
                if duplicates && !answer.windows(16).any(|w| w == br#""duplicate":true"#) {
                    bail!("a retry was not answered with its stored receipt");
                }
                latencies.extend(std::iter::repeat_n(took, n));
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let fsyncs = metric(addr, authority, "semel_store_commits_total").await? - commits_before;
    let rss_after = metric(addr, authority, "semel_process_resident_memory_bytes").await?;
    let peak = metric(addr, authority, "semel_process_peak_resident_memory_bytes").await?;
    let txs = latencies.len();
    #[allow(clippy::cast_precision_loss)]
    let tx_per_s = txs as f64 / seconds;
    let report = json!({
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "server": url,
        "txs": txs,
        "seconds": seconds,
        "tx_per_s": tx_per_s,
        "p50_us": crate::bench::percentile(&latencies, 500),
        "p99_us": crate::bench::percentile(&latencies, 990),
        "connections": args.threads,
        "batch": args.batch,
        "duplicates": args.duplicates,
        "fsyncs": fsyncs,
        "server_rss_bytes_before": rss_before,
        "server_rss_bytes_after": rss_after,
        "server_peak_rss_bytes": peak,
    });
    if json_out {
        outln!("{report}");
    } else {
        outln!(
            "{} {} txs over HTTP in {:.2} s: {:.0} tx/s, latency p50 {:.1} µs, p99 {:.1} µs; \
             {} fsyncs; server RSS {} → {} MiB (peak {} MiB)",
            report["workload"].as_str().unwrap_or_default(),
            txs,
            seconds,
            tx_per_s,
            report["p50_us"].as_f64().unwrap_or_default(),
            report["p99_us"].as_f64().unwrap_or_default(),
            fsyncs,
            rss_before / 1048576.0,
            rss_after / 1048576.0,
            peak / 1048576.0,
        );
        outln!(
            "  ({} connections, batch {}{})",
            args.threads,
            args.batch,
            if args.duplicates { ", all retries" } else { "" }
        );
    }
    Ok(Exit::Done)
}
