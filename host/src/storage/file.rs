//! [`FileStorage`]: the file a backend writes through — offsets, lengths and syncs, no
//! more. The write-ahead log and redb both take one, so tests can give them a
//! fault-injecting disk; redb sees it through a private adapter, so no redb type is part
//! of Semel's interface.

use std::fmt;
use std::io;

/// A random-access file, as the write-ahead log and redb use it (the same methods as
/// redb's own storage trait, so the adapter only forwards).
#[allow(
    clippy::len_without_is_empty,
    reason = "a file's length, as redb's trait has it"
)]
pub trait FileStorage: fmt::Debug + Send + Sync + 'static {
    /// Its length in bytes.
    ///
    /// # Errors
    /// When the file cannot be read.
    fn len(&self) -> io::Result<u64>;

    /// Fills `out` with the bytes at `offset`.
    ///
    /// # Errors
    /// When the bytes cannot be read (or lie past the end).
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()>;

    /// Sets its length, zero-filling when it grows.
    ///
    /// # Errors
    /// When the file cannot be resized.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// When the sync fails: the writes since the last sync may be lost.
    fn sync_data(&self) -> io::Result<()>;

    /// Writes `data` at `offset`.
    ///
    /// # Errors
    /// When the write fails.
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// A [`FileStorage`] as redb's storage backend.
#[derive(Debug)]
pub(crate) struct RedbFile(pub Box<dyn FileStorage>);

impl redb::StorageBackend for RedbFile {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.0.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write(offset, data)
    }
}

/// A file in memory, for unit tests of what writes through a [`FileStorage`].
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct MemFile(std::sync::Mutex<Vec<u8>>);

#[cfg(test)]
impl FileStorage for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(u64::try_from(self.0.lock().unwrap().len()).unwrap())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let bytes = self.0.lock().unwrap();
        let start = usize::try_from(offset).unwrap();
        let src = bytes
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::other("read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0
            .lock()
            .unwrap()
            .resize(usize::try_from(len).unwrap(), 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut bytes = self.0.lock().unwrap();
        let start = usize::try_from(offset).unwrap();
        if bytes.len() < start + data.len() {
            bytes.resize(start + data.len(), 0);
        }
        bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}
