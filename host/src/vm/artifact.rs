//! Compiled artifacts on disk, one file per code hash and engine compatibility, so that
//! a process reopening a data dir deserializes instead of recompiling.
//!
//! A file is bound to the code it is a compile of and to the engine it came from, not
//! trusted by its name (two files swapped, or one copied from elsewhere, must not run
//! another contract's code):
//!
//! ```text
//! "SEMELCW2" | code hash (32) | compat length u8 | compat | MAC (32) | wasmtime's bytes
//! ```
//!
//! The MAC is BLAKE3 keyed with the cache's secret (`ARTIFACT_KEY_FILE`, 32 random bytes
//! made with the folder, mode 0600) over the code hash, the compat string and the bytes.
//! A file whose hash, compat or MAC does not match is reported missing (then recompiled
//! and overwritten), never handed to `Module::deserialize`.

use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

use crate::types::CodeHash;

/// First bytes of a disk artifact.
const ARTIFACT_MAGIC: &[u8; 8] = b"SEMELCW2";
/// The cache's secret key, inside the cache folder.
const ARTIFACT_KEY_FILE: &str = "artifact.key";
/// Bytes of the key.
const ARTIFACT_KEY_BYTES: usize = 32;

/// A folder of artifacts for one engine compatibility.
#[derive(Debug)]
pub(crate) struct Artifacts {
    dir: PathBuf,
    compat: String,
    key: [u8; ARTIFACT_KEY_BYTES],
}

impl Artifacts {
    /// Artifacts in `dir` (created if missing, with its key) for engines of
    /// compatibility `compat`.
    ///
    /// # Errors
    /// When the folder or its key cannot be made or read, or the key file is not
    /// `ARTIFACT_KEY_BYTES` long.
    pub fn open(dir: PathBuf, compat: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let key = load_or_make_key(&dir.join(ARTIFACT_KEY_FILE))?;
        Ok(Self { dir, compat, key })
    }

    /// Where the artifact of `hash` lives.
    pub fn path(&self, hash: &CodeHash) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.compat))
    }

    fn mac(&self, hash: &CodeHash, body: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&hash.0)
            .update(&[u8::try_from(self.compat.len()).unwrap_or(u8::MAX)])
            .update(self.compat.as_bytes())
            .update(body);
        *h.finalize().as_bytes()
    }

    /// The module stored for `hash`, if its file is there, intact, and a compile of that
    /// code by an engine of this compatibility.
    pub fn load(&self, engine: &Engine, hash: &CodeHash) -> Option<Module> {
        let bytes = std::fs::read(self.path(hash)).ok()?;
        let rest = bytes.strip_prefix(ARTIFACT_MAGIC.as_slice())?;
        let (stored_hash, rest) = rest.split_at_checked(32)?;
        let (&compat_len, rest) = rest.split_first()?;
        let (compat, rest) = rest.split_at_checked(usize::from(compat_len))?;
        let (mac, body) = rest.split_at_checked(32)?;
        if stored_hash != hash.0 || compat != self.compat.as_bytes() {
            return None;
        }
        // Constant-time, as the key is a secret.
        if blake3::Hash::from(self.mac(hash, body))
            != blake3::Hash::from(<[u8; 32]>::try_from(mac).ok()?)
        {
            return None;
        }
        // SAFETY: `body` is exactly what `Module::serialize` wrote for the compile of
        // `hash` by an engine with this compatibility: the MAC under this cache's key
        // covers all three, so it is not a truncated, corrupt, swapped or foreign file.
        unsafe { Module::deserialize(engine, body) }.ok()
    }

    /// Stores `module`, the compile of `hash`, as its artifact (written aside, then
    /// renamed).
    ///
    /// # Errors
    /// When it cannot be serialized or written; that only costs a later recompile.
    pub fn store(&self, hash: &CodeHash, module: &Module) -> std::io::Result<()> {
        let body = module.serialize().map_err(std::io::Error::other)?;
        let compat = self.compat.as_bytes();
        let compat_len = u8::try_from(compat.len()).map_err(std::io::Error::other)?;
        let mut file = Vec::with_capacity(body.len() + 8 + 32 + 1 + compat.len() + 32);
        file.extend_from_slice(ARTIFACT_MAGIC);
        file.extend_from_slice(&hash.0);
        file.push(compat_len);
        file.extend_from_slice(compat);
        file.extend_from_slice(&self.mac(hash, &body));
        file.extend_from_slice(&body);
        let path = self.path(hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &file)?;
        std::fs::rename(&tmp, path)
    }
}

/// The key at `path`, made (32 random bytes, mode 0600, written aside and renamed) when
/// there is none.
fn load_or_make_key(path: &Path) -> std::io::Result<[u8; ARTIFACT_KEY_BYTES]> {
    match std::fs::read(path) {
        Ok(bytes) => <[u8; ARTIFACT_KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
            std::io::Error::other(format!(
                "{} is {} bytes, not {ARTIFACT_KEY_BYTES}: remove it (the artifacts are then \
                 recompiled)",
                path.display(),
                bytes.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0; ARTIFACT_KEY_BYTES];
            getrandom::fill(&mut key).map_err(std::io::Error::other)?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            {
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&key)?;
            }
            // Another process may have made one meanwhile: the first rename wins, and
            // both read the winner's.
            if std::fs::hard_link(&tmp, path).is_err() && !path.exists() {
                std::fs::rename(&tmp, path)?;
            }
            let _ = std::fs::remove_file(&tmp);
            load_or_make_key(path)
        }
        Err(e) => Err(e),
    }
}
