//! Block execution: the rule every node applies to every block.

use cpc_accel::{Dispatcher, SigItem};
use cpc_state::{BlockEnv, Genesis, State};
use cpc_storage::Store;
use cpc_types::{
    Block, BlockHeader, Certificate, Encode, Hash32, PublicKey, TxReceipt, Vote, VoteKind,
};

/// Why a block is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Height, parent or chain do not follow the previous block.
    #[error("block {height} does not extend the chain: {reason}")]
    Linkage {
        /// The block's height.
        height: u64,
        /// What does not match.
        reason: String,
    },
    /// A transaction's signature is invalid.
    #[error("block {height}: transaction {index} has an invalid signature")]
    Signature {
        /// The block's height.
        height: u64,
        /// Index of the transaction.
        index: usize,
    },
    /// A transaction fails to execute.
    #[error("block {height}: transaction {index} fails: {error}")]
    Transaction {
        /// The block's height.
        height: u64,
        /// Index of the transaction.
        index: usize,
        /// Why.
        error: cpc_state::TxError,
    },
    /// A root in the header does not match the block's content.
    #[error("block {height}: {what} root is {got} but the header says {expected}")]
    Root {
        /// The block's height.
        height: u64,
        /// Which root.
        what: &'static str,
        /// Root of the content.
        got: Hash32,
        /// Root in the header.
        expected: Hash32,
    },
    /// The certificate does not certify the header.
    #[error("block {height}: {reason}")]
    Certificate {
        /// The block's height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// Too many transactions.
    #[error("block {height} has {count} transactions, the limit is {max}")]
    TooLarge {
        /// The block's height.
        height: u64,
        /// Transactions in it.
        count: usize,
        /// The limit.
        max: u32,
    },
    /// The block's transactions exceed [`cpc_types::MAX_BLOCK_TX_BYTES`].
    #[error("block {height}: transactions of {bytes} bytes exceed the limit of {max}")]
    TooManyBytes {
        /// The block's height.
        height: u64,
        /// Their encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The block breaks a consensus rule of the state (tickets, the VRF proof).
    #[error("block {height}: {error}")]
    Rule {
        /// The block's height.
        height: u64,
        /// Which rule.
        error: cpc_state::RuleError,
    },
    /// The parent's votes the block carries are not a quorum certificate.
    #[error("block {height}: parent votes: {reason}")]
    ParentVotes {
        /// The block's height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// The header's committee change differs from the one execution makes.
    #[error(
        "block {height}: the header's committee change differs from the one its execution makes"
    )]
    CommitteeChange {
        /// The block's height.
        height: u64,
    },
    /// Storage failed during replay.
    #[error("storage: {0}")]
    Storage(String),
}

/// The ZIP-215 verdict of every transaction's signature, in one accelerator batch.
pub fn verify_signatures(accel: &Dispatcher, txs: &[cpc_types::SignedTransaction]) -> Vec<bool> {
    verify_refs(accel, &txs.iter().collect::<Vec<_>>())
}

fn verify_refs(accel: &Dispatcher, txs: &[&cpc_types::SignedTransaction]) -> Vec<bool> {
    let signing: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
    let items: Vec<SigItem<'_>> = txs
        .iter()
        .zip(&signing)
        .map(|(t, m)| SigItem {
            public_key: t.tx.sender.0,
            signature: t.signature.0,
            message: m,
        })
        .collect();
    accel.ed25519_verify_batch(&items)
}

/// The Merkle root of a block's transaction ids.
pub fn tx_root(accel: &Dispatcher, block_txs: &[cpc_types::SignedTransaction]) -> Hash32 {
    let ids: Vec<[u8; 32]> = block_txs.iter().map(|t| t.id().0).collect();
    Hash32(accel.merkle_root(&ids))
}

/// The genesis block: height 0, no transactions, the genesis state root.
pub fn genesis_block(genesis: &Genesis, state: &mut State, accel: &Dispatcher) -> Block {
    let header = BlockHeader {
        chain_id: genesis.chain_id,
        height: 0,
        view: 0,
        parent_view: 0,
        parent: Hash32::ZERO,
        timestamp_ms: genesis.timestamp_ms,
        proposer: genesis
            .validators
            .first()
            .map(|v| v.key)
            .unwrap_or(cpc_types::PublicKey([0; 32])),
        epoch: 0,
        tx_root: tx_root(accel, &[]),
        state_root: state.root(accel),
        vrf_proof: None,
        committee_change: None,
    };
    Block {
        header,
        certificate: Certificate::default(),
        txs: Vec::new(),
        tickets: Vec::new(),
        parent_votes: Certificate::default(),
    }
}

/// Votes needed for a quorum of a committee of `n`: `n − f` with `f = ⌊(n − 1) / 3⌋`.
pub fn quorum(n: usize) -> usize {
    let n = n.max(1);
    n - (n - 1) / 3
}

/// Checks signed votes for `vote` by members of `committee`: sorted by voter, one each,
/// at least `min` of them, every signature valid (one accelerator batch).
pub fn check_votes(
    accel: &Dispatcher,
    vote: &Vote,
    votes: &[(PublicKey, cpc_types::Signature)],
    committee: &[PublicKey],
    min: usize,
) -> Result<(), String> {
    if votes.len() < min {
        return Err(format!("{} votes, a quorum is {min}", votes.len()));
    }
    if votes.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("votes are not sorted by voter, one vote each".into());
    }
    if votes.iter().any(|(pk, _)| !committee.contains(pk)) {
        return Err("a vote is signed by a non-member".into());
    }
    let msg = vote.signing_bytes();
    let items: Vec<SigItem<'_>> = votes
        .iter()
        .map(|(pk, sig)| SigItem {
            public_key: pk.0,
            signature: sig.0,
            message: &msg,
        })
        .collect();
    if accel.ed25519_verify_batch(&items).iter().all(|ok| *ok) {
        Ok(())
    } else {
        Err("a vote signature is invalid".into())
    }
}

/// The vote a block's certificate of `kind` signs.
pub fn block_vote(header: &BlockHeader, kind: VoteKind) -> Vote {
    Vote {
        chain_id: header.chain_id,
        epoch: header.epoch,
        kind,
        view: header.view,
        parent_view: header.parent_view,
        parent: header.parent,
        block: header.hash(),
    }
}

/// Checks that `cert` makes `header` final: a quorum of `committee` (the committee of the
/// header's epoch) signed a finalize vote for it. (A block whose own certificate is weaker
/// is final when a descendant's is.)
pub fn check_certificate(
    accel: &Dispatcher,
    header: &BlockHeader,
    cert: &Certificate,
    committee: &[PublicKey],
) -> Result<(), BlockError> {
    let bad = |reason: String| BlockError::Certificate {
        height: header.height,
        reason,
    };
    if cert.kind != VoteKind::Finalize {
        return Err(bad(format!(
            "a {:?} certificate does not finalize",
            cert.kind
        )));
    }
    if cert.view != header.view {
        return Err(bad(format!(
            "certificate of view {} for a block of view {}",
            cert.view, header.view
        )));
    }
    let vote = block_vote(header, VoteKind::Finalize);
    check_votes(
        accel,
        &vote,
        &cert.votes,
        committee,
        quorum(committee.len()),
    )
    .map_err(bad)
}

/// Validates and executes `block` on top of `parent`: linkage, size, transaction
/// signatures (one accelerator batch), every transaction, and both roots. On error the
/// state may hold part of the block: callers execute on a state they can discard.
pub fn execute_block(
    state: &mut State,
    parent: &BlockHeader,
    block: &Block,
    accel: &Dispatcher,
) -> Result<Vec<TxReceipt>, BlockError> {
    execute_block_trusting(state, parent, block, accel, &[])
}

/// [`execute_block`], skipping the signature check of transaction `i` when `verified[i]`
/// is true: the caller checked exactly that transaction, signature included, before (at
/// admission into its mempool). The verdict is the same; the work is not done twice.
pub fn execute_block_trusting(
    state: &mut State,
    parent: &BlockHeader,
    block: &Block,
    accel: &Dispatcher,
    verified: &[bool],
) -> Result<Vec<TxReceipt>, BlockError> {
    let h = &block.header;
    let link = |reason: String| BlockError::Linkage {
        height: h.height,
        reason,
    };
    if h.chain_id != state.chain_id() {
        return Err(link(format!(
            "chain {} is not {}",
            h.chain_id,
            state.chain_id()
        )));
    }
    if h.height != parent.height + 1 {
        return Err(link(format!("parent height is {}", parent.height)));
    }
    if h.parent != parent.hash() {
        return Err(link("parent hash differs".into()));
    }
    if h.timestamp_ms <= parent.timestamp_ms {
        return Err(link("timestamp does not increase".into()));
    }
    if h.view <= parent.view {
        return Err(link("view does not increase".into()));
    }
    if h.parent_view != parent.view {
        return Err(link("parent view differs".into()));
    }
    let info = state.committee_info();
    if h.epoch != info.epoch {
        return Err(link(format!(
            "epoch {} is not the committee's epoch {}",
            h.epoch, info.epoch
        )));
    }
    let max = state.params().max_block_txs;
    if block.txs.len() > max as usize {
        return Err(BlockError::TooLarge {
            height: h.height,
            count: block.txs.len(),
            max,
        });
    }
    let bytes: usize = block.txs.iter().map(|t| t.encode().len()).sum();
    if bytes > cpc_types::MAX_BLOCK_TX_BYTES {
        return Err(BlockError::TooManyBytes {
            height: h.height,
            bytes,
            max: cpc_types::MAX_BLOCK_TX_BYTES,
        });
    }
    let root = tx_root(accel, &block.txs);
    if root != h.tx_root {
        return Err(BlockError::Root {
            height: h.height,
            what: "transaction",
            got: root,
            expected: h.tx_root,
        });
    }
    let unchecked: Vec<usize> = (0..block.txs.len())
        .filter(|i| !verified.get(*i).copied().unwrap_or(false))
        .collect();
    let to_check: Vec<&cpc_types::SignedTransaction> =
        unchecked.iter().map(|i| &block.txs[*i]).collect();
    if let Some(k) = verify_refs(accel, &to_check).iter().position(|ok| !ok) {
        return Err(BlockError::Signature {
            height: h.height,
            index: unchecked[k],
        });
    }
    let voters =
        parent_voters(accel, parent, &block.parent_votes, &info.members).map_err(|reason| {
            BlockError::ParentVotes {
                height: h.height,
                reason,
            }
        })?;
    let env = BlockEnv {
        height: h.height,
        timestamp_ms: h.timestamp_ms,
        proposer: h.proposer.address(),
    };
    state.begin_block(&env);
    let rule = |error| BlockError::Rule {
        height: h.height,
        error,
    };
    state.record_tickets(&block.tickets).map_err(rule)?;
    let mut receipts = Vec::with_capacity(block.txs.len());
    for (index, tx) in block.txs.iter().enumerate() {
        let r = state
            .apply_tx(&env, tx)
            .map_err(|error| BlockError::Transaction {
                height: h.height,
                index,
                error,
            })?;
        receipts.push(r);
    }
    let change = state
        .end_block(&cpc_state::BlockCredit {
            height: h.height,
            view: h.view,
            parent_view: h.parent_view,
            proposer: &h.proposer,
            vrf_proof: h.vrf_proof.as_ref(),
            voters: voters.as_deref(),
        })
        .map_err(rule)?;
    if change != h.committee_change {
        return Err(BlockError::CommitteeChange { height: h.height });
    }
    let root = state.root(accel);
    if root != h.state_root {
        return Err(BlockError::Root {
            height: h.height,
            what: "state",
            got: root,
            expected: h.state_root,
        });
    }
    Ok(receipts)
}

/// Checks the parent's votes a block carries and returns the voters: none, or a quorum of
/// `committee` (the parent's, which is the block's) signing a notarize or finalize vote
/// for the parent. The first block of an epoch carries none: its parent's voters are
/// another committee.
pub fn parent_voters(
    accel: &Dispatcher,
    parent: &BlockHeader,
    votes: &Certificate,
    committee: &[PublicKey],
) -> Result<Option<Vec<PublicKey>>, String> {
    if votes.votes.is_empty() {
        return Ok(None);
    }
    if parent.height == 0 || parent.committee_change.is_some() {
        return Err("the parent was certified by another committee".into());
    }
    if votes.kind == VoteKind::Nullify || votes.view != parent.view {
        return Err("not votes for the parent".into());
    }
    let vote = block_vote(parent, votes.kind);
    check_votes(
        accel,
        &vote,
        &votes.votes,
        committee,
        quorum(committee.len()),
    )?;
    Ok(Some(votes.votes.iter().map(|(k, _)| *k).collect()))
}

/// Whether `header` ends its epoch (its committee change takes effect after it).
pub fn ends_epoch(header: &BlockHeader) -> bool {
    header.committee_change.is_some()
}

/// Checks a block that extends the end of an epoch while that end is not final yet. Such
/// a *suffix* block lets the old committee finalize its last block (a notarized block
/// becomes final when a descendant does) without extending the chain: it carries nothing,
/// changes nothing, and is never committed. See the consensus engine.
pub fn check_suffix_block(
    accel: &Dispatcher,
    parent: &BlockHeader,
    block: &Block,
) -> Result<(), BlockError> {
    let h = &block.header;
    let bad = |reason: &str| BlockError::Linkage {
        height: h.height,
        reason: format!("suffix block: {reason}"),
    };
    if h.chain_id != parent.chain_id
        || h.height != parent.height + 1
        || h.parent != parent.hash()
        || h.parent_view != parent.view
    {
        return Err(bad("does not extend its parent"));
    }
    if h.view <= parent.view || h.timestamp_ms <= parent.timestamp_ms {
        return Err(bad("view or timestamp does not increase"));
    }
    if h.epoch != parent.epoch {
        return Err(bad("another epoch"));
    }
    let empty = block.txs.is_empty()
        && block.tickets.is_empty()
        && block.parent_votes.votes.is_empty()
        && h.vrf_proof.is_none()
        && h.committee_change.is_none()
        && h.state_root == parent.state_root
        && h.tx_root == tx_root(accel, &[]);
    if !empty {
        return Err(bad("must be empty and keep the state"));
    }
    Ok(())
}

/// Re-executes the stored chain from genesis and checks every block and receipt against
/// the store; returns the final state root. This is `cpchain check`.
pub fn replay(
    genesis: &Genesis,
    store: &Store,
    accel: &Dispatcher,
    mut progress: impl FnMut(u64, u64),
) -> Result<Hash32, BlockError> {
    let storage = |e: cpc_storage::StorageError| BlockError::Storage(e.to_string());
    let mut state =
        State::from_genesis(genesis).map_err(|e| BlockError::Storage(format!("genesis: {e}")))?;
    let g = genesis_block(genesis, &mut state, accel);
    let Some(head) = store.head().map_err(storage)? else {
        return Ok(g.header.state_root);
    };
    let (stored_g, _) = store
        .header(0)
        .map_err(storage)?
        .ok_or(BlockError::Storage("no genesis block".into()))?;
    if stored_g != g.header {
        return Err(BlockError::Storage(
            "the stored genesis block differs from the genesis file".into(),
        ));
    }
    let mut parent = g.header;
    for height in 1..=head {
        let block = store
            .block(height)
            .map_err(storage)?
            .ok_or(BlockError::Storage(format!("block {height} missing")))?;
        // Every certificate's signatures must hold, and the head's must be a quorum; the
        // blocks below are final through the hash links.
        let cert = &block.certificate;
        let vote = block_vote(&block.header, cert.kind);
        let committee = state.committee();
        let min = if height == head {
            quorum(committee.len())
        } else {
            1
        };
        if cert.kind == VoteKind::Nullify || cert.view != block.header.view {
            return Err(BlockError::Certificate {
                height,
                reason: "the certificate is not for this block".into(),
            });
        }
        check_votes(accel, &vote, &cert.votes, &committee, min)
            .map_err(|reason| BlockError::Certificate { height, reason })?;
        let receipts = execute_block(&mut state, &parent, &block, accel)?;
        let stored = store.receipts(height).map_err(storage)?;
        if stored.as_deref() != Some(receipts.as_slice()) {
            return Err(BlockError::Storage(format!(
                "receipts of block {height} differ from the replay"
            )));
        }
        state.take_diff();
        parent = block.header;
        progress(height, head);
    }
    Ok(parent.state_root)
}
