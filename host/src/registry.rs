//! The contract registry: which contracts exist, with what code, since which version.
//! Its entries live in the state under [`REGISTRY_NS`], so the state root commits to
//! them and historical reads see the registry as it was.

use crate::codec::{DecodeError, Reader, Writer};
use crate::engine::CodeHash;
pub use crate::state::REGISTRY_NS;

/// A deployed contract's registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractRecord {
    /// Its code.
    pub code_hash: CodeHash,
    /// The version its deploy took.
    pub version: u64,
}

impl ContractRecord {
    /// `[code hash: 32][version: u64 LE]`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        Writer::new()
            .fixed(&self.code_hash.0)
            .u64(self.version)
            .finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let code_hash = CodeHash(r.fixed()?);
        let version = r.u64()?;
        r.end()?;
        Ok(Self { code_hash, version })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let r = super::ContractRecord {
            code_hash: crate::engine::CodeHash([3; 32]),
            version: 9,
        };
        assert_eq!(super::ContractRecord::decode(&r.encode()).unwrap(), r);
        assert!(super::ContractRecord::decode(&[0; 39]).is_err());
    }
}
