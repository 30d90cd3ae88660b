//! wasm-smith modules importing only the ABI: deployed and called on two hosts, identical recorded outcomes.
//! The property lives in `tests/all/props.rs`, shared with the proptest suite.
#![no_main]

#[path = "../../all/props.rs"]
#[allow(dead_code)]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::smith_module(data);
});
