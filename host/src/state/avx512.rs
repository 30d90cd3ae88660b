//! The state root's hand-written AVX-512 code, chosen at run time where the CPU has
//! AVX-512F: the 2 KiB ChaCha20 keystream of an entry (`keystream.rs`) and the BLAKE3
//! hash of eight lattices at once (`root.rs`). Both lay sixteen independent
//! computations side by side, one 32-bit word of each in the sixteen lanes of a
//! 512-bit register ("vertical" SIMD), and transpose the inputs or outputs. They give
//! exactly the bytes of the chacha20 and blake3 crates (the tests compare them); the
//! crates cover every other CPU, and this one with the switch off ([`use_avx512`]).
//! Measured in BENCHMARKS.md's index.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this code may run where the CPU can.
static ON: AtomicBool = AtomicBool::new(true);

/// Lets the state root use its own AVX-512 code where the CPU has AVX-512F (`true`, the
/// default: the 2 KiB expansions of entries, and a parallel batch's roots eight
/// lattices at a time) or always the chacha20 and blake3 crates' code (`false`): the
/// same bytes either way, a switch for speed only (BENCHMARKS.md's index), for the whole
/// process.
pub fn use_avx512(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// True when the switch is on and the CPU has AVX-512F: the functions below may run.
#[cfg_attr(
    not(target_arch = "x86_64"),
    expect(dead_code, reason = "the callers are x86_64 only")
)]
pub(crate) fn usable() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        ON.load(Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use kernels::{blake3_2k_x8, keystream};

#[cfg(target_arch = "x86_64")]
mod kernels {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_loadu_si512, _mm512_permutexvar_epi32, _mm512_rol_epi32,
        _mm512_ror_epi32, _mm512_set_epi32, _mm512_set1_epi32, _mm512_setzero_si512,
        _mm512_shuffle_i32x4, _mm512_storeu_si512, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64,
        _mm512_unpacklo_epi32, _mm512_unpacklo_epi64, _mm512_xor_si512,
    };

    /// Bytes of one expansion, 32 ChaCha20 blocks (`keystream.rs`, which calls this
    /// file, has the same; the array types make them agree).
    const KEYSTREAM_BYTES: usize = 2048;
    /// Bytes of one lattice, the input [`blake3_2k_x8`] hashes: two BLAKE3 chunks.
    const LATTICE_BYTES: usize = 2048;

    /// "expand 32-byte k", ChaCha20's first four state words.
    const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

    /// BLAKE3's IV (SHA-256's), also the key words of its hash mode.
    const IV: [u32; 8] = [
        0x6A09_E667,
        0xBB67_AE85,
        0x3C6E_F372,
        0xA54F_F53A,
        0x510E_527F,
        0x9B05_688C,
        0x1F83_D9AB,
        0x5BE0_CD19,
    ];
    /// BLAKE3's domain flags.
    const CHUNK_START: u32 = 1;
    const CHUNK_END: u32 = 2;
    const PARENT: u32 = 4;
    const ROOT: u32 = 8;
    /// BLAKE3's message word permutation between rounds.
    const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

    /// A word in all sixteen lanes.
    #[target_feature(enable = "avx512f")]
    fn splat(word: u32) -> __m512i {
        _mm512_set1_epi32(word.cast_signed())
    }

    /// The ChaCha20 keystream under `key` (counter from 0, zero nonce) over `out`,
    /// sixteen blocks at a time: `s[i]` holds state word `i` of sixteen blocks.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn keystream(key: &[u8; 32], out: &mut [u8; KEYSTREAM_BYTES]) {
        let mut init = [0u32; 16];
        init[..4].copy_from_slice(&SIGMA);
        for (word, bytes) in init[4..12].iter_mut().zip(key.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        // Words 12 (the counter) and 13–15 (the nonce) start at zero.
        let offsets = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        for (sixteen, out) in out.chunks_exact_mut(16 * 64).enumerate() {
            let mut s = [_mm512_setzero_si512(); 16];
            for (word, value) in s.iter_mut().zip(init) {
                *word = splat(value);
            }
            let first = if sixteen == 0 { 0 } else { 16 };
            s[12] = _mm512_add_epi32(splat(first), offsets);
            let start = s;
            for _ in 0..10 {
                chacha_quarter(&mut s, 0, 4, 8, 12);
                chacha_quarter(&mut s, 1, 5, 9, 13);
                chacha_quarter(&mut s, 2, 6, 10, 14);
                chacha_quarter(&mut s, 3, 7, 11, 15);
                chacha_quarter(&mut s, 0, 5, 10, 15);
                chacha_quarter(&mut s, 1, 6, 11, 12);
                chacha_quarter(&mut s, 2, 7, 8, 13);
                chacha_quarter(&mut s, 3, 4, 9, 14);
            }
            for (word, first) in s.iter_mut().zip(start) {
                *word = _mm512_add_epi32(*word, first);
            }
            for (block, bytes) in transpose(s).iter().zip(out.chunks_exact_mut(64)) {
                // SAFETY: `bytes` is 64 bytes long, one unaligned 512-bit store.
                unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), *block) };
            }
        }
    }

    /// One ChaCha quarter round on words `a`, `b`, `c`, `d` of sixteen blocks.
    #[target_feature(enable = "avx512f")]
    fn chacha_quarter(s: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
        s[a] = _mm512_add_epi32(s[a], s[b]);
        s[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(s[d], s[a]));
        s[c] = _mm512_add_epi32(s[c], s[d]);
        s[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(s[b], s[c]));
        s[a] = _mm512_add_epi32(s[a], s[b]);
        s[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(s[d], s[a]));
        s[c] = _mm512_add_epi32(s[c], s[d]);
        s[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(s[b], s[c]));
    }

    /// The BLAKE3 hashes of eight 2 KiB inputs: lane `l` runs chunk `l % 2` of input
    /// `l / 2` (16 blocks each), then lane `k < 8` the root parent of input `k`.
    #[target_feature(enable = "avx512f")]
    pub(crate) fn blake3_2k_x8(inputs: [&[u8; LATTICE_BYTES]; 8], out: &mut [[u8; 32]; 8]) {
        let counters = _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
        let mut key = [_mm512_setzero_si512(); 8];
        for (word, iv) in key.iter_mut().zip(IV) {
            *word = splat(iv);
        }
        let mut cv = key;
        for block in 0..16 {
            let mut rows = [_mm512_setzero_si512(); 16];
            for (lane, row) in rows.iter_mut().enumerate() {
                let at = (lane % 2) * 1024 + block * 64;
                let bytes = &inputs[lane / 2][at..at + 64];
                // SAFETY: `bytes` is 64 bytes long, one unaligned 512-bit load.
                *row = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
            }
            let flags = match block {
                0 => CHUNK_START,
                15 => CHUNK_END,
                _ => 0,
            };
            let s = blake3_compress(&cv, transpose(rows), counters, flags);
            for (i, word) in cv.iter_mut().enumerate() {
                *word = _mm512_xor_si512(s[i], s[i + 8]);
            }
        }
        // Input k's parent block: the chaining values of lanes 2k and 2k + 1.
        let even = _mm512_set_epi32(14, 12, 10, 8, 6, 4, 2, 0, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 15, 13, 11, 9, 7, 5, 3, 1);
        let mut parent = [_mm512_setzero_si512(); 16];
        for (w, word) in cv.iter().enumerate() {
            parent[w] = _mm512_permutexvar_epi32(even, *word);
            parent[8 + w] = _mm512_permutexvar_epi32(odd, *word);
        }
        let s = blake3_compress(&key, parent, _mm512_setzero_si512(), PARENT | ROOT);
        let mut hash = [_mm512_setzero_si512(); 16];
        for (i, word) in hash.iter_mut().take(8).enumerate() {
            *word = _mm512_xor_si512(s[i], s[i + 8]);
        }
        for (row, out) in transpose(hash).iter().zip(out.iter_mut()) {
            let mut words = [0u8; 64];
            // SAFETY: `words` is 64 bytes long, one unaligned 512-bit store.
            unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), *row) };
            out.copy_from_slice(&words[..32]);
        }
    }

    /// Sixteen BLAKE3 compressions of full 64-byte blocks: the state after the seven
    /// rounds (the caller takes what it needs of the output).
    #[target_feature(enable = "avx512f")]
    fn blake3_compress(
        cv: &[__m512i; 8],
        mut m: [__m512i; 16],
        counter_low: __m512i,
        flags: u32,
    ) -> [__m512i; 16] {
        let mut s = [_mm512_setzero_si512(); 16];
        s[..8].copy_from_slice(cv);
        for (word, iv) in s[8..12].iter_mut().zip(IV) {
            *word = splat(iv);
        }
        // Counters below 2^32: the high word stays zero.
        s[12] = counter_low;
        s[14] = splat(64);
        s[15] = splat(flags);
        for round in 0..7 {
            blake3_g(&mut s, [0, 4, 8, 12], m[0], m[1]);
            blake3_g(&mut s, [1, 5, 9, 13], m[2], m[3]);
            blake3_g(&mut s, [2, 6, 10, 14], m[4], m[5]);
            blake3_g(&mut s, [3, 7, 11, 15], m[6], m[7]);
            blake3_g(&mut s, [0, 5, 10, 15], m[8], m[9]);
            blake3_g(&mut s, [1, 6, 11, 12], m[10], m[11]);
            blake3_g(&mut s, [2, 7, 8, 13], m[12], m[13]);
            blake3_g(&mut s, [3, 4, 9, 14], m[14], m[15]);
            if round < 6 {
                let old = m;
                for (word, from) in m.iter_mut().zip(PERMUTATION) {
                    *word = old[from];
                }
            }
        }
        s
    }

    /// BLAKE3's G on words `[a, b, c, d]` of sixteen states, with message words `x`, `y`.
    #[target_feature(enable = "avx512f")]
    fn blake3_g(s: &mut [__m512i; 16], [a, b, c, d]: [usize; 4], x: __m512i, y: __m512i) {
        s[a] = _mm512_add_epi32(_mm512_add_epi32(s[a], s[b]), x);
        s[d] = _mm512_ror_epi32::<16>(_mm512_xor_si512(s[d], s[a]));
        s[c] = _mm512_add_epi32(s[c], s[d]);
        s[b] = _mm512_ror_epi32::<12>(_mm512_xor_si512(s[b], s[c]));
        s[a] = _mm512_add_epi32(_mm512_add_epi32(s[a], s[b]), y);
        s[d] = _mm512_ror_epi32::<8>(_mm512_xor_si512(s[d], s[a]));
        s[c] = _mm512_add_epi32(s[c], s[d]);
        s[b] = _mm512_ror_epi32::<7>(_mm512_xor_si512(s[b], s[c]));
    }

    /// A 16 × 16 transpose of 32-bit words (row `i`, lane `j` to row `j`, lane `i`), in
    /// four steps: pairs of words, pairs of those, 128-bit lanes twice.
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
        // The steps leave rows 1 and 2 of each four in each other's place.
        let mut rows = u;
        for (r, row) in u.into_iter().enumerate() {
            let at = match r % 4 {
                1 => r + 1,
                2 => r - 1,
                _ => r,
            };
            rows[at] = row;
        }
        rows
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// Held by the unit tests that turn the process-wide switch off and on, so that each
    /// runs the path it means to.
    pub(crate) static SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[cfg(target_arch = "x86_64")]
    use super::*;

    /// Inputs that vary in every byte.
    #[cfg(target_arch = "x86_64")]
    fn lattice(seed: u32) -> [u8; 2048] {
        let mut out = [0u8; 2048];
        for (i, b) in out.iter_mut().enumerate() {
            let j = u32::try_from(i).expect("small");
            *b = (seed.wrapping_mul(0x9E37_79B9) ^ j.wrapping_mul(40_503)).to_le_bytes()[i % 4];
        }
        out
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn eight_lattices_hash_as_blake3_does() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("this CPU has no AVX-512F: only the crate's code runs here");
            return;
        }
        for group in 0..40u32 {
            let inputs: Vec<_> = (0..8).map(|k| lattice(group * 8 + k)).collect();
            let mut out = [[0u8; 32]; 8];
            // SAFETY: the CPU has AVX-512F, checked above.
            unsafe { blake3_2k_x8(std::array::from_fn(|k| &inputs[k]), &mut out) };
            for (k, input) in inputs.iter().enumerate() {
                assert_eq!(
                    out[k],
                    *blake3::hash(input).as_bytes(),
                    "group {group}, input {k}"
                );
            }
        }
    }
}
