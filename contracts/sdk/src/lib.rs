//! The Semel contract SDK: everything a Rust contract needs to talk to the host.
//!
//! It owns the guest side of the ABI (`abi.rs`, the one declaration of the `semel`
//! imports), safe wrappers over each host function ([`input`], [`call`], [`emit`], …),
//! raw and typed storage ([`storage`], [`Item`], [`Map`]), JSON arguments and outputs
//! ([`contract_methods!`], [`json`]), and, on `wasm32`, the allocator and the panic
//! handler a `no_std` module needs. It does not own the ABI's behaviour: that is the
//! host's (`docs/ABI.md`).
//!
//! Natively (any target but `wasm32`) the host functions are served by the
//! [`testing`] module's mock host, so contract logic runs under plain `cargo test`.
//!
//! ```ignore
//! #![no_std]
//! semel_sdk::contract_methods! {
//!     /// Adds `by` to the total and returns it.
//!     fn add(by: u64) -> u64 {
//!         let total = TOTAL.get().unwrap_or(0) + by;
//!         TOTAL.set(&total);
//!         total
//!     }
//! }
//! const TOTAL: semel_sdk::Item<u64> = semel_sdk::Item::new("total");
//! ```
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;
// Lets the method macro name this crate as `semel_sdk` in the SDK's own tests.
extern crate self as semel_sdk;

pub mod abi;
mod codec;
mod env;
mod item;
pub mod json;
mod key;
mod map;
mod methods;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod allocator;
#[cfg(target_arch = "wasm32")]
mod panic;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use env::{
    blake3, call, caller, emit, gas_left, input, log, revert, self_name, sender, set_output, tx_id,
    version,
};
pub use item::Item;
pub use key::Key;
pub use map::{Map, MapIter};

/// Serde, as the SDK uses it: derive with `#[serde(crate = "semel_sdk::serde")]` to
/// avoid a direct dependency.
pub use serde;

#[doc(hidden)]
pub mod __private {
    pub use crate::json::{args, output};
    pub use alloc::format;
    pub use serde;
}
