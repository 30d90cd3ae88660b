//! How [`crate::Map`] keys become storage key bytes, and back.
//!
//! The encoding keeps keys readable where it can and ordered always: a string or byte
//! key in last position is its raw bytes (so `semel state` shows `balance/alice`);
//! integers are fixed-width big-endian (byte order is numeric order); a string or byte
//! component before the last is prefixed by its length as two big-endian bytes, so
//! composite keys never collide.

use alloc::string::String;
use alloc::vec::Vec;

/// A type usable as a map key.
pub trait Key: Sized {
    /// The form callers pass in: `&str` for `String`, `&[u8]` for `Vec<u8>`, the value
    /// itself for integers, a tuple of those for tuples.
    type Ref<'a>: Copy;

    /// Appends the key in last position (the whole rest of the storage key).
    fn encode(key: Self::Ref<'_>, out: &mut Vec<u8>);
    /// Appends the key as a component followed by others.
    fn encode_part(key: Self::Ref<'_>, out: &mut Vec<u8>);
    /// Reads a key from the whole rest of the storage key.
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// Reads a component from the front of `bytes`, advancing past it.
    fn decode_part(bytes: &mut &[u8]) -> Option<Self>;
}

fn encode_len_prefixed(bytes: &[u8], out: &mut Vec<u8>) {
    let Ok(len) = u16::try_from(bytes.len()) else {
        crate::revert("map key component longer than 65535 bytes");
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn decode_len_prefixed<'b>(bytes: &mut &'b [u8]) -> Option<&'b [u8]> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return None;
    }
    let (part, rest) = rest.split_at(len);
    *bytes = rest;
    Some(part)
}

impl Key for String {
    type Ref<'a> = &'a str;

    fn encode(key: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(key.as_bytes());
    }
    fn encode_part(key: &str, out: &mut Vec<u8>) {
        encode_len_prefixed(key.as_bytes(), out);
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
    fn decode_part(bytes: &mut &[u8]) -> Option<Self> {
        String::from_utf8(decode_len_prefixed(bytes)?.to_vec()).ok()
    }
}

impl Key for Vec<u8> {
    type Ref<'a> = &'a [u8];

    fn encode(key: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(key);
    }
    fn encode_part(key: &[u8], out: &mut Vec<u8>) {
        encode_len_prefixed(key, out);
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
    fn decode_part(bytes: &mut &[u8]) -> Option<Self> {
        Some(decode_len_prefixed(bytes)?.to_vec())
    }
}

macro_rules! int_keys {
    ($($t:ty),*) => {$(
        impl Key for $t {
            type Ref<'a> = $t;

            fn encode(key: $t, out: &mut Vec<u8>) {
                out.extend_from_slice(&key.to_be_bytes());
            }
            fn encode_part(key: $t, out: &mut Vec<u8>) {
                Self::encode(key, out);
            }
            fn decode(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_be_bytes(bytes.try_into().ok()?))
            }
            fn decode_part(bytes: &mut &[u8]) -> Option<Self> {
                let (head, rest) = bytes.split_first_chunk()?;
                *bytes = rest;
                Some(<$t>::from_be_bytes(*head))
            }
        }
    )*};
}
int_keys!(u8, u16, u32, u64, u128);

impl<A: Key, B: Key> Key for (A, B) {
    type Ref<'a> = (A::Ref<'a>, B::Ref<'a>);

    fn encode((a, b): Self::Ref<'_>, out: &mut Vec<u8>) {
        A::encode_part(a, out);
        B::encode(b, out);
    }
    fn encode_part((a, b): Self::Ref<'_>, out: &mut Vec<u8>) {
        A::encode_part(a, out);
        B::encode_part(b, out);
    }
    fn decode(mut bytes: &[u8]) -> Option<Self> {
        let a = A::decode_part(&mut bytes)?;
        Some((a, B::decode(bytes)?))
    }
    fn decode_part(bytes: &mut &[u8]) -> Option<Self> {
        Some((A::decode_part(bytes)?, B::decode_part(bytes)?))
    }
}

impl<A: Key, B: Key, C: Key> Key for (A, B, C) {
    type Ref<'a> = (A::Ref<'a>, B::Ref<'a>, C::Ref<'a>);

    fn encode((a, b, c): Self::Ref<'_>, out: &mut Vec<u8>) {
        A::encode_part(a, out);
        B::encode_part(b, out);
        C::encode(c, out);
    }
    fn encode_part((a, b, c): Self::Ref<'_>, out: &mut Vec<u8>) {
        A::encode_part(a, out);
        B::encode_part(b, out);
        C::encode_part(c, out);
    }
    fn decode(mut bytes: &[u8]) -> Option<Self> {
        let a = A::decode_part(&mut bytes)?;
        let b = B::decode_part(&mut bytes)?;
        Some((a, b, C::decode(bytes)?))
    }
    fn decode_part(bytes: &mut &[u8]) -> Option<Self> {
        Some((
            A::decode_part(bytes)?,
            B::decode_part(bytes)?,
            C::decode_part(bytes)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn enc<K: Key>(k: K::Ref<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        K::encode(k, &mut out);
        out
    }

    #[test]
    fn last_strings_are_raw_and_ints_big_endian() {
        assert_eq!(enc::<String>("alice"), b"alice");
        assert_eq!(enc::<u32>(258), [0, 0, 1, 2]);
    }

    #[test]
    fn composite_keys_round_trip_and_do_not_collide() {
        let ab = enc::<(String, String)>(("ab", "c"));
        let a_bc = enc::<(String, String)>(("a", "bc"));
        assert_ne!(ab, a_bc);
        assert_eq!(
            <(String, String)>::decode(&ab),
            Some(("ab".to_string(), "c".to_string()))
        );
        let k = enc::<(u64, String, Vec<u8>)>((7, "x", b"yz"));
        assert_eq!(
            <(u64, String, Vec<u8>)>::decode(&k),
            Some((7, "x".to_string(), b"yz".to_vec()))
        );
        assert_eq!(<(String, String)>::decode(&[0, 9, b'a']), None);
    }
}
