//! Criterion benchmarks of the host's hot paths, each beside its floor measured in the
//! same run: raw wasmtime for execution, raw BLAKE3 for the state root.

use std::hint::black_box;

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

use criterion::{Criterion, criterion_group};
use semel::state_root::LtHash;
use semel::{Host, Transaction};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, Module, Store};

// The allocator the `semel` binary uses, so figures match what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn counter_wasm() -> Vec<u8> {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/wat/counter.wat"
    ))
    .expect("counter.wat");
    semel::abi::wasm_bytes(&text).expect("valid WAT")
}

/// Raw wasmtime: a fresh Store, a pooled instance of the same module with no-op imports
/// of the same types, one call of `inc` with fuel. The floor a host call cannot beat.
fn raw_wasmtime_floor(c: &mut Criterion) {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .allocation_strategy(InstanceAllocationStrategy::pooling());
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, counter_wasm()).unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap(
            "semel",
            "storage_get",
            |_: i32, _: i32, _: i32, _: i32| -> i64 { -1 },
        )
        .unwrap()
        .func_wrap("semel", "storage_set", |_: i32, _: i32, _: i32, _: i32| {})
        .unwrap()
        .func_wrap("semel", "output", |_: i32, _: i32| {})
        .unwrap()
        .func_wrap("semel", "revert", |_: i32, _: i32| {})
        .unwrap()
        .func_wrap("semel", "emit", |_: i32, _: i32, _: i32, _: i32| {})
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    c.bench_function("counter_call/raw_wasmtime_floor", |b| {
        b.iter(|| {
            let mut store = Store::new(&engine, ());
            store.set_fuel(10_000_000).unwrap();
            let instance = pre.instantiate(&mut store).unwrap();
            let inc = instance
                .get_typed_func::<(), ()>(&mut store, "inc")
                .unwrap();
            inc.call(&mut store, ()).unwrap();
            black_box(store.get_fuel().unwrap())
        });
    });
}

fn counter_host() -> Host {
    let host = Host::in_memory().unwrap();
    host.submit(&Transaction::deploy("counter", counter_wasm(), Vec::new()))
        .unwrap();
    host
}

fn counter_call(c: &mut Criterion) {
    let host = counter_host();
    c.bench_function("counter_call/host_in_memory", |b| {
        b.iter(|| {
            let r = host
                .submit(&Transaction::call("counter", "inc", Vec::new()))
                .unwrap();
            black_box(r.version)
        });
    });
    let tx = Transaction::call("counter", "inc", Vec::new());
    host.submit(&tx).unwrap();
    c.bench_function("dedup_hit/host_in_memory", |b| {
        b.iter(|| black_box(host.submit(&tx).unwrap().duplicate));
    });
}

fn state_root(c: &mut Criterion) {
    let mut lattice = LtHash::default();
    let value = 7u64.to_le_bytes();
    c.bench_function("state_root/update_one_key", |b| {
        b.iter(|| lattice.update("counter", b"count", Some(&value), Some(&value[..7])));
    });
    let mut out = [0u8; 2048];
    // What an update expands per entry (the host's `LtHash`): a BLAKE3 hash of the
    // entry, then 2 KiB of ChaCha20 keystream under it. An update needs two when the
    // old entry is not cached.
    c.bench_function("state_root/raw_blake3_chacha20_2KiB_floor", |b| {
        b.iter(|| {
            let hash = blake3::hash(b"counter count 01234567");
            out.fill(0);
            ChaCha20::new(hash.as_bytes().into(), &[0u8; 12].into()).apply_keystream(&mut out);
            black_box(out[0])
        });
    });
    // For reference: BLAKE3's own 2 KiB XOF, which the expansion replaced.
    c.bench_function("state_root/raw_blake3_xof_2KiB", |b| {
        b.iter(|| {
            let mut h = blake3::Hasher::new();
            h.update(b"counter count 01234567");
            h.finalize_xof().fill(&mut out);
            black_box(out[0])
        });
    });
}

criterion_group!(benches, raw_wasmtime_floor, counter_call, state_root);
// `criterion_main!`, with the `semel` binary's process settings first.
fn main() {
    semel::disable_transparent_huge_pages();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
