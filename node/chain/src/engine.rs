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
//!   restarted whole still has what it needs to continue. Blocks notarized but not final
//!   live only in memory, so on a timeout members relay the ones they hold: a member that
//!   restarted cannot vote for their children without them. A leader restores its own
//!   journaled proposals, so a committee that restarted whole still holds every block its
//!   live leaders notarized.
//! - **Sync.** A final block this node never saw, or a machine ahead of the store, makes
//!   the engine ask peers for blocks ([`Outbound::Fetch`]). Fetched blocks are applied up
//!   to the last one carrying a finalize certificate of a quorum; the ones below it are
//!   final through the header hashes that link them.
//! - **Followers** (nodes outside the committee) run no machine: they validate proposals
//!   and commit when a finalize certificate arrives.
//! - **Epochs.** One committee certifies the blocks of one epoch; the block that changes
//!   the committee (an election at the end of a term, or members replaced below the credit
//!   threshold) ends it. Its committee must finalize it but never extend the chain past
//!   it: children it notarizes after it are empty *suffix* blocks, which let that last
//!   block become final (a notarized block is final when a descendant is) and are never
//!   committed. Once the last block is committed, the engine starts a fresh machine for
//!   the new committee on top of it. Votes name their epoch, so a member of both
//!   committees never signs conflicting votes. Messages of the next epoch that arrive
//!   early wait until this node gets there.
//! - **Tickets.** A registered validator proves its VRF over the next term's seed as soon
//!   as the term's first block sets it, gossips the ticket until it is on chain, and
//!   proposers include the tickets they hold.
//!
//! Time comes in through [`Engine::tick`]: a monotonic clock for timeouts and the wall
//! clock for block timestamps. The wall clock never decides whether a block is valid;
//! it only keeps this node from voting for a block stamped too far in its future.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use cpc_consensus::bft::{self, Action, Event, Machine, Member, Message, Proposal, View};
use cpc_consensus::vrf::VrfSecret;
use cpc_state::{ChangeReason, State};
use cpc_types::codec::decode_exact;
use cpc_types::{
    Address, Block, BlockHeader, Certificate, ConsensusMessage, Encode, Hash32,
    MisbehaviourEvidence, PublicKey, Signature, SignedMessage, Ticket, Transaction, TxKind,
    TxReceipt, Vote, VoteKind,
};
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::exec::{
    block_vote, check_suffix_block, check_votes, ends_epoch, execute_block, execute_block_trusting,
    quorum, tx_root,
};

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
    /// Publish an encoded [`Ticket`] on the tickets topic.
    Ticket(Vec<u8>),
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
    /// Committees this node has seen take office since start.
    pub committee_changes: u64,
    /// Empty blocks proposed after the end of an epoch (never committed).
    pub suffix_blocks: u64,
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
    /// The epoch: one per committee.
    pub epoch: u64,
    /// The first height the committee certifies.
    pub epoch_from_height: u64,
    /// Why the committee took office.
    pub reason: ChangeReason,
    /// The last height of the term: its block elects the next committee.
    pub election_height: u64,
    /// Validators whose tickets for the next term are on chain.
    pub tickets: usize,
    /// Whether this node is a committee member.
    pub member: bool,
    /// The committee.
    pub committee: Vec<MemberView>,
    /// Candidates that replace removed members, best first.
    pub standby: Vec<MemberView>,
    /// The proposers of the next views: `(view, member index)`.
    pub schedule: Vec<(u64, u16)>,
    /// Blocks executed but not final yet.
    pub pending_blocks: usize,
    /// Counters.
    pub metrics: EngineMetrics,
}

struct Pending {
    block: Block,
    receipts: Vec<TxReceipt>,
    /// The state after the block; `None` for a suffix block, which changes nothing.
    state: Option<State>,
}

impl Pending {
    /// Whether children of this block are suffix blocks.
    fn ends_chain(&self) -> bool {
        self.state.is_none() || ends_epoch(&self.block.header)
    }
}

/// At most this many proposals wait for their parent.
const MAX_ORPHANS: usize = 64;
/// At most this many executed blocks wait for finality.
const MAX_PENDING: usize = 256;
/// At most this many messages of the next epoch wait for this node to enter it.
const MAX_FUTURE: usize = 1024;
/// At most this many tickets wait to be included.
const MAX_TICKETS: usize = 1024;
/// How often this node gossips its ticket again until it is on chain, milliseconds.
const TICKET_REPEAT_MS: u64 = 1000;

/// The consensus engine of one node.
pub struct Engine {
    chain: Arc<Chain>,
    config: EngineConfig,
    epoch: u64,
    committee: Vec<PublicKey>,
    me: Option<Member>,
    machine: Option<Machine>,
    pending: BTreeMap<Hash32, Pending>,
    /// Proposals waiting for their parent, oldest first.
    orphans: VecDeque<(Block, Signature)>,
    /// Messages of the next epoch, oldest first.
    future: VecDeque<Vec<u8>>,
    /// Tickets for the next term, by candidate.
    tickets: BTreeMap<PublicKey, Ticket>,
    /// This node's ticket for the next term, and whether it verifies.
    own_ticket: Option<(Ticket, bool)>,
    /// When this node last gossiped its own ticket.
    ticket_sent_ms: Option<u64>,
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
    /// This node's own journaled proposals, executed again at the first tick (timestamps
    /// cannot be judged before): a block notarized but not final lives only in memory, and
    /// after a restart of the whole committee its leader's journal is the only copy left.
    restored: Vec<(Block, Signature)>,
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
    /// is in the committee in office.
    pub fn new(chain: Arc<Chain>, config: EngineConfig) -> Result<Engine, crate::ChainError> {
        let journal = chain.journal()?;
        let mut engine = Engine {
            chain,
            config,
            epoch: 0,
            committee: Vec::new(),
            me: None,
            machine: None,
            pending: BTreeMap::new(),
            orphans: VecDeque::new(),
            future: VecDeque::new(),
            tickets: BTreeMap::new(),
            own_ticket: None,
            ticket_sent_ms: None,
            sigs: BTreeMap::new(),
            parents: BTreeMap::new(),
            journal_seq: journal.iter().map(|(_, s, _)| s + 1).max().unwrap_or(0),
            journaled: journal
                .iter()
                .map(|(v, _, m)| (*v, cpc_types::sha256(&[m])))
                .collect(),
            queued: Vec::new(),
            restored: Vec::new(),
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
        engine.enter_epoch();
        engine.replay(journal);
        Ok(engine)
    }

    /// Takes up the committee in office after the head: a fresh machine on top of the head
    /// when this node is a member. What belonged to the previous epoch is dropped; messages
    /// of the new one that arrived early are handled now.
    fn enter_epoch(&mut self) {
        let info = self.chain.committee_info();
        let head = self.chain.head();
        let first = self.committee.is_empty();
        self.epoch = info.epoch;
        self.committee = info.members;
        self.me = self
            .chain
            .key()
            .and_then(|k| self.committee.iter().position(|m| *m == k.public()))
            .and_then(|i| Member::try_from(i).ok());
        self.machine = self.me.map(|me| {
            let cfg = bft::Config {
                members: self.committee.len() as u16,
                me,
                timeout_ms: self.config.view_timeout_ms,
            };
            Machine::restore(
                cfg,
                Proposal {
                    view: head.view,
                    parent_view: head.parent_view,
                    parent: head.parent,
                    block: head.hash(),
                },
            )
        });
        if first {
            return;
        }
        self.metrics.committee_changes += 1;
        tracing::info!(
            epoch = self.epoch,
            term = info.term,
            height = head.height,
            member = self.me.is_some(),
            members = self.committee.len(),
            "a new committee takes office"
        );
        self.pending.clear();
        self.orphans.clear();
        let epoch = self.epoch;
        self.sigs.retain(|v, _| v.epoch == epoch);
        self.parents.clear();
        let early: Vec<Vec<u8>> = std::mem::take(&mut self.future).into();
        let mut out = Vec::new();
        for msg in early {
            let (_, o) = self.on_gossip(&msg);
            out.extend(o);
        }
        self.queued.extend(out);
    }

    /// Restores what this node said before it stopped: its own votes of this epoch first
    /// (so it never contradicts them), then the certificates it had, which it sends again.
    fn replay(&mut self, journal: Vec<(u64, u32, Vec<u8>)>) {
        let Some(me) = self.chain.key().map(|k| k.public()) else {
            return;
        };
        let mut certs = Vec::new();
        for (_, _, bytes) in journal {
            let Ok(msg) = decode_exact::<ConsensusMessage>(&bytes) else {
                continue;
            };
            if msg.epoch() != self.epoch {
                continue;
            }
            let own = match msg {
                ConsensusMessage::Vote {
                    voter,
                    vote,
                    signature,
                } if voter == me => Some((vote, signature)),
                ConsensusMessage::Proposal { block, signature } if block.header.proposer == me => {
                    let vote = block_vote(&block.header, VoteKind::Notarize);
                    self.restored.push((block, signature));
                    Some((vote, signature))
                }
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
        self.queued.extend(out);
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
        // Before the tick, so a timeout it fires can relay them.
        let mut restored = std::mem::take(&mut self.restored);
        restored.sort_by_key(|(b, _)| b.header.view);
        for (block, signature) in restored {
            let _ = self.on_proposal(block, signature, &mut out);
        }
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
        self.own_ticket(&mut out);
        out
    }

    /// Proves this node's ticket for the next term once its seed is known, and gossips it
    /// until it is on chain. Tickets that can no longer be used leave the pool.
    fn own_ticket(&mut self, out: &mut Vec<Outbound>) {
        let Some(key) = self.chain.key().cloned() else {
            return;
        };
        let info = self.chain.committee_info();
        let term = info.term + 1;
        let recorded: std::collections::BTreeSet<Address> = self
            .chain
            .next_term_tickets()
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        self.tickets
            .retain(|k, t| t.term == term && !recorded.contains(&k.address()));
        let Some(seed) = info.next_seed else {
            return;
        };
        let me = key.public();
        if recorded.contains(&me.address()) {
            return;
        }
        if self.own_ticket.map(|(t, _)| t.term) != Some(term) {
            let registered = self
                .chain
                .validator(&me.address())
                .is_some_and(|v| v.deposit > 0);
            if !registered {
                return;
            }
            let (t, _) = cpc_consensus::election::make_ticket(
                &VrfSecret::from_seed(&key.to_bytes()),
                me,
                &seed,
                term,
            );
            // Proved once per term: a ticket that does not verify (a validator registered
            // with another VRF key) is reported once and never gossiped.
            let valid = match self.chain.check_ticket(&t) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "this node's election ticket is not valid; is its vrf key its signing key?");
                    false
                }
            };
            if valid {
                tracing::info!(term, "election ticket made");
            }
            self.own_ticket = Some((t, valid));
        }
        let Some((ticket, true)) = self.own_ticket else {
            return;
        };
        self.tickets.insert(me, ticket);
        let due = self
            .ticket_sent_ms
            .is_none_or(|t| self.mono_ms.saturating_sub(t) >= TICKET_REPEAT_MS);
        if due {
            self.ticket_sent_ms = Some(self.mono_ms);
            out.push(Outbound::Ticket(ticket.encode()));
        }
    }

    /// Handles a gossiped election ticket.
    pub fn on_ticket(&mut self, data: &[u8]) -> Verdict {
        let t = match decode_exact::<Ticket>(data) {
            Ok(t) => t,
            Err(e) => return Verdict::Reject(format!("undecodable ticket: {e}")),
        };
        if self.tickets.get(&t.candidate) == Some(&t) {
            return Verdict::Ignore;
        }
        match self.chain.check_ticket(&t) {
            Ok(_) => {
                if self.tickets.len() >= MAX_TICKETS && !self.tickets.contains_key(&t.candidate) {
                    return Verdict::Ignore;
                }
                self.tickets.insert(t.candidate, t);
                Verdict::Accept
            }
            Err(cpc_state::RuleError::Ticket { error, .. }) if error.is_benign() => Verdict::Ignore,
            Err(e) => {
                self.metrics.rejected += 1;
                Verdict::Reject(e.to_string())
            }
        }
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
        let msg = match decode_exact::<ConsensusMessage>(data) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.rejected += 1;
                return (
                    Verdict::Reject(format!("undecodable consensus message: {e}")),
                    out,
                );
            }
        };
        let epoch = msg.epoch();
        if epoch < self.epoch {
            return (Verdict::Ignore, out);
        }
        if epoch > self.epoch {
            // Others have moved on: this node is missing final blocks. Messages of the next
            // epoch wait (they cannot be checked before its committee is known).
            self.want_fetch = true;
            if epoch == self.epoch + 1 {
                if self.future.len() >= MAX_FUTURE {
                    self.future.pop_front();
                }
                self.future.push_back(data.to_vec());
            }
            self.fetch_if_wanted(&mut out);
            return (Verdict::Ignore, out);
        }
        let verdict = match msg {
            ConsensusMessage::Proposal { block, signature } => {
                self.on_proposal(block, signature, &mut out)
            }
            ConsensusMessage::Vote {
                voter,
                vote,
                signature,
            } => self.on_vote(voter, vote, signature, &mut out),
            ConsensusMessage::Certificate { vote, votes } => {
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
        let vote = block_vote(&h, VoteKind::Notarize);
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
        // The parent: the head, or a pending block (whose children past the end of the
        // epoch are suffix blocks).
        let parent = if h.parent == head.hash() {
            Some((head, Some(self.chain.head_state().1)))
        } else {
            self.pending.get(&h.parent).map(|p| {
                let state = if p.ends_chain() {
                    None
                } else {
                    p.state.clone()
                };
                (p.block.header.clone(), state)
            })
        };
        let Some((parent, state)) = parent else {
            if self.orphans.len() >= MAX_ORPHANS {
                self.orphans.pop_front();
            }
            self.orphans.push_back((block, signature));
            if h.height > self.chain.height() + 1 {
                self.want_fetch = true;
            }
            return Verdict::Ignore;
        };
        let accel = self.chain.accel();
        let pending = match state {
            None => {
                if let Err(e) = check_suffix_block(accel, &parent, &block) {
                    return Verdict::Reject(format!("invalid block: {e}"));
                }
                Pending {
                    block,
                    receipts: Vec::new(),
                    state: None,
                }
            }
            Some(mut state) => {
                state.take_diff();
                let verified = self.chain.pre_verified(&block.txs);
                match execute_block_trusting(&mut state, &parent, &block, accel, &verified) {
                    Ok(receipts) => Pending {
                        block,
                        receipts,
                        state: Some(state),
                    },
                    Err(e) => return Verdict::Reject(format!("invalid block: {e}")),
                }
            }
        };
        self.pending.insert(hash, pending);
        self.set_parent(&proposal_of(&vote));
        if let Some(leader) = self.member_of(&h.proposer) {
            self.step(
                Event::Message(leader, Message::Propose(proposal_of(&vote))),
                out,
            );
        }
        if self.machine.is_none() {
            // Votes or a certificate may have made it final before the block arrived.
            let fin = block_vote(&h, VoteKind::Finalize);
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
            .partition(|(b, _)| b.header.parent == parent);
        self.orphans = rest.into();
        for (b, sig) in ready {
            if b.header.epoch == self.epoch {
                let _ = self.on_proposal(b, sig, out);
            }
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
    /// which the prefix up to the last block with a finalize certificate of its committee
    /// is committed (the blocks below it are final through the header hashes). Each
    /// block's committee is the one its parent's state installs, so the run is executed on
    /// a scratch state first to learn them. Returns how many blocks were committed.
    pub fn on_blocks(&mut self, blocks: Vec<Block>) -> Result<usize, SyncError> {
        let (mut prev, mut scratch) = self.chain.head_state();
        let accel = self.chain.accel();
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
            let committee = scratch.committee();
            execute_block(&mut scratch, &prev, b, accel)
                .map_err(|e| SyncError::Invalid(format!("invalid synced block: {e}")))?;
            scratch.take_diff();
            let c = &b.certificate;
            if c.kind == VoteKind::Finalize
                && crate::exec::check_certificate(accel, &b.header, c, &committee).is_ok()
            {
                last_final = Some(i);
            }
            prev = b.header.clone();
        }
        let Some(last) = last_final else {
            return Err(SyncError::Unusable(
                "no block in the answer carries a finalize certificate".into(),
            ));
        };
        drop(scratch);
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
        if self.chain.committee_info().epoch != self.epoch {
            self.enter_epoch();
            return Ok(applied);
        }
        // The machine jumps to the synced head as if it had seen the certificate.
        let fin = Proposal {
            view: head.view,
            parent_view: head.parent_view,
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
            let sigs = &self.sigs;
            let tickets: Vec<Ticket> = self.tickets.values().copied().collect();
            let interval = self.config.block_interval_ms;
            let wall = self.wall_ms;
            let metrics = &mut self.metrics;
            let mut propose = |view: View, parent: &Proposal| -> Option<Hash32> {
                let head = chain.head();
                let (ph, state) = if parent.block == head.hash() {
                    let (h, s) = chain.head_state();
                    (h, Some(s))
                } else {
                    let p = pending.get(&parent.block)?;
                    let state = if p.ends_chain() {
                        None
                    } else {
                        p.state.clone()
                    };
                    (p.block.header.clone(), state)
                };
                if wall < ph.timestamp_ms.saturating_add(interval) {
                    return None;
                }
                let built = match state {
                    None => {
                        metrics.suffix_blocks += 1;
                        suffix_block(chain, &ph, view, wall)?
                    }
                    Some(state) => {
                        let votes = parent_votes(chain, sigs, &ph);
                        match chain.build_block(&ph, state, view, wall, &tickets, votes) {
                            Ok(b) => Pending {
                                block: b.block,
                                receipts: b.receipts,
                                state: Some(b.state),
                            },
                            Err(e) => {
                                tracing::warn!(view, error = %e, "cannot build a block");
                                return None;
                            }
                        }
                    }
                };
                let hash = built.block.header.hash();
                parents.insert((view, hash), (parent.view, parent.block));
                pending.insert(hash, built);
                metrics.proposed += 1;
                Some(hash)
            };
            machine.handle(event, &mut propose)
        };
        self.machine = Some(machine);
        let epoch = self.epoch;
        for action in actions {
            // Committing the end of the epoch replaced the machine: what the old one still
            // asks for would be signed as the new epoch's.
            if self.epoch != epoch {
                break;
            }
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
        let epoch = self.epoch;
        Some(match *v {
            bft::Vote::Notarize(p) => Vote {
                chain_id,
                epoch,
                kind: VoteKind::Notarize,
                view: p.view,
                parent_view: p.parent_view,
                parent: p.parent,
                block: p.block,
            },
            bft::Vote::Nullify(view) => Vote {
                chain_id,
                epoch,
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
                    epoch,
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
                    let msg = ConsensusMessage::Proposal { block, signature };
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
            Action::Relay(p) => self.relay(&p, out),
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

    /// Gossips again the proposal of another leader this node holds, as that leader
    /// signed it. Not journaled: it is not this node's word.
    fn relay(&self, p: &Proposal, out: &mut Vec<Outbound>) {
        let (Some(pending), Some(vote)) = (
            self.pending.get(&p.block),
            self.machine_vote(&bft::Vote::Notarize(*p)),
        ) else {
            return;
        };
        let leader = self.leader(p.view);
        if let Some(signature) = self.sigs.get(&vote).and_then(|s| s.get(&leader)) {
            let msg = ConsensusMessage::Proposal {
                block: pending.block.clone(),
                signature: *signature,
            };
            out.push(Outbound::Gossip(msg.encode()));
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
            // Suffix blocks only made the end of the epoch final; they are not committed.
            let Some(state) = p.state else {
                break;
            };
            let mut block = p.block;
            block.certificate = self.best_certificate(&block.header);
            if let Err(e) = self
                .chain
                .commit_final(&block, &p.receipts, state, self.wall_ms)
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
        if self.chain.committee_info().epoch != self.epoch {
            self.enter_epoch();
        }
    }

    fn best_certificate(&self, header: &BlockHeader) -> Certificate {
        let q = quorum(self.committee.len());
        let collect = |kind: VoteKind| {
            let vote = block_vote(header, kind);
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
        self.orphans.retain(|(b, _)| b.header.view > view);
        self.journaled.retain(|(v, _)| *v >= view);
    }

    /// The consensus state for the API.
    pub fn status(&self) -> ConsensusStatus {
        let head = self.chain.head();
        let info = self.chain.committee_info();
        let n = self.committee.len() as u64;
        let view = self.machine.as_ref().map_or(head.view, Machine::view);
        let member_view = |index: usize, key: &PublicKey| MemberView {
            index: index as u16,
            key: *key,
            address: key.address(),
            credit: self.chain.validator(&key.address()).map_or(0, |v| v.credit),
            lucky: info.lucky_of(key),
        };
        let term_length = self.chain.genesis().params.term_length.max(1);
        ConsensusStatus {
            height: head.height,
            view,
            finalized_view: self
                .machine
                .as_ref()
                .map_or(head.view, Machine::finalized_view),
            term: info.term,
            epoch: info.epoch,
            epoch_from_height: info.from_height,
            reason: info.reason,
            election_height: (info.term + 1) * term_length,
            tickets: self.chain.next_term_tickets().len(),
            member: self.me.is_some(),
            committee: info
                .members
                .iter()
                .enumerate()
                .map(|(i, k)| member_view(i, k))
                .collect(),
            standby: info
                .standby
                .iter()
                .enumerate()
                .map(|(i, k)| member_view(i, k))
                .collect(),
            schedule: (view..view + 8)
                .map(|v| (v, (v % n.max(1)) as u16))
                .collect(),
            pending_blocks: self.pending.len(),
            metrics: self.metrics.clone(),
        }
    }
}

/// The parent's votes a block on `parent` carries: a quorum of notarize (else finalize)
/// votes this node holds, or the head's stored certificate; none for the first block of
/// an epoch or when no quorum is at hand.
fn parent_votes(
    chain: &Chain,
    sigs: &BTreeMap<Vote, BTreeMap<PublicKey, Signature>>,
    parent: &BlockHeader,
) -> Certificate {
    if parent.height == 0 || ends_epoch(parent) {
        return Certificate::default();
    }
    let q = quorum(chain.committee().len());
    for kind in [VoteKind::Notarize, VoteKind::Finalize] {
        if let Some(s) = sigs.get(&block_vote(parent, kind)).filter(|s| s.len() >= q) {
            return Certificate {
                kind,
                view: parent.view,
                votes: s.iter().map(|(k, v)| (*k, *v)).collect(),
            };
        }
    }
    match chain.block(parent.height) {
        Ok(Some((b, _))) if b.header == *parent && b.certificate.votes.len() >= q => b.certificate,
        _ => Certificate::default(),
    }
}

/// An empty block on `parent`, past the end of its epoch (see the module documentation).
fn suffix_block(chain: &Chain, parent: &BlockHeader, view: View, wall_ms: u64) -> Option<Pending> {
    let key = chain.key()?;
    let header = BlockHeader {
        chain_id: parent.chain_id,
        height: parent.height + 1,
        view,
        parent_view: parent.view,
        parent: parent.hash(),
        timestamp_ms: wall_ms.max(parent.timestamp_ms.saturating_add(1)),
        proposer: key.public(),
        epoch: parent.epoch,
        tx_root: tx_root(chain.accel(), &[]),
        state_root: parent.state_root,
        vrf_proof: None,
        committee_change: None,
    };
    Some(Pending {
        block: Block {
            header,
            certificate: Certificate::default(),
            txs: Vec::new(),
            tickets: Vec::new(),
            parent_votes: Certificate::default(),
        },
        receipts: Vec::new(),
        state: None,
    })
}
