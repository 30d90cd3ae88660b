//! The pessimistic executor's lock table: from the batch's declared access sets, in
//! batch order, which earlier transactions each one must wait for — a deterministic
//! schedule in which transactions whose sets do not overlap (write–write or read–write,
//! by key and by prefix) run at once and overlapping ones keep batch order.
//!
//! As Solana's account locks and Soroban's footprints, the locks are taken from the
//! declaration before anything runs; unlike them, a conflict does not refuse or delay a
//! transaction to a later block: it orders it after the holder within this batch. A
//! transaction without a set (and a deploy, which writes the registry) is a barrier: it
//! waits for every earlier one, and every later one waits for it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::ledger::access::{AccessSet, KeySpec};

/// Holders of one lock since the last barrier.
#[derive(Debug, Default)]
struct Holders {
    writer: Option<usize>,
    /// Readers since `writer`.
    readers: Vec<usize>,
}

impl Holders {
    /// The holders an access must wait for, and the access taken.
    fn take(&mut self, txn: usize, write: bool, deps: &mut Vec<usize>) {
        deps.extend(self.writer);
        if write {
            deps.append(&mut self.readers);
            self.writer = Some(txn);
        } else {
            self.readers.push(txn);
        }
    }
}

/// The locks of one contract's exact keys: in key order when a set of the batch
/// declares a prefix (a prefix then finds the keys under it), else hashed: the
/// schedule of a batch of 1,000 transfers, which is made before any worker starts, took
/// 0.21–0.24 ms instead of 0.38 (timing probe, 2026-12-08).
#[derive(Debug)]
enum KeyLocks<'s> {
    Ordered(BTreeMap<&'s [u8], Holders>),
    Hashed(HashMap<&'s [u8], Holders>),
}

/// Locks by contract: exact keys, prefixes in a list. Names and keys are borrowed from
/// the sets: building the table allocates only its own nodes, not a copy of every
/// declared key.
#[derive(Debug, Default)]
struct Table<'s> {
    keys: HashMap<&'s str, KeyLocks<'s>>,
    prefixes: Vec<(&'s str, &'s [u8], Holders)>,
    ordered: bool,
}

/// Each transaction's predecessors: the indices it must wait for.
pub(crate) fn dependencies(sets: &[Option<&AccessSet>]) -> Vec<Vec<usize>> {
    let prefixes = sets.iter().flatten().any(|set| {
        set.contracts.iter().any(|c| {
            c.read
                .iter()
                .chain(&c.write)
                .any(|s| matches!(s, KeySpec::Prefix(_)))
        })
    });
    dependencies_with(sets, prefixes)
}

/// [`dependencies`], with exact keys ordered or hashed.
fn dependencies_with(sets: &[Option<&AccessSet>], ordered: bool) -> Vec<Vec<usize>> {
    let mut out = Vec::with_capacity(sets.len());
    let new_table = || Table {
        ordered,
        ..Table::default()
    };
    let mut table = new_table();
    let mut barrier: Option<usize> = None;
    let mut since_barrier: Vec<usize> = Vec::new();
    for (txn, set) in sets.iter().enumerate() {
        let Some(set) = set else {
            // Alone: after everything before it, before everything after it.
            let mut deps = std::mem::take(&mut since_barrier);
            deps.extend(barrier);
            out.push(deps);
            table = new_table();
            barrier = Some(txn);
            continue;
        };
        let mut deps: Vec<usize> = barrier.into_iter().collect();
        for c in &set.contracts {
            for (specs, write) in [(&c.read, false), (&c.write, true)] {
                for spec in specs {
                    table.lock(&c.contract, spec, txn, write, &mut deps);
                }
            }
        }
        deps.retain(|&d| d != txn);
        deps.sort_unstable();
        deps.dedup();
        out.push(deps);
        since_barrier.push(txn);
    }
    out
}

impl<'s> Table<'s> {
    fn lock(
        &mut self,
        contract: &'s str,
        spec: &'s KeySpec,
        txn: usize,
        write: bool,
        deps: &mut Vec<usize>,
    ) {
        for (c, prefix, holders) in &mut self.prefixes {
            if *c == contract && spec.overlaps_prefix(prefix) {
                // Waits for the prefix's holders; does not take it (its own lock below).
                deps.extend(holders.writer);
                if write {
                    deps.extend(holders.readers.iter().copied());
                }
            }
        }
        let ordered = self.ordered;
        let keys = self.keys.entry(contract).or_insert_with(|| match ordered {
            true => KeyLocks::Ordered(BTreeMap::new()),
            false => KeyLocks::Hashed(HashMap::new()),
        });
        match (spec, keys) {
            (KeySpec::Key(k), KeyLocks::Ordered(keys)) => {
                keys.entry(k).or_default().take(txn, write, deps);
            }
            (KeySpec::Key(k), KeyLocks::Hashed(keys)) => {
                keys.entry(k).or_default().take(txn, write, deps);
            }
            (KeySpec::Prefix(_), KeyLocks::Hashed(_)) => {
                unreachable!("a batch that declares a prefix orders its keys")
            }
            (KeySpec::Prefix(p), KeyLocks::Ordered(keys)) => {
                let from = (Bound::Included(p.as_slice()), Bound::Unbounded);
                for (_, holders) in keys
                    .range_mut::<[u8], _>(from)
                    .take_while(|(k, _)| k.starts_with(p))
                {
                    deps.extend(holders.writer);
                    if write {
                        deps.extend(holders.readers.iter().copied());
                    }
                }
                match self
                    .prefixes
                    .iter_mut()
                    .find(|(c, q, _)| *c == contract && *q == p.as_slice())
                {
                    Some((_, _, holders)) => holders.take(txn, write, deps),
                    None => {
                        let mut holders = Holders::default();
                        holders.take(txn, write, deps);
                        self.prefixes.push((contract, p, holders));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::access::ContractAccess;

    fn set(read: &[KeySpec], write: &[KeySpec]) -> AccessSet {
        AccessSet {
            contracts: vec![ContractAccess {
                contract: "t".into(),
                read: read.to_vec(),
                write: write.to_vec(),
            }],
        }
    }

    fn key(k: &str) -> KeySpec {
        KeySpec::Key(k.as_bytes().to_vec())
    }

    #[test]
    fn overlapping_sets_keep_batch_order_and_others_run_at_once() {
        let a = set(&[], &[key("a"), key("b")]);
        let c = set(&[], &[key("c"), key("d")]);
        let ab_read = set(&[key("a")], &[]);
        let prefix = set(&[KeySpec::Prefix(b"".to_vec())], &[]);
        let d = set(&[], &[key("d")]);
        let deps = dependencies(&[
            Some(&a),
            Some(&c),
            Some(&ab_read),
            Some(&ab_read),
            Some(&prefix),
            Some(&d),
            None,
            Some(&c),
        ]);
        assert_eq!(deps[0], Vec::<usize>::new());
        assert_eq!(deps[1], Vec::<usize>::new(), "disjoint keys run at once");
        assert_eq!(deps[2], [0], "a read waits for the writer");
        assert_eq!(deps[3], [0], "readers do not wait for readers");
        assert_eq!(
            deps[4],
            [0, 1],
            "a walk waits for every writer under its prefix"
        );
        assert_eq!(deps[5], [1, 4], "a write waits for the writer and the walk");
        assert_eq!(deps[6], [0, 1, 2, 3, 4, 5], "no set: alone");
        assert_eq!(deps[7], [6], "after the barrier");
    }

    #[test]
    fn prefixes_lock_the_keys_and_prefixes_under_and_over_them() {
        let prefix = |p: &str| KeySpec::Prefix(p.as_bytes().to_vec());
        let write_ab = set(&[], &[key("ab")]);
        let walk_a = set(&[prefix("a")], &[]);
        let write_under_ab = set(&[], &[prefix("ab")]);
        let write_b = set(&[], &[key("b")]);
        let read_abc = set(&[key("abc")], &[]);
        let write_all = set(&[], &[prefix("")]);
        let deps = dependencies(&[
            Some(&write_ab),
            Some(&walk_a),
            Some(&write_under_ab),
            Some(&write_b),
            Some(&read_abc),
            Some(&write_all),
        ]);
        assert_eq!(deps[1], [0], "a walk waits for a key written under it");
        assert_eq!(
            deps[2],
            [0, 1],
            "a prefix written waits for the keys under it and a walk over it"
        );
        assert_eq!(deps[3], Vec::<usize>::new(), "a key under no prefix taken");
        assert_eq!(
            deps[4],
            [2],
            "a read waits for a prefix written over it, not a walk"
        );
        assert_eq!(deps[5], [0, 1, 2, 3, 4], "the whole contract waits for all");
    }

    proptest::proptest! {
        #[test]
        fn hashed_keys_give_the_ordered_keys_dependencies(
            batch in proptest::collection::vec(
                proptest::option::weighted(
                    0.9,
                    (
                        proptest::collection::vec(0u8..12, 0..3),
                        proptest::collection::vec(0u8..12, 0..3),
                    ),
                ),
                0..40,
            )
        ) {
            let spec = |k: &u8| KeySpec::Key(vec![b'k', *k]);
            let sets: Vec<Option<AccessSet>> = batch
                .iter()
                .map(|s| {
                    s.as_ref().map(|(r, w)| {
                        let r: Vec<_> = r.iter().map(spec).collect();
                        let w: Vec<_> = w.iter().map(spec).collect();
                        set(&r, &w)
                    })
                })
                .collect();
            let sets: Vec<Option<&AccessSet>> = sets.iter().map(Option::as_ref).collect();
            proptest::prop_assert_eq!(
                dependencies_with(&sets, false),
                dependencies_with(&sets, true)
            );
        }
    }
}
