//! A fault-injecting disk of several files, each usable as a redb storage backend (as
//! redb's `tests/crash_consistency.rs`): it tracks which written bytes were synced, can
//! crash or fail at any I/O operation (counted across all files), and builds the image
//! a crash would leave — per file, the synced bytes plus a random part of the unsynced
//! writes, the last one possibly torn.

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

#[derive(Debug, Default, Clone)]
struct File {
    current: Vec<u8>,
    synced: Vec<u8>,
    unsynced: Vec<Unsynced>,
}

#[derive(Debug, Default)]
struct Disk {
    files: Vec<File>,
    ops: u64,
    fault_at: Option<(u64, Fault)>,
    crashed: bool,
}

/// A shared disk; every backend handle made from it sees the same bytes.
#[derive(Debug, Clone, Default)]
pub struct FaultyDisk(Arc<Mutex<Disk>>);

impl FaultyDisk {
    /// A disk holding `images` (one per file) as fully synced bytes.
    pub fn with_image(images: Vec<Vec<u8>>) -> Self {
        let files = images
            .into_iter()
            .map(|image| File {
                current: image.clone(),
                synced: image,
                unsynced: Vec::new(),
            })
            .collect();
        Self(Arc::new(Mutex::new(Disk {
            files,
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

    /// A redb storage backend on file `file` of this disk.
    pub fn storage(&self, file: usize) -> Storage {
        let mut d = self.0.lock().unwrap();
        if d.files.len() <= file {
            d.files.resize(file + 1, File::default());
        }
        Storage(self.clone(), file)
    }

    /// The bytes written so far, per file, as if all were synced.
    pub fn files(&self) -> Vec<Vec<u8>> {
        let d = self.0.lock().unwrap();
        d.files.iter().map(|f| f.current.clone()).collect()
    }

    /// The bytes a crash leaves, per file: synced bytes, then each unsynced operation
    /// kept with some chance, in order; a kept write may be torn to a prefix.
    pub fn crash_image(&self, rng: &mut Rng) -> Vec<Vec<u8>> {
        let d = self.0.lock().unwrap();
        d.files.iter().map(|f| f.crash_image(rng)).collect()
    }
}

impl File {
    fn crash_image(&self, rng: &mut Rng) -> Vec<u8> {
        let mut image = self.synced.clone();
        let n = self.unsynced.len();
        for (i, op) in self.unsynced.iter().enumerate() {
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

/// One file of a [`FaultyDisk`], as redb storage.
#[derive(Debug)]
pub struct Storage(FaultyDisk, usize);

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

impl semel::storage::FileStorage for Storage {
    fn len(&self) -> Result<u64, std::io::Error> {
        let d = self.step("len")?;
        Ok(u64::try_from(d.files[self.1].current.len()).unwrap())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let d = self.step("read")?;
        let start = usize::try_from(offset).unwrap();
        let src = d.files[self.1]
            .current
            .get(start..start + out.len())
            .ok_or_else(|| std::io::Error::other("read past the end"))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut d = self.step("set_len")?;
        let f = &mut d.files[self.1];
        f.current.resize(usize::try_from(len).unwrap(), 0);
        f.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut d = self.step("sync_data")?;
        let f = &mut d.files[self.1];
        f.synced = f.current.clone();
        f.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut d = self.step("write")?;
        let f = &mut d.files[self.1];
        let start = usize::try_from(offset).unwrap();
        let end = start + data.len();
        if f.current.len() < end {
            f.current.resize(end, 0);
        }
        f.current[start..end].copy_from_slice(data);
        f.unsynced.push(Unsynced::Write(offset, data.to_vec()));
        Ok(())
    }
}
