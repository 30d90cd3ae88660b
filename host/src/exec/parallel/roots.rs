//! The state roots of a parallel batch, on the workers: each transaction's receipt
//! carries the root after it, the hash of the lattice `start + Σ changes up to it` — a
//! prefix sum. Each worker takes a contiguous share of the batch, hashes its entries'
//! changes (BLAKE3 and the 2 KiB expansion of every changed entry: the largest cost of
//! a transaction) and sums them ([`Roots::sum`]); after a barrier, it offsets its share
//! by the shares before it, hashes the lattices (eight at a time where AVX-512 serves:
//! `state/avx512.rs`), and hands each root on
//! ([`Roots::hand_on`]; the worker then builds that transaction's rows). The in-order
//! commit only stages what the workers built.

use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Per worker: the lattice after each transaction of its share, less the shares
    /// before it.
    prefixes: Vec<Mutex<Vec<LtHash>>>,
    /// The lanes each worker expanded, and the hashes of the writer's entries it
    /// replaced, for the writer's cache afterwards.
    caches: Mutex<Vec<WorkerCache>>,
    /// Per worker: whether it handed on every root of its share.
    finished: Vec<Mutex<bool>>,
    /// Whether a worker has finished its share: the first to does the batch's tidying.
    first_done: AtomicBool,
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
            prefixes: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
            caches: Mutex::new(Vec::new()),
            finished: (0..workers).map(|_| Mutex::new(false)).collect(),
            first_done: AtomicBool::new(false),
        }
    }

    fn share(&self, worker: usize) -> std::ops::Range<usize> {
        let per = self.n.div_ceil(self.workers);
        (worker * per).min(self.n)..((worker + 1) * per).min(self.n)
    }

    /// Worker `worker`'s first part: its share's changes summed. `writes(i)` gives
    /// transaction `i`'s writes; old entries' lanes come from `shared` (the writer's
    /// cache) when it has them. Nothing to do when the batch failed (`go` false).
    pub(crate) fn sum(
        &self,
        worker: usize,
        go: bool,
        shared: &EntryCache,
        writes: impl Fn(usize, &mut dyn FnMut(&[Write])),
    ) {
        if !go {
            return;
        }
        let share = self.share(worker);
        let mut prefix = Vec::with_capacity(share.len());
        let mut acc = LtHash::default();
        let (mut local, mut dead) = (EntryCache::default(), Vec::new());
        for i in share {
            writes(i, &mut |ws| {
                for w in ws {
                    let (old, new) = (w.old.as_deref(), w.new.as_deref());
                    acc.update_shared(shared, &mut local, &mut dead, &w.ns, &w.key, old, new);
                }
            });
            prefix.push(acc.clone());
        }
        *lock(&self.sums[worker]) = Some(acc);
        *lock(&self.prefixes[worker]) = prefix;
        lock(&self.caches).push((local, dead));
    }

    /// Worker `worker`'s second part, every worker calling it once after [`Roots::sum`]
    /// (`go` false: the batch failed, only the barrier is kept): `done(i, root)` takes
    /// the root after transaction `i`. True for the first worker to finish its share
    /// (the others may still be handing roots on, but no one reads the caches any
    /// more).
    pub(crate) fn hand_on(
        &self,
        worker: usize,
        go: bool,
        start: &LtHash,
        mut done: impl FnMut(usize, StateRoot),
    ) -> bool {
        self.barrier.wait();
        if !go {
            return false;
        }
        let mut offset = start.clone();
        for sum in &self.sums[..worker] {
            match &*lock(sum) {
                Some(s) => offset.add(s),
                None => return false,
            }
        }
        let mut lattices = std::mem::take(&mut *lock(&self.prefixes[worker]));
        for lattice in &mut lattices {
            lattice.add(&offset);
        }
        // Hashed together: eight at a time cost about what one does.
        for (i, root) in self.share(worker).zip(LtHash::roots(&lattices)) {
            done(i, root);
        }
        *lock(&self.finished[worker]) = true;
        !self.first_done.swap(true, Ordering::AcqRel)
    }

    /// The lanes the workers expanded and the writer's entries they replaced, for
    /// [`EntryCache::absorb`] (once every worker summed its share; empty after the
    /// first call).
    pub(crate) fn take_caches(&self) -> Vec<WorkerCache> {
        std::mem::take(&mut *lock(&self.caches))
    }

    /// The lattice after the last transaction; `None` when a worker did not finish its
    /// share.
    pub(crate) fn finish(self, start: &LtHash) -> Option<LtHash> {
        for done in self.finished {
            if !done.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return None;
            }
        }
        let mut lattice = start.clone();
        for sum in self.sums {
            lattice.add(&sum.into_inner().unwrap_or_else(|e| e.into_inner())?);
        }
        Some(lattice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_roots_match_one_lattice_updated_in_order() {
        // Enough that shares of one and two workers hash eight lattices at a time.
        let writes: Vec<Vec<Write>> = (0..40u8)
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
            let firsts = std::thread::scope(|s| {
                let handles: Vec<_> = (0..workers)
                    .map(|w| {
                        let (roots, start, writes, got) = (&roots, &start, &writes, &got);
                        let shared = EntryCache::default();
                        s.spawn(move || {
                            let done = |i: usize, root| lock(got)[i] = Some(root);
                            roots.sum(w, true, &shared, |i, f| f(&writes[i]));
                            roots.hand_on(w, true, start, done)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|&first| first)
                    .count()
            });
            assert_eq!(firsts, 1, "one worker tidies up");
            assert_eq!(roots.take_caches().len(), workers);
            assert!(roots.take_caches().is_empty());
            let last = roots.finish(&start).unwrap();
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
