//! Reads: read-only queries, state listings, the contracts, the history, receipts and
//! events.
//! None of them takes the writer lock: the latest version is the one the writer last
//! published, and every read is of a snapshot that holds it.

use std::ops::Bound;
use std::sync::Arc;

use uuid::Uuid;

use super::Host;
use crate::error::{HostError, InputError, QueryError};
use crate::ledger::events::{EventFilter, EventRecord};
use crate::ledger::receipt::{Receipt, Status};
use crate::ledger::records::{META_EVENTS_INDEXED, TxRecord, decode_history_entry, history_key};
use crate::ledger::transaction::{
    Call, DEFAULT_SENDER, check_args, check_contract_name, check_method_name,
};
use crate::limits::QUERY_GAS_LIMIT;
use crate::state::registry::{self, ContractCache, ContractRecord, REGISTRY_NS};
use crate::state::{SnapshotView, StateView};
use crate::storage::{Entry, Snapshot, StorageError, Table};
use crate::types::CodeHash;
use crate::vm::run::{RunSetup, Work, execute};

/// The output of a read-only query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutput {
    /// The version it read.
    pub version: u64,
    /// What the method output.
    pub output: Vec<u8>,
}

/// A deployed contract, as `semel contracts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractInfo {
    /// Its name.
    pub name: String,
    /// Its code.
    pub code_hash: CodeHash,
    /// The version its deploy took.
    pub version: u64,
    /// Who may migrate it (interface §7); `None`: nobody.
    pub admin: Option<String>,
    /// The version since which it runs `code_hash` (its deploy's unless migrated).
    pub code_since: u64,
    /// The code it ran before, oldest first: (since which version, code).
    pub earlier_code: Vec<(u64, CodeHash)>,
}

/// A recorded transaction in the history, as `semel log` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The version it took.
    pub version: u64,
    /// Its id.
    pub tx_id: Uuid,
    /// Committed or reverted.
    pub status: Status,
    /// `contract.method` per call, or `deploy NAME`.
    pub calls: Vec<String>,
}

impl Host {
    /// The recorded receipt of `id`, once it is durable.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    pub fn receipt(&self, id: &Uuid) -> Result<Option<Receipt>, HostError> {
        let view = self.committer.view_of(Table::Txs, id.as_bytes())?;
        let receipt = view
            .snapshot
            .get(Table::Txs, id.as_bytes())?
            .map(|b| TxRecord::decode(&b).map(|r| r.receipt))
            .transpose()?;
        // Staged but not durable yet: handed out only once it is (and never if it fails).
        if receipt.is_some()
            && let Some(seq) = view.pending
        {
            self.wait_durable(seq)?;
        }
        Ok(receipt)
    }

    /// The bytes of the code with hash `hash`, if a deploy stored it.
    ///
    /// # Errors
    /// When storage fails.
    pub fn code(&self, hash: &CodeHash) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.snapshot()?.get(Table::Code, &hash.0)?)
    }

    /// A view of the state at `at` (latest when `None`).
    fn view_at(&self, at: Option<u64>) -> Result<(Arc<dyn Snapshot>, SnapshotView), QueryError> {
        let tip = self.durable_tip()?;
        // Taken after the tip: it holds the tip's batch (staged before it was published).
        let snapshot = self.snapshot()?;
        let version = at.unwrap_or(tip.version);
        if version > tip.version || version < tip.horizon {
            return Err(InputError::UnknownVersion {
                asked: version,
                oldest: tip.horizon,
                latest: tip.version,
            }
            .into());
        }
        Ok((Arc::clone(&snapshot), SnapshotView::new(snapshot, version)))
    }

    /// Runs `contract.method(args)` read-only at version `at` (latest when `None`);
    /// nothing is recorded and writes are refused.
    ///
    /// # Errors
    /// [`QueryError::Rejected`] for bad names or versions, [`QueryError::Failed`] when the
    /// contract fails, [`QueryError::Host`] when the host fails.
    pub fn query(
        &self,
        contract: &str,
        method: &str,
        args: &[u8],
        at: Option<u64>,
    ) -> Result<QueryOutput, QueryError> {
        check_contract_name(contract)?;
        check_method_name(method)?;
        check_args(0, args)?;
        let (snapshot, view) = self.view_at(at)?;
        let version = view.version();
        let calls = [Call {
            contract: contract.to_owned(),
            method: method.to_owned(),
            args: args.to_vec(),
        }];
        let setup = RunSetup {
            runtime: Arc::clone(&self.runtime),
            code: snapshot,
            base: Arc::new(view),
            tx_id: Uuid::nil(),
            sender: Arc::from(DEFAULT_SENDER),
            gas_limit: QUERY_GAS_LIMIT,
            new_version: version,
            read_only: true,
            print_logs: self.options.print_contract_logs,
            contracts: ContractCache::default(),
            access: None,
            log_access: false,
        };
        let (mut run, _spent) = execute(setup, &Work::Calls(&calls), None)?;
        match run.status {
            Status::Committed => Ok(QueryOutput {
                version,
                output: run.results.pop().map(|r| r.output).unwrap_or_default(),
            }),
            Status::Reverted => Err(QueryError::Failed(run.error.unwrap_or_default())),
        }
    }

    /// The keys and values of `contract` that start with `prefix`, at `at` (latest when
    /// `None`), in key order.
    ///
    /// # Errors
    /// For a bad name or version, a contract not deployed at that version, or when
    /// storage fails.
    pub fn state(
        &self,
        contract: &str,
        at: Option<u64>,
        prefix: &[u8],
    ) -> Result<Vec<Entry>, QueryError> {
        check_contract_name(contract)?;
        let (_, view) = self.view_at(at)?;
        // An empty listing means a contract without keys, never a mistyped name.
        if view.get(REGISTRY_NS, contract.as_bytes())?.is_none() {
            return Err(InputError::UnknownContract {
                name: contract.to_owned(),
                version: view.version(),
            }
            .into());
        }
        Ok(entries(&view, contract, prefix)?)
    }

    /// Every deployed contract at the latest version, by name.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    pub fn contracts(&self) -> Result<Vec<ContractInfo>, HostError> {
        let version = self.durable_tip()?.version;
        let view = SnapshotView::new(self.snapshot()?, version);
        let mut out: Vec<ContractInfo> = Vec::new();
        // In key order: a contract's entry, then its code history keys (`[name][0]…`).
        for (key, value) in entries(&view, REGISTRY_NS, b"")? {
            let corrupt = |what: &str| HostError::Corrupt(format!("registry {what}"));
            if registry::is_entry_key(&key) {
                let record = ContractRecord::decode(&value)?;
                out.push(ContractInfo {
                    name: String::from_utf8(key).map_err(|_| corrupt("contract name not UTF-8"))?,
                    code_hash: record.code_hash,
                    version: record.version,
                    admin: record.admin.as_deref().map(str::to_owned),
                    code_since: record.code_since,
                    earlier_code: Vec::new(),
                });
                continue;
            }
            let (since, hash) = registry::decode_code_history(&key, &value)?;
            match out.last_mut() {
                Some(c) if key.starts_with(&registry::code_history_prefix(&c.name)) => {
                    c.earlier_code.push((since, hash));
                }
                _ => return Err(corrupt("code history without its contract")),
            }
        }
        Ok(out)
    }

    /// Up to `limit` recorded transactions from version `from` on, in version order.
    ///
    /// # Errors
    /// When storage fails or is corrupt.
    pub fn history(&self, from: u64, limit: usize) -> Result<Vec<HistoryEntry>, HostError> {
        // Up to the latest durable version: what is staged is not recorded yet.
        let latest = self.durable_tip()?.version;
        let snap = self.snapshot()?;
        let mut raw = Vec::new();
        let (start, end) = (history_key(from), history_key(latest));
        if limit > 0 && from <= latest {
            snap.range(
                Table::History,
                Bound::Included(&start),
                Bound::Included(&end),
                false,
                &mut |k, v| {
                    raw.push((k.to_vec(), v.to_vec()));
                    raw.len() < limit
                },
            )?;
        }
        raw.into_iter()
            .map(|(k, v)| {
                let version = u64::from_be_bytes(
                    k.as_slice()
                        .try_into()
                        .map_err(|_| HostError::Corrupt("history key is not 8 bytes".into()))?,
                );
                let (tx_id, tx) = decode_history_entry(&v)?;
                let record = snap.get(Table::Txs, tx_id.as_bytes())?.ok_or_else(|| {
                    HostError::Corrupt(format!("history entry {version} has no receipt"))
                })?;
                let record = TxRecord::decode(&record)?;
                Ok(HistoryEntry {
                    version,
                    tx_id,
                    status: record.receipt.status,
                    calls: tx.call_names(),
                })
            })
            .collect()
    }

    /// The events of committed transactions that `filter` matches, in version order
    /// (receipt order within a transaction), at most `filter.limit` of them, once they
    /// are durable. Reads only the index rows of matching events (`ledger/events.rs`)
    /// from a snapshot: never the log or the receipts, and never the writer lock.
    ///
    /// # Errors
    /// [`QueryError::Rejected`] for a bad contract name, a topic longer than
    /// `EVENT_TOPIC_BYTES_MAX` or a limit above `EVENTS_LIST_MAX`;
    /// [`QueryError::Host`] when storage fails or is corrupt, or the commit of a
    /// listed event fails.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, QueryError> {
        filter.check()?;
        // Every transaction's batch moves the index's mark: its pending batch is the
        // last one staged, which the snapshot may hold events of.
        let view = self.committer.view_of(Table::Meta, META_EVENTS_INDEXED)?;
        let events = crate::ledger::events::list(&*view.snapshot, filter)?;
        // Staged but not durable yet: handed out only once they are (as receipts).
        if !events.is_empty()
            && let Some(seq) = view.pending
        {
            self.wait_durable(seq)?;
        }
        Ok(events)
    }
}

/// Every `(key, value)` of `ns` with `prefix` in `view`, in key order.
fn entries(view: &dyn StateView, ns: &str, prefix: &[u8]) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    while let Some(key) = view.next_key(ns, prefix, after.as_deref())? {
        let value = view
            .get(ns, &key)?
            .ok_or_else(|| StorageError::Corrupt("listed key has no value".into()))?;
        after = Some(key.clone());
        out.push((key, value));
    }
    Ok(out)
}
