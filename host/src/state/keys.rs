//! The `State` table's key layout, which keeps each contract's keys in byte order and
//! every version of a key together:
//!
//! ```text
//! [ns length: u8][ns bytes][key, 0x00 escaped as 0x00 0xFF][0x00 0x00][version: u64 BE]
//! ```
//!
//! `ns` is the contract name, or [`REGISTRY_NS`] (empty) for the contract registry. The
//! escaping keeps byte order: for keys `a < b`, every encoding of `a` sorts before every
//! encoding of `b`. The value is `[0]` for a removal or `[1][bytes]` for a value.

use crate::codec::DecodeError;

/// The namespace of the contract registry: contract name → code hash and deploy version.
/// Contract names are never empty, so it cannot collide with a contract.
pub const REGISTRY_NS: &str = "";

const VERSION_BYTES: usize = 8;

fn push_escaped(out: &mut Vec<u8>, key: &[u8]) {
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

fn push_ns(out: &mut Vec<u8>, ns: &str) {
    // Namespaces are contract names of at most 64 bytes, or empty.
    let len = u8::try_from(ns.len()).expect("namespace names are below 256 bytes");
    out.push(len);
    out.extend_from_slice(ns.as_bytes());
}

/// The encoding of `(ns, key)` without a version: every version of it starts with this.
pub fn entry_key(ns: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ns.len() + key.len() + 2 + VERSION_BYTES);
    push_ns(&mut out, ns);
    push_escaped(&mut out, key);
    out.extend_from_slice(&[0, 0]);
    out
}

/// The common start of the encodings of every key in `ns` that starts with `prefix`.
pub fn prefix_key(ns: &str, prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ns.len() + prefix.len());
    push_ns(&mut out, ns);
    push_escaped(&mut out, prefix);
    out
}

/// An entry key with a version appended.
pub(crate) fn versioned_key(entry: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len() + VERSION_BYTES);
    out.extend_from_slice(entry);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// Splits a stored key into its namespace, user key and version.
///
/// # Errors
/// When the bytes are not a key this module wrote.
pub fn decode_state_key(stored: &[u8]) -> Result<(String, Vec<u8>, u64), DecodeError> {
    let (entry, version) = stored
        .split_at_checked(stored.len().wrapping_sub(VERSION_BYTES))
        .filter(|_| stored.len() >= VERSION_BYTES)
        .ok_or(DecodeError("state key too short"))?;
    let version = u64::from_be_bytes(version.try_into().map_err(|_| DecodeError("version"))?);
    let (ns, key) = decode_entry_key(entry)?;
    Ok((ns, key, version))
}

/// Splits an entry key (no version) into namespace and user key.
pub(crate) fn decode_entry_key(entry: &[u8]) -> Result<(String, Vec<u8>), DecodeError> {
    let (&ns_len, rest) = entry.split_first().ok_or(DecodeError("empty state key"))?;
    let (ns, escaped) = rest
        .split_at_checked(usize::from(ns_len))
        .ok_or(DecodeError("state key namespace truncated"))?;
    let ns = std::str::from_utf8(ns).map_err(|_| DecodeError("namespace not UTF-8"))?;
    let mut key = Vec::with_capacity(escaped.len());
    let mut i = 0;
    loop {
        match (escaped.get(i), escaped.get(i + 1)) {
            (Some(0), Some(0)) if i + 2 == escaped.len() => break,
            (Some(0), Some(0xFF)) => {
                key.push(0);
                i += 2;
            }
            (Some(0), _) | (None, _) => return Err(DecodeError("bad key escaping")),
            (Some(&b), _) => {
                key.push(b);
                i += 1;
            }
        }
    }
    Ok((ns.to_owned(), key))
}

/// A stored value: a removal (`None`) or bytes.
pub(crate) fn encode_stored_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(1 + v.len());
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}

/// Reads a value written by [`encode_stored_value`].
pub(crate) fn decode_stored_value(stored: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    match stored.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, v)) => Ok(Some(v)),
        _ => Err(DecodeError("bad state value tag")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_with_zero_bytes() {
        let k = versioned_key(&entry_key("token", b"a\0b\0"), 42);
        assert_eq!(
            decode_state_key(&k).unwrap(),
            ("token".to_owned(), b"a\0b\0".to_vec(), 42)
        );
        assert!(decode_state_key(&k[..k.len() - 9]).is_err());
        assert_eq!(
            decode_stored_value(&encode_stored_value(None)).unwrap(),
            None
        );
        assert_eq!(
            decode_stored_value(&encode_stored_value(Some(b"v"))).unwrap(),
            Some(&b"v"[..])
        );
        assert!(decode_stored_value(&[2]).is_err());
    }

    proptest! {
        #[test]
        fn encoding_keeps_byte_order(a in prop::collection::vec(any::<u8>(), 0..6),
                                     b in prop::collection::vec(any::<u8>(), 0..6),
                                     va: u64, vb: u64) {
            let ea = versioned_key(&entry_key("c", &a), va);
            let eb = versioned_key(&entry_key("c", &b), vb);
            if a != b {
                prop_assert_eq!(a < b, ea < eb);
            } else {
                prop_assert_eq!(va.cmp(&vb), ea.cmp(&eb));
            }
            prop_assert!(ea.starts_with(&prefix_key("c", &a[..a.len() / 2])));
        }
    }
}
