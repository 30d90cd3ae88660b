//! A fault-injecting redb storage backend (as redb's `tests/crash_consistency.rs`): it
//! tracks which written bytes were synced, can crash or fail at any I/O operation, and
//! builds the disk image a crash would leave — the synced bytes plus a random part of
//! the unsynced writes, the last one possibly torn.

use std::sync::{Arc, Mutex};

/// A seeded random source (SplitMix64), so a failing seed reproduces.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone)]
enum Unsynced {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// What happens at the chosen I/O operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Everything from this operation on fails: the process "died" here.
    Crash,
    /// This one operation returns an I/O error; later ones work.
    Error,
}

#[derive(Debug, Default)]
struct Disk {
    current: Vec<u8>,
    synced: Vec<u8>,
    unsynced: Vec<Unsynced>,
    ops: u64,
    fault_at: Option<(u64, Fault)>,
    crashed: bool,
}

/// A shared disk; every backend handle made from it sees the same bytes.
#[derive(Debug, Clone, Default)]
pub struct FaultyDisk(Arc<Mutex<Disk>>);

impl FaultyDisk {
    /// A disk holding `image` as fully synced bytes.
    pub fn with_image(image: Vec<u8>) -> Self {
        Self(Arc::new(Mutex::new(Disk {
            current: image.clone(),
            synced: image,
            ..Disk::default()
        })))
    }

    /// Inject `fault` at I/O operation number `op` (counted from now, from 0).
    pub fn fault_at(&self, op: u64, fault: Fault) {
        let mut d = self.0.lock().unwrap();
        d.fault_at = Some((d.ops + op, fault));
    }

    /// I/O operations so far.
    pub fn ops(&self) -> u64 {
        self.0.lock().unwrap().ops
    }

    /// A redb storage backend on this disk.
    pub fn storage(&self) -> Storage {
        Storage(self.clone())
    }

    /// The bytes a crash leaves: synced bytes, then each unsynced operation kept with
    /// some chance, in order; a kept write may be torn to a prefix.
    pub fn crash_image(&self, rng: &mut Rng) -> Vec<u8> {
        let d = self.0.lock().unwrap();
        let mut image = d.synced.clone();
        let n = d.unsynced.len();
        for (i, op) in d.unsynced.iter().enumerate() {
            match op {
                Unsynced::SetLen(len) => {
                    if rng.chance(50) {
                        image.resize(usize::try_from(*len).unwrap(), 0);
                    }
                }
                Unsynced::Write(offset, data) => {
                    if !rng.chance(50) {
                        continue;
                    }
                    let keep = if i + 1 == n || rng.chance(10) {
                        usize::try_from(rng.below(u64::try_from(data.len()).unwrap() + 1)).unwrap()
                    } else {
                        data.len()
                    };
                    let start = usize::try_from(*offset).unwrap();
                    let end = start + keep;
                    if image.len() < end {
                        image.resize(end, 0);
                    }
                    image[start..end].copy_from_slice(&data[..keep]);
                }
            }
        }
        image
    }
}

/// The redb side of a [`FaultyDisk`].
#[derive(Debug)]
pub struct Storage(FaultyDisk);

fn io_error(what: &str) -> std::io::Error {
    std::io::Error::other(format!("injected fault at {what}"))
}

impl Storage {
    fn step(&self, what: &str) -> Result<std::sync::MutexGuard<'_, Disk>, std::io::Error> {
        let mut d = self.0.0.lock().unwrap();
        if d.crashed {
            return Err(io_error("a crashed disk"));
        }
        let op = d.ops;
        d.ops += 1;
        match d.fault_at {
            Some((at, Fault::Crash)) if at == op => {
                d.crashed = true;
                Err(io_error(what))
            }
            Some((at, Fault::Error)) if at == op => Err(io_error(what)),
            _ => Ok(d),
        }
    }
}

impl redb::StorageBackend for Storage {
    fn len(&self) -> Result<u64, std::io::Error> {
        let d = self.step("len")?;
        Ok(u64::try_from(d.current.len()).unwrap())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let d = self.step("read")?;
        let start = usize::try_from(offset).unwrap();
        let src = d
            .current
            .get(start..start + out.len())
            .ok_or_else(|| std::io::Error::other("read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut d = self.step("set_len")?;
        d.current.resize(usize::try_from(len).unwrap(), 0);
        d.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut d = self.step("sync_data")?;
        d.synced = d.current.clone();
        d.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut d = self.step("write")?;
        let start = usize::try_from(offset).unwrap();
        let end = start + data.len();
        if d.current.len() < end {
            d.current.resize(end, 0);
        }
        d.current[start..end].copy_from_slice(data);
        d.unsynced.push(Unsynced::Write(offset, data.to_vec()));
        Ok(())
    }
}
