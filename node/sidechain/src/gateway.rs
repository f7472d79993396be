//! The side-chain state machine of one node: events in, actions out.

mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher as _;
use std::sync::{Arc, OnceLock};

use cpc_accel::{Dispatcher, SigItem};
use cpc_types::codec::{Decode, DecodeError, Encode, Reader};
use cpc_types::{
    Address, Endorsement, Hash32, PublicKey, SecretKey, SideAnchor as Anchor, SideReward as Reward,
    sha256,
};
use foldhash::SharedSeed;
use foldhash::fast::SeedableRandomState;
use serde::{Deserialize, Serialize};

use crate::SideError;
use crate::group::Group;
use crate::types::{
    EquivocationEvidence, MachineKind, MachineTx, Message, SignedAnchor, SignedMachineTx,
    SignedVertex, Slot, Vertex, VertexId,
};

/// Parents a vertex may name besides its creator's previous vertex.
pub const MAX_TIPS: usize = 8;
/// Relay-delay scale of cooperation points: a reference this many ms after the referenced
/// vertex earns half the points of an immediate one.
pub const RELAY_HALF_MS: u64 = 100;

/// Anchor proposals kept per sequence number (a gateway proposes again while the main
/// chain has not taken one, and so do the others once it is overdue). They collect
/// endorsements and give the status *anchored* early: finality comes with the frontier
/// from the main chain.
const MAX_PROPOSALS: usize = 64;

/// Vertices asked for at most on the word of peers' heads, which anyone may send: a
/// flood of made-up ids fills this many and no more. Parents a received vertex lacks,
/// and vertices a final anchor names, are asked for regardless.
const MAX_HEADS_ASKED: usize = 4096;

/// Ids asked again in one request at most (every heads interval, to every peer): no more
/// than a peer answers.
const MAX_ASK_AGAIN: usize = MAX_ANSWER;

/// Pruned slots summarised per input at most (see `absorb_some`).
const ABSORB_BUDGET: usize = 512;

/// Pruned slots summarised per millisecond at least, however small the backlog.
const ABSORB_MIN_PACE: usize = 4;

/// Most vertices one answer to a request carries: the asked ones and their ancestors.
const MAX_ANSWER: usize = 256;

/// Removed vertices remembered by id, so that a peer's heads or answers naming them are
/// not fetched again (2 MB), and pruned ones by creator and sequence, so that a late twin
/// of one is reported (3 MB).
const RECENT_PRUNED: usize = 1 << 16;

/// Why a vertex that builds on pruned history without reaching all of it is refused.
const OUTSIDE_PRUNED: &str = "its history does not reach the pruned (final) history";

/// The peer a replayed message ([`Input::Replayed`]) comes from: what the state machine
/// sends it (requests for parents) goes nowhere.
pub const REPLAYED: u64 = u64::MAX;

/// Why a retired gateway stopped signing.
const RETIRED: &str = "the group's owner retired it on the main chain";

/// How a gateway behaves. Every node of a group must use the same `group`; the timing
/// fields are local.
#[derive(Clone, Debug)]
pub struct Config {
    /// The group.
    pub group: Group,
    /// Milliseconds between two vertices of this gateway.
    pub vertex_interval_ms: u64,
    /// Most transactions in one vertex.
    pub max_batch: usize,
    /// Most transactions waiting in the pool.
    pub max_pool: usize,
    /// Anchor once this many confirmed vertices are not anchored yet.
    pub anchor_every_vertices: u64,
    /// Or once this many milliseconds passed since the last final anchor.
    pub anchor_interval_ms: u64,
    /// Milliseconds between two announcements of this node's heads (catch-up).
    pub heads_interval_ms: u64,
    /// Base units shared among cooperating gateways at each anchor: the group's
    /// `reward_per_anchor` on the main chain (every gateway must use the same).
    pub reward_per_anchor: u64,
    /// A transaction that cannot be included (nonce gap, lock not final, a transfer its
    /// sender's confirmed funds do not cover yet) is dropped after this many milliseconds.
    pub max_pending_ms: u64,
    /// Drops final history from memory (see "Pruning" in the crate docs) and hands it out
    /// in [`Action::Pruned`]; off, the node keeps every vertex and transaction in memory.
    pub prune_history: bool,
}

impl Config {
    /// Defaults for `group`.
    pub fn new(group: Group) -> Config {
        Config {
            group,
            vertex_interval_ms: 5,
            max_batch: 2_000,
            max_pool: 100_000,
            anchor_every_vertices: 1_000,
            anchor_interval_ms: 5_000,
            heads_interval_ms: 500,
            reward_per_anchor: 0,
            max_pending_ms: 30_000,
            prune_history: true,
        }
    }
}

/// What the node feeds the state machine.
#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed; the only clock the state machine sees.
    Tick,
    /// A gossip message from a peer (an opaque token the I/O layer chooses).
    Message {
        /// Who sent it.
        from: u64,
        /// The message.
        msg: Message,
    },
    /// A main-chain lock for a machine account became final.
    Lock {
        /// The lock transaction id.
        id: Hash32,
        /// The machine account credited.
        account: Address,
        /// Base units.
        amount: u64,
    },
    /// An anchor of the group is in a final main-chain block.
    AnchorFinal {
        /// Its sequence number.
        sequence: u64,
        /// Its root.
        root: Hash32,
        /// Its vertex count.
        confirmed_vertices: u64,
        /// The confirmed frontier it covers (sorted vertex ids).
        frontier: Vec<VertexId>,
    },
    /// The group's reward per anchor changed on the main chain.
    RewardPerAnchor(u64),
    /// The group's owner retired a gateway on the main chain: it is gone for good, and
    /// pruning no longer waits for it (see [`SideChain::retire`]).
    Retire(PublicKey),
    /// A message from this node's own log, replayed at start: as [`Input::Message`] from
    /// peer [`REPLAYED`], but none of its vertices is dropped as unneeded. The node logs
    /// only what it took, and what made a retired gateway's vertex needed then may be
    /// gone by now (a final anchor applied before the replay, a vertex refused since).
    Replayed(Message),
    /// Summarise the pruned history due now, unpaced. A node replaying its log at start
    /// sends it between the replayed messages: they come far faster than real time, and
    /// the pace set by input time would leave the history they prune in memory.
    SummarisePruned,
}

/// What the state machine asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sends a message to one peer, or to the whole group topic.
    Send {
        /// The peer, or `None` for everyone.
        to: Option<u64>,
        /// The message.
        msg: Message,
    },
    /// Submits an anchor that a quorum of gateways endorsed to the main chain.
    SubmitAnchor(SignedAnchor),
    /// A gateway signed two vertices with one sequence number: report it on the main chain.
    Equivocation(Box<EquivocationEvidence>),
    /// A twin of a vertex this node pruned: `vertex` has the creator and sequence of
    /// `pruned`, which went out in [`Action::Pruned`]. The node reads `pruned` back from
    /// its archive and reports the two as for [`Action::Equivocation`].
    PrunedTwin {
        /// The vertex that arrived.
        vertex: Box<SignedVertex>,
        /// The pruned vertex it forks.
        pruned: VertexId,
    },
    /// A transaction confirmed here, this long after this node first saw it.
    Confirmed {
        /// The transaction.
        tx: Hash32,
        /// Milliseconds from first sight to confirmation.
        latency_ms: u64,
    },
    /// A vertex of a retired gateway that nothing here needs, dropped unchecked: that
    /// gateway's key may be in anyone's hands, and what it signs now would only fill
    /// memory and logs (nothing references it, so it never confirms or leaves). The node
    /// neither logs nor relays it. One that another gateway's vertex or the next anchor's
    /// frontier names is asked for again then, and taken.
    Unneeded {
        /// The vertex.
        vertex: VertexId,
    },
    /// A peer's vertex broke a rule (its creator is faulty).
    Rejected {
        /// The vertex.
        vertex: VertexId,
        /// Why.
        reason: String,
        /// A signature fails or the form is broken: no honest node sends it, whatever it
        /// holds (unlike a vertex refused for what this node's history lacks or pruned).
        malformed: bool,
    },
    /// An anchor does not match this node's confirmed history.
    AnchorMismatch {
        /// Its sequence.
        sequence: u64,
        /// What differs.
        reason: String,
    },
    /// Final history left memory: vertices nothing here needs any more and transactions
    /// whose every copy is final, with their last status. The node archives them (the
    /// API and peers catching up read them there); the state machine has forgotten them.
    Pruned {
        /// The vertices (transactions included).
        vertices: Vec<VertexInfo>,
        /// The transactions, by hash.
        txs: Vec<(Hash32, TxInfo)>,
    },
}

/// Where a machine transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Waiting in a pool or in unconfirmed vertices.
    Pending,
    /// Confirmed by a quorum (n − f) of gateways.
    Confirmed,
    /// Covered by an anchor sent to the main chain.
    Anchored {
        /// The anchor's sequence.
        anchor: u64,
    },
    /// Covered by an anchor in a final main-chain block.
    Final {
        /// The anchor's sequence.
        anchor: u64,
    },
    /// Refused from the pool (never included), or, once its double spend is final and
    /// pruned, never to confirm: it lost its slot, or depends on a transaction that did
    /// (a node that keeps its history reports that pending).
    Rejected {
        /// Why.
        reason: String,
    },
}

/// What a node knows about a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxInfo {
    /// The transaction (boxed: the maps of a busy gateway hold tens of thousands of these,
    /// and a lean entry keeps their memory and the cost of growing them down).
    pub tx: Box<SignedMachineTx>,
    /// Its status.
    pub status: TxStatus,
    /// When this node first saw it.
    pub first_seen_ms: u64,
    /// Milliseconds from first sight to confirmation, once confirmed.
    pub latency_ms: Option<u64>,
    /// The vertices that include it.
    pub vertices: Vec<VertexId>,
}

/// A stored vertex and what the node derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexInfo {
    /// The vertex.
    pub vertex: SignedVertex,
    /// Index of its creator.
    pub creator: usize,
    /// Per gateway, the highest sequence in its causal history (itself included).
    clock: Vec<u64>,
    /// Gateways with a vertex whose causal history holds this one (bit i = gateway i).
    pub seen_by: u64,
    /// Gateways with a vertex that every gateway has seen (every one not retired, see
    /// `waived`) and whose history holds this one: once all are set, every such gateway
    /// knows, for each creator, a vertex of it above this one (see `prune`).
    settled_by: u64,
    /// When this node confirmed it.
    pub confirmed_ms: Option<u64>,
    /// The anchor covering it, once one does.
    pub anchor: Option<u64>,
    /// Hash and slot of each transaction, computed once on arrival (emptied once pruned).
    keys: Vec<TxKey>,
    /// Cooperation points of its references to other gateways (relay delay counted).
    points: u64,
    /// Whether it references no other gateway.
    lazy: bool,
    /// Pruned tips its history (itself included) does not hold: empty but for vertices
    /// on an equivocator's fork below the pruned history.
    missing: Vec<VertexId>,
    /// Below a final anchor and settled: its transactions are summarised
    /// in the account index, and it stays only while something needs it.
    pruned: bool,
    /// A later vertex of its creator reaches it: its creator's own bit in `seen_by` comes
    /// from more than the vertex itself (an equivocator's twin that its chain left behind
    /// is not, unless a later vertex of its creator reaches it through another gateway's;
    /// see `prune`).
    continued: bool,
}

impl VertexInfo {
    /// A vertex read back from an archive of pruned history ([`Action::Pruned`]); what
    /// only the ledger rule used is not kept there.
    pub fn archived(
        vertex: SignedVertex,
        creator: usize,
        seen_by: u64,
        confirmed_ms: Option<u64>,
        anchor: Option<u64>,
    ) -> VertexInfo {
        VertexInfo {
            vertex,
            creator,
            clock: Vec::new(),
            seen_by,
            settled_by: seen_by,
            confirmed_ms,
            anchor,
            keys: Vec::new(),
            points: 0,
            lazy: false,
            missing: Vec::new(),
            pruned: true,
            continued: true,
        }
    }
}

/// The archive form of a vertex: what the node derived from it (creator, gateways that saw
/// it, when it confirmed, its anchor), then the vertex. What only the ledger rule uses is
/// not encoded, so it decodes as [`VertexInfo::archived`].
impl Encode for VertexInfo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        u32::try_from(self.creator)
            .unwrap_or(u32::MAX)
            .encode_to(out);
        self.seen_by.encode_to(out);
        self.confirmed_ms.encode_to(out);
        self.anchor.encode_to(out);
        self.vertex.encode_to(out);
    }
}

impl Decode for VertexInfo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let creator = u32::decode_from(r)? as usize;
        let seen_by = u64::decode_from(r)?;
        let confirmed_ms = Option::<u64>::decode_from(r)?;
        let anchor = Option::<u64>::decode_from(r)?;
        let vertex = SignedVertex::decode_from(r)?;
        Ok(VertexInfo::archived(
            vertex,
            creator,
            seen_by,
            confirmed_ms,
            anchor,
        ))
    }
}

impl Encode for TxStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            TxStatus::Pending => out.push(0),
            TxStatus::Confirmed => out.push(1),
            TxStatus::Anchored { anchor } => {
                out.push(2);
                anchor.encode_to(out);
            }
            TxStatus::Final { anchor } => {
                out.push(3);
                anchor.encode_to(out);
            }
            TxStatus::Rejected { reason } => {
                out.push(4);
                reason.encode_to(out);
            }
        }
    }
}

impl Decode for TxStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.tag()? {
            0 => TxStatus::Pending,
            1 => TxStatus::Confirmed,
            2 => TxStatus::Anchored {
                anchor: u64::decode_from(r)?,
            },
            3 => TxStatus::Final {
                anchor: u64::decode_from(r)?,
            },
            4 => TxStatus::Rejected {
                reason: String::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "tx status",
                    tag,
                });
            }
        })
    }
}

/// A transaction's hash and slot: the keys the ledger rule looks it up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TxKey {
    hash: Hash32,
    slot: Slot,
}

impl TxKey {
    /// From a transaction and its signing bytes (whose hash is the transaction hash).
    fn new(tx: &SignedMachineTx, signing: &[u8]) -> TxKey {
        TxKey {
            hash: MachineTx::hash_of(signing),
            slot: tx.tx.slot(),
        }
    }
}

/// One inclusion of a transaction in a vertex.
type OccId = (Hash32, VertexId);

/// The state machine's hash maps: keys are hashes, slots and addresses that peers choose,
/// so the hasher is keyed, and it is foldhash, several times faster than std's SipHash on
/// these 32- to 64-byte keys (hashing was a tenth of the state machine's time).
type Map<K, V> = HashMap<K, V, SeedableRandomState>;

/// An empty [`Map`] keyed from the OS randomness std's `RandomState` draws (foldhash's own
/// random state is seeded from addresses, too predictable for keys peers choose).
fn map<K, V>() -> Map<K, V> {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let os = std::collections::hash_map::RandomState::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(os.hash_one(0u8)));
    HashMap::with_hasher(SeedableRandomState::with_seed(os.hash_one(1u8), shared))
}

/// What this node knows of one slot: the occurrences of transactions in it and, per
/// transaction, the gateways that endorsed it by seeing it first in the slot (one entry
/// unless the slot is double spent).
#[derive(Default)]
struct SlotInfo {
    occs: Vec<OccId>,
    endorsed: Vec<(Hash32, u64)>,
}

impl SlotInfo {
    /// The gateways (bit i = gateway i) that endorsed transaction `h`.
    fn endorsers(&self, h: &Hash32) -> u64 {
        self.endorsed
            .iter()
            .find(|(x, _)| x == h)
            .map_or(0, |(_, m)| *m)
    }

    /// Records that gateway `g` saw `h` in this slot; whether that endorses it (`g`
    /// endorsed nothing else here), with the endorsers then.
    fn endorse(&mut self, g: usize, h: Hash32) -> Option<u64> {
        if self.endorsed.iter().any(|(_, m)| m & bit(g) != 0) {
            return None;
        }
        let at = match self.endorsed.iter().position(|(x, _)| *x == h) {
            Some(at) => at,
            None => {
                self.endorsed.push((h, 0));
                self.endorsed.len() - 1
            }
        };
        self.endorsed[at].1 |= bit(g);
        Some(self.endorsed[at].1)
    }
}

/// What the API reports of an account, kept as transactions arrive and confirm: a scan
/// of every transaction would hold up the gateway once the history is long.
#[derive(Default)]
struct Account {
    /// Credits minus debits of its confirmed transactions.
    balance: i128,
    /// One past the highest nonce among its transactions in vertices.
    included_next: u64,
    /// Nonces of its transactions in this gateway's pool (with how many; a double spend
    /// may wait there twice).
    pooled: BTreeMap<u64, u32>,
    /// Its transactions below this nonce are pruned: every copy final, each slot decided.
    pruned_next: u64,
    /// The pruned slot at `pruned_next − 1`, which its next transaction builds on.
    pruned_last: Option<PrunedLast>,
    /// Credits to it by pruned transactions (distinct ones, confirmed or not, as the
    /// ledger rule counts credits in a history).
    pruned_credits: u128,
    /// The part of `pruned_credits` that never confirmed (a lost double spend, or what
    /// depended on one): it funds inclusion but never confirmation.
    pruned_dead_credits: u128,
}

/// The last pruned slot of an account, as a spend of the next nonce sees it.
#[derive(Clone, Copy)]
struct PrunedLast {
    /// The copy a spend builds on (the lowest vertex id): its transaction and vertex.
    copy: OccId,
    /// Debits of the sender's chain up to it.
    debits: u64,
    /// Whether that copy confirmed.
    confirmed: bool,
    /// Whether the slot held two different transactions (the next nonce can never be
    /// included then).
    double_spent: bool,
}

impl Account {
    fn next_nonce(&self) -> u64 {
        // A client may pool any nonce, u64::MAX too.
        let pooled = self
            .pooled
            .last_key_value()
            .map_or(0, |(n, _)| n.saturating_add(1));
        self.included_next.max(pooled)
    }

    fn unpool(&mut self, nonce: u64) {
        if let Some(c) = self.pooled.get_mut(&nonce) {
            *c -= 1;
            if *c == 0 {
                self.pooled.remove(&nonce);
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Occ {
    slot: Slot,
    /// The occurrence of the sender's previous transaction it builds on, until that is
    /// confirmed: this very copy, since `debits` follows its chain (another copy of the
    /// same transaction may follow another chain, after a double spend below it).
    prev: Option<OccId>,
    /// The credits its history holds that had not confirmed when it was checked, by hash
    /// with their amounts, until they confirm: any copy of one confirms the amount (and
    /// which copy a node saw first differs between nodes).
    credits: Vec<(Hash32, u64)>,
    /// How much of its chain's debits the confirmed credits in its history left uncovered
    /// when it was checked, less the `credits` confirmed since. It confirms at zero: a
    /// credit that never confirms holds up only the spends that cannot do without it, so
    /// a double spend made out to an account cannot freeze that account (at gateways that
    /// include a transfer only once confirmed funds cover it).
    shortfall: u64,
    /// Debits of the sender's chain up to and including this transaction.
    debits: u64,
    credit: Option<(Address, u64)>,
    lock: Option<Hash32>,
    confirmed: bool,
}

/// The status of a node's side chain, for the API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// The group id.
    pub group_id: Hash32,
    /// This node's gateway key, if it is one.
    pub gateway: Option<PublicKey>,
    /// Gateways, quorum.
    pub gateways: Vec<PublicKey>,
    /// Distinct gateways that confirm a vertex.
    pub quorum: usize,
    /// Latest vertex per gateway (null where none).
    pub tips: Vec<Option<VertexId>>,
    /// Highest confirmed vertex per gateway.
    pub confirmed_frontier: Vec<Option<VertexId>>,
    /// Vertices held in memory.
    pub vertices: u64,
    /// Vertices pruned from memory (final and settled).
    pub pruned_vertices: u64,
    /// Transactions pruned from memory (every copy final, the slot decided).
    pub pruned_txs: u64,
    /// Vertices confirmed.
    pub confirmed_vertices: u64,
    /// Transactions confirmed.
    pub confirmed_txs: u64,
    /// Transactions waiting in this gateway's pool (some may have just been included by
    /// another gateway; they leave at this gateway's next vertex).
    pub pool: usize,
    /// The last anchor this node verified, and whether it is final.
    pub last_anchor: Option<AnchorStatus>,
    /// Cumulative cooperation score per gateway over final anchors.
    pub scores: Vec<u64>,
    /// Cumulative rewards per gateway over final anchors.
    pub rewards: Vec<u64>,
    /// Gateways caught equivocating.
    pub equivocators: Vec<PublicKey>,
    /// The sequence of this gateway's last vertex in its chain (none for an observer).
    #[serde(default)]
    pub own_sequence: Option<u64>,
    /// While this gateway does not sign because its own chain is not back yet (after a
    /// restart that lost the tail of its log, or with no log), the highest sequence of its
    /// own it has seen: it signs again once its chain reaches it (peers send it).
    #[serde(default)]
    pub resuming_to: Option<u64>,
    /// Per gateway, the timestamp (its own clock, ms) of its latest vertex: a gateway long
    /// silent holds up pruning.
    #[serde(default)]
    pub last_vertex_ms: Vec<Option<u64>>,
    /// Vertices that final anchors cover and that wait for every gateway to see them
    /// before they leave memory (see the crate docs, "Pruning"). It grows while a gateway
    /// is silent.
    #[serde(default)]
    pub awaiting_settling: u64,
    /// Why this gateway stopped signing for the rest of the run, if it did.
    #[serde(default)]
    pub halted: Option<String>,
    /// Gateways the group's owner retired on the main chain (gone for good): pruning
    /// does not wait for them, and no gateway references their vertices.
    #[serde(default)]
    pub retired: Vec<PublicKey>,
}

/// An anchor as the status reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnchorStatus {
    /// Sequence.
    pub sequence: u64,
    /// Root.
    pub root: Hash32,
    /// Vertices covered so far.
    pub confirmed_vertices: u64,
    /// In a final main-chain block.
    pub is_final: bool,
}

/// A final anchor as the main chain recorded it.
#[derive(Clone)]
struct Final {
    root: Hash32,
    count: u64,
    frontier: Vec<VertexId>,
}

#[derive(Default)]
struct Batch {
    slots: BTreeMap<Slot, ()>,
    locks: BTreeSet<Hash32>,
    /// Per sender: (nonce, debits) of its last transaction in the batch.
    chain: BTreeMap<Address, (u64, u64)>,
    credits: BTreeMap<Address, u64>,
}

/// Client transactions with their hashes and signature verdicts, from
/// [`SideChain::check_signatures`]; only that function makes one.
#[derive(Debug)]
pub struct CheckedTxs(Vec<(SignedMachineTx, Hash32, bool)>);

impl CheckedTxs {
    /// Transactions checked.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A history view: the causal history of a set of parents (and the vertex on top).
struct View<'a> {
    clock: Vec<u64>,
    parents: &'a [VertexId],
}

/// Why a transaction cannot go into a vertex.
enum Refusal {
    /// Not yet: it may become valid (nonce gap, lock not yet known). `unseen`: what it
    /// waits for (its sender's previous nonce, its lock) is nowhere in this node's
    /// history yet, so only news of its own account can change the verdict.
    Wait {
        reason: String,
        unseen: bool,
    },
    Invalid(String),
    /// Not yet, by this gateway's policy: a transfer its sender's confirmed funds do not
    /// cover (see [`SideChain::check_tx`]).
    Unfunded,
}

/// The side chain as one node sees it. Gateways hold the group key; other nodes observe.
pub struct SideChain {
    cfg: Config,
    key: Option<SecretKey>,
    me: Option<usize>,
    accel: Arc<Dispatcher>,
    now: u64,
    // Maps only looked up, never iterated where order could matter, are hash maps: the
    // per-transaction bookkeeping is dominated by lookups of 32- and 64-byte keys.
    vertices: Map<VertexId, VertexInfo>,
    by_seq: BTreeMap<(usize, u64), Vec<VertexId>>,
    latest: Vec<Option<(u64, VertexId)>>,
    equivocators: BTreeSet<usize>,
    /// Gateways retired on the main chain (a mask; see [`SideChain::retire`]).
    retired: u64,
    waiting: BTreeMap<VertexId, (SignedVertex, Vec<TxKey>, u64)>,
    /// Vertices asked for, and when first: asked again every heads interval, forgotten
    /// once they arrive or after `max_pending_ms` (a vertex waits no longer for a parent,
    /// and a final anchor asks again for what its frontier still lacks).
    requested: BTreeMap<VertexId, u64>,
    /// When each peer's heads were last taken (not in a snapshot).
    heads_seen: BTreeMap<u64, u64>,
    txs: Map<Hash32, TxInfo>,
    occs: Map<OccId, Occ>,
    slots: Map<Slot, SlotInfo>,
    lock_occs: Map<Hash32, Vec<OccId>>,
    credits: Map<Address, Vec<OccId>>,
    /// Occurrences waiting for a transaction (by hash) to confirm, as `prev` or a credit.
    dependents: Map<Hash32, Vec<OccId>>,
    locks: Map<Hash32, (Address, u64)>,
    accounts: Map<Address, Account>,
    pool: VecDeque<TxKey>,
    /// Pool transactions that wait for something of their sender not yet seen (the
    /// previous nonce, the lock), by sender: out of the pool, which every vertex scans,
    /// until a transaction of that account arrives in a vertex or its lock is final.
    parked: BTreeMap<Address, Vec<TxKey>>,
    parked_len: usize,
    /// Senders with a transfer parked until their confirmed funds cover it: woken when a
    /// credit to them confirms, and at every heads interval (a credit confirmed already
    /// may enter this gateway's history later, with nothing to tell).
    funding: BTreeSet<Address>,
    /// Vertices with transactions this gateway's chain does not reach yet (a gateway's
    /// only): it signs a vertex for them even with nothing of its own to include. Until
    /// they are confirmed that is their quorum; after, pruning, which waits for them to
    /// settle (an idle gateway that stopped at confirmation held the tail in memory).
    to_reference: BTreeSet<VertexId>,
    /// Other gateways' first vertices to reach one with transactions, which settling needs
    /// every gateway to see: at each heads interval they join `to_reference`, which keeps
    /// those this gateway's chain does not reach yet. Under load they are seen long before; an idle group
    /// signs one more round for them and falls silent (the vertices of that round reach no
    /// transaction first).
    to_settle: BTreeSet<VertexId>,
    my_seq: u64,
    my_last: Option<VertexId>,
    /// The highest sequence of this gateway's own vertices seen, from peers or a log: it
    /// signs again only once its chain is back up to there, so that it never signs a
    /// sequence number twice (an own vertex whose parents never come keeps it silent).
    own_seen: u64,
    /// Why this gateway stopped signing for the rest of the run (see [`SideChain::halt`]);
    /// not in a snapshot.
    halted: Option<String>,
    last_vertex_ms: u64,
    last_heads_ms: u64,
    started_ms: Option<u64>,
    confirmed_vertices: u64,
    confirmed_txs: u64,
    // anchoring
    anchor_root: Hash32,
    anchor_count: u64,
    final_seq: u64,
    last_final_ms: u64,
    /// The last final anchor and the next one checked against this DAG: root, count and
    /// the vertices it newly covers.
    verified: BTreeMap<u64, (Hash32, u64, Vec<VertexId>)>,
    proposals: BTreeMap<u64, Vec<SignedAnchor>>,
    /// Anchors (hash of their signing bytes) this node recomputed from its own DAG.
    matched: BTreeSet<Hash32>,
    /// The sequence and time of the last anchor this node sent to the main chain.
    sent: Option<(u64, u64)>,
    finals: BTreeMap<u64, Final>,
    /// A final anchor this DAG contradicts, reported once.
    final_mismatch: Option<u64>,
    submitted: Option<u64>,
    anchor_log: Vec<(u64, Hash32, u64)>,
    scores: Vec<u64>,
    rewards: Vec<u64>,
    equivocations: u64,
    // pruning
    /// Per gateway, its pruned vertices that no pruned vertex of its own builds on. They
    /// stay in `vertices` so that the creator's next vertex, the anchor frontier and the
    /// freshness check of a new vertex still find them.
    pruned_tips: Vec<Vec<VertexId>>,
    /// Per gateway, its highest pruned sequence: a vertex at or below it that arrives is
    /// pruned history (or a fork of it) and is dropped.
    pruned_seq: Vec<u64>,
    /// Vertices under final anchors, pruned once they are settled.
    prunable: Vec<VertexId>,
    /// Whether to look at `prunable` after this input.
    prune_due: bool,
    /// Locks that pruned transactions deposited.
    pruned_locks: Map<Hash32, ()>,
    /// The last [`RECENT_PRUNED`] vertices removed, oldest first, and as a set.
    pruned_recent: VecDeque<VertexId>,
    pruned_known: Map<VertexId, ()>,
    /// The last [`RECENT_PRUNED`] vertices pruned (whether or not they left memory), by
    /// creator and sequence, oldest first: a twin of one that arrives later is reported.
    pruned_order: VecDeque<(usize, u64)>,
    pruned_ids: BTreeMap<(usize, u64), VertexId>,
    pruned_vertices: u64,
    pruned_txs: u64,
    /// Vertices accepted since start, held or pruned.
    accepted: u64,
    /// Vertices not pruned yet.
    unpruned: Map<VertexId, ()>,
    /// Accounts with pruned slots to summarise.
    absorbing: BTreeSet<Address>,
    /// Pruned slots still to summarise (an upper bound), the pace at which they are (slots
    /// per millisecond of input time), and when the last were.
    absorb_backlog: usize,
    absorb_pace: usize,
    last_absorb_ms: u64,
    /// Transactions refused from the pool, oldest first: forgotten a while later.
    refused: VecDeque<(u64, Hash32)>,
}

fn bit(i: usize) -> u64 {
    1u64 << i
}

/// Names an anchor by what its endorsers sign.
fn anchor_hash(a: &Anchor) -> Hash32 {
    sha256(&[&a.signing_bytes()])
}

impl SideChain {
    /// A node of the group; `key` is the gateway key when this node is a gateway.
    pub fn new(
        cfg: Config,
        key: Option<SecretKey>,
        accel: Arc<Dispatcher>,
    ) -> Result<Self, SideError> {
        let n = cfg.group.n();
        let me = match &key {
            Some(k) => Some(cfg.group.index(&k.public()).ok_or_else(|| {
                SideError::Group("this node's key is not a gateway of the group".into())
            })?),
            None => None,
        };
        Ok(SideChain {
            key,
            me,
            accel,
            now: 0,
            vertices: map(),
            by_seq: BTreeMap::new(),
            latest: vec![None; n],
            equivocators: BTreeSet::new(),
            retired: 0,
            waiting: BTreeMap::new(),
            requested: BTreeMap::new(),
            heads_seen: BTreeMap::new(),
            txs: map(),
            occs: map(),
            slots: map(),
            lock_occs: map(),
            credits: map(),
            dependents: map(),
            locks: map(),
            accounts: map(),
            pool: VecDeque::new(),
            parked: BTreeMap::new(),
            parked_len: 0,
            funding: BTreeSet::new(),
            to_reference: BTreeSet::new(),
            to_settle: BTreeSet::new(),
            my_seq: 0,
            my_last: None,
            own_seen: 0,
            halted: None,
            last_vertex_ms: 0,
            last_heads_ms: 0,
            started_ms: None,
            confirmed_vertices: 0,
            confirmed_txs: 0,
            anchor_root: Hash32::ZERO,
            anchor_count: 0,
            final_seq: 0,
            last_final_ms: 0,
            verified: BTreeMap::new(),
            proposals: BTreeMap::new(),
            matched: BTreeSet::new(),
            sent: None,
            finals: BTreeMap::new(),
            final_mismatch: None,
            submitted: None,
            anchor_log: Vec::new(),
            scores: vec![0; n],
            rewards: vec![0; n],
            equivocations: 0,
            pruned_tips: vec![Vec::new(); n],
            pruned_seq: vec![0; n],
            prunable: Vec::new(),
            prune_due: false,
            pruned_locks: map(),
            pruned_recent: VecDeque::new(),
            pruned_known: map(),
            pruned_order: VecDeque::new(),
            pruned_ids: BTreeMap::new(),
            pruned_vertices: 0,
            pruned_txs: 0,
            accepted: 0,
            unpruned: map(),
            absorbing: BTreeSet::new(),
            absorb_backlog: 0,
            absorb_pace: ABSORB_MIN_PACE,
            last_absorb_ms: 0,
            refused: VecDeque::new(),
            cfg,
        })
    }

    /// The group.
    pub fn group(&self) -> &Group {
        &self.cfg.group
    }

    /// Handles one input at time `now_ms` (never earlier than the previous input's).
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        self.now = self.now.max(now_ms);
        let mut out = Vec::new();
        let unpaced = matches!(input, Input::SummarisePruned);
        match input {
            Input::Tick => self.on_tick(&mut out),
            Input::Message { from, msg } => {
                self.on_message(from, msg, false, &mut out);
                self.emit_if_due(&mut out);
            }
            Input::Replayed(msg) => {
                self.on_message(REPLAYED, msg, true, &mut out);
                self.emit_if_due(&mut out);
            }
            Input::Lock {
                id,
                account,
                amount,
            } => {
                self.locks.insert(id, (account, amount));
                self.unpark(&account);
                self.retry_waiting(&mut out);
            }
            Input::AnchorFinal {
                sequence,
                root,
                confirmed_vertices,
                frontier,
            } => {
                if sequence > self.final_seq {
                    self.finals.insert(
                        sequence,
                        Final {
                            root,
                            count: confirmed_vertices,
                            frontier,
                        },
                    );
                }
                self.progress_anchors(&mut out);
            }
            Input::RewardPerAnchor(r) => self.cfg.reward_per_anchor = r,
            Input::Retire(gateway) => self.retire(&gateway),
            Input::SummarisePruned => {}
        }
        // Between inputs, never in the middle of one: what an input's handling looked up
        // stays there until it is done.
        if self.prune_due {
            self.prune_due = false;
            self.prune(&mut out);
        }
        if unpaced {
            let used = self.absorb_some(usize::MAX, &mut out);
            self.absorb_backlog = self.absorb_backlog.saturating_sub(used);
        } else {
            self.absorb_paced(&mut out);
        }
        out
    }

    /// Checks the signatures of client transactions in one accelerator batch. Needs no
    /// state, so a node runs it before taking the lock on its side chain; [`submit_checked`]
    /// then admits the result.
    ///
    /// [`submit_checked`]: SideChain::submit_checked
    pub fn check_signatures(accel: &Dispatcher, txs: Vec<SignedMachineTx>) -> CheckedTxs {
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
        let ok = accel.ed25519_verify_batch(&items);
        CheckedTxs(
            txs.into_iter()
                .zip(ok)
                .zip(&signing)
                .map(|((tx, ok), m)| (tx, MachineTx::hash_of(m), ok))
                .collect(),
        )
    }

    /// Accepts machine transactions from clients into this gateway's pool, verifying their
    /// signatures in one accelerator batch. Per transaction: its hash or why it was refused.
    pub fn submit(
        &mut self,
        now_ms: u64,
        txs: Vec<SignedMachineTx>,
    ) -> Vec<Result<Hash32, SideError>> {
        let checked = Self::check_signatures(&self.accel, txs);
        self.submit_checked(now_ms, checked)
    }

    /// [`submit`](SideChain::submit) with the signatures already checked.
    pub fn submit_checked(
        &mut self,
        now_ms: u64,
        checked: CheckedTxs,
    ) -> Vec<Result<Hash32, SideError>> {
        self.now = self.now.max(now_ms);
        if self.me.is_none() {
            return checked
                .0
                .iter()
                .map(|_| Err(SideError::NotGateway))
                .collect();
        }
        let mut res = Vec::with_capacity(checked.0.len());
        for (tx, hash, ok) in checked.0 {
            res.push(if !ok {
                Err(SideError::BadSignature)
            } else if tx.tx.group_id != self.cfg.group.id {
                Err(SideError::WrongGroup)
            } else if self
                .txs
                .get(&hash)
                // A halted gateway's refused pool is no answer to a retry.
                .is_some_and(|i| self.halted.is_none() || !i.vertices.is_empty())
            {
                Ok(hash)
            } else if let Some(a) = self.accounts.get(&tx.tx.slot().sender)
                && tx.tx.nonce < a.pruned_next
            {
                Err(SideError::NonceFinal {
                    nonce: tx.tx.nonce,
                    tx: hash,
                })
            } else if let Some(why) = &self.halted {
                Err(SideError::Halted(why.clone()))
            } else if self.pool.len() + self.parked_len >= self.cfg.max_pool {
                Err(SideError::PoolFull)
            } else {
                let slot = tx.tx.slot();
                self.txs.insert(
                    hash,
                    TxInfo {
                        tx: Box::new(tx),
                        status: TxStatus::Pending,
                        first_seen_ms: self.now,
                        latency_ms: None,
                        vertices: Vec::new(),
                    },
                );
                self.pool.push_back(TxKey { hash, slot });
                *self
                    .accounts
                    .entry(slot.sender)
                    .or_default()
                    .pooled
                    .entry(slot.nonce)
                    .or_insert(0) += 1;
                Ok(hash)
            });
        }
        res
    }

    /// A transaction this node knows.
    pub fn tx(&self, hash: &Hash32) -> Option<&TxInfo> {
        self.txs.get(hash)
    }

    /// A vertex this node knows.
    pub fn vertex(&self, id: &VertexId) -> Option<&VertexInfo> {
        self.vertices.get(id)
    }

    /// Whether a received vertex is news to this node: not held, awaited, recently pruned
    /// or below its creator's pruned history, unless it is the first twin of a recently
    /// pruned vertex to arrive. Only news is judged (and worth logging).
    pub fn is_new(&self, v: &SignedVertex) -> bool {
        !self.known(&v.id) && (!self.below_pruned(v) || self.pruned_twin_of(v).is_some())
    }

    /// Whether an anchor message is as gateways send them: its endorsements by gateways
    /// of the group, sorted by key, one each (so at most n). Any other is a peer's
    /// making, and nothing of it is taken.
    pub fn anchor_well_formed(&self, a: &SignedAnchor) -> bool {
        a.endorsements
            .windows(2)
            .all(|w| w[0].gateway < w[1].gateway)
            && a.endorsements
                .iter()
                .all(|e| self.cfg.group.index(&e.gateway).is_some())
    }

    /// The endorsements of a received anchor this node would keep: those by gateways not
    /// retired (the main chain counts no other, and a proposal with only a retired key's
    /// endorsement would make the vertices its frontier names needed here), that it does
    /// not hold for this anchor already, and that verify. None for an anchor that is not
    /// well formed ([`SideChain::anchor_well_formed`]), of another group, or outside the
    /// sequences the node takes. An anchor message with none is no news (not worth
    /// logging or relaying); signatures are checked last, so a repeated one costs no
    /// more than a lookup per endorsement.
    pub fn fresh_endorsements(&self, a: &SignedAnchor) -> Vec<Endorsement> {
        let seq = a.anchor.sequence;
        if a.anchor.group_id != self.cfg.group.id
            || seq <= self.final_seq
            || seq > self.final_seq + 16
            || !self.anchor_well_formed(a)
        {
            return Vec::new();
        }
        let held = self
            .proposals
            .get(&seq)
            .and_then(|list| list.iter().find(|p| p.anchor == a.anchor))
            .map_or(&[][..], |p| &p.endorsements[..]);
        let msg = a.anchor.signing_bytes();
        a.endorsements
            .iter()
            .filter(|e| {
                self.cfg
                    .group
                    .index(&e.gateway)
                    .is_some_and(|c| self.retired & bit(c) == 0)
                    && held
                        .binary_search_by_key(&e.gateway, |x| x.gateway)
                        .is_err()
                    && e.gateway.verify(&msg, &e.signature)
            })
            .cloned()
            .collect()
    }

    /// The recently pruned vertex that `v` is a twin of, if its creator is not known to
    /// equivocate yet (after that, further twins prove nothing new).
    fn pruned_twin_of(&self, v: &SignedVertex) -> Option<VertexId> {
        let c = self.cfg.group.index(&v.vertex.creator)?;
        if self.equivocators.contains(&c) {
            return None;
        }
        self.pruned_ids
            .get(&(c, v.vertex.sequence))
            .copied()
            .filter(|id| *id != v.id)
    }

    /// Gateways needed to confirm.
    pub fn quorum(&self) -> usize {
        self.cfg.group.quorum()
    }

    /// Anchors this node verified against its own history and saw final, in order:
    /// (sequence, root, vertices covered).
    pub fn anchor_log(&self) -> &[(u64, Hash32, u64)] {
        &self.anchor_log
    }

    /// Vertices this node accepted since it started, whether it still holds them or
    /// pruned them (cheap, unlike [`SideChain::status`]).
    pub fn vertex_count(&self) -> u64 {
        self.accepted
    }

    /// Vertices that final anchors cover and that wait for every gateway to see them
    /// before they leave memory ([`Status::awaiting_settling`]).
    pub fn awaiting_settling(&self) -> u64 {
        self.prunable.len() as u64
    }

    fn own_key(&self) -> Option<&PublicKey> {
        self.me.map(|i| &self.cfg.group.gateways[i])
    }

    /// This node's gateway key, if it is one.
    pub fn gateway_key(&self) -> Option<PublicKey> {
        self.key.as_ref().map(SecretKey::public)
    }

    /// Equivocations seen.
    pub fn equivocations(&self) -> u64 {
        self.equivocations
    }

    /// The side balance of `account` over confirmed transactions.
    pub fn confirmed_balance(&self, account: &Address) -> i128 {
        self.accounts.get(account).map_or(0, |a| a.balance)
    }

    /// The nonce a new transaction of `account` should carry: one past the highest nonce
    /// of its transactions this node knows and has not rejected (those in vertices and
    /// those waiting in this gateway's pool).
    pub fn next_nonce(&self, account: &Address) -> u64 {
        self.accounts.get(account).map_or(0, Account::next_nonce)
    }

    /// The status for the API.
    pub fn status(&self) -> Status {
        let frontier = self.frontier_per_gateway();
        let last_anchor = self
            .verified
            .iter()
            .next_back()
            .map(|(seq, (root, count, _))| AnchorStatus {
                sequence: *seq,
                root: *root,
                confirmed_vertices: *count,
                is_final: *seq <= self.final_seq,
            });
        Status {
            group_id: self.cfg.group.id,
            gateway: self.key.as_ref().map(SecretKey::public),
            gateways: self.cfg.group.gateways.clone(),
            quorum: self.quorum(),
            tips: self.latest.iter().map(|l| l.map(|(_, id)| id)).collect(),
            confirmed_frontier: frontier,
            vertices: self.vertices.len() as u64,
            pruned_vertices: self.pruned_vertices,
            pruned_txs: self.pruned_txs,
            confirmed_vertices: self.confirmed_vertices,
            confirmed_txs: self.confirmed_txs,
            pool: self.pool.len() + self.parked_len,
            last_anchor,
            scores: self.scores.clone(),
            rewards: self.rewards.clone(),
            equivocators: self
                .equivocators
                .iter()
                .map(|i| self.cfg.group.gateways[*i])
                .collect(),
            own_sequence: self.me.map(|_| self.my_seq),
            resuming_to: (self.me.is_some() && self.my_seq < self.own_seen)
                .then_some(self.own_seen),
            last_vertex_ms: self
                .latest
                .iter()
                .map(|l| {
                    let (_, id) = (*l)?;
                    Some(self.vertices.get(&id)?.vertex.vertex.timestamp_ms)
                })
                .collect(),
            awaiting_settling: self.awaiting_settling(),
            halted: self.halted.clone(),
            retired: self.retired(),
        }
    }

    /// The keys of the gateways in `mask`.
    fn gateways_in(&self, mask: u64) -> Vec<PublicKey> {
        let keys = &self.cfg.group.gateways;
        (0..keys.len())
            .filter(|c| mask & bit(*c) != 0)
            .map(|c| keys[c])
            .collect()
    }

    /// Retires `gateway`, which the group's owner declared gone for good on the main
    /// chain ([`Input::Retire`]; a key not in the group, or one more than f, is ignored).
    /// Pruning stops waiting for it: settling needs, for each other gateway, a vertex of
    /// it that every other gateway has seen (for vertices held already too). Gateways
    /// reference its vertices no more, and a retired gateway stops signing, proposing
    /// and endorsing (see [`SideChain::halt`]).
    /// Confirmation does not change: the quorum stays `n − f` of all `n` gateways, which
    /// is why the main chain retires at most `f`. See "Retired gateways" in the crate docs
    /// for why a retired gateway must really be gone.
    pub fn retire(&mut self, gateway: &PublicKey) {
        let Some(c) = self.cfg.group.index(gateway) else {
            return;
        };
        // At most f, as the main chain allows: a running group keeps its gateways when the
        // main chain's change, so a retirement there may be one too many here.
        if self.is_retired(c) || self.retired.count_ones() as usize >= self.cfg.group.f() {
            return;
        }
        self.retired |= bit(c);
        if self.me == Some(c) {
            self.halt(RETIRED.into());
        }
        let (all, waived) = (self.all_gateways(), self.waived());
        let mut settled: Vec<(VertexId, usize)> = self
            .unpruned
            .keys()
            .filter_map(|id| {
                let v = self.vertices.get(id)?;
                (v.settled_by & bit(v.creator) == 0 && v.seen_by | waived == all)
                    .then_some((*id, v.creator))
            })
            .collect();
        // Marking is a union of bits, so order does not matter; sorted all the same.
        settled.sort();
        for (id, c) in settled {
            self.mark_settled(id, c);
        }
        // An idle group signed its round for settling while it still waited for the
        // retired gateway; one more round settles what that one left.
        if let Some(me) = self.me.filter(|me| *me != c) {
            let ignored = self.unreferenced() | bit(me);
            for (g, l) in self.latest.iter().enumerate() {
                if let Some((_, id)) = l
                    && ignored & bit(g) == 0
                {
                    self.to_settle.insert(*id);
                }
            }
        }
        self.prune_due = true;
    }

    /// Stops this gateway signing vertices for the rest of the run, for `reason`: its log
    /// cannot keep its vertices, so none of them may leave the node (it could sign a
    /// sequence number twice after a power loss), and a transaction it took would stay in
    /// a vertex no peer ever sees. It signs no more vertices, refuses new transactions
    /// and those waiting in its pool with [`SideError::Halted`] (clients go to another
    /// gateway), and leaves its own vertices out of the heads it announces. It goes on
    /// following the group, and proposing and endorsing anchors, which no log holds up
    /// (a retired gateway, halted by [`SideChain::retire`], does neither). Like a gateway
    /// that is down, it pauses pruning on every node. A restarted node signs again
    /// (unless it was retired). Only the first reason counts.
    pub fn halt(&mut self, reason: String) {
        if self.me.is_some() && self.halted.is_none() {
            self.halted = Some(reason);
            self.expire_pool();
        }
    }

    /// The gateways whose bit settling no longer waits for: the retired ones, known
    /// equivocators among them (whose vertices, abandoned twins too, are then pruned once
    /// settled: see `prune`).
    fn waived(&self) -> u64 {
        self.retired
    }

    /// The gateways this node knows to equivocate (a mask).
    fn equivocator_bits(&self) -> u64 {
        self.equivocators.iter().fold(0, |m, c| m | bit(*c))
    }

    /// The gateways whose vertices gateways reference no more: known equivocators and
    /// retired gateways (a mask).
    fn unreferenced(&self) -> u64 {
        self.equivocator_bits() | self.retired
    }

    /// Whether gateway `c` is retired.
    fn is_retired(&self, c: usize) -> bool {
        self.retired & bit(c) != 0
    }

    /// Whether this node is a retired gateway.
    fn retired_me(&self) -> bool {
        self.me.is_some_and(|me| self.is_retired(me))
    }

    /// The gateways this node knows to be retired, in group order.
    pub fn retired(&self) -> Vec<PublicKey> {
        self.gateways_in(self.retired)
    }

    /// Why this gateway stopped signing, if it did ([`SideChain::halt`], or it was
    /// retired).
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    // ---- time ----

    fn on_tick(&mut self, out: &mut Vec<Action>) {
        if self.now >= self.last_heads_ms + self.cfg.heads_interval_ms {
            self.last_heads_ms = self.now;
            // A halted gateway's own latest vertex may never have left: peers would ask
            // for it at every interval. Nor is a retired gateway's worth asking for: a
            // node that needs one asks for it as a parent.
            let heads: Vec<VertexId> = self
                .latest
                .iter()
                .enumerate()
                .filter(|(c, _)| self.halted.is_none() || Some(*c) != self.me)
                .filter(|(c, _)| !self.is_retired(*c))
                .filter_map(|(_, l)| l.map(|(_, id)| id))
                .collect();
            if !heads.is_empty() {
                out.push(Action::Send {
                    to: None,
                    msg: Message::Heads(heads),
                });
            }
            // Requests that went unanswered are asked again; those answered by another
            // way (an anchor's frontier asks for vertices that may already wait) are done.
            // Those no answer came to in `max_pending_ms` are given up, unless a waiting
            // vertex or the next final anchor still needs them: the ids may be made up
            // (heads are anyone's word). What is needed is asked first, then the rest, in
            // turn past what one request holds.
            let wanted = if self.requested.is_empty() {
                BTreeSet::new()
            } else {
                self.wanted()
            };
            let mut requested = std::mem::take(&mut self.requested);
            let given_up = self.now.saturating_sub(self.cfg.max_pending_ms);
            requested
                .retain(|id, first| (*first > given_up || wanted.contains(id)) && !self.known(id));
            self.requested = requested;
            // Past what one request holds, each interval asks the next ones in turn.
            let round = usize::try_from(self.now / self.cfg.heads_interval_ms.max(1))
                .unwrap_or(0)
                .wrapping_mul(MAX_ASK_AGAIN);
            let (mut first, mut rest): (Vec<VertexId>, Vec<VertexId>) = self
                .requested
                .iter()
                .filter(|(_, t)| self.now >= t.saturating_add(self.cfg.heads_interval_ms))
                .map(|(id, _)| *id)
                .partition(|id| wanted.contains(id));
            for ids in [&mut first, &mut rest] {
                if !ids.is_empty() {
                    let len = ids.len();
                    ids.rotate_left(round % len);
                }
            }
            let stale: Vec<VertexId> = first.into_iter().chain(rest).take(MAX_ASK_AGAIN).collect();
            // Peers whose heads were taken longer ago than that are forgotten: anyone can
            // make up peers.
            let half = self.cfg.heads_interval_ms / 2;
            let now = self.now;
            self.heads_seen.retain(|_, t| now < t.saturating_add(half));
            if !stale.is_empty() {
                // To every peer: each answers with the asked vertices alone, or a lagging
                // node would get the same ancestors from all of them.
                out.push(Action::Send {
                    to: None,
                    msg: Message::Request {
                        ids: stale,
                        have: vec![u64::MAX; self.cfg.group.n()],
                    },
                });
            }
            for sender in std::mem::take(&mut self.funding) {
                self.unpark(&sender);
            }
            // `maybe_emit` drops those this gateway's chain reaches by now.
            self.to_reference.append(&mut self.to_settle);
            self.expire_pool();
            self.expire_waiting();
            self.forget_refused(out);
            self.progress_anchors(out);
            // Vertices under final anchors wait to be settled by every gateway.
            self.prune_due = true;
        }
        self.started_ms.get_or_insert(self.now);
        self.emit_if_due(out);
        self.maybe_anchor(out);
    }

    /// Emits a vertex if this gateway may now: on ticks, and right after a message (a
    /// vertex it can acknowledge need not wait for the next tick).
    fn emit_if_due(&mut self, out: &mut Vec<Action>) {
        let Some(started) = self.started_ms else {
            return;
        };
        if self.me.is_none()
            || self.halted.is_some()
            || self.now < self.last_vertex_ms + self.cfg.vertex_interval_ms
            // A gateway first listens for a while: after a restart its own last vertices
            // come back from peers, and it must not sign a sequence number twice.
            || self.now < started + 2 * self.cfg.heads_interval_ms
        {
            return;
        }
        // Nor while one of its own vertices was seen (it may wait for parents) and is not
        // in its chain yet: its chain is coming back.
        if self.my_seq < self.own_seen {
            return;
        }
        self.maybe_emit(out);
    }

    /// Refuses what waited in the pool longer than a transaction may wait, or all of it
    /// once this gateway halted.
    fn expire_pool(&mut self) {
        let now = self.now;
        let max = self.cfg.max_pending_ms;
        let (due_all, reason) = match &self.halted {
            Some(why) => (true, SideError::Halted(why.clone()).to_string()),
            None => (
                false,
                "not includable in time (nonce gap, lock not final, funds unconfirmed)".into(),
            ),
        };
        let txs = &mut self.txs;
        let accounts = &mut self.accounts;
        let refused = &mut self.refused;
        let mut keep = |k: &TxKey| {
            let Some(info) = txs.get_mut(&k.hash) else {
                // Pruned: included by another gateway and final.
                if let Some(a) = accounts.get_mut(&k.slot.sender) {
                    a.unpool(k.slot.nonce);
                }
                return false;
            };
            if !due_all && now < info.first_seen_ms + max {
                return true;
            }
            // A copy another gateway included is not rejected: it leaves the pool (it
            // may have confirmed while this gateway could not emit).
            if info.vertices.is_empty() {
                info.status = TxStatus::Rejected {
                    reason: reason.clone(),
                };
                refused.push_back((now, k.hash));
            }
            if let Some(a) = accounts.get_mut(&k.slot.sender) {
                a.unpool(k.slot.nonce);
            }
            false
        };
        self.pool.retain(&mut keep);
        self.parked.retain(|_, keys| {
            keys.retain(&mut keep);
            !keys.is_empty()
        });
        self.parked_len = self.parked.values().map(Vec::len).sum();
    }

    /// Puts the transactions of `sender` that waited for news of that account back in
    /// the pool.
    fn unpark(&mut self, sender: &Address) {
        if let Some(keys) = self.parked.remove(sender) {
            self.parked_len -= keys.len();
            self.pool.extend(keys);
        }
    }

    /// Hands out transactions refused from the pool a while ago (clients had the time to
    /// read why) that no vertex included since, when pruning.
    fn forget_refused(&mut self, out: &mut Vec<Action>) {
        let mut gone = Vec::new();
        while let Some(&(at, h)) = self.refused.front() {
            if self.now < at + self.cfg.max_pending_ms {
                break;
            }
            self.refused.pop_front();
            if !self.cfg.prune_history {
                continue;
            }
            if self.txs.get(&h).is_some_and(|i| {
                i.vertices.is_empty() && matches!(i.status, TxStatus::Rejected { .. })
            }) && let Some(info) = self.txs.remove(&h)
            {
                gone.push((h, info));
            }
        }
        if !gone.is_empty() {
            out.push(Action::Pruned {
                vertices: Vec::new(),
                txs: gone,
            });
        }
    }

    /// Drops vertices that waited for their parents longer than a transaction may wait:
    /// the parents may be pruned history no peer serves. A peer's heads bring back any
    /// that were only slow.
    fn expire_waiting(&mut self) {
        let limit = self.cfg.max_pending_ms;
        let now = self.now;
        self.waiting.retain(|_, (_, _, since)| now < *since + limit);
    }

    // ---- vertices out ----

    fn maybe_emit(&mut self, out: &mut Vec<Action>) {
        // Observers (no gateway key) never emit.
        let Some(me) = self.me else {
            return;
        };
        // Equivocators' and retired gateways' vertices are not referenced any more, so
        // they cannot oblige.
        let (vertices, ignored) = (&self.vertices, self.unreferenced());
        self.to_reference.retain(|id| {
            vertices
                .get(id)
                .is_some_and(|v| v.seen_by & bit(me) == 0 && ignored & bit(v.creator) == 0)
        });
        let must_ack = !self.to_reference.is_empty();
        if self.pool.is_empty() && !must_ack {
            return;
        }
        let n = self.cfg.group.n();
        let mut parents: Vec<VertexId> = self.my_last.into_iter().collect();
        // Rotate the start so that with more than 8 others every gateway gets referenced.
        for k in 0..n {
            let c = (me + 1 + k + self.my_seq as usize) % n;
            if c == me || ignored & bit(c) != 0 || parents.len() > MAX_TIPS {
                continue;
            }
            if let Some((_, id)) = self.latest[c]
                && self.vertices[&id].seen_by & bit(me) == 0
            {
                parents.push(id);
            }
        }
        if parents.len() > MAX_TIPS + usize::from(self.my_last.is_some()) {
            parents.truncate(MAX_TIPS + usize::from(self.my_last.is_some()));
        }
        let mut clock = vec![0u64; n];
        for p in &parents {
            for (c, s) in clock.iter_mut().zip(&self.vertices[p].clock) {
                *c = (*c).max(*s);
            }
        }
        let mut batch = Batch::default();
        let mut txs = Vec::new();
        let mut keys = Vec::new();
        let mut occs = Vec::new();
        let mut keep = VecDeque::new();
        let view = View {
            clock,
            parents: &parents,
        };
        // Transactions that leave the pool: included here or by another gateway, or invalid.
        let mut left = Vec::new();
        // Up to a full batch: what waits behind it is not looked at.
        while txs.len() < self.cfg.max_batch
            && let Some(key) = self.pool.pop_front()
        {
            left.push(key.slot);
            // Pruned: included by another gateway and final.
            let Some(info) = self.txs.get(&key.hash) else {
                continue;
            };
            // Included by another gateway since it entered the pool.
            if !info.vertices.is_empty() {
                continue;
            }
            let tx = SignedMachineTx::clone(&info.tx);
            match self.check_tx(&view, &mut batch, &tx, key.slot, true) {
                Ok(occ) => {
                    txs.push(tx);
                    keys.push(key);
                    occs.push(occ);
                }
                Err(r @ (Refusal::Wait { unseen: true, .. } | Refusal::Unfunded)) => {
                    left.pop();
                    if matches!(r, Refusal::Unfunded) {
                        self.funding.insert(key.slot.sender);
                    }
                    self.parked.entry(key.slot.sender).or_default().push(key);
                    self.parked_len += 1;
                }
                Err(Refusal::Wait { unseen: false, .. }) => {
                    left.pop();
                    keep.push_back(key);
                }
                Err(Refusal::Invalid(reason)) => {
                    if let Some(info) = self.txs.get_mut(&key.hash) {
                        info.status = TxStatus::Rejected { reason };
                        self.refused.push_back((self.now, key.hash));
                    }
                }
            }
        }
        // Those that wait stay ahead of the ones not looked at, in their order.
        while let Some(key) = keep.pop_back() {
            self.pool.push_front(key);
        }
        for slot in left {
            if let Some(a) = self.accounts.get_mut(&slot.sender) {
                a.unpool(slot.nonce);
            }
        }
        if txs.is_empty() && !must_ack {
            return;
        }
        let Some(key) = self.key.as_ref() else {
            return;
        };
        let v = Vertex {
            group_id: self.cfg.group.id,
            creator: key.public(),
            sequence: self.my_seq + 1,
            timestamp_ms: self.now,
            parents,
            txs,
        }
        .sign(key);
        self.last_vertex_ms = self.now;
        self.my_seq += 1;
        self.my_last = Some(v.id);
        out.push(Action::Send {
            to: None,
            msg: Message::Vertex(v.clone()),
        });
        self.insert(v, keys, occs, out);
    }

    // ---- messages in ----

    /// Handles a peer's message, or (`logged`) one replayed from this node's log.
    fn on_message(&mut self, from: u64, msg: Message, logged: bool, out: &mut Vec<Action>) {
        match msg {
            Message::Vertex(v) => self.receive(from, vec![v], logged, out),
            Message::Vertices(vs) => self.receive(from, vs, logged, out),
            Message::Heads(ids) => {
                // A peer announces its heads once an interval, one per gateway: what it
                // sends faster or longer is not taken, so that no one peer fills the room.
                let half = self.cfg.heads_interval_ms / 2;
                if self
                    .heads_seen
                    .get(&from)
                    .is_some_and(|t| self.now < t.saturating_add(half))
                {
                    return;
                }
                self.heads_seen.insert(from, self.now);
                let room = MAX_HEADS_ASKED.saturating_sub(self.requested.len());
                let missing: Vec<VertexId> = ids
                    .into_iter()
                    .filter(|id| !self.known(id))
                    .take(self.cfg.group.n().min(room))
                    .collect();
                self.request(from, missing, out);
            }
            Message::Request { ids, have } => {
                let found = self.answer(&ids, &have);
                if !found.is_empty() {
                    out.push(Action::Send {
                        to: Some(from),
                        msg: Message::Vertices(found),
                    });
                }
            }
            Message::Anchor(mut a) => {
                a.endorsements = self.fresh_endorsements(&a);
                if !a.endorsements.is_empty() {
                    self.propose(a);
                    self.progress_anchors(out);
                }
            }
        }
    }

    /// What a peer asking for `ids` gets: those held, and their ancestors above `have`
    /// (its highest sequence per gateway; `u64::MAX` asks for `ids` alone), breadth first,
    /// [`MAX_ANSWER`] at most, parents first. A node that fell behind so catches up in a
    /// round trip per [`MAX_ANSWER`] vertices, not one per layer of the DAG.
    fn answer(&self, ids: &[VertexId], have: &[u64]) -> Vec<SignedVertex> {
        let asked: BTreeSet<VertexId> = ids.iter().take(MAX_ANSWER).copied().collect();
        let mut queue: VecDeque<VertexId> = asked.iter().copied().collect();
        let mut seen = BTreeSet::new();
        let mut found: Vec<&VertexInfo> = Vec::new();
        while found.len() < MAX_ANSWER
            && let Some(id) = queue.pop_front()
        {
            if !seen.insert(id) {
                continue;
            }
            let Some(v) = self.vertices.get(&id) else {
                continue;
            };
            // An equivocator's sequence says nothing of which fork the asker holds.
            let held = !self.equivocators.contains(&v.creator)
                && have
                    .get(v.creator)
                    .is_some_and(|s| v.vertex.vertex.sequence <= *s);
            if held && !asked.contains(&id) {
                continue;
            }
            found.push(v);
            queue.extend(v.vertex.vertex.parents.iter().copied());
        }
        // A child's clock sum exceeds its parents' (but around an equivocator's forks,
        // where the receiver's waiting room puts them in order anyway).
        found.sort_by_key(|v| (v.clock.iter().sum::<u64>(), v.vertex.id));
        found.into_iter().map(|v| v.vertex.clone()).collect()
    }

    /// Vertices something here still needs: the parents waiting vertices lack, and the
    /// next final anchor's frontier.
    fn wanted(&self) -> BTreeSet<VertexId> {
        let mut wanted: BTreeSet<VertexId> = self
            .waiting
            .values()
            .flat_map(|(v, _, _)| v.vertex.parents.iter().copied())
            .filter(|p| !self.known(p))
            .collect();
        if let Some(f) = self.finals.get(&(self.final_seq + 1)) {
            wanted.extend(f.frontier.iter().filter(|id| !self.known(id)));
        }
        wanted
    }

    /// This node's highest sequence held per gateway, as a request tells it.
    fn have(&self) -> Vec<u64> {
        self.latest
            .iter()
            .map(|l| l.map_or(0, |(s, _)| s))
            .collect()
    }

    fn request(&mut self, from: u64, ids: Vec<VertexId>, out: &mut Vec<Action>) {
        let ids: Vec<VertexId> = ids
            .into_iter()
            .filter(|id| !self.requested.contains_key(id))
            .collect();
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.requested.insert(*id, self.now);
        }
        out.push(Action::Send {
            to: Some(from),
            msg: Message::Request {
                ids,
                have: self.have(),
            },
        });
    }

    fn receive(&mut self, from: u64, vs: Vec<SignedVertex>, logged: bool, out: &mut Vec<Action>) {
        // Whatever arrives answers a request for it.
        let asked: BTreeSet<VertexId> = vs
            .iter()
            .filter(|v| self.requested.remove(&v.id).is_some())
            .map(|v| v.id)
            .collect();
        let vs: Vec<SignedVertex> = vs.into_iter().filter(|v| self.is_new(v)).collect();
        // Before any signature is checked: a flood of a retired key costs a lookup each.
        let needed = self.needed(&vs, &asked, logged, |_| true);
        let vs = self.drop_unneeded(vs, &needed, out);
        if vs.is_empty() {
            return;
        }
        // The structure next, before any signature: a vertex of an outsider, or of another
        // group, with thousands of transactions costs no signature check.
        let mut formed = Vec::with_capacity(vs.len());
        let mut tx_signing: Vec<Vec<Vec<u8>>> = Vec::with_capacity(vs.len());
        let mut tx_keys: Vec<Vec<TxKey>> = Vec::with_capacity(vs.len());
        for v in vs {
            let tms: Vec<Vec<u8>> = v.vertex.txs.iter().map(|t| t.tx.signing_bytes()).collect();
            let keys: Vec<TxKey> = v
                .vertex
                .txs
                .iter()
                .zip(&tms)
                .map(|(t, m)| TxKey::new(t, m))
                .collect();
            if let Err(reason) = self.structure(&v, &keys) {
                out.push(Action::Rejected {
                    vertex: v.id,
                    reason,
                    malformed: true,
                });
                continue;
            }
            formed.push(v);
            tx_signing.push(tms);
            tx_keys.push(keys);
        }
        let vs = formed;
        if vs.is_empty() {
            return;
        }
        // One accelerator batch for every signature of every vertex received together.
        let signing: Vec<Vec<u8>> = vs.iter().map(|v| v.vertex.signing_bytes()).collect();
        let mut items = Vec::new();
        for ((v, m), tms) in vs.iter().zip(&signing).zip(&tx_signing) {
            items.push(SigItem {
                public_key: v.vertex.creator.0,
                signature: v.signature.0,
                message: m,
            });
            for (t, tm) in v.vertex.txs.iter().zip(tms) {
                items.push(SigItem {
                    public_key: t.tx.sender.0,
                    signature: t.signature.0,
                    message: tm,
                });
            }
        }
        let verdicts = self.accel.ed25519_verify_batch(&items);
        let mut at = 0;
        let signed: Vec<bool> = vs
            .iter()
            .map(|v| {
                let k = 1 + v.vertex.txs.len();
                at += k;
                verdicts[at - k..at].iter().all(|b| *b)
            })
            .collect();
        // A forged vertex needs nothing.
        let needed = self.needed(&vs, &asked, logged, |i| signed[i]);
        let mut missing = Vec::new();
        for (((v, keys), ok), needed) in vs.into_iter().zip(tx_keys).zip(signed).zip(needed) {
            if !needed {
                out.push(Action::Unneeded { vertex: v.id });
                continue;
            }
            if !ok {
                out.push(Action::Rejected {
                    vertex: v.id,
                    reason: "a signature is invalid".into(),
                    malformed: true,
                });
                continue;
            }
            // Only a twin of a pruned vertex gets here (see `is_new`).
            if self.below_pruned(&v) {
                self.refuse(
                    &v,
                    "a fork of its creator's pruned (final) history".into(),
                    out,
                );
                continue;
            }
            // A parent pruned from memory: the vertex builds on final history without
            // reaching all of it (a fork of an equivocator's) or names what its creator's
            // previous vertex already holds; either way it cannot be checked any more.
            if v.vertex.parents.iter().any(|p| self.pruned_away(p)) {
                self.refuse(&v, OUTSIDE_PRUNED.into(), out);
                continue;
            }
            for p in &v.vertex.parents {
                if !self.known(p) {
                    missing.push(*p);
                }
            }
            if Some(&v.vertex.creator) == self.own_key() {
                self.own_seen = self.own_seen.max(v.vertex.sequence);
            }
            if self.waiting.len() < 100_000 {
                self.waiting.insert(v.id, (v, keys, self.now));
            }
        }
        self.retry_waiting(out);
        missing.retain(|id| !self.known(id));
        missing.sort();
        missing.dedup();
        self.request(from, missing, out);
    }

    /// Which of `vs`, new vertices received together, this node takes: every one but a
    /// retired gateway's, which only when something here needs it (see
    /// [`Action::Unneeded`]): it was `asked` for, as a parent a waiting vertex lacks or a
    /// vertex the next anchor's frontier names, and is so still; or a vertex of `vs` this
    /// node takes names it, if `names(i)` lets vertex `i` count. All of them when they
    /// come from the log (`logged`).
    fn needed(
        &self,
        vs: &[SignedVertex],
        asked: &BTreeSet<VertexId>,
        logged: bool,
        names: impl Fn(usize) -> bool,
    ) -> Vec<bool> {
        let retired = |v: &SignedVertex| {
            !logged
                && self
                    .cfg
                    .group
                    .index(&v.vertex.creator)
                    .is_some_and(|c| self.is_retired(c))
        };
        let mut take: Vec<bool> = vs.iter().map(|v| !retired(v)).collect();
        if take.iter().all(|t| *t) {
            return take;
        }
        // Only what this node asked for is looked up further: the rest costs nothing more.
        let next = self.final_seq + 1;
        let still_wanted = |id: &VertexId| {
            self.waiting
                .values()
                .any(|(w, _, _)| w.vertex.parents.contains(id))
                || self
                    .finals
                    .get(&next)
                    .is_some_and(|f| f.frontier.contains(id))
                || self
                    .proposals
                    .get(&next)
                    .is_some_and(|l| l.iter().any(|p| p.anchor.frontier.contains(id)))
        };
        for (i, v) in vs.iter().enumerate() {
            if !take[i] && asked.contains(&v.id) && still_wanted(&v.id) {
                take[i] = true;
            }
        }
        let mut wanted = BTreeSet::new();
        for (i, v) in vs.iter().enumerate() {
            if take[i] && names(i) {
                wanted.extend(v.vertex.parents.iter().copied());
            }
        }
        // Children may come before their parents: to a fixed point.
        loop {
            let mut more = false;
            for (i, v) in vs.iter().enumerate() {
                if !take[i] && wanted.contains(&v.id) {
                    take[i] = true;
                    more = true;
                    if names(i) {
                        wanted.extend(v.vertex.parents.iter().copied());
                    }
                }
            }
            if !more {
                return take;
            }
        }
    }

    /// `vs` without those `needed` leaves out, each reported [`Action::Unneeded`].
    fn drop_unneeded(
        &self,
        vs: Vec<SignedVertex>,
        needed: &[bool],
        out: &mut Vec<Action>,
    ) -> Vec<SignedVertex> {
        vs.into_iter()
            .zip(needed)
            .filter_map(|(v, needed)| {
                if !needed {
                    out.push(Action::Unneeded { vertex: v.id });
                }
                needed.then_some(v)
            })
            .collect()
    }

    /// Whether this node holds, awaits or recently pruned vertex `id` (the recent ones
    /// answer peers lagging a little, whose heads may still name them).
    pub fn known(&self, id: &VertexId) -> bool {
        self.vertices.contains_key(id)
            || self.waiting.contains_key(id)
            || self.pruned_known.contains_key(id)
    }

    /// Whether `id` is pruned and no pruned tip: a pruning node removed it from memory
    /// (and recalls it among the recently pruned), one that keeps its history holds it.
    /// A vertex naming it is refused at once either way, not after its other parents
    /// arrived, so that both act alike.
    fn pruned_away(&self, id: &VertexId) -> bool {
        self.pruned_known.contains_key(id)
            || self
                .vertices
                .get(id)
                .is_some_and(|v| v.pruned && !self.pruned_tips[v.creator].contains(id))
    }

    /// The `seen_by` of a vertex every gateway has seen.
    fn all_gateways(&self) -> u64 {
        match self.cfg.group.n() {
            64 => u64::MAX,
            n => bit(n) - 1,
        }
    }

    /// Whether a vertex is at or below its creator's pruned sequence: pruned history a
    /// peer sent again, or a fork of it, which nothing here could check any more.
    fn below_pruned(&self, v: &SignedVertex) -> bool {
        self.cfg
            .group
            .index(&v.vertex.creator)
            .is_some_and(|c| v.vertex.sequence <= self.pruned_seq[c])
    }

    /// Rules a vertex must meet on its own, before its parents are known.
    /// A vertex failing these (or its signatures) gets its sender struck: a change of the
    /// rules, or of the wire format, must come with a new protocol name
    /// (`/cpchain/side/N`), or nodes of two versions would ban each other.
    fn structure(&self, v: &SignedVertex, keys: &[TxKey]) -> Result<(), String> {
        let x = &v.vertex;
        if x.group_id != self.cfg.group.id {
            return Err("another group's vertex".into());
        }
        if self.cfg.group.index(&x.creator).is_none() {
            return Err("the creator is not a gateway of the group".into());
        }
        if x.sequence == 0 {
            return Err("sequence 0".into());
        }
        let own = usize::from(x.sequence > 1);
        if x.parents.len() < own || x.parents.len() > own + MAX_TIPS {
            return Err(format!("{} parents", x.parents.len()));
        }
        if x.txs.len() > self.cfg.max_batch.max(10_000) {
            return Err("too many transactions".into());
        }
        let mut hashes = BTreeSet::new();
        for (t, k) in x.txs.iter().zip(keys) {
            if t.tx.group_id != self.cfg.group.id {
                return Err("a transaction of another group".into());
            }
            if !hashes.insert(k.hash) {
                return Err("a transaction twice".into());
            }
        }
        Ok(())
    }

    fn retry_waiting(&mut self, out: &mut Vec<Action>) {
        // Refused here, for a twin taken later in this call: vertices are tried in id
        // order, so of two twins in one message the refused one may come first, when
        // there is nothing held to compare it with yet.
        let mut refused: Vec<SignedVertex> = Vec::new();
        loop {
            // Ready: every parent held. Doomed: a parent pruned while the vertex waited
            // (see `receive`).
            let mut ready = Vec::new();
            let mut doomed = Vec::new();
            for (id, (v, _, _)) in &self.waiting {
                let parents = &v.vertex.parents;
                if parents.iter().any(|p| self.pruned_away(p)) {
                    doomed.push(*id);
                } else if parents.iter().all(|p| self.vertices.contains_key(p)) {
                    ready.push(*id);
                }
            }
            let mut progressed = false;
            for id in doomed {
                let (v, _, _) = self.waiting.remove(&id).expect("waiting");
                self.refuse(&v, OUTSIDE_PRUNED.into(), out);
                refused.push(v);
            }
            for id in ready {
                let (v, keys, since) = self.waiting.remove(&id).expect("waiting");
                match self.validate(&v, &keys) {
                    Ok(occs) => {
                        let (creator, sequence) = (v.vertex.creator, v.vertex.sequence);
                        self.insert(v, keys, occs, out);
                        progressed = true;
                        for r in &refused {
                            if r.vertex.creator == creator
                                && r.vertex.sequence == sequence
                                && let Some(c) = self.cfg.group.index(&creator)
                            {
                                self.note_twin(r, c, false, out);
                            }
                        }
                    }
                    Err(Refusal::Wait { .. }) if self.now < since + self.cfg.max_pending_ms => {
                        self.waiting.insert(id, (v, keys, since));
                    }
                    Err(Refusal::Wait { reason, .. } | Refusal::Invalid(reason)) => {
                        self.refuse(&v, reason, out);
                        refused.push(v);
                    }
                    // Only this gateway's own vertices are held to its funding policy.
                    Err(Refusal::Unfunded) => self.refuse(
                        &v,
                        "a transfer its confirmed funds do not cover".into(),
                        out,
                    ),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Rules a vertex must meet once its parents are known; the occurrences of its
    /// transactions, as [`Self::insert`] records them.
    fn validate(&self, v: &SignedVertex, keys: &[TxKey]) -> Result<Vec<Occ>, Refusal> {
        let x = &v.vertex;
        let c = self
            .cfg
            .group
            .index(&x.creator)
            .expect("checked by structure");
        let mut others = BTreeSet::new();
        let own = (x.sequence > 1).then(|| &self.vertices[&x.parents[0]]);
        for (i, p) in x.parents.iter().enumerate() {
            let pv = &self.vertices[p];
            // A pruned vertex other than a tip: a pruning node no longer holds it (see
            // `receive`), so a node that keeps its history refuses it too.
            if pv.pruned && !self.pruned_tips[pv.creator].contains(p) {
                return Err(Refusal::Invalid(OUTSIDE_PRUNED.into()));
            }
            if i > 0
                && let Some(o) = own
                && o.clock[pv.creator] >= pv.vertex.vertex.sequence
            {
                // What the previous vertex reaches needs no reference; and a pruned vertex
                // can only be named this way, so every node judges alike.
                return Err(Refusal::Invalid(
                    "a parent the creator's previous vertex already reaches".into(),
                ));
            }
            if i == 0 && x.sequence > 1 {
                if pv.creator != c || pv.vertex.vertex.sequence + 1 != x.sequence {
                    return Err(Refusal::Invalid(
                        "the first parent is not the creator's previous vertex".into(),
                    ));
                }
                if pv.vertex.vertex.timestamp_ms > x.timestamp_ms {
                    return Err(Refusal::Invalid("time runs backwards".into()));
                }
            } else if pv.creator == c || !others.insert(pv.creator) {
                return Err(Refusal::Invalid("two parents of one gateway".into()));
            }
        }
        let n = self.cfg.group.n();
        let mut clock = vec![0u64; n];
        for p in &x.parents {
            for (a, s) in clock.iter_mut().zip(&self.vertices[p].clock) {
                *a = (*a).max(*s);
            }
        }
        // The history is what the parents reach: the vertex's own (creator, sequence) is
        // not in it, so a known fork of the creator there stays out of the check.
        let view = View {
            clock,
            parents: &x.parents,
        };
        // The ledger rule answers for pruned history as a history holding all of it: only
        // a vertex building on a fork below it (an equivocator's) has one that does not.
        if !self.missing_tips(&x.parents).is_empty() {
            return Err(Refusal::Invalid(OUTSIDE_PRUNED.into()));
        }
        let mut batch = Batch::default();
        let mut occs = Vec::with_capacity(keys.len());
        for (t, k) in x.txs.iter().zip(keys) {
            occs.push(self.check_tx(&view, &mut batch, t, k.slot, false)?);
        }
        Ok(occs)
    }

    // ---- the ledger rule ----

    /// The pruned tips that the history of `parents` (the parents included) does not hold.
    fn missing_tips(&self, parents: &[VertexId]) -> Vec<VertexId> {
        let Some((first, rest)) = parents.split_first() else {
            return self.pruned_tips.iter().flatten().copied().collect();
        };
        let mut missing = self.vertices[first].missing.clone();
        for p in rest {
            if missing.is_empty() {
                break;
            }
            missing.retain(|t| self.vertices[p].missing.contains(t));
        }
        missing
    }

    /// Whether any copy of transaction `h` is confirmed (the status never goes back).
    fn tx_confirmed(&self, h: &Hash32) -> bool {
        self.txs.get(h).is_some_and(|i| {
            matches!(
                i.status,
                TxStatus::Confirmed | TxStatus::Anchored { .. } | TxStatus::Final { .. }
            )
        })
    }

    /// Whether vertex `u` is in the causal history of `view`, a history that holds every
    /// pruned tip (see `validate`; a gateway's own chain holds them too, as settling
    /// needs). Such a history holds every pruned vertex, each below a pruned tip of its
    /// creator, whether this node still holds it (a tip, or history it keeps) or not.
    /// Searching for a held tip could miss it where the vertices above it left memory.
    fn in_view(&self, u: &VertexId, view: &View<'_>) -> bool {
        match self.vertices.get(u) {
            None => true,
            Some(uv) if uv.pruned => true,
            Some(_) => self.reaches(u, view),
        }
    }

    /// Whether held vertex `u` is in the causal history of `view`. Exact: the clock
    /// answers unless the creator equivocated, in which case the history is searched; a
    /// vertex no longer held is pruned, and nothing unpruned lies below one.
    fn reaches(&self, u: &VertexId, view: &View<'_>) -> bool {
        let Some(uv) = self.vertices.get(u) else {
            return false;
        };
        let (c, s) = (uv.creator, uv.vertex.vertex.sequence);
        if view.clock[c] < s {
            return false;
        }
        if !self.equivocators.contains(&c) {
            // The only known vertex of `c` at `s`, and the view holds c's chain up to ≥ s.
            return true;
        }
        let mut stack: Vec<VertexId> = view.parents.to_vec();
        let mut seen = BTreeSet::new();
        while let Some(w) = stack.pop() {
            if w == *u {
                return true;
            }
            if !seen.insert(w) {
                continue;
            }
            // Not held: pruned, and so is all below it.
            let Some(wv) = self.vertices.get(&w) else {
                continue;
            };
            if wv.clock[c] < s {
                continue;
            }
            stack.extend(wv.vertex.vertex.parents.iter().copied());
        }
        false
    }

    /// Checks `tx` against the causal history `view` plus the earlier transactions of the
    /// same batch. The same function decides for the creator and for every receiver, so
    /// all honest nodes reach the same verdict on a vertex.
    ///
    /// `own`: the check is this gateway's, for its next vertex. Then a transfer that its
    /// confirmed funds do not cover yet waits (a policy, not a rule of validity): once
    /// included it would depend on those credits, and a credit that loses a double spend
    /// would hold it, and every later transaction of its sender, unconfirmed for good.
    fn check_tx(
        &self,
        view: &View<'_>,
        batch: &mut Batch,
        stx: &SignedMachineTx,
        slot: Slot,
        own: bool,
    ) -> Result<Occ, Refusal> {
        let tx = &stx.tx;
        let sender = slot.sender;
        if batch.slots.contains_key(&slot) {
            return Err(Refusal::Invalid(format!(
                "double spend: nonce {} used twice in one vertex",
                tx.nonce
            )));
        }
        let account = self.accounts.get(&sender);
        let pruned_next = account.map_or(0, |a| a.pruned_next);
        if tx.nonce < pruned_next
            || self
                .slots
                .get(&slot)
                .is_some_and(|info| info.occs.iter().any(|o| self.in_view(&o.1, view)))
        {
            return Err(Refusal::Invalid(format!(
                "double spend: nonce {} of the sender is already in the history",
                tx.nonce
            )));
        }
        let mut prev_occ = None;
        let mut credits = Vec::new();
        // The sender's previous transaction: in the batch, or unique in the history.
        let prev_debits = if tx.nonce == 0 {
            0
        } else if let Some((nonce, debits)) = batch.chain.get(&sender) {
            if *nonce + 1 != tx.nonce {
                return Err(Refusal::Wait {
                    reason: format!("nonce gap: expected {}", nonce + 1),
                    unseen: false,
                });
            }
            *debits
        } else if let Some(last) = account
            .and_then(|a| a.pruned_last)
            .filter(|_| tx.nonce == pruned_next)
        {
            if last.double_spent {
                return Err(Refusal::Invalid(
                    "the previous nonce is double spent in the history".into(),
                ));
            }
            if !last.confirmed {
                prev_occ = Some(last.copy);
            }
            last.debits
        } else {
            let prev = Slot {
                sender,
                nonce: tx.nonce - 1,
            };
            let prev_slot = self.slots.get(&prev);
            let mut found: Vec<&OccId> = prev_slot
                .map(|s| s.occs.iter().filter(|o| self.in_view(&o.1, view)).collect())
                .unwrap_or_default();
            found.sort_by_key(|o| o.1);
            let Some(first) = found.first() else {
                return Err(Refusal::Wait {
                    reason: format!("nonce gap: nonce {} not seen", tx.nonce - 1),
                    unseen: prev_slot.is_none_or(|s| s.occs.is_empty()),
                });
            };
            if found.iter().any(|o| o.0 != first.0) {
                return Err(Refusal::Invalid(
                    "the previous nonce is double spent in the history".into(),
                ));
            }
            let prev = &self.occs[*first];
            if !prev.confirmed {
                prev_occ = Some(**first);
            }
            prev.debits
        };
        let mut credit = None;
        let mut lock = None;
        let mut shortfall = 0;
        let debits = match &tx.kind {
            MachineKind::Event { .. } => prev_debits,
            MachineKind::Deposit { lock: l } => {
                let Some((account, amount)) = self.locks.get(l) else {
                    return Err(Refusal::Wait {
                        reason: "the lock is not final on the main chain yet".into(),
                        unseen: true,
                    });
                };
                if *account != sender {
                    return Err(Refusal::Invalid(
                        "the lock is made out to another account".into(),
                    ));
                }
                if batch.locks.contains(l)
                    || self.pruned_locks.contains_key(l)
                    || self
                        .lock_occs
                        .get(l)
                        .is_some_and(|o| o.iter().any(|o| self.in_view(&o.1, view)))
                {
                    return Err(Refusal::Invalid("the lock is already deposited".into()));
                }
                credit = Some((sender, *amount));
                lock = Some(*l);
                prev_debits
            }
            MachineKind::Transfer { to, amount } => {
                if *amount == 0 {
                    return Err(Refusal::Invalid("a transfer of zero".into()));
                }
                // Credits of this batch count as unconfirmed here; `insert` settles them.
                let mut funds: u128 = u128::from(batch.credits.get(&sender).copied().unwrap_or(0));
                let mut confirmed_funds: u128 = 0;
                if let Some(a) = account {
                    funds += a.pruned_credits;
                    confirmed_funds += a.pruned_credits.saturating_sub(a.pruned_dead_credits);
                }
                if let Some(cs) = self.credits.get(&sender) {
                    let mut seen = BTreeSet::new();
                    for o in cs {
                        if self.in_view(&o.1, view) && seen.insert(o.0) {
                            let amount = self.occs[o].credit.map_or(0, |c| c.1);
                            funds += u128::from(amount);
                            if self.tx_confirmed(&o.0) {
                                confirmed_funds += u128::from(amount);
                            } else {
                                credits.push((o.0, amount));
                            }
                        }
                    }
                }
                let debits = u128::from(prev_debits) + u128::from(*amount);
                if debits > funds {
                    return Err(Refusal::Invalid(format!(
                        "insufficient side balance: {} available, {amount} needed",
                        funds.saturating_sub(u128::from(prev_debits))
                    )));
                }
                let Ok(debits) = u64::try_from(debits) else {
                    return Err(Refusal::Invalid("the sender's debits overflow".into()));
                };
                // At most `debits`, so it fits.
                shortfall = (u128::from(debits).saturating_sub(confirmed_funds)) as u64;
                if shortfall == 0 {
                    // Covered already: it depends on none of them.
                    credits.clear();
                } else if own {
                    return Err(Refusal::Unfunded);
                }
                credit = Some((*to, *amount));
                debits
            }
        };
        batch.slots.insert(slot, ());
        batch.chain.insert(sender, (tx.nonce, debits));
        if let Some(l) = lock {
            batch.locks.insert(l);
        }
        if let Some((to, amount)) = credit {
            let c = batch.credits.entry(to).or_insert(0);
            *c = c.saturating_add(amount);
        }
        Ok(Occ {
            slot,
            prev: prev_occ,
            credits,
            shortfall,
            debits,
            credit,
            lock,
            confirmed: false,
        })
    }

    // ---- insertion, confirmation ----

    /// Records a valid vertex; `occs` are its transactions' occurrences as checked against
    /// its history (by [`Self::validate`], or by [`Self::maybe_emit`] for this gateway's).
    fn insert(&mut self, v: SignedVertex, keys: Vec<TxKey>, occs: Vec<Occ>, out: &mut Vec<Action>) {
        let id = v.id;
        let c = self.cfg.group.index(&v.vertex.creator).expect("a gateway");
        let seq = v.vertex.sequence;
        let n = self.cfg.group.n();
        let mut clock = vec![0u64; n];
        for p in &v.vertex.parents {
            for (a, s) in clock.iter_mut().zip(&self.vertices[p].clock) {
                *a = (*a).max(*s);
            }
        }
        clock[c] = seq;
        self.note_twin(&v, c, true, out);
        self.by_seq.entry((c, seq)).or_default().push(id);
        // Our own vertices from peers: a gateway that restarted resumes its chain.
        if Some(c) == self.me && seq > self.my_seq {
            self.my_seq = seq;
            self.my_last = Some(id);
        }
        if self.latest[c].is_none_or(|(s, _)| seq > s) {
            self.latest[c] = Some((seq, id));
        }
        debug_assert_eq!(occs.len(), keys.len());
        let mut new_occs: Vec<(OccId, Occ)> = keys.iter().map(|k| (k.hash, id)).zip(occs).collect();
        // Transactions of the same batch depend on earlier ones of the sender.
        let mut last_in_batch: BTreeMap<Address, OccId> = BTreeMap::new();
        let mut credit_in_batch: BTreeMap<Address, Vec<(Hash32, u64)>> = BTreeMap::new();
        for ((t, k), (oid, occ)) in v.vertex.txs.iter().zip(&keys).zip(new_occs.iter_mut()) {
            let tx = &t.tx;
            let sender = k.slot.sender;
            if tx.nonce > 0
                && let Some(p) = last_in_batch.get(&sender)
            {
                occ.prev = Some(*p);
            }
            // A copy of a credit of the batch may have confirmed elsewhere already.
            if matches!(tx.kind, MachineKind::Transfer { .. })
                && let Some(cs) = credit_in_batch.get(&sender)
            {
                for &(h, amount) in cs {
                    if occ.shortfall == 0 {
                        break;
                    }
                    if self.tx_confirmed(&h) {
                        occ.shortfall = occ.shortfall.saturating_sub(amount);
                    } else {
                        occ.credits.push((h, amount));
                    }
                }
            }
            last_in_batch.insert(sender, *oid);
            if let Some((to, amount)) = occ.credit {
                credit_in_batch.entry(to).or_default().push((oid.0, amount));
            }
        }
        if self.me.is_some() && !v.vertex.txs.is_empty() {
            self.to_reference.insert(id);
        }
        // Cooperation points now, while the parents' timestamps are at hand (they may be
        // pruned by the time an anchor covers this vertex).
        let x = &v.vertex;
        let others = &x.parents[usize::from(x.sequence > 1)..];
        let points = others
            .iter()
            .map(|p| {
                // Timestamps are the creators' word: any u64 may come.
                let delay = x
                    .timestamp_ms
                    .saturating_sub(self.vertices[p].vertex.vertex.timestamp_ms);
                100 * RELAY_HALF_MS / RELAY_HALF_MS.saturating_add(delay)
            })
            .sum();
        let lazy = others.is_empty();
        let missing = self.missing_tips(&x.parents);
        self.accepted += 1;
        self.unpruned.insert(id, ());
        let stored = self.vertices.entry(id).insert_entry(VertexInfo {
            vertex: v,
            creator: c,
            clock,
            seen_by: 0,
            settled_by: 0,
            confirmed_ms: None,
            anchor: None,
            keys,
            points,
            lazy,
            missing,
            pruned: false,
            continued: false,
        });
        let stored = stored.into_mut();
        // Senders with parked transactions that this vertex brings news of.
        let mut news = Vec::new();
        for ((t, k), (oid, occ)) in stored
            .vertex
            .vertex
            .txs
            .iter()
            .zip(&stored.keys)
            .zip(new_occs)
        {
            let info = self.txs.entry(oid.0).or_insert_with(|| TxInfo {
                tx: Box::new(t.clone()),
                status: TxStatus::Pending,
                first_seen_ms: self.now,
                latency_ms: None,
                vertices: Vec::new(),
            });
            info.vertices.push(id);
            self.slots.entry(k.slot).or_default().occs.push(oid);
            if self.parked.contains_key(&k.slot.sender) {
                news.push(k.slot.sender);
            }
            let a = self.accounts.entry(k.slot.sender).or_default();
            a.included_next = a.included_next.max(k.slot.nonce.saturating_add(1));
            if let Some(l) = occ.lock {
                self.lock_occs.entry(l).or_default().push(oid);
            }
            if let Some((to, _)) = occ.credit {
                self.credits.entry(to).or_default().push(oid);
            }
            for h in occ
                .prev
                .iter()
                .map(|p| &p.0)
                .chain(occ.credits.iter().map(|c| &c.0))
            {
                self.dependents.entry(*h).or_default().push(oid);
            }
            self.occs.insert(oid, occ);
        }
        for sender in &news {
            self.unpark(sender);
        }
        self.mark_seen(id, c, out);
        self.progress_anchors(out);
    }

    /// Refuses a validly signed, well-formed vertex, noting whether it is a twin.
    fn refuse(&mut self, v: &SignedVertex, reason: String, out: &mut Vec<Action>) {
        if let Some(c) = self.cfg.group.index(&v.vertex.creator) {
            self.note_twin(v, c, false, out);
        }
        out.push(Action::Rejected {
            vertex: v.id,
            reason,
            malformed: false,
        });
    }

    /// Equivocation: `v`, of creator `c`, shares its sequence number with another vertex
    /// this node holds or recently pruned. Called as `v` is taken, and as a validly signed
    /// `v` is refused, since a late twin is often refused (it builds on history pruned
    /// since). A pruned vertex is compared through `pruned_ids` alone, which pruning and
    /// keeping nodes fill alike, so that the two act alike, and only for a creator's first
    /// equivocation. Evidence goes out for a creator's first equivocation and for the first
    /// twin taken of each sequence; a refused twin, which a peer may send again and again,
    /// counts only as the creator's first.
    fn note_twin(&mut self, v: &SignedVertex, c: usize, taken: bool, out: &mut Vec<Action>) {
        let same: Vec<VertexId> = self
            .by_seq
            .get(&(c, v.vertex.sequence))
            .into_iter()
            .flatten()
            .filter(|o| **o != v.id && self.vertices.get(o).is_some_and(|o| !o.pruned))
            .copied()
            .collect();
        let Some(other) = same.first().copied() else {
            if let Some(pruned) = self.pruned_twin_of(v) {
                self.equivocators.insert(c);
                self.equivocations += 1;
                out.push(Action::PrunedTwin {
                    vertex: Box::new(v.clone()),
                    pruned,
                });
            }
            return;
        };
        let first_new = self.equivocators.insert(c);
        if !(taken || first_new) {
            return;
        }
        self.equivocations += 1;
        if first_new || same.len() == 1 {
            let o = self.vertices[&other].vertex.clone();
            out.push(Action::Equivocation(Box::new(EquivocationEvidence::of(
                o,
                v.clone(),
            ))));
        }
    }

    /// Marks `id` and its unmarked ancestors as seen by gateway `g`; each newly reached
    /// transaction gets g's endorsement if g endorsed nothing else in its slot.
    fn mark_seen(&mut self, id: VertexId, g: usize, out: &mut Vec<Action>) {
        let q = self.quorum();
        let mut stack = vec![id];
        let mut reached = Vec::new();
        while let Some(u) = stack.pop() {
            // Pruned vertices are seen by every gateway. A node that keeps its history
            // walks no further than a pruning one, which holds only the pruned tips (see
            // `pruned_away`): a late vertex of a gateway retired or known to equivocate
            // may reach pruned history its chain had not, and its endorsements there
            // would confirm a slot on one node and not on the other.
            let Some(info) = self.vertices.get_mut(&u) else {
                continue;
            };
            if info.pruned && !self.pruned_tips[info.creator].contains(&u) {
                continue;
            }
            // Reached by a later vertex of its own creator (its own bit is set already).
            if info.creator == g && u != id {
                info.continued = true;
            }
            if info.seen_by & bit(g) != 0 {
                continue;
            }
            info.seen_by |= bit(g);
            if Some(g) == self.me {
                self.to_reference.remove(&u);
            }
            reached.push(u);
            stack.extend(info.vertex.vertex.parents.iter().rev().copied());
        }
        // A pruned tip's transactions count for nothing here: a pruning node forgot them.
        let holds_txs = |v: &VertexInfo| !v.pruned && !v.keys.is_empty();
        if self.me.is_some_and(|me| me != g)
            && reached
                .iter()
                .any(|u| *u != id && holds_txs(&self.vertices[u]))
        {
            self.to_settle.insert(id);
        }
        let (all, waived) = (self.all_gateways(), self.waived());
        let mut endorsed_quorum = Vec::new();
        let mut newly_confirmed = Vec::new();
        let mut newly_settled = Vec::new();
        for u in &reached {
            let info = &self.vertices[u];
            if info.seen_by | waived == all {
                newly_settled.push((*u, info.creator));
            }
            let keys: &[TxKey] = if holds_txs(info) { &info.keys } else { &[] };
            for &TxKey { hash: h, slot } in keys {
                let endorsed = self.slots.get_mut(&slot).and_then(|s| s.endorse(g, h));
                if endorsed.is_some_and(|m| m.count_ones() as usize == q) {
                    endorsed_quorum.push(h);
                }
            }
            if info.confirmed_ms.is_none() && info.seen_by.count_ones() as usize >= q {
                newly_confirmed.push(*u);
            }
        }
        let mut work: Vec<OccId> = Vec::new();
        for u in newly_confirmed {
            let info = self.vertices.get_mut(&u).expect("known");
            info.confirmed_ms = Some(self.now);
            self.confirmed_vertices += 1;
            work.extend(info.keys.iter().map(|k| (k.hash, u)));
        }
        for h in endorsed_quorum {
            if let Some(info) = self.txs.get(&h) {
                work.extend(info.vertices.iter().map(|v| (h, *v)));
            }
        }
        for (u, c) in newly_settled {
            self.mark_settled(u, c);
        }
        self.confirm(work, out);
    }

    /// Marks `id`, which every gateway has seen, and its unmarked ancestors as settled by
    /// its creator `c`.
    fn mark_settled(&mut self, id: VertexId, c: usize) {
        let mut stack = vec![id];
        while let Some(u) = stack.pop() {
            let Some(info) = self.vertices.get_mut(&u) else {
                continue;
            };
            if info.settled_by & bit(c) != 0 {
                continue;
            }
            info.settled_by |= bit(c);
            stack.extend(info.vertex.vertex.parents.iter().copied());
        }
    }

    /// Confirms occurrences whose vertex is confirmed, whose transaction won its slot at
    /// a quorum of gateways, whose sender's previous nonce is confirmed and whose chain's
    /// debits confirmed credits cover; then their dependents.
    fn confirm(&mut self, mut work: Vec<OccId>, out: &mut Vec<Action>) {
        let q = self.quorum();
        while let Some(oid) = work.pop() {
            let Some(occ) = self.occs.get(&oid) else {
                continue;
            };
            // A pruned vertex is confirmed; a pruned dependency that had not confirmed
            // never will (confirmed ones are cleared from their dependents below).
            if occ.confirmed
                || self
                    .vertices
                    .get(&oid.1)
                    .is_some_and(|v| v.confirmed_ms.is_none())
                || (self
                    .slots
                    .get(&occ.slot)
                    .map_or(0, |s| s.endorsers(&oid.0))
                    .count_ones() as usize)
                    < q
                || occ
                    .prev
                    .is_some_and(|p| self.occs.get(&p).is_none_or(|o| !o.confirmed))
                || occ.shortfall > 0
            {
                continue;
            }
            let (sender, credit) = (occ.slot.sender, occ.credit);
            self.occs.get_mut(&oid).expect("known").confirmed = true;
            // Whichever copy it is: a credit waits for any, a next nonce for one of them.
            // The met dependency is cleared, so that pruning this copy later cannot undo it.
            if let Some(ds) = self.dependents.get(&oid.0) {
                for d in ds {
                    if let Some(o) = self.occs.get_mut(d) {
                        if o.prev == Some(oid) {
                            o.prev = None;
                        }
                        if let Some(at) = o.credits.iter().position(|c| c.0 == oid.0) {
                            let (_, amount) = o.credits.swap_remove(at);
                            o.shortfall = o.shortfall.saturating_sub(amount);
                        }
                    }
                }
                work.extend(ds.iter().copied());
            }
            let anchor = self.vertices.get(&oid.1).and_then(|v| v.anchor);
            let final_seq = self.final_seq;
            let info = self.txs.get_mut(&oid.0).expect("known");
            if matches!(info.status, TxStatus::Pending | TxStatus::Rejected { .. }) {
                let latency = self.now - info.first_seen_ms;
                info.latency_ms = Some(latency);
                info.status = match anchor {
                    Some(a) if a <= final_seq => TxStatus::Final { anchor: a },
                    Some(a) => TxStatus::Anchored { anchor: a },
                    None => TxStatus::Confirmed,
                };
                self.confirmed_txs += 1;
                if let MachineKind::Transfer { amount, .. } = info.tx.tx.kind {
                    self.accounts.entry(sender).or_default().balance -= i128::from(amount);
                }
                if let Some((to, amount)) = credit {
                    self.accounts.entry(to).or_default().balance += i128::from(amount);
                    if self.funding.remove(&to) {
                        self.unpark(&to);
                    }
                }
                out.push(Action::Confirmed {
                    tx: oid.0,
                    latency_ms: latency,
                });
            }
        }
    }

    // ---- anchoring ----

    fn maybe_anchor(&mut self, out: &mut Vec<Action>) {
        let Some(me) = self.me.filter(|_| !self.retired_me()) else {
            return;
        };
        let next = self.final_seq + 1;
        if self.submitted.is_some_and(|s| s >= next) {
            // Resubmit if the main chain has not taken it in a while.
            if self.now < self.last_final_ms + 4 * self.cfg.anchor_interval_ms {
                return;
            }
        }
        let designated = self.designated(next) == me;
        let overdue = self.now >= self.last_final_ms + 3 * self.cfg.anchor_interval_ms;
        if !designated && !overdue {
            return;
        }
        let pending = self.confirmed_vertices.saturating_sub(self.anchor_count);
        let due = pending >= self.cfg.anchor_every_vertices
            || (pending > 0 && self.now >= self.last_final_ms + self.cfg.anchor_interval_ms);
        if !due {
            return;
        }
        let frontier = self.confirmed_frontier();
        let Some((root, count, covered, rewards)) = self.compute_anchor(&frontier) else {
            return;
        };
        if covered.is_empty() {
            return;
        }
        let Some(key) = self.key.as_ref() else {
            return;
        };
        let anchor = Anchor {
            group_id: self.cfg.group.id,
            sequence: next,
            frontier,
            root,
            confirmed_vertices: count,
            rewards,
        };
        let endorsement = Endorsement {
            gateway: key.public(),
            signature: key.sign(&anchor.signing_bytes()),
        };
        let signed = SignedAnchor {
            anchor,
            endorsements: vec![endorsement],
        };
        self.submitted = Some(next);
        self.last_final_ms = self
            .last_final_ms
            .max(self.now.saturating_sub(self.cfg.anchor_interval_ms));
        self.matched.insert(anchor_hash(&signed.anchor));
        self.propose(signed.clone());
        out.push(Action::Send {
            to: None,
            msg: Message::Anchor(signed),
        });
        self.progress_anchors(out);
    }

    /// The gateway that proposes and submits anchor `seq` before it is overdue: `seq mod
    /// n`, or the next one after it that is not retired (a retired one never would).
    fn designated(&self, seq: u64) -> usize {
        let n = self.cfg.group.n();
        let first = (seq % n as u64) as usize;
        (0..n)
            .map(|k| (first + k) % n)
            .find(|c| !self.is_retired(*c))
            .unwrap_or(first)
    }

    /// Adds this gateway's endorsement to a proposal it recomputed, and tells the group.
    fn endorse(&mut self, seq: u64, hash: Hash32, out: &mut Vec<Action>) {
        // A retired gateway has no say any more.
        let Some(key) = self.key.as_ref().filter(|_| !self.retired_me()) else {
            return;
        };
        let me = key.public();
        let Some(p) = self
            .proposals
            .get_mut(&seq)
            .and_then(|l| l.iter_mut().find(|p| anchor_hash(&p.anchor) == hash))
        else {
            return;
        };
        let Err(at) = p.endorsements.binary_search_by_key(&me, |e| e.gateway) else {
            return;
        };
        let signature = key.sign(&p.anchor.signing_bytes());
        p.endorsements.insert(
            at,
            Endorsement {
                gateway: me,
                signature,
            },
        );
        let msg = Message::Anchor(p.clone());
        out.push(Action::Send { to: None, msg });
    }

    /// Sends the next anchor to the main chain once a quorum endorsed it here: the
    /// designated gateway does, and any gateway once the anchor is overdue; again if the
    /// main chain has not taken it after a while.
    fn maybe_submit(&mut self, out: &mut Vec<Action>) {
        let Some(me) = self.me.filter(|_| !self.retired_me()) else {
            return;
        };
        let next = self.final_seq + 1;
        let designated = self.designated(next) == me;
        let overdue = self.now >= self.last_final_ms + 3 * self.cfg.anchor_interval_ms;
        if !designated && !overdue {
            return;
        }
        if self
            .sent
            .is_some_and(|(s, t)| s == next && self.now < t + 2 * self.cfg.anchor_interval_ms)
        {
            return;
        }
        // The main chain counts no retired gateway's endorsement.
        let quorum = self.quorum();
        let counted = |p: &SignedAnchor| {
            p.endorsements
                .iter()
                .filter(|e| {
                    self.cfg
                        .group
                        .index(&e.gateway)
                        .is_some_and(|c| !self.is_retired(c))
                })
                .count()
        };
        let Some(best) = self.proposals.get(&next).and_then(|l| {
            l.iter()
                .map(|p| (counted(p), p))
                .filter(|(k, _)| *k >= quorum)
                .max_by_key(|(k, _)| *k)
                .map(|(_, p)| p)
        }) else {
            return;
        };
        let best = best.clone();
        self.sent = Some((next, self.now));
        out.push(Action::SubmitAnchor(best));
    }

    /// Per gateway, its highest confirmed vertex (lowest id among forks).
    fn frontier_per_gateway(&self) -> Vec<Option<VertexId>> {
        let mut best: Vec<Option<(u64, VertexId)>> = vec![None; self.cfg.group.n()];
        for ((c, s), ids) in &self.by_seq {
            for id in ids {
                if self.vertices[id].confirmed_ms.is_some() {
                    let cur = &mut best[*c];
                    if cur.is_none_or(|(cs, cid)| *s > cs || (*s == cs && *id < cid)) {
                        *cur = Some((*s, *id));
                    }
                }
            }
        }
        best.into_iter().map(|b| b.map(|(_, id)| id)).collect()
    }

    /// The confirmed frontier an anchor names: [`Self::frontier_per_gateway`], sorted by id.
    fn confirmed_frontier(&self) -> Vec<VertexId> {
        let mut f: Vec<VertexId> = self.frontier_per_gateway().into_iter().flatten().collect();
        f.sort();
        f
    }

    /// Root, cumulative count, newly covered vertices and rewards of an anchor with
    /// `frontier` on top of the last final anchor; `None` if a frontier vertex is unknown
    /// or unconfirmed here.
    #[allow(clippy::type_complexity)]
    fn compute_anchor(
        &self,
        frontier: &[VertexId],
    ) -> Option<(Hash32, u64, Vec<VertexId>, Vec<Reward>)> {
        let mut covered = BTreeSet::new();
        for f in frontier {
            self.vertices.get(f)?.confirmed_ms?;
        }
        let mut stack: Vec<VertexId> = frontier.to_vec();
        while let Some(u) = stack.pop() {
            // A known vertex's parents are known or pruned, and pruned ones are final.
            let Some(info) = self.vertices.get(&u) else {
                continue;
            };
            info.confirmed_ms?;
            if info.anchor.is_some_and(|a| a <= self.final_seq) || !covered.insert(u) {
                continue;
            }
            stack.extend(info.vertex.vertex.parents.iter().copied());
        }
        let ids: Vec<[u8; 32]> = covered.iter().map(|h| h.0).collect();
        let merkle = self.accel.merkle_root(&ids);
        let count = self.anchor_count + covered.len() as u64;
        let root = sha256(&[
            b"cpchain/side/anchor-root",
            &self.anchor_root.0,
            &merkle,
            &count.to_be_bytes(),
        ]);
        let covered: Vec<VertexId> = covered.into_iter().collect();
        let rewards = self.rewards_for(&covered);
        Some((root, count, covered, rewards))
    }

    /// Cooperation scores over `covered`: each reference to another gateway's vertex earns
    /// up to 100 points, halving every `RELAY_HALF_MS` of relay delay; a gateway most of
    /// whose vertices reference only itself is lazy and earns nothing.
    fn rewards_for(&self, covered: &[VertexId]) -> Vec<Reward> {
        let n = self.cfg.group.n();
        let mut score = vec![0u64; n];
        let mut made = vec![0u64; n];
        let mut lazy = vec![0u64; n];
        for id in covered {
            let v = &self.vertices[id];
            made[v.creator] += 1;
            lazy[v.creator] += u64::from(v.lazy);
            score[v.creator] += v.points;
        }
        let eligible: Vec<bool> = (0..n)
            .map(|i| made[i] > 0 && lazy[i] * 2 <= made[i])
            .collect();
        let total: u128 = (0..n)
            .filter(|i| eligible[*i])
            .map(|i| u128::from(score[i]))
            .sum();
        (0..n)
            .map(|i| Reward {
                gateway: self.cfg.group.gateways[i],
                score: score[i],
                amount: if eligible[i] && total > 0 {
                    (u128::from(self.cfg.reward_per_anchor) * u128::from(score[i]) / total) as u64
                } else {
                    0
                },
            })
            .collect()
    }

    /// Keeps a proposal for its sequence, merging the endorsements of one anchor; the
    /// oldest goes when too many arrive. Endorsements must be verified and sorted.
    fn propose(&mut self, a: SignedAnchor) {
        let list = self.proposals.entry(a.anchor.sequence).or_default();
        if let Some(p) = list.iter_mut().find(|p| p.anchor == a.anchor) {
            for e in a.endorsements {
                if let Err(at) = p
                    .endorsements
                    .binary_search_by_key(&e.gateway, |x| x.gateway)
                {
                    p.endorsements.insert(at, e);
                }
            }
            return;
        }
        if list.len() >= MAX_PROPOSALS {
            list.remove(0);
        }
        list.push(a);
    }

    /// Verifies proposals for the next anchor (status *anchored*) and applies final anchors
    /// in order (status *final*), each checked against this node's DAG.
    fn progress_anchors(&mut self, out: &mut Vec<Action>) {
        loop {
            let next = self.final_seq + 1;
            let Some(fin) = self.finals.get(&next).cloned() else {
                let props = self.proposals.get(&next).cloned().unwrap_or_default();
                for p in props {
                    let hash = anchor_hash(&p.anchor);
                    if !self.matched.contains(&hash) {
                        match self.check_frontier(
                            &p.anchor.frontier,
                            p.anchor.root,
                            p.anchor.confirmed_vertices,
                            Some(&p.anchor.rewards),
                        ) {
                            Ok(Some((covered, _))) => {
                                self.matched.insert(hash);
                                if !self.verified.contains_key(&next) {
                                    self.mark_anchored(next, &covered);
                                    self.verified.insert(
                                        next,
                                        (p.anchor.root, p.anchor.confirmed_vertices, covered),
                                    );
                                }
                            }
                            Ok(None) => continue,
                            Err(reason) => {
                                if let Some(l) = self.proposals.get_mut(&next) {
                                    l.retain(|x| x.anchor != p.anchor);
                                }
                                out.push(Action::AnchorMismatch {
                                    sequence: next,
                                    reason,
                                });
                                continue;
                            }
                        }
                    }
                    self.endorse(next, hash, out);
                }
                self.maybe_submit(out);
                return;
            };
            // The main chain decided; its frontier must give its root over this DAG.
            let covered = match self.check_frontier(&fin.frontier, fin.root, fin.count, None) {
                Ok(Some((covered, _))) => covered,
                Ok(None) => return,
                Err(reason) => {
                    if self.final_mismatch != Some(next) {
                        self.final_mismatch = Some(next);
                        out.push(Action::AnchorMismatch {
                            sequence: next,
                            reason: format!(
                                "the final anchor does not match this node's history: {reason}"
                            ),
                        });
                    }
                    return;
                }
            };
            // Undo a tentative mark from a proposal the main chain did not take.
            if let Some((troot, tcount, tcov)) = self.verified.remove(&next)
                && (troot, tcount) != (fin.root, fin.count)
            {
                for id in &tcov {
                    let info = self.vertices.get_mut(id).expect("covered");
                    info.anchor = None;
                    for k in &info.keys {
                        if let Some(ti) = self.txs.get_mut(&k.hash)
                            && ti.status == (TxStatus::Anchored { anchor: next })
                        {
                            ti.status = TxStatus::Confirmed;
                        }
                    }
                }
            }
            let rewards = self.rewards_for(&covered);
            self.mark_anchored(next, &covered);
            self.final_seq = next;
            self.finals.remove(&next);
            self.proposals.remove(&next);
            self.matched.clear();
            self.anchor_root = fin.root;
            self.anchor_count = fin.count;
            self.last_final_ms = self.now;
            self.anchor_log.push((next, fin.root, fin.count));
            for (i, r) in rewards.iter().enumerate() {
                self.scores[i] += r.score;
                self.rewards[i] += r.amount;
            }
            for id in &covered {
                let info = &self.vertices[id];
                for k in &info.keys {
                    if let Some(ti) = self.txs.get_mut(&k.hash)
                        && ti.status == (TxStatus::Anchored { anchor: next })
                    {
                        ti.status = TxStatus::Final { anchor: next };
                    }
                }
            }
            self.prunable.extend_from_slice(&covered);
            self.prune_due = true;
            // Only the latest final anchor is reported; older ones are in the anchor log.
            self.verified.clear();
            self.verified.insert(next, (fin.root, fin.count, covered));
        }
    }

    // ---- pruning ----

    /// Prunes the vertices under final anchors that are settled, and then each
    /// account's slots, in nonce order, once every copy in them is pruned and the slot
    /// decided (see [`Self::absorb`]); hands what left memory to the node in
    /// [`Action::Pruned`]. A node that keeps its history still marks the pruned vertices
    /// and their tips, so that it judges new vertices exactly as a pruning node does.
    fn prune(&mut self, out: &mut Vec<Action>) {
        if self.prunable.is_empty() {
            return;
        }
        let all = self.all_gateways();
        let mut ready = Vec::new();
        let (vertices, equivocators, retired) = (&self.vertices, &self.equivocators, self.retired);
        // A known equivocator's bit counts once its chain reaches the vertex: gateways no
        // longer reference its vertices, so none of its later ones is ever seen by every
        // gateway, and waiting for one would stop pruning for good.
        let known = self.equivocator_bits();
        // A retired gateway signs nothing more: nothing of it is waited for, even when it
        // is a known equivocator.
        let waived = self.waived();
        // An equivocator's vertex that no later vertex of its own reaches (its twin's chain
        // goes on) counts as seen by it only through itself: pruned, it would make every
        // later vertex of its creator fail the pruned-tips rule on this node but not on
        // one that pruned later, and their confirmations would part. It waits until its
        // creator's chain reaches it (an abandoned twin, one vertex, may wait for good).
        // Whatever reaches it is then unprunable too (a vertex pruned above it carries
        // its creator's bit, from a vertex that reaches it), so nothing unpruned lies
        // below a pruned vertex, as `reaches` relies on. A retired equivocator's waits for nothing
        // but settling, which its ancestors share, so they leave together; a later vertex
        // of it that lacks the twin is refused (see "Retired gateways" in the crate docs).
        self.prunable.retain(|id| match vertices.get(id) {
            Some(v)
                if (v.settled_by | (v.seen_by & known) | waived) == all
                    && (v.continued
                        || !equivocators.contains(&v.creator)
                        || retired & bit(v.creator) != 0) =>
            {
                ready.push((v.vertex.vertex.sequence, *id));
                false
            }
            Some(_) => true,
            None => false,
        });
        if ready.is_empty() {
            return;
        }
        // Parents first (lower sequence), so that a tip is replaced by its successor.
        ready.sort();
        let mut slots = BTreeSet::new();
        let mut gone = Vec::new();
        let mut added = Vec::new();
        for (seq, id) in ready {
            let info = self.vertices.get_mut(&id).expect("prunable");
            info.pruned = true;
            self.unpruned.remove(&id);
            if self.cfg.prune_history {
                slots.extend(std::mem::take(&mut info.keys).into_iter().map(|k| k.slot));
            }
            let c = info.creator;
            let own = (seq > 1).then(|| info.vertex.vertex.parents[0]);
            let tips = &mut self.pruned_tips[c];
            if let Some(p) = own
                && let Some(at) = tips.iter().position(|t| *t == p)
            {
                tips.swap_remove(at);
                gone.push(p);
            }
            tips.push(id);
            added.push(id);
            // Both twins of an equivocator may be pruned: the first stays named.
            if let std::collections::btree_map::Entry::Vacant(e) = self.pruned_ids.entry((c, seq)) {
                e.insert(id);
                self.pruned_order.push_back((c, seq));
            }
            if self.pruned_order.len() > RECENT_PRUNED
                && let Some(old) = self.pruned_order.pop_front()
            {
                self.pruned_ids.remove(&old);
            }
            self.pruned_seq[c] = self.pruned_seq[c].max(seq);
            self.pruned_vertices += u64::from(self.cfg.prune_history);
        }
        self.track_tips(&added);
        if !self.cfg.prune_history {
            return;
        }
        let mut vertices = Vec::with_capacity(gone.len());
        for id in gone {
            let Some(v) = self.vertices.remove(&id) else {
                continue;
            };
            let key = (v.creator, v.vertex.vertex.sequence);
            self.pruned_recent.push_back(id);
            self.pruned_known.insert(id, ());
            if self.pruned_recent.len() > RECENT_PRUNED
                && let Some(old) = self.pruned_recent.pop_front()
            {
                self.pruned_known.remove(&old);
            }
            if let Some(list) = self.by_seq.get_mut(&key) {
                list.retain(|x| *x != id);
                if list.is_empty() {
                    self.by_seq.remove(&key);
                }
            }
            vertices.push(v);
        }
        if !vertices.is_empty() {
            out.push(Action::Pruned {
                vertices,
                txs: Vec::new(),
            });
        }
        self.absorbing.extend(slots.iter().map(|s| s.sender));
        // Spread over half an anchor interval: summarising, and the node archiving what
        // it hands out, then cost a steady share of the cores instead of a burst after
        // every final anchor, which queued the vertices behind it.
        self.absorb_backlog += slots.len();
        let spread = (self.cfg.anchor_interval_ms / 2).max(1) as usize;
        self.absorb_pace = (self.absorb_backlog / spread).max(ABSORB_MIN_PACE);
    }

    /// Summarises pruned slots at the pace `prune` set, by the input's time: at most
    /// [`ABSORB_BUDGET`] per input.
    fn absorb_paced(&mut self, out: &mut Vec<Action>) {
        if self.absorbing.is_empty() {
            self.absorb_backlog = 0;
            self.last_absorb_ms = self.now;
            return;
        }
        let elapsed =
            usize::try_from(self.now.saturating_sub(self.last_absorb_ms)).unwrap_or(usize::MAX);
        let budget = elapsed.saturating_mul(self.absorb_pace).min(ABSORB_BUDGET);
        if budget > 0 {
            self.last_absorb_ms = self.now;
            let used = self.absorb_some(budget, out);
            self.absorb_backlog = self.absorb_backlog.saturating_sub(used);
        }
    }

    /// Summarises pruned slots of the accounts waiting for it, looking at `budget` slots
    /// at most: an anchor may cover tens of thousands of transactions, and their
    /// bookkeeping should not hold up the vertices of one input. Returns the slots looked at.
    fn absorb_some(&mut self, budget: usize, out: &mut Vec<Action>) -> usize {
        let start = budget;
        let mut budget = budget;
        let mut txs = Vec::new();
        let mut credits: BTreeMap<Address, BTreeSet<OccId>> = BTreeMap::new();
        let mut wake = BTreeSet::new();
        while budget > 0
            && let Some(sender) = self.absorbing.first().copied()
        {
            if self.absorb(sender, &mut txs, &mut credits, &mut wake, &mut budget) {
                self.absorbing.remove(&sender);
            }
        }
        // The next round looks at them: a slot of theirs may have waited for these.
        self.absorbing.extend(wake);
        for (to, oids) in credits {
            if let Some(list) = self.credits.get_mut(&to) {
                list.retain(|o| !oids.contains(o));
                if list.is_empty() {
                    self.credits.remove(&to);
                }
            }
        }
        if !txs.is_empty() {
            out.push(Action::Pruned {
                vertices: Vec::new(),
                txs,
            });
        }
        start - budget
    }

    /// Brings every vertex's `missing` up to the current pruned tips, given the vertices
    /// pruned this round. Runs while every vertex the history of a new tip passes through
    /// is still held. A tip that moved up its creator's chain is missing wherever its
    /// predecessor was, so only new tips are looked for. (Each vertex's answer is its own:
    /// the map's order does not matter.)
    fn track_tips(&mut self, added: &[VertexId]) {
        let tips: BTreeSet<VertexId> = self.pruned_tips.iter().flatten().copied().collect();
        let new: Vec<VertexId> = added
            .iter()
            .filter(|t| tips.contains(*t))
            .copied()
            .collect();
        // Only what a new vertex can name matters: unpruned vertices and the tips (an older
        // pruned vertex as a parent is refused before this is asked).
        let mut changes = Vec::new();
        for id in self.unpruned.keys().chain(&tips) {
            let Some(w) = self.vertices.get(id) else {
                continue;
            };
            let mut missing: Vec<VertexId> = w
                .missing
                .iter()
                .filter(|t| tips.contains(*t))
                .copied()
                .collect();
            if !new.is_empty() {
                let view = View {
                    clock: w.clock.clone(),
                    parents: &w.vertex.vertex.parents,
                };
                missing.extend(
                    new.iter()
                        // The new tips are pruned, and what lies above them is still
                        // held: the search is exact.
                        .filter(|t| *t != id && !self.reaches(t, &view))
                        .copied(),
                );
            }
            if missing != w.missing {
                changes.push((*id, missing));
            }
        }
        for (id, m) in changes {
            if let Some(w) = self.vertices.get_mut(&id) {
                w.missing = m;
            }
        }
    }

    /// Summarises `sender`'s pruned slots into its account, from its first unpruned nonce
    /// on, while every copy in the slot is pruned and the slot is decided: one of its
    /// transactions confirmed, or none ever can (see [`Self::never_confirms`]). Then
    /// nothing can change there: every gateway has endorsed in it and its dependencies
    /// are decided. Collects the transactions and the credit occurrences that went, and
    /// the accounts they credited (a spend of theirs may have waited for this one).
    /// Whether `sender` has nothing more to absorb now (else the budget ran out).
    fn absorb(
        &mut self,
        sender: Address,
        txs: &mut Vec<(Hash32, TxInfo)>,
        credits: &mut BTreeMap<Address, BTreeSet<OccId>>,
        wake: &mut BTreeSet<Address>,
        budget: &mut usize,
    ) -> bool {
        loop {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            let next = self.accounts.get(&sender).map_or(0, |a| a.pruned_next);
            let slot = Slot {
                sender,
                nonce: next,
            };
            let Some(si) = self.slots.get(&slot) else {
                return true;
            };
            let held = si
                .occs
                .iter()
                .any(|o| self.vertices.get(&o.1).is_some_and(|v| !v.pruned));
            if held {
                return true;
            }
            // Why each transaction of the slot that did not confirm never will.
            let mut lost: Vec<(Hash32, String)> = Vec::new();
            for o in &si.occs {
                if self.tx_confirmed(&o.0) || lost.iter().any(|l| l.0 == o.0) {
                    continue;
                }
                let Some(why) = self.never_confirms(&o.0, si) else {
                    return true;
                };
                lost.push((o.0, why));
            }
            let si = self.slots.remove(&slot).expect("present");
            let copy = *si.occs.iter().min_by_key(|o| o.1).expect("occupied");
            let mut last = PrunedLast {
                copy,
                debits: 0,
                confirmed: false,
                double_spent: si.occs.iter().any(|o| o.0 != copy.0),
            };
            let mut hashes: Vec<Hash32> = Vec::new();
            for oid in &si.occs {
                let Some(occ) = self.occs.remove(oid) else {
                    continue;
                };
                if *oid == copy {
                    last.debits = occ.debits;
                    last.confirmed = occ.confirmed;
                }
                if let Some(l) = occ.lock {
                    if let Some(list) = self.lock_occs.get_mut(&l) {
                        list.retain(|o| o != oid);
                        if list.is_empty() {
                            self.lock_occs.remove(&l);
                        }
                    }
                    self.pruned_locks.insert(l, ());
                }
                let new = !hashes.contains(&oid.0);
                if let Some((to, amount)) = occ.credit {
                    credits.entry(to).or_default().insert(*oid);
                    if new {
                        let dead = !self.tx_confirmed(&oid.0);
                        let a = self.accounts.entry(to).or_default();
                        a.pruned_credits += u128::from(amount);
                        if dead {
                            a.pruned_dead_credits += u128::from(amount);
                        }
                        if to != sender {
                            wake.insert(to);
                        }
                    }
                }
                if new {
                    hashes.push(oid.0);
                }
            }
            for h in hashes {
                self.dependents.remove(&h);
                if let Some(mut info) = self.txs.remove(&h) {
                    if let Some((_, why)) = lost.iter().find(|l| l.0 == h) {
                        info.status = TxStatus::Rejected {
                            reason: format!("never confirms: {why}"),
                        };
                    }
                    txs.push((h, info));
                    self.pruned_txs += 1;
                }
            }
            let a = self.accounts.entry(sender).or_default();
            a.pruned_next = next + 1;
            a.pruned_last = Some(last);
        }
    }

    /// Why transaction `h`, unconfirmed in slot `si` whose every copy is pruned, can never
    /// confirm; `None` while it still may. Every gateway not retired has endorsed in a
    /// pruned slot, so its endorsements are final (a retired one's count as swing below); what it depends on is decided once its own slot is
    /// summarised (in nonce order for the sender's previous transaction; a credit that is
    /// no longer held went unconfirmed, as confirmed ones are cleared from their spends).
    fn never_confirms(&self, h: &Hash32, si: &SlotInfo) -> Option<String> {
        let endorsers = si.endorsers(h);
        let count = endorsers.count_ones() as usize;
        if count < self.quorum() {
            if si.occs.iter().any(|o| self.tx_confirmed(&o.0)) {
                return Some("another transaction of its nonce confirmed (a double spend)".into());
            }
            // An equivocator endorses along whichever of its forks a node took first, so
            // another node may count it for `h`: while that could tip it, the slot waits.
            // So may a retired gateway's vertex signed before it left that reaches a node
            // only now (pruning no longer waits for it to see the slot).
            let swing = (self.unreferenced() & !endorsers).count_ones() as usize;
            if count + swing >= self.quorum() {
                return None;
            }
            return Some(
                "no transaction of its nonce won a quorum of gateways (a double spend)".into(),
            );
        }
        let mut why = None;
        for o in si.occs.iter().filter(|o| o.0 == *h) {
            let occ = self.occs.get(o)?;
            if let Some(p) = occ.prev {
                if self.occs.contains_key(&p) {
                    return None;
                }
                why = Some("the sender's previous transaction never confirmed".into());
                continue;
            }
            let pending: u128 = occ
                .credits
                .iter()
                .filter(|c| self.txs.contains_key(&c.0))
                .map(|c| u128::from(c.1))
                .sum();
            if pending >= u128::from(occ.shortfall) {
                return None;
            }
            why = Some("credits it needs never confirmed (a double spend lost)".into());
        }
        why
    }

    fn mark_anchored(&mut self, seq: u64, covered: &[VertexId]) {
        for id in covered {
            let info = self.vertices.get_mut(id).expect("covered");
            info.anchor = Some(seq);
            for k in &info.keys {
                if let Some(ti) = self.txs.get_mut(&k.hash)
                    && ti.status == TxStatus::Confirmed
                {
                    ti.status = TxStatus::Anchored { anchor: seq };
                }
            }
        }
    }

    /// Whether `frontier` over this DAG gives `root` and `count` (and `rewards`, when
    /// given): the vertices it newly covers and their rewards; `Ok(None)` when this node
    /// cannot tell yet, and the unknown frontier vertices are requested.
    #[allow(clippy::type_complexity)]
    fn check_frontier(
        &mut self,
        frontier: &[VertexId],
        root: Hash32,
        count: u64,
        rewards: Option<&[Reward]>,
    ) -> Result<Option<(Vec<VertexId>, Vec<Reward>)>, String> {
        if frontier.windows(2).any(|w| w[0] >= w[1]) || frontier.len() > self.cfg.group.n() {
            return Err("the frontier is not sorted and unique".into());
        }
        let unknown: Vec<VertexId> = frontier
            .iter()
            .filter(|id| !self.vertices.contains_key(id))
            .copied()
            .collect();
        if !unknown.is_empty() {
            for id in unknown {
                if !self.known(&id) {
                    // Asked at the next heads interval.
                    let due = self.now.saturating_sub(self.cfg.heads_interval_ms);
                    self.requested.entry(id).or_insert(due);
                }
            }
            return Ok(None);
        }
        let Some((here, here_count, covered, here_rewards)) = self.compute_anchor(frontier) else {
            return Ok(None);
        };
        if here != root || here_count != count {
            return Err(format!(
                "root {here} over {here_count} vertices here, {root} over {count} in the anchor"
            ));
        }
        if rewards.is_some_and(|r| r != here_rewards.as_slice()) {
            return Err("the rewards differ from the cooperation scores here".into());
        }
        Ok(Some((covered, here_rewards)))
    }
}
