//! The consensus engine: the committee BFT machine of `cpc-consensus`, driven with real
//! blocks and real signatures.
//!
//! - **Messages.** Every vote is an Ed25519 signature over a [`Vote`]; a proposal carries
//!   the block and its leader's notarize vote; certificates carry a quorum of signatures,
//!   checked in one accelerator batch. Nothing reaches the machine unverified.
//! - **Speculative execution.** Simplex proposes on notarized blocks that are not final
//!   yet, so each proposal is executed on a copy of its parent's state (the head's, or a
//!   pending block's) before this node votes for it. A block is committed, with the best
//!   certificate seen, when the machine reports it final; pending blocks that can no
//!   longer be final are dropped.
//! - **Safety across restarts.** Every message this node sends is journaled first (its
//!   own votes durably). A restarted member replays its votes into the machine, so it
//!   never casts a conflicting one, and sends its certificates again, so a network that
//!   restarted whole still has what it needs to continue.
//! - **Sync.** A final block this node never saw, or a machine ahead of the store, makes
//!   the engine ask peers for blocks ([`Outbound::Fetch`]). Fetched blocks are applied up
//!   to the last one carrying a finalize certificate of a quorum; the ones below it are
//!   final through the header hashes that link them.
//! - **Followers** (nodes outside the committee) run no machine: they validate proposals
//!   and commit when a finalize certificate arrives.
//!
//! Time comes in through [`Engine::tick`]: a monotonic clock for timeouts and the wall
//! clock for block timestamps. The wall clock never decides whether a block is valid;
//! it only keeps this node from voting for a block stamped too far in its future.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use cpc_consensus::bft::{self, Action, Event, Machine, Member, Message, Proposal, View};
use cpc_state::State;
use cpc_types::codec::decode_exact;
use cpc_types::{
    Address, Block, BlockHeader, Certificate, ConsensusMessage, Encode, Hash32,
    MisbehaviourEvidence, PublicKey, Signature, SignedMessage, Transaction, TxKind, TxReceipt,
    Vote, VoteKind,
};
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::exec::{check_votes, execute_block, execute_block_trusting, quorum};

/// Settings of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Least time from a block to the next, milliseconds.
    pub block_interval_ms: u64,
    /// First view timeout, milliseconds; it doubles after each timed-out view, up to 8×.
    /// It must exceed the block interval plus a round trip.
    pub view_timeout_ms: u64,
    /// How far ahead of this node's clock a proposal may be stamped, milliseconds.
    pub max_clock_drift_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            block_interval_ms: 500,
            view_timeout_ms: 3000,
            max_clock_drift_ms: 2000,
        }
    }
}

/// What the network must do for the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Publish an encoded [`ConsensusMessage`] on the consensus topic.
    Gossip(Vec<u8>),
    /// Ask a peer for final blocks from this height on; answer with [`Engine::on_blocks`].
    Fetch {
        /// The first height wanted.
        from: u64,
    },
}

/// The verdict on a gossiped message, for the network's validation (a rejected message
/// is not relayed and counts against the peer that sent it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: relay it.
    Accept,
    /// Harmless but useless (a duplicate, too old, not checkable yet): do not relay.
    Ignore,
    /// Invalid: do not relay, penalise the sender.
    Reject(String),
}

/// Why a sync answer was not (fully) used.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Not usable now (stale, or without a final block yet): nobody's fault.
    #[error("{0}")]
    Unusable(String),
    /// Blocks a correct peer never sends: penalise the peer.
    #[error("{0}")]
    Invalid(String),
}

/// A committee member as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// Index in the committee (the proposer of view `v` is `v mod n`).
    pub index: u16,
    /// Its key.
    pub key: PublicKey,
    /// Its address.
    pub address: Address,
    /// Its credit (0–1000).
    pub credit: u32,
    /// Its lucky value in the term's election, when elected by ticket.
    pub lucky: Option<u64>,
}

/// Counters of the engine since start, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineMetrics {
    /// Views that ended in a nullification (a view change).
    pub view_changes: u64,
    /// Nullified views whose leader was this node.
    pub missed_proposals: u64,
    /// Blocks this node proposed.
    pub proposed: u64,
    /// Blocks committed from peers' sync answers.
    pub synced: u64,
    /// Conflicting messages seen (evidence).
    pub evidence: u64,
    /// Gossip messages rejected as invalid.
    pub rejected: u64,
    /// Commit latency (block timestamp to commit here): counts per bucket of
    /// [`LATENCY_BUCKETS_MS`], then the overflow.
    pub commit_latency_counts: Vec<u64>,
    /// Sum of commit latencies, milliseconds.
    pub commit_latency_sum_ms: u64,
}

/// Upper bounds of the commit-latency histogram buckets, milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 9] = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];

/// The consensus state as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsensusStatus {
    /// Height of the last committed block.
    pub height: u64,
    /// The current view (round).
    pub view: u64,
    /// The view of the last final block.
    pub finalized_view: u64,
    /// The election term.
    pub term: u64,
    /// Whether this node is a committee member.
    pub member: bool,
    /// The committee.
    pub committee: Vec<MemberView>,
    /// The proposers of the next views: `(view, member index)`.
    pub schedule: Vec<(u64, u16)>,
    /// Blocks executed but not final yet.
    pub pending_blocks: usize,
    /// Counters.
    pub metrics: EngineMetrics,
}

struct Pending {
    block: Block,
    parent_view: View,
    receipts: Vec<TxReceipt>,
    state: State,
}

/// At most this many proposals wait for their parent.
const MAX_ORPHANS: usize = 64;
/// At most this many executed blocks wait for finality.
const MAX_PENDING: usize = 256;

/// The consensus engine of one node.
pub struct Engine {
    chain: Arc<Chain>,
    config: EngineConfig,
    committee: Vec<PublicKey>,
    me: Option<Member>,
    machine: Option<Machine>,
    pending: BTreeMap<Hash32, Pending>,
    /// Proposals waiting for their parent, oldest first.
    orphans: VecDeque<(Block, View, Signature)>,
    /// Verified signatures per vote.
    sigs: BTreeMap<Vote, BTreeMap<PublicKey, Signature>>,
    /// The parent of each proposal seen: (view, block) → (parent view, parent).
    parents: BTreeMap<(View, Hash32), (View, Hash32)>,
    journal_seq: u32,
    /// Members this node reported evidence against.
    reported: std::collections::BTreeSet<PublicKey>,
    /// Digests of the messages in the journal: a message repeated on a timeout is sent
    /// again but written once.
    journaled: std::collections::BTreeSet<(View, Hash32)>,
    /// What replaying the journal produced, sent at the first tick.
    queued: Vec<Outbound>,
    mono_ms: u64,
    wall_ms: u64,
    want_fetch: bool,
    last_fetch_ms: Option<u64>,
    last_nullified: View,
    metrics: EngineMetrics,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("me", &self.me)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

fn to_machine_vote(v: &Vote) -> bft::Vote {
    match v.kind {
        VoteKind::Notarize => bft::Vote::Notarize(proposal_of(v)),
        VoteKind::Nullify => bft::Vote::Nullify(v.view),
        VoteKind::Finalize => bft::Vote::Finalize(v.view, v.block),
    }
}

fn proposal_of(v: &Vote) -> Proposal {
    Proposal {
        view: v.view,
        parent_view: v.parent_view,
        parent: v.parent,
        block: v.block,
    }
}

impl Engine {
    /// An engine over `chain`, resuming after its head. The node is a member when its key
    /// is in the committee.
    pub fn new(chain: Arc<Chain>, config: EngineConfig) -> Result<Engine, crate::ChainError> {
        let committee = chain.committee();
        let me = chain
            .key()
            .and_then(|k| committee.iter().position(|m| *m == k.public()))
            .and_then(|i| Member::try_from(i).ok());
        let journal = chain.journal()?;
        let head = chain.head();
        let machine = me.map(|me| {
            let cfg = bft::Config {
                members: committee.len() as u16,
                me,
                timeout_ms: config.view_timeout_ms,
            };
            let last = Proposal {
                view: head.view,
                parent_view: 0,
                parent: head.parent,
                block: head.hash(),
            };
            Machine::restore(cfg, last)
        });
        let mut engine = Engine {
            chain,
            config,
            committee,
            me,
            machine,
            pending: BTreeMap::new(),
            orphans: VecDeque::new(),
            sigs: BTreeMap::new(),
            parents: BTreeMap::new(),
            journal_seq: journal.iter().map(|(_, s, _)| s + 1).max().unwrap_or(0),
            journaled: journal
                .iter()
                .map(|(v, _, m)| (*v, cpc_types::sha256(&[m])))
                .collect(),
            queued: Vec::new(),
            reported: std::collections::BTreeSet::new(),
            mono_ms: 0,
            wall_ms: 0,
            want_fetch: false,
            last_fetch_ms: None,
            last_nullified: 0,
            metrics: EngineMetrics {
                commit_latency_counts: vec![0; LATENCY_BUCKETS_MS.len() + 1],
                ..EngineMetrics::default()
            },
        };
        engine.replay(journal);
        Ok(engine)
    }

    /// Restores what this node said before it stopped: its own votes first (so it never
    /// contradicts them), then the certificates it had, which it sends again.
    fn replay(&mut self, journal: Vec<(u64, u32, Vec<u8>)>) {
        let Some(me) = self.chain.key().map(|k| k.public()) else {
            return;
        };
        let mut certs = Vec::new();
        for (_, _, bytes) in journal {
            let Ok(msg) = decode_exact::<ConsensusMessage>(&bytes) else {
                continue;
            };
            let own = match msg {
                ConsensusMessage::Vote {
                    voter,
                    vote,
                    signature,
                } if voter == me => Some((vote, signature)),
                ConsensusMessage::Proposal {
                    block,
                    parent_view,
                    signature,
                } if block.header.proposer == me => Some((
                    Vote {
                        chain_id: block.header.chain_id,
                        kind: VoteKind::Notarize,
                        view: block.header.view,
                        parent_view,
                        parent: block.header.parent,
                        block: block.header.hash(),
                    },
                    signature,
                )),
                ConsensusMessage::Certificate { vote, votes } => {
                    certs.push((vote, votes));
                    None
                }
                _ => None,
            };
            if let Some((vote, sig)) = own {
                self.record(vote, me, sig);
                if let Some(m) = self.machine.as_mut() {
                    m.replay_own(to_machine_vote(&vote));
                }
            }
        }
        let mut out = Vec::new();
        for (vote, votes) in certs {
            let _ = self.on_certificate(vote, votes, &mut out);
        }
        self.queued = out;
    }

    /// The chain this engine commits to.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// Advances time: `mono_ms` from a monotonic clock (timeouts), `wall_ms` from the wall
    /// clock (timestamps of this node's blocks).
    pub fn tick(&mut self, mono_ms: u64, wall_ms: u64) -> Vec<Outbound> {
        self.mono_ms = mono_ms;
        self.wall_ms = wall_ms;
        let mut out = std::mem::take(&mut self.queued);
        self.step(Event::Tick(mono_ms), &mut out);
        let head_view = self.chain.head().view;
        if self
            .machine
            .as_ref()
            .is_some_and(|m| m.finalized_view() > head_view)
        {
            self.want_fetch = true;
        }
        self.fetch_if_wanted(&mut out);
        out
    }

    fn fetch_if_wanted(&mut self, out: &mut Vec<Outbound>) {
        let due = self
            .last_fetch_ms
            .is_none_or(|t| self.mono_ms.saturating_sub(t) >= 500);
        if self.want_fetch && due {
            self.want_fetch = false;
            self.last_fetch_ms = Some(self.mono_ms);
            out.push(Outbound::Fetch {
                from: self.chain.height() + 1,
            });
        }
    }

    /// Handles a gossiped consensus message.
    pub fn on_gossip(&mut self, data: &[u8]) -> (Verdict, Vec<Outbound>) {
        let mut out = Vec::new();
        let verdict = match decode_exact::<ConsensusMessage>(data) {
            Err(e) => Verdict::Reject(format!("undecodable consensus message: {e}")),
            Ok(ConsensusMessage::Proposal {
                block,
                parent_view,
                signature,
            }) => self.on_proposal(block, parent_view, signature, &mut out),
            Ok(ConsensusMessage::Vote {
                voter,
                vote,
                signature,
            }) => self.on_vote(voter, vote, signature, &mut out),
            Ok(ConsensusMessage::Certificate { vote, votes }) => {
                self.on_certificate(vote, votes, &mut out)
            }
        };
        if matches!(verdict, Verdict::Reject(_)) {
            self.metrics.rejected += 1;
        }
        self.fetch_if_wanted(&mut out);
        (verdict, out)
    }

    fn member_of(&self, key: &PublicKey) -> Option<Member> {
        self.committee
            .iter()
            .position(|m| m == key)
            .and_then(|i| Member::try_from(i).ok())
    }

    fn leader(&self, view: View) -> PublicKey {
        self.committee[(view % self.committee.len() as u64) as usize]
    }

    fn check_vote_shape(&self, vote: &Vote) -> Result<(), String> {
        if vote.chain_id != self.chain.genesis().chain_id {
            return Err(format!("vote for chain {}", vote.chain_id));
        }
        if !vote.is_canonical() || vote.view == 0 {
            return Err("malformed vote".into());
        }
        Ok(())
    }

    fn record(&mut self, vote: Vote, voter: PublicKey, sig: Signature) -> bool {
        // One member's vote may name a wrong parent; proposals this node executed and
        // quorum certificates overwrite it (see `set_parent`).
        if matches!(vote.kind, VoteKind::Notarize | VoteKind::Finalize) {
            self.parents
                .entry((vote.view, vote.block))
                .or_insert((vote.parent_view, vote.parent));
        }
        self.sigs
            .entry(vote)
            .or_default()
            .insert(voter, sig)
            .is_none()
    }

    /// Records the parent of a proposal from a source this node checked.
    fn set_parent(&mut self, p: &Proposal) {
        self.parents
            .insert((p.view, p.block), (p.parent_view, p.parent));
    }

    /// The highest view this node accepts votes and proposals for: beyond, a Byzantine
    /// member could make it store without bound.
    fn horizon(&self) -> View {
        let base = self
            .machine
            .as_ref()
            .map_or(self.chain.head().view, Machine::view);
        base.saturating_add(bft::VIEW_WINDOW)
    }

    fn on_proposal(
        &mut self,
        block: Block,
        parent_view: View,
        signature: Signature,
        out: &mut Vec<Outbound>,
    ) -> Verdict {
        let h = block.header.clone();
        let hash = h.hash();
        let head = self.chain.head();
        if h.chain_id != self.chain.genesis().chain_id {
            return Verdict::Reject(format!("block for chain {}", h.chain_id));
        }
        if self.pending.contains_key(&hash) || h.view <= head.view || h.view > self.horizon() {
            return Verdict::Ignore;
        }
        // One executed proposal per view: a Byzantine leader's others are not executed
        // (each costs a copy of the state), and `MAX_PENDING` bounds them all.
        if self.pending.len() >= MAX_PENDING
            || self.pending.values().any(|p| p.block.header.view == h.view)
        {
            return Verdict::Ignore;
        }
        if h.proposer != self.leader(h.view) {
            return Verdict::Reject(format!("block proposed by a non-leader of view {}", h.view));
        }
        let vote = Vote {
            chain_id: h.chain_id,
            kind: VoteKind::Notarize,
            view: h.view,
            parent_view,
            parent: h.parent,
            block: hash,
        };
        if !h.proposer.verify(&vote.signing_bytes(), &signature) {
            return Verdict::Reject("bad proposal signature".into());
        }
        // Before the first tick this node cannot judge timestamps; the leader repeats.
        if self.wall_ms == 0
            || h.timestamp_ms > self.wall_ms.saturating_add(self.config.max_clock_drift_ms)
        {
            return Verdict::Ignore;
        }
        self.record(vote, h.proposer, signature);
        let parent = if h.parent == head.hash() {
            Some((head, self.chain.head_state().1))
        } else {
            self.pending
                .get(&h.parent)
                .map(|p| (p.block.header.clone(), p.state.clone()))
        };
        let Some((parent, mut state)) = parent else {
            if self.orphans.len() >= MAX_ORPHANS {
                self.orphans.pop_front();
            }
            self.orphans.push_back((block, parent_view, signature));
            if h.height > self.chain.height() + 1 {
                self.want_fetch = true;
            }
            return Verdict::Ignore;
        };
        if parent.view != parent_view {
            return Verdict::Reject("proposal names the wrong parent view".into());
        }
        state.take_diff();
        let verified = self.chain.pre_verified(&block.txs);
        let accel = self.chain.accel();
        let receipts = match execute_block_trusting(&mut state, &parent, &block, accel, &verified) {
            Ok(r) => r,
            Err(e) => return Verdict::Reject(format!("invalid block: {e}")),
        };
        self.pending.insert(
            hash,
            Pending {
                block,
                parent_view,
                receipts,
                state,
            },
        );
        self.set_parent(&proposal_of(&vote));
        if let Some(leader) = self.member_of(&h.proposer) {
            self.step(
                Event::Message(leader, Message::Propose(proposal_of(&vote))),
                out,
            );
        }
        if self.machine.is_none() {
            // Votes or a certificate may have made it final before the block arrived.
            let fin = crate::exec::block_vote(&h, parent_view, VoteKind::Finalize);
            if self.sigs.get(&fin).map_or(0, BTreeMap::len) >= quorum(self.committee.len()) {
                self.follow(vote.view, hash, out);
            }
        }
        // Children that arrived first can be checked now.
        self.retry_orphans(hash, out);
        Verdict::Accept
    }

    /// Checks the proposals that waited for `parent`.
    fn retry_orphans(&mut self, parent: Hash32, out: &mut Vec<Outbound>) {
        let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|(b, _, _)| b.header.parent == parent);
        self.orphans = rest.into();
        for (b, pv, sig) in ready {
            let _ = self.on_proposal(b, pv, sig, out);
        }
    }

    fn on_vote(
        &mut self,
        voter: PublicKey,
        vote: Vote,
        signature: Signature,
        out: &mut Vec<Outbound>,
    ) -> Verdict {
        if let Err(e) = self.check_vote_shape(&vote) {
            return Verdict::Reject(e);
        }
        let Some(from) = self.member_of(&voter) else {
            return Verdict::Reject("vote by a non-member".into());
        };
        if self
            .sigs
            .get(&vote)
            .is_some_and(|s| s.get(&voter) == Some(&signature))
        {
            return Verdict::Ignore;
        }
        if vote.view.saturating_add(1) < self.chain.head().view || vote.view > self.horizon() {
            return Verdict::Ignore;
        }
        if !voter.verify(&vote.signing_bytes(), &signature) {
            return Verdict::Reject("bad vote signature".into());
        }
        self.record(vote, voter, signature);
        self.step(
            Event::Message(from, Message::Vote(to_machine_vote(&vote))),
            out,
        );
        if self.machine.is_none() && vote.kind == VoteKind::Finalize {
            let n = self.sigs.get(&vote).map_or(0, BTreeMap::len);
            if n >= quorum(self.committee.len()) {
                self.follow(vote.view, vote.block, out);
            }
        }
        Verdict::Accept
    }

    fn on_certificate(
        &mut self,
        vote: Vote,
        votes: Vec<(PublicKey, Signature)>,
        out: &mut Vec<Outbound>,
    ) -> Verdict {
        if let Err(e) = self.check_vote_shape(&vote) {
            return Verdict::Reject(e);
        }
        if vote.view <= self.chain.head().view {
            return Verdict::Ignore;
        }
        let known = self.sigs.get(&vote);
        if known.is_some_and(|k| votes.iter().all(|(pk, s)| k.get(pk) == Some(s))) {
            return Verdict::Ignore;
        }
        let q = quorum(self.committee.len());
        if let Err(e) = check_votes(self.chain.accel(), &vote, &votes, &self.committee, q) {
            return Verdict::Reject(format!("invalid certificate: {e}"));
        }
        if vote.kind != VoteKind::Nullify {
            self.set_parent(&proposal_of(&vote));
        }
        let mut voters = std::collections::BTreeSet::new();
        for (pk, sig) in votes {
            if let Some(m) = self.member_of(&pk) {
                voters.insert(m);
            }
            self.record(vote, pk, sig);
        }
        let cert = match vote.kind {
            VoteKind::Notarize => bft::Certificate::Notarization(proposal_of(&vote), voters),
            VoteKind::Nullify => bft::Certificate::Nullification(vote.view, voters),
            VoteKind::Finalize => bft::Certificate::Finalization(proposal_of(&vote), voters),
        };
        self.step(Event::Message(0, Message::Certificate(cert)), out);
        if self.machine.is_none() && vote.kind == VoteKind::Finalize {
            self.follow(vote.view, vote.block, out);
        }
        Verdict::Accept
    }

    /// Applies final blocks fetched from a peer: a run from the head's successor on, of
    /// which the prefix up to the last block with a finalize certificate of a quorum is
    /// committed. Returns how many blocks were committed.
    pub fn on_blocks(&mut self, blocks: Vec<Block>) -> Result<usize, SyncError> {
        let (mut prev, _) = self.chain.head_state();
        let mut last_final = None;
        for (i, b) in blocks.iter().enumerate() {
            if b.header.height != prev.height + 1 || b.header.parent != prev.hash() {
                if i == 0 && b.header.height <= prev.height {
                    return Ok(0);
                }
                let why = format!("block {} does not link to its parent", b.header.height);
                // The first may be stale (this node moved on meanwhile); a break inside
                // the run is not something a correct peer sends.
                return Err(if i == 0 {
                    SyncError::Unusable(why)
                } else {
                    SyncError::Invalid(why)
                });
            }
            let c = &b.certificate;
            if c.kind == VoteKind::Finalize
                && crate::exec::check_certificate(
                    self.chain.accel(),
                    &b.header,
                    prev.view,
                    c,
                    &self.committee,
                )
                .is_ok()
            {
                last_final = Some((i, prev.view));
            }
            prev = b.header.clone();
        }
        let Some((last, last_parent_view)) = last_final else {
            return Err(SyncError::Unusable(
                "no block in the answer carries a finalize certificate".into(),
            ));
        };
        let mut applied = 0;
        for b in blocks.into_iter().take(last + 1) {
            let (head, mut state) = self.chain.head_state();
            state.take_diff();
            let receipts = execute_block(&mut state, &head, &b, self.chain.accel())
                .map_err(|e| SyncError::Invalid(format!("invalid synced block: {e}")))?;
            self.chain
                .commit_final(&b, &receipts, state, self.wall_ms)
                .map_err(|e| SyncError::Unusable(e.to_string()))?;
            applied += 1;
        }
        self.metrics.synced += applied as u64;
        let head = self.chain.head();
        self.prune(head.view);
        // The machine jumps to the synced head as if it had seen the certificate.
        let fin = Proposal {
            view: head.view,
            parent_view: last_parent_view,
            parent: head.parent,
            block: head.hash(),
        };
        let voters = (0..self.committee.len() as u16).collect();
        let mut out = Vec::new();
        self.step(
            Event::Message(
                0,
                Message::Certificate(bft::Certificate::Finalization(fin, voters)),
            ),
            &mut out,
        );
        // Proposals that waited for a parent the sync brought can be checked now.
        self.retry_orphans(head.hash(), &mut out);
        // Sent at the next tick.
        self.queued.extend(out);
        Ok(applied)
    }

    /// Runs the machine on one event and carries out its actions.
    fn step(&mut self, event: Event, out: &mut Vec<Outbound>) {
        let Some(mut machine) = self.machine.take() else {
            return;
        };
        let actions = {
            let chain = &self.chain;
            let pending = &mut self.pending;
            let parents = &mut self.parents;
            let interval = self.config.block_interval_ms;
            let wall = self.wall_ms;
            let proposed = &mut self.metrics.proposed;
            let mut propose = |view: View, parent: &Proposal| -> Option<Hash32> {
                let head = chain.head();
                let (ph, state) = if parent.block == head.hash() {
                    chain.head_state()
                } else {
                    let p = pending.get(&parent.block)?;
                    (p.block.header.clone(), p.state.clone())
                };
                if wall < ph.timestamp_ms.saturating_add(interval) {
                    return None;
                }
                let built = match chain.build_block(&ph, state, view, wall) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(view, error = %e, "cannot build a block");
                        return None;
                    }
                };
                let hash = built.block.header.hash();
                parents.insert((view, hash), (parent.view, parent.block));
                pending.insert(
                    hash,
                    Pending {
                        block: built.block,
                        parent_view: parent.view,
                        receipts: built.receipts,
                        state: built.state,
                    },
                );
                *proposed += 1;
                Some(hash)
            };
            machine.handle(event, &mut propose)
        };
        self.machine = Some(machine);
        for action in actions {
            self.act(action, out);
        }
    }

    /// Signs `vote`. The signature is recorded (and so usable in certificates) only once
    /// [`Engine::send`] has journaled it.
    fn sign(&self, vote: Vote) -> Option<Signature> {
        Some(self.chain.key()?.sign(&vote.signing_bytes()))
    }

    /// Journals a message this node sends, then queues it; a vote that cannot be made
    /// durable is not sent.
    fn send(&mut self, view: View, msg: &ConsensusMessage, out: &mut Vec<Outbound>) -> bool {
        let bytes = msg.encode();
        let key = (view, cpc_types::sha256(&[&bytes]));
        if self.journaled.insert(key) {
            let own_vote = !matches!(msg, ConsensusMessage::Certificate { .. });
            let seq = self.journal_seq;
            self.journal_seq = self.journal_seq.wrapping_add(1);
            if let Err(e) = self.chain.journal_append(view, seq, &bytes, own_vote) {
                tracing::error!(error = %e, "cannot journal a consensus message; not sending it");
                self.journaled.remove(&key);
                return false;
            }
        }
        out.push(Outbound::Gossip(bytes));
        true
    }

    fn machine_vote(&self, v: &bft::Vote) -> Option<Vote> {
        let chain_id = self.chain.genesis().chain_id;
        Some(match *v {
            bft::Vote::Notarize(p) => Vote {
                chain_id,
                kind: VoteKind::Notarize,
                view: p.view,
                parent_view: p.parent_view,
                parent: p.parent,
                block: p.block,
            },
            bft::Vote::Nullify(view) => Vote {
                chain_id,
                kind: VoteKind::Nullify,
                view,
                parent_view: 0,
                parent: Hash32::ZERO,
                block: Hash32::ZERO,
            },
            bft::Vote::Finalize(view, block) => {
                let (parent_view, parent) = *self.parents.get(&(view, block))?;
                Vote {
                    chain_id,
                    kind: VoteKind::Finalize,
                    view,
                    parent_view,
                    parent,
                    block,
                }
            }
        })
    }

    fn act(&mut self, action: Action, out: &mut Vec<Outbound>) {
        match action {
            Action::Broadcast(Message::Propose(p)) => {
                let vote = self.machine_vote(&bft::Vote::Notarize(p));
                let Some(block) = self.pending.get(&p.block).map(|b| b.block.clone()) else {
                    return;
                };
                let Some(vote) = vote else { return };
                if let (Some(signature), Some(me)) =
                    (self.sign(vote), self.chain.key().map(|k| k.public()))
                {
                    let msg = ConsensusMessage::Proposal {
                        block,
                        parent_view: p.parent_view,
                        signature,
                    };
                    if self.send(p.view, &msg, out) {
                        self.record(vote, me, signature);
                    }
                }
            }
            Action::Broadcast(Message::Vote(v)) => {
                let Some(vote) = self.machine_vote(&v) else {
                    return;
                };
                let Some(key) = self.chain.key().map(|k| k.public()) else {
                    return;
                };
                if let Some(signature) = self.sign(vote) {
                    let msg = ConsensusMessage::Vote {
                        voter: key,
                        vote,
                        signature,
                    };
                    if self.send(vote.view, &msg, out) {
                        self.record(vote, key, signature);
                    }
                }
            }
            Action::Broadcast(Message::Certificate(c)) => {
                // A quorum stands behind these proposals: their parents are right.
                if let bft::Certificate::Notarization(p, _) | bft::Certificate::Finalization(p, _) =
                    &c
                {
                    self.set_parent(p);
                }
                let (vote, voters) = match &c {
                    bft::Certificate::Notarization(p, voters) => {
                        (self.machine_vote(&bft::Vote::Notarize(*p)), voters)
                    }
                    bft::Certificate::Nullification(v, voters) => {
                        if *v > self.last_nullified {
                            self.last_nullified = *v;
                            self.metrics.view_changes += 1;
                            if self
                                .me
                                .is_some_and(|me| self.committee[me as usize] == self.leader(*v))
                            {
                                self.metrics.missed_proposals += 1;
                            }
                        }
                        (self.machine_vote(&bft::Vote::Nullify(*v)), voters)
                    }
                    bft::Certificate::Finalization(p, voters) => (
                        self.machine_vote(&bft::Vote::Finalize(p.view, p.block)),
                        voters,
                    ),
                };
                let Some(vote) = vote else { return };
                let Some(sigs) = self.sigs.get(&vote) else {
                    return;
                };
                // A voter whose signature is over other fields (a Byzantine one naming
                // another parent) is left out; the rest may still be a quorum.
                let mut votes: Vec<(PublicKey, Signature)> = voters
                    .iter()
                    .filter_map(|m| {
                        let pk = *self.committee.get(usize::from(*m))?;
                        sigs.get(&pk).map(|s| (pk, *s))
                    })
                    .collect();
                if votes.len() >= quorum(self.committee.len()) {
                    votes.sort_by_key(|v| v.0);
                    let _ = self.send(
                        vote.view,
                        &ConsensusMessage::Certificate { vote, votes },
                        out,
                    );
                }
            }
            Action::Finalized(p) => {
                if p.view > 0 {
                    self.finalize(p.view, p.block);
                }
            }
            Action::Sync { .. } => self.want_fetch = true,
            Action::Evidence {
                member,
                first,
                second,
            } => {
                self.metrics.evidence += 1;
                tracing::warn!(
                    member,
                    ?first,
                    ?second,
                    "conflicting messages from a member"
                );
                self.report(member, &first, &second);
            }
        }
    }

    /// Puts evidence of two conflicting votes of `member` on chain: a transaction from this
    /// node's account, gossiped like any other. Conflicts the chain would not accept (a
    /// proposal seen twice with different parents, say) are only counted.
    fn report(&mut self, member: Member, first: &Message, second: &Message) {
        let Some(key) = self.chain.key().cloned() else {
            return;
        };
        let Some(offender) = self.committee.get(usize::from(member)).copied() else {
            return;
        };
        // One report per offender: slashing takes everything the first time, and a
        // Byzantine member must not make honest ones pay fees per bogus vote.
        if !self.reported.insert(offender) {
            return;
        }
        let signed = |m: &Message| -> Option<SignedMessage> {
            let v = match m {
                Message::Propose(p) => self.machine_vote(&bft::Vote::Notarize(*p))?,
                Message::Vote(v) => self.machine_vote(v)?,
                Message::Certificate(_) => return None,
            };
            let signature = *self.sigs.get(&v)?.get(&offender)?;
            Some(SignedMessage {
                payload: v.signing_bytes(),
                signature,
            })
        };
        let (Some(first), Some(second)) = (signed(first), signed(second)) else {
            return;
        };
        let genesis = self.chain.genesis();
        let tx = Transaction {
            chain_id: genesis.chain_id,
            sender: key.public(),
            nonce: self.chain.account(&key.address(), self.wall_ms).next_nonce,
            max_fee: genesis.params.base_fee,
            kind: TxKind::Evidence(MisbehaviourEvidence {
                offender,
                first,
                second,
            }),
        }
        .sign(&key);
        match self.chain.submit(vec![tx], self.wall_ms).remove(0) {
            Ok(id) => tracing::warn!(%offender, tx = %id, "evidence submitted"),
            Err(e) => tracing::info!(%offender, error = %e, "evidence not submitted"),
        }
    }

    /// A follower learned that `block` of `view` is final.
    fn follow(&mut self, view: View, block: Hash32, out: &mut Vec<Outbound>) {
        if view > self.chain.head().view {
            self.finalize(view, block);
            self.fetch_if_wanted(out);
        }
    }

    /// Commits `block` and the pending ancestors it needs; asks peers when some are missing.
    fn finalize(&mut self, view: View, block: Hash32) {
        let head = self.chain.head();
        if view <= head.view {
            return;
        }
        // Walk back through pending blocks to the head.
        let mut chain = vec![block];
        let mut cur = block;
        loop {
            let Some(p) = self.pending.get(&cur) else {
                self.want_fetch = true;
                return;
            };
            if p.block.header.parent == head.hash() {
                break;
            }
            cur = p.block.header.parent;
            chain.push(cur);
            if chain.len() > 4096 {
                self.want_fetch = true;
                return;
            }
        }
        for hash in chain.into_iter().rev() {
            let Some(p) = self.pending.remove(&hash) else {
                return;
            };
            let mut block = p.block;
            block.certificate = self.best_certificate(&block.header, p.parent_view);
            if let Err(e) = self
                .chain
                .commit_final(&block, &p.receipts, p.state, self.wall_ms)
            {
                tracing::error!(error = %e, "cannot commit a final block");
                return;
            }
            let latency = self.wall_ms.saturating_sub(block.header.timestamp_ms);
            let bucket = LATENCY_BUCKETS_MS
                .iter()
                .position(|b| latency <= *b)
                .unwrap_or(LATENCY_BUCKETS_MS.len());
            self.metrics.commit_latency_counts[bucket] += 1;
            self.metrics.commit_latency_sum_ms += latency;
            tracing::debug!(
                height = block.header.height,
                view = block.header.view,
                txs = block.txs.len(),
                "committed"
            );
        }
        self.prune(view);
        if let Err(e) = self.chain.journal_prune(view) {
            tracing::warn!(error = %e, "cannot prune the consensus journal");
        }
    }

    fn best_certificate(&self, header: &BlockHeader, parent_view: View) -> Certificate {
        let q = quorum(self.committee.len());
        let collect = |kind: VoteKind| {
            let vote = crate::exec::block_vote(header, parent_view, kind);
            self.sigs
                .get(&vote)
                .map(|s| s.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let fin = collect(VoteKind::Finalize);
        if fin.len() >= q {
            return Certificate {
                kind: VoteKind::Finalize,
                view: header.view,
                votes: fin,
            };
        }
        Certificate {
            kind: VoteKind::Notarize,
            view: header.view,
            votes: collect(VoteKind::Notarize),
        }
    }

    /// Drops what can no longer matter once `view` is final.
    fn prune(&mut self, view: View) {
        self.pending.retain(|_, p| p.block.header.view > view);
        self.sigs.retain(|v, _| v.view >= view);
        self.parents.retain(|(v, _), _| *v >= view);
        self.orphans.retain(|(b, _, _)| b.header.view > view);
        self.journaled.retain(|(v, _)| *v >= view);
    }

    /// The consensus state for the API.
    pub fn status(&self) -> ConsensusStatus {
        let head = self.chain.head();
        let credits = self.chain.validator_credits(&self.committee);
        let n = self.committee.len() as u64;
        let view = self.machine.as_ref().map_or(head.view, Machine::view);
        ConsensusStatus {
            height: head.height,
            view,
            finalized_view: self
                .machine
                .as_ref()
                .map_or(head.view, Machine::finalized_view),
            term: 0,
            member: self.me.is_some(),
            committee: self
                .committee
                .iter()
                .zip(credits)
                .enumerate()
                .map(|(i, (key, credit))| MemberView {
                    index: i as u16,
                    key: *key,
                    address: key.address(),
                    credit,
                    lucky: None,
                })
                .collect(),
            schedule: (view..view + 8)
                .map(|v| (v, (v % n.max(1)) as u16))
                .collect(),
            pending_blocks: self.pending.len(),
            metrics: self.metrics.clone(),
        }
    }
}
