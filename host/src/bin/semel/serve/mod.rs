//! `semel serve` (interface §6): the store over HTTP/1.1, on axum and hyper.
//!
//! The host stays synchronous. Requests are read, checked and answered on tokio's
//! threads; a retry of a recorded id is answered there too, from a snapshot. New
//! transactions go through a queue bounded in transactions (`queue.rs`) to executor
//! threads that run everything waiting as one batch (one parallel batch, one group
//! commit), and come back once durable. Files: `routes.rs` (the endpoints),
//! `queue.rs` (the hand-off and the in-flight latch), `problem.rs` (errors),
//! `metrics.rs`, `openapi.rs`; this file owns the listener, its limits and shutdown.

mod metrics;
mod openapi;
mod problem;
mod queue;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use semel::Host;
use semel::limits::{
    HTTP_BODY_BYTES_MAX, HTTP_CONNECTIONS_MAX, HTTP_HEADER_READ_MILLIS_MAX,
    HTTP_REQUEST_MILLIS_MAX, QUEUED_TRANSACTIONS_MAX,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use self::metrics::{Metrics, Outcome};
use self::queue::{InFlight, Queue};

/// Where `semel serve` listens unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";

/// Options of `semel serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port; the line printed at start
    /// says which)
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Seconds between the one-line summaries on stderr (0: none); an interval with no
    /// requests prints nothing
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub progress_secs: u64,
    /// Threads that take transactions from the queue and run them on the host
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub executors: u16,
    /// Threads that read, check and answer requests [default: the machine's cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub http_threads: Option<u16>,
    /// Turn the host's latency mechanisms off, as `semel bench --off` (BENCHMARKS.md's
    /// index); `all` turns every one off
    #[arg(long, value_enum, value_delimiter = ',', value_name = "MECHANISM")]
    pub off: Vec<crate::bench::Mechanism>,
    /// Accept unsigned transactions (their sender a plain name, never an `ed25519:`
    /// account); without it every transaction must carry a signature
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Tests only: a lower `QUEUED_TRANSACTIONS_MAX`, so that a full queue can be made
    #[arg(long, hide = true, default_value_t = QUEUED_TRANSACTIONS_MAX)]
    pub queue_max: usize,
    /// Tests only: a lower `HTTP_CONNECTIONS_MAX`
    #[arg(long, hide = true, default_value_t = HTTP_CONNECTIONS_MAX)]
    pub connections_max: usize,
    /// Tests only: a lower `HTTP_REQUEST_MILLIS_MAX`, so that a request can outlast it
    #[arg(long, hide = true, default_value_t = HTTP_REQUEST_MILLIS_MAX)]
    pub request_millis_max: u64,
}

/// What the handlers share.
pub struct App {
    host: Arc<Host>,
    queue: Queue,
    inflight: InFlight,
    metrics: Arc<Metrics>,
    /// Whether unsigned transactions are accepted (`--allow-unsigned`).
    allow_unsigned: bool,
    /// Whether the store is a database other hosts share: see `routes::store_call`.
    remote: bool,
    /// `POST /v1/verify` requests running now: at most `HTTP_VERIFIES_MAX` (each
    /// re-executes the whole log, so more at once would only take the executors' cores).
    verifying: std::sync::atomic::AtomicUsize,
}

/// The router of every endpoint, with its layers.
fn router(app: Arc<App>, request_millis_max: u64) -> Router {
    Router::new()
        .route("/v1/tx", post(routes::post_tx))
        .route("/v1/tx/{id}", get(routes::get_tx))
        .route("/v1/simulate", post(routes::post_simulate))
        .route("/v1/query", post(routes::post_query))
        .route("/v1/contracts", get(routes::get_contracts))
        .route("/v1/contracts/{name}/state", get(routes::get_state))
        .route("/v1/log", get(routes::get_log))
        .route("/v1/events", get(routes::get_events))
        .route("/v1/health", get(routes::get_health))
        .route("/v1/info", get(routes::get_info))
        .route("/v1/verify", post(routes::post_verify))
        .route("/metrics", get(routes::get_metrics))
        .route("/openapi.json", get(openapi::get_openapi))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            routes::timed,
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(HTTP_BODY_BYTES_MAX))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(request_millis_max),
        ))
        // Outside the limits, so that their answers become problems too.
        .layer(axum::middleware::map_response(problem::problems_everywhere))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// Runs the server until SIGTERM or SIGINT, then stops accepting, answers what is in
/// flight, lets the executors finish and closes the store.
pub fn run(host: Host, args: &ServeArgs) -> anyhow::Result<()> {
    // `RUST_LOG` for detail; warnings and errors otherwise.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let host = Arc::new(host);
    let metrics = Arc::new(Metrics::new());
    let app = Arc::new(App {
        host: Arc::clone(&host),
        queue: Queue::start(
            args.queue_max,
            Arc::clone(&host),
            Arc::clone(&metrics),
            usize::from(args.executors),
        ),
        inflight: InFlight::default(),
        allow_unsigned: args.allow_unsigned,
        remote: host.shares_store(),
        metrics,
        verifying: Default::default(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(
            args.http_threads
                .map_or_else(semel::default_workers, usize::from),
        )
        .thread_name("semel-http")
        .build()
        .context("cannot start the server's threads")?;
    let served = runtime.block_on(serve(Arc::clone(&app), args));
    // Every connection has been answered or closed: the executors finish what is
    // queued, then the store closes as the last reference to the host goes.
    app.queue.stop();
    drop(runtime);
    drop(app);
    served?;
    match Arc::try_unwrap(host) {
        Ok(host) => drop(host),
        Err(_) => anyhow::bail!("the store is still in use at shutdown"),
    }
    eprintln!("semel serve: stopped; the store is closed");
    Ok(())
}

async fn serve(app: Arc<App>, args: &ServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("the listening address")?;
    crate::print::outln!("semel serve: listening on http://{local}");
    // Flushed now: a script waits for this line.
    let _ = crate::print::output_failure();
    let router = router(Arc::clone(&app), args.request_millis_max);
    let connections = Arc::new(Semaphore::new(args.connections_max));
    let graceful = GracefulShutdown::new();
    let progress = tokio::spawn(progress(Arc::clone(&app), args.progress_secs));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(HTTP_HEADER_READ_MILLIS_MAX));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A failed accept (out of file descriptors, a reset) costs that
                // connection only.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            let max = args.connections_max;
            tokio::spawn(async move {
                let _ = stream.write_all(busy_answer(max).as_bytes()).await;
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    eprintln!("semel serve: stopping: answering the requests in flight");
    // Bounded: every request ends within its own time limit.
    let wait = Duration::from_millis(HTTP_REQUEST_MILLIS_MAX + HTTP_HEADER_READ_MILLIS_MAX);
    if tokio::time::timeout(wait, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("semel serve: some connections did not close in time; closing them");
    }
    progress.abort();
    Ok(())
}

/// The whole answer to a connection past `HTTP_CONNECTIONS_MAX` (`max`).
fn busy_answer(max: usize) -> String {
    let body = serde_json::to_string(&problem::Problem::new(
        problem::Kind::Busy,
        format!("more than HTTP_CONNECTIONS_MAX ({max}) connections are open"),
    ))
    .unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        semel::limits::BUSY_RETRY_AFTER_SECS,
        body.len()
    )
}

/// Resolves at SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be watched");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// One line on stderr per interval with requests in it.
async fn progress(app: Arc<App>, secs: u64) {
    if secs == 0 {
        return;
    }
    let outcomes = [
        Outcome::Committed,
        Outcome::Reverted,
        Outcome::Duplicate,
        Outcome::Conflict,
        Outcome::Rejected,
        Outcome::Failed,
    ];
    let mut last = [0u64; 6];
    let mut tick = tokio::time::interval(Duration::from_secs(secs));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = outcomes.map(|o| app.metrics.total(o));
        let d: Vec<u64> = now.iter().zip(&last).map(|(n, l)| n - l).collect();
        last = now;
        if d.iter().all(|n| *n == 0) {
            continue;
        }
        eprintln!(
            "semel serve: last {secs} s: {} committed, {} reverted, {} duplicates, {} conflicts, \
             {} refused, {} failed; queue {}, version {}",
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            app.queue.depth(),
            app.host.latest_version()
        );
    }
}
