//! The state roots of a parallel batch, on the workers: each transaction's receipt
//! carries the root after it, the hash of the lattice `start + Σ changes up to it` — a
//! prefix sum. Each worker takes a contiguous share of the batch, hashes its entries'
//! changes (BLAKE3 and the 2 KiB expansion of every changed entry: the largest cost of
//! a transaction) and sums them; after a barrier, it offsets its share by the shares
//! before it, hashes each lattice, and hands each root on (the worker then builds that
//! transaction's rows). The in-order commit only stages what the workers built.

use std::sync::{Barrier, Mutex};

use crate::state::{EntryCache, LtHash};
use crate::types::StateRoot;
use crate::vm::run::Write;

/// The lanes a worker expanded, and the hashes of the writer's entries it replaced.
pub(crate) type WorkerCache = (EntryCache, Vec<[u8; 32]>);

/// Where the workers leave the batch's roots.
pub(crate) struct Roots {
    workers: usize,
    n: usize,
    barrier: Barrier,
    /// Per worker: the sum of its share's changes.
    sums: Vec<Mutex<Option<LtHash>>>,
    /// The lanes each worker expanded, and the hashes of the writer's entries it
    /// replaced, for the writer's cache afterwards.
    caches: Mutex<Vec<WorkerCache>>,
    /// Per worker: whether it handed on every root of its share.
    finished: Vec<Mutex<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Roots {
    /// Room for the roots of `n` transactions hashed by `workers` threads.
    pub(crate) fn new(n: usize, workers: usize) -> Self {
        Self {
            workers,
            n,
            barrier: Barrier::new(workers),
            sums: (0..workers).map(|_| Mutex::new(None)).collect(),
            caches: Mutex::new(Vec::new()),
            finished: (0..workers).map(|_| Mutex::new(false)).collect(),
        }
    }

    fn share(&self, worker: usize) -> std::ops::Range<usize> {
        let per = self.n.div_ceil(self.workers);
        (worker * per).min(self.n)..((worker + 1) * per).min(self.n)
    }

    /// Worker `worker`'s part, every worker calling it once (`go` false: the batch
    /// failed, only the barrier is kept). `writes(i)` gives transaction `i`'s writes;
    /// `done(i, root)` takes the root after it. Old entries' lanes come from `shared`
    /// (the writer's cache) when it has them.
    pub(crate) fn hash(
        &self,
        worker: usize,
        go: bool,
        start: &LtHash,
        shared: &EntryCache,
        writes: impl Fn(usize, &mut dyn FnMut(&[Write])),
        mut done: impl FnMut(usize, StateRoot),
    ) {
        let share = self.share(worker);
        let mut prefix = Vec::with_capacity(share.len());
        if go {
            let mut acc = LtHash::default();
            let (mut local, mut dead) = (EntryCache::default(), Vec::new());
            for i in share.clone() {
                writes(i, &mut |ws| {
                    for w in ws {
                        let (old, new) = (w.old.as_deref(), w.new.as_deref());
                        acc.update_shared(shared, &mut local, &mut dead, &w.ns, &w.key, old, new);
                    }
                });
                prefix.push(acc.clone());
            }
            *lock(&self.sums[worker]) = Some(acc);
            lock(&self.caches).push((local, dead));
        }
        self.barrier.wait();
        if !go {
            return;
        }
        let mut offset = start.clone();
        for sum in &self.sums[..worker] {
            match &*lock(sum) {
                Some(s) => offset.add(s),
                None => return,
            }
        }
        for (i, mut lattice) in share.zip(prefix) {
            lattice.add(&offset);
            done(i, lattice.root());
        }
        *lock(&self.finished[worker]) = true;
    }

    /// The lattice after the last transaction, and what each worker's cache holds for
    /// the writer's (see [`EntryCache::absorb`]); `None` when a worker did not finish
    /// its share.
    pub(crate) fn finish(self, start: &LtHash) -> Option<(LtHash, Vec<WorkerCache>)> {
        let caches = self.caches.into_inner().unwrap_or_else(|e| e.into_inner());
        for done in self.finished {
            if !done.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return None;
            }
        }
        let mut lattice = start.clone();
        for sum in self.sums {
            lattice.add(&sum.into_inner().unwrap_or_else(|e| e.into_inner())?);
        }
        Some((lattice, caches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_roots_match_one_lattice_updated_in_order() {
        let writes: Vec<Vec<Write>> = (0..7u8)
            .map(|i| {
                vec![Write {
                    ns: "c".into(),
                    key: vec![i % 3],
                    old: (i >= 3).then(|| vec![i - 3]),
                    new: Some(vec![i]),
                }]
            })
            .collect();
        let start = LtHash::of_entry("c", b"x", b"y");
        let mut expected = Vec::new();
        let mut lattice = start.clone();
        for ws in &writes {
            for w in ws {
                lattice.update(&w.ns, &w.key, w.old.as_deref(), w.new.as_deref());
            }
            expected.push(lattice.root());
        }
        for workers in [1, 2, 3, 8] {
            let roots = Roots::new(writes.len(), workers);
            let got = Mutex::new(vec![None; writes.len()]);
            std::thread::scope(|s| {
                for w in 0..workers {
                    let (roots, start, writes, got) = (&roots, &start, &writes, &got);
                    let shared = EntryCache::default();
                    s.spawn(move || {
                        let done = |i: usize, root| lock(got)[i] = Some(root);
                        roots.hash(w, true, start, &shared, |i, f| f(&writes[i]), done);
                    });
                }
            });
            let (last, _) = roots.finish(&start).unwrap();
            let got: Vec<_> = got
                .into_inner()
                .unwrap()
                .into_iter()
                .map(Option::unwrap)
                .collect();
            assert_eq!(got, expected, "{workers} workers");
            assert_eq!(last, lattice);
        }
    }
}
