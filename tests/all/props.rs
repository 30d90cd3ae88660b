//! Properties shared by the cargo-fuzz targets (`tests/fuzz/`, which include this file)
//! and the proptest versions in the ordinary suite (`tests/all/fuzz_props.rs`). Each
//! takes raw bytes, so a fuzzer's crash input replays here as a regression test.

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Result, Unstructured};
use semel::{Call, Host, Status, SubmitError, Transaction, TxBody, Uuid};

/// Arbitrary bytes as a contract: refused cleanly or deployed; never a host failure.
pub fn deploy_bytes(code: &[u8]) {
    let host = Host::in_memory().expect("host");
    match host.submit(&Transaction::deploy("fuzz", code.to_vec(), Vec::new())) {
        Ok(_) | Err(SubmitError::Rejected(_)) => {}
        Err(e) => panic!("host failure on deploy: {e}"),
    }
}

fn imports() -> Vec<u8> {
    let funcs: String = semel::abi::HOST_FUNCTIONS
        .iter()
        .map(|h| {
            let list = |ts: &[semel::abi::AbiType]| {
                ts.iter().map(|t| t.name()).collect::<Vec<_>>().join(" ")
            };
            format!(
                r#"(import "semel" "{}" (func (param {}) (result {})))"#,
                h.name,
                list(h.params),
                list(h.results)
            )
        })
        .collect();
    wat::parse_str(format!("(module {funcs})")).expect("imports module")
}

fn exports() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1)
             (func (export "init")) (func (export "m0")) (func (export "m1")))"#,
    )
    .expect("exports module")
}

fn module(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let mut config = wasm_smith::Config::arbitrary_config(u)?;
    config.available_imports = Some(imports());
    config.exports = Some(exports());
    config.max_memories = 0;
    config.allow_start_export = false;
    config.max_memory32_bytes = 1 << 20;
    // Bulk memory is accepted (charged per byte and element). wasm-smith's reference
    // types bring `externref`, which this wasmtime build (no GC) refuses at deploy.
    config.bulk_memory_enabled = true;
    config.reference_types_enabled = false;
    config.max_tables = 1;
    config.max_table_elements = semel::limits::TABLE_ELEMENTS_MAX;
    config.threads_enabled = false;
    config.relaxed_simd_enabled = false;
    config.memory64_enabled = false;
    config.gc_enabled = false;
    config.exceptions_enabled = false;
    config.tail_call_enabled = false;
    config.compact_imports_enabled = false;
    config.wide_arithmetic_enabled = false;
    config.extended_const_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.multi_value_enabled = true;
    Ok(wasm_smith::Module::new(config, u)?.to_bytes())
}

trait ArbitraryConfig {
    fn arbitrary_config(u: &mut Unstructured<'_>) -> Result<wasm_smith::Config>;
}

impl ArbitraryConfig for wasm_smith::Config {
    fn arbitrary_config(u: &mut Unstructured<'_>) -> Result<wasm_smith::Config> {
        u.arbitrary()
    }
}

fn run_smith(code: &[u8]) -> Vec<String> {
    let host = Host::in_memory().expect("host");
    let mut out = Vec::new();
    let deploy = Transaction::deploy("smith", code.to_vec(), Vec::new())
        .with_id(Uuid::from_u128(1))
        .with_gas_limit(2_000_000);
    match host.submit(&deploy) {
        Ok(r) => out.push(format!("{:?}", r)),
        Err(SubmitError::Rejected(e)) => return vec![e.to_string()],
        Err(e) => panic!("host failure on deploy: {e}"),
    }
    for (i, m) in ["m0", "m1", "m0"].iter().enumerate() {
        let tx = Transaction::call("smith", m, Vec::new())
            .with_id(Uuid::from_u128(2 + u128::try_from(i).expect("small")))
            .with_gas_limit(2_000_000);
        match host.submit(&tx) {
            Ok(r) => out.push(format!("{:?}", r)),
            Err(e) => panic!("host failure on call: {e}"),
        }
    }
    host.verify().expect("verify");
    out
}

/// A wasm-smith module importing only the ABI, deployed and called on two hosts: the
/// outcomes must be recorded (never a host failure) and identical. Returns whether the
/// module deployed (the rest were refused at deploy).
pub fn smith_module(data: &[u8]) -> bool {
    let mut u = Unstructured::new(data);
    let Ok(code) = module(&mut u) else {
        return false;
    };
    let first = run_smith(&code);
    assert_eq!(first, run_smith(&code), "two hosts disagree");
    first.len() > 1
}

#[derive(Debug, Arbitrary)]
enum Op {
    Put(u8, u8),
    Del(u8),
    List(u8),
}

#[derive(Debug, Arbitrary)]
struct Tx {
    ops: Vec<Op>,
    fail: bool,
}

fn key(k: u8) -> Vec<u8> {
    // Short keys over a small alphabet, including zero bytes and prefixes of each other.
    let alphabet = [b'a', b'b', 0];
    (0..(k % 4))
        .map(|i| alphabet[usize::from((k >> (2 + i)) % 3)])
        .collect()
}

/// The keys `kv.wat`'s `list` outputs, each `[length u8][key]`.
pub fn decode(mut out: &[u8]) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    while let Some((&len, rest)) = out.split_first() {
        let (k, rest) = rest.split_at(usize::from(len));
        keys.push(k.to_vec());
        out = rest;
    }
    keys
}

/// Storage writes, removals and listings through `contracts/wat/kv.wat`, several per
/// transaction and some transactions reverting, against a `BTreeMap` model.
pub fn storage_ops(data: &[u8]) {
    let Ok(txs) = Vec::<Tx>::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let host = Host::in_memory().expect("host");
    let kv = wat::parse_str(include_str!("../../contracts/wat/kv.wat")).expect("kv.wat");
    let fail = wat::parse_str(r#"(module (import "semel" "revert" (func $r (param i32 i32)))
        (memory (export "memory") 1) (func (export "fail") (call $r (i32.const 0) (i32.const 0))))"#).expect("fail");
    host.submit(&Transaction::deploy("kv", kv, Vec::new()))
        .expect("deploy");
    host.submit(&Transaction::deploy("f", fail, Vec::new()))
        .expect("deploy");
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for tx in txs.into_iter().take(16) {
        let mut pending = model.clone();
        let mut calls = Vec::new();
        let mut expected_lists = Vec::new();
        for op in tx.ops.into_iter().take(16) {
            match op {
                Op::Put(k, v) => {
                    let k = key(k);
                    let mut args = vec![u8::try_from(k.len()).expect("short")];
                    args.extend_from_slice(&k);
                    args.push(v);
                    pending.insert(k, vec![v]);
                    calls.push(Call {
                        contract: "kv".into(),
                        method: "put".into(),
                        args,
                    });
                }
                Op::Del(k) => {
                    let k = key(k);
                    pending.remove(&k);
                    calls.push(Call {
                        contract: "kv".into(),
                        method: "del".into(),
                        args: k,
                    });
                }
                Op::List(p) => {
                    let p = key(p);
                    let want: Vec<_> = pending
                        .keys()
                        .filter(|k| k.starts_with(&p))
                        .cloned()
                        .collect();
                    expected_lists.push((calls.len(), want));
                    calls.push(Call {
                        contract: "kv".into(),
                        method: "list".into(),
                        args: p,
                    });
                }
            }
        }
        if tx.fail {
            calls.push(Call {
                contract: "f".into(),
                method: "fail".into(),
                args: Vec::new(),
            });
        }
        if calls.is_empty() {
            continue;
        }
        let mut t = Transaction::call("kv", "list", Vec::new());
        t.body = TxBody::Calls(calls);
        let r = host.submit(&t).expect("submit");
        if tx.fail {
            assert_eq!(r.status, Status::Reverted);
        } else {
            assert_eq!(r.status, Status::Committed, "{:?}", r.error);
            for (i, want) in expected_lists {
                assert_eq!(decode(&r.results[i].output), want);
            }
            model = pending;
        }
        let listed: Vec<_> = host
            .state("kv", None, b"")
            .expect("state")
            .into_iter()
            .collect();
        let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(listed, want);
    }
    host.verify().expect("verify");
}
