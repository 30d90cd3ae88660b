//! Bad input of every kind is refused before anything is recorded, with a message that
//! names the problem; a contract's misuse of the ABI is a reverted receipt with state
//! untouched. Neither ever crashes the host.

use proptest::prelude::*;
use semel::abi::{HOST_FUNCTIONS, HostFunction};
use semel::{Host, Status, SubmitError, Transaction};

use crate::util::{counter_host, wat};

fn refused(host: &Host, tx: &Transaction) -> String {
    let before = host.latest_version();
    let e = match host.submit(tx) {
        Err(SubmitError::Rejected(e)) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        host.latest_version(),
        before,
        "a refusal recorded something"
    );
    assert!(host.receipt(&tx.id).unwrap().is_none());
    e
}

fn deploy_refused(host: &Host, module: &str) -> String {
    refused(
        host,
        &Transaction::deploy("bad", module.as_bytes().to_vec(), Vec::new()),
    )
}

#[test]
fn malformed_modules_are_refused_naming_the_problem() {
    let host = Host::in_memory().unwrap();
    let mem = r#"(memory (export "memory") 1)"#;
    for (module, says) in [
        (
            r#"(module (import "env" "f" (func)) (memory (export "memory") 1))"#.to_owned(),
            "import env.f is not part of the Semel ABI",
        ),
        (
            r#"(module (import "semel" "nope" (func)) (memory (export "memory") 1))"#.to_owned(),
            "import semel.nope",
        ),
        (
            r#"(module (import "semel" "log" (func (param i32))) (memory (export "memory") 1))"#
                .to_owned(),
            "import semel.log has type (i32) -> ()",
        ),
        (
            r#"(module (import "semel" "memory" (memory 1)))"#.to_owned(),
            "import semel.memory",
        ),
        (
            format!(r#"(module {mem} (func $s) (start $s))"#),
            "start function",
        ),
        (
            format!(r#"(module {mem} (memory 1))"#),
            "more than one memory",
        ),
        (
            r#"(module (memory (export "memory") 1 1 shared))"#.to_owned(),
            "shared memory",
        ),
        (
            format!(
                r#"(module {mem} (func (export "f") (drop (i32x4.relaxed_trunc_f32x4_s (v128.const i32x4 0 0 0 0)))))"#
            ),
            "does not compile",
        ),
        (
            format!(r#"(module {mem} (table 1 funcref) (table 1 funcref))"#),
            "more than one table",
        ),
        (
            format!(r#"(module {mem} (table 1 externref))"#),
            "does not compile",
        ),
        (
            format!(r#"(module {mem} (func (export "f") (unreachable) (i32.add)))"#),
            "does not compile",
        ),
        (
            format!(r#"(module {mem} (data (i32.const 70000) "x"))"#),
            "data segment at 70000 of 1 bytes does not fit",
        ),
        (r#"(module (func (export "f")))"#.to_owned(), "no memory"),
        (
            format!(r#"(module {mem} (func (export "{}")))"#, "m".repeat(65)),
            "method name",
        ),
        ("(module".to_owned(), "neither wasm nor valid WAT"),
    ] {
        let e = deploy_refused(&host, &module);
        assert!(e.contains(says), "{module}: {e:?} does not say {says:?}");
    }
    let e = refused(
        &host,
        &Transaction::deploy("bad", b"\0asm\x01\0\0\0\x01\x05".to_vec(), Vec::new()),
    );
    assert!(e.contains("not valid wasm"), "{e}");
    let e = refused(
        &host,
        &Transaction::deploy("bad name", wat("counter"), Vec::new()),
    );
    assert!(e.contains("contract name \"bad name\""), "{e}");
}

#[test]
fn huge_data_segments_fail_at_deploy_not_in_the_host() {
    // A data segment past the declared memory: instantiation in init fails, recorded.
    let host = Host::in_memory().unwrap();
    let module = r#"(module (memory (export "memory") 1) (data (i32.const 65530) "0123456789") (func (export "init")))"#;
    match host.submit(&Transaction::deploy(
        "seg",
        module.as_bytes().to_vec(),
        Vec::new(),
    )) {
        Ok(r) => assert_eq!(r.status, Status::Reverted, "{r:?}"),
        Err(SubmitError::Rejected(e)) => assert!(e.to_string().contains("data"), "{e}"),
        Err(e) => panic!("a host failure for a bad data segment: {e}"),
    }
}

#[test]
fn malformed_transactions_are_refused() {
    for (json, says) in [
        ("", "malformed transaction"),
        ("[]", "malformed transaction"),
        (r#"{"calls": "x"}"#, "malformed transaction"),
        (r#"{"id": 7, "calls": []}"#, "malformed transaction"),
        (
            r#"{"id": "7", "calls": [{"contract": "c", "method": "m"}]}"#,
            "\"7\" is not a UUID",
        ),
        (
            r#"{"gas_limit": -1, "calls": [{"contract": "c", "method": "m"}]}"#,
            "gas limit -1",
        ),
        (
            r#"{"gas_limit": 1e30, "calls": [{"contract": "c", "method": "m"}]}"#,
            "gas limit",
        ),
        (
            r#"{"gas_limit": 99999999999999999999, "calls": [{"contract": "c", "method": "m"}]}"#,
            "gas limit",
        ),
        (
            r#"{"calls": [{"contract": "", "method": "m"}]}"#,
            "it is empty",
        ),
        (
            r#"{"calls": [{"contract": "c/d", "method": "m"}]}"#,
            "only A-Z",
        ),
        (
            r#"{"calls": [{"contract": "c", "method": "m", "args_hex": "zz"}]}"#,
            "not hex",
        ),
        (
            r#"{"sender": "", "calls": [{"contract": "c", "method": "m"}]}"#,
            "sender",
        ),
        (
            r#"{"calls": [{"contract": "c", "method": "m"}], "extra": 1}"#,
            "unknown field `extra`",
        ),
    ] {
        let e = Transaction::from_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{json}: {e:?} does not say {says:?}");
    }
}

/// A contract importing `h` and calling it with constant arguments from `args`.
fn caller_of(h: &HostFunction, args: &[i64]) -> String {
    let sig =
        |ts: &[semel::abi::AbiType]| ts.iter().map(|t| t.name()).collect::<Vec<_>>().join(" ");
    let consts: String = h
        .params
        .iter()
        .zip(args)
        .map(|(t, v)| format!("({}.const {v})", t.name()))
        .collect();
    let drop = if h.results.is_empty() { "" } else { "drop" };
    format!(
        r#"(module (import "semel" "{name}" (func $h (param {p}) (result {r})))
            (memory (export "memory") 1)
            (func (export "go") {consts} (call $h) {drop}))"#,
        name = h.name,
        p = sig(h.params),
        r = sig(h.results),
    )
    .replace("(result )", "")
    .replace("(param )", "")
}

#[test]
fn every_host_function_refuses_out_of_bounds_and_overflowing_ranges() {
    let host = counter_host();
    let root = host.state_root().unwrap();
    let mut checked = 0;
    for h in HOST_FUNCTIONS.iter().filter(|h| !h.params.is_empty()) {
        // Out of bounds: every argument at the far end of the address space.
        // Overflowing: pointers near the end with small lengths whose sum wraps a u32
        // (parameters alternate pointer, length in every function that takes both).
        for what in ["oob", "wrap"] {
            let args: Vec<i64> = (0..h.params.len())
                .map(|i| {
                    if what == "wrap" && i % 2 == 1 {
                        0x20
                    } else {
                        0xFFFF_FFF0
                    }
                })
                .collect();
            let code = caller_of(h, &args);
            let name = format!("{}_{what}", h.name);
            let r = host
                .submit(&Transaction::deploy(
                    &name,
                    code.as_bytes().to_vec(),
                    Vec::new(),
                ))
                .unwrap();
            assert_eq!(r.status, Status::Committed, "{name}: {:?}", r.error);
            let r = host
                .submit(&Transaction::call(&name, "go", Vec::new()))
                .unwrap();
            assert_eq!(
                r.status,
                Status::Reverted,
                "{} with {what} arguments committed",
                h.name
            );
            let err = r.error.unwrap();
            assert!(
                err.contains("outside the contract's") || err.contains("_MAX ("),
                "{} with {what} arguments: {err}",
                h.name
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        2 * HOST_FUNCTIONS
            .iter()
            .filter(|h| !h.params.is_empty())
            .count()
    );
    // The counter is untouched by all of it.
    assert_eq!(crate::util::count(&host, None), "0");
    assert_ne!(
        host.state_root().unwrap(),
        root,
        "the deploys themselves are recorded"
    );
    host.verify().unwrap();
}

#[test]
fn revert_with_invalid_utf8_is_replaced_not_a_crash() {
    let host = Host::in_memory().unwrap();
    let module = r#"(module (import "semel" "revert" (func $r (param i32 i32)))
        (memory (export "memory") 1) (data (i32.const 0) "bad \ff\fe bytes")
        (func (export "go") (call $r (i32.const 0) (i32.const 12))))"#;
    host.submit(&Transaction::deploy(
        "r",
        module.as_bytes().to_vec(),
        Vec::new(),
    ))
    .unwrap();
    let r = host
        .submit(&Transaction::call("r", "go", Vec::new()))
        .unwrap();
    assert_eq!(r.status, Status::Reverted);
    assert_eq!(
        r.error.as_deref(),
        Some("call 0 (r.go) failed: reverted: bad \u{fffd}\u{fffd} bytes")
    );
}

#[test]
fn nan_results_are_canonical() {
    let host = Host::in_memory().unwrap();
    // 0/0 and sqrt(-1) in f32 and f64, their bits as output.
    let module = r#"(module (import "semel" "output" (func $o (param i32 i32)))
        (memory (export "memory") 1)
        (func (export "nan")
          (i32.store (i32.const 0) (i32.reinterpret_f32 (f32.div (f32.const 0) (f32.const 0))))
          (i32.store (i32.const 4) (i32.reinterpret_f32 (f32.sqrt (f32.const -1))))
          (i64.store (i32.const 8) (i64.reinterpret_f64 (f64.div (f64.const 0) (f64.const 0))))
          (i64.store (i32.const 16) (i64.reinterpret_f64 (f64.mul (f64.const nan:0x4) (f64.const 1))))
          (call $o (i32.const 0) (i32.const 24))))"#;
    host.submit(&Transaction::deploy(
        "f",
        module.as_bytes().to_vec(),
        Vec::new(),
    ))
    .unwrap();
    let r = host
        .submit(&Transaction::call("f", "nan", Vec::new()))
        .unwrap();
    let out = &r.results[0].output;
    let f32_nan = 0x7fc0_0000u32.to_le_bytes();
    let f64_nan = 0x7ff8_0000_0000_0000u64.to_le_bytes();
    assert_eq!(&out[0..4], f32_nan);
    assert_eq!(&out[4..8], f32_nan);
    assert_eq!(&out[8..16], f64_nan);
    assert_eq!(&out[16..24], f64_nan, "a NaN payload is canonicalized too");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bytes and truncations of a real module never crash the host: each is
    /// refused or (for the intact module) deployed.
    #[test]
    fn random_and_truncated_modules_are_refused_cleanly(
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..1000,
        flip in any::<(usize, u8)>(),
    ) {
        let host = Host::in_memory().unwrap();
        let mut real = wat("counter");
        let cut = cut % real.len();
        for code in [garbage, real[..cut].to_vec(), { let i = flip.0 % real.len(); real[i] ^= flip.1 | 1; real }] {
            match host.submit(&Transaction::deploy("x", code, Vec::new())) {
                Ok(_) | Err(SubmitError::Rejected(_)) => {}
                Err(e) => prop_assert!(false, "host failure: {}", e),
            }
        }
    }
}
