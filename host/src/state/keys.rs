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

use std::sync::Arc;

use smallvec::SmallVec;

use crate::codec::DecodeError;

/// The namespace of the contract registry: contract name → code hash and deploy version.
/// Contract names are never empty, so it cannot collide with a contract.
pub const REGISTRY_NS: &str = "";

const VERSION_BYTES: usize = 8;

/// A key built on the stack for a lookup, on the heap only past 128 bytes: most keys
/// are far shorter, and a lookup's key is dropped as soon as it is used.
pub(super) type KeyBuf = SmallVec<[u8; 128]>;

/// Where keys are built: a `Vec` for a key kept, a [`KeyBuf`] for a lookup.
trait Out: Extend<u8> {}

impl<T: Extend<u8>> Out for T {}

fn push_escaped(out: &mut impl Out, key: &[u8]) {
    // The runs between zero bytes copied whole, each zero as `0x00 0xFF`.
    let mut runs = key.split(|&b| b == 0);
    if let Some(first) = runs.next() {
        out.extend(first.iter().copied());
    }
    for run in runs {
        out.extend([0, 0xFF]);
        out.extend(run.iter().copied());
    }
}

fn push_ns(out: &mut impl Out, ns: &str) {
    // Namespaces are contract names of at most 64 bytes, or empty.
    let len = u8::try_from(ns.len()).expect("namespace names are below 256 bytes");
    out.extend([len]);
    out.extend(ns.bytes());
}

/// The encoding of `(ns, key)` without a version: every version of it starts with this.
pub fn entry_key(ns: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ns.len() + key.len() + 2 + VERSION_BYTES);
    push_entry_key(&mut out, ns, key);
    out
}

fn push_entry_key(out: &mut impl Out, ns: &str, key: &[u8]) {
    push_ns(out, ns);
    push_escaped(out, key);
    out.extend([0, 0]);
}

/// [`entry_key`], built for a lookup.
pub(super) fn entry_key_buf(ns: &str, key: &[u8]) -> KeyBuf {
    let mut out = KeyBuf::new();
    push_entry_key(&mut out, ns, key);
    out
}

/// [`versioned_key`], built for a lookup.
pub(super) fn versioned_key_buf(entry: &[u8], version: u64) -> KeyBuf {
    let mut out = KeyBuf::with_capacity(entry.len() + VERSION_BYTES);
    out.extend_from_slice(entry);
    out.extend_from_slice(&version.to_be_bytes());
    out
}

/// The `State` row of a write of `(ns, key)` at `version`: its key
/// ([`versioned_key`]) and stored value (`[0]` for a removal, `[1][bytes]` for a value),
/// each built in `buf` and copied once into shared bytes (a row is two allocations, not
/// five).
pub(crate) fn state_row(
    ns: &str,
    key: &[u8],
    version: u64,
    value: Option<&[u8]>,
    buf: &mut Vec<u8>,
) -> (Arc<[u8]>, Arc<[u8]>) {
    buf.clear();
    push_entry_key(buf, ns, key);
    buf.extend_from_slice(&version.to_be_bytes());
    let stored_key = Arc::from(&buf[..]);
    buf.clear();
    push_stored_value(buf, value);
    (stored_key, Arc::from(&buf[..]))
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

/// A stored value, as [`state_row`] writes it: a removal (`None`) or bytes (tests).
#[cfg(test)]
pub(crate) fn encode_stored_value(value: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + value.map_or(0, <[u8]>::len));
    push_stored_value(&mut out, value);
    out
}

fn push_stored_value(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
    }
}

/// Reads a value written by [`state_row`].
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

    #[test]
    fn the_builders_write_the_documented_layout() {
        let entry = [2, b'a', b'b', 0, 0xFF, b'x', 0, 0];
        assert_eq!(entry_key("ab", b"\0x"), entry);
        assert_eq!(&entry_key_buf("ab", b"\0x")[..], entry);
        let versioned = [&entry[..], &[0, 0, 0, 0, 0, 0, 1, 2]].concat();
        assert_eq!(versioned_key(&entry, 258), versioned);
        assert_eq!(&versioned_key_buf(&entry, 258)[..], versioned);
        let (key, value) = state_row("ab", b"\0x", 258, Some(b"v"), &mut Vec::new());
        assert_eq!((&key[..], &value[..]), (&versioned[..], &[1, b'v'][..]));
        let (_, removal) = state_row("ab", b"\0x", 258, None, &mut Vec::new());
        assert_eq!(&removal[..], [0]);
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

        /// The builders for lookups and for rows make the bytes `entry_key`,
        /// `versioned_key` and `encode_stored_value` make, short keys and keys past
        /// the stack buffer alike.
        #[test]
        fn every_builder_makes_the_same_bytes(
            ns in "[a-z]{0,64}",
            key in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..300),
            version: u64,
            value in prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        ) {
            let entry = entry_key(&ns, &key);
            prop_assert_eq!(&entry_key_buf(&ns, &key)[..], &entry[..]);
            let versioned = versioned_key(&entry, version);
            prop_assert_eq!(&versioned_key_buf(&entry, version)[..], &versioned[..]);
            let mut buf = vec![9; 3];
            let (row_key, row_value) = state_row(&ns, &key, version, value.as_deref(), &mut buf);
            prop_assert_eq!(&row_key[..], &versioned[..]);
            prop_assert_eq!(&row_value[..], &encode_stored_value(value.as_deref())[..]);
            prop_assert_eq!(decode_stored_value(&row_value).unwrap(), value.as_deref());
        }
    }
}
