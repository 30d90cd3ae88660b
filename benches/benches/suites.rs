//! Criterion suites for deploy, the example contracts end to end, host-call costs,
//! durable group commits and verify, each beside a floor measured in the same run:
//! raw wasmtime for compiling and instantiating, a raw redb commit of the same rows and a
//! raw append + fdatasync of as many bytes for durability, and plain execution for verify.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group};
use semel::modules::Runtime;
use semel::{Host, HostOptions, Transaction};
use serde_json::json;
use wasmtime::{Config, Engine, Linker, Module, Store};

// The allocator the `semel` binary uses, so figures match what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn wasm(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../contracts/wasm/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("committed wasm")
}

fn wat(name: &str) -> Vec<u8> {
    let text = std::fs::read(format!(
        "{}/../contracts/wat/{name}.wat",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("wat");
    semel::abi::wasm_bytes(&text).expect("valid WAT")
}

fn raw_engine() -> Engine {
    let mut c = Config::new();
    c.consume_fuel(true).cranelift_nan_canonicalization(true);
    Engine::new(&c).expect("engine")
}

/// The same with wasmtime's default pooling allocator, as the host instantiates: the
/// floor for instantiation (the default on-demand allocator maps and unmaps memory per
/// instance, which no host pays).
fn raw_pooling_engine() -> Engine {
    let mut c = Config::new();
    c.consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    Engine::new(&c).expect("engine")
}

/// A linker defining every ABI import as a no-op, for raw floors of real contracts.
fn noop_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    for h in semel::abi::HOST_FUNCTIONS {
        let ty = wasmtime::FuncType::new(
            engine,
            h.params.iter().map(|t| match t {
                semel::abi::AbiType::I32 => wasmtime::ValType::I32,
                semel::abi::AbiType::I64 => wasmtime::ValType::I64,
            }),
            h.results.iter().map(|t| match t {
                semel::abi::AbiType::I32 => wasmtime::ValType::I32,
                semel::abi::AbiType::I64 => wasmtime::ValType::I64,
            }),
        );
        linker
            .func_new("semel", h.name, ty, |_, _, results| {
                for r in results.iter_mut() {
                    *r = match r {
                        wasmtime::Val::I64(_) => wasmtime::Val::I64(-1),
                        _ => wasmtime::Val::I32(0),
                    };
                }
                Ok(())
            })
            .expect("define");
    }
    linker
}

fn deploy(c: &mut Criterion) {
    let code = wasm("token");
    let mut g = c.benchmark_group("deploy_token_90KB");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("cold_compile", |b| {
        b.iter_batched(
            || Runtime::new(None).expect("runtime"),
            |rt| black_box(rt.prepare(&code).expect("prepare")),
            BatchSize::PerIteration,
        );
    });
    let engine = raw_engine();
    g.bench_function("floor_raw_module_new", |b| {
        b.iter(|| black_box(Module::new(&engine, &code).expect("compile")));
    });
    let dir = tempfile::tempdir().expect("dir");
    Runtime::new(Some(dir.path().to_owned()))
        .expect("rt")
        .prepare(&code)
        .expect("warm disk");
    g.bench_function("disk_artifact", |b| {
        b.iter_batched(
            || Runtime::new(Some(dir.path().to_owned())).expect("runtime"),
            |rt| black_box(rt.prepare(&code).expect("prepare")),
            BatchSize::PerIteration,
        );
    });
    let serialized = Module::new(&engine, &code)
        .expect("compile")
        .serialize()
        .expect("serialize");
    g.bench_function("floor_raw_deserialize", |b| {
        // SAFETY: bytes serialized just above by the same engine.
        b.iter(|| {
            black_box(unsafe { Module::deserialize(&engine, &serialized) }.expect("deserialize"))
        });
    });
    let warm = Runtime::new(None).expect("runtime");
    warm.prepare(&code).expect("prepare");
    g.bench_function("in_memory_instance_pre", |b| {
        b.iter(|| black_box(warm.prepare(&code).expect("hit")))
    });
    g.bench_function("floor_blake3_of_code", |b| {
        b.iter(|| black_box(blake3::hash(&code)))
    });
    g.finish();
}

fn call(sender: &str, contract: &str, method: &str, args: serde_json::Value) -> Transaction {
    Transaction::call(contract, method, args.to_string().into_bytes()).with_sender(sender)
}

fn market() -> Host {
    let host = Host::in_memory().expect("host");
    let deploy = |name: &str, code: &[u8], init: serde_json::Value| {
        Transaction::deploy(name, code, init.to_string().into_bytes()).with_sender("alice")
    };
    let token = wasm("token");
    for tx in [
        deploy("ta", &token, json!({"supply": 1u64 << 50})),
        deploy("tb", &token, json!({"supply": 1u64 << 50})),
        deploy(
            "ex",
            &wasm("exchange"),
            json!({"token_a": "ta", "token_b": "tb"}),
        ),
        call(
            "alice",
            "ta",
            "approve",
            json!({"spender": "ex", "amount": 1u64 << 49}),
        ),
        call(
            "alice",
            "tb",
            "approve",
            json!({"spender": "ex", "amount": 1u64 << 49}),
        ),
        call(
            "alice",
            "ex",
            "add_liquidity",
            json!({"amount_a": 1u64 << 40, "amount_b": 1u64 << 40}),
        ),
    ] {
        host.submit(&tx).expect("setup");
    }
    host
}

fn contracts(c: &mut Criterion) {
    let mut g = c.benchmark_group("contracts_in_memory");
    let host = market();
    g.bench_function("token_transfer", |b| {
        b.iter(|| {
            black_box(
                host.submit(&call(
                    "alice",
                    "ta",
                    "transfer",
                    json!({"to": "bob", "amount": 1}),
                ))
                .expect("transfer"),
            )
        })
    });
    let mut n = 0u64;
    g.bench_function("three_contract_swap", |b| {
        b.iter(|| {
            n += 1;
            let token_in = if n.is_multiple_of(2) { "ta" } else { "tb" };
            black_box(
                host.submit(&call(
                    "alice",
                    "ex",
                    "swap",
                    json!({"token_in": token_in, "amount_in": 100}),
                ))
                .expect("swap"),
            )
        })
    });
    let engine = raw_pooling_engine();
    let linker = noop_linker(&engine);
    let token = linker
        .instantiate_pre(&Module::new(&engine, wasm("token")).expect("token"))
        .expect("pre");
    let exchange = linker
        .instantiate_pre(&Module::new(&engine, wasm("exchange")).expect("ex"))
        .expect("pre");
    g.bench_function("floor_raw_instantiate_token", |b| {
        b.iter(|| {
            let mut store = Store::new(&engine, ());
            black_box(token.instantiate(&mut store).expect("instance"));
        })
    });
    g.bench_function("floor_raw_instantiate_swap_3_instances", |b| {
        b.iter(|| {
            let mut store = Store::new(&engine, ());
            black_box(exchange.instantiate(&mut store).expect("ex"));
            black_box(token.instantiate(&mut store).expect("ta"));
            black_box(token.instantiate(&mut store).expect("tb"));
        })
    });
    g.finish();
}

/// 100 storage writes (or reads) in one transaction, against the same transaction doing
/// nothing: the difference over 100 is one host call.
fn host_calls(c: &mut Criterion) {
    let host = Host::in_memory().expect("host");
    host.submit(&Transaction::deploy("probe", wat("probe"), Vec::new()))
        .expect("probe");
    host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
        .expect("counter");
    let sizes = |a: u32, b: u32| [a.to_le_bytes(), b.to_le_bytes()].concat();
    let mut g = c.benchmark_group("host_calls");
    g.bench_function("tx_with_1_storage_set_32B", |b| {
        b.iter(|| {
            black_box(
                host.submit(&Transaction::call("probe", "set", sizes(32, 32)))
                    .expect("set"),
            )
        })
    });
    g.bench_function("tx_with_1_storage_get_32B", |b| {
        b.iter(|| {
            black_box(
                host.submit(&Transaction::call("probe", "get", sizes(32, 0)))
                    .expect("get"),
            )
        })
    });
    g.bench_function("tx_with_1024_events", |b| {
        b.iter(|| {
            black_box(
                host.submit(&Transaction::call("probe", "emit_many", sizes(1024, 0)))
                    .expect("emit"),
            )
        })
    });
    g.bench_function("tx_with_1_event", |b| {
        b.iter(|| {
            black_box(
                host.submit(&Transaction::call("probe", "emit_many", sizes(1, 0)))
                    .expect("emit"),
            )
        })
    });
    g.finish();
}

fn durable(c: &mut Criterion) {
    use std::os::unix::fs::FileExt;
    let mut g = c.benchmark_group("durable_group_commit");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    for batch in [1usize, 16, 256] {
        let dir = tempfile::tempdir().expect("dir");
        let host = Host::open(dir.path(), HostOptions::default()).expect("host");
        host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
            .expect("deploy");
        g.bench_function(format!("counter_batch_{batch}"), |b| {
            b.iter_batched(
                || {
                    (0..batch)
                        .map(|_| Transaction::call("counter", "inc", Vec::new()))
                        .collect::<Vec<_>>()
                },
                |txs| black_box(host.submit_all(&txs)),
                BatchSize::SmallInput,
            )
        });
        // Floor: one raw redb commit of as many rows of the same sizes (state row, receipt,
        // log entry per transaction, plus the head), immediate durability.
        let db = redb::Database::create(dir.path().join("floor.redb")).expect("db");
        let table: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("t");
        let mut key = 0u64;
        g.bench_function(format!("floor_raw_redb_commit_batch_{batch}"), |b| {
            b.iter(|| {
                let w = db.begin_write().expect("write");
                {
                    let mut t = w.open_table(table).expect("table");
                    for _ in 0..batch {
                        for size in [20usize, 200, 60] {
                            key += 1;
                            t.insert(key.to_be_bytes().as_slice(), vec![7u8; size].as_slice())
                                .expect("insert");
                        }
                    }
                    t.insert(b"head".as_slice(), vec![1u8; 2048].as_slice())
                        .expect("head");
                }
                w.commit().expect("commit");
            })
        });
        // Floor of the write-ahead log: the same bytes appended to a file of zeros (as
        // the log grows its file) and one fdatasync.
        let record = vec![7u8; batch * (20 + 200 + 60 + 3 * 40) + 2048];
        let log = std::fs::File::create(dir.path().join("floor.log")).expect("log");
        let span = 64u64 << 20;
        log.write_all_at(&vec![0u8; 64 << 20], 0).expect("zeros");
        log.sync_all().expect("sync");
        let mut at = 0u64;
        g.bench_function(format!("floor_raw_append_fdatasync_batch_{batch}"), |b| {
            b.iter(|| {
                let len = u64::try_from(record.len()).expect("length");
                if at + len > span {
                    at = 0;
                }
                log.write_all_at(&record, at).expect("append");
                log.sync_data().expect("fdatasync");
                at += len;
            })
        });
    }
    g.finish();
}

fn verify(c: &mut Criterion) {
    let host = Host::in_memory().expect("host");
    host.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
        .expect("deploy");
    let txs: Vec<_> = (0..999)
        .map(|_| Transaction::call("counter", "inc", Vec::new()))
        .collect();
    for r in host.submit_all(&txs) {
        r.expect("inc");
    }
    let mut g = c.benchmark_group("verify_1000_txs");
    g.sample_size(10);
    g.bench_function("verify", |b| {
        b.iter(|| black_box(host.verify().expect("verify")))
    });
    g.bench_function("floor_execute_1000_txs_in_memory", |b| {
        b.iter_batched(
            || {
                let h = Host::in_memory().expect("host");
                h.submit(&Transaction::deploy("counter", wat("counter"), Vec::new()))
                    .expect("deploy");
                h
            },
            |h| black_box(h.submit_all(&txs)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, deploy, contracts, host_calls, durable, verify);
// `criterion_main!`, with the `semel` binary's process settings first.
fn main() {
    semel::disable_transparent_huge_pages();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
