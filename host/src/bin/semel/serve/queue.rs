//! The hand-off from the request threads to the synchronous host: a queue bounded in
//! transactions, drained by executor threads that run whatever waits as one batch (one
//! parallel batch, one group commit), and the latch that makes a retry of an id in
//! flight wait for that run instead of racing it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use semel::limits::BATCH_TRANSACTIONS_MAX;
use semel::{CheckedTx, Host, Receipt, SubmitError, Uuid};
use tokio::sync::{oneshot, watch};

use super::metrics::Metrics;

/// One request's transactions, in order, and where their results go.
struct Job {
    txs: Vec<CheckedTx>,
    reply: oneshot::Sender<Vec<Result<Receipt, SubmitError>>>,
}

/// Why a job was not queued.
#[derive(Debug)]
pub enum Refused {
    /// The queue holds too many transactions already.
    Busy,
    /// The executors have stopped (the server is shutting down).
    Stopped,
}

/// The queue and its executor threads.
pub struct Queue {
    /// `QUEUED_TRANSACTIONS_MAX` (lower in tests).
    max: usize,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    queued: Arc<AtomicUsize>,
    executors: Mutex<Vec<JoinHandle<()>>>,
}

impl Queue {
    /// Starts `executors` threads that run queued transactions on `host`.
    pub fn start(max: usize, host: Arc<Host>, metrics: Arc<Metrics>, executors: usize) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        let handles = (0..executors.max(1))
            .map(|i| {
                let (host, metrics, receiver, queued) = (
                    Arc::clone(&host),
                    Arc::clone(&metrics),
                    Arc::clone(&receiver),
                    Arc::clone(&queued),
                );
                std::thread::Builder::new()
                    .name(format!("semel-executor-{i}"))
                    .spawn(move || execute(&host, &metrics, &receiver, &queued))
                    .expect("an executor thread starts")
            })
            .collect();
        Self {
            max,
            sender: Mutex::new(Some(sender)),
            queued,
            executors: Mutex::new(handles),
        }
    }

    /// Transactions the queue holds at most.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Transactions waiting now.
    pub fn depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues `txs` and waits for their results, in order.
    pub async fn submit(
        &self,
        txs: Vec<CheckedTx>,
    ) -> Result<Vec<Result<Receipt, SubmitError>>, Refused> {
        let n = txs.len();
        // Counted before sending, so that the bound holds however many requests race.
        if self.queued.fetch_add(n, Ordering::AcqRel) + n > self.max {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Refused::Busy);
        }
        let (reply, answer) = oneshot::channel();
        let sent = match &*self.sender.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(sender) => sender.send(Job { txs, reply }).is_ok(),
            None => false,
        };
        if !sent {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Refused::Stopped);
        }
        answer.await.map_err(|_| Refused::Stopped)
    }

    /// Stops taking jobs, lets the executors finish every queued one, and waits for them.
    pub fn stop(&self) {
        drop(self.sender.lock().unwrap_or_else(|p| p.into_inner()).take());
        let handles =
            std::mem::take(&mut *self.executors.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

/// An executor thread: takes the first job waiting and every other one queued behind it
/// (up to a batch), runs their transactions as one batch, and answers each job.
fn execute(
    host: &Host,
    metrics: &Metrics,
    receiver: &Mutex<mpsc::Receiver<Job>>,
    queued: &AtomicUsize,
) {
    loop {
        let jobs = {
            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(first) = receiver.recv() else {
                return;
            };
            let mut n = first.txs.len();
            let mut jobs = vec![first];
            while n < BATCH_TRANSACTIONS_MAX {
                match receiver.try_recv() {
                    Ok(job) => {
                        n += job.txs.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let mut txs = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            replies.push((job.txs.len(), job.reply));
            txs.extend(job.txs);
        }
        queued.fetch_sub(txs.len(), Ordering::AcqRel);
        metrics.group(txs.len());
        // Checked already (by the request's thread); a lone one takes the host's
        // low-latency path.
        let mut results = host.submit_checked(txs).into_iter();
        for (n, reply) in replies {
            // A client that went away still had its transactions run; nothing to tell it.
            let _ = reply.send(results.by_ref().take(n).collect());
        }
    }
}

/// Ids being executed for some request right now, each with a signal that its run
/// ended.
#[derive(Default)]
pub struct InFlight {
    ids: Mutex<HashMap<Uuid, watch::Receiver<bool>>>,
}

/// The ids a request holds while it runs; dropping it releases them and wakes whoever
/// waits for them.
pub struct Held<'a> {
    inflight: &'a InFlight,
    ids: Vec<Uuid>,
    _done: watch::Sender<bool>,
    /// Whether it waited for another request's run of one of them: the caller looks
    /// them up again, since that run may have recorded them.
    pub waited: bool,
}

impl InFlight {
    /// Holds every id of `ids` for the caller, after waiting for any of them that
    /// another request holds to be released (its run ended: the id is recorded now, or
    /// failed to be).
    pub async fn hold<'a>(&'a self, ids: &[Uuid]) -> Held<'a> {
        let mut waited = false;
        loop {
            let busy = {
                let mut map = self.ids.lock().unwrap_or_else(|p| p.into_inner());
                match ids.iter().find_map(|id| map.get(id).cloned()) {
                    Some(rx) => rx,
                    None => {
                        let (tx, rx) = watch::channel(false);
                        for id in ids {
                            map.insert(*id, rx.clone());
                        }
                        return Held {
                            inflight: self,
                            ids: ids.to_vec(),
                            _done: tx,
                            waited,
                        };
                    }
                }
            };
            let mut busy = busy;
            // Returns when the holder's sender is dropped.
            let _ = busy.changed().await;
            waited = true;
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut map = self.inflight.ids.lock().unwrap_or_else(|p| p.into_inner());
        for id in &self.ids {
            map.remove(id);
        }
    }
}
