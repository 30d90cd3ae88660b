//! The explicit binary encoding of everything Semel writes to storage: little-endian
//! fixed-width integers and `u32`-length-prefixed byte strings.
//!
//! Nothing here depends on the host's endianness or on a serialization library's
//! defaults, so a data dir reads the same on any machine and any build.

use thiserror::Error;

/// A stored record that does not decode: the data dir is corrupt or foreign.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("corrupt record: {0}")]
pub struct DecodeError(pub &'static str);

/// Appends encoded fields to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty writer with room for `bytes`: an encoding sized ahead grows no buffer.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
        }
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// A `u32`, little-endian.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A `u64`, little-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Bytes of a length known to the reader, unprefixed.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A byte string with a `u32` length prefix.
    ///
    /// # Panics
    /// If `v` is 4 GiB or longer; every caller holds values far below that limit.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("encoded field below 4 GiB");
        self.u32(len);
        self.buf.extend_from_slice(v);
        self
    }
    /// A UTF-8 string with a `u32` length prefix.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    /// An optional byte string: a `0`/`1` tag, then the bytes.
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(b) => self.u8(1).bytes(b),
        }
    }
    /// The encoded bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Reads fields written by [`Writer`], failing on any truncation or bad tag.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| DecodeError("u32"))?,
        ))
    }
    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| DecodeError("u64"))?,
        ))
    }
    /// `n` unprefixed bytes.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?.try_into().map_err(|_| DecodeError("fixed"))
    }
    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError("length"))?;
        self.take(len)
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError("invalid UTF-8"))
    }
    /// An optional byte string.
    pub fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes()?)),
            _ => Err(DecodeError("bad option tag")),
        }
    }
    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Fails unless every byte was read: trailing bytes mean a foreign format.
    pub fn end(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let enc = Writer::new()
            .u8(7)
            .u32(0xdead_beef)
            .u64(u64::MAX - 1)
            .str("héllo")
            .opt_bytes(None)
            .opt_bytes(Some(b"x"))
            .fixed(&[1, 2])
            .finish();
        let mut r = Reader::new(&enc);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert_eq!(r.u64().unwrap(), u64::MAX - 1);
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(r.opt_bytes().unwrap(), None);
        assert_eq!(r.opt_bytes().unwrap(), Some(&b"x"[..]));
        assert_eq!(r.fixed::<2>().unwrap(), [1, 2]);
        r.end().unwrap();
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let enc = Writer::new().str("abc").finish();
        assert!(Reader::new(&enc[..5]).str().is_err());
        let mut r = Reader::new(&enc);
        r.bytes().unwrap();
        r.end().unwrap();
        let mut long = enc.clone();
        long.push(0);
        let mut r = Reader::new(&long);
        r.bytes().unwrap();
        assert_eq!(r.end(), Err(DecodeError("trailing bytes")));
        assert_eq!(
            Reader::new(&[2]).opt_bytes(),
            Err(DecodeError("bad option tag"))
        );
    }
}
