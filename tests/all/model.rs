//! A model-based property test: random sequences of deploys, calls (failing and nested
//! ones too), duplicates, conflicts, historical queries and reopens, run on a durable
//! host and on a small in-memory model of the semantics; they must agree at every step.

use std::collections::BTreeMap;

use proptest::prelude::*;
use semel::{Host, HostOptions, Receipt, Status, SubmitError, Transaction};

use crate::util::{calls, forward, wat};

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    DeployCounter(usize),
    DeployProxy(usize),
    Inc(usize),
    IncThenFail(usize),
    IncAndFail(usize),
    ProxyInc { proxy: usize, target: usize },
    Duplicate(usize),
    Conflict(usize),
    Query { name: usize, back: u64 },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NAMES.len();
    prop_oneof![
        1 => n.clone().prop_map(Op::DeployCounter),
        1 => n.clone().prop_map(Op::DeployProxy),
        3 => n.clone().prop_map(Op::Inc),
        1 => n.clone().prop_map(Op::IncThenFail),
        1 => n.clone().prop_map(Op::IncAndFail),
        2 => (n.clone(), n.clone()).prop_map(|(proxy, target)| Op::ProxyInc { proxy, target }),
        1 => any::<usize>().prop_map(Op::Duplicate),
        1 => any::<usize>().prop_map(Op::Conflict),
        1 => (n, 0u64..6).prop_map(|(name, back)| Op::Query { name, back }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Proxy,
}

/// What the host should hold.
#[derive(Debug, Default, Clone)]
struct Model {
    contracts: BTreeMap<&'static str, Kind>,
    /// Counter values after each version (index = version).
    history: Vec<BTreeMap<&'static str, u64>>,
    sent: Vec<(Transaction, Receipt)>,
}

impl Model {
    fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.history.last().cloned().unwrap_or_default()
    }
    fn record(&mut self, counts: BTreeMap<&'static str, u64>) {
        self.history.push(counts);
    }
    fn is(&self, name: &str, kind: Kind) -> bool {
        self.contracts.get(name) == Some(&kind)
    }
}

fn open(dir: &std::path::Path) -> Host {
    Host::open(dir, HostOptions::default()).unwrap()
}

fn check_step(host: &Host, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let submit = |model: &mut Model, tx: Transaction| -> Receipt {
        let r = host.submit(&tx).unwrap();
        model.sent.push((tx, r.clone()));
        r
    };
    match *op {
        Op::DeployCounter(i) | Op::DeployProxy(i) => {
            let (kind, code) = match op {
                Op::DeployCounter(_) => (Kind::Counter, "counter"),
                _ => (Kind::Proxy, "proxy"),
            };
            let r = submit(model, Transaction::deploy(NAMES[i], wat(code), Vec::new()));
            let taken = model.contracts.contains_key(NAMES[i]);
            prop_assert_eq!(
                r.status,
                if taken {
                    Status::Reverted
                } else {
                    Status::Committed
                }
            );
            let mut counts = model.counts();
            if !taken {
                model.contracts.insert(NAMES[i], kind);
                if kind == Kind::Counter {
                    counts.insert(NAMES[i], 0);
                }
            }
            model.record(counts);
        }
        Op::Inc(i) => {
            let r = submit(model, Transaction::call(NAMES[i], "inc", Vec::new()));
            let mut counts = model.counts();
            if model.is(NAMES[i], Kind::Counter) {
                prop_assert_eq!(r.status, Status::Committed);
                let c = counts.entry(NAMES[i]).or_default();
                *c += 1;
                prop_assert_eq!(&r.results[0].output, &c.to_string().into_bytes());
            } else {
                prop_assert_eq!(r.status, Status::Reverted);
            }
            model.record(counts);
        }
        Op::IncThenFail(i) => {
            let r = submit(
                model,
                Transaction::call(NAMES[i], "inc_then_fail", Vec::new()),
            );
            prop_assert_eq!(r.status, Status::Reverted);
            model.record(model.counts());
        }
        Op::IncAndFail(i) => {
            let r = submit(
                model,
                calls(&[(NAMES[i], "inc", b""), (NAMES[i], "fail", b"")]),
            );
            prop_assert_eq!(r.status, Status::Reverted);
            model.record(model.counts());
        }
        Op::ProxyInc { proxy, target } => {
            let tx = Transaction::call(NAMES[proxy], "forward", forward(NAMES[target], "inc", b""));
            let r = submit(model, tx);
            let mut counts = model.counts();
            if model.is(NAMES[proxy], Kind::Proxy) {
                prop_assert_eq!(r.status, Status::Committed);
                if model.is(NAMES[target], Kind::Counter) {
                    *counts.entry(NAMES[target]).or_default() += 1;
                }
            } else {
                prop_assert_eq!(r.status, Status::Reverted);
            }
            model.record(counts);
        }
        Op::Duplicate(k) if !model.sent.is_empty() => {
            let (tx, first) = model.sent[k % model.sent.len()].clone();
            let r = host.submit(&tx).unwrap();
            prop_assert!(r.duplicate);
            prop_assert_eq!(
                Receipt {
                    duplicate: false,
                    ..r
                },
                first
            );
        }
        Op::Conflict(k) if !model.sent.is_empty() => {
            let (tx, first) = model.sent[k % model.sent.len()].clone();
            let other = Transaction::call("a", "get", b"different".to_vec()).with_id(tx.id);
            match host.submit(&other) {
                Err(SubmitError::Conflict { id, version }) => {
                    prop_assert_eq!(id, tx.id);
                    prop_assert_eq!(version, first.version);
                }
                other => prop_assert!(false, "expected a conflict, got {:?}", other),
            }
        }
        Op::Query { name, back } => {
            let latest = u64::try_from(model.history.len()).unwrap();
            let at = latest.saturating_sub(back);
            let expected = usize::try_from(at)
                .ok()
                .and_then(|v| v.checked_sub(1))
                .and_then(|v| model.history.get(v))
                .and_then(|counts| counts.get(NAMES[name]).copied());
            match (host.query(NAMES[name], "get", b"", Some(at)), expected) {
                (Ok(out), Some(count)) => {
                    prop_assert_eq!(out.output, count.to_string().into_bytes())
                }
                (Err(semel::QueryError::Failed(_)), None) => {}
                (got, want) => prop_assert!(
                    false,
                    "query {} at {}: {:?}, model {:?}",
                    NAMES[name],
                    at,
                    got,
                    want
                ),
            }
        }
        Op::Reopen | Op::Duplicate(_) | Op::Conflict(_) => {}
    }
    prop_assert_eq!(
        host.latest_version(),
        u64::try_from(model.history.len()).unwrap()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn the_host_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut host = open(dir.path());
        let mut model = Model::default();
        for op in &ops {
            if matches!(op, Op::Reopen) {
                let root = host.state_root().unwrap();
                drop(host);
                host = open(dir.path());
                prop_assert_eq!(host.state_root().unwrap(), root);
            }
            check_step(&host, &mut model, op)?;
        }
        host.verify().unwrap();
    }
}
