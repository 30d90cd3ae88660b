//! Semel's integration tests, one binary with a module per area (as wasmtime's
//! `tests/all`). Contracts come from `contracts/wat/` (and later `contracts/wasm/`).

mod abi_doc;
mod bad_input;
mod bulk_memory;
mod cli;
mod compat;
mod contracts;
mod core;
mod crash;
mod data_dir;
mod events;
mod faulty_disk;
mod fuzz_props;
mod kill;
mod layers;
mod limits;
mod model;
mod parallel;
mod persistence;
mod pg;
mod postgres;
mod props;
mod seams;
mod serve;
mod serve_client;
mod signing;
mod signing_python;
mod signing_vector;
mod storage_next;
mod upgrades;
mod util;
mod wal;
