//! The hashes that name things across every layer: a contract's code ([`CodeHash`]) and a
//! whole state ([`StateRoot`]). Both are plain 32-byte values, printed as lowercase hex.

use std::fmt;

/// The BLAKE3 hash of a contract's wasm bytes: how code is stored and cached.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeHash(pub [u8; 32]);

impl CodeHash {
    /// The hash of `code`.
    pub fn of(code: &[u8]) -> Self {
        Self(*blake3::hash(code).as_bytes())
    }
}

impl fmt::Display for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeHash({self})")
    }
}

/// The 32-byte commitment to a whole state: the BLAKE3 hash of its lattice
/// (`state/root.rs`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StateRoot(pub [u8; 32]);

impl fmt::Display for StateRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for StateRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateRoot({self})")
    }
}
