//! Gathers transaction submissions from concurrent requests into batches, so one
//! accelerator call verifies many signatures, and keeps the CPU work off the async runtime.

use std::sync::Arc;

use cpc_chain::{Chain, SubmitError};
use cpc_types::{Hash32, SignedTransaction};
use tokio::sync::{mpsc, oneshot};

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
    queue: mpsc::Sender<Job>,
}

impl Admission {
    /// Starts the worker; at most `capacity` submissions wait in the queue.
    pub fn start(chain: Arc<Chain>, capacity: usize) -> Self {
        let (queue, mut rx) = mpsc::channel::<Job>(capacity.max(1));
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
                    let mut results = chain.submit(all, crate::now_ms()).into_iter();
                    for (size, reply) in sizes.into_iter().zip(replies) {
                        // A client that went away no longer waits for its answer.
                        let _ = reply.send(results.by_ref().take(size).collect());
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the admission worker; submissions will fail");
        }
        Self { queue }
    }

    /// Submits transactions and waits for their admission results.
    pub async fn submit(&self, txs: Vec<SignedTransaction>) -> Result<Results, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Job { txs, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    ApiError::RateLimited("the admission queue is full; retry later".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    ApiError::Unavailable("the admission worker stopped".into())
                }
            })?;
        answer
            .await
            .map_err(|_| ApiError::Unavailable("the admission worker stopped".into()))
    }
}
