//! Keys of the in-memory tables: short ones inside the map's own memory, longer ones
//! shared.

use std::borrow::Borrow;
use std::ops::Bound;
use std::sync::Arc;

/// Shared byte strings: copying a map node while committing only bumps reference
/// counts instead of copying every value in it.
pub(super) type Bytes = Arc<[u8]>;

/// Bytes of a key kept inside a map node: transaction ids (16), log keys (8) and
/// versioned state keys of up to 19 bytes of name and key fit, so a lookup compares
/// keys without a pointer chase (a cache miss per comparison once a table outgrows the
/// cache). Not more: a key takes 32 bytes and a node entry 48, and nodes of sequential
/// keys (log, versions) stay half full, so wider keys cost memory every transaction
/// (46 bytes took 861 bytes per counter transaction, 30 take 715).
pub(crate) const INLINE_KEY_BYTES: usize = 30;

/// A map key: inline when short, shared when longer. Ordered as its bytes.
///
/// Built only by [`Key::new`] and [`Key::inline`]: the order and `as_slice` rely on an
/// inline key's `len` being at most [`INLINE_KEY_BYTES`] and its bytes past `len` being
/// zero.
#[derive(Clone)]
pub(super) enum Key {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    Shared(Bytes),
}

// The size the inline limit was chosen for (see `INLINE_KEY_BYTES`).
const _: () = assert!(std::mem::size_of::<Key>() == 32);

impl Key {
    /// A short key copied inline, a longer one shared.
    pub fn new(key: &Bytes) -> Self {
        Self::inline(key).unwrap_or_else(|| Self::Shared(Arc::clone(key)))
    }

    /// `key` copied inline, if it fits. Lookups probe with it: see `Ord for Key`.
    pub fn inline(key: &[u8]) -> Option<Self> {
        let len = u8::try_from(key.len())
            .ok()
            .filter(|_| key.len() <= INLINE_KEY_BYTES)?;
        let mut bytes = [0; INLINE_KEY_BYTES];
        bytes[..key.len()].copy_from_slice(key);
        Some(Self::Inline { len, bytes })
    }

    /// A lookup bound as a key, if it fits inline (or is unbounded).
    pub fn bound(bound: Bound<&[u8]>) -> Option<Bound<Self>> {
        Some(match bound {
            Bound::Included(k) => Bound::Included(Self::inline(k)?),
            Bound::Excluded(k) => Bound::Excluded(Self::inline(k)?),
            Bound::Unbounded => Bound::Unbounded,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Shared(b) => b,
        }
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Key {}

// As the bytes hash, so that a hash map of keys is looked up with a byte slice.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            // Two big-endian integer comparisons instead of a `memcmp` call: a lookup in
            // a large table makes dozens. Zero padding keeps the byte order: where one
            // key is a prefix of the other, the padding compares below or equal to the
            // longer key's bytes, and the lengths decide a tie.
            (Self::Inline { len: a, bytes: x }, Self::Inline { len: b, bytes: y }) => {
                let (x_head, x_tail) = halves(x);
                let (y_head, y_tail) = halves(y);
                x_head.cmp(&y_head).then(x_tail.cmp(&y_tail)).then(a.cmp(b))
            }
            _ => self.as_slice().cmp(other.as_slice()),
        }
    }
}

/// An inline key's bytes as two big-endian integers, zero-padded.
fn halves(bytes: &[u8; INLINE_KEY_BYTES]) -> (u128, u128) {
    let mut head = [0; 16];
    let mut tail = [0; 16];
    head.copy_from_slice(&bytes[..16]);
    tail[..INLINE_KEY_BYTES - 16].copy_from_slice(&bytes[16..]);
    (u128::from_be_bytes(head), u128::from_be_bytes(tail))
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Bytes drawn from few values, so that zeros, shared prefixes and the inline limit
    /// come up often.
    pub(in crate::storage::memory) fn key_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![0u8, 1, 0xff]),
            0..INLINE_KEY_BYTES + 3,
        )
    }

    #[test]
    fn zero_padding_and_the_inline_limit_keep_the_byte_order() {
        // Cases the property test found when the order was broken on purpose.
        let long = [7u8; INLINE_KEY_BYTES + 1];
        let pairs: [(&[u8], &[u8]); 5] = [
            (b"", b"\0"),
            (b"\xff", b"\xff\0\0"),
            (b"\x01", b"\x01\0"),
            (&long[..INLINE_KEY_BYTES], &long),
            (&long[..INLINE_KEY_BYTES - 1], &long[..INLINE_KEY_BYTES]),
        ];
        for (lo, hi) in pairs {
            let (a, b) = (Key::new(&Bytes::from(lo)), Key::new(&Bytes::from(hi)));
            assert_eq!(a.cmp(&b), std::cmp::Ordering::Less, "{lo:?} < {hi:?}");
            assert!(b > a && a != b, "{lo:?} < {hi:?}");
        }
    }

    fn hash_of<T: std::hash::Hash + ?Sized>(x: &T) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(x)
    }

    proptest! {
        #[test]
        fn keys_compare_and_hash_as_their_bytes(
            a in key_bytes(),
            b in key_bytes(),
            cut in 0..INLINE_KEY_BYTES + 3,
            zeros in 0usize..3,
        ) {
            // And `a` against a prefix of itself padded with zeros, which inline keys hold.
            let mut c = a[..cut.min(a.len())].to_vec();
            c.resize(c.len() + zeros, 0);
            for (x, y) in [(&a, &b), (&a, &c), (&c, &a)] {
                let (kx, ky) = (Key::new(&Bytes::from(&x[..])), Key::new(&Bytes::from(&y[..])));
                prop_assert_eq!(kx.cmp(&ky), x.cmp(y));
                prop_assert_eq!(kx == ky, x == y);
                prop_assert_eq!(hash_of(&kx), hash_of(&x[..]));
            }
        }
    }
}
