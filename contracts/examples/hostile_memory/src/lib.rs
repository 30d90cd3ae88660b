//! `hostile_memory`: takes memory until the host's limit stops it.
//!
//! Each method first writes key `touched`, so a test can check it was discarded.
//! - `grow`: keeps allocating 1 MiB blocks, writing one byte per page so the memory is
//!   really used. Outcome: an allocation fails at the memory limit and the call
//!   reverts with "panicked: memory allocation of 1048576 bytes failed";
//! - `huge`: asks for one 1 GiB block. Outcome: reverts at once with "panicked: memory
//!   allocation of 1073741824 bytes failed";
//! - `pages`: raw `memory.grow` by one page until the host refuses, then reverts with
//!   "memory.grow refused at N pages" — N is the host's page limit.
//!
//! None of them fills memory byte by byte: that would run out of gas before memory.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::hint::black_box;
use semel_sdk::storage;

const BLOCK_BYTES: usize = 1 << 20;
const PAGE_BYTES: usize = 1 << 16;

semel_sdk::contract_methods! {
    /// Allocates 1 MiB blocks until allocation fails.
    fn grow() {
        storage::set(b"touched", b"1");
        let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(1024);
        loop {
            let mut block: Vec<u8> = Vec::with_capacity(BLOCK_BYTES);
            for page in 0..BLOCK_BYTES / PAGE_BYTES {
                // SAFETY: within the block's capacity; u8 needs no initialisation.
                unsafe { block.as_mut_ptr().add(page * PAGE_BYTES).write(0xA5) };
            }
            blocks.push(black_box(block));
        }
    }

    /// Allocates one 1 GiB block.
    fn huge() {
        storage::set(b"touched", b"1");
        let v: Vec<u8> = Vec::with_capacity(black_box(1usize << 30));
        black_box(v);
        semel_sdk::revert("a 1 GiB allocation succeeded");
    }

    /// Grows memory a page at a time until the host refuses.
    fn pages() {
        storage::set(b"touched", b"1");
        #[cfg(target_arch = "wasm32")]
        {
            use core::arch::wasm32;
            while wasm32::memory_grow(0, 1) != usize::MAX {}
            // Memory is full: build the message on the stack, without allocating.
            let mut out = [0u8; 48];
            let prefix = b"memory.grow refused at ";
            out[..prefix.len()].copy_from_slice(prefix);
            let mut len = prefix.len();
            let (mut digits, mut d, mut n) = ([0u8; 10], 0, wasm32::memory_size(0));
            loop {
                digits[d] = b'0' + (n % 10) as u8;
                d += 1;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            while d > 0 {
                d -= 1;
                out[len] = digits[d];
                len += 1;
            }
            out[len..len + 6].copy_from_slice(b" pages");
            len += 6;
            semel_sdk::revert(core::str::from_utf8(&out[..len]).unwrap_or("memory.grow refused"));
        }
        #[cfg(not(target_arch = "wasm32"))]
        semel_sdk::revert("pages runs only on wasm32");
    }
}
