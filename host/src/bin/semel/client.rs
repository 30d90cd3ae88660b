//! Client mode (interface §6): with `--server URL` the commands talk to `semel serve`
//! instead of a store. Answers are read back into the library's types and printed by
//! the same printers as a local store's, so output and exit codes are the same.

use std::time::Duration;

use anyhow::{Context, anyhow};
use semel::{
    AccessSet, CallResult, CodeHash, ContractInfo, Event, EventRecord, HistoryEntry, QueryOutput,
    Receipt, Simulated, StateRoot, Status, StoreInfo, SubmitError, Uuid, VerifyReport,
};
use serde_json::Value;

use crate::{Exit, Failure};

/// Longest a client waits for one answer, in seconds: a server answers within
/// `HTTP_REQUEST_MILLIS_MAX`, so this only bounds a server that stopped answering.
const CLIENT_TIMEOUT_SECS: u64 = 60;
/// Largest answer a client reads, in bytes (listings are bounded in entries).
const ANSWER_BYTES_MAX: u64 = 256 << 20;

/// A connection to a server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(CLIENT_TIMEOUT_SECS)))
            .build()
            .new_agent();
        Self {
            base: url.trim_end_matches('/').to_owned(),
            agent,
        }
    }

    fn answer(
        &self,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Failure> {
        let mut response = sent.map_err(|e| {
            Failure::new(
                Exit::HostFailure,
                anyhow!("cannot reach the server at {}: {e}", self.base),
            )
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| Failure::new(Exit::HostFailure, anyhow!("reading the answer: {e}")))?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            Failure::new(
                Exit::HostFailure,
                anyhow!("the server's answer (status {status}) is not JSON: {e}"),
            )
        })?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let detail = value["detail"].as_str().unwrap_or("no detail").to_owned();
        let kind = value["type"]
            .as_str()
            .and_then(|t| t.rsplit(':').next())
            .unwrap_or("");
        let exit = match kind {
            "bad-input" | "not-found" | "too-large" | "unauthorized" => Exit::BadInput,
            "conflict" => Exit::Conflict,
            "reverted" => Exit::Reverted,
            _ => Exit::HostFailure,
        };
        Err(Failure::new(exit, anyhow!("{detail}")))
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            request = request.query(*k, v);
        }
        self.answer(request.call())
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Result<Value, Failure> {
        self.answer(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .send(body),
        )
    }
}

/// A malformed answer: the server is not what it claims.
fn malformed(what: &str) -> Failure {
    Failure::new(
        Exit::HostFailure,
        anyhow!("the server's answer is malformed: {what}"),
    )
}

fn str_of<'a>(v: &'a Value, field: &str) -> Result<&'a str, Failure> {
    v[field].as_str().ok_or_else(|| malformed(field))
}

fn u64_of(v: &Value, field: &str) -> Result<u64, Failure> {
    v[field].as_u64().ok_or_else(|| malformed(field))
}

fn hex_of(v: &Value, field: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(str_of(v, field)?).map_err(|_| malformed(field))
}

fn hash_of(v: &Value, field: &str) -> Result<[u8; 32], Failure> {
    <[u8; 32]>::try_from(hex_of(v, field)?).map_err(|_| malformed(field))
}

fn id_of(v: &Value, field: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(str_of(v, field)?).map_err(|_| malformed(field))
}

fn array_of<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, Failure> {
    v.as_array().ok_or_else(|| malformed(what))
}

fn status_of(v: &Value) -> Result<Status, Failure> {
    match str_of(v, "status")? {
        "committed" => Ok(Status::Committed),
        "reverted" => Ok(Status::Reverted),
        _ => Err(malformed("status")),
    }
}

pub fn receipt(v: &Value) -> Result<Receipt, Failure> {
    let results = array_of(&v["results"], "results")?
        .iter()
        .map(|r| {
            Ok(CallResult {
                contract: str_of(r, "contract")?.to_owned(),
                method: str_of(r, "method")?.to_owned(),
                output: hex_of(r, "output_hex")?,
            })
        })
        .collect::<Result<_, Failure>>()?;
    let events = array_of(&v["events"], "events")?
        .iter()
        .map(|e| {
            Ok(Event {
                contract: str_of(e, "contract")?.to_owned(),
                topic: str_of(e, "topic")?.to_owned(),
                data: hex_of(e, "data_hex")?,
            })
        })
        .collect::<Result<_, Failure>>()?;
    Ok(Receipt {
        tx_id: id_of(v, "tx_id")?,
        status: status_of(v)?,
        error: v["error"].as_str().map(str::to_owned),
        version: u64_of(v, "version")?,
        results,
        events,
        gas_used: u64_of(v, "gas_used")?,
        state_root: StateRoot(hash_of(v, "state_root")?),
        duplicate: v["duplicate"]
            .as_bool()
            .ok_or_else(|| malformed("duplicate"))?,
    })
}

/// A batch element: a receipt, or a conflict (`{"tx_id", "error": "conflict", …}`).
pub fn batch_item(v: &Value) -> Result<Result<Receipt, SubmitError>, Failure> {
    if v["error"] == "conflict" {
        return Ok(Err(SubmitError::Conflict {
            id: id_of(v, "tx_id")?,
            version: u64_of(v, "version")?,
        }));
    }
    receipt(v).map(Ok)
}

pub fn simulated(v: &Value) -> Result<Result<Simulated, SubmitError>, Failure> {
    match batch_item(v)? {
        Ok(receipt) => Ok(Ok(Simulated {
            receipt,
            access: AccessSet::from_json(&v["access"]).map_err(|_| malformed("access"))?,
        })),
        Err(e) => Ok(Err(e)),
    }
}

pub fn query(v: &Value) -> Result<QueryOutput, Failure> {
    Ok(QueryOutput {
        version: u64_of(v, "version")?,
        output: hex_of(v, "output_hex")?,
    })
}

pub fn state(v: &Value) -> Result<Vec<semel::storage::Entry>, Failure> {
    array_of(v, "state")?
        .iter()
        .map(|e| Ok((hex_of(e, "key_hex")?, hex_of(e, "value_hex")?)))
        .collect()
}

pub fn contracts(v: &Value) -> Result<Vec<ContractInfo>, Failure> {
    array_of(v, "contracts")?
        .iter()
        .map(|c| {
            let admin = match &c["admin"] {
                Value::Null => None,
                a => Some(a.as_str().ok_or_else(|| malformed("admin"))?.to_owned()),
            };
            let mut history = array_of(&c["code_history"], "code_history")?
                .iter()
                .map(|h| Ok((u64_of(h, "since")?, CodeHash(hash_of(h, "code_hash")?))))
                .collect::<Result<Vec<_>, Failure>>()?;
            let code_hash = CodeHash(hash_of(c, "code_hash")?);
            let Some((code_since, last)) = history.pop() else {
                return Err(malformed("code_history"));
            };
            if last != code_hash {
                return Err(malformed("code_history"));
            }
            Ok(ContractInfo {
                name: str_of(c, "name")?.to_owned(),
                code_hash,
                version: u64_of(c, "version")?,
                admin,
                code_since,
                earlier_code: history,
            })
        })
        .collect()
}

pub fn history(v: &Value) -> Result<Vec<HistoryEntry>, Failure> {
    array_of(v, "log")?
        .iter()
        .map(|e| {
            Ok(HistoryEntry {
                version: u64_of(e, "version")?,
                tx_id: id_of(e, "tx_id")?,
                status: status_of(e)?,
                calls: array_of(&e["calls"], "calls")?
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| malformed("calls"))
                    })
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

pub fn events(v: &Value) -> Result<Vec<EventRecord>, Failure> {
    array_of(v, "events")?
        .iter()
        .map(|e| {
            Ok(EventRecord {
                version: u64_of(e, "version")?,
                // Not part of the JSON; the printers do not show it.
                index: 0,
                tx_id: id_of(e, "tx_id")?,
                contract: str_of(e, "contract")?.to_owned(),
                topic: str_of(e, "topic")?.to_owned(),
                data: hex_of(e, "data_hex")?,
            })
        })
        .collect()
}

pub fn info(v: &Value) -> Result<StoreInfo, Failure> {
    Ok(StoreInfo {
        store: str_of(v, "store")?.to_owned(),
        host_id: str_of(v, "host_id")?
            .parse()
            .map_err(|_| malformed("host_id"))?,
        format: str_of(v, "format")?.to_owned(),
        version: u64_of(v, "version")?,
        state_root: StateRoot(hash_of(v, "state_root")?),
    })
}

pub fn verified(v: &Value) -> Result<VerifyReport, Failure> {
    Ok(VerifyReport {
        transactions: u64_of(v, "transactions")?,
        state_root: StateRoot(hash_of(v, "state_root")?),
    })
}

/// A transaction's JSON (interface §3, §6, §7) as client mode posts it: code as base64,
/// argument bytes as hex, so that they arrive byte for byte.
pub fn tx_json(tx: &semel::Transaction) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    let b64 = |code: &[u8]| base64::engine::general_purpose::STANDARD.encode(code);
    let mut json = serde_json::json!({
        "id": tx.id.to_string(),
        "sender": tx.sender,
        "gas_limit": tx.gas_limit,
    });
    match &tx.body {
        semel::TxBody::Calls(_) => return call_json(tx),
        semel::TxBody::Deploy {
            name,
            code,
            init_args,
            admin,
        } => {
            json["deploy"] = serde_json::json!({
                "name": name, "code_base64": b64(code), "args_hex": hex::encode(init_args),
            });
            if let Some(admin) = admin {
                json["deploy"]["admin"] = Value::from(admin.as_str());
            }
        }
        semel::TxBody::Migrate { name, code, args } => {
            json["migrate"] = serde_json::json!({
                "name": name, "code_base64": b64(code), "args_hex": hex::encode(args),
            });
        }
        semel::TxBody::SetAdmin { name, admin } => {
            json["set_admin"] = serde_json::json!({ "name": name, "admin": admin });
        }
    }
    if let Some(sig) = &tx.signature {
        json["signature"] = sig.to_json();
    }
    serde_json::to_vec(&json).context("encoding the transaction")
}

/// A call transaction's JSON: argument bytes as hex, so they arrive byte for byte.
pub fn call_json(tx: &semel::Transaction) -> anyhow::Result<Vec<u8>> {
    let semel::TxBody::Calls(calls) = &tx.body else {
        return Err(anyhow!("not a call"));
    };
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            serde_json::json!({
                "contract": c.contract, "method": c.method, "args_hex": hex::encode(&c.args)
            })
        })
        .collect();
    let mut json = serde_json::json!({
        "id": tx.id.to_string(),
        "sender": tx.sender,
        "gas_limit": tx.gas_limit,
        "calls": calls,
    });
    if let Some(sig) = &tx.signature {
        json["signature"] = sig.to_json();
    }
    serde_json::to_vec(&json).context("encoding the transaction")
}
