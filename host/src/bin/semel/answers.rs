//! JSON answers that the CLI's `--json` output and the server share, beyond the
//! library's own shapes: a batch's conflict entry and a simulated transaction.

use semel::json::ReceiptJson;
use semel::{Simulated, SubmitError, Uuid};
use serde::Serialize;

/// A batch element for an id conflict (interface §5).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConflictJson {
    /// The id that conflicts.
    pub tx_id: String,
    /// Always `conflict`.
    pub error: &'static str,
    /// What the id was recorded as.
    pub message: String,
    /// The version the id was recorded at (beyond interface §5's fields).
    pub version: u64,
}

impl ConflictJson {
    pub fn new(id: Uuid, e: &SubmitError) -> Self {
        let version = match e {
            SubmitError::Conflict { version, .. } => *version,
            _ => 0,
        };
        Self {
            tx_id: id.to_string(),
            error: "conflict",
            message: e.to_string(),
            version,
        }
    }
}

/// One element of a batch's answer: a receipt, or a conflict.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchItemJson<'a> {
    Receipt(ReceiptJson<'a>),
    Conflict(ConflictJson),
}

/// A simulated transaction: the receipt it would get, with the access set it used.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SimulatedJson<'a> {
    #[serde(flatten)]
    pub receipt: ReceiptJson<'a>,
    /// The keys it read, wrote and walked, in the form a transaction declares them.
    #[schema(value_type = Vec<Object>)]
    pub access: serde_json::Value,
}

impl<'a> SimulatedJson<'a> {
    pub fn new(sim: &'a Simulated) -> Self {
        Self {
            receipt: sim.receipt.json(),
            access: sim.access.to_json(),
        }
    }
}

/// One element of a simulation's answer.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SimulatedItemJson<'a> {
    Simulated(SimulatedJson<'a>),
    Conflict(ConflictJson),
}
