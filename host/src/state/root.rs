//! The state root: a lattice hash (LtHash, as in Solana's accounts lattice hash) over
//! every `(namespace, key, value)` entry of the state.
//!
//! Each entry maps to 1024 `u16` lanes: its 32-byte BLAKE3 hash, expanded to 2 KiB by
//! the ChaCha20 keystream under that hash as key (`keystream.rs`; hash, then expand, as
//! an XOF does: the keystream runs many blocks at once, where BLAKE3's XOF without
//! AVX-512 computes one 64-byte block at a time, 1.1 against 2.2 µs per entry measured
//! on the reference VM). The lattice is the lanes' lane-wise wrapping sum, so a commit adds the
//! new entries and subtracts the old ones in O(changed keys), and the order of changes
//! does not matter. The root is the BLAKE3 hash of the lattice's little-endian bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};

use crate::codec::DecodeError;
use crate::types::StateRoot;

/// Lanes in a lattice hash.
pub const LTHASH_LANES: usize = 1024;
/// Bytes in an encoded lattice.
pub const LTHASH_BYTES: usize = LTHASH_LANES * 2;
/// Entries an [`EntryCache`] holds at most (2 KiB each: 8 MiB).
pub const ENTRY_CACHE_ENTRIES: usize = 4096;
/// Domain separation for entry hashes; changing it changes every root.
const ENTRY_CONTEXT: &str = "semel 2026-11-27 state-root entry v2";

/// A homomorphic multiset hash of state entries. Kept as its stored bytes (each lane
/// little-endian), so hashing and storing it take no conversion.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash(Box<[u8; LTHASH_BYTES]>);

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", self.root())
    }
}

impl Default for LtHash {
    fn default() -> Self {
        Self(Box::new([0; LTHASH_BYTES]))
    }
}

impl LtHash {
    /// The lattice of a single entry.
    pub fn of_entry(ns: &str, key: &[u8], value: &[u8]) -> Self {
        let mut lattice = Self::default();
        lattice.add_entry(ns, key, value, true);
        lattice
    }

    /// An entry's 32-byte BLAKE3 hash: the key of its expansion, and its name in an
    /// [`EntryCache`].
    fn entry_hash(ns: &str, key: &[u8], value: &[u8]) -> [u8; 32] {
        // The context hashed once: deriving its key is a compression of its own, as much
        // as hashing a small entry (this is what `hazmat` offers the context key for).
        static CONTEXT_KEY: LazyLock<ContextKey> =
            LazyLock::new(|| hash_derive_key_context(ENTRY_CONTEXT));
        let mut h = blake3::Hasher::new_from_context_key(&CONTEXT_KEY);
        for part in [ns.as_bytes(), key, value] {
            let len = u64::try_from(part.len()).expect("entry parts fit in u64");
            h.update(&len.to_le_bytes());
            h.update(part);
        }
        *h.finalize().as_bytes()
    }

    /// An entry's lattice lanes (little-endian bytes): the ChaCha20 keystream under its
    /// hash.
    fn expand(hash: &[u8; 32]) -> Box<[u8; LTHASH_BYTES]> {
        let mut bytes = Box::new([0u8; LTHASH_BYTES]);
        super::keystream::expand_into(hash, &mut bytes);
        bytes
    }

    /// Adds (or, with `add` false, subtracts) an entry without building its lattice.
    fn add_entry(&mut self, ns: &str, key: &[u8], value: &[u8], add: bool) {
        self.add_bytes(&Self::expand(&Self::entry_hash(ns, key, value)), add);
    }

    /// Adds (or subtracts) an entry's lanes.
    fn add_bytes(&mut self, bytes: &[u8; LTHASH_BYTES], add: bool) {
        if add {
            lanewise(&mut self.0, bytes, u16::wrapping_add);
        } else {
            lanewise(&mut self.0, bytes, u16::wrapping_sub);
        }
    }

    /// Adds an entry's lattice.
    pub fn add(&mut self, other: &LtHash) {
        self.add_bytes(&other.0, true);
    }

    /// Removes an entry's lattice.
    pub fn sub(&mut self, other: &LtHash) {
        self.add_bytes(&other.0, false);
    }

    /// Replaces the entry `(ns, key)`: `old` and `new` are its values before and after.
    pub fn update(&mut self, ns: &str, key: &[u8], old: Option<&[u8]>, new: Option<&[u8]>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.add_entry(ns, key, old, false);
        }
        if let Some(new) = new {
            self.add_entry(ns, key, new, true);
        }
    }

    /// As [`LtHash::update`], keeping the new entry's lanes in `cache`: when the key
    /// changes again (a counter, a balance), subtracting that entry costs a hash of its
    /// bytes instead of expanding it to 2 KiB again.
    pub fn update_cached(
        &mut self,
        cache: &mut EntryCache,
        ns: &str,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) {
        let mut dead = Vec::new();
        self.update_shared(&EntryCache::default(), cache, &mut dead, ns, key, old, new);
    }

    /// As [`LtHash::update_cached`] on a worker: old entries' lanes may also come from
    /// `shared` (the writer's cache, read-only meanwhile; the hashes of those it used,
    /// dead entries now, go to `dead`, to drop from it afterwards); new ones go to
    /// `local`.
    #[expect(clippy::too_many_arguments, reason = "an entry and the three caches")]
    pub fn update_shared(
        &mut self,
        shared: &EntryCache,
        local: &mut EntryCache,
        dead: &mut Vec<[u8; 32]>,
        ns: &str,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            let hash = Self::entry_hash(ns, key, old);
            if let Some(bytes) = local.0.remove(&hash) {
                self.add_bytes(&bytes, false);
            } else if let Some(bytes) = shared.0.get(&hash) {
                self.add_bytes(bytes, false);
                dead.push(hash);
            } else {
                self.add_bytes(&Self::expand(&hash), false);
            }
        }
        if let Some(new) = new {
            let hash = Self::entry_hash(ns, key, new);
            let bytes = Self::expand(&hash);
            self.add_bytes(&bytes, true);
            local.insert(hash, bytes);
        }
    }

    /// The state root this lattice commits to.
    pub fn root(&self) -> StateRoot {
        StateRoot(*blake3::hash(self.as_bytes()).as_bytes())
    }

    /// The roots of `lattices`, in order: as [`LtHash::root`] of each, but eight at a
    /// time where the AVX-512 code is usable (0.22 against 1.38 µs a lattice: BLAKE3 of
    /// one 2 KiB input keeps only two lanes of its SIMD busy, its two chunks).
    pub(crate) fn roots(lattices: &[LtHash]) -> Vec<StateRoot> {
        let mut out = Vec::with_capacity(lattices.len());
        #[cfg(target_arch = "x86_64")]
        let lattices = match super::avx512::usable() {
            true => {
                let (eights, rest) = lattices.as_chunks::<8>();
                for eight in eights {
                    let mut hashes = [[0u8; 32]; 8];
                    let inputs = eight.each_ref().map(|lattice| &*lattice.0);
                    // SAFETY: `usable` checked that the CPU has AVX-512F.
                    unsafe { super::avx512::blake3_2k_x8(inputs, &mut hashes) };
                    out.extend(hashes.map(StateRoot));
                }
                rest
            }
            false => lattices,
        };
        out.extend(lattices.iter().map(LtHash::root));
        out
    }

    /// Little-endian lanes, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    /// Little-endian lanes, as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// Reads a lattice written by [`LtHash::to_bytes`].
    ///
    /// # Errors
    /// When `bytes` is not exactly [`LTHASH_BYTES`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let lanes: [u8; LTHASH_BYTES] = bytes
            .try_into()
            .map_err(|_| DecodeError("lattice hash has the wrong length"))?;
        Ok(Self(Box::new(lanes)))
    }
}

/// `a[i] = op(a[i], b[i])` for each little-endian `u16` lane (vectorized by the
/// compiler: the byte pairs load as lanes on little-endian machines).
fn lanewise(a: &mut [u8; LTHASH_BYTES], b: &[u8; LTHASH_BYTES], op: impl Fn(u16, u16) -> u16) {
    for (x, y) in a.chunks_exact_mut(2).zip(b.chunks_exact(2)) {
        let sum = op(
            u16::from_le_bytes([x[0], x[1]]),
            u16::from_le_bytes([y[0], y[1]]),
        );
        x.copy_from_slice(&sum.to_le_bytes());
    }
}

/// Lanes of entries recently added to a lattice, by the entry's 32-byte BLAKE3 hash,
/// at most [`ENTRY_CACHE_ENTRIES`]. Content-addressed, so it is never stale.
#[derive(Default)]
pub struct EntryCache(HashMap<[u8; 32], Box<[u8; LTHASH_BYTES]>, BuildHasherDefault<KeyIsHash>>);

/// The hasher of [`EntryCache`]'s keys: they are BLAKE3 hashes, uniformly random bytes no
/// contract can steer, so their first eight bytes serve as the hash. (SipHash would hash
/// them again; it was about 2 % of a parallel batch's samples, some of it on the
/// in-order thread.)
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl EntryCache {
    /// Keeps `bytes` as the lanes of the entry with hash `hash`; a full cache starts over.
    fn insert(&mut self, hash: [u8; 32], bytes: Box<[u8; LTHASH_BYTES]>) {
        if self.0.len() >= ENTRY_CACHE_ENTRIES {
            self.0.clear();
        }
        self.0.insert(hash, bytes);
    }

    /// Drops the entries `dead` names (their values were replaced), then takes in the
    /// entries of `other` (a worker's).
    pub fn absorb(&mut self, other: EntryCache, dead: &[[u8; 32]]) {
        for hash in dead {
            self.0.remove(hash);
        }
        for (hash, bytes) in other.0 {
            self.insert(hash, bytes);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chacha20::ChaCha20;
    use chacha20::cipher::{KeyIvInit, StreamCipher};

    use super::*;

    /// The root of a state, computed from docs/ABI.md's description alone.
    fn documented_root(entries: &[(&str, &[u8], &[u8])]) -> [u8; 32] {
        let mut sum = [0u16; 1024];
        for (ns, key, value) in entries {
            let mut input = Vec::new();
            for part in [ns.as_bytes(), key, value] {
                input.extend_from_slice(&u64::try_from(part.len()).unwrap().to_le_bytes());
                input.extend_from_slice(part);
            }
            let hash = blake3::derive_key("semel 2026-11-27 state-root entry v2", &input);
            let mut lanes = [0u8; 2048];
            ChaCha20::new(&hash.into(), &[0u8; 12].into()).apply_keystream(&mut lanes);
            for (lane, pair) in sum.iter_mut().zip(lanes.chunks_exact(2)) {
                *lane = lane.wrapping_add(u16::from_le_bytes([pair[0], pair[1]]));
            }
        }
        let bytes: Vec<u8> = sum.iter().flat_map(|l| l.to_le_bytes()).collect();
        *blake3::hash(&bytes).as_bytes()
    }

    #[test]
    fn the_root_is_derived_as_documented() {
        let entries: [(&str, &[u8], &[u8]); 3] = [
            ("counter", b"count", b"\x01"),
            ("", b"", b""),
            ("token", b"bal:a", b"99"),
        ];
        let mut lattice = LtHash::default();
        for (i, (ns, key, value)) in entries.iter().enumerate() {
            assert_eq!(
                LtHash::of_entry(ns, key, value).root().0,
                documented_root(&entries[i..=i])
            );
            lattice.update(ns, key, None, Some(value));
        }
        assert_eq!(lattice.root().0, documented_root(&entries));
    }

    #[test]
    fn incremental_equals_from_scratch_in_any_order() {
        let mut a = LtHash::default();
        a.update("c", b"k1", None, Some(b"1"));
        a.update("c", b"k2", None, Some(b"2"));
        a.update("c", b"k1", Some(b"1"), Some(b"3"));
        let mut b = LtHash::default();
        b.add(&LtHash::of_entry("c", b"k2", b"2"));
        b.add(&LtHash::of_entry("c", b"k1", b"3"));
        assert_eq!(a.root(), b.root());
        a.update("c", b"k2", Some(b"2"), None);
        assert_ne!(a.root(), b.root());
        assert_eq!(LtHash::from_bytes(&a.to_bytes()).unwrap(), a);
        assert!(LtHash::from_bytes(&[0; 3]).is_err());
    }

    #[test]
    fn cached_updates_equal_uncached_and_the_cache_stays_bounded() {
        let (mut plain, mut cached) = (LtHash::default(), LtHash::default());
        let mut cache = EntryCache::default();
        let mut values: Vec<Option<Vec<u8>>> = vec![None; 300];
        // Fewer new entries than the bound, so the cache never starts over here.
        for step in 0u32..2_000 {
            let k = usize::try_from(step.wrapping_mul(2_654_435_761) % 300).unwrap();
            let key = k.to_le_bytes();
            // Every seventh step deletes, so removals are covered too.
            let new = (step % 7 != 0).then(|| step.to_le_bytes().to_vec());
            let old = values[k].take();
            plain.update("c", &key, old.as_deref(), new.as_deref());
            cached.update_cached(&mut cache, "c", &key, old.as_deref(), new.as_deref());
            values[k] = new;
            assert!(cache.len() <= ENTRY_CACHE_ENTRIES);
        }
        assert_eq!(plain, cached);
        // Every subtraction was a hit that took its entry out: the cache holds exactly
        // the live entries.
        assert_eq!(cache.len(), values.iter().filter(|v| v.is_some()).count());
        // A cache that outgrows its bound starts over, and stays correct.
        let mut small = EntryCache::default();
        let mut a = LtHash::default();
        for i in 0..(ENTRY_CACHE_ENTRIES + 10) {
            a.update_cached(&mut small, "c", &i.to_le_bytes(), None, Some(b"v"));
        }
        assert!(small.len() <= ENTRY_CACHE_ENTRIES);
        let mut b = LtHash::default();
        for i in 0..(ENTRY_CACHE_ENTRIES + 10) {
            b.add(&LtHash::of_entry("c", &i.to_le_bytes(), b"v"));
        }
        assert_eq!(a, b);
    }

    #[test]
    fn roots_of_many_lattices_are_each_ones_root() {
        for n in [0, 1, 7, 8, 9, 17, 40] {
            let lattices: Vec<_> = (0..n)
                .map(|i: u32| LtHash::of_entry("c", &i.to_le_bytes(), b"v"))
                .collect();
            let each: Vec<_> = lattices.iter().map(LtHash::root).collect();
            let _switch = crate::state::avx512::tests::SWITCH.lock();
            assert_eq!(LtHash::roots(&lattices), each, "{n} lattices");
            crate::state::avx512::use_avx512(false);
            let plain = LtHash::roots(&lattices);
            crate::state::avx512::use_avx512(true);
            assert_eq!(plain, each, "{n} lattices, the switch off");
        }
    }

    #[test]
    fn entries_are_domain_separated() {
        // Moving a byte between fields must change the hash.
        assert_ne!(
            LtHash::of_entry("ab", b"c", b"").root(),
            LtHash::of_entry("a", b"bc", b"").root()
        );
        assert_ne!(
            LtHash::default().root(),
            LtHash::of_entry("", b"", b"").root()
        );
    }
}
