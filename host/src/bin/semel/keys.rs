//! Key files (interface §7): `semel keys new|list|show` and loading the key that
//! `--sign-as NAME` names. A key is one file, `<keys dir>/<NAME>.json`, mode 0600,
//! created with that mode; its format is docs/ABI.md's "Key files":
//! `{"format":"semel-key-v1","secret_key_hex":"<64 hex>","public_key_hex":"<64 hex>"}`
//! and a newline. A file that group or others may read or write is refused, as ssh
//! refuses one. Secret bytes are zeroized when dropped.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

/// The `format` field of a key file.
pub const KEY_FORMAT: &str = "semel-key-v1";

/// Key name rules: 1 to 64 of `[A-Za-z0-9_.-]`, not starting with `.`.
const KEY_NAME_MAX: usize = 64;

/// Largest key file read (a valid one is under 200 bytes).
const KEY_FILE_BYTES_MAX: u64 = 4096;

/// The keys dir: `--keys-dir`, else `$SEMEL_KEYS_DIR` (clap reads it), else
/// `~/.config/semel/keys`.
pub fn keys_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir.to_owned());
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("no keys dir: give --keys-dir or set SEMEL_KEYS_DIR or HOME"))?;
    Ok(PathBuf::from(home).join(".config/semel/keys"))
}

/// Checks a key name.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name.len() > KEY_NAME_MAX {
        "it is longer than 64 characters"
    } else if name.starts_with('.') {
        "it may not start with '.'"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed"
    } else {
        return Ok(());
    };
    bail!("key name {name:?} is invalid: {why}")
}

fn key_path(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    Ok(dir.join(format!("{name}.json")))
}

/// Makes a new key `name` in `dir` (refusing an existing one) and returns it.
pub fn create(dir: &Path, name: &str) -> anyhow::Result<SigningKey> {
    let path = key_path(dir, name)?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the keys dir {}", dir.display()))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..]).map_err(|e| anyhow!("no OS randomness for a key: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let text = Zeroizing::new(format!(
        "{{\"format\":\"{KEY_FORMAT}\",\"secret_key_hex\":\"{}\",\"public_key_hex\":\"{}\"}}\n",
        Zeroizing::new(hex::encode(&seed[..])).as_str(),
        hex::encode(key.verifying_key().as_bytes())
    ));
    // Created with mode 0600 (never readable by others, not even for a moment), and
    // never over an existing file.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow!("key {name} already exists ({})", path.display())
            }
            _ => anyhow!("cannot create key file {}: {e}", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write key file {}", path.display()))?;
    Ok(key)
}

/// Loads key `name` from `dir`, refusing a file others may read or write, and one that
/// is corrupt, naming the file and the problem.
pub fn load(dir: &Path, name: &str) -> anyhow::Result<SigningKey> {
    let path = key_path(dir, name)?;
    load_file(&path).map_err(|e| match e.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound => {
            anyhow!("no key {name}: {} does not exist", path.display())
        }
        _ => e,
    })
}

fn load_file(path: &Path) -> anyhow::Result<SigningKey> {
    let mut file = File::open(path)?;
    let mode = file
        .metadata()
        .with_context(|| format!("cannot read key file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "key file {} is accessible by group or others (mode {:03o}): refused; \
             make it private with chmod 600",
            path.display(),
            mode & 0o777
        );
    }
    let mut text = Zeroizing::new(Vec::new());
    Read::by_ref(&mut file)
        .take(KEY_FILE_BYTES_MAX + 1)
        .read_to_end(&mut text)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    parse(&text).map_err(|why| anyhow!("key file {} is corrupt: {why}", path.display()))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    secret_key_hex: String,
    public_key_hex: String,
}

fn parse(text: &[u8]) -> Result<SigningKey, String> {
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > KEY_FILE_BYTES_MAX {
        return Err(format!("it is longer than {KEY_FILE_BYTES_MAX} bytes"));
    }
    let file: KeyFile = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let secret_key_hex = Zeroizing::new(file.secret_key_hex);
    if file.format != KEY_FORMAT {
        return Err(format!(
            "format is {:?}, expected {KEY_FORMAT:?}",
            file.format
        ));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    if secret_key_hex.len() != 64 {
        return Err(format!(
            "secret_key_hex must be 64 hex digits, it has {}",
            secret_key_hex.len()
        ));
    }
    hex::decode_to_slice(secret_key_hex.as_bytes(), &mut seed[..])
        .map_err(|e| format!("secret_key_hex is not hex: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    if file.public_key_hex != hex::encode(key.verifying_key().as_bytes()) {
        return Err("public_key_hex is not the public key of secret_key_hex".into());
    }
    Ok(key)
}

/// The names of the keys in `dir`, sorted (none when it does not exist).
pub fn names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot list the keys dir {}: {e}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let file = entry.file_name();
        if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json"))
            && check_name(name).is_ok()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// A key's public description, as `keys show --json` prints it.
pub fn describe(name: &str, key: &SigningKey) -> serde_json::Value {
    let public = key.verifying_key().to_bytes();
    serde_json::json!({
        "name": name,
        "account_id": semel::account_id(&public),
        "public_key": hex::encode(public),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        check_name("alice").unwrap();
        check_name("a.b-c_1").unwrap();
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_key_file_round_trips_and_corruption_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = create(dir.path(), "k").unwrap();
        assert_eq!(load(dir.path(), "k").unwrap().to_bytes(), key.to_bytes());
        let path = dir.path().join("k.json");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = create(dir.path(), "k").unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(dir.path(), "k").unwrap_err().to_string();
        assert!(e.contains("accessible by group or others"), "{e}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(
            &path,
            b"{\"format\":\"semel-key-v1\",\"secret_key_hex\":\"00\",\"public_key_hex\":\"00\"}",
        )
        .unwrap();
        let e = load(dir.path(), "k").unwrap_err().to_string();
        assert!(
            e.contains("k.json is corrupt: secret_key_hex must be 64"),
            "{e}"
        );
        let e = load(dir.path(), "nope").unwrap_err().to_string();
        assert!(e.contains("no key nope"), "{e}");
        assert_eq!(names(dir.path()).unwrap(), vec!["k".to_owned()]);
    }
}
