//! Versioned contract state: how keys are laid out in the `State` table, reads at a
//! version, a transaction's buffered writes with rollback points, and the state root.
//!
//! Every read a transaction makes goes through a [`StateView`]; every write stays in its
//! [`WriteSet`] until the host commits it. Nothing here knows about wasm.

pub(crate) mod avx512;
mod keys;
pub(crate) mod keystream;
mod recorded;
pub(crate) mod registry;
mod root;
mod view;
mod write_set;

pub use avx512::use_avx512;
pub use keys::{REGISTRY_NS, decode_state_key, entry_key};
pub(crate) use keys::{decode_entry_key, decode_stored_value, prefix_key, state_row};
#[cfg(test)]
pub(crate) use keys::{encode_stored_value, versioned_key};
pub use recorded::{ReadSet, RecordingView, lock};
pub use root::{EntryCache, LtHash};
pub use view::{SnapshotView, StateView};
pub use write_set::{MergedView, WriteSet};
