//! A parallel run's read set: where each point read's value came from (and the value),
//! and each `storage_next` step with the key it found — what validation reads again
//! (`view.rs`). Block-STM's `CapturedReads`; the run's own `ReadSet`
//! (`state/recorded.rs`) records the same reads for the run itself.

use super::mv_map::Origin;

/// One `storage_next` step as the batch answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub ns: String,
    pub prefix: Vec<u8>,
    pub after: Option<Vec<u8>>,
    pub found: Option<Vec<u8>>,
}

/// What a run read, for validation.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Point reads: the entry, where its value came from, and the value.
    pub points: Vec<(Vec<u8>, Origin, Option<Vec<u8>>)>,
    /// Walk steps, in order.
    pub steps: Vec<Step>,
    /// The transaction whose estimate stopped the run, if one did.
    pub blocked: Option<usize>,
}
