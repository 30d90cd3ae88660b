//! The state root's expansion of an entry hash to 2 KiB: the ChaCha20 keystream (RFC
//! 8439: 32-bit block counter from 0, the zero nonce) under the hash as key.
//!
//! Where the CPU has AVX-512, `avx512.rs` computes it, sixteen blocks at once: 0.26 µs
//! an expansion against 1.25 µs for the chacha20 crate's AVX2 path on the reference VM
//! (BENCHMARKS.md's index). The chacha20 crate at 0.9 has no AVX-512 path (0.10 has
//! one, behind a `--cfg` flag at build time). Elsewhere, and with the switch off, the
//! crate computes it. Both give the same bytes (a test checks them
//! against each other).

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

/// Bytes of one expansion: 32 ChaCha20 blocks.
pub(crate) const KEYSTREAM_BYTES: usize = 2048;

/// The ChaCha20 nonce of every expansion: each key (an entry hash) is used once.
const NONCE: [u8; 12] = [0; 12];

/// Writes the keystream under `key` over `out`.
pub(crate) fn expand_into(key: &[u8; 32], out: &mut [u8; KEYSTREAM_BYTES]) {
    #[cfg(target_arch = "x86_64")]
    if crate::state::avx512::usable() {
        // SAFETY: `usable` checked that the CPU has AVX-512F.
        unsafe { crate::state::avx512::keystream(key, out) };
        return;
    }
    out.fill(0);
    ChaCha20::new(key.into(), &NONCE.into()).apply_keystream(&mut out[..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::avx512;

    fn crate_keystream(key: &[u8; 32]) -> [u8; KEYSTREAM_BYTES] {
        let mut out = [0u8; KEYSTREAM_BYTES];
        ChaCha20::new(key.into(), &NONCE.into()).apply_keystream(&mut out[..]);
        out
    }

    #[test]
    fn rfc_8439_block_function_vector() {
        // RFC 8439 §2.3.2 runs block 1 under nonce 000000090000004a00000000; with the zero
        // nonce, §A.1's first test vector: key and nonce zero, block 0.
        let out = crate_keystream(&[0; 32]);
        assert_eq!(
            hex::encode(&out[..64]),
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
        );
        let mut mine = [0u8; KEYSTREAM_BYTES];
        expand_into(&[0; 32], &mut mine);
        assert_eq!(mine, out);
    }

    #[test]
    fn avx512_keystream_equals_the_crates() {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("this CPU has no AVX-512F: only the crate's path runs here");
                return;
            }
            let mut key = [0u8; 32];
            let mut out = [0u8; KEYSTREAM_BYTES];
            for i in 0u32..2_000 {
                // Keys that vary in every byte.
                for (j, b) in key.iter_mut().enumerate() {
                    let j = u32::try_from(j).expect("32 bytes");
                    let low = u8::try_from(j).expect("below 32");
                    *b = i.wrapping_mul(0x9E37_79B9).rotate_left(j).to_le_bytes()[0] ^ low;
                }
                // SAFETY: the CPU has AVX-512F, checked above.
                unsafe { avx512::keystream(&key, &mut out) };
                assert_eq!(out, crate_keystream(&key), "key {}", hex::encode(key));
            }
        }
    }

    #[test]
    fn the_switch_picks_the_path_not_the_bytes() {
        let _switch = avx512::tests::SWITCH.lock();
        let key = [0xA5; 32];
        let mut on = [0u8; KEYSTREAM_BYTES];
        expand_into(&key, &mut on);
        avx512::use_avx512(false);
        let mut off = [1u8; KEYSTREAM_BYTES];
        expand_into(&key, &mut off);
        avx512::use_avx512(true);
        assert_eq!(on, off);
        assert_eq!(on, crate_keystream(&key));
    }
}
