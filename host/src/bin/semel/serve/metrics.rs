//! The server's metrics, in Prometheus' text format (`GET /metrics`): transactions by
//! outcome, request latency, executor batch (group) sizes, store commits (fsyncs when
//! durable) and queue depth.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How a transaction submitted over HTTP ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Committed,
    Reverted,
    Duplicate,
    Conflict,
    Rejected,
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::Reverted => "reverted",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

pub struct Metrics {
    registry: Registry,
    transactions: Family<StatusLabel, Counter>,
    latency: Family<RouteLabel, Histogram>,
    group_sizes: Histogram,
    commits: Counter,
    commits_seen: AtomicU64,
    queue_depth: Gauge,
    rss: Gauge,
    peak_rss: Gauge,
    /// Totals for the progress line.
    pub totals: [AtomicU64; 6],
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("semel");
        let transactions = Family::<StatusLabel, Counter>::default();
        registry.register(
            "transactions",
            "Transactions submitted over HTTP, by outcome",
            transactions.clone(),
        );
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            // 20 µs to about 20 s.
            Histogram::new(exponential_buckets(0.000_02, 2.0, 20))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        let group_sizes = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        registry.register(
            "executor_batch_transactions",
            "Transactions the executor took from the queue at once (one batch, one group commit)",
            group_sizes.clone(),
        );
        let commits = Counter::default();
        registry.register(
            "store_commits",
            "Store commits since the server started (one fsync each when durable)",
            commits.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_transactions",
            "Transactions waiting for the executor",
            queue_depth.clone(),
        );
        let rss = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            rss.clone(),
        );
        let peak_rss = Gauge::default();
        registry.register(
            "process_peak_resident_memory_bytes",
            "Peak resident memory of the server process since it started",
            peak_rss.clone(),
        );
        Self {
            registry,
            rss,
            peak_rss,
            transactions,
            latency,
            group_sizes,
            commits,
            commits_seen: AtomicU64::new(0),
            queue_depth,
            totals: Default::default(),
        }
    }

    pub fn outcome(&self, outcome: Outcome) {
        self.transactions
            .get_or_create(&StatusLabel {
                status: outcome.label(),
            })
            .inc();
        self.totals[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn latency(&self, route: &str, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    pub fn group(&self, transactions: usize) {
        self.group_sizes
            .observe(f64::from(u32::try_from(transactions).unwrap_or(u32::MAX)));
    }

    /// The text format, with the store's commit count and the queue depth as of now.
    pub fn render(&self, commits_now: u64, queued: usize) -> String {
        let before = self.commits_seen.swap(commits_now, Ordering::Relaxed);
        self.commits.inc_by(commits_now.saturating_sub(before));
        self.queue_depth
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
        self.rss.set(bytes(crate::memory::rss_bytes()));
        self.peak_rss.set(bytes(crate::memory::peak_rss_bytes()));
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn total(&self, outcome: Outcome) -> u64 {
        self.totals[outcome as usize].load(Ordering::Relaxed)
    }
}
