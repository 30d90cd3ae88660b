//! Opening a data dir must not replay history: this measures `Host::open` on data dirs
//! holding N recorded counter transactions (default 10,000 and 1,000,000; pass other
//! counts as arguments: `cargo bench -p semel-benches --bench open -- 100000`).

use std::time::{Duration, Instant};

use semel::{Durability, Host, HostOptions, Transaction};

// The allocator the `semel` binary uses, so figures match what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transactions per `submit_all` while filling.
const FILL_BATCH: usize = 1024;
/// Opens timed per data dir.
const OPENS: usize = 21;

fn counter_wasm() -> Vec<u8> {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/wat/counter.wat"
    ))
    .expect("counter.wat");
    semel::abi::wasm_bytes(&text).expect("valid WAT")
}

fn fill(dir: &std::path::Path, txs: usize) {
    let options = HostOptions {
        durability: Durability::None,
        ..HostOptions::default()
    };
    let host = Host::open(dir, options).expect("open");
    host.submit(&Transaction::deploy("counter", counter_wasm(), Vec::new()))
        .expect("deploy");
    let mut done = 1;
    while done < txs {
        let n = FILL_BATCH.min(txs - done);
        let batch: Vec<_> = (0..n)
            .map(|_| Transaction::call("counter", "inc", Vec::new()))
            .collect();
        for r in host.submit_all(&batch) {
            r.expect("fill transaction");
        }
        done += n;
    }
}

fn main() {
    semel::disable_transparent_huge_pages();
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![10_000, 1_000_000]
    } else {
        counts
    };
    for txs in counts {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = Instant::now();
        fill(dir.path(), txs);
        let filled = t.elapsed();
        let mut times: Vec<Duration> = (0..OPENS)
            .map(|_| {
                let t = Instant::now();
                let host = Host::open(dir.path(), HostOptions::default()).expect("open");
                let took = t.elapsed();
                assert_eq!(host.latest_version(), u64::try_from(txs).expect("fits"));
                took
            })
            .collect();
        times.sort_unstable();
        println!(
            "open_data_dir/{txs}_txs: median {:.2} ms (min {:.2} ms, max {:.2} ms over {OPENS} opens; filled in {:.1} s)",
            times[OPENS / 2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[OPENS - 1].as_secs_f64() * 1e3,
            filled.as_secs_f64()
        );
    }
}
