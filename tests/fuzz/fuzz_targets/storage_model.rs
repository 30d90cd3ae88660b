//! Storage writes, removals and listings checked against a BTreeMap model.
//! The property lives in `tests/all/props.rs`, shared with the proptest suite.
#![no_main]

#[path = "../../all/props.rs"]
#[allow(dead_code)]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::storage_ops(data));
