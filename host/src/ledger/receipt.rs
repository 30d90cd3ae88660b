//! Receipts: the recorded outcome of a transaction, their stored encoding, and their
//! JSON form (interface §3).

use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::codec::{DecodeError, Reader, Writer};
use crate::types::StateRoot;

/// An event kept in the receipt unless its frame reverts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The contract that emitted it.
    pub contract: String,
    /// Its topic.
    pub topic: String,
    /// Its data.
    pub data: Vec<u8>,
}

/// Committed or reverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every call succeeded; its writes are in the state.
    Committed,
    /// A call failed or gas ran out; the state is as it was.
    Reverted,
}

impl Status {
    /// `committed` or `reverted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Committed => "committed",
            Status::Reverted => "reverted",
        }
    }
}

/// The output of one call of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// Contract called.
    pub contract: String,
    /// Method called.
    pub method: String,
    /// What it set with `output`.
    pub output: Vec<u8>,
}

/// The recorded outcome of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Its transaction id.
    pub tx_id: Uuid,
    /// Committed or reverted.
    pub status: Status,
    /// Why it reverted: which call, what message.
    pub error: Option<String>,
    /// The state version it took.
    pub version: u64,
    /// One per call, for a committed transaction; empty for a reverted one.
    pub results: Vec<CallResult>,
    /// Events of frames that did not revert, for a committed transaction.
    pub events: Vec<Event>,
    /// Gas used, host charges included.
    pub gas_used: u64,
    /// Root of the whole state at `version`.
    pub state_root: StateRoot,
    /// True when this is a stored receipt returned for a retried id.
    pub duplicate: bool,
}

/// The JSON shape of a receipt (interface §3), in its field order: what a
/// [`Receipt`] serializes as, and what a server's OpenAPI document describes.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Receipt)]
pub struct ReceiptJson<'a> {
    /// The transaction id (a UUID).
    pub tx_id: String,
    /// `committed` or `reverted`.
    #[schema(value_type = String, pattern = "^(committed|reverted)$")]
    pub status: &'static str,
    /// Why it reverted (null when committed).
    #[schema(value_type = Option<String>)]
    pub error: Option<&'a str>,
    /// The state version it took.
    pub version: u64,
    /// One per call of a committed transaction.
    pub results: Vec<CallResultJson<'a>>,
    /// Events of frames that did not revert.
    pub events: Vec<EventJson<'a>>,
    /// Gas used.
    pub gas_used: u64,
    /// The state root at `version` (64 hex digits).
    pub state_root: String,
    /// True for the stored receipt of a retried id.
    pub duplicate: bool,
}

/// A call's result: its output as hex, and as text when it is UTF-8.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CallResult)]
pub struct CallResultJson<'a> {
    /// Contract called.
    #[schema(value_type = String)]
    pub contract: &'a str,
    /// Method called.
    #[schema(value_type = String)]
    pub method: &'a str,
    /// The output, hex.
    pub output_hex: String,
    /// The output as UTF-8 text, or null.
    #[schema(value_type = Option<String>)]
    pub output: Option<&'a str>,
}

/// An event: its data as hex.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ReceiptEvent)]
pub struct EventJson<'a> {
    /// The contract that emitted it.
    #[schema(value_type = String)]
    pub contract: &'a str,
    /// Its topic.
    #[schema(value_type = String)]
    pub topic: &'a str,
    /// Its data, hex.
    pub data_hex: String,
}

impl Serialize for Receipt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

impl Receipt {
    /// The JSON shape of this receipt, borrowing from it.
    pub fn json(&self) -> ReceiptJson<'_> {
        ReceiptJson {
            tx_id: self.tx_id.to_string(),
            status: self.status.as_str(),
            error: self.error.as_deref(),
            version: self.version,
            results: self
                .results
                .iter()
                .map(|r| CallResultJson {
                    contract: &r.contract,
                    method: &r.method,
                    output_hex: hex::encode(&r.output),
                    output: std::str::from_utf8(&r.output).ok(),
                })
                .collect(),
            events: self
                .events
                .iter()
                .map(|e| EventJson {
                    contract: &e.contract,
                    topic: &e.topic,
                    data_hex: hex::encode(&e.data),
                })
                .collect(),
            gas_used: self.gas_used,
            state_root: self.state_root.to_string(),
            duplicate: self.duplicate,
        }
    }
}

impl Receipt {
    /// The JSON form of interface §3 (the receipt's `Serialize`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The stored encoding; `duplicate` is not stored, it describes a reply. Stored
    /// inside a transaction's record (`TxRecord::encode`), through `encode_into`.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.encode_into(&mut w);
        w.finish()
    }

    /// The length of the stored encoding, to size buffers ahead.
    pub(crate) fn encoded_len(&self) -> usize {
        // Each result and event: three length-prefixed fields.
        let results = self
            .results
            .iter()
            .map(|r| [r.contract.as_bytes(), r.method.as_bytes(), &r.output]);
        let events = self
            .events
            .iter()
            .map(|e| [e.contract.as_bytes(), e.topic.as_bytes(), &e.data]);
        let listed: usize = results
            .chain(events)
            .map(|fields| fields.iter().map(|f| 4 + f.len()).sum::<usize>())
            .sum();
        // Id, status, error, version, the two counts, the lists, gas, root.
        16 + 1 + self.error.as_ref().map_or(1, |e| 1 + 4 + e.len()) + 8 + 4 + 4 + listed + 8 + 32
    }

    /// Appends the stored encoding to `w`; `duplicate` is not stored, it describes a
    /// reply.
    pub(crate) fn encode_into(&self, w: &mut Writer) {
        w.fixed(self.tx_id.as_bytes())
            .u8(match self.status {
                Status::Committed => 0,
                Status::Reverted => 1,
            })
            .opt_bytes(self.error.as_deref().map(str::as_bytes))
            .u64(self.version)
            .u32(u32::try_from(self.results.len()).expect("few results"));
        for r in &self.results {
            w.str(&r.contract).str(&r.method).bytes(&r.output);
        }
        w.u32(u32::try_from(self.events.len()).expect("few events"));
        for e in &self.events {
            w.str(&e.contract).str(&e.topic).bytes(&e.data);
        }
        w.u64(self.gas_used).fixed(&self.state_root.0);
    }

    /// Reads [`Receipt::encode_into`]'s bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tx_id = Uuid::from_bytes(r.fixed()?);
        let status = match r.u8()? {
            0 => Status::Committed,
            1 => Status::Reverted,
            _ => return Err(DecodeError("bad receipt status")),
        };
        let error = r
            .opt_bytes()?
            .map(|b| String::from_utf8(b.to_vec()).map_err(|_| DecodeError("error text")))
            .transpose()?;
        let version = r.u64()?;
        let mut results = Vec::new();
        for _ in 0..r.u32()? {
            results.push(CallResult {
                contract: r.str()?.to_owned(),
                method: r.str()?.to_owned(),
                output: r.bytes()?.to_vec(),
            });
        }
        let mut events = Vec::new();
        for _ in 0..r.u32()? {
            events.push(Event {
                contract: r.str()?.to_owned(),
                topic: r.str()?.to_owned(),
                data: r.bytes()?.to_vec(),
            });
        }
        let gas_used = r.u64()?;
        let state_root = StateRoot(r.fixed()?);
        r.end()?;
        Ok(Self {
            tx_id,
            status,
            error,
            version,
            results,
            events,
            gas_used,
            state_root,
            duplicate: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_encoding_round_trips_and_json_has_every_field() {
        let r = Receipt {
            tx_id: Uuid::new_v4(),
            status: Status::Committed,
            error: None,
            version: 7,
            results: vec![CallResult {
                contract: "token".into(),
                method: "transfer".into(),
                output: vec![0xff],
            }],
            events: vec![Event {
                contract: "token".into(),
                topic: "transfer".into(),
                data: b"x".to_vec(),
            }],
            gas_used: 18234,
            state_root: StateRoot([7; 32]),
            duplicate: false,
        };
        assert_eq!(Receipt::decode(&r.encode()).unwrap(), r);
        let j = r.to_json();
        assert_eq!(j["status"], "committed");
        assert_eq!(j["results"][0]["output_hex"], "ff");
        assert_eq!(j["results"][0]["output"], Value::Null);
        assert_eq!(j["events"][0]["data_hex"], "78");
        assert_eq!(j["state_root"].as_str().unwrap().len(), 64);
        assert_eq!(j["duplicate"], false);
        // The shape of interface §3, keys in its order.
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            format!(
                concat!(
                    r#"{{"tx_id":"{}","status":"committed","error":null,"version":7,"#,
                    r#""results":[{{"contract":"token","method":"transfer","output_hex":"ff","output":null}}],"#,
                    r#""events":[{{"contract":"token","topic":"transfer","data_hex":"78"}}],"#,
                    r#""gas_used":18234,"state_root":"{}","duplicate":false}}"#
                ),
                r.tx_id,
                "07".repeat(32)
            )
        );
        assert!(Receipt::decode(&r.encode()[1..]).is_err());
        // The size given ahead is the size written, with and without each part.
        let reverted = Receipt {
            status: Status::Reverted,
            error: Some("out of gas".into()),
            results: Vec::new(),
            events: vec![r.events[0].clone(); 3],
            ..r.clone()
        };
        for receipt in [&r, &reverted] {
            assert_eq!(receipt.encoded_len(), receipt.encode().len());
            assert_eq!(Receipt::decode(&receipt.encode()).unwrap(), *receipt);
        }
    }
}
