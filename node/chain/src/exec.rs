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
        parent: Hash32::ZERO,
        timestamp_ms: genesis.timestamp_ms,
        proposer: genesis
            .validators
            .first()
            .map(|v| v.key)
            .unwrap_or(cpc_types::PublicKey([0; 32])),
        tx_root: tx_root(accel, &[]),
        state_root: state.root(accel),
        committee_change: None,
    };
    Block {
        header,
        certificate: Certificate::default(),
        txs: Vec::new(),
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

/// The vote a block's certificate of `kind` signs; `parent_view` is the parent header's.
pub fn block_vote(header: &BlockHeader, parent_view: u64, kind: VoteKind) -> Vote {
    Vote {
        chain_id: header.chain_id,
        kind,
        view: header.view,
        parent_view,
        parent: header.parent,
        block: header.hash(),
    }
}

/// Checks that `cert` makes `header` final: a quorum of `committee` signed a finalize vote
/// for it. (A block whose own certificate is weaker is final when a descendant's is not.)
pub fn check_certificate(
    accel: &Dispatcher,
    header: &BlockHeader,
    parent_view: u64,
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
    let vote = block_vote(header, parent_view, VoteKind::Finalize);
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
    let env = BlockEnv {
        height: h.height,
        timestamp_ms: h.timestamp_ms,
        proposer: h.proposer.address(),
    };
    state.begin_block(&env);
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
    state.end_block(parent.view, h.view, &h.proposer);
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
    let committee: Vec<_> = genesis.validators.iter().map(|v| v.key).collect();
    let mut parent = g.header;
    for height in 1..=head {
        let block = store
            .block(height)
            .map_err(storage)?
            .ok_or(BlockError::Storage(format!("block {height} missing")))?;
        // Every certificate's signatures must hold, and the head's must be a quorum; the
        // blocks below are final through the hash links.
        let cert = &block.certificate;
        let vote = block_vote(&block.header, parent.view, cert.kind);
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
