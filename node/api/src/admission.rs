//! Gathers transaction submissions from concurrent requests into batches, so one
//! accelerator call verifies many signatures, and keeps the CPU work off the async runtime.

use std::sync::{Arc, Weak};

use cpc_chain::{Chain, SubmitError};
use cpc_types::{Hash32, SignedTransaction};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::ApiError;

/// Most transactions handed to the chain in one call.
const BATCH: usize = 4096;

type Results = Vec<Result<Hash32, SubmitError>>;

struct Job {
    txs: Vec<SignedTransaction>,
    reply: oneshot::Sender<Results>,
}

/// The submission queue and its worker thread.
#[derive(Debug, Clone)]
pub struct Admission {
    queue: mpsc::UnboundedSender<Job>,
    /// One permit per transaction that may wait: bounds the queue's memory in
    /// transactions, not in requests.
    room: Arc<Semaphore>,
    capacity: usize,
}

impl Admission {
    /// Starts the worker; at most `capacity` transactions wait in the queue.
    pub fn start(chain: &Arc<Chain>, capacity: usize) -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<Job>();
        // The worker must not keep the chain (and its RocksDB) open after its owner
        // drops it: a database still open when the process exits aborts in RocksDB's
        // static destructors.
        let chain: Weak<Chain> = Arc::downgrade(chain);
        let spawned = std::thread::Builder::new()
            .name("cpc-admission".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    let mut n = jobs[0].txs.len();
                    while n < BATCH {
                        match rx.try_recv() {
                            Ok(job) => {
                                n += job.txs.len();
                                jobs.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    let mut all = Vec::with_capacity(n);
                    let mut sizes = Vec::with_capacity(jobs.len());
                    let mut replies = Vec::with_capacity(jobs.len());
                    for job in jobs {
                        sizes.push(job.txs.len());
                        all.extend(job.txs);
                        replies.push(job.reply);
                    }
                    // A dropped chain drops the replies: submitters see the worker stopped.
                    let Some(chain) = chain.upgrade() else { break };
                    let mut results = chain.submit(all, crate::now_ms()).into_iter();
                    drop(chain);
                    for (size, reply) in sizes.into_iter().zip(replies) {
                        // A client that went away no longer waits for its answer.
                        let _ = reply.send(results.by_ref().take(size).collect());
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the admission worker; submissions will fail");
        }
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            queue,
            room: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// Submits transactions and waits for their admission results.
    pub async fn submit(&self, txs: Vec<SignedTransaction>) -> Result<Results, ApiError> {
        let n = txs.len();
        if n > self.capacity {
            return Err(ApiError::TooLarge(format!(
                "{n} transactions exceed the admission queue of {}",
                self.capacity
            )));
        }
        let permits = u32::try_from(n)
            .ok()
            .and_then(|n| self.room.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                ApiError::RateLimited("the admission queue is full; retry later".into())
            })?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { txs, reply })
            .map_err(|_| ApiError::Unavailable("the admission worker stopped".into()))?;
        let results = answer
            .await
            .map_err(|_| ApiError::Unavailable("the admission worker stopped".into()));
        drop(permits);
        results
    }
}
