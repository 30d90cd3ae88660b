//! The state root's expansion of an entry hash to 2 KiB: the ChaCha20 keystream (RFC
//! 8439: 32-bit block counter from 0, the zero nonce) under the hash as key.
//!
//! Where the CPU has AVX-512 (detected at run time), sixteen blocks run at once in this
//! file's own code, each 512-bit register holding one state word of sixteen blocks, then
//! transposed into block order: 0.26 µs an expansion against 1.25 µs for the chacha20
//! crate's AVX2 path on the reference VM (BENCHMARKS.md's index). The crate has an
//! AVX-512 path too, but only chosen at compile time, which would make the binary need
//! such a CPU. Elsewhere, and with [`set_avx512`] off, the crate computes it. Both give
//! the same bytes (a test checks them against each other).

use std::sync::atomic::{AtomicBool, Ordering};

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

/// Bytes of one expansion: 32 ChaCha20 blocks.
pub(crate) const KEYSTREAM_BYTES: usize = 2048;

/// The ChaCha20 nonce of every expansion: each key (an entry hash) is used once.
const NONCE: [u8; 12] = [0; 12];

/// Whether the AVX-512 code may run (where the CPU has it).
static AVX512: AtomicBool = AtomicBool::new(true);

/// Lets expansions use AVX-512 where the CPU has it (`true`, the default) or always the
/// chacha20 crate's code: a switch for speed only, for the whole process.
pub fn set_avx512(on: bool) {
    AVX512.store(on, Ordering::Relaxed);
}

/// Writes the keystream under `key` over `out`.
pub(crate) fn expand_into(key: &[u8; 32], out: &mut [u8; KEYSTREAM_BYTES]) {
    #[cfg(target_arch = "x86_64")]
    if AVX512.load(Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        unsafe { avx512::keystream(key, out) };
        return;
    }
    out.fill(0);
    ChaCha20::new(key.into(), &NONCE.into()).apply_keystream(&mut out[..]);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_rol_epi32, _mm512_set_epi32, _mm512_set1_epi32,
        _mm512_shuffle_i32x4, _mm512_storeu_si512, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64,
        _mm512_unpacklo_epi32, _mm512_unpacklo_epi64, _mm512_xor_si512,
    };

    use super::KEYSTREAM_BYTES;

    /// "expand 32-byte k", the first four state words.
    const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

    /// Sixteen blocks at a time: `s[i]` holds state word `i` of blocks `first..first+16`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn keystream(key: &[u8; 32], out: &mut [u8; KEYSTREAM_BYTES]) {
        let mut init = [0u32; 16];
        init[..4].copy_from_slice(&SIGMA);
        for (word, bytes) in init[4..12].iter_mut().zip(key.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        // Words 12 (the counter) and 13–15 (the nonce) start at zero.
        let offsets = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        for (half, out) in out.chunks_exact_mut(16 * 64).enumerate() {
            let mut s = [_mm512_set1_epi32(0); 16];
            for (word, value) in s.iter_mut().zip(init) {
                *word = _mm512_set1_epi32(value.cast_signed());
            }
            let first = if half == 0 { 0 } else { 16 };
            s[12] = _mm512_add_epi32(_mm512_set1_epi32(first), offsets);
            let start = s;
            for _ in 0..10 {
                quarter(&mut s, 0, 4, 8, 12);
                quarter(&mut s, 1, 5, 9, 13);
                quarter(&mut s, 2, 6, 10, 14);
                quarter(&mut s, 3, 7, 11, 15);
                quarter(&mut s, 0, 5, 10, 15);
                quarter(&mut s, 1, 6, 11, 12);
                quarter(&mut s, 2, 7, 8, 13);
                quarter(&mut s, 3, 4, 9, 14);
            }
            for (word, first) in s.iter_mut().zip(start) {
                *word = _mm512_add_epi32(*word, first);
            }
            let blocks = transpose(s);
            for (block, bytes) in blocks.iter().zip(out.chunks_exact_mut(64)) {
                // SAFETY: `bytes` is 64 bytes long, one unaligned 512-bit store.
                unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), *block) };
            }
        }
    }

    /// One ChaCha quarter round on words `a`, `b`, `c`, `d` of sixteen blocks.
    #[target_feature(enable = "avx512f")]
    fn quarter(s: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
        s[a] = _mm512_add_epi32(s[a], s[b]);
        s[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(s[d], s[a]));
        s[c] = _mm512_add_epi32(s[c], s[d]);
        s[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(s[b], s[c]));
        s[a] = _mm512_add_epi32(s[a], s[b]);
        s[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(s[d], s[a]));
        s[c] = _mm512_add_epi32(s[c], s[d]);
        s[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(s[b], s[c]));
    }

    /// From word order (`s[i]`: word `i` of 16 blocks) to block order (`[j]`: the 16
    /// words of block `j`): a 16 × 16 transpose of 32-bit words in four steps (pairs of
    /// words, pairs of those, 128-bit lanes twice).
    #[target_feature(enable = "avx512f")]
    fn transpose(s: [__m512i; 16]) -> [__m512i; 16] {
        let mut t = s;
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(s[2 * i], s[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(s[2 * i], s[2 * i + 1]);
        }
        let mut u = t;
        for i in 0..4 {
            for h in 0..2 {
                u[4 * i + h] = _mm512_unpacklo_epi64(t[4 * i + h], t[4 * i + 2 + h]);
                u[4 * i + 2 + h] = _mm512_unpackhi_epi64(t[4 * i + h], t[4 * i + 2 + h]);
            }
        }
        for i in 0..2 {
            for h in 0..4 {
                t[8 * i + h] = _mm512_shuffle_i32x4::<0x88>(u[8 * i + h], u[8 * i + 4 + h]);
                t[8 * i + 4 + h] = _mm512_shuffle_i32x4::<0xdd>(u[8 * i + h], u[8 * i + 4 + h]);
            }
        }
        for h in 0..8 {
            u[h] = _mm512_shuffle_i32x4::<0x88>(t[h], t[8 + h]);
            u[8 + h] = _mm512_shuffle_i32x4::<0xdd>(t[h], t[8 + h]);
        }
        // The steps leave blocks 1 and 2 of each four in each other's place.
        let mut blocks = u;
        for (r, row) in u.into_iter().enumerate() {
            let block = match r % 4 {
                1 => r + 1,
                2 => r - 1,
                _ => r,
            };
            blocks[block] = row;
        }
        blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let key = [0xA5; 32];
        let mut on = [0u8; KEYSTREAM_BYTES];
        expand_into(&key, &mut on);
        set_avx512(false);
        let mut off = [1u8; KEYSTREAM_BYTES];
        expand_into(&key, &mut off);
        set_avx512(true);
        assert_eq!(on, off);
        assert_eq!(on, crate_keystream(&key));
    }
}
