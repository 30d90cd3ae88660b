//! Compiled artifacts on disk, one file per code hash and engine compatibility, so that
//! a process reopening a data dir deserializes instead of recompiling.
//!
//! A file is `ARTIFACT_MAGIC`, the BLAKE3 checksum of the rest, then wasmtime's
//! serialized module. It is checked before `Module::deserialize` sees it; a corrupt or
//! foreign one is reported missing (then recompiled and overwritten), never loaded.

use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

use crate::types::CodeHash;

/// First bytes of a disk artifact, then its BLAKE3 checksum, then wasmtime's bytes.
const ARTIFACT_MAGIC: &[u8; 8] = b"SEMELCW1";

/// A folder of artifacts for one engine compatibility.
#[derive(Debug)]
pub(crate) struct Artifacts {
    dir: PathBuf,
    compat: String,
}

impl Artifacts {
    /// Artifacts in `dir` (created if missing) for engines of compatibility `compat`.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn open(dir: PathBuf, compat: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, compat })
    }

    /// Where the artifact of `hash` lives.
    pub fn path(&self, hash: &CodeHash) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.compat))
    }

    /// The module stored for `hash`, if its file is there and intact.
    pub fn load(&self, engine: &Engine, hash: &CodeHash) -> Option<Module> {
        let bytes = std::fs::read(self.path(hash)).ok()?;
        let rest = bytes.strip_prefix(ARTIFACT_MAGIC.as_slice())?;
        let (sum, body) = rest.split_at_checked(32)?;
        if blake3::hash(body).as_bytes() != sum {
            return None;
        }
        // SAFETY: `body` is exactly what `Module::serialize` wrote for an engine with
        // this compatibility hash (it is in the file name) and it passed its checksum,
        // so it is not a truncated, corrupt or foreign file.
        unsafe { Module::deserialize(engine, body) }.ok()
    }

    /// Stores `module` as the artifact of `hash` (written aside, then renamed).
    ///
    /// # Errors
    /// When it cannot be serialized or written; that only costs a later recompile.
    pub fn store(&self, hash: &CodeHash, module: &Module) -> std::io::Result<()> {
        let body = module.serialize().map_err(std::io::Error::other)?;
        let mut file = Vec::with_capacity(body.len() + 40);
        file.extend_from_slice(ARTIFACT_MAGIC);
        file.extend_from_slice(blake3::hash(&body).as_bytes());
        file.extend_from_slice(&body);
        let path = self.path(hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        write_then_rename(&tmp, &path, &file)
    }
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(tmp, bytes)?;
    std::fs::rename(tmp, path)
}
