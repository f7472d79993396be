//! Block execution: the rule every node applies to every block.

use cpc_accel::{Dispatcher, SigItem};
use cpc_state::{BlockEnv, Genesis, State};
use cpc_storage::Store;
use cpc_types::{Block, BlockHeader, Certificate, Hash32, TxReceipt, Vote};

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
    /// Storage failed during replay.
    #[error("storage: {0}")]
    Storage(String),
}

/// The ZIP-215 verdict of every transaction's signature, in one accelerator batch.
pub fn verify_signatures(accel: &Dispatcher, txs: &[cpc_types::SignedTransaction]) -> Vec<bool> {
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

/// Checks that `cert` holds a valid vote for `header` by one of `signers`: on a
/// single-validator chain, the proposer's. The committee rule replaces this check.
pub fn check_certificate(
    header: &BlockHeader,
    cert: &Certificate,
    signers: &[cpc_types::PublicKey],
) -> Result<(), BlockError> {
    let vote = Vote {
        chain_id: header.chain_id,
        height: header.height,
        round: cert.round,
        block: header.hash(),
    };
    let msg = vote.signing_bytes();
    let bad = |reason: &str| BlockError::Certificate {
        height: header.height,
        reason: reason.to_owned(),
    };
    if cert.votes.is_empty() {
        return Err(bad("the certificate has no votes"));
    }
    if cert.votes.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(bad(
            "certificate votes are not sorted by voter, one vote each",
        ));
    }
    for (pk, sig) in &cert.votes {
        if !signers.contains(pk) {
            return Err(bad("the certificate is signed by a non-validator"));
        }
        if !pk.verify(&msg, sig) {
            return Err(bad("a certificate signature is invalid"));
        }
    }
    Ok(())
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
    let max = state.params().max_block_txs;
    if block.txs.len() > max as usize {
        return Err(BlockError::TooLarge {
            height: h.height,
            count: block.txs.len(),
            max,
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
    if let Some(index) = verify_signatures(accel, &block.txs)
        .iter()
        .position(|ok| !ok)
    {
        return Err(BlockError::Signature {
            height: h.height,
            index,
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
    let signers: Vec<_> = genesis.validators.iter().map(|v| v.key).collect();
    let mut parent = g.header;
    for height in 1..=head {
        let block = store
            .block(height)
            .map_err(storage)?
            .ok_or(BlockError::Storage(format!("block {height} missing")))?;
        check_certificate(&block.header, &block.certificate, &signers)?;
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
