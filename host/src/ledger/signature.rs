//! Transaction signatures (interface §7): the bytes a key signs, the account id of a
//! key, the JSON form of a signature, and the verification every submission goes
//! through before anything is recorded.
//!
//! The signed message is BLAKE3 of `"semel-tx-v1"` ‖ host id (16 bytes) ‖ tx id
//! (16 bytes) ‖ content hash (32 bytes), signed with ed25519 and verified strictly
//! (`verify_strict`: a non-canonical `s` or a small-order public key is refused). The
//! signature is not part of a transaction's content: the same transaction signed again
//! is the same content.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use uuid::Uuid;

use crate::error::InputError;
use crate::types::HostId;

/// The domain separator that starts the signed bytes.
pub const SIGNING_DOMAIN: &[u8] = b"semel-tx-v1";

/// How an account id made from an ed25519 public key starts.
pub const ACCOUNT_PREFIX: &str = "ed25519:";

/// A transaction's signature: the signer's public key and the ed25519 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxSignature {
    /// The ed25519 public key (compressed point).
    pub public_key: [u8; 32],
    /// The ed25519 signature (`R` ‖ `s`).
    pub signature: [u8; 64],
}

impl TxSignature {
    /// Signs the transaction `tx_id` with content hash `content_hash` for `host`.
    pub fn sign(key: &SigningKey, host: &HostId, tx_id: &Uuid, content_hash: &[u8; 32]) -> Self {
        let message = signing_hash(host, tx_id, content_hash);
        Self {
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(&message).to_bytes(),
        }
    }

    /// The account id of the key that signed: `ed25519:<64 hex>`.
    pub fn account_id(&self) -> String {
        account_id(&self.public_key)
    }

    /// Reads the JSON form's two hex strings, naming the field at fault.
    ///
    /// # Errors
    /// [`InputError::Json`] for a field of the wrong length or not hex.
    pub fn from_hex(public_key: &str, signature: &str) -> Result<Self, InputError> {
        Ok(Self {
            public_key: fixed_hex("signature.public_key", public_key)?,
            signature: fixed_hex("signature.signature", signature)?,
        })
    }

    /// The JSON form: `{"public_key": "<64 hex>", "signature": "<128 hex>"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "public_key": hex::encode(self.public_key),
            "signature": hex::encode(self.signature),
        })
    }

    /// Verifies the signature over `tx_id` and `content_hash` for `host`, strictly.
    ///
    /// # Errors
    /// [`InputError::Unauthorized`] naming what failed.
    pub fn verify(
        &self,
        host: &HostId,
        tx_id: &Uuid,
        content_hash: &[u8; 32],
    ) -> Result<(), InputError> {
        let key = VerifyingKey::from_bytes(&self.public_key).map_err(|_| {
            InputError::Unauthorized(format!(
                "signature.public_key {} is not an ed25519 public key",
                hex::encode(self.public_key)
            ))
        })?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&signing_hash(host, tx_id, content_hash), &signature)
            .map_err(|_| {
                InputError::Unauthorized(format!(
                    "the signature of transaction {tx_id} does not verify with public key {} \
                     on host {}",
                    hex::encode(self.public_key),
                    hex::encode(host.as_bytes())
                ))
            })
    }
}

/// The account id of an ed25519 public key: `ed25519:<64 hex>`.
pub fn account_id(public_key: &[u8; 32]) -> String {
    format!("{ACCOUNT_PREFIX}{}", hex::encode(public_key))
}

/// The bytes whose BLAKE3 hash a key signs: `"semel-tx-v1"` ‖ host id ‖ tx id ‖
/// content hash (75 bytes).
pub fn signing_bytes(host: &HostId, tx_id: &Uuid, content_hash: &[u8; 32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNING_DOMAIN.len() + 16 + 16 + 32);
    bytes.extend_from_slice(SIGNING_DOMAIN);
    bytes.extend_from_slice(host.as_bytes());
    bytes.extend_from_slice(tx_id.as_bytes());
    bytes.extend_from_slice(content_hash);
    bytes
}

/// The message a key signs: BLAKE3 of [`signing_bytes`].
pub fn signing_hash(host: &HostId, tx_id: &Uuid, content_hash: &[u8; 32]) -> [u8; 32] {
    *blake3::hash(&signing_bytes(host, tx_id, content_hash)).as_bytes()
}

/// Checks who may send a transaction: a signed one must verify and its sender must be
/// its key's account id; an unsigned one may not claim an `ed25519:` account.
///
/// # Errors
/// [`InputError::Unauthorized`] naming what failed.
pub fn authorize(
    host: &HostId,
    tx_id: &Uuid,
    sender: &str,
    signature: Option<&TxSignature>,
    content_hash: &[u8; 32],
) -> Result<(), InputError> {
    match signature {
        None if sender.starts_with(ACCOUNT_PREFIX) => Err(InputError::Unauthorized(format!(
            "transaction {tx_id} is unsigned but its sender {sender} is an ed25519 account: \
             it needs that key's signature"
        ))),
        None => Ok(()),
        Some(sig) => {
            let account = sig.account_id();
            if sender != account {
                return Err(InputError::Unauthorized(format!(
                    "transaction {tx_id} is signed by {account} but its sender is {sender}"
                )));
            }
            sig.verify(host, tx_id, content_hash)
        }
    }
}

fn fixed_hex<const N: usize>(field: &str, text: &str) -> Result<[u8; N], InputError> {
    if text.len() != 2 * N {
        return Err(InputError::Json(format!(
            "{field} must be {} hex digits, it has {}",
            2 * N,
            text.len()
        )));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| InputError::Json(format!("{field} is not hex: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn a_signature_verifies_on_its_host_and_transaction_only() {
        let host = HostId::from_bytes([1; 16]);
        let id = Uuid::from_bytes([2; 16]);
        let hash = [3; 32];
        let sig = TxSignature::sign(&key(), &host, &id, &hash);
        sig.verify(&host, &id, &hash).unwrap();
        let other_host = HostId::from_bytes([9; 16]);
        assert!(sig.verify(&other_host, &id, &hash).is_err());
        assert!(
            sig.verify(&host, &Uuid::from_bytes([4; 16]), &hash)
                .is_err()
        );
        assert!(sig.verify(&host, &id, &[5; 32]).is_err());
        assert_eq!(signing_bytes(&host, &id, &hash).len(), 75);
    }

    #[test]
    fn authorize_ties_the_sender_to_the_key() {
        let host = HostId::from_bytes([1; 16]);
        let id = Uuid::from_bytes([2; 16]);
        let hash = [3; 32];
        let sig = TxSignature::sign(&key(), &host, &id, &hash);
        authorize(&host, &id, &sig.account_id(), Some(&sig), &hash).unwrap();
        authorize(&host, &id, "alice", None, &hash).unwrap();
        let e = authorize(&host, &id, "alice", Some(&sig), &hash).unwrap_err();
        assert!(e.to_string().contains("its sender is alice"), "{e}");
        let e = authorize(&host, &id, &sig.account_id(), None, &hash).unwrap_err();
        assert!(e.to_string().contains("unsigned"), "{e}");
    }

    #[test]
    fn hex_fields_are_checked_by_name() {
        let e = TxSignature::from_hex("ab", &"0".repeat(128)).unwrap_err();
        assert!(
            e.to_string().contains("signature.public_key must be 64"),
            "{e}"
        );
        let e = TxSignature::from_hex(&"0".repeat(64), &"z".repeat(128)).unwrap_err();
        assert!(
            e.to_string().contains("signature.signature is not hex"),
            "{e}"
        );
    }
}
