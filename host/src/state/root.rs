//! The state root: a lattice hash (LtHash, as in Solana's accounts lattice hash) over
//! every `(namespace, key, value)` entry of the state.
//!
//! Each entry maps to 1024 `u16` lanes of BLAKE3 XOF output; the lattice is their
//! lane-wise wrapping sum, so a commit adds the new entries and subtracts the old ones
//! in O(changed keys), and the order of changes does not matter. The root is the
//! BLAKE3 hash of the lattice's little-endian bytes.

use crate::codec::DecodeError;

/// Lanes in a lattice hash.
pub const LTHASH_LANES: usize = 1024;
/// Bytes in an encoded lattice.
pub const LTHASH_BYTES: usize = LTHASH_LANES * 2;
/// Domain separation for entry hashes; changing it changes every root.
const ENTRY_CONTEXT: &str = "semel 2026-11-26 state-root entry v1";

/// A homomorphic multiset hash of state entries.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash(Box<[u16; LTHASH_LANES]>);

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", self.root())
    }
}

impl Default for LtHash {
    fn default() -> Self {
        Self(Box::new([0; LTHASH_LANES]))
    }
}

/// The 32-byte commitment to a whole state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateRoot(pub [u8; 32]);

impl std::fmt::Display for StateRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for StateRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StateRoot({self})")
    }
}

impl LtHash {
    /// The lattice of a single entry.
    pub fn of_entry(ns: &str, key: &[u8], value: &[u8]) -> Self {
        let mut lattice = Self::default();
        lattice.add_entry(ns, key, value, true);
        lattice
    }

    /// The XOF bytes of an entry, which are its lattice's little-endian lanes.
    fn entry_bytes(ns: &str, key: &[u8], value: &[u8]) -> [u8; LTHASH_BYTES] {
        let mut h = blake3::Hasher::new_derive_key(ENTRY_CONTEXT);
        for part in [ns.as_bytes(), key, value] {
            let len = u64::try_from(part.len()).expect("entry parts fit in u64");
            h.update(&len.to_le_bytes());
            h.update(part);
        }
        let mut bytes = [0u8; LTHASH_BYTES];
        h.finalize_xof().fill(&mut bytes);
        bytes
    }

    /// Adds (or, with `add` false, subtracts) an entry without building its lattice.
    fn add_entry(&mut self, ns: &str, key: &[u8], value: &[u8], add: bool) {
        let bytes = Self::entry_bytes(ns, key, value);
        for (lane, pair) in self.0.iter_mut().zip(bytes.chunks_exact(2)) {
            let x = u16::from_le_bytes([pair[0], pair[1]]);
            *lane = if add {
                lane.wrapping_add(x)
            } else {
                lane.wrapping_sub(x)
            };
        }
    }

    /// Adds an entry's lattice.
    pub fn add(&mut self, other: &LtHash) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Removes an entry's lattice.
    pub fn sub(&mut self, other: &LtHash) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.wrapping_sub(*b);
        }
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

    /// The state root this lattice commits to.
    pub fn root(&self) -> StateRoot {
        StateRoot(*blake3::hash(&self.to_bytes()).as_bytes())
    }

    /// Little-endian lanes, as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; LTHASH_BYTES];
        for (pair, lane) in out.chunks_exact_mut(2).zip(self.0.iter()) {
            pair.copy_from_slice(&lane.to_le_bytes());
        }
        out
    }

    /// Reads a lattice written by [`LtHash::to_bytes`].
    ///
    /// # Errors
    /// When `bytes` is not exactly [`LTHASH_BYTES`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() != LTHASH_BYTES {
            return Err(DecodeError("lattice hash has the wrong length"));
        }
        let mut lanes = Box::new([0u16; LTHASH_LANES]);
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Ok(Self(lanes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
