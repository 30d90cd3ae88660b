//! Access sets (interface §5): the keys and prefixes a transaction declares it reads and
//! writes, per contract. A declared set is part of the transaction's content and is
//! enforced in every mode (`vm/context.rs` refuses an access outside it); the
//! pessimistic executor locks by it (`exec/parallel/lock_table.rs`).
//!
//! JSON: `[{"contract", "read": [SPEC…], "write": [SPEC…]}]`, SPEC being
//! `{"key_hex"}` or `{"prefix_hex"}`. A write entry allows reads too; a `storage_next`
//! walk needs a declared prefix that its own prefix starts with. The registry needs no
//! declaring.

use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer};
use crate::error::InputError;
use crate::ledger::names::check_contract_name;
use crate::limits::{ACCESS_SET_ENTRIES_MAX, KEY_BYTES_MAX};

/// One declared key, or every key with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// Exactly this key.
    Key(Vec<u8>),
    /// Every key that starts with these bytes (empty: the whole contract).
    Prefix(Vec<u8>),
}

impl KeySpec {
    /// Whether this spec covers `key`.
    pub fn covers(&self, key: &[u8]) -> bool {
        match self {
            KeySpec::Key(k) => k == key,
            KeySpec::Prefix(p) => key.starts_with(p),
        }
    }

    /// Whether this spec covers a walk over every key with `prefix`.
    pub fn covers_prefix(&self, prefix: &[u8]) -> bool {
        matches!(self, KeySpec::Prefix(p) if prefix.starts_with(p))
    }

    /// Whether some key is covered by both specs.
    pub fn overlaps(&self, other: &KeySpec) -> bool {
        match (self, other) {
            (KeySpec::Key(a), KeySpec::Key(b)) => a == b,
            (KeySpec::Prefix(p), KeySpec::Key(k)) => k.starts_with(p),
            (_, KeySpec::Prefix(p)) => self.overlaps_prefix(p),
        }
    }

    /// Whether some key is covered by both this spec and every key with `prefix`.
    pub fn overlaps_prefix(&self, prefix: &[u8]) -> bool {
        match self {
            KeySpec::Key(k) => k.starts_with(prefix),
            KeySpec::Prefix(p) => p.starts_with(prefix) || prefix.starts_with(p),
        }
    }
}

/// What a transaction declares of one contract's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContractAccess {
    /// The contract.
    pub contract: String,
    /// Keys it only reads.
    pub read: Vec<KeySpec>,
    /// Keys it writes (and may read).
    pub write: Vec<KeySpec>,
}

/// A transaction's declared access set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessSet {
    /// Per contract, in the order declared.
    pub contracts: Vec<ContractAccess>,
}

/// Why an access fell outside a declared set: the message of the revert.
pub(crate) fn undeclared(what: &str, contract: &str, key: &[u8]) -> String {
    format!(
        "undeclared access: {what} of contract {contract}, key {} (hex {}), is outside the transaction's access set",
        crate::text::printable(&String::from_utf8_lossy(key)),
        hex::encode(key)
    )
}

impl AccessSet {
    /// Entries declared: keys and prefixes, read and write, over every contract.
    pub fn entries(&self) -> usize {
        self.contracts
            .iter()
            .map(|c| c.read.len() + c.write.len())
            .sum()
    }

    fn of<'a>(&'a self, contract: &'a str) -> impl Iterator<Item = &'a ContractAccess> + 'a {
        self.contracts
            .iter()
            .filter(move |c| c.contract == contract)
    }

    /// Whether `key` of `contract` may be read.
    pub fn allows_read(&self, contract: &str, key: &[u8]) -> bool {
        self.of(contract)
            .any(|c| c.read.iter().chain(&c.write).any(|s| s.covers(key)))
    }

    /// Whether `key` of `contract` may be written.
    pub fn allows_write(&self, contract: &str, key: &[u8]) -> bool {
        self.of(contract)
            .any(|c| c.write.iter().any(|s| s.covers(key)))
    }

    /// Whether the keys of `contract` with `prefix` may be walked.
    pub fn allows_scan(&self, contract: &str, prefix: &[u8]) -> bool {
        self.of(contract).any(|c| {
            c.read
                .iter()
                .chain(&c.write)
                .any(|s| s.covers_prefix(prefix))
        })
    }

    /// Checks names, key sizes and the entry count.
    ///
    /// # Errors
    /// [`InputError::Json`] naming the entry.
    pub fn check(&self) -> Result<(), InputError> {
        let entries = self.entries();
        if entries > ACCESS_SET_ENTRIES_MAX {
            return Err(InputError::Json(format!(
                "the access set has {entries} entries, more than ACCESS_SET_ENTRIES_MAX ({ACCESS_SET_ENTRIES_MAX})"
            )));
        }
        for (i, c) in self.contracts.iter().enumerate() {
            check_contract_name(&c.contract)
                .map_err(|e| InputError::Json(format!("access entry {i}: {e}")))?;
            for (kind, specs) in [("read", &c.read), ("write", &c.write)] {
                for (j, s) in specs.iter().enumerate() {
                    let (KeySpec::Key(b) | KeySpec::Prefix(b)) = s;
                    if b.len() > KEY_BYTES_MAX {
                        return Err(InputError::Json(format!(
                            "access entry {i} ({}), {kind} {j}: {} bytes, more than KEY_BYTES_MAX ({KEY_BYTES_MAX})",
                            c.contract,
                            b.len()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends the set to a content encoding: per contract its name, then its read and
    /// write specs, each `[kind u8: 0 key, 1 prefix][bytes]`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        let count = |n: usize| u32::try_from(n).expect("ACCESS_SET_ENTRIES_MAX is small");
        w.u32(count(self.contracts.len()));
        for c in &self.contracts {
            w.str(&c.contract);
            for specs in [&c.read, &c.write] {
                w.u32(count(specs.len()));
                for s in specs {
                    match s {
                        KeySpec::Key(k) => w.u8(0).bytes(k),
                        KeySpec::Prefix(p) => w.u8(1).bytes(p),
                    };
                }
            }
        }
    }

    /// Reads [`AccessSet::encode`]'s bytes.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut contracts = Vec::new();
        for _ in 0..r.u32()? {
            let contract = r.str()?.to_owned();
            let mut lists = [Vec::new(), Vec::new()];
            for list in &mut lists {
                for _ in 0..r.u32()? {
                    let kind = r.u8()?;
                    let bytes = r.bytes()?.to_vec();
                    list.push(match kind {
                        0 => KeySpec::Key(bytes),
                        1 => KeySpec::Prefix(bytes),
                        _ => return Err(DecodeError("bad access spec kind")),
                    });
                }
            }
            let [read, write] = lists;
            contracts.push(ContractAccess {
                contract,
                read,
                write,
            });
        }
        Ok(Self { contracts })
    }

    /// Reads the JSON form (the value of a transaction's `"access"`).
    ///
    /// # Errors
    /// [`InputError::Json`] naming the entry and what is wrong with it.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InputError> {
        let entries = value.as_array().ok_or_else(|| {
            InputError::Json("\"access\" must be an array of per-contract entries".into())
        })?;
        let mut contracts = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let raw: RawContractAccess = serde_json::from_value(e.clone())
                .map_err(|err| InputError::Json(format!("access entry {i}: {err}")))?;
            let specs = |kind: &str, list: Vec<RawSpec>| {
                list.into_iter()
                    .enumerate()
                    .map(|(j, s)| {
                        s.spec().map_err(|why| {
                            InputError::Json(format!(
                                "access entry {i} ({}), {kind} {j}: {why}",
                                raw.contract
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            contracts.push(ContractAccess {
                read: specs("read", raw.read)?,
                write: specs("write", raw.write)?,
                contract: raw.contract.clone(),
            });
        }
        let set = Self { contracts };
        set.check()?;
        Ok(set)
    }

    /// The JSON form, as `simulate` prints it.
    pub fn to_json(&self) -> serde_json::Value {
        let spec = |s: &KeySpec| match s {
            KeySpec::Key(k) => RawSpec {
                key_hex: Some(hex::encode(k)),
                prefix_hex: None,
            },
            KeySpec::Prefix(p) => RawSpec {
                key_hex: None,
                prefix_hex: Some(hex::encode(p)),
            },
        };
        let out: Vec<_> = self
            .contracts
            .iter()
            .map(|c| RawContractAccess {
                contract: c.contract.clone(),
                read: c.read.iter().map(spec).collect(),
                write: c.write.iter().map(spec).collect(),
            })
            .collect();
        serde_json::to_value(out).expect("access sets serialize")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContractAccess {
    contract: String,
    #[serde(default)]
    read: Vec<RawSpec>,
    #[serde(default)]
    write: Vec<RawSpec>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    key_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix_hex: Option<String>,
}

impl RawSpec {
    fn spec(self) -> Result<KeySpec, String> {
        let decode = |field: &str, h: &str| {
            hex::decode(h).map_err(|_| format!("\"{field}\" {h:?} is not hex"))
        };
        match (self.key_hex, self.prefix_hex) {
            (Some(k), None) => Ok(KeySpec::Key(decode("key_hex", &k)?)),
            (None, Some(p)) => Ok(KeySpec::Prefix(decode("prefix_hex", &p)?)),
            (Some(_), Some(_)) => Err("give \"key_hex\" or \"prefix_hex\", not both".into()),
            (None, None) => Err("needs \"key_hex\" or \"prefix_hex\"".into()),
        }
    }
}

/// Records the accesses a run makes, in the form of an access set: what `simulate`
/// prints, ready to declare.
#[derive(Debug, Default)]
pub(crate) struct AccessLog {
    /// `(contract, spec, written)`, in first-use order.
    seen: Vec<(String, KeySpec, bool)>,
}

impl AccessLog {
    pub(crate) fn note(&mut self, contract: &str, spec: KeySpec, write: bool) {
        match self
            .seen
            .iter_mut()
            .find(|(c, s, _)| c == contract && *s == spec)
        {
            Some(entry) => entry.2 |= write,
            None => self.seen.push((contract.to_owned(), spec, write)),
        }
    }

    /// The set the run used: per contract, walked prefixes and keys read but never
    /// written under `read`, written keys under `write`. A key covered by a walked
    /// prefix is still listed: a reader may narrow either.
    pub(crate) fn to_set(&self) -> AccessSet {
        let mut set = AccessSet::default();
        for (contract, spec, write) in &self.seen {
            let i = match set.contracts.iter().position(|c| &c.contract == contract) {
                Some(i) => i,
                None => {
                    set.contracts.push(ContractAccess {
                        contract: contract.clone(),
                        ..ContractAccess::default()
                    });
                    set.contracts.len() - 1
                }
            };
            let c = &mut set.contracts[i];
            if *write {
                c.write.push(spec.clone());
            } else {
                c.read.push(spec.clone());
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AccessSet, InputError> {
        AccessSet::from_json(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn specs_cover_keys_and_walks() {
        let set =
            parse(r#"[{"contract":"t","read":[{"key_hex":"61"}],"write":[{"prefix_hex":"62"}]}]"#)
                .unwrap();
        assert!(set.allows_read("t", b"a") && !set.allows_write("t", b"a"));
        assert!(set.allows_write("t", b"bx") && set.allows_read("t", b"b"));
        assert!(!set.allows_read("t", b"c") && !set.allows_read("u", b"a"));
        assert!(set.allows_scan("t", b"b") && set.allows_scan("t", b"bz"));
        assert!(!set.allows_scan("t", b"") && !set.allows_scan("t", b"a"));
        let mut w = Writer::new();
        set.encode(&mut w);
        let bytes = w.finish();
        assert_eq!(AccessSet::decode(&mut Reader::new(&bytes)).unwrap(), set);
        assert_eq!(parse(&set.to_json().to_string()).unwrap(), set);
        assert!(KeySpec::Prefix(b"a".to_vec()).overlaps(&KeySpec::Key(b"ab".to_vec())));
        assert!(KeySpec::Prefix(b"ab".to_vec()).overlaps(&KeySpec::Prefix(b"a".to_vec())));
        assert!(!KeySpec::Key(b"b".to_vec()).overlaps(&KeySpec::Prefix(b"a".to_vec())));
    }

    #[test]
    fn malformed_sets_are_refused_naming_the_entry() {
        let err = |json: &str| parse(json).unwrap_err().to_string();
        assert!(err(r#"[{"contract":"t","read":[{"key_hex":"zz"}]}]"#).contains("read 0"));
        assert!(err(r#"[{"contract":"t","write":[{}]}]"#).contains("write 0"));
        assert!(
            err(r#"[{"contract":"t","read":[{"key_hex":"","prefix_hex":""}]}]"#)
                .contains("not both")
        );
        assert!(err(r#"[{"contract":"t","reads":[]}]"#).contains("unknown field"));
        assert!(err(r#"[{"contract":"bad name"}]"#).contains("access entry 0"));
        assert!(err(r#"{"contract":"t"}"#).contains("array"));
        let many: Vec<_> = (0..=ACCESS_SET_ENTRIES_MAX)
            .map(|i| format!(r#"{{"key_hex":"{i:08x}"}}"#))
            .collect();
        let json = format!(r#"[{{"contract":"t","read":[{}]}}]"#, many.join(","));
        assert!(err(&json).contains("ACCESS_SET_ENTRIES_MAX"));
    }
}
