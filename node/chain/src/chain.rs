//! The chain service.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use cpc_accel::Dispatcher;
use cpc_consensus::vrf::VrfSecret;
use cpc_state::CommitteeInfo;
use cpc_state::{BlockEnv, Genesis, GenesisError, State};
use cpc_storage::{StorageError, Store, StoreConfig};
use cpc_types::{
    Address, Block, BlockHeader, Certificate, Hash32, PublicKey, SecretKey, SignedTransaction,
    Ticket, TxReceipt, VrfProof,
};
use serde::{Deserialize, Serialize};

use crate::exec::{genesis_block, tx_root, verify_signatures};
use crate::mempool::{Mempool, MempoolConfig, SubmitError};

/// Settings of the chain service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Mempool limits.
    pub mempool: MempoolConfig,
}

/// Failures of the chain service.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The genesis file is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// Stored data is inconsistent.
    #[error("{0}; run `cpchain check` on the data directory")]
    Corrupt(String),
    /// Only a node with a validator key builds blocks.
    #[error("this node has no validator key")]
    NoKey,
    /// A final block does not extend the head.
    #[error("block {height} does not extend the head at {head}")]
    NotChild {
        /// The block's height.
        height: u64,
        /// The head's height.
        head: u64,
    },
    /// A block commit failed earlier; memory and disk may differ until a restart.
    #[error("a block commit failed earlier; restart the node to reload the state from disk")]
    Poisoned,
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// In the mempool.
    Pending {
        /// The transaction.
        tx: SignedTransaction,
    },
    /// In a committed block.
    Committed {
        /// Block height.
        height: u64,
        /// Block hash.
        block: Hash32,
        /// Index in the block.
        index: u32,
        /// The transaction.
        tx: SignedTransaction,
        /// What executing it did.
        receipt: TxReceipt,
    },
    /// Dropped after admission (failed at execution, evicted or expired).
    Rejected {
        /// Why.
        reason: String,
    },
    /// Not known to this node.
    Unknown,
}

/// An account as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    /// The address.
    pub address: Address,
    /// Spendable base units.
    pub balance: u64,
    /// Committed nonce: the next transaction to execute carries it.
    pub nonce: u64,
    /// The nonce to use for a new transaction, counting pending ones.
    pub next_nonce: u64,
    /// Pending transactions.
    pub pending: usize,
    /// Free transactions left today.
    pub quota_left: u64,
    /// DApp stake.
    pub dapp_stake: u64,
    /// Stake leased in.
    pub leased_in: u64,
    /// Unstaked base units, spendable from the next day.
    pub unbonding: u64,
}

/// The node's view of its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// The chain id.
    pub chain_id: u32,
    /// The genesis hash.
    pub genesis: Hash32,
    /// Height of the last committed block.
    pub height: u64,
    /// Its hash.
    pub head: Hash32,
    /// Its timestamp.
    pub head_timestamp_ms: u64,
    /// Its state root.
    pub state_root: Hash32,
    /// Pending transactions.
    pub mempool_txs: usize,
    /// Their encoded size.
    pub mempool_bytes: usize,
    /// This node's validator address, if it has a key.
    pub validator: Option<Address>,
    /// Whether this node is a committee member and so proposes and votes.
    pub producing: bool,
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChainMetrics {
    /// Blocks committed since start.
    pub blocks_total: u64,
    /// Transactions committed since start.
    pub txs_committed_total: u64,
    /// Transactions admitted into the mempool since start.
    pub txs_admitted_total: u64,
    /// Submissions refused at admission since start.
    pub txs_refused_total: u64,
    /// Admitted transactions dropped before commit since start.
    pub txs_dropped_total: u64,
    /// Nanoseconds spent producing and committing blocks.
    pub block_commit_ns_total: u64,
}

#[derive(Default)]
struct Counters {
    blocks: AtomicU64,
    committed: AtomicU64,
    admitted: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
    commit_ns: AtomicU64,
}

struct Inner {
    state: State,
    head: BlockHeader,
}

/// A block this node built, executed on its parent's state but not committed.
#[derive(Clone, Debug)]
pub struct Built {
    /// The block, without certificate.
    pub block: Block,
    /// Its receipts.
    pub receipts: Vec<TxReceipt>,
    /// The state after it.
    pub state: State,
    /// Transactions dropped because they failed to execute.
    pub dropped: usize,
}

/// The chain service; share it with an `Arc`.
pub struct Chain {
    genesis: Genesis,
    genesis_hash: Hash32,
    accel: Arc<Dispatcher>,
    store: Store,
    key: Option<SecretKey>,
    outbox: Mutex<Vec<SignedTransaction>>,
    gossip: AtomicBool,
    inner: RwLock<Inner>,
    mempool: Mutex<Mempool>,
    counters: Counters,
    poisoned: AtomicBool,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("genesis", &self.genesis_hash)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Opens the chain: commits genesis into an empty store, or loads the state and head of
    /// an existing one and checks that they agree.
    pub fn open(
        genesis: Genesis,
        store: &StoreConfig,
        accel: Arc<Dispatcher>,
        key: Option<SecretKey>,
        config: ChainConfig,
    ) -> Result<Chain, ChainError> {
        genesis.validate()?;
        let genesis_hash = genesis.hash();
        let store = Store::open(store, genesis_hash)?;
        let (state, head) = match store.head()? {
            None => {
                let mut state = State::from_genesis(&genesis)?;
                let g = genesis_block(&genesis, &mut state, &accel);
                store.commit_block(&g, &[], &state.take_diff())?;
                (state, g.header)
            }
            Some(height) => {
                let (head, _) = store.header(height)?.ok_or_else(|| {
                    ChainError::Corrupt(format!("the head block {height} is missing"))
                })?;
                let mut state =
                    State::from_entries(store.state_entries()?).map_err(ChainError::Corrupt)?;
                let root = state.root(&accel);
                if root != head.state_root {
                    return Err(ChainError::Corrupt(format!(
                        "the stored state has root {root}, block {height} says {}",
                        head.state_root
                    )));
                }
                (state, head)
            }
        };
        Ok(Chain {
            genesis,
            genesis_hash,
            accel,
            store,
            key,
            outbox: Mutex::new(Vec::new()),
            gossip: AtomicBool::new(false),
            inner: RwLock::new(Inner { state, head }),
            mempool: Mutex::new(Mempool::new(config.mempool)),
            counters: Counters::default(),
            poisoned: AtomicBool::new(false),
        })
    }

    // A panic while the state is locked for writing may leave part of a block in memory:
    // the chain is then poisoned, refuses to produce or admit, and reads still answer
    // (from memory that may be ahead of the disk) until an operator restarts the node.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| {
            self.poisoned.store(true, Ordering::Release);
            e.into_inner()
        })
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| {
            self.poisoned.store(true, Ordering::Release);
            e.into_inner()
        })
    }

    // Mempool operations complete or leave it unchanged, so its data stays usable.
    fn pool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a failed commit or a panic left memory and disk possibly apart; the node
    /// must be restarted.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The accelerator dispatcher.
    pub fn accel(&self) -> &Dispatcher {
        &self.accel
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Whether this node is a member of the committee in office (it proposes and votes).
    pub fn is_producer(&self) -> bool {
        self.key
            .as_ref()
            .is_some_and(|k| self.read().state.committee().contains(&k.public()))
    }

    fn env(&self, head: &BlockHeader, now_ms: u64) -> BlockEnv {
        BlockEnv {
            height: head.height + 1,
            timestamp_ms: now_ms
                .min(cpc_state::MAX_TIMESTAMP_MS)
                .max(head.timestamp_ms.saturating_add(1)),
            proposer: self
                .key
                .as_ref()
                .map_or(head.proposer.address(), SecretKey::address),
        }
    }

    /// Admits transactions into the mempool: not committed yet, valid signature (one
    /// accelerator batch for all of them), usable nonce, and — for an account's next
    /// transaction — executable now. Returns one result per transaction, in order.
    pub fn submit(
        &self,
        txs: Vec<SignedTransaction>,
        now_ms: u64,
    ) -> Vec<Result<Hash32, SubmitError>> {
        let results = self.admit_all(txs.clone(), now_ms);
        let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded in case the network stops draining it: then peers get them from blocks.
        if self.gossip.load(Ordering::Relaxed) && outbox.len() < 1 << 18 {
            outbox.extend(
                txs.into_iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(t, _)| t),
            );
        }
        results
    }

    /// Admits transactions relayed by a peer: like [`Chain::submit`], but they are not
    /// gossiped again (the network relays them itself).
    pub fn submit_from_peer(
        &self,
        txs: Vec<SignedTransaction>,
        now_ms: u64,
    ) -> Vec<Result<Hash32, SubmitError>> {
        self.admit_all(txs, now_ms)
    }

    fn admit_all(
        &self,
        txs: Vec<SignedTransaction>,
        now_ms: u64,
    ) -> Vec<Result<Hash32, SubmitError>> {
        if self.is_poisoned() {
            return txs.iter().map(|_| Err(SubmitError::Unavailable)).collect();
        }
        let mut results: Vec<Option<Result<Hash32, SubmitError>>> = vec![None; txs.len()];
        let verdicts = verify_signatures(&self.accel, &txs);
        for (i, tx) in txs.iter().enumerate() {
            let size = cpc_types::Encode::encode(tx).len();
            if size > cpc_types::MAX_TX_BYTES {
                results[i] = Some(Err(SubmitError::TooLarge(size)));
            } else if !verdicts.get(i).copied().unwrap_or(false) {
                results[i] = Some(Err(SubmitError::Signature));
            } else if let Ok(Some(_)) = self.store.tx_location(&tx.id()) {
                results[i] = Some(Err(SubmitError::Committed(tx.id())));
            }
        }
        {
            let inner = self.read();
            let env = self.env(&inner.head, now_ms);
            let mut pool = self.pool();
            for (i, tx) in txs.into_iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                let r = self.admit(&inner.state, &env, &mut pool, tx, now_ms);
                results[i] = Some(r);
            }
        }
        let results: Vec<Result<Hash32, SubmitError>> = results
            .into_iter()
            .map(|r| r.unwrap_or(Err(SubmitError::Signature)))
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        self.counters.admitted.fetch_add(ok, Ordering::Relaxed);
        self.counters
            .refused
            .fetch_add(results.len() as u64 - ok, Ordering::Relaxed);
        results
    }

    fn admit(
        &self,
        state: &State,
        env: &BlockEnv,
        pool: &mut Mempool,
        tx: SignedTransaction,
        now_ms: u64,
    ) -> Result<Hash32, SubmitError> {
        if tx.tx.chain_id != state.chain_id() {
            return Err(SubmitError::Invalid(format!(
                "transaction is for chain {}, this is chain {}",
                tx.tx.chain_id,
                state.chain_id()
            )));
        }
        if pool.contains(&tx.id()) {
            return Err(SubmitError::Duplicate(tx.id()));
        }
        let account = state.account(&tx.sender());
        let account_nonce = account.nonce;
        // Queued transactions must at least be able to pay for themselves.
        let min = state.params().base_fee.max(tx.tx.max_fee);
        if account.balance < min {
            return Err(SubmitError::Invalid(format!(
                "insufficient funds: {min} needed to queue a transaction, {} available",
                account.balance
            )));
        }
        if tx.tx.nonce == account_nonce {
            // The account's next transaction must execute against the current state;
            // later ones are checked when they become next.
            state.check_tx(env, &tx).map_err(|e| {
                if e.is_nonce() {
                    SubmitError::Nonce(e.to_string())
                } else {
                    SubmitError::Invalid(e.to_string())
                }
            })?;
        }
        pool.insert(tx, account_nonce, now_ms)
    }

    /// Builds this node's block for `view` on top of `parent`, whose post-state is
    /// `state`: the `tickets` that are valid there, the parent's votes `parent_votes`
    /// (a quorum certificate, or empty), and up to `max_block_txs` mempool transactions
    /// that execute, in the mempool's fair order. A transaction that fails is dropped from
    /// the mempool with its reason. Nothing is committed; the consensus engine commits the
    /// block once it is final.
    pub fn build_block(
        &self,
        parent: &BlockHeader,
        mut state: State,
        view: u64,
        now_ms: u64,
        tickets: &[Ticket],
        mut parent_votes: Certificate,
    ) -> Result<Built, ChainError> {
        if self.is_poisoned() {
            return Err(ChainError::Poisoned);
        }
        let Some(key) = self.key.as_ref() else {
            return Err(ChainError::NoKey);
        };
        state.take_diff();
        let info = state.committee_info();
        // Votes this node cannot stand behind are left out rather than fail the block.
        let voters =
            match crate::exec::parent_voters(&self.accel, parent, &parent_votes, &info.members) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "leaving the parent's votes out of the block");
                    parent_votes = Certificate::default();
                    None
                }
            };
        let max = state.params().max_block_txs as usize;
        let picked = self.pool().pick(max, |a| state.account(a).nonce);
        let env = self.env(parent, now_ms);
        state.begin_block(&env);
        let mut included = Vec::new();
        for t in tickets.iter().take(cpc_state::MAX_BLOCK_TICKETS) {
            if state.record_tickets(std::slice::from_ref(t)).is_ok() {
                included.push(*t);
            }
        }
        let mut txs = Vec::with_capacity(picked.len());
        let mut receipts = Vec::with_capacity(picked.len());
        let mut dropped = Vec::new();
        // After one of its transactions fails, an account's later ones would fail on the
        // nonce: they wait for the next block instead of being dropped.
        let mut failed: std::collections::BTreeSet<Address> = std::collections::BTreeSet::new();
        // A transaction that fails on a parent that is not final yet may succeed on
        // another fork: it is dropped from the mempool only when the parent is the head.
        let on_head = parent.hash() == self.read().head.hash();
        let mut bytes = 0;
        for tx in picked {
            let sender = tx.sender();
            if failed.contains(&sender) {
                continue;
            }
            let size = cpc_types::Encode::encode(&tx).len();
            if bytes + size > cpc_types::MAX_BLOCK_TX_BYTES {
                break;
            }
            match state.apply_tx(&env, &tx) {
                Ok(r) => {
                    bytes += size;
                    receipts.push(r);
                    txs.push(tx);
                }
                Err(e) => {
                    failed.insert(sender);
                    if on_head {
                        dropped.push((tx.id(), e.to_string()));
                    }
                }
            }
        }
        let term_length = state.params().term_length;
        let vrf_proof = cpc_state::starts_term(env.height, term_length).then(|| {
            let input = cpc_consensus::election::term_input(&info.seed, info.term);
            VrfProof(VrfSecret::from_seed(&key.to_bytes()).prove(&input).0)
        });
        let committee_change = state
            .end_block(&cpc_state::BlockCredit {
                height: env.height,
                view,
                parent_view: parent.view,
                proposer: &key.public(),
                vrf_proof: vrf_proof.as_ref(),
                voters: voters.as_deref(),
            })
            .map_err(|e| ChainError::Corrupt(format!("cannot end a block: {e}")))?;
        let header = BlockHeader {
            chain_id: self.genesis.chain_id,
            height: env.height,
            view,
            parent_view: parent.view,
            parent: parent.hash(),
            timestamp_ms: env.timestamp_ms,
            proposer: key.public(),
            epoch: info.epoch,
            tx_root: tx_root(&self.accel, &txs),
            state_root: state.root(&self.accel),
            vrf_proof,
            committee_change,
        };
        if !dropped.is_empty() {
            let mut pool = self.pool();
            for (id, why) in &dropped {
                pool.remove(id);
                pool.note_rejected(*id, why.clone());
            }
            self.counters
                .dropped
                .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        }
        Ok(Built {
            block: Block {
                header,
                certificate: Certificate::default(),
                txs,
                tickets: included,
                parent_votes,
            },
            receipts,
            state,
            dropped: dropped.len(),
        })
    }

    /// For each transaction, whether this exact transaction (signature included) sits in
    /// the mempool, where it arrived with a verified signature.
    pub fn pre_verified(&self, txs: &[SignedTransaction]) -> Vec<bool> {
        let pool = self.pool();
        txs.iter()
            .map(|t| pool.get(&t.id()).is_some_and(|p| p == t))
            .collect()
    }

    /// Reads the head state in place (for queries; the state is locked meanwhile).
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.read().state)
    }

    /// The store, for the services that keep their own column families (data chunks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The head and a copy of its state, for executing blocks on top of it.
    pub fn head_state(&self) -> (BlockHeader, State) {
        let inner = self.read();
        (inner.head.clone(), inner.state.clone())
    }

    /// The last committed header.
    pub fn head(&self) -> BlockHeader {
        self.read().head.clone()
    }

    /// Commits a final block executed on top of the head: `state` is the state after it
    /// (as [`execute_block`](crate::execute_block) or [`Chain::build_block`] left it).
    /// Its transactions leave the mempool.
    pub fn commit_final(
        &self,
        block: &Block,
        receipts: &[TxReceipt],
        mut state: State,
        now_ms: u64,
    ) -> Result<(), ChainError> {
        if self.is_poisoned() {
            return Err(ChainError::Poisoned);
        }
        let start = Instant::now();
        let mut inner = self.write();
        if block.header.parent != inner.head.hash() || block.header.height != inner.head.height + 1
        {
            return Err(ChainError::NotChild {
                height: block.header.height,
                head: inner.head.height,
            });
        }
        let diff = state.take_diff();
        if let Err(e) = self.store.commit_block(block, receipts, &diff) {
            self.poisoned.store(true, Ordering::Release);
            return Err(e.into());
        }
        inner.state = state;
        inner.head = block.header.clone();
        {
            let state = &inner.state;
            let mut pool = self.pool();
            for tx in &block.txs {
                pool.remove(&tx.id());
            }
            pool.prune(|a| state.account(a).nonce, now_ms);
        }
        drop(inner);
        self.counters.blocks.fetch_add(1, Ordering::Relaxed);
        self.counters
            .committed
            .fetch_add(block.txs.len() as u64, Ordering::Relaxed);
        self.counters.commit_ns.fetch_add(
            u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// Committed blocks from `from` on, at most `max` of them and about `max_bytes` (at
    /// least one block when there is one): what a peer that syncs asks for.
    pub fn blocks_from(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<Block>, ChainError> {
        let head = self.height();
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut h = from;
        while h <= head && out.len() < max && (out.is_empty() || bytes < max_bytes) {
            let Some(b) = self.store.block(h)? else {
                break;
            };
            bytes += cpc_types::Encode::encode(&b).len();
            out.push(b);
            h += 1;
        }
        Ok(out)
    }

    /// The committee that certifies the block after the head, in proposer order.
    pub fn committee(&self) -> Vec<PublicKey> {
        self.read().state.committee()
    }

    /// The committee in office after the head, with the election state.
    pub fn committee_info(&self) -> CommitteeInfo {
        self.read().state.committee_info()
    }

    /// The credit of each of `keys` (0 for a key that is not a validator).
    pub fn validator_credits(&self, keys: &[PublicKey]) -> Vec<u32> {
        let inner = self.read();
        keys.iter()
            .map(|k| inner.state.validator(&k.address()).map_or(0, |v| v.credit))
            .collect()
    }

    /// A registered validator.
    pub fn validator(&self, address: &Address) -> Option<cpc_state::Validator> {
        self.read().state.validator(address)
    }

    /// Every committee so far, oldest first, as each took office.
    pub fn committee_history(&self) -> Vec<CommitteeInfo> {
        let inner = self.read();
        let last = inner.state.committee_info().epoch;
        (0..=last)
            .filter_map(|e| inner.state.committee_at(e))
            .collect()
    }

    /// Checks an election ticket against the head's state; returns its lucky value.
    pub fn check_ticket(&self, t: &Ticket) -> Result<u64, cpc_state::RuleError> {
        self.read().state.check_ticket(t)
    }

    /// Validators that recorded a ticket for the next term, with their lucky values.
    pub fn next_term_tickets(&self) -> Vec<(Address, u64)> {
        self.read().state.tickets()
    }

    /// This node's validator key.
    pub fn key(&self) -> Option<&SecretKey> {
        self.key.as_ref()
    }

    /// Appends a consensus message this node sends in `view` to the journal; see
    /// [`Store::journal_append`].
    pub fn journal_append(
        &self,
        view: u64,
        seq: u32,
        msg: &[u8],
        sync: bool,
    ) -> Result<(), ChainError> {
        Ok(self.store.journal_append(view, seq, msg, sync)?)
    }

    /// The consensus messages this node sent since its last final block.
    pub fn journal(&self) -> Result<Vec<(u64, u32, Vec<u8>)>, ChainError> {
        Ok(self.store.journal()?)
    }

    /// Forgets journal entries of views below `view`.
    pub fn journal_prune(&self, view: u64) -> Result<(), ChainError> {
        Ok(self.store.journal_prune(view)?)
    }

    /// From now on, keep transactions admitted through [`Chain::submit`] for
    /// [`Chain::take_outbox`]: the network driver calls this before draining it.
    pub fn enable_gossip(&self) {
        self.gossip.store(true, Ordering::Relaxed);
    }

    /// Transactions admitted through [`Chain::submit`] since the last call, to gossip.
    pub fn take_outbox(&self) -> Vec<SignedTransaction> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The node's view of its chain.
    pub fn status(&self) -> ChainStatus {
        let inner = self.read();
        let pool = self.pool();
        ChainStatus {
            chain_id: self.genesis.chain_id,
            genesis: self.genesis_hash,
            height: inner.head.height,
            head: inner.head.hash(),
            head_timestamp_ms: inner.head.timestamp_ms,
            state_root: inner.head.state_root,
            mempool_txs: pool.len(),
            mempool_bytes: pool.bytes(),
            validator: self.key.as_ref().map(SecretKey::address),
            producing: self
                .key
                .as_ref()
                .is_some_and(|k| inner.state.committee().contains(&k.public())),
        }
    }

    /// Height of the last committed block.
    pub fn height(&self) -> u64 {
        self.read().head.height
    }

    /// A committed block and its receipts.
    pub fn block(&self, height: u64) -> Result<Option<(Block, Vec<TxReceipt>)>, ChainError> {
        let Some(block) = self.store.block(height)? else {
            return Ok(None);
        };
        let receipts = self.store.receipts(height)?.unwrap_or_default();
        Ok(Some((block, receipts)))
    }

    /// Where a transaction stands. The mempool is asked first: a transaction leaves it only
    /// after its block is in the store, so a commit in between cannot hide it.
    pub fn tx_status(&self, id: &Hash32) -> Result<TxStatus, ChainError> {
        if let Some(tx) = self.pool().get(id) {
            return Ok(TxStatus::Pending { tx: tx.clone() });
        }
        if let Some(loc) = self.store.tx_location(id)? {
            let block = self.store.block(loc.height)?.ok_or_else(|| {
                ChainError::Corrupt(format!("indexed block {} is missing", loc.height))
            })?;
            let receipts = self.store.receipts(loc.height)?.unwrap_or_default();
            let i = loc.index as usize;
            let (Some(tx), Some(receipt)) = (block.txs.get(i), receipts.get(i)) else {
                return Err(ChainError::Corrupt(format!(
                    "transaction index of {id} points past its block"
                )));
            };
            return Ok(TxStatus::Committed {
                height: loc.height,
                block: block.header.hash(),
                index: loc.index,
                tx: tx.clone(),
                receipt: receipt.clone(),
            });
        }
        Ok(match self.pool().rejection(id) {
            Some(reason) => TxStatus::Rejected {
                reason: reason.to_owned(),
            },
            None => TxStatus::Unknown,
        })
    }

    /// An account, with its quota at `now_ms`.
    pub fn account(&self, address: &Address, now_ms: u64) -> AccountView {
        let inner = self.read();
        let acct = inner.state.account(address);
        let pool = self.pool();
        AccountView {
            address: *address,
            balance: acct.balance,
            nonce: acct.nonce,
            next_nonce: pool.next_nonce(address, acct.nonce),
            pending: pool.pending_of(address),
            quota_left: inner
                .state
                .quota_left(address, now_ms.max(inner.head.timestamp_ms)),
            dapp_stake: acct.dapp_stake,
            leased_in: acct.leased_in,
            unbonding: acct.unbonding,
        }
    }

    /// Counters since start.
    pub fn metrics(&self) -> ChainMetrics {
        let c = &self.counters;
        ChainMetrics {
            blocks_total: c.blocks.load(Ordering::Relaxed),
            txs_committed_total: c.committed.load(Ordering::Relaxed),
            txs_admitted_total: c.admitted.load(Ordering::Relaxed),
            txs_refused_total: c.refused.load(Ordering::Relaxed),
            txs_dropped_total: c.dropped.load(Ordering::Relaxed),
            block_commit_ns_total: c.commit_ns.load(Ordering::Relaxed),
        }
    }

    /// The mempool's limits.
    pub fn mempool_config(&self) -> MempoolConfig {
        self.pool().config().clone()
    }
}
