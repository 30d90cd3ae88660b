//! `verify`: re-executes every recorded transaction on an empty in-memory host and
//! checks that each receipt, the stored state, the events index and the state root
//! agree — first with re-execution, then with a root recomputed from scratch over the
//! stored state.

use std::ops::Bound;

use thiserror::Error;

use uuid::Uuid;

use crate::error::HostError;
use crate::host::prune::all_rows;
use crate::host::{Concurrency, Host};
use crate::ledger::receipt::Receipt;
use crate::ledger::records::{TxRecord, decode_history_entry, history_key};
use crate::ledger::transaction::{LoggedBody, LoggedTx, Transaction, TxBody};
use crate::state::{LtHash, decode_state_key, decode_stored_value};
use crate::storage::{Entry, Snapshot, StorageError, Table};
use crate::types::{CodeHash, StateRoot};

/// What a successful verify checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Transactions re-executed.
    pub transactions: u64,
    /// The state root they lead to.
    pub state_root: StateRoot,
}

/// Why verify failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The record at `version` does not match re-execution or the recomputed root.
    #[error("mismatch at version {version}: {what}")]
    Mismatch {
        /// The first version that differs.
        version: u64,
        /// What differs.
        what: String,
    },
    /// The host failed, or storage could not be read or decoded.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl From<StorageError> for VerifyError {
    fn from(e: StorageError) -> Self {
        VerifyError::Host(e.into())
    }
}

fn mismatch(version: u64, what: impl Into<String>) -> VerifyError {
    VerifyError::Mismatch {
        version,
        what: what.into(),
    }
}

impl Host {
    /// Re-executes the whole log and checks every receipt and the state root.
    ///
    /// # Errors
    /// [`VerifyError::Mismatch`] naming the first version that differs.
    pub fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let head = self.stored_head()?;
        let (latest, stored_lattice) = (head.version, head.lattice);
        let snap = self.snapshot()?;
        let fresh = self.scratch()?;
        // Batch by batch, as the host's options run batches (in parallel unless
        // sequential): the results must be the log's either way.
        let mut from = 1;
        while from <= latest {
            let to = latest.min(from + VERIFY_BATCH - 1);
            let txs = (from..=to)
                .map(|v| logged_transaction(&*snap, v))
                .collect::<Result<Vec<_>, _>>()?;
            let replayed = match self.options.concurrency {
                Concurrency::Sequential => txs.iter().map(|tx| fresh.submit(tx)).collect(),
                _ => fresh.submit_all(&txs),
            };
            for ((version, tx), replayed) in (from..=to).zip(&txs).zip(replayed) {
                let replayed = replayed
                    .map_err(|e| mismatch(version, format!("re-execution refused it: {e}")))?;
                check_receipt(&*snap, version, tx, &replayed)?;
            }
            from = to + 1;
        }
        let fresh_snap = fresh.snapshot()?;
        compare_state(&*snap, &*fresh_snap, self.horizon())?;
        compare_events(&*snap, &*fresh_snap)?;
        let root = recompute_root(&*snap, latest)?;
        if root != stored_lattice.root() {
            return Err(mismatch(
                latest,
                "the stored state root differs from one recomputed from the state",
            ));
        }
        if root != fresh.state_root()? {
            return Err(mismatch(
                latest,
                "the state root differs from re-execution's",
            ));
        }
        Ok(VerifyReport {
            transactions: latest,
            state_root: root,
        })
    }
}

/// Checks the stored receipt of the transaction at `version` against its re-execution.
fn check_receipt(
    snap: &dyn Snapshot,
    version: u64,
    tx: &Transaction,
    replayed: &Receipt,
) -> Result<(), VerifyError> {
    let stored = snap
        .get(Table::Txs, tx.id.as_bytes())?
        .ok_or_else(|| mismatch(version, format!("no receipt for {}", tx.id)))?;
    let stored = TxRecord::decode(&stored).map_err(StorageError::from)?;
    if stored.version != version || stored.content_hash != tx.content_hash() {
        return Err(mismatch(
            version,
            "the receipt index does not match the log",
        ));
    }
    if stored.receipt != *replayed {
        return Err(mismatch(
            version,
            format!(
                "stored receipt differs from re-execution:\n  stored:   {}\n  replayed: {}",
                stored.receipt.to_json(),
                replayed.to_json()
            ),
        ));
    }
    Ok(())
}

/// Transactions `verify` re-executes as one batch.
const VERIFY_BATCH: u64 = 1000;

/// The recorded transaction at `version`, rebuilt for re-execution.
fn logged_transaction(snap: &dyn Snapshot, version: u64) -> Result<Transaction, StorageError> {
    let bytes = snap
        .get(Table::History, &history_key(version))?
        .ok_or_else(|| {
            StorageError::Corrupt(format!("version {version} missing from the history"))
        })?;
    let (id, logged): (Uuid, LoggedTx) = decode_history_entry(&bytes)?;
    let code = |code_hash: CodeHash| {
        snap.get(Table::Code, &code_hash.0)?.ok_or_else(|| {
            StorageError::Corrupt(format!("code {code_hash} of version {version} is missing"))
        })
    };
    let body = match logged.body {
        LoggedBody::Calls(calls) => TxBody::Calls(calls),
        LoggedBody::Deploy {
            name,
            code_hash,
            init_args,
            admin,
        } => TxBody::Deploy {
            name,
            code: code(code_hash)?,
            init_args,
            admin,
        },
        LoggedBody::Migrate {
            name,
            code_hash,
            args,
        } => TxBody::Migrate {
            name,
            code: code(code_hash)?,
            args,
        },
        LoggedBody::SetAdmin { name, admin } => TxBody::SetAdmin { name, admin },
    };
    Ok(Transaction {
        id,
        sender: logged.sender,
        gas_limit: logged.gas_limit,
        body,
        access: logged.access.map(std::sync::Arc::new),
        signature: None,
    })
}

/// Compares two `State` tables entry by entry (the replayed one pruned to the stored
/// one's horizon); names the lowest version that differs.
fn compare_state(
    stored: &dyn Snapshot,
    replayed: &dyn Snapshot,
    horizon: u64,
) -> Result<(), VerifyError> {
    let a = all_rows(stored, Table::State)?;
    let mut b = all_rows(replayed, Table::State)?;
    let pruned = crate::host::prune::unreachable_rows(&b, horizon)?;
    b.retain(|(k, _)| pruned.binary_search(k).is_err());
    let version_of = |k: &[u8]| decode_state_key(k).map(|(_, _, v)| v).unwrap_or(0);
    match first_difference(&a, &b, version_of) {
        Some(v) => Err(mismatch(v, "the stored state differs from re-execution")),
        None => Ok(()),
    }
}

/// Compares two events indexes row by row: the stored one (written with each
/// transaction, or caught up from the receipts on open) must be re-execution's.
fn compare_events(stored: &dyn Snapshot, replayed: &dyn Snapshot) -> Result<(), VerifyError> {
    let a = all_rows(stored, Table::Events)?;
    let b = all_rows(replayed, Table::Events)?;
    match first_difference(&a, &b, crate::ledger::events::version_of_key) {
        Some(v) => Err(mismatch(
            v,
            "the stored events index differs from re-execution's",
        )),
        None => Ok(()),
    }
}

/// The lowest version (by `version_of` its key) of a row that is in one of two sorted
/// row lists and not the other, or in both with different values.
fn first_difference(a: &[Entry], b: &[Entry], version_of: impl Fn(&[u8]) -> u64) -> Option<u64> {
    let mut first: Option<u64> = None;
    let mut note = |v: u64| first = Some(first.map_or(v, |f| f.min(v)));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                if x.1 != y.1 {
                    note(version_of(&x.0));
                }
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                note(version_of(&x.0));
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                note(version_of(&y.0));
                j += 1;
            }
            (Some(x), None) => {
                note(version_of(&x.0));
                i += 1;
            }
            (None, None) => break,
        }
    }
    first
}

/// The root of the state at `version`, summed from every live entry.
fn recompute_root(snap: &dyn Snapshot, version: u64) -> Result<StateRoot, StorageError> {
    let mut lattice = LtHash::default();
    // Versions of one key are adjacent and ascending: keep the last one at or below
    // `version`, and add it when the key changes.
    let mut current: Option<(String, Vec<u8>, Option<Vec<u8>>)> = None;
    let mut bad = None;
    let flush = |entry: Option<(String, Vec<u8>, Option<Vec<u8>>)>, lattice: &mut LtHash| {
        if let Some((ns, key, Some(value))) = entry {
            lattice.add(&LtHash::of_entry(&ns, &key, &value));
        }
    };
    snap.range(
        Table::State,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |k, v| {
            let (ns, key, v_at) = match decode_state_key(k) {
                Ok(d) => d,
                Err(e) => {
                    bad = Some(e);
                    return false;
                }
            };
            let value = match decode_stored_value(v) {
                Ok(v) => v.map(<[u8]>::to_vec),
                Err(e) => {
                    bad = Some(e);
                    return false;
                }
            };
            let same = current
                .as_ref()
                .is_some_and(|(n, k2, _)| *n == ns && *k2 == key);
            if !same {
                flush(current.take(), &mut lattice);
                current = Some((ns.clone(), key.clone(), None));
            }
            if v_at <= version {
                current = Some((ns, key, value));
            }
            true
        },
    )?;
    if let Some(e) = bad {
        return Err(e.into());
    }
    flush(current.take(), &mut lattice);
    Ok(lattice.root())
}
