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

/// A store's own name: 16 random bytes made with the store and kept in it (`Meta`
/// `host_id`), printed as 32 lowercase hex digits. A signature covers it, so it is good
/// on one store only (interface §7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId([u8; 16]);

impl HostId {
    /// The id of these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Its 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A new id from the operating system's randomness.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostId({self})")
    }
}

/// Why a text is not a [`HostId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseHostIdError {
    /// Not 32 characters long.
    #[error("a host id is 32 hex digits, this one has {0} characters")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("a host id is 32 hex digits, {found:?} (character {at}) is not one")]
    NotHex {
        /// The character found.
        found: char,
        /// Its position, counted from 1.
        at: usize,
    },
}

impl std::str::FromStr for HostId {
    type Err = ParseHostIdError;

    /// Reads 32 hex digits (either case), as [`HostId`]'s `Display` writes them.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let count = text.chars().count();
        if count != 32 {
            return Err(ParseHostIdError::Length(count));
        }
        if let Some((i, found)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(ParseHostIdError::NotHex { found, at: i + 1 });
        }
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| ParseHostIdError::Length(count))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_id_prints_as_32_lowercase_hex_digits_and_parses_back() {
        let id = HostId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(format!("{id:?}"), format!("HostId({})", "ab".repeat(16)));
        assert_eq!(id.to_string().parse::<HostId>(), Ok(id));
        assert_eq!("AB".repeat(16).parse::<HostId>(), Ok(id));
        let random = HostId::random().unwrap();
        assert_eq!(random.to_string().parse::<HostId>(), Ok(random));
        assert_ne!(random, HostId::random().unwrap());
    }

    #[test]
    fn a_bad_host_id_names_its_problem() {
        assert_eq!("".parse::<HostId>(), Err(ParseHostIdError::Length(0)));
        assert_eq!(
            "ab".repeat(17).parse::<HostId>(),
            Err(ParseHostIdError::Length(34))
        );
        // Counted in characters, so a multi-byte one is not mistaken for two.
        let text = format!("{}é", "a".repeat(31));
        assert_eq!(text.len(), 33);
        assert_eq!(
            text.parse::<HostId>(),
            Err(ParseHostIdError::NotHex {
                found: 'é', at: 32
            })
        );
        let e = format!("{}g{}", "0".repeat(4), "0".repeat(27))
            .parse::<HostId>()
            .unwrap_err();
        assert_eq!(e, ParseHostIdError::NotHex { found: 'g', at: 5 });
        assert_eq!(
            e.to_string(),
            "a host id is 32 hex digits, 'g' (character 5) is not one"
        );
        assert_eq!(
            ParseHostIdError::Length(3).to_string(),
            "a host id is 32 hex digits, this one has 3 characters"
        );
    }
}
