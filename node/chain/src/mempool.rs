//! Pending transactions: bounded, deduplicated, ordered per account.

use std::collections::{BTreeMap, HashMap, VecDeque};

use cpc_types::codec::Encode;
use cpc_types::{Address, Hash32, SignedTransaction};
use serde::{Deserialize, Serialize};

/// Limits of the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most pending transactions.
    pub max_txs: usize,
    /// Most bytes of pending transactions (encoded).
    pub max_bytes: usize,
    /// Most pending transactions of one account.
    pub max_per_account: usize,
    /// How far beyond an account's nonce a transaction may be queued.
    pub max_nonce_gap: u64,
    /// Seconds a transaction may wait before it is dropped.
    pub ttl_secs: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 200_000,
            max_bytes: 128 << 20,
            max_per_account: 4096,
            max_nonce_gap: 4096,
            ttl_secs: 600,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The same transaction is pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Hash32),
    /// The same transaction is committed.
    #[error("transaction {0} is already committed")]
    Committed(Hash32),
    /// The nonce is used or too far ahead.
    #[error("{0}")]
    Nonce(String),
    /// The signature does not verify.
    #[error("invalid signature")]
    Signature,
    /// The transaction cannot execute (funds, fee, chain, rule of its kind).
    #[error("{0}")]
    Invalid(String),
    /// The mempool is full, or the account has too many pending transactions.
    #[error("{0}")]
    Full(String),
    /// The node must be restarted before it accepts transactions again.
    #[error("the node cannot accept transactions until it is restarted")]
    Unavailable,
    /// The transaction exceeds the size limit.
    #[error("the transaction encodes to {0} bytes, the limit is {max}", max = cpc_types::MAX_TX_BYTES)]
    TooLarge(usize),
}

struct Entry {
    tx: SignedTransaction,
    sender: Address,
    bytes: usize,
    arrived_ms: u64,
    seq: u64,
}

/// The pending transactions.
pub(crate) struct Mempool {
    config: MempoolConfig,
    by_id: HashMap<Hash32, Entry>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Hash32>>,
    by_seq: BTreeMap<u64, Hash32>,
    next_seq: u64,
    bytes: usize,
    /// Recently rejected or dropped transactions and why, for status queries.
    rejected: HashMap<Hash32, String>,
    rejected_order: VecDeque<Hash32>,
}

const REJECTED_KEPT: usize = 50_000;

impl Mempool {
    pub(crate) fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            by_id: HashMap::new(),
            by_sender: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            rejected: HashMap::new(),
            rejected_order: VecDeque::new(),
        }
    }

    pub(crate) fn config(&self) -> &MempoolConfig {
        &self.config
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn contains(&self, id: &Hash32) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn get(&self, id: &Hash32) -> Option<&SignedTransaction> {
        self.by_id.get(id).map(|e| &e.tx)
    }

    pub(crate) fn pending_of(&self, sender: &Address) -> usize {
        self.by_sender.get(sender).map_or(0, BTreeMap::len)
    }

    /// The highest nonce such that `account_nonce..=it` are all pending, if any is.
    pub(crate) fn next_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut n = account_nonce;
        if let Some(q) = self.by_sender.get(sender) {
            for &nonce in q.range(account_nonce..).map(|(k, _)| k) {
                if nonce != n {
                    break;
                }
                n += 1;
            }
        }
        n
    }

    pub(crate) fn rejection(&self, id: &Hash32) -> Option<&str> {
        self.rejected.get(id).map(String::as_str)
    }

    pub(crate) fn note_rejected(&mut self, id: Hash32, why: String) {
        if self.rejected.insert(id, why).is_none() {
            self.rejected_order.push_back(id);
            if self.rejected_order.len() > REJECTED_KEPT
                && let Some(old) = self.rejected_order.pop_front()
            {
                self.rejected.remove(&old);
            }
        }
    }

    /// Inserts a checked transaction, evicting to stay within bounds.
    pub(crate) fn insert(
        &mut self,
        tx: SignedTransaction,
        account_nonce: u64,
        now_ms: u64,
    ) -> Result<Hash32, SubmitError> {
        let id = tx.id();
        let sender = tx.sender();
        let nonce = tx.tx.nonce;
        if self.by_id.contains_key(&id) {
            return Err(SubmitError::Duplicate(id));
        }
        if nonce < account_nonce {
            return Err(SubmitError::Nonce(format!(
                "nonce {nonce} is already used; the account's next nonce is {account_nonce}"
            )));
        }
        if nonce > account_nonce.saturating_add(self.config.max_nonce_gap) {
            return Err(SubmitError::Nonce(format!(
                "nonce {nonce} is more than {} ahead of the account's next nonce {account_nonce}",
                self.config.max_nonce_gap
            )));
        }
        if self
            .by_sender
            .get(&sender)
            .is_some_and(|q| q.contains_key(&nonce))
        {
            return Err(SubmitError::Nonce(format!(
                "another transaction with nonce {nonce} is pending"
            )));
        }
        if self.pending_of(&sender) >= self.config.max_per_account {
            return Err(SubmitError::Full(format!(
                "account {sender} has {} pending transactions, the limit",
                self.config.max_per_account
            )));
        }
        let bytes = tx.encode().len();
        if bytes > self.config.max_bytes {
            return Err(SubmitError::Full(
                "the transaction is larger than the whole mempool".into(),
            ));
        }
        while self.by_id.len() >= self.config.max_txs || self.bytes + bytes > self.config.max_bytes
        {
            // Evict the newest transaction of the busiest account, unless that is the
            // sender itself: one flooding account cannot push others out.
            let busiest = self
                .by_sender
                .iter()
                .max_by_key(|(a, q)| (q.len(), std::cmp::Reverse(**a)))
                .map(|(a, q)| (*a, q.len()));
            match busiest {
                Some((a, n)) if a != sender && n > self.pending_of(&sender) + 1 => {
                    let victim = self
                        .by_sender
                        .get(&a)
                        .and_then(|q| q.values().next_back().copied());
                    if let Some(v) = victim {
                        self.remove(&v);
                        self.note_rejected(v, "evicted from a full mempool".into());
                    }
                }
                _ => return Err(SubmitError::Full("the mempool is full; retry later".into())),
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_sender.entry(sender).or_default().insert(nonce, id);
        self.by_seq.insert(seq, id);
        self.bytes += bytes;
        self.by_id.insert(
            id,
            Entry {
                tx,
                sender,
                bytes,
                arrived_ms: now_ms,
                seq,
            },
        );
        Ok(id)
    }

    pub(crate) fn remove(&mut self, id: &Hash32) -> Option<SignedTransaction> {
        let e = self.by_id.remove(id)?;
        self.bytes -= e.bytes;
        self.by_seq.remove(&e.seq);
        if let Some(q) = self.by_sender.get_mut(&e.sender) {
            q.remove(&e.tx.tx.nonce);
            if q.is_empty() {
                self.by_sender.remove(&e.sender);
            }
        }
        Some(e.tx)
    }

    /// Up to `max` transactions for the next block: accounts take turns in the order their
    /// oldest pending transaction arrived, each contributing its transactions in nonce order
    /// starting at its account nonce.
    pub(crate) fn pick(
        &self,
        max: usize,
        account_nonce: impl Fn(&Address) -> u64,
    ) -> Vec<SignedTransaction> {
        let mut order: Vec<(u64, Address)> = self
            .by_sender
            .iter()
            .filter_map(|(a, q)| {
                q.values()
                    .map(|id| self.by_id[id].seq)
                    .min()
                    .map(|s| (s, *a))
            })
            .collect();
        order.sort();
        let mut cursors: Vec<(Address, u64)> = order
            .into_iter()
            .map(|(_, a)| (a, account_nonce(&a)))
            .collect();
        let mut out = Vec::new();
        while out.len() < max && !cursors.is_empty() {
            cursors.retain_mut(|(a, next)| {
                if out.len() >= max {
                    return true;
                }
                match self.by_sender.get(a).and_then(|q| q.get(next)) {
                    Some(id) => {
                        out.push(self.by_id[id].tx.clone());
                        *next += 1;
                        true
                    }
                    None => false,
                }
            });
        }
        out
    }

    /// Drops transactions whose nonce is below the account's, and those older than the TTL.
    pub(crate) fn prune(&mut self, account_nonce: impl Fn(&Address) -> u64, now_ms: u64) {
        let mut stale = Vec::new();
        for (a, q) in &self.by_sender {
            let n = account_nonce(a);
            stale.extend(
                q.range(..n)
                    .map(|(_, id)| (*id, "nonce already used".to_owned())),
            );
        }
        let ttl_ms = self.config.ttl_secs.saturating_mul(1000);
        for id in self.by_seq.values() {
            let e = &self.by_id[id];
            if now_ms.saturating_sub(e.arrived_ms) <= ttl_ms {
                break;
            }
            stale.push((*id, "expired in the mempool".to_owned()));
        }
        for (id, why) in stale {
            if self.remove(&id).is_some() {
                self.note_rejected(id, why);
            }
        }
    }
}
