//! The write-ahead log's file on disk: block-aligned writes go around the page cache.
//!
//! Measured on the reference VM (`python3 benches/fsync_floor.py --direct`), a 4 KiB
//! `O_DIRECT` write plus fdatasync takes about 125 µs at the median, against about
//! 145 µs for the same bytes written through the page cache: the kernel neither copies
//! the bytes nor schedules a page writeback inside the sync. The log therefore writes
//! whole [`WAL_BLOCK_BYTES`] blocks, and this file sends those through a second, direct
//! handle. Everything else (reads at open, unaligned writes, length) uses the ordinary
//! handle, and where the file system refuses direct I/O (tmpfs, some FUSE mounts) every
//! write does; the bytes on disk are the same either way.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::storage::FileStorage;

/// The unit of the log's direct writes, in bytes: offsets, lengths and the buffer's
/// address are multiples of it. 4 KiB is the page size and a multiple of every logical
/// block size direct I/O asks for.
pub(crate) const WAL_BLOCK_BYTES: usize = 4096;
/// Bytes of one direct write at most: a larger write (the log growing by megabytes of
/// zeros) goes in pieces, so the aligned buffer stays this small.
pub(crate) const WAL_DIRECT_WRITE_BYTES: usize = 256 << 10;

/// The log's file: an ordinary handle, and a direct one while the file system takes it.
#[derive(Debug)]
pub(crate) struct WalFile {
    file: File,
    direct: Option<File>,
    /// Cleared at the first direct write the file system refuses; from then on every
    /// write goes through the page cache.
    direct_ok: AtomicBool,
    /// A block-aligned copy of the bytes of a direct write (`Vec` gives no alignment).
    buf: Mutex<Vec<u8>>,
}

impl WalFile {
    /// Opens (creating) the log at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened for reading and writing.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        let file = options.open(path)?;
        let direct = open_direct(path);
        Ok(Self {
            file,
            direct_ok: AtomicBool::new(direct.is_some()),
            direct,
            buf: Mutex::new(Vec::new()),
        })
    }

    fn write_direct(&self, direct: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut buf = self
            .buf
            .lock()
            .map_err(|_| io::Error::other("log buffer lock poisoned"))?;
        let piece = data.len().min(WAL_DIRECT_WRITE_BYTES);
        if buf.len() < piece + WAL_BLOCK_BYTES {
            buf.resize(piece + WAL_BLOCK_BYTES, 0);
        }
        let start = buf.as_ptr().align_offset(WAL_BLOCK_BYTES);
        let mut at = offset;
        for chunk in data.chunks(WAL_DIRECT_WRITE_BYTES) {
            let aligned = &mut buf[start..start + chunk.len()];
            aligned.copy_from_slice(chunk);
            direct.write_all_at(aligned, at)?;
            at += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

fn aligned(offset: u64, len: usize) -> bool {
    let block = WAL_BLOCK_BYTES as u64;
    offset.is_multiple_of(block) && len.is_multiple_of(WAL_BLOCK_BYTES)
}

impl FileStorage for WalFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(direct) = &self.direct
            && self.direct_ok.load(Ordering::Relaxed)
            && aligned(offset, data.len())
        {
            match self.write_direct(direct, offset, data) {
                // EINVAL: this file system takes the open flag but not the write.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct_ok.store(false, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        self.file.write_all_at(data, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_unaligned_writes_land_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let f = WalFile::open(&dir.path().join("log")).unwrap();
        let block: Vec<u8> = (0..WAL_BLOCK_BYTES)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        // More than one direct piece, then a block over it, then bytes off the blocks.
        f.write(0, &vec![7; WAL_DIRECT_WRITE_BYTES + 3 * WAL_BLOCK_BYTES])
            .unwrap();
        f.write(0, &vec![0; 3 * WAL_BLOCK_BYTES]).unwrap();
        f.write(WAL_BLOCK_BYTES as u64, &block).unwrap();
        f.write(5, b"hello").unwrap();
        f.sync_data().unwrap();
        let len = WAL_DIRECT_WRITE_BYTES + 3 * WAL_BLOCK_BYTES;
        assert_eq!(f.len().unwrap(), len as u64);
        let mut last = vec![0u8; WAL_BLOCK_BYTES];
        f.read((len - WAL_BLOCK_BYTES) as u64, &mut last).unwrap();
        assert!(last.iter().all(|&b| b == 7));
        let mut out = vec![0u8; 3 * WAL_BLOCK_BYTES];
        f.read(0, &mut out).unwrap();
        assert_eq!(&out[5..10], b"hello");
        assert_eq!(&out[WAL_BLOCK_BYTES..2 * WAL_BLOCK_BYTES], &block[..]);
        assert!(out[2 * WAL_BLOCK_BYTES..].iter().all(|&b| b == 0));
        // A second handle (a reopen) reads the same bytes.
        let again = WalFile::open(&dir.path().join("log")).unwrap();
        let mut out2 = vec![0u8; 3 * WAL_BLOCK_BYTES];
        again.read(0, &mut out2).unwrap();
        assert_eq!(out, out2);
    }
}
