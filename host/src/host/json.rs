//! The JSON shapes of the host's outputs (interface §3–§4), derived from these structs
//! so that the CLI and a server print the same: byte strings as `…_hex`, and beside them
//! as text when they are UTF-8. Receipts have theirs in `ledger/receipt.rs`.

use serde::{Serialize, Serializer};

use super::{ContractInfo, HistoryEntry, PruneReport, QueryOutput, StoreInfo, VerifyReport};
use crate::ledger::events::EventRecord;
use crate::storage::Entry;

/// A query's output.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = QueryOutput)]
pub struct QueryJson<'a> {
    /// The version it read.
    pub version: u64,
    /// The output, hex.
    pub output_hex: String,
    /// The output as UTF-8 text, or null.
    #[schema(value_type = Option<String>)]
    pub output: Option<&'a str>,
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

/// A state entry.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StateEntry)]
pub struct EntryJson<'a> {
    /// The key, hex.
    pub key_hex: String,
    /// The key as UTF-8 text, or null.
    #[schema(value_type = Option<String>)]
    pub key: Option<&'a str>,
    /// The value, hex.
    pub value_hex: String,
    /// The value as UTF-8 text, or null.
    #[schema(value_type = Option<String>)]
    pub value: Option<&'a str>,
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

/// A deployed contract.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Contract)]
pub struct ContractJson<'a> {
    /// Its name.
    #[schema(value_type = String)]
    pub name: &'a str,
    /// Its code's BLAKE3 hash, hex.
    pub code_hash: String,
    /// The version its deploy took.
    pub version: u64,
    /// The account that may migrate it and change its admin; null: nobody (interface §7).
    #[schema(value_type = Option<String>)]
    pub admin: Option<&'a str>,
    /// Every code it has run, oldest first; the last is `code_hash`.
    pub code_history: Vec<CodeVersionJson>,
}

/// A code a contract ran from a version on.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CodeVersion)]
pub struct CodeVersionJson {
    /// The version from which it ran it (its deploy's, or a migrate's).
    pub since: u64,
    /// The code's BLAKE3 hash, hex.
    pub code_hash: String,
}

impl Serialize for ContractInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let code_history = self
            .earlier_code
            .iter()
            .chain(std::iter::once(&(self.code_since, self.code_hash)))
            .map(|(since, hash)| CodeVersionJson {
                since: *since,
                code_hash: hash.to_string(),
            })
            .collect();
        ContractJson {
            name: &self.name,
            code_hash: self.code_hash.to_string(),
            version: self.version,
            admin: self.admin.as_deref(),
            code_history,
        }
        .serialize(s)
    }
}

/// A recorded transaction in the history.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LogEntry)]
pub struct HistoryJson<'a> {
    /// The version it took.
    pub version: u64,
    /// Its id.
    pub tx_id: String,
    /// `committed` or `reverted`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// `contract.method` per call, or `deploy NAME`.
    #[schema(value_type = Vec<String>)]
    pub calls: &'a [String],
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

/// An event of a committed transaction, as `semel events` and `GET /v1/events` list it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventRecord)]
pub struct EventRecordJson<'a> {
    /// The version of the transaction that emitted it.
    pub version: u64,
    /// That transaction's id.
    pub tx_id: String,
    /// The contract that emitted it.
    #[schema(value_type = String)]
    pub contract: &'a str,
    /// Its topic.
    #[schema(value_type = String)]
    pub topic: &'a str,
    /// Its data, hex.
    pub data_hex: String,
}

impl Serialize for EventRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EventRecordJson {
            version: self.version,
            tx_id: self.tx_id.to_string(),
            contract: &self.contract,
            topic: &self.topic,
            data_hex: hex::encode(&self.data),
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

#[derive(Serialize)]
struct InfoJson<'a> {
    store: &'a str,
    host_id: String,
    format: &'a str,
    version: u64,
    state_root: String,
}

impl Serialize for StoreInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        InfoJson {
            store: &self.store,
            host_id: self.host_id.to_string(),
            format: &self.format,
            version: self.version,
            state_root: self.state_root.to_string(),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ledger::receipt::Status;
    use crate::types::{CodeHash, HostId, StateRoot};

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
            admin: Some("alice".into()),
            code_since: 4,
            earlier_code: vec![(1, CodeHash([0xcd; 32]))],
        };
        let (ab, cd) = ("ab".repeat(32), "cd".repeat(32));
        assert_eq!(
            json(&c),
            format!(
                r#"{{"name":"t","code_hash":"{ab}","version":1,"admin":"alice","code_history":[{{"since":1,"code_hash":"{cd}"}},{{"since":4,"code_hash":"{ab}"}}]}}"#
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
        let e = EventRecord {
            version: 7,
            index: 1,
            tx_id: Uuid::nil(),
            contract: "token".into(),
            topic: "transfer".into(),
            data: vec![0x00, 0xab],
        };
        // The index is not part of the shape: receipt order is the listing's order.
        assert_eq!(
            json(&e),
            r#"{"version":7,"tx_id":"00000000-0000-0000-0000-000000000000","contract":"token","topic":"transfer","data_hex":"00ab"}"#
        );
        let i = StoreInfo {
            store: "redb:/d".into(),
            host_id: HostId::from_bytes([0xcd; 16]),
            format: "semel-data-v2".into(),
            version: 7,
            state_root: StateRoot([2; 32]),
        };
        assert_eq!(
            json(&i),
            format!(
                r#"{{"store":"redb:/d","host_id":"{}","format":"semel-data-v2","version":7,"state_root":"{}"}}"#,
                "cd".repeat(16),
                "02".repeat(32)
            )
        );
    }
}
