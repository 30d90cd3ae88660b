//! Arbitrary bytes as a contract: refused cleanly or deployed, never a host failure.
//! The property lives in `tests/all/props.rs`, shared with the proptest suite.
#![no_main]

#[path = "../../all/props.rs"]
#[allow(dead_code)]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::deploy_bytes(data));
