//! `semel bench`: a workload benchmark on the example contracts — counter increments,
//! token transfers between A accounts (the Block-STM paper's peer-to-peer workload), or
//! swaps through an exchange — submitted by T threads in batches of B, durable by
//! default. Reports throughput, per-transaction latency, fsyncs and peak memory.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use semel::{Durability, Host, HostOptions, Status, Transaction, Uuid};
use serde_json::json;

use crate::Exit;
use crate::print::outln;

pub(crate) const COUNTER_WASM: &[u8] = include_bytes!("../../../../contracts/wasm/counter.wasm");
pub(crate) const TOKEN_WASM: &[u8] = include_bytes!("../../../../contracts/wasm/token.wasm");
const EXCHANGE_WASM: &[u8] = include_bytes!("../../../../contracts/wasm/exchange.wasm");

/// Tokens each account starts with in the transfer and swap workloads.
pub(crate) const ACCOUNT_FUNDS: u64 = 1_000_000_000;

/// Which transactions the benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// `counter.inc`: one key, the smallest transaction.
    Counter,
    /// `token.transfer` of 1 between random accounts.
    Transfer,
    /// `exchange.swap` of 10, alternating direction: three contracts per transaction.
    Swap,
}

/// `semel bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The transactions to send
    #[arg(long, value_enum, default_value = "counter")]
    pub workload: Workload,
    /// Transactions to measure (setup transactions are not counted)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub txs: u64,
    /// Accounts for the transfer and swap workloads
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub accounts: u64,
    /// Transactions per submission (one group commit each): 1 submits one at a time
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Keep state in memory instead of a durable data dir
    #[arg(long)]
    pub in_memory: bool,
    /// Submitting threads (with --server: connections)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
    /// Skip the fsync of each commit (a crash may lose the latest transactions)
    #[arg(long)]
    no_fsync: bool,
    /// Executor threads for each batch [default: the machine's cores]
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: Option<u16>,
    /// How batches run: optimistic, pessimistic (each transaction declares the access
    /// set a simulation finds, before the clock starts) or sequential
    #[arg(long, value_name = "MODE", default_value = "optimistic")]
    concurrency: semel::Concurrency,
    /// Run concurrent submitters that find the writer busy as one batch
    /// (`HostOptions::gather`)
    #[arg(long)]
    gather: bool,
    /// Turn latency mechanisms off, to measure what each buys (BENCHMARKS.md's index);
    /// `all` turns every one off
    #[arg(long, value_enum, value_delimiter = ',', value_name = "MECHANISM")]
    off: Vec<Mechanism>,
    /// With --server: stop after this many seconds even if transactions are left
    #[arg(long, value_name = "S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
    /// With --server: measure retries instead: every transaction is recorded before the
    /// clock starts, then sent again (each answer must be its stored receipt)
    #[arg(long)]
    pub duplicates: bool,
    /// Sign every transaction (ed25519, one key per submitting thread, made before the
    /// clock starts): the host verifies each signature. Counter workload only, as the
    /// sender becomes the key's account
    #[arg(long)]
    pub signed: bool,
}

/// The mechanisms for speed `--off` can turn off, one switch each (`HostOptions`, the
/// in-memory backend's, or the process's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mechanism {
    /// Instantiating ahead of the writer lock (`HostOptions::prewarm`)
    Prewarm,
    /// The recycler thread (`HostOptions::recycler`)
    Recycler,
    /// Polling for the writer lock before sleeping (`HostOptions::writer_spin`)
    WriterSpin,
    /// The ids staged lately (`HostOptions::recent_ids`)
    RecentIds,
    /// Keeping a group commit's merge buffer (`HostOptions::reuse_merge_buffer`)
    MergeBuffer,
    /// A large in-memory commit's events index rows on a second thread
    /// (`MemoryBackend::with_parallel_apply`; with `--in-memory`)
    ParallelApply,
    /// Hosts on a shared store taking turns to commit once their commits collide
    /// (`HostOptions::store_turns`; with `--store`)
    StoreTurns,
    /// A parallel batch remembering the entries of its base it read from a shared store
    /// (`HostOptions::remember_base_reads`; with `--store`)
    BaseReads,
    /// A staged batch joining the committer's overlay only when a read needs it
    /// (`HostOptions::lazy_staging`; durable stores)
    LazyStaging,
    /// The state root's own AVX-512 code where the CPU has it: entries' expansions, and
    /// a parallel batch's roots eight at a time (`semel::use_avx512`; for the process)
    Avx512,
    /// Helper threads kept warm for parallel batches' workers and large in-memory
    /// commits, instead of threads started for each (`semel::use_helpers`; for the
    /// process)
    Helpers,
    /// Every one of them
    All,
}

/// `base` with the mechanisms in `off` turned off.
pub(crate) fn switched(base: HostOptions, off: &[Mechanism]) -> HostOptions {
    off.iter().fold(base, |o, m| match m {
        Mechanism::Prewarm => HostOptions {
            prewarm: semel::Prewarm::Off,
            ..o
        },
        Mechanism::Recycler => HostOptions {
            recycler: false,
            ..o
        },
        Mechanism::WriterSpin => HostOptions {
            writer_spin: false,
            ..o
        },
        Mechanism::RecentIds => HostOptions {
            recent_ids: false,
            ..o
        },
        Mechanism::MergeBuffer => HostOptions {
            reuse_merge_buffer: false,
            ..o
        },
        Mechanism::StoreTurns => HostOptions {
            store_turns: false,
            ..o
        },
        Mechanism::BaseReads => HostOptions {
            remember_base_reads: false,
            ..o
        },
        Mechanism::LazyStaging => HostOptions {
            lazy_staging: false,
            ..o
        },
        // A backend's switch and the process's, not the host's: see `run`.
        Mechanism::ParallelApply | Mechanism::Avx512 | Mechanism::Helpers => o,
        Mechanism::All => HostOptions {
            store_turns: false,
            remember_base_reads: false,
            lazy_staging: false,
            ..o.plain()
        },
    })
}

/// The process's switches (not the host's) that `off` turns off: the state root's
/// AVX-512 code and the helper threads.
pub(crate) fn set_process_switches(off: &[Mechanism]) {
    let off = |m: Mechanism| off.iter().any(|o| *o == m || *o == Mechanism::All);
    semel::use_avx512(!off(Mechanism::Avx512));
    semel::use_helpers(!off(Mechanism::Helpers));
}

/// A small deterministic random source for picking accounts.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub(crate) fn account(i: u64) -> String {
    format!("acct{i}")
}

pub(crate) fn call(
    sender: &str,
    contract: &str,
    method: &str,
    args: serde_json::Value,
) -> Transaction {
    Transaction::call(contract, method, args.to_string().into_bytes()).with_sender(sender)
}

fn must_commit(host: &Host, txs: &[Transaction]) -> Result<()> {
    for chunk in txs.chunks(512) {
        for r in host.submit_all(chunk) {
            let r = r?;
            // On a shared store another bench may have deployed it first.
            let taken = r
                .error
                .as_deref()
                .is_some_and(|e| e.contains("already taken"));
            if r.status != Status::Committed && !taken {
                bail!(
                    "setup transaction reverted: {}",
                    r.error.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// Deploys the workload's contracts and funds its accounts.
fn setup(host: &Host, args: &BenchArgs) -> Result<()> {
    let deploy = |name: &str, code: &[u8], init: serde_json::Value, sender: &str| {
        Transaction::deploy(name, code, init.to_string().into_bytes()).with_sender(sender)
    };
    match args.workload {
        Workload::Counter => must_commit(
            host,
            &[deploy("counter", COUNTER_WASM, json!(null), "bench")],
        ),
        Workload::Transfer => {
            let supply = ACCOUNT_FUNDS * args.accounts;
            must_commit(
                host,
                &[deploy(
                    "token",
                    TOKEN_WASM,
                    json!({"supply": supply}),
                    "bank",
                )],
            )?;
            let funding: Vec<_> = (0..args.accounts)
                .map(|i| {
                    call(
                        "bank",
                        "token",
                        "transfer",
                        json!({"to": account(i), "amount": ACCOUNT_FUNDS}),
                    )
                })
                .collect();
            must_commit(host, &funding)
        }
        Workload::Swap => {
            let supply = ACCOUNT_FUNDS * (args.accounts + 1);
            let mut txs = vec![
                deploy("ta", TOKEN_WASM, json!({"supply": supply}), "bank"),
                deploy("tb", TOKEN_WASM, json!({"supply": supply}), "bank"),
                deploy(
                    "ex",
                    EXCHANGE_WASM,
                    json!({"token_a": "ta", "token_b": "tb"}),
                    "bank",
                ),
            ];
            for t in ["ta", "tb"] {
                txs.push(call(
                    "bank",
                    t,
                    "approve",
                    json!({"spender": "ex", "amount": ACCOUNT_FUNDS}),
                ));
            }
            txs.push(call(
                "bank",
                "ex",
                "add_liquidity",
                json!({"amount_a": ACCOUNT_FUNDS, "amount_b": ACCOUNT_FUNDS}),
            ));
            for i in 0..args.accounts {
                for t in ["ta", "tb"] {
                    txs.push(call(
                        "bank",
                        t,
                        "transfer",
                        json!({"to": account(i), "amount": ACCOUNT_FUNDS}),
                    ));
                    txs.push(call(
                        &account(i),
                        t,
                        "approve",
                        json!({"spender": "ex", "amount": ACCOUNT_FUNDS}),
                    ));
                }
            }
            must_commit(host, &txs)
        }
    }
}

/// The `n`-th measured transaction of thread `thread`.
pub(crate) fn transaction(args: &BenchArgs, rng: &mut Rng, n: u64) -> Transaction {
    match args.workload {
        Workload::Counter => Transaction::call("counter", "inc", Vec::new()),
        Workload::Transfer => {
            let from = rng.below(args.accounts);
            let to = rng.below(args.accounts);
            call(
                &account(from),
                "token",
                "transfer",
                json!({"to": account(to), "amount": 1}),
            )
        }
        Workload::Swap => {
            let who = account(rng.below(args.accounts));
            let token_in = if n.is_multiple_of(2) { "ta" } else { "tb" };
            call(
                &who,
                "ex",
                "swap",
                json!({"token_in": token_in, "amount_in": 10}),
            )
        }
    }
    .with_id(Uuid::new_v4())
}

/// Declares on each of `txs` the access set a simulation of it finds.
fn declare(host: &Host, txs: &mut [Transaction]) -> Result<()> {
    for chunk in txs.chunks_mut(1000) {
        let sims = host.simulate(chunk);
        for (tx, sim) in chunk.iter_mut().zip(sims) {
            tx.access = Some(Arc::new(sim?.access));
        }
    }
    Ok(())
}

/// The latency at `per_mille`/1000 of a sorted list, in microseconds (nearest rank).
pub(crate) fn percentile(sorted: &[Duration], per_mille: usize) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let idx = (last * per_mille + 500) / 1000;
    sorted[idx.min(last)].as_secs_f64() * 1e6
}

fn progress(done: u64, total: u64) {
    let width = 40;
    let filled = usize::try_from(done * width / total.max(1)).unwrap_or(0);
    eprint!(
        "\r[{}{}] {done}/{total}",
        "=".repeat(filled),
        " ".repeat(usize::try_from(width).unwrap_or(40) - filled)
    );
}

/// `txs` signed for `host` with thread `t`'s key (its seed: the thread's number), so
/// that the host verifies a signature per transaction.
fn sign_all(host: &Host, t: u64, txs: Vec<Transaction>) -> Result<Vec<Transaction>> {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(t + 1).to_le_bytes());
    let key = semel::SigningKey::from_bytes(&seed);
    let host_id = host.host_id();
    txs.into_iter()
        .map(|tx| Ok(tx.signed(&key, &host_id)?))
        .collect()
}

/// Runs the benchmark in `data_dir` (fresh; kept afterwards) or, without one, in a
/// temporary data dir.
pub fn run(args: &BenchArgs, data_dir: Option<&Path>, json_out: bool) -> Result<Exit> {
    let temp = tempfile::tempdir().context("cannot create a temporary data dir")?;
    let dir = data_dir.unwrap_or(temp.path());
    let options = options(args);
    let workers = options.workers;
    let off = |m: Mechanism| args.off.iter().any(|o| *o == m || *o == Mechanism::All);
    set_process_switches(&args.off);
    let host = if args.in_memory {
        let parallel_apply = !off(Mechanism::ParallelApply);
        Host::with_backend(
            Box::new(semel::storage::MemoryBackend::new().with_parallel_apply(parallel_apply)),
            None,
            options,
        )?
    } else {
        Host::open(dir, options)?
    };
    measure(args, host, workers, json_out)
}

/// Runs the benchmark as one host of the PostgreSQL store `url` (made when new; other
/// benches or servers may use it at the same time).
pub fn run_on_postgres(args: &BenchArgs, url: &str, json_out: bool) -> Result<Exit> {
    let options = options(args);
    let workers = options.workers;
    let host = Host::open_postgres(url, true, options)?;
    measure(args, host, workers, json_out)
}

/// The host options `args` ask for.
fn options(args: &BenchArgs) -> HostOptions {
    switched(
        HostOptions {
            durability: if args.no_fsync {
                Durability::None
            } else {
                Durability::Immediate
            },
            concurrency: args.concurrency,
            gather: args.gather,
            workers: args
                .workers
                .map_or_else(semel::default_workers, usize::from),
            ..HostOptions::default()
        },
        &args.off,
    )
}

/// Sets up the workload on `host`, runs it and reports.
fn measure(args: &BenchArgs, host: Host, workers: usize, json_out: bool) -> Result<Exit> {
    let host = Arc::new(host);
    setup(&host, args)?;
    // Made before the clock starts; with declared sets, each from a simulation.
    let per_thread = args.txs.div_ceil(args.threads);
    let mut work = Vec::new();
    for t in 0..args.threads {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
        let count = per_thread.min(args.txs.saturating_sub(t * per_thread));
        let mut txs: Vec<_> = (0..count).map(|n| transaction(args, &mut rng, n)).collect();
        if args.concurrency == semel::Concurrency::Pessimistic {
            declare(&host, &mut txs)?;
        }
        if args.signed {
            txs = sign_all(&host, t, txs)?;
        }
        work.push(txs);
    }
    let commits_before = host.commits();
    let races_before = host.lost_races();
    let stats = host.parallel_stats();
    let before = (
        stats.reexecutions(),
        stats.run_nanos(),
        stats.commit_nanos(),
        stats.idle_nanos(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let show_progress = std::io::stderr().is_terminal() && !json_out;
    let cpu_before = crate::cpu::process_cpu_seconds();
    let started = Instant::now();
    let handles: Vec<_> = work
        .into_iter()
        .map(|all| {
            let host = Arc::clone(&host);
            let done = Arc::clone(&done);
            let args = args.clone();
            // Hands its transactions back: freeing them is no part of what is measured.
            std::thread::spawn(move || -> Result<(Vec<Duration>, Vec<Transaction>)> {
                let mut latencies = Vec::new();
                let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
                for txs in all.chunks(batch) {
                    let n = u64::try_from(txs.len())?;
                    let t0 = Instant::now();
                    let results = if n == 1 {
                        vec![host.submit(&txs[0])]
                    } else {
                        host.submit_all(txs)
                    };
                    let took = t0.elapsed();
                    for r in results {
                        let r = r?;
                        if r.status != Status::Committed {
                            bail!(
                                "a measured transaction reverted: {}",
                                r.error.unwrap_or_default()
                            );
                        }
                        latencies.push(took);
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                }
                Ok((latencies, all))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    while show_progress && handles.iter().any(|h| !h.is_finished()) {
        progress(done.load(Ordering::Relaxed), args.txs);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut inputs = Vec::new();
    for h in handles {
        let (measured, txs) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a bench thread panicked"))??;
        latencies.extend(measured);
        inputs.push(txs);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = crate::cpu::process_cpu_seconds() - cpu_before;
    drop(inputs);
    if show_progress {
        progress(args.txs, args.txs);
        eprintln!();
    }
    latencies.sort_unstable();
    let fsyncs = if args.in_memory || args.no_fsync {
        0
    } else {
        host.commits() - commits_before
    };
    let txs = u64::try_from(latencies.len())?;
    let report = json!({
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "txs": txs,
        "seconds": seconds,
        "tx_per_s": txs as f64 / seconds,
        "p50_us": percentile(&latencies, 500),
        "p99_us": percentile(&latencies, 990),
        // CPU time of every thread of the process while it measured, in seconds.
        "cpu_seconds": cpu_seconds,
        "fsyncs": fsyncs,
        "peak_rss_bytes": crate::memory::peak_rss_bytes(),
        "concurrency": args.concurrency.name(),
        "workers": workers,
        "signed": args.signed,
        "reexecutions": stats.reexecutions() - before.0,
        // Where a parallel batch's time went: the parallel part (runs, validation, state
        // roots) and the in-order commit on one thread.
        "parallel_seconds": (stats.run_nanos() - before.1) as f64 / 1e9,
        "in_order_seconds": (stats.commit_nanos() - before.2) as f64 / 1e9,
        // Of the workers' time in the parallel part, summed: with no task to run
        // (waiting on a dependency, or for the batch's last runs).
        "idle_seconds": (stats.idle_nanos() - before.3) as f64 / 1e9,
        // On a shared store: commits that lost the race to another host's and ran again.
        "lost_races": host.lost_races() - races_before,
    });
    if json_out {
        outln!("{report}");
    } else {
        outln!(
            "{} {} txs in {:.2} s: {:.0} tx/s, latency p50 {:.1} µs, p99 {:.1} µs; {} fsyncs ({:.3} per tx); peak RSS {} MiB",
            report["workload"].as_str().unwrap_or_default(),
            txs,
            seconds,
            report["tx_per_s"].as_f64().unwrap_or_default(),
            report["p50_us"].as_f64().unwrap_or_default(),
            report["p99_us"].as_f64().unwrap_or_default(),
            fsyncs,
            fsyncs as f64 / txs.max(1) as f64,
            crate::memory::peak_rss_bytes() / (1024 * 1024),
        );
        outln!(
            "  (batch {}, threads {}, {} with {} workers, {} re-executions, {}{}; CPU {:.1} µs per tx)",
            args.batch,
            args.threads,
            args.concurrency.name(),
            workers,
            report["reexecutions"],
            if args.in_memory {
                "in memory"
            } else {
                "durable data dir"
            },
            if args.no_fsync { ", no fsync" } else { "" },
            cpu_seconds * 1e6 / txs.max(1) as f64,
        );
    }
    Ok(Exit::Done)
}
