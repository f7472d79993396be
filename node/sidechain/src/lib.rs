//! The DAG side chain: real-time machine transactions between the gateways of one group,
//! confirmed by a quorum of gateways within milliseconds and anchored to the main chain.
//!
//! A [`SideChain`] is a sans-IO state machine: the node feeds it [`Input`]s (ticks of its
//! clock, gossip messages, main-chain locks and final anchors) and carries out the
//! [`Action`]s it returns (gossip, anchor submissions, equivocation evidence). Nothing here
//! touches a socket, a disk or a clock, and nothing iterates a hash map where the order
//! could matter, so the seeded simulator in `tests/simulation.rs` replays any run exactly.
//!
//! # The DAG
//!
//! Every few milliseconds a gateway signs a [`Vertex`]: a batch of machine transactions,
//! its own previous vertex and the latest vertex of up to 8 other gateways it has not yet
//! referenced. Receivers check every signature of a batch of vertices in one accelerator
//! call, wait for unknown parents (fetching them), check sequence numbers and the ledger
//! rule below, and keep, per vertex, a vector clock and the set of gateways whose vertices
//! reach it. A vertex is **confirmed** once vertices of a quorum of q = n − f distinct
//! gateways reach it (f = ⌊(n−1)/3⌋, so q = 2f+1 when n = 3f+1); confirmation is closed
//! under ancestry.
//!
//! Client transactions wait in the gateway's pool until a vertex includes them. One whose
//! sender's previous nonce, or whose lock, is nowhere in the gateway's history yet is set
//! aside by account until a vertex brings that account's next transaction or the lock is
//! final: each vertex looks at most at a batch's worth of the pool, so the cost of signing
//! one does not grow with what waits.
//!
//! # Conflicts
//!
//! Each machine transaction occupies the slot (sender, nonce); two different transactions
//! in one slot are a double spend. The rules:
//!
//! 1. *Inclusion.* A vertex may include a transaction only if its causal history holds no
//!    transaction of that slot, holds the sender's previous nonce exactly once, and funds the
//!    transfer (credits in the history minus the sender's debits). A vertex that breaks this
//!    is invalid everywhere (the check is a function of the vertex and its history alone).
//! 2. *Endorsement.* A gateway endorses, per slot, the first transaction of that slot that
//!    its own chain of vertices reaches (in a deterministic walk order), and never another.
//!    Merging two histories that include both sides of a double spend is allowed — refusing
//!    would split honest gateways forever — but only the first is endorsed.
//! 3. *Confirmation.* A transaction is confirmed when its vertex is confirmed, q
//!    distinct gateways endorse it, the sender's previous nonce is confirmed as the copy
//!    its history holds (another copy of it may follow a different chain below), and the
//!    confirmed credits in its history (any copy of one; the amount is the same) cover
//!    the sender's debits up to it. Credits that never confirm hold up only the spends
//!    that cannot do without them. A vertex's history is what its parents reach, so a twin
//!    of an equivocating creator is never in it.
//!
//! Two conflicting transactions would need q endorsers each; the two sets share at least
//! 2q − n ≥ f+1 gateways (why q is n − f and not 2f+1 when n > 3f+1), so at least one honest gateway, which endorses one transaction per slot.
//! Hence conflicting spends never both confirm — on one node or across nodes — with at most
//! f faulty gateways. A gateway that signs two vertices with one sequence number is
//! equivocating; the first node to see both emits [`EquivocationEvidence`] and stops
//! referencing that gateway's vertices. A twin counts even when it is refused (a late one
//! may build on history pruned since); if the node pruned the other one, among its last
//! 65,536 pruned vertices, [`Action::PrunedTwin`] names it for the node to read back from
//! its archive. Nor does the confirmed ledger overdraw an account:
//! its confirmed spends form a chain from nonce 0, and the last one's debits are covered
//! by confirmed credits.
//!
//! A gateway includes a transfer only once confirmed credits cover it (a policy, not a
//! rule: it keeps a client's account from depending on a credit that may lose a double
//! spend, which would hold that transfer and every later one of the account forever). A
//! faulty gateway can still include one early; that transfer and the account's later ones
//! then never confirm. Once a double spend is final, a transaction that can never confirm
//! (it lost its slot, or depends on one that did) leaves memory with pruning as
//! [`TxStatus::Rejected`]; a node that keeps its history reports it pending. A slot an
//! equivocator's endorsement could still tip on another node is not called lost: an
//! equivocator endorses along whichever of its forks a node took first.
//!
//! # Anchors
//!
//! When N confirmed vertices or T ms have accumulated, the designated gateway (sequence mod
//! n, or the next one not retired; anyone once it is overdue) proposes an [`Anchor`]: the highest confirmed vertex per
//! gateway, a root chaining the previous root with the Merkle root of the newly covered
//! vertex ids, and the cooperation rewards over those vertices. Every gateway recomputes
//! all of it from its own DAG (status *anchored*) and adds its [`Endorsement`]; once n − f
//! gateways endorsed it, it goes to the main chain, which checks the endorsements (it has
//! no DAG to recompute from; any two quorums share an honest gateway), takes anchors in
//! sequence and pays the rewards from the group's pool. Once the main chain reports an
//! anchor final — with the frontier, which the transaction carries, checked against this
//! node's DAG — the history below it is final.
//!
//! Rewards follow references to other gateways' vertices, discounted by relay delay; lazy
//! gateways (mostly self-references) get nothing. Equivocation evidence goes to the main
//! chain as the two signed vertex headers ([`EquivocationEvidence::tx_kind`]); the main
//! chain records the offender and pays it nothing more.
//!
//! # Pruning
//!
//! History that can no longer change leaves memory, so a gateway under sustained load
//! holds only the recent DAG. A vertex is *pruned* once a final anchor covers it and it is
//! *settled*: for every gateway, some vertex of that gateway that every gateway has seen
//! reaches it (for a gateway this node knows to equivocate, any vertex of it; see below).
//! Then every gateway has endorsed in its slots; for every gateway that has not
//! equivocated, each vertex it signs from now on holds it in its history; and every gateway
//! knows, for each creator, a vertex of it at or above this one (why that matters is
//! below). The ledger rule only ever asks about history, so pruned history can be answered
//! as a whole: an account's slots, in nonce order, once every copy in them is pruned and the
//! slot is decided (one of them confirmed, or none ever can), fold into the account's
//! summary (first unpruned nonce, the slot a spend builds on, credits and the part of them
//! that never confirmed) and pruned locks into a set. What is pruned goes out in
//! [`Action::Pruned`] for the node to archive.
//! Summarising is paced by input time: the slots a final anchor releases are spread over
//! half an anchor interval, so that the work (and the node's archiving of it) takes a
//! steady share of the cores rather than a burst that queues the next vertices. A node
//! replaying its log at start feeds [`Input::SummarisePruned`] between the replayed
//! messages instead: they come far faster than real time, and the pace would leave what
//! they prune in memory.
//!
//! Per gateway, the pruned vertices no pruned vertex of its own builds on (its *pruned
//! tips*) stay in memory: the creator's next vertex names one, an anchor's frontier may,
//! and every held vertex records which of them its history lacks. That makes the rule a
//! new vertex must meet exact, on a pruning node and on one that keeps its history alike:
//! its history must hold every pruned tip. Only a vertex building on an equivocator's fork
//! below them can fail it; it is refused, as is a vertex at or below its creator's highest
//! pruned sequence (pruned history sent again, or a fork of it). Honest gateways never make
//! either. Three further consequences, all deliberate:
//!
//! - A vertex may not name a parent that its creator's previous vertex already reaches
//!   (honest gateways never do). Otherwise a peer could name a pruned vertex that one node
//!   still holds and another does not.
//! - Pruning waits for every gateway: while one is silent, its next vertex may build on
//!   old history, so that history stays ([`Status::awaiting_settling`] counts it). A
//!   gateway gone for good is *retired* by the group's owner on the main chain
//!   ([`Input::Retire`]); pruning then waits for the others only (see below).
//! - An equivocator's vertex is pruned only once its creator's chain goes on from it. A
//!   twin counts as seen by its creator through itself alone; pruned, it would become a
//!   tip the equivocator's own chain (from the other twin) lacks, so a node that pruned
//!   it would refuse that chain's next vertices while a node that pruned later took
//!   them, and their confirmations would part. The abandoned twin stays in memory, and
//!   so do the slots of its transactions, with the later ones of their senders: summing
//!   them up would put them in the history of the equivocator's chain too, which does not
//!   hold them. (A retired equivocator's vertices wait for no chain: see below.)
//!
//! Why settled and not only seen by every gateway: a twin that reaches a node only after
//! the node pruned past its history fails the rule there, while nodes that had it earlier
//! took it. Had an honest gateway built on that twin, a node that pruned could no longer
//! follow that gateway. Settling rules it out. A gateway takes a vertex only with its whole
//! history, and once a vertex is settled every gateway's chain holds, for each creator, a
//! vertex at or above it: a gateway that is then sent a fork of that creator's chain below
//! it holds both sides, reports the equivocation, and references that creator no more. What
//! it referenced before, every node took before it could count that gateway's later
//! vertices towards settling. Settling costs one more round of references: milliseconds
//! under load, one heads interval in an idle group, against the seconds a final anchor
//! takes.
//!
//! Known limits remain. Once this node knows a gateway equivocates, that gateway's bit
//! needs only its chain to reach the vertex, as before settling: gateways no longer
//! reference its vertices, so none of its later ones is ever seen by every gateway, and
//! waiting for one would stop pruning for good. A fork it sends after that to an honest
//! gateway that has not seen the equivocation can still stall this node as above. And with
//! two faulty gateways, a second one that is not the equivocator can build on the late
//! twin, and an honest gateway that has not pruned may reference its vertex, which a node
//! that pruned cannot take. Either way the node stops following that honest gateway, and
//! safety holds: each gateway endorses along its own chain.
//!
//! A node judges a vertex from the same pruned tips whether or not it prunes, and one that
//! keeps its history walks down a new vertex's history no further than a pruning one
//! can: to the pruned tips, whose transactions count for nothing. A late vertex of a
//! gateway that had not reached some pruned history (retired, or known to equivocate)
//! so endorses nothing there on either. The seeded simulation runs every seed both ways
//! and requires every action of every node to match.
//!
//! ## Retired gateways
//!
//! The group's gateways cannot change (the main chain refuses another set), so a gateway that is gone for good (a
//! destroyed box whose key is lost) would hold every node's final history in memory for
//! good. Its owner retires it instead (a `side_retire` transaction). A retired gateway
//! stays one of the group's n: the quorum is unchanged, so the main chain retires at most
//! f (and a node applies at most f to the set it runs with), and a retired gateway counts
//! against the f faults the group tolerates. Once a node learns of it, settling needs,
//! for each gateway not retired, a vertex of it that every gateway not retired has seen;
//! gateways reference the retired one's vertices no more; it names no anchor's proposer;
//! and the retired gateway itself stops signing, proposing and endorsing (the main chain
//! counts no anchor endorsement of it, its key may be in anyone's hands, so gateways
//! submit an anchor only once n − f gateways not retired endorsed it).
//!
//! This holds for an equivocator too, the gateway most worth retiring (a stolen key): its
//! bit is waived whether or not the node knows of its twins, and its own vertices, an
//! abandoned twin among them, are pruned once settled by the others, without waiting for
//! its chain to go on. Kept, the equivocator rule would wait for a chain that a gone
//! gateway never continues, and pruning would stop for good. Pruned, a twin becomes a
//! pruned tip (held, without its transactions) that every new vertex must hold: the
//! gateways not retired do (settling; a known equivocator that is not retired excepted,
//! as above), and a later vertex of the retired gateway that lacks it is refused, as above
//! for history pruned past. Whether a checked history holds a pruned vertex is then
//! answered yes without a search, which could miss a held tip whose vertices above left
//! memory. So that a node that keeps its history acts as a pruning one, either refuses a
//! vertex naming a pruned vertex other than a tip as soon as it arrives, before its other
//! parents do (a pruning node knows the last 65,536 it pruned; one older is asked for,
//! and the vertex waits until it expires). A slot the retired gateway has not endorsed is
//! not called lost while its endorsement could tip it: such a slot stays in memory, with
//! its sender's later ones, as an equivocator's does.
//!
//! A retired gateway's key may be in anyone's hands, and what it signs from now on is
//! never referenced (nothing confirms it, so nothing prunes it either). So a node takes
//! a vertex of a retired gateway only when something here needs it: the node asked for
//! it, as a parent a waiting vertex lacks (one of a gateway that took it before learning
//! of the retirement) or as a vertex the next anchor's frontier names, and still needs
//! it; or another vertex of the same message names it (a catch-up answer), one that the
//! node takes and whose signature verifies. Any other is dropped before its signature is
//! checked, at the cost of a lookup ([`Action::Unneeded`]), and the node neither logs nor
//! relays it; if it is needed later, it is asked for again. A node keeps no anchor
//! endorsement of a retired gateway (the main chain counts none), so the key cannot make
//! its own vertices needed through a proposal. What the node logged it replays whole
//! ([`Input::Replayed`]): it was needed when it came. A retired gateway whose node has
//! not read the retirement yet so counts towards confirmations on a node that has only
//! through the vertices other gateways reference; and a twin of it may go unreported
//! (the main chain pays a retired gateway nothing anyway).
//!
//! A node logs a retirement between the vertices it took before and after learning of
//! it, and a restart replays it there; those made while the node was down are applied
//! after the replay. Applied from the start, the replay could refuse a retired gateway's
//! vertex the node had taken before it knew.
//!
//! This is safe but not exact: nodes learn of the retirement at different times, and a
//! vertex of the retired gateway that reaches a node after the node pruned past that
//! vertex's history is refused there and taken where it came earlier. That can be a
//! vertex it signed before it left that an honest gateway took but that spread slowly
//! (that gateway was cut off), or one it signs when it comes back before its node has
//! read the retirement. An honest gateway that took such a vertex is then no longer
//! followed by the nodes that refused it (safety holds: each gateway endorses along its
//! own chain). So a retired gateway must really be gone, and the group should have run
//! on for a while since it left; one that will come back is brought back (its key, and
//! its `sidechain` directory if that survived), not retired.
//!
//! # Snapshots
//!
//! [`SideChain::snapshot`] encodes the whole state between two inputs (canonically: hash
//! maps in key order) and [`SideChain::restore`] reads it back into a node of the same group
//! with the same gateway key. A node then needs only the messages after the snapshot to
//! rebuild its state, not the whole history. A restored node has restarted: like a new one
//! it signs nothing until its first tick and a listening window after it, so the messages
//! logged after the snapshot (its own later vertices among them) are replayed first. And
//! a gateway never signs while the highest of its own vertices it has seen (from a log or a
//! peer) is above its chain: one that lost the tail of its log stays silent until its chain
//! is back, rather than sign a sequence number twice.
//!
//! In the simulation every node's snapshot must restore to a node with the same snapshot
//! every 97 ms, and a third run restarts the whole network from its snapshots mid-traffic.

mod gateway;
mod group;
mod main_chain;
mod types;

use cpc_types::Hash32;

pub use cpc_types::{Endorsement, SideAnchor as Anchor, SideReward as Reward};
pub use gateway::{
    Action, AnchorStatus, CheckedTxs, Config, Input, MAX_TIPS, RELAY_HALF_MS, REPLAYED, SideChain,
    Status, TxInfo, TxStatus, VertexInfo,
};
pub use group::{Group, MAX_GATEWAYS};
pub use main_chain::inputs_from_block;
pub use types::{
    ANCHOR_DOMAIN, EquivocationEvidence, MACHINE_TX_DOMAIN, MAX_MESSAGE_BYTES, MachineKind,
    MachineTx, Message, SignedAnchor, SignedMachineTx, SignedVertex, Slot, VERTEX_DOMAIN, Vertex,
    VertexId,
};

/// Why the side chain refused something.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SideError {
    /// The group is misconfigured.
    #[error("side-chain group: {0}")]
    Group(String),
    /// A signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The transaction names another group.
    #[error("the transaction is for another group")]
    WrongGroup,
    /// The pool is full.
    #[error("the gateway's pool is full; retry later")]
    PoolFull,
    /// Only gateways take transactions.
    #[error("this node is not a gateway of the group; send the transaction to a gateway")]
    NotGateway,
    /// This gateway stopped signing (see [`SideChain::halt`]).
    #[error("this gateway stopped signing: {0}; send the transaction to another gateway")]
    Halted(String),
    /// A snapshot cannot be restored.
    #[error("side-chain snapshot: {0}")]
    Snapshot(String),
    /// The nonce is below the account's pruned history: that slot is final.
    #[error("nonce {nonce} of this account is already final; use the account's next nonce")]
    NonceFinal {
        /// The nonce.
        nonce: u64,
        /// The refused transaction (the node's archive knows whether it is the final one).
        tx: Hash32,
    },
}
