//! The JSON shapes of the host's outputs (interface §3–§4), derived from these structs
//! so that the CLI and a server print the same: byte strings as `…_hex`, and beside them
//! as text when they are UTF-8. Receipts have theirs in `ledger/receipt.rs`.

use serde::{Serialize, Serializer};

use super::{ContractInfo, HistoryEntry, PruneReport, QueryOutput, VerifyReport};
use crate::storage::Entry;

#[derive(Serialize)]
struct QueryJson<'a> {
    version: u64,
    output_hex: String,
    output: Option<&'a str>,
}

impl Serialize for QueryOutput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        QueryJson {
            version: self.version,
            output_hex: hex::encode(&self.output),
            output: std::str::from_utf8(&self.output).ok(),
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct EntryJson<'a> {
    key_hex: String,
    key: Option<&'a str>,
    value_hex: String,
    value: Option<&'a str>,
}

/// A state listing (`Host::state`'s entries) as JSON: an array of
/// `{key_hex, key, value_hex, value}`.
#[derive(Debug, Clone, Copy)]
pub struct StateListing<'a>(pub &'a [Entry]);

impl Serialize for StateListing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(k, v)| EntryJson {
            key_hex: hex::encode(k),
            key: std::str::from_utf8(k).ok(),
            value_hex: hex::encode(v),
            value: std::str::from_utf8(v).ok(),
        }))
    }
}

#[derive(Serialize)]
struct ContractJson<'a> {
    name: &'a str,
    code_hash: String,
    version: u64,
}

impl Serialize for ContractInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ContractJson {
            name: &self.name,
            code_hash: self.code_hash.to_string(),
            version: self.version,
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    version: u64,
    tx_id: String,
    status: &'static str,
    calls: &'a [String],
}

impl Serialize for HistoryEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        HistoryJson {
            version: self.version,
            tx_id: self.tx_id.to_string(),
            status: self.status.as_str(),
            calls: &self.calls,
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct VerifyJson {
    ok: bool,
    transactions: u64,
    state_root: String,
}

impl Serialize for VerifyReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        VerifyJson {
            ok: true,
            transactions: self.transactions,
            state_root: self.state_root.to_string(),
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct PruneJson {
    horizon: u64,
    rows_removed: u64,
    latest: u64,
}

impl Serialize for PruneReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PruneJson {
            horizon: self.horizon,
            rows_removed: self.rows_removed,
            latest: self.latest,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ledger::receipt::Status;
    use crate::types::{CodeHash, StateRoot};

    fn json(v: &impl Serialize) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn every_listing_has_the_interface_shape_in_order() {
        let q = QueryOutput {
            version: 3,
            output: b"7".to_vec(),
        };
        assert_eq!(json(&q), r#"{"version":3,"output_hex":"37","output":"7"}"#);
        let entries = [(b"k".to_vec(), vec![0xff])];
        assert_eq!(
            json(&StateListing(&entries)),
            r#"[{"key_hex":"6b","key":"k","value_hex":"ff","value":null}]"#
        );
        let c = ContractInfo {
            name: "t".into(),
            code_hash: CodeHash([0xab; 32]),
            version: 1,
        };
        assert_eq!(
            json(&c),
            format!(
                r#"{{"name":"t","code_hash":"{}","version":1}}"#,
                "ab".repeat(32)
            )
        );
        let h = HistoryEntry {
            version: 2,
            tx_id: Uuid::nil(),
            status: Status::Reverted,
            calls: vec!["t.m".into()],
        };
        assert_eq!(
            json(&h),
            r#"{"version":2,"tx_id":"00000000-0000-0000-0000-000000000000","status":"reverted","calls":["t.m"]}"#
        );
        let v = VerifyReport {
            transactions: 4,
            state_root: StateRoot([1; 32]),
        };
        assert_eq!(
            json(&v),
            format!(
                r#"{{"ok":true,"transactions":4,"state_root":"{}"}}"#,
                "01".repeat(32)
            )
        );
        let p = PruneReport {
            horizon: 5,
            rows_removed: 9,
            latest: 12,
        };
        assert_eq!(json(&p), r#"{"horizon":5,"rows_removed":9,"latest":12}"#);
    }
}
