//! The node's side chain: the `[sidechain]` config section and the gateway task that
//! drives the sans-IO [`SideChain`] with real time, the group's gossip topic, direct
//! answers to peers, anchors sent as main-chain transactions and final main-chain blocks
//! fed back in.
//!
//! The task runs on its own thread: it ticks the state machine every millisecond or so,
//! hands it every side message from the network, and every 100 ms reads the main-chain
//! blocks committed since it last looked (side locks and anchors of the group).
//! The group's gateways come from the main chain (genesis or a `side_group` transaction); the
//! task waits for the group to appear there.
//!
//! The side chain's state lives in memory. So that a restarted node — or a whole network
//! restarted at once — keeps its history, every vertex and anchor the node accepts is
//! appended to a log under `<home>/sidechain`, and once the log outgrows
//! `snapshot_log_mib` the task writes a snapshot of the state machine and starts a new log
//! (see [`crate::side_files`]). At start the task restores the snapshot, feeds the main
//! chain's side inputs since it, and replays the logs after it through the state machine
//! (which also tells a gateway its own last sequence number, so it never signs one twice).
//! A log is read one record at a time. A torn last record is dropped; what it held comes
//! back from peers, and so is a tail of zeros (a crash on some file systems). At a damaged
//! record the replay of that log ends, and the rest of the log is copied aside before
//! anything is cut. A log that cannot be read is left as it is. Final history the state
//! machine prunes goes to the node's store, where the API and peers' requests find it,
//! filed by the final anchor that covers it, so that past `archive_max_mib` the oldest
//! anchors' history can be deleted whole.
//! What the task sends goes out through [`crate::side_outbox`], in order, a message with
//! one of this gateway's vertices only once the log holding it is synced.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use cpc_accel::Dispatcher;
use cpc_api::{SIDE_LATENCY_BUCKETS_MS, SideAccount, SideMetrics, SideService};
use cpc_chain::Chain;
use cpc_p2p::{MessageRef, Network, PeerId, Verdict};
use cpc_sidechain::{
    Action, EquivocationEvidence, Group, Input, Message, REPLAYED, SideChain, SideError,
    SignedMachineTx, SignedVertex, Status, TxInfo, TxStatus, VertexInfo,
};
use cpc_storage::{SideFormat, SideRecord};
use cpc_types::codec::{Decode, DecodeError, Reader, decode_exact};
use cpc_types::{Address, Encode, Hash32, PublicKey, SecretKey, Transaction, TxKind};
use serde::{Deserialize, Serialize};

use crate::side_files::{LogRecord, SideFiles, SideLog, Snapshot};
use crate::side_outbox::{Durable, Outgoing, Part, Refused};

/// The `[sidechain]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SideSection {
    /// The group this node follows: its name, or its id as 64 hex digits; empty for none.
    pub(crate) group: String,
    /// Whether this node is a gateway of the group (signs vertices with its validator key).
    pub(crate) gateway: bool,
    /// Milliseconds between two vertices of this gateway.
    pub(crate) vertex_interval_ms: u64,
    /// Anchor once this many confirmed vertices are not anchored yet.
    pub(crate) anchor_every_vertices: u64,
    /// Or once this many milliseconds passed since the last final anchor.
    pub(crate) anchor_interval_ms: u64,
    /// Most machine transactions in one vertex.
    pub(crate) max_batch: usize,
    /// Most machine transactions waiting in this gateway's pool.
    pub(crate) max_pool: usize,
    /// Drops final history from memory into the node's store (the API and peers catching
    /// up read it there); `false` keeps every vertex and transaction in memory.
    pub(crate) prune_history: bool,
    /// Once the side-chain log passes this many MiB (and the last snapshot's size), the
    /// node writes a snapshot of its side-chain state and starts a new log, so that a
    /// restart replays at most about this much; 0 never does.
    pub(crate) snapshot_log_mib: u64,
    /// Syncs the log before a vertex of this gateway leaves the node, so that a power loss
    /// cannot make it sign a sequence number twice; `false` only for a disk that survives
    /// power loss (or to measure what syncing costs).
    pub(crate) sync_log: bool,
    /// The most MiB of final history the node's store keeps (pruned vertices and
    /// transactions, for the API and peers catching up): past it, the history of the
    /// oldest anchors is deleted; 0 keeps it all.
    pub(crate) archive_max_mib: u64,
}

impl Default for SideSection {
    fn default() -> Self {
        Self {
            group: String::new(),
            gateway: false,
            vertex_interval_ms: 5,
            anchor_every_vertices: 1000,
            anchor_interval_ms: 5000,
            max_batch: 2000,
            max_pool: 100_000,
            prune_history: true,
            snapshot_log_mib: 256,
            sync_log: true,
            archive_max_mib: 0,
        }
    }
}

/// The id of a group given by name, or by its id as 64 hex digits.
pub(crate) fn group_id_of(name_or_id: &str) -> Hash32 {
    match name_or_id.parse::<Hash32>() {
        Ok(id) if name_or_id.len() == 64 => id,
        _ => Group::id_of(name_or_id),
    }
}

impl SideSection {
    /// The group id, `None` when the node follows no group.
    pub(crate) fn group_id(&self) -> Option<Hash32> {
        let g = self.group.trim();
        (!g.is_empty()).then(|| group_id_of(g))
    }

    /// Checks the settings, with an error that names the field and its range.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.gateway && self.group_id().is_none() {
            bail!("sidechain.gateway is true but sidechain.group is empty: name the group");
        }
        if !(1..=60_000).contains(&self.vertex_interval_ms) {
            bail!(
                "sidechain.vertex_interval_ms is {}; use 1 to 60000 milliseconds",
                self.vertex_interval_ms
            );
        }
        if self.anchor_every_vertices == 0 {
            bail!("sidechain.anchor_every_vertices must be at least 1");
        }
        if !(100..=86_400_000).contains(&self.anchor_interval_ms) {
            bail!(
                "sidechain.anchor_interval_ms is {}; use 100 ms to one day (86400000)",
                self.anchor_interval_ms
            );
        }
        if !(1..=10_000).contains(&self.max_batch) {
            bail!(
                "sidechain.max_batch is {}; use 1 to 10000 transactions",
                self.max_batch
            );
        }
        if self.max_pool == 0 {
            bail!("sidechain.max_pool must be at least 1");
        }
        if self.snapshot_log_mib > 1 << 20 {
            bail!(
                "sidechain.snapshot_log_mib is {}; use 0 (no snapshots) to 1048576 MiB",
                self.snapshot_log_mib
            );
        }
        if self.archive_max_mib > 1 << 30 {
            bail!(
                "sidechain.archive_max_mib is {}; use 0 (keep all final history) to 1073741824 MiB",
                self.archive_max_mib
            );
        }
        Ok(())
    }

    fn side_config(&self, group: Group) -> cpc_sidechain::Config {
        let mut c = cpc_sidechain::Config::new(group);
        c.vertex_interval_ms = self.vertex_interval_ms;
        c.anchor_every_vertices = self.anchor_every_vertices;
        c.anchor_interval_ms = self.anchor_interval_ms;
        c.max_batch = self.max_batch;
        c.max_pool = self.max_pool;
        c.prune_history = self.prune_history;
        c
    }
}

/// Largest side message sent to one peer; longer answers are split.
const DIRECT_BYTES: usize = 1 << 20;
/// Side messages waiting for the task before the network's are dropped unrelayed.
const QUEUE: usize = 8192;

/// Pruned transactions waiting for the archive before the gateway task waits for it.
const MAX_IN_FLIGHT: usize = 500_000;

/// What of a received message goes to the side-chain log.
enum ToLog {
    Nothing,
    /// Its encoding as received (decoding checked it is one message).
    AsReceived,
    /// The new vertices of a list that held known ones too.
    Only(Vec<SignedVertex>),
}

impl ToLog {
    /// What of a received message goes to the log, before the state machine takes it:
    /// new vertices, and an anchor with endorsements this node lacks; what it knows
    /// already is not logged again. With it, the verdict on the message when that is
    /// known already: vertices or an anchor that hold nothing this node lacks are not
    /// relayed (a peer repeating one, or sending what lies below every gateway's
    /// history, grows neither the logs nor the traffic), and an anchor no gateway would
    /// send (endorsements repeated, unsorted, or by outsiders) is refused.
    fn of(side: Option<&SideChain>, m: &Message) -> (ToLog, Option<Verdict>) {
        let Some(side) = side else {
            return (ToLog::Nothing, None);
        };
        let to_log = match m {
            Message::Anchor(a) if !side.anchor_well_formed(a) => {
                return (ToLog::Nothing, Some(Verdict::Reject));
            }
            Message::Vertex(v) if side.is_new(v) => ToLog::AsReceived,
            Message::Vertices(vs) => {
                let new: Vec<_> = vs.iter().filter(|v| side.is_new(v)).collect();
                if new.len() == vs.len() {
                    ToLog::AsReceived
                } else if new.is_empty() {
                    ToLog::Nothing
                } else {
                    ToLog::Only(new.into_iter().cloned().collect())
                }
            }
            Message::Anchor(a) if !side.fresh_endorsements(a).is_empty() => ToLog::AsReceived,
            _ => ToLog::Nothing,
        };
        let no_news = matches!(to_log, ToLog::Nothing)
            && matches!(
                m,
                Message::Vertex(_) | Message::Vertices(_) | Message::Anchor(_)
            );
        (to_log, no_news.then_some(Verdict::Ignore))
    }

    /// The record to append once the state machine has judged the message (`data`, as
    /// received): the vertices it rejected there (a bad signature, a broken structure)
    /// are left out, so that a peer sending garbage cannot grow the log.
    fn record<'a>(self, data: &'a [u8], rejected: &BTreeSet<Hash32>) -> Option<Cow<'a, [u8]>> {
        let keep = |vs: Vec<SignedVertex>| {
            let vs: Vec<SignedVertex> = vs
                .into_iter()
                .filter(|v| !rejected.contains(&v.id))
                .collect();
            (!vs.is_empty()).then(|| Cow::Owned(Message::Vertices(vs).encode()))
        };
        match self {
            ToLog::Nothing => None,
            ToLog::Only(vs) => keep(vs),
            ToLog::AsReceived if rejected.is_empty() => Some(Cow::Borrowed(data)),
            // Rare: decoding it again beats copying every message in case.
            ToLog::AsReceived => match Message::decode_untrusted(data) {
                Ok(Message::Vertex(v)) if rejected.contains(&v.id) => None,
                Ok(Message::Vertices(vs)) if vs.iter().any(|v| rejected.contains(&v.id)) => {
                    keep(vs)
                }
                _ => Some(Cow::Borrowed(data)),
            },
        }
    }
}

/// The vertices the state machine rejected, by its actions, and does not hold or await
/// after all: an id names a vertex without its signature, so a forged copy may be
/// rejected in the very message whose good copy was taken. A refused twin is not among
/// them: it proves its creator equivocates, and a node restored from a snapshot taken
/// before it learns that again only by replaying it from the log (otherwise it would go
/// on waiting for that creator's vertices to settle, and prune nothing more). The state
/// machine reports a creator's refused twin once, so a peer cannot grow the log with it.
fn rejected_vertices(actions: &[Action], side: &SideChain) -> BTreeSet<Hash32> {
    let twin = |id: &Hash32| {
        actions.iter().any(|a| match a {
            Action::Equivocation(ev) => ev.first.id == *id || ev.second.id == *id,
            Action::PrunedTwin { vertex, .. } => vertex.id == *id,
            _ => false,
        })
    };
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Rejected { vertex, .. } if !side.known(vertex) && !twin(vertex) => {
                Some(*vertex)
            }
            _ => None,
        })
        .collect()
}

/// Whether the state machine found a vertex whose signature fails or whose form is
/// broken, which no honest node sends.
fn malformed(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::Rejected {
                malformed: true,
                ..
            }
        )
    })
}

/// The ids of the vertices a message carries.
fn vertex_ids(msg: &Message) -> Vec<Hash32> {
    match msg {
        Message::Vertex(v) => vec![v.id],
        Message::Vertices(vs) => vs.iter().map(|v| v.id).collect(),
        _ => Vec::new(),
    }
}

/// What a received message comes to once the state machine (`side`, if the node follows
/// the group yet) judged it in `actions`: the vertices to leave out of the log, and the
/// verdict on gossiping it on (`vertices`: the ids of those it carries).
///
/// The rejected vertices (see [`rejected_vertices`]) are left out, and a message of one
/// gets the sender penalised, as does any message with a vertex whose signature fails
/// or whose form is broken (no honest node sends one, and checking a list of them costs
/// a signature check per transaction). So are a retired gateway's vertices that the
/// state machine dropped unchecked, nothing needing them ([`Action::Unneeded`]), but
/// they are not held against the peer, which may not know of the retirement yet, and a
/// message of only such vertices is not relayed. A refused twin is relayed: it is
/// evidence, and the peer that sent it may be an honest gateway that took it before this
/// node pruned.
///
/// A list of vertices (`list`) is never relayed: honest nodes send lists only to one peer
/// (answers), never to the topic, and a relay could not vouch for a list holding copies
/// of vertices it has (an id leaves the signature out, so a forged copy is skipped here
/// unchecked) — a node that checks that copy would count it against the relay.
fn judge(
    actions: &[Action],
    side: Option<&SideChain>,
    vertices: &[Hash32],
    list: bool,
) -> (BTreeSet<Hash32>, Verdict) {
    // Not following the group yet: relay nothing unchecked.
    let Some(side) = side else {
        return (BTreeSet::new(), Verdict::Ignore);
    };
    let mut left_out = rejected_vertices(actions, side);
    let unneeded: BTreeSet<Hash32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Unneeded { vertex } => Some(*vertex),
            _ => None,
        })
        .collect();
    let rejected = malformed(actions) || (vertices.len() == 1 && left_out.contains(&vertices[0]));
    left_out.extend(unneeded);
    let verdict = if rejected {
        Verdict::Reject
    } else if list || (!vertices.is_empty() && vertices.iter().all(|id| left_out.contains(id))) {
        Verdict::Ignore
    } else {
        Verdict::Accept
    };
    (left_out, verdict)
}

/// A side message from the network: its author, the gossip message (for the verdict) and
/// the payload.
pub(crate) type Incoming = (PeerId, Option<MessageRef>, Vec<u8>);

#[derive(Default)]
struct Meter {
    m: SideMetrics,
    /// (time, vertices, confirmed txs) once a second, for the rates.
    samples: VecDeque<(Instant, u64, u64)>,
}

impl Meter {
    fn confirmed(&mut self, latency_ms: u64) {
        self.m.txs_confirmed_total += 1;
        self.m.latency_sum_ms += latency_ms;
        if self.m.latency_counts.len() != SIDE_LATENCY_BUCKETS_MS.len() + 1 {
            self.m.latency_counts = vec![0; SIDE_LATENCY_BUCKETS_MS.len() + 1];
        }
        let i = SIDE_LATENCY_BUCKETS_MS
            .iter()
            .position(|le| latency_ms <= *le)
            .unwrap_or(SIDE_LATENCY_BUCKETS_MS.len());
        self.m.latency_counts[i] += 1;
    }

    fn sample(&mut self, now: Instant) {
        if self
            .samples
            .back()
            .is_some_and(|(t, _, _)| now.duration_since(*t) < Duration::from_secs(1))
        {
            return;
        }
        self.samples
            .push_back((now, self.m.vertices_total, self.m.txs_confirmed_total));
        while self.samples.len() > 6 {
            self.samples.pop_front();
        }
        if let (Some(a), Some(b)) = (self.samples.front(), self.samples.back()) {
            let ms = u64::try_from(b.0.duration_since(a.0).as_millis()).unwrap_or(u64::MAX);
            if let (Some(v), Some(t)) = (
                ((b.1 - a.1) * 1000).checked_div(ms),
                ((b.2 - a.2) * 1000).checked_div(ms),
            ) {
                self.m.vertices_per_second = v;
                self.m.txs_per_second = t;
            }
        }
    }
}

/// The node's side chain, shared by the gateway task and the API.
pub(crate) struct SideNode {
    group_id: Hash32,
    accel: Arc<Dispatcher>,
    side: Mutex<Option<SideChain>>,
    meter: Mutex<Meter>,
    /// Whose store archives what the side chain prunes.
    chain: Arc<Chain>,
    in_flight: Mutex<InFlight>,
    /// Records replayed from the log so far while the replay at start runs, else
    /// [`NOT_REPLAYING`]: the API says why the group is not served yet.
    replaying: AtomicU64,
    /// Set once a write of pruned history to the store failed: only the logs hold it, so
    /// no snapshot may replace them.
    archive_failed: AtomicBool,
    /// Set once the outbox found the log unsyncable: this gateway's vertices no longer
    /// leave, and the task stops it signing.
    log_lost: AtomicBool,
    /// The archive's size and the first anchor it keeps, for the metrics: atomics, so
    /// that the archive thread, which runs at a low priority, takes no lock the gateway
    /// task waits for.
    archive_bytes: AtomicU64,
    archive_kept_from: AtomicU64,
    /// Batches of pruned history the archive thread wrote to the store: the gateway task
    /// then takes them out of `in_flight` (the archive thread, at a low priority, takes
    /// no lock the gateway task waits for: preempted holding it, it would stall it).
    archived_batches: AtomicU64,
}

/// `SideNode::replaying` when no replay runs.
const NOT_REPLAYING: u64 = u64::MAX;

/// A pruned transaction as the archive keeps it, in the canonical encoding: its status,
/// when it was first seen, its latency and the vertices that hold it; its body only when
/// none does (it was refused), as the vertices hold it otherwise.
struct TxRecord {
    status: TxStatus,
    first_seen_ms: u64,
    latency_ms: Option<u64>,
    vertices: Vec<Hash32>,
    body: Option<SignedMachineTx>,
}

impl TxRecord {
    fn encode(t: &TxInfo) -> Vec<u8> {
        let mut rec = Vec::with_capacity(64 + 32 * t.vertices.len());
        t.status.encode_to(&mut rec);
        t.first_seen_ms.encode_to(&mut rec);
        t.latency_ms.encode_to(&mut rec);
        t.vertices.encode_to(&mut rec);
        t.vertices.is_empty().then_some(&*t.tx).encode_to(&mut rec);
        rec
    }
}

impl Decode for TxRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxRecord {
            status: TxStatus::decode_from(r)?,
            first_seen_ms: u64::decode_from(r)?,
            latency_ms: Option::<u64>::decode_from(r)?,
            vertices: Vec::<Hash32>::decode_from(r)?,
            body: Option::<SignedMachineTx>::decode_from(r)?,
        })
    }
}

/// Pruned history on its way to the store, by id: the archive thread writes it while
/// lookups still find it here.
#[derive(Default)]
struct InFlight {
    vertices: HashMap<Hash32, Arc<VertexInfo>>,
    txs: HashMap<Hash32, Arc<TxInfo>>,
}

/// What the archive thread knows of the store's side-chain archive, to keep it under
/// `archive_max_mib`: the bytes filed under each final anchor.
#[derive(Default)]
struct Retention {
    /// Bytes per anchor, oldest first.
    sizes: BTreeMap<u64, u64>,
    /// Their sum.
    total: u64,
    /// The most the archive keeps; 0: no limit.
    max_bytes: u64,
    /// The first anchor whose history is kept (0: none was deleted).
    kept_from: u64,
    /// The newest anchor filed under so far.
    newest: u64,
    /// The newest anchor the store held history of at start.
    loaded: Option<u64>,
}

impl Retention {
    /// Reads what the store holds of group `group`.
    fn load(store: &cpc_storage::Store, group: &Hash32, max_bytes: u64) -> Retention {
        let (sizes, kept_from) = store.side_archive_sizes(group).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the side-chain archive's sizes; archive_max_mib counts only what this run archives");
            (Vec::new(), 0)
        });
        let mut r = Retention {
            max_bytes,
            kept_from,
            newest: kept_from,
            loaded: sizes.last().map(|(a, _)| *a),
            ..Retention::default()
        };
        r.add(&sizes);
        r
    }

    /// The anchor a record covered by `anchor` is filed under: that one, or the newest
    /// one so far for a record no anchor covers.
    fn file(&mut self, anchor: Option<u64>) -> u64 {
        let a = anchor.unwrap_or(self.newest);
        self.newest = self.newest.max(a);
        a
    }

    fn add(&mut self, added: &[(u64, u64)]) {
        for &(anchor, bytes) in added {
            *self.sizes.entry(anchor).or_default() += bytes;
            self.total += bytes;
            self.newest = self.newest.max(anchor);
        }
    }

    /// The anchor up to which to delete history to come under the limit; the newest
    /// anchor's history always stays.
    fn over(&self) -> Option<u64> {
        if self.max_bytes == 0 || self.total <= self.max_bytes {
            return None;
        }
        let mut left = self.total;
        let mut upto = None;
        for (&anchor, &bytes) in self.sizes.iter().take(self.sizes.len() - 1) {
            left -= bytes;
            upto = Some(anchor);
            if left <= self.max_bytes {
                break;
            }
        }
        upto
    }

    /// The store deleted the history up to `upto`.
    fn forgot(&mut self, upto: u64) {
        let kept = self.sizes.split_off(&(upto + 1));
        self.total -= self.sizes.values().sum::<u64>();
        self.sizes = kept;
        self.kept_from = self.kept_from.max(upto + 1);
    }
}

/// The archive's records as the store reads them to forget them: vertex records hold
/// their transactions, transaction records their status.
struct ArchiveFormat;

impl SideFormat for ArchiveFormat {
    fn txs_of(&self, vertex: &[u8]) -> Vec<Hash32> {
        decode_exact::<VertexInfo>(vertex).map_or_else(
            |e| {
                tracing::warn!(error = %e, "an archived side-chain vertex does not decode; its transactions stay in the store");
                Vec::new()
            },
            |v| v.vertex.vertex.txs.iter().map(SignedMachineTx::hash).collect(),
        )
    }

    fn final_anchor(&self, tx: &[u8]) -> Option<u64> {
        match decode_exact::<TxRecord>(tx).map(|t| t.status) {
            Ok(TxStatus::Final { anchor }) => Some(anchor),
            _ => None,
        }
    }
}

/// One batch for the archive thread.
type ArchiveBatch = (Vec<Arc<VertexInfo>>, Vec<(Hash32, Arc<TxInfo>)>);

/// Work for the archive thread, done in order.
enum ArchiveJob {
    /// Pruned history; `replayed` when a restart pruned it again (the store may have it).
    Batch { batch: ArchiveBatch, replayed: bool },
    /// Answered once every batch sent before it is written.
    Barrier(std::sync::mpsc::Sender<()>),
}

impl SideNode {
    /// The side chain of group `group_id`, before the group opens.
    fn new(group_id: Hash32, accel: Arc<Dispatcher>, chain: Arc<Chain>) -> SideNode {
        SideNode {
            group_id,
            accel,
            side: Mutex::new(None),
            meter: Mutex::new(Meter::default()),
            chain,
            in_flight: Mutex::new(InFlight::default()),
            replaying: AtomicU64::new(NOT_REPLAYING),
            archive_failed: AtomicBool::new(false),
            log_lost: AtomicBool::new(false),
            archive_bytes: AtomicU64::new(0),
            archive_kept_from: AtomicU64::new(0),
            archived_batches: AtomicU64::new(0),
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a batch of pruned history to the store, each record filed under the final
    /// anchor that covers it. A failed write loses only what the API and peers could read
    /// back: the side-chain log still holds the history.
    fn write_archive(&self, (vertices, txs): &ArchiveBatch, replayed: bool, kept: &mut Retention) {
        let mut vs: Vec<SideRecord> = vertices
            .iter()
            .map(|v| SideRecord {
                anchor: kept.file(v.anchor),
                id: v.vertex.id,
                value: VertexInfo::encode(v),
                indexed: true,
            })
            .collect();
        let mut ts: Vec<SideRecord> = txs
            .iter()
            .map(|(hash, t)| {
                // A final transaction goes with the vertex that made it final (which
                // carries its anchor), one that never confirms with the newest history.
                let anchor = match t.status {
                    TxStatus::Final { anchor } if !t.vertices.is_empty() => Some(anchor),
                    _ => None,
                };
                SideRecord {
                    anchor: kept.file(anchor),
                    id: *hash,
                    value: TxRecord::encode(t),
                    indexed: anchor.is_none(),
                }
            })
            .collect();
        // In key order: the memtable then inserts each next to the last, instead of
        // searching its skip list from the top for every random hash.
        vs.sort_unstable_by_key(|r| r.id);
        ts.sort_unstable_by_key(|r| r.id);
        // History filed under an anchor the store held at start may be there already: a
        // replay prunes it again, and so does a node rebuilding from peers.
        let may_exist = replayed
            || vs
                .iter()
                .chain(&ts)
                .any(|r| kept.loaded.is_some_and(|n| r.anchor <= n));
        let store = self.chain.store();
        match store.side_archive(&self.group_id, &vs, &ts, may_exist) {
            Ok(added) => kept.add(&added),
            Err(e) => {
                self.archive_failed.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot archive pruned side-chain history; the API will not find it");
            }
        }
        if let Some(upto) = kept.over() {
            match store.side_forget(&self.group_id, upto, &ArchiveFormat) {
                Ok(_) => kept.forgot(upto),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete old side-chain history from the store; it keeps growing");
                    kept.max_bytes = 0;
                }
            }
        }
        self.show_archive(kept);
    }

    /// Publishes the archive's size and reach to the metrics.
    fn show_archive(&self, kept: &Retention) {
        self.archive_bytes.store(kept.total, Ordering::Relaxed);
        self.archive_kept_from
            .store(kept.kept_from, Ordering::Relaxed);
    }

    /// A record of the store's archive; a read error is logged and reads as none.
    fn read_archive(read: Result<Option<Vec<u8>>, cpc_storage::StorageError>) -> Option<Vec<u8>> {
        read.inspect_err(|e| tracing::warn!(error = %e, "cannot read the side-chain archive"))
            .ok()?
    }

    /// A vertex from the archive.
    fn archived_vertex(&self, id: &Hash32) -> Option<VertexInfo> {
        if let Some(v) = self.in_flight().vertices.get(id) {
            return Some(VertexInfo::clone(v));
        }
        let rec = Self::read_archive(self.chain.store().side_vertex(&self.group_id, id))?;
        decode_exact::<VertexInfo>(&rec)
            .inspect_err(|e| tracing::warn!(%id, error = %e, "an archived side-chain vertex does not decode"))
            .ok()
    }

    /// Whether the archive holds transaction `hash` (without reading its body).
    fn is_archived_tx(&self, hash: &Hash32) -> bool {
        self.in_flight().txs.contains_key(hash)
            || Self::read_archive(self.chain.store().side_tx(&self.group_id, hash)).is_some()
    }

    /// A transaction from the archive, its body from a vertex that holds it (held in
    /// memory, or archived).
    fn archived_tx(&self, hash: &Hash32) -> Option<TxInfo> {
        if let Some(t) = self.in_flight().txs.get(hash) {
            return Some(TxInfo::clone(t));
        }
        let rec = Self::read_archive(self.chain.store().side_tx(&self.group_id, hash))?;
        let rec = decode_exact::<TxRecord>(&rec)
            .inspect_err(|e| tracing::warn!(%hash, error = %e, "an archived side-chain transaction does not decode"))
            .ok()?;
        let tx = rec.body.or_else(|| {
            rec.vertices.iter().find_map(|id| {
                let v = SideService::vertex(self, id)?;
                v.vertex.vertex.txs.into_iter().find(|t| t.hash() == *hash)
            })
        })?;
        Some(TxInfo {
            tx: Box::new(tx),
            status: rec.status,
            first_seen_ms: rec.first_seen_ms,
            latency_ms: rec.latency_ms,
            vertices: rec.vertices,
        })
    }

    /// Why the group is not served yet.
    fn not_ready(&self) -> String {
        match self.replaying.load(Ordering::Relaxed) {
            NOT_REPLAYING => "the side-chain group is not on the main chain yet (declare it with \
                 a side_group transaction or in genesis); the node waits for it"
                .into(),
            n => format!(
                "the node is replaying its side-chain log ({n} records so far); retry once it \
                 is done"
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SideChain>> {
        self.side.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SideService for SideNode {
    fn submit(&self, txs: Vec<SignedMachineTx>) -> Vec<Result<Hash32, SideError>> {
        // Signatures are checked before taking the lock, so that a large submission does
        // not hold up the gateway task's vertices.
        let checked = SideChain::check_signatures(&self.accel, txs);
        let res = match self.lock().as_mut() {
            Some(s) => s.submit_checked(cpc_api::now_ms(), checked),
            None => {
                let why = self.not_ready();
                (0..checked.len())
                    .map(|_| Err(SideError::Group(why.clone())))
                    .collect()
            }
        };
        // A transaction sent again after it became final and was pruned is the same one.
        let res: Vec<_> = res
            .into_iter()
            .map(|r| match r {
                Err(SideError::NonceFinal { tx, .. }) if self.is_archived_tx(&tx) => Ok(tx),
                r => r,
            })
            .collect();
        self.meter().m.txs_submitted_total += res.iter().filter(|r| r.is_ok()).count() as u64;
        res
    }

    fn tx(&self, hash: &Hash32) -> Option<TxInfo> {
        let held = self.lock().as_ref()?.tx(hash).cloned();
        held.or_else(|| self.archived_tx(hash))
    }

    fn vertex(&self, id: &Hash32) -> Option<VertexInfo> {
        let held = self.lock().as_ref()?.vertex(id).cloned();
        held.or_else(|| self.archived_vertex(id))
    }

    fn status(&self) -> Result<Status, String> {
        self.lock()
            .as_ref()
            .map(SideChain::status)
            .ok_or_else(|| self.not_ready())
    }

    fn account(&self, address: &Address) -> SideAccount {
        let guard = self.lock();
        let (next_nonce, balance) = guard.as_ref().map_or((0, 0), |s| {
            (s.next_nonce(address), s.confirmed_balance(address))
        });
        SideAccount {
            address: *address,
            next_nonce,
            balance,
        }
    }

    fn archive_kept_from(&self) -> u64 {
        self.archive_kept_from.load(Ordering::Relaxed)
    }

    fn metrics(&self) -> SideMetrics {
        let eq = self.lock().as_ref().map_or(0, SideChain::equivocations);
        let mut m = self.meter().m.clone();
        m.equivocations_total = eq;
        m.archive_bytes = self.archive_bytes.load(Ordering::Relaxed);
        m.archive_kept_from = self.archive_kept_from.load(Ordering::Relaxed);
        if m.latency_counts.is_empty() {
            m.latency_counts = vec![0; SIDE_LATENCY_BUCKETS_MS.len() + 1];
        }
        m
    }
}

/// A running side chain: the state the API reads, the queue the network feeds, the thread.
pub(crate) struct SideHandle {
    pub(crate) node: Arc<SideNode>,
    pub(crate) group: [u8; 32],
    pub(crate) incoming: SyncSender<Incoming>,
    pub(crate) thread: std::thread::JoinHandle<()>,
}

/// Joins the group's topic and starts the gateway task; `None` when the config names no
/// group.
pub(crate) fn start(
    section: &crate::side::SideSection,
    chain: Arc<Chain>,
    accel: Arc<Dispatcher>,
    net: &Network,
    stop: Arc<AtomicBool>,
    dir: &Path,
) -> Result<Option<SideHandle>> {
    section.validate()?;
    let Some(group_id) = section.group_id() else {
        return Ok(None);
    };
    let key = if section.gateway {
        match chain.key() {
            Some(k) => Some(k.clone()),
            None => bail!(
                "sidechain.gateway is true but the node has no key (node.key_file): a gateway \
                 signs vertices and anchors with it"
            ),
        }
    } else {
        None
    };
    net.join_side_group(group_id.0);
    let node = Arc::new(SideNode::new(group_id, accel.clone(), chain.clone()));
    // Serializing and writing pruned history takes milliseconds per anchor; the gateway
    // task hands it over and goes on with its vertices.
    // Unbounded: what a batch holds is in flight already (see `Task::archive` for the bound).
    let (archiver, batches) = std::sync::mpsc::channel::<ArchiveJob>();
    {
        let node = node.clone();
        let max_bytes = section.archive_max_mib << 20;
        std::thread::Builder::new()
            .name("cpc-side-archive".into())
            .spawn(move || {
                lower_priority();
                let mut kept = Retention::load(node.chain.store(), &node.group_id, max_bytes);
                node.show_archive(&kept);
                while let Ok(job) = batches.recv() {
                    let ((vertices, txs), replayed) = match job {
                        ArchiveJob::Batch { batch, replayed } => (batch, replayed),
                        ArchiveJob::Barrier(done) => {
                            let _ = done.send(());
                            continue;
                        }
                    };
                    // Small writes, so that no burst holds the cores for long.
                    for part in vertices.chunks(64) {
                        node.write_archive(&(part.to_vec(), Vec::new()), replayed, &mut kept);
                    }
                    for part in txs.chunks(1024) {
                        node.write_archive(&(Vec::new(), part.to_vec()), replayed, &mut kept);
                    }
                    node.archived_batches.fetch_add(1, Ordering::Release);
                }
            })?;
    }
    let outbox = {
        let node = node.clone();
        crate::side_outbox::start(net.clone(), group_id.0, move |d| {
            let m = &mut node.meter().m;
            m.withheld_total += d.withheld;
            m.log_syncs_total += d.syncs;
            m.log_sync_us_total += d.sync_time.as_micros() as u64;
            if d.log_failed {
                node.log_lost.store(true, Ordering::Relaxed);
            }
        })?
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let files = SideFiles::new(dir, group_id);
    let task = Task {
        outbox,
        outbox_gone: std::cell::Cell::new(false),
        outbox_full: std::cell::Cell::new(false),
        log_failed: false,
        halted: false,
        log: SideLog::new(files.log(0)),
        files,
        log_id: 0,
        snapshot_len: 0,
        writer: None,
        snapshots_off: false,
        archiver,
        unarchived: std::cell::RefCell::new(VecDeque::new()),
        archived: std::cell::Cell::new(0),
        node: node.clone(),
        section: section.clone(),
        chain,
        accel,
        net: net.clone(),
        key,
        peers: BTreeMap::new(),
        tokens: Vec::new(),
        fed: 0,
        warned: false,
        reported: BTreeSet::new(),
        watch: Watch::default(),
    };
    let thread = std::thread::Builder::new()
        .name("cpc-sidechain".into())
        .spawn(move || task.run(&rx, &stop))?;
    tracing::info!(group = %group_id, gateway = section.gateway, "side chain started");
    Ok(Some(SideHandle {
        node,
        group: group_id.0,
        incoming: tx,
        thread,
    }))
}

struct Task {
    /// The log appended to (once the group is open).
    log: SideLog,
    files: SideFiles,
    /// The number of `log`.
    log_id: u64,
    /// The size of the last snapshot: a log shorter than that is cheaper to replay.
    snapshot_len: u64,
    /// The thread writing a snapshot, if one is.
    writer: Option<std::thread::JoinHandle<Result<(), String>>>,
    /// Set after a snapshot failed: the logs it would have removed stay needed.
    snapshots_off: bool,
    /// To the archive thread.
    archiver: std::sync::mpsc::Sender<ArchiveJob>,
    /// The ids of the batches sent to the archive thread and still in flight, oldest
    /// first, and how many batches left flight before them (see `drop_archived`).
    unarchived: std::cell::RefCell<VecDeque<(Vec<Hash32>, Vec<Hash32>)>>,
    archived: std::cell::Cell<u64>,
    /// What this node sends goes out through it.
    outbox: crate::side_outbox::Sender,
    /// Set once the outbox thread is found gone (reported once).
    outbox_gone: std::cell::Cell<bool>,
    /// Set while the outbox is full (reported once per spell).
    outbox_full: std::cell::Cell<bool>,
    /// A log this gateway's vertices are in could not be synced: they no longer leave.
    log_failed: bool,
    /// Set once this gateway stopped signing (a failed log, or it was retired).
    halted: bool,
    node: Arc<SideNode>,
    section: SideSection,
    chain: Arc<Chain>,
    accel: Arc<Dispatcher>,
    net: Network,
    key: Option<SecretKey>,
    /// Opaque peer tokens of the state machine.
    peers: BTreeMap<PeerId, u64>,
    tokens: Vec<PeerId>,
    /// Main-chain height fed so far.
    fed: u64,
    warned: bool,
    /// Gateways whose equivocation this node reported.
    reported: BTreeSet<PublicKey>,
    /// Which gateways are silent.
    watch: Watch,
}

/// How long a gateway may send no vertex while final history waits for it, before the
/// node says so.
const SILENT: Duration = Duration::from_secs(60);

/// A gateway as the [`Watch`] last saw it.
struct Watched {
    tip: Option<Hash32>,
    since: Instant,
    awaiting: u64,
    reported: bool,
}

/// What the [`Watch`] noticed.
#[derive(Debug, PartialEq, Eq)]
enum Noticed {
    /// A gateway sent no vertex for this long while final history piled up.
    Silent(PublicKey, Duration),
    /// A gateway reported silent sent a vertex again.
    Back(PublicKey),
}

/// Finds the gateways whose silence keeps final history in memory. Silence is timed on
/// this node's clock from when it last saw the gateway's latest vertex change (from the
/// first look at first, so a restart does not count the time it was down), and counts
/// only while final history piles up: an idle group is silent by design.
#[derive(Default)]
struct Watch {
    gateways: BTreeMap<PublicKey, Watched>,
}

impl Watch {
    fn observe(&mut self, status: &Status, now: Instant) -> Vec<Noticed> {
        let mut noticed = Vec::new();
        for (i, key) in status.gateways.iter().enumerate() {
            let tip = status.tips.get(i).copied().flatten();
            let fresh = || Watched {
                tip,
                since: now,
                awaiting: status.awaiting_settling,
                reported: false,
            };
            let w = self.gateways.entry(*key).or_insert_with(fresh);
            if w.tip != tip {
                if w.reported {
                    noticed.push(Noticed::Back(*key));
                }
                *w = fresh();
                continue;
            }
            let silent = now.duration_since(w.since);
            if !w.reported
                && status.gateway != Some(*key)
                && !status.equivocators.contains(key)
                && !status.retired.contains(key)
                && silent > SILENT
                && status.awaiting_settling > w.awaiting
            {
                w.reported = true;
                noticed.push(Noticed::Silent(*key, silent));
            }
        }
        noticed
    }
}

impl Task {
    fn run(mut self, rx: &Receiver<Incoming>, stop: &AtomicBool) {
        // Every millisecond whatever the vertex interval: a vertex is due as soon as the
        // interval since the last one has passed, not at the next multiple of it (a tick
        // with nothing to do costs microseconds).
        let tick = Duration::from_millis(1);
        let mut next_tick = Instant::now();
        let mut next_feed = Instant::now();
        let mut next_watch = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(m) => {
                    self.on_incoming(m);
                    // Take what else is queued before ticking.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(m) => self.on_incoming(m),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            if now >= next_feed {
                next_feed = now + Duration::from_millis(100);
                self.feed_main_chain();
            }
            if now >= next_watch {
                next_watch = now + Duration::from_secs(10);
                self.watch_group();
            }
            if now >= next_tick {
                next_tick = now + tick;
                self.halt_if_unlogged();
                self.input(Input::Tick);
                self.node.meter().sample(now);
                self.snapshot_if_due();
            }
        }
    }

    /// Stops this gateway signing once its vertices can no longer leave the node (its log
    /// cannot be written or synced): a transaction it took would stay in a vertex no peer
    /// ever sees. Clients are sent to another gateway (503) until the node is restarted.
    fn halt_if_unlogged(&mut self) {
        if self.halted || self.key.is_none() {
            return;
        }
        let why = if !self.log.writable() {
            "its side-chain log cannot be written"
        } else if self.log_failed || self.node.log_lost.load(Ordering::Relaxed) {
            "its side-chain log cannot be synced"
        } else {
            return;
        };
        let mut guard = self.node.lock();
        // The log opens with the group.
        let Some(side) = guard.as_mut() else {
            return;
        };
        side.halt(format!("{why} (fix the disk and restart the node)"));
        drop(guard);
        self.halted = true;
        tracing::error!(
            "this side-chain gateway stops signing: {why}; it refuses transactions (clients go to another gateway) and follows the group until the node is restarted with a working disk"
        );
    }

    /// Tells the operator what the [`Watch`] notices.
    fn watch_group(&mut self) {
        let Some(status) = self.node.lock().as_ref().map(SideChain::status) else {
            return;
        };
        for n in self.watch.observe(&status, Instant::now()) {
            match n {
                Noticed::Silent(gateway, silent) => tracing::warn!(
                    %gateway,
                    silent_s = silent.as_secs(),
                    awaiting_settling = status.awaiting_settling,
                    "a side-chain gateway has sent no vertex for over a minute: final history stays in memory until it is back (its next vertex may build on it), so memory grows with the traffic; bring that gateway back, or if it is gone for good have the group's owner retire it (cpchain sidechain retire)"
                ),
                Noticed::Back(gateway) => {
                    tracing::info!(%gateway, "the silent side-chain gateway is back");
                }
            }
        }
    }

    fn token(&mut self, peer: PeerId) -> u64 {
        if let Some(t) = self.peers.get(&peer) {
            return *t;
        }
        let t = self.tokens.len() as u64;
        self.tokens.push(peer);
        self.peers.insert(peer, t);
        t
    }

    fn on_incoming(&mut self, (peer, msg, data): Incoming) {
        let decoded = Message::decode_untrusted(&data);
        let Ok(m) = decoded else {
            match msg {
                Some(msg) => self.net.validate(msg, Verdict::Reject),
                None => self.net.strike(peer),
            }
            return;
        };
        let vertices = vertex_ids(&m);
        let list = matches!(m, Message::Vertices(_));
        let (to_log, verdict_now) = ToLog::of(self.node.lock().as_ref(), &m);
        let from = self.token(peer);
        let asked = match &m {
            Message::Request { ids, .. } => ids.clone(),
            _ => Vec::new(),
        };
        let actions = self.input(Input::Message { from, msg: m });
        if !asked.is_empty() {
            self.answer_from_archive(peer, &asked);
        }
        let (left_out, verdict) = judge(&actions, self.node.lock().as_ref(), &vertices, list);
        let verdict = verdict_now.unwrap_or(verdict);
        if let Some(record) = to_log.record(&data, &left_out) {
            self.log.append_encoded(&record);
        }
        match msg {
            Some(msg) => self.net.validate(msg, verdict),
            // A direct message (an answer) counts against its sender only for what no
            // honest node sends: a vertex it answers with may be refused here for
            // history this node pruned.
            None if verdict_now == Some(Verdict::Reject) || malformed(&actions) => {
                self.net.strike(peer);
            }
            None => {}
        }
    }

    /// Answers a peer's request for vertices the state machine pruned (it answered for
    /// those it holds): a node catching up from nothing rebuilds the whole history.
    fn answer_from_archive(&mut self, peer: PeerId, ids: &[Hash32]) {
        let pruned: Vec<Hash32> = {
            let guard = self.node.lock();
            let Some(side) = guard.as_ref() else {
                return;
            };
            ids.iter()
                .take(256)
                .filter(|id| side.vertex(id).is_none())
                .copied()
                .collect()
        };
        let found: Vec<SignedVertex> = pruned
            .iter()
            .filter_map(|id| self.node.archived_vertex(id).map(|v| v.vertex))
            // A damaged store answers for nothing it was not asked.
            .filter(|v| pruned.contains(&v.id))
            .collect();
        if !found.is_empty() {
            // Final history: every gateway holds it, so it needs no sync, even this one's.
            self.outbox_send(Outgoing {
                durable: Durable::NotNeeded,
                parts: to_peer(peer, &Message::Vertices(found)),
                droppable: true,
            });
        }
    }

    /// Hands one input to the state machine and carries out its actions; returns them.
    fn input(&mut self, input: Input) -> Vec<Action> {
        let now = cpc_api::now_ms();
        let (actions, vertices, awaiting, halted) = {
            let mut guard = self.node.lock();
            let Some(side) = guard.as_mut() else {
                return Vec::new();
            };
            let actions = side.handle(now, input);
            (
                actions,
                side.vertex_count(),
                side.awaiting_settling(),
                side.halted().is_some(),
            )
        };
        // Only a retirement halts a gateway from inside (`halt_if_unlogged` says why it did).
        if halted && !self.halted {
            self.halted = true;
            tracing::error!(
                "the group's owner retired this side-chain gateway on the main chain: it signs no more (its clients go to another gateway) and follows the group, for as long as the group lists its key"
            );
        }
        {
            let m = &mut self.node.meter().m;
            m.vertices_total = vertices;
            m.awaiting_settling = awaiting;
            m.halted = u64::from(halted);
        }
        let mut actions = actions;
        for a in actions.extract_if(.., |a| matches!(a, Action::Pruned { .. })) {
            if let Action::Pruned { vertices, txs } = a {
                self.archive(vertices, txs, false);
            }
        }
        for a in &actions {
            self.act(a);
        }
        actions
    }

    /// Hands a message to the outbox, which sends one carrying a vertex of this gateway
    /// only once the log holding the vertex is synced.
    fn send(&self, msg: &Message, parts: Vec<Part>) {
        let durable = Durable::of(
            msg,
            self.key.as_ref().map(SecretKey::public),
            self.log.file(),
            self.log_failed,
            self.section.sync_log,
        );
        let droppable = matches!(msg, Message::Vertex(_) | Message::Vertices(_));
        self.outbox_send(Outgoing {
            durable,
            parts,
            droppable,
        });
    }

    /// Syncs a log that may hold vertices of this gateway (unless `sync_log` is off); if
    /// that fails, they no longer leave the node.
    fn make_durable(&mut self, path: &Path, sync: impl FnOnce() -> std::io::Result<()>) {
        if self.section.sync_log
            && let Err(e) = sync()
        {
            tracing::error!(path = %path.display(), error = %e, "cannot sync the side-chain log");
            self.log_failed = true;
        }
    }

    fn outbox_send(&self, o: Outgoing) {
        match self.outbox.send(o) {
            Ok(()) => {
                if self.outbox_full.replace(false) {
                    tracing::info!("the side-chain outbox takes messages again");
                }
            }
            Err(Refused::Full) => {
                self.node.meter().m.outbox_dropped_total += 1;
                if !self.outbox_full.replace(true) {
                    tracing::warn!(
                        "the side-chain outbox is full (the log's disk syncs slowly?): vertices to the group are dropped until it drains; peers ask again for those they lack"
                    );
                }
            }
            // The outbox ends only with this task, unless it panicked.
            Err(Refused::Gone) => {
                if !self.outbox_gone.replace(true) {
                    tracing::error!(
                        "the side-chain outbox thread is gone: this node sends nothing to the group any more; restart it"
                    );
                }
            }
        }
    }

    fn act(&mut self, a: &Action) {
        match a {
            Action::Send { to: None, msg } => {
                match (msg, &self.key) {
                    (Message::Vertex(v), Some(k)) if v.vertex.creator == k.public() => {
                        self.node.meter().m.own_vertices_total += 1;
                        self.log.append(msg);
                    }
                    (Message::Anchor(_), _) => self.log.append(msg),
                    _ => {}
                }
                self.send(msg, split(msg).into_iter().map(Part::Publish).collect());
            }
            Action::Send {
                to: Some(REPLAYED), ..
            } => {}
            Action::Send { to: Some(t), msg } => {
                let Some(&peer) = usize::try_from(*t).ok().and_then(|i| self.tokens.get(i)) else {
                    return;
                };
                self.send(msg, to_peer(peer, msg));
            }
            Action::SubmitAnchor(anchor) => self.submit_anchor(anchor),
            Action::Equivocation(ev) => self.report(ev),
            Action::PrunedTwin { vertex, pruned } => {
                match SideService::vertex(&*self.node, pruned) {
                    Some(o) => {
                        self.report(&EquivocationEvidence::of(o.vertex, (**vertex).clone()));
                    }
                    None => tracing::warn!(
                        %pruned,
                        "a twin of a pruned side-chain vertex arrived, but the archive lacks that vertex; not reported"
                    ),
                }
            }
            Action::Confirmed { latency_ms, .. } => self.node.meter().confirmed(*latency_ms),
            Action::Unneeded { vertex } => {
                self.node.meter().m.unneeded_vertices_total += 1;
                tracing::debug!(%vertex, "a retired side-chain gateway's vertex dropped: nothing needs it");
            }
            Action::Rejected { vertex, reason, .. } => {
                self.node.meter().m.rejected_vertices_total += 1;
                tracing::debug!(%vertex, %reason, "side-chain vertex refused");
            }
            Action::AnchorMismatch { sequence, reason } => {
                tracing::warn!(sequence, %reason, "a side-chain anchor does not match this node's history");
            }
            // Taken out by `input`, which hands them to the archive.
            Action::Pruned { .. } => {}
        }
    }

    /// Reports a gateway's two vertices of one sequence on the main chain, once per
    /// offender.
    fn report(&mut self, ev: &EquivocationEvidence) {
        tracing::warn!(
            offender = %ev.offender,
            sequence = ev.first.vertex.sequence,
            "a side-chain gateway signed two vertices with one sequence number"
        );
        if self.key.as_ref().is_some_and(|k| k.public() == ev.offender) {
            // Its log was lost or damaged, and its network was not back in time.
            // Reporting would slash it, and its other twin may never have left.
            tracing::error!(
                sequence = ev.first.vertex.sequence,
                "this gateway signed two vertices with one sequence number; not reporting itself"
            );
            return;
        }
        if self.reported.insert(ev.offender) {
            let id = self.submit_tx(ev.tx_kind(), "equivocation evidence");
            if id.is_some() {
                self.node.meter().m.evidence_submitted_total += 1;
            } else {
                // Refused (already on chain, or the mempool is full): another
                // gateway reports it, or this one does on the next twin it takes (one
                // refused, or of pruned history, is reported once).
                self.reported.remove(&ev.offender);
            }
        }
    }

    fn submit_anchor(&mut self, anchor: &cpc_sidechain::SignedAnchor) {
        if let Some(id) = self.submit_tx(anchor.tx_kind(), "side-chain anchor") {
            self.node.meter().m.anchors_submitted_total += 1;
            tracing::info!(
                sequence = anchor.anchor.sequence,
                vertices = anchor.anchor.confirmed_vertices,
                endorsements = anchor.endorsements.len(),
                tx = %id,
                "side-chain anchor sent to the main chain"
            );
        }
    }

    /// Signs `kind` with this gateway's key and hands it to the main chain's mempool.
    fn submit_tx(&mut self, kind: TxKind, what: &str) -> Option<Hash32> {
        let key = self.key.as_ref()?;
        let now = cpc_api::now_ms();
        let genesis = self.chain.genesis();
        let nonce = self.chain.account(&key.address(), now).next_nonce;
        let tx = Transaction {
            chain_id: genesis.chain_id,
            sender: key.public(),
            nonce,
            max_fee: genesis.params.base_fee,
            kind,
        }
        .sign(key);
        match self.chain.submit(vec![tx], now).pop()? {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "the main chain refused this node's {what}; it is sent again later");
                None
            }
        }
    }

    /// Feeds side locks and anchors of newly committed main-chain blocks (blocks are
    /// final once committed) and, until then, looks for the group on chain.
    fn feed_main_chain(&mut self) {
        if self.node.lock().is_none() && !self.open_group() {
            return;
        }
        while let Some(inputs) = self.next_main_chain_inputs() {
            for input in inputs {
                let retired = match &input {
                    Input::Retire(gateway) => Some(*gateway),
                    _ => None,
                };
                self.input(input);
                // Where the run learnt of it, for a restart's replay.
                if let Some(gateway) = retired {
                    self.log.append_retire(&gateway);
                }
            }
        }
    }

    /// The side inputs of the next main-chain blocks committed since `fed` (at most 64);
    /// `None` once there are none.
    fn next_main_chain_inputs(&mut self) -> Option<Vec<Input>> {
        if self.fed >= self.chain.height() {
            return None;
        }
        let blocks = match self.chain.blocks_from(self.fed + 1, 64, 8 << 20) {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read main-chain blocks for the side chain");
                return None;
            }
        };
        let mut inputs = Vec::new();
        for b in blocks {
            self.fed = b.header.height;
            inputs.extend(cpc_sidechain::inputs_from_block(
                &self.node.group_id,
                &b.txs,
            ));
        }
        Some(inputs)
    }

    /// Archives what a replay pruned.
    fn archive_pruned(&self, actions: Vec<Action>) {
        for a in actions {
            if let Action::Pruned { vertices, txs } = a {
                self.archive(vertices, txs, true);
            }
        }
    }

    /// Hands pruned history to the archive thread; lookups find it in flight meanwhile.
    /// `replayed`: a restart pruned it again, and the store may hold it already.
    fn archive(&self, vertices: Vec<VertexInfo>, txs: Vec<(Hash32, TxInfo)>, replayed: bool) {
        let vertices: Vec<Arc<VertexInfo>> = vertices.into_iter().map(Arc::new).collect();
        let txs: Vec<(Hash32, Arc<TxInfo>)> =
            txs.into_iter().map(|(h, t)| (h, Arc::new(t))).collect();
        // The archive thread runs at a low priority and may fall behind in a burst; the
        // gateway waits for it only when it is far behind (the store cannot keep up).
        while self.drop_archived() > MAX_IN_FLIGHT {
            std::thread::sleep(Duration::from_millis(1));
        }
        {
            let mut f = self.node.in_flight();
            for v in &vertices {
                f.vertices.insert(v.vertex.id, v.clone());
            }
            for (h, t) in &txs {
                f.txs.insert(*h, t.clone());
            }
        }
        self.unarchived.borrow_mut().push_back((
            vertices.iter().map(|v| v.vertex.id).collect(),
            txs.iter().map(|(h, _)| *h).collect(),
        ));
        if self
            .archiver
            .send(ArchiveJob::Batch {
                batch: (vertices, txs),
                replayed,
            })
            .is_err()
        {
            tracing::warn!("the side-chain archive thread is gone; pruned history is not archived");
        }
    }

    /// Takes the batches the archive thread has written out of `in_flight` (lookups find
    /// them in the store now); returns the transactions still in flight.
    fn drop_archived(&self) -> usize {
        let written = self.node.archived_batches.load(Ordering::Acquire);
        let mut unarchived = self.unarchived.borrow_mut();
        let mut f = self.node.in_flight();
        while self.archived.get() < written {
            let Some((vertices, txs)) = unarchived.pop_front() else {
                break;
            };
            for id in &vertices {
                f.vertices.remove(id);
            }
            for h in &txs {
                f.txs.remove(h);
            }
            self.archived.set(self.archived.get() + 1);
        }
        f.txs.len()
    }

    /// Feeds the main chain's side locks and anchors committed since `fed` into `s`
    /// before it is shared (at start, ahead of the log's replay). Retirements are not fed
    /// here: those the last run learnt of are in its log, where it learnt of them, and
    /// the rest wait for the end of the replay (`open_group` takes them from the group's
    /// record). The logged vertices were taken before them, and with them known the
    /// replay could prune past a retired gateway's vertex it had taken.
    fn feed_into(&mut self, s: &mut SideChain) {
        while let Some(inputs) = self.next_main_chain_inputs() {
            for input in inputs {
                if matches!(input, Input::Retire(_)) {
                    continue;
                }
                let out = s.handle(cpc_api::now_ms(), input);
                self.archive_pruned(out);
            }
        }
    }

    /// Builds the state machine once the group is on the main chain.
    fn open_group(&mut self) -> bool {
        let id = self.node.group_id;
        let Some(on_chain) = self.chain.with_state(|s| s.side_group(&id)) else {
            if !self.warned {
                self.warned = true;
                tracing::warn!(
                    group = %id,
                    "the side-chain group is not on the main chain yet; waiting for it"
                );
            }
            return false;
        };
        let reward_per_anchor = on_chain.reward_per_anchor;
        let retired = on_chain.retired;
        let group = match Group::new(id, on_chain.gateways) {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "the side-chain group on chain is unusable");
                return false;
            }
        };
        let mut key = self.key.clone();
        if let Some(k) = &key
            && group.index(&k.public()).is_none()
        {
            tracing::error!(
                key = %k.public(),
                "sidechain.gateway is true but this node's key is not a gateway of the group \
                 on chain; following the group without signing"
            );
            key = None;
            self.key = None;
        }
        let n = group.n();
        let mut cfg = self.section.side_config(group);
        cfg.reward_per_anchor = reward_per_anchor;
        match self.restore_or_new(cfg, key) {
            Ok((mut s, first_log)) => {
                // The main chain first: with its final anchors known, the replay prunes as
                // it goes, and memory stays what it is at run time. The log holds the
                // retirements the last run learnt of; those made while the node was down
                // come after it, from the group's record, which has them all (a retirement
                // known already is ignored).
                self.feed_into(&mut s);
                self.replay_logs(&mut s, first_log);
                let known = s.retired();
                for gateway in retired.into_iter().filter(|g| !known.contains(g)) {
                    let out = s.handle(cpc_api::now_ms(), Input::Retire(gateway));
                    self.archive_pruned(out);
                    self.log.append_retire(&gateway);
                }
                *self.node.lock() = Some(s);
                tracing::info!(group = %id, gateways = n, gateway = self.key.is_some(), "following the side-chain group");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the side chain");
                false
            }
        }
    }

    /// The state machine from the group's snapshot when there is a usable one (`fed`
    /// then follows it), else a new one; with the first log to replay.
    fn restore_or_new(
        &mut self,
        cfg: cpc_sidechain::Config,
        key: Option<SecretKey>,
    ) -> Result<(SideChain, u64), SideError> {
        let path = self.files.snapshot();
        match Snapshot::read(&self.files) {
            Ok(Some(snap)) => {
                match SideChain::restore(cfg.clone(), key.clone(), self.accel.clone(), &snap.state)
                {
                    Ok(s) => {
                        self.fed = snap.fed;
                        self.snapshot_len = snap.state.len() as u64;
                        tracing::info!(
                            bytes = snap.state.len(),
                            main_chain_height = snap.fed,
                            "side-chain state restored from its snapshot"
                        );
                        return Ok((s, snap.log));
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot restore the side-chain snapshot; replaying the logs after it alone (peers send what they lack)");
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the side-chain snapshot; replaying the logs after it alone (peers send what they lack)");
            }
        }
        Ok((SideChain::new(cfg, key, self.accel.clone())?, 0))
    }

    /// Replays the logs from `first` on into `s` and opens the last for appending; logs
    /// below `first`, which the snapshot covers, are removed.
    fn replay_logs(&mut self, s: &mut SideChain, first: u64) {
        let logs = self.files.logs().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list the side-chain logs; starting without them, and taking no snapshot that would replace them");
            self.snapshots_off = true;
            Vec::new()
        });
        // Answers and requests of the replay go nowhere; peers fill any gaps.
        let (mut count, mut retirements) = (0u64, 0u64);
        self.node.replaying.store(0, Ordering::Relaxed);
        let mut last = None;
        for (id, path) in logs.into_iter().filter(|(id, _)| *id >= first) {
            let log = SideLog::new(path);
            let mut records = log.records();
            for record in records.by_ref() {
                let now = cpc_api::now_ms();
                let input = match record {
                    LogRecord::Message(msg) => Input::Replayed(msg),
                    LogRecord::Retire(gateway) => {
                        retirements += 1;
                        Input::Retire(gateway)
                    }
                };
                let out = s.handle(now, input);
                self.archive_pruned(out);
                self.archive_pruned(s.handle(now, Input::SummarisePruned));
                count += 1;
                self.node.replaying.store(count, Ordering::Relaxed);
            }
            // A later log, or the snapshot that replaces this one, would leave the rest
            // of a damaged log unread for good: it is copied aside now.
            log.keep_damaged(&mut records);
            // Written by an earlier run, maybe never synced: its vertices of this gateway
            // may go out again in answers to peers.
            self.make_durable(log.path(), || log.sync());
            last = Some((id, log, records));
        }
        self.node.replaying.store(NOT_REPLAYING, Ordering::Relaxed);
        let (id, mut log, records) = last.unwrap_or_else(|| {
            let log = SideLog::new(self.files.log(first));
            let records = log.records();
            (first, log, records)
        });
        log.append_after(records);
        self.log = log;
        self.log_id = id;
        if first > 0
            && let Err(e) = self.files.remove_logs_below(first)
        {
            tracing::warn!(error = %e, "cannot remove side-chain logs a snapshot covers");
        }
        if count > 0 {
            tracing::info!(
                records = count,
                retirements,
                vertices_accepted = s.vertex_count(),
                "side-chain history replayed from the log"
            );
        }
    }

    /// Starts a snapshot once the log has outgrown its limit and the last snapshot, and
    /// collects the last one's outcome.
    fn snapshot_if_due(&mut self) {
        if self.writer.as_ref().is_some_and(|w| w.is_finished()) {
            let outcome = self.writer.take().map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("the snapshot thread panicked".into()))
            });
            if let Some(Err(e)) = outcome {
                tracing::warn!(error = %e, "the side-chain snapshot failed; the logs stay, and this run takes no more snapshots");
                self.snapshots_off = true;
            }
        }
        let limit = self.section.snapshot_log_mib << 20;
        if limit == 0
            || self.snapshots_off
            || self.writer.is_some()
            || self.log.bytes() < limit.max(self.snapshot_len)
        {
            return;
        }
        self.snapshot();
    }

    /// Snapshots the state machine and starts the next log; a thread writes the snapshot
    /// once the pruned history the older logs held is durable in the store, then removes
    /// those logs.
    fn snapshot(&mut self) {
        let encoding = Instant::now();
        let Some(state) = self.node.lock().as_ref().map(SideChain::snapshot) else {
            return;
        };
        let encode_ms = encoding.elapsed().as_millis() as u64;
        let id = self.log_id + 1;
        let path = self.files.log(id);
        let (done, written) = std::sync::mpsc::channel();
        let started = SideLog::create(path.clone())
            .map_err(|e| format!("cannot create {}: {e}", path.display()))
            .and_then(|log| {
                self.archiver
                    .send(ArchiveJob::Barrier(done))
                    .map(|()| log)
                    .map_err(|_| "the archive thread is gone".to_string())
            });
        let log = match started {
            Ok(log) => log,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take a side-chain snapshot; this run takes none");
                self.snapshots_off = true;
                return;
            }
        };
        // The old log goes to disk before anything of the new one can: a vertex of this
        // gateway in the new log without its parents in the old one would leave it
        // waiting for them, silent, after a power loss.
        if let Some(old) = self.log.file() {
            self.make_durable(&old.path, || old.sync());
        }
        self.log = log;
        self.log_id = id;
        self.snapshot_len = state.len() as u64;
        let snap = Snapshot {
            log: id,
            fed: self.fed,
            state,
        };
        let (node, files) = (self.node.clone(), self.files.clone());
        let writer = std::thread::Builder::new()
            .name("cpc-side-snapshot".into())
            .spawn(move || {
                lower_priority();
                written
                    .recv()
                    .map_err(|_| "the archive thread is gone".to_string())?;
                if node.archive_failed.load(Ordering::Relaxed) {
                    return Err(
                        "pruned history could not be archived; only the logs hold it".into(),
                    );
                }
                node.chain
                    .store()
                    .side_flush()
                    .map_err(|e| format!("cannot flush the side-chain archive: {e}"))?;
                let path = files.snapshot();
                snap.write(&files)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                files
                    .remove_logs_below(id)
                    .map_err(|e| format!("cannot remove the logs before log {id}: {e}"))?;
                tracing::info!(
                    bytes = snap.state.len(),
                    encode_ms,
                    log = id,
                    "side-chain snapshot written; the logs before it are removed"
                );
                Ok(())
            });
        match writer {
            Ok(w) => self.writer = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the side-chain snapshot thread; this run takes no more snapshots");
                self.snapshots_off = true;
            }
        }
    }
}

/// Lowers the calling thread's CPU priority (nice 10): archiving can wait, vertices not.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: `gettid` and `setpriority` take no pointers; on Linux the nice value is per
    // thread, and a failure only leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// A message to one peer, split as [`split`] does.
fn to_peer(peer: PeerId, msg: &Message) -> Vec<Part> {
    split(msg).into_iter().map(|p| Part::To(peer, p)).collect()
}

/// The encoded message, split into parts that fit one direct message when it is a list
/// of vertices.
fn split(msg: &Message) -> Vec<Vec<u8>> {
    let Message::Vertices(vs) = msg else {
        return vec![msg.encode()];
    };
    let mut out = Vec::new();
    let mut part = Vec::new();
    let mut bytes = 0;
    for v in vs {
        let size = v.encode().len();
        if bytes + size > DIRECT_BYTES && !part.is_empty() {
            out.push(Message::Vertices(std::mem::take(&mut part)).encode());
            bytes = 0;
        }
        bytes += size;
        part.push(v.clone());
    }
    if !part.is_empty() {
        out.push(Message::Vertices(part).encode());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_field() {
        let ok = SideSection {
            group: "district-7".into(),
            gateway: true,
            ..SideSection::default()
        };
        ok.validate().unwrap();
        assert_eq!(ok.group_id(), Some(Group::id_of("district-7")));
        let hex = Group::id_of("x").to_string();
        let by_id = SideSection {
            group: hex,
            ..SideSection::default()
        };
        assert_eq!(by_id.group_id(), Some(Group::id_of("x")));
        assert_eq!(SideSection::default().group_id(), None);
        for (bad, field) in [
            (
                SideSection {
                    gateway: true,
                    ..SideSection::default()
                },
                "sidechain.group",
            ),
            (
                SideSection {
                    vertex_interval_ms: 0,
                    ..ok.clone()
                },
                "sidechain.vertex_interval_ms",
            ),
            (
                SideSection {
                    anchor_every_vertices: 0,
                    ..ok.clone()
                },
                "sidechain.anchor_every_vertices",
            ),
            (
                SideSection {
                    snapshot_log_mib: u64::MAX,
                    ..ok.clone()
                },
                "sidechain.snapshot_log_mib",
            ),
            (
                SideSection {
                    anchor_interval_ms: 5,
                    ..ok.clone()
                },
                "sidechain.anchor_interval_ms",
            ),
            (
                SideSection {
                    archive_max_mib: u64::MAX,
                    ..ok.clone()
                },
                "sidechain.archive_max_mib",
            ),
            (SideSection { max_batch: 0, ..ok }, "sidechain.max_batch"),
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn the_archive_deletes_the_oldest_anchors_past_its_limit_and_keeps_the_newest() {
        let mut kept = Retention {
            max_bytes: 250,
            ..Retention::default()
        };
        assert_eq!(kept.file(None), 0);
        kept.add(&[(1, 100), (2, 60)]);
        kept.add(&[(2, 40), (3, 100)]);
        assert_eq!((kept.total, kept.over()), (300, Some(1)));
        // A transaction that never confirms goes with the newest history.
        assert_eq!((kept.file(None), kept.file(Some(2))), (3, 2));
        kept.forgot(1);
        assert_eq!((kept.total, kept.kept_from, kept.over()), (200, 2, None));
        // Far over: everything but the newest anchor goes, which stays whatever its size.
        kept.max_bytes = 10;
        kept.add(&[(4, 50)]);
        assert_eq!(kept.over(), Some(3));
        kept.forgot(3);
        assert_eq!((kept.total, kept.kept_from, kept.over()), (50, 4, None));
        assert_eq!(kept.sizes.into_iter().collect::<Vec<_>>(), vec![(4, 50)]);
        // No limit: nothing goes.
        let all = Retention {
            sizes: BTreeMap::from([(1, 1 << 40)]),
            total: 1 << 40,
            ..Retention::default()
        };
        assert_eq!(all.over(), None);
    }

    #[test]
    fn long_vertex_lists_are_split_and_nothing_is_lost() {
        let key = SecretKey::from_bytes([9; 32]);
        let group = Group::id_of("g");
        let txs: Vec<SignedMachineTx> = (0..2000)
            .map(|n| {
                cpc_sidechain::MachineTx {
                    group_id: group,
                    sender: key.public(),
                    nonce: n,
                    kind: cpc_sidechain::MachineKind::Event {
                        event_type: 1,
                        data_hash: Hash32([1; 32]),
                        x: 0,
                        y: 0,
                    },
                }
                .sign(&key)
            })
            .collect();
        let vs: Vec<cpc_sidechain::SignedVertex> = (1..=8)
            .map(|seq| {
                cpc_sidechain::Vertex {
                    group_id: group,
                    creator: key.public(),
                    sequence: seq,
                    timestamp_ms: seq,
                    parents: Vec::new(),
                    txs: txs.clone(),
                }
                .sign(&key)
            })
            .collect();
        let parts = split(&Message::Vertices(vs.clone()));
        assert!(parts.len() > 1);
        let mut back = Vec::new();
        for p in &parts {
            assert!(p.len() <= DIRECT_BYTES + 400_000);
            match Message::decode_untrusted(p).unwrap() {
                Message::Vertices(v) => back.extend(v),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, vs);
        let heads = Message::Heads(vec![Hash32([3; 32])]);
        assert_eq!(split(&heads), vec![heads.encode()]);
    }

    /// A data event of `machine` in `group`.
    fn event(group: Hash32, machine: &SecretKey, nonce: u64) -> SignedMachineTx {
        cpc_sidechain::MachineTx {
            group_id: group,
            sender: machine.public(),
            nonce,
            kind: cpc_sidechain::MachineKind::Event {
                event_type: 2,
                data_hash: Hash32([9; 32]),
                x: 10,
                y: 20,
            },
        }
        .sign(machine)
    }

    /// Four gateway keys, their group and an accelerator.
    /// `key`'s vertex of `group_id` at `sequence` (stamped 1 ms), on `parents`, with `txs`.
    fn signed_vertex(
        key: &SecretKey,
        group_id: Hash32,
        sequence: u64,
        parents: Vec<Hash32>,
        txs: Vec<cpc_sidechain::SignedMachineTx>,
    ) -> SignedVertex {
        cpc_sidechain::Vertex {
            group_id,
            creator: key.public(),
            sequence,
            timestamp_ms: 1,
            parents,
            txs,
        }
        .sign(key)
    }

    /// A node of `group` that is not a gateway.
    fn observer(group: &Group, accel: &Arc<Dispatcher>) -> SideChain {
        SideChain::new(
            cpc_sidechain::Config::new(group.clone()),
            None,
            accel.clone(),
        )
        .expect("a group's observer")
    }

    fn district() -> (Vec<SecretKey>, Group, Arc<Dispatcher>) {
        let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_bytes([i; 32])).collect();
        let group = Group::new(
            Group::id_of("district-7"),
            keys.iter().map(SecretKey::public).collect(),
        )
        .unwrap();
        let accel = Arc::new(Dispatcher::new(cpc_accel::DispatchConfig::default()).unwrap());
        (keys, group, accel)
    }

    #[test]
    fn what_holds_no_news_is_neither_logged_nor_relayed() {
        let (keys, group, accel) = district();
        let mut side = observer(&group, &accel);
        let vertex = |sequence| signed_vertex(&keys[1], group.id, sequence, Vec::new(), Vec::new());
        let anchor = cpc_sidechain::Anchor {
            group_id: group.id,
            sequence: 1,
            frontier: vec![Hash32([1; 32])],
            root: Hash32([2; 32]),
            confirmed_vertices: 1,
            rewards: Vec::new(),
        };
        let endorsed = |k: &SecretKey, copies: usize| {
            Message::Anchor(cpc_sidechain::SignedAnchor {
                anchor: anchor.clone(),
                endorsements: vec![
                    cpc_sidechain::Endorsement {
                        gateway: k.public(),
                        signature: k.sign(&anchor.signing_bytes()),
                    };
                    copies
                ],
            })
        };
        let outsider = SecretKey::from_bytes([40; 32]);
        let judged = |side: &SideChain, m: &Message| {
            let (to_log, verdict) = ToLog::of(Some(side), m);
            (matches!(to_log, ToLog::AsReceived), verdict)
        };
        // News: logged, and judged by what the state machine makes of it.
        let (v1, e2) = (Message::Vertex(vertex(1)), endorsed(&keys[2], 1));
        for m in [&v1, &e2] {
            assert_eq!(judged(&side, m), (true, None), "{m:?}");
            side.handle(
                1,
                Input::Message {
                    from: 0,
                    msg: m.clone(),
                },
            );
        }
        // Again, or below every gateway's history: neither logged nor relayed.
        for m in [
            &v1,
            &e2,
            &Message::Vertex(vertex(0)),
            &Message::Vertices(vec![vertex(1), vertex(0)]),
        ] {
            assert_eq!(judged(&side, m), (false, Some(Verdict::Ignore)), "{m:?}");
        }
        // An anchor no gateway sends, padded or endorsed by an outsider: refused.
        for m in [&endorsed(&keys[3], 2), &endorsed(&outsider, 1)] {
            assert_eq!(judged(&side, m), (false, Some(Verdict::Reject)), "{m:?}");
        }
        // A new endorsement of a known anchor is news.
        assert_eq!(judged(&side, &endorsed(&keys[3], 1)), (true, None));
        // Other messages are left to the state machine's verdict.
        assert!(matches!(
            ToLog::of(Some(&side), &Message::Heads(Vec::new())),
            (ToLog::Nothing, None)
        ));
        assert!(matches!(ToLog::of(None, &v1), (ToLog::Nothing, None)));
    }

    #[test]
    fn a_list_with_a_forged_or_malformed_vertex_gets_its_sender_penalised() {
        let (keys, group, accel) = district();
        let first =
            |g: usize, group_id| signed_vertex(&keys[g], group_id, 1, Vec::new(), Vec::new());
        let good = first(0, group.id);
        let mut forged = first(1, group.id);
        forged.signature.0[5] ^= 1;
        let foreign = first(2, Hash32([9; 32]));
        let verdict = |side: &mut SideChain, vs: Vec<SignedVertex>| {
            let ids: Vec<Hash32> = vs.iter().map(|v| v.id).collect();
            let (list, msg) = match <[SignedVertex; 1]>::try_from(vs) {
                Ok([v]) => (false, Message::Vertex(v)),
                Err(vs) => (true, Message::Vertices(vs)),
            };
            let actions = side.handle(1, Input::Message { from: 0, msg });
            judge(&actions, Some(side), &ids, list).1
        };
        assert_eq!(
            verdict(&mut observer(&group, &accel), vec![good.clone()]),
            Verdict::Accept
        );
        // A list is taken but never relayed; one with a forged or malformed vertex is
        // refused.
        let other = first(3, group.id);
        assert_eq!(
            verdict(
                &mut observer(&group, &accel),
                vec![good.clone(), other.clone()]
            ),
            Verdict::Ignore
        );
        assert_eq!(
            verdict(
                &mut observer(&group, &accel),
                vec![good.clone(), forged.clone()]
            ),
            Verdict::Reject
        );
        assert_eq!(
            verdict(&mut observer(&group, &accel), vec![good, foreign]),
            Verdict::Reject
        );
        // A node that holds the vertex a forged copy stands for skips the copy unchecked:
        // it must not vouch for the list by relaying it.
        let mut holder = observer(&group, &accel);
        let mut real = forged.clone();
        real.signature = first(1, group.id).signature;
        assert_eq!(verdict(&mut holder, vec![real]), Verdict::Accept);
        assert_eq!(verdict(&mut holder, vec![other, forged]), Verdict::Ignore);
    }

    #[test]
    fn rejected_vertices_stay_out_of_the_log() {
        let (keys, group, accel) = district();
        let first = |g: usize| signed_vertex(&keys[g], group.id, 1, Vec::new(), Vec::new());
        let (good, other) = (first(0), first(2));
        let mut forged = first(1);
        forged.signature.0[5] ^= 1;
        // What an observer's state machine rejects, as the log sees it.
        let judge = |msg: &Message| {
            let mut side = observer(&group, &accel);
            let data = msg.encode();
            let m = Message::decode_untrusted(&data).unwrap();
            let actions = side.handle(1, Input::Message { from: 0, msg: m });
            let rejected = rejected_vertices(&actions, &side);
            (data, rejected)
        };
        let logged =
            |record: Option<Cow<'_, [u8]>>| record.map(|r| Message::decode_untrusted(&r).unwrap());

        let (data, rejected) = judge(&Message::Vertex(forged.clone()));
        assert_eq!(rejected, BTreeSet::from([forged.id]));
        assert_eq!(ToLog::AsReceived.record(&data, &rejected), None);
        let (data, rejected) = judge(&Message::Vertex(good.clone()));
        assert!(rejected.is_empty());
        assert_eq!(
            ToLog::AsReceived.record(&data, &rejected).as_deref(),
            Some(&data[..])
        );

        let list = Message::Vertices(vec![good.clone(), forged.clone(), other.clone()]);
        let (data, rejected) = judge(&list);
        assert_eq!(
            logged(ToLog::AsReceived.record(&data, &rejected)),
            Some(Message::Vertices(vec![good, other.clone()]))
        );
        assert_eq!(
            logged(ToLog::Only(vec![forged.clone(), other.clone()]).record(&data, &rejected)),
            Some(Message::Vertices(vec![other]))
        );
        assert_eq!(
            ToLog::Only(vec![forged.clone()]).record(&data, &rejected),
            None
        );
        let (data, rejected) = judge(&Message::Vertices(vec![forged.clone()]));
        assert_eq!(ToLog::AsReceived.record(&data, &rejected), None);
        // A forged copy next to the good one (one id): the good one is taken and logged.
        let mut good_twin = forged.clone();
        good_twin.signature = first(1).signature;
        let (data, rejected) = judge(&Message::Vertices(vec![forged, good_twin.clone()]));
        assert!(rejected.is_empty());
        let Some(Message::Vertices(kept)) = logged(ToLog::AsReceived.record(&data, &rejected))
        else {
            panic!("nothing logged");
        };
        assert!(kept.contains(&good_twin));
        assert_eq!(ToLog::Nothing.record(&data, &BTreeSet::new()), None);
    }

    #[test]
    fn a_retired_gateways_unneeded_vertices_are_neither_logged_nor_relayed() {
        let (keys, group, accel) = district();
        let vertex = |g: usize, parents| signed_vertex(&keys[g], group.id, 1, parents, Vec::new());
        // Gateway 1 is retired; whoever holds its key signs on.
        let (stolen, good) = (vertex(1, Vec::new()), vertex(0, Vec::new()));
        // A vertex of gateway 2 that took it before learning of the retirement.
        let child = vertex(2, vec![stolen.id]);
        let knowing = || {
            let mut side = observer(&group, &accel);
            side.handle(1, Input::Retire(keys[1].public()));
            side
        };
        let feed = |side: &mut SideChain, msg: &Message| {
            let data = msg.encode();
            let m = Message::decode_untrusted(&data).unwrap();
            let vertices = vertex_ids(&m);
            let list = matches!(m, Message::Vertices(_));
            let actions = side.handle(1, Input::Message { from: 0, msg: m });
            let (left_out, verdict) = judge(&actions, Some(side), &vertices, list);
            let logged = ToLog::AsReceived
                .record(&data, &left_out)
                .map(|r| Message::decode_untrusted(&r).unwrap());
            (logged, verdict)
        };

        let mut side = knowing();
        let alone = Message::Vertex(stolen.clone());
        // Dropped without a penalty for the peer, which may not know of the retirement.
        assert_eq!(feed(&mut side, &alone), (None, Verdict::Ignore));
        assert!(!side.known(&stolen.id));
        // Nor is a list of such relayed, which no gateway sends to the topic.
        let only = Message::Vertices(vec![stolen.clone()]);
        assert_eq!(feed(&mut side, &only), (None, Verdict::Ignore));
        // A list is never relayed (no gateway sends one to the topic).
        let list = Message::Vertices(vec![good.clone(), stolen.clone()]);
        assert_eq!(
            feed(&mut side, &list),
            (Some(Message::Vertices(vec![good])), Verdict::Ignore)
        );
        // Named by another gateway's vertex, it is taken and logged, alone or along.
        let msg = Message::Vertex(child.clone());
        assert_eq!(feed(&mut side, &msg), (Some(msg), Verdict::Accept));
        assert_eq!(feed(&mut side, &alone), (Some(alone), Verdict::Accept));
        assert!(side.vertex(&stolen.id).is_some() && side.vertex(&child.id).is_some());
        let both = Message::Vertices(vec![child, stolen.clone()]);
        assert_eq!(feed(&mut knowing(), &both), (Some(both), Verdict::Ignore));
        // Replayed from the log, it is taken: the node logged it because it was needed,
        // whether or not what needed it is still there.
        let mut replayed = knowing();
        replayed.handle(1, Input::Replayed(Message::Vertex(stolen.clone())));
        assert!(replayed.vertex(&stolen.id).is_some());
        // Not following the group yet: nothing is relayed.
        assert_eq!(
            judge(&[], None, &[stolen.id], false),
            (BTreeSet::new(), Verdict::Ignore)
        );
    }

    #[test]
    fn a_refused_twin_goes_to_the_log() {
        // The log is what a restored node learns an equivocation from again: a twin the
        // state machine refuses (here an overdraft) must be replayed, or the restored node
        // forgets the equivocator and waits for its vertices to settle.
        let (keys, group, accel) = district();
        let machine = SecretKey::from_bytes([9; 32]);
        let overdraft = cpc_sidechain::MachineTx {
            group_id: group.id,
            sender: machine.public(),
            nonce: 0,
            kind: cpc_sidechain::MachineKind::Transfer {
                to: Address([1; 20]),
                amount: 5,
            },
        }
        .sign(&machine);
        let vertex = |txs| signed_vertex(&keys[3], group.id, 1, Vec::new(), txs);
        let (original, twin) = (vertex(Vec::new()), vertex(vec![overdraft]));
        let judge = |side: &mut SideChain, v: &SignedVertex| {
            let data = Message::Vertex(v.clone()).encode();
            let m = Message::decode_untrusted(&data).unwrap();
            let actions = side.handle(1, Input::Message { from: 0, msg: m });
            let rejected = rejected_vertices(&actions, side);
            (data, actions, rejected)
        };
        let log = |side: &mut SideChain, vs: &[&SignedVertex]| {
            vs.iter()
                .filter_map(|v| {
                    let (data, _, rejected) = judge(side, v);
                    ToLog::AsReceived
                        .record(&data, &rejected)
                        .map(Cow::into_owned)
                })
                .collect::<Vec<_>>()
        };
        let fresh = || observer(&group, &accel);

        let mut side = fresh();
        let (_, actions, _) = judge(&mut side, &original);
        assert!(
            actions
                .iter()
                .all(|a| !matches!(a, Action::Rejected { .. }))
        );
        let (data, actions, rejected) = judge(&mut side, &twin);
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Rejected { vertex, .. } if *vertex == twin.id))
                && actions.iter().any(|a| matches!(a, Action::Equivocation(_))),
            "{actions:?}"
        );
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            ToLog::AsReceived.record(&data, &rejected).as_deref(),
            Some(&data[..])
        );
        assert_eq!(side.status().equivocators, vec![keys[3].public()]);

        // Replayed from what the log kept, a new node knows the equivocator too; an
        // overdraft that is no twin stays out.
        let mut first = fresh();
        let records = log(&mut first, &[&original, &twin]);
        assert_eq!(records.len(), 2);
        let mut replayed = fresh();
        for r in &records {
            let msg = Message::decode_untrusted(r).unwrap();
            replayed.handle(1, Input::Message { from: 0, msg });
        }
        assert_eq!(replayed.status().equivocators, vec![keys[3].public()]);
        assert!(log(&mut fresh(), &[&twin]).is_empty());
    }

    /// A node's side chain before its group is open, behind the HTTP API as a fleet
    /// operator reaches it.
    struct Unopened {
        node: Arc<SideNode>,
        app: axum::Router,
        _dir: tempfile::TempDir,
    }

    fn unopened() -> Unopened {
        struct Services(Arc<SideNode>);
        impl cpc_api::Services for Services {
            fn consensus(&self) -> Option<cpc_chain::ConsensusStatus> {
                None
            }
            fn network(&self) -> Option<cpc_p2p::NetStatus> {
                None
            }
            fn sidechain(&self) -> Option<Arc<dyn SideService>> {
                Some(self.0.clone())
            }
        }

        let dir = tempfile::tempdir().unwrap();
        let validator = SecretKey::from_bytes([100; 32]);
        let chain = crate::testing::chain(dir.path(), &validator, validator.address(), 0);
        let accel = Arc::new(Dispatcher::new(cpc_accel::DispatchConfig::default()).unwrap());
        let node = Arc::new(SideNode::new(
            Group::id_of("district-7"),
            accel,
            chain.clone(),
        ));
        let state = Arc::new(cpc_api::ApiState {
            admission: cpc_api::admission::Admission::start(&chain, 16),
            chain,
            services: Arc::new(Services(node.clone())),
            fhe: None,
            config: cpc_api::ApiConfig::default(),
            started: Instant::now(),
        });
        Unopened {
            node,
            app: cpc_api::router(state),
            _dir: dir,
        }
    }

    /// The status and error message of a request.
    async fn call(app: &axum::Router, req: axum::http::Request<axum::body::Body>) -> (u16, String) {
        use tower::ServiceExt as _;
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, v["message"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn the_api_says_why_the_group_is_not_served_yet() {
        let n = unopened();
        let tx = event(n.node.group_id, &SecretKey::from_bytes([9; 32]), 0);
        let requests = || {
            [
                axum::http::Request::get("/v1/sidechain/status")
                    .body(axum::body::Body::empty())
                    .unwrap(),
                axum::http::Request::post("/v1/sidechain/txs")
                    .header("content-type", "application/octet-stream")
                    .body(axum::body::Body::from(tx.encode()))
                    .unwrap(),
            ]
        };
        for req in requests() {
            let (status, message) = call(&n.app, req).await;
            assert_eq!(status, 503, "{message}");
            assert!(message.contains("not on the main chain yet"), "{message}");
        }
        // While the log replays at start: how far it got, and to retry.
        n.node.replaying.store(1234, Ordering::Relaxed);
        for req in requests() {
            let (status, message) = call(&n.app, req).await;
            assert_eq!(status, 503, "{message}");
            assert!(
                message.contains("replaying its side-chain log (1234 records so far); retry"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_watch_names_a_silent_gateway_only_while_final_history_piles_up() {
        let (keys, group, accel) = district();
        let side = SideChain::new(
            cpc_sidechain::Config::new(group),
            Some(keys[0].clone()),
            accel,
        )
        .unwrap();
        let mut st = side.status();
        let (me, down) = (keys[0].public(), keys[1].public());
        let at = |i: usize| Hash32([i as u8; 32]);
        let t0 = Instant::now();
        let s = |secs| t0 + Duration::from_secs(secs);
        let mut watch = Watch::default();
        // Every gateway has sent a vertex but `down`, which never moves again.
        let step = |st: &mut Status, round: usize| {
            for (i, k) in st.gateways.clone().iter().enumerate() {
                if *k != down {
                    st.tips[i] = Some(at(round * 10 + i));
                }
            }
        };
        step(&mut st, 1);
        st.awaiting_settling = 10;
        assert_eq!(watch.observe(&st, s(0)), vec![]);
        // Idle: the group is silent and nothing piles up.
        assert_eq!(watch.observe(&st, s(120)), vec![]);
        // Traffic: the others move on and final history piles up: `down`, silent for
        // over a minute, is named once.
        step(&mut st, 2);
        st.awaiting_settling = 500;
        assert_eq!(
            watch.observe(&st, s(121)),
            vec![Noticed::Silent(down, Duration::from_secs(121))]
        );
        step(&mut st, 3);
        st.awaiting_settling = 900;
        assert_eq!(watch.observe(&st, s(200)), vec![]);
        // It is back.
        let i = st.gateways.iter().position(|k| *k == down).unwrap();
        st.tips[i] = Some(at(99));
        assert_eq!(watch.observe(&st, s(201)), vec![Noticed::Back(down)]);
        // A first look starts the clock: a node that was down itself names no one for
        // its own absence.
        let mut w = Watch::default();
        assert_eq!(w.observe(&st, s(0)), vec![]);
        st.awaiting_settling = 2_000;
        assert_eq!(w.observe(&st, s(30)), vec![]);
        // When nothing moves, every silent gateway is named but this node, a known
        // equivocator and a retired gateway.
        let retired = st.gateways[3];
        assert!(retired != me && retired != down);
        st.equivocators = vec![down];
        st.retired = vec![retired];
        let mut named = w.observe(&st, s(61));
        named.sort_by_key(|n| format!("{n:?}"));
        let mut want: Vec<Noticed> = st
            .gateways
            .iter()
            .filter(|k| **k != me && **k != down && **k != retired)
            .map(|k| Noticed::Silent(*k, Duration::from_secs(61)))
            .collect();
        want.sort_by_key(|n| format!("{n:?}"));
        assert_eq!(named, want);
    }

    #[test]
    fn archive_records_round_trip_and_garbage_is_refused() {
        let key = SecretKey::from_bytes([7; 32]);
        let machine = SecretKey::from_bytes([8; 32]);
        let group = Group::id_of("district-7");
        let tx = event(group, &machine, 3);
        let vertex = cpc_sidechain::Vertex {
            group_id: group,
            creator: key.public(),
            sequence: 4,
            timestamp_ms: 1_000,
            parents: vec![Hash32([1; 32])],
            txs: vec![tx.clone()],
        }
        .sign(&key);
        let v = VertexInfo::archived(vertex.clone(), 2, 0b1011, Some(1_234), Some(7));
        let back = decode_exact::<VertexInfo>(&v.encode()).unwrap();
        assert_eq!(back.vertex, vertex);
        assert_eq!(
            (back.creator, back.seen_by, back.confirmed_ms, back.anchor),
            (2, 0b1011, Some(1_234), Some(7))
        );
        for (status, vertices) in [
            (TxStatus::Final { anchor: 7 }, vec![vertex.id]),
            (
                TxStatus::Anchored { anchor: 6 },
                vec![vertex.id, Hash32([2; 32])],
            ),
            (TxStatus::Confirmed, vec![vertex.id]),
            (TxStatus::Pending, vec![vertex.id]),
            (
                TxStatus::Rejected {
                    reason: "nonce gap".into(),
                },
                Vec::new(),
            ),
        ] {
            let t = TxInfo {
                tx: Box::new(tx.clone()),
                status: status.clone(),
                first_seen_ms: 999,
                latency_ms: Some(12),
                vertices: vertices.clone(),
            };
            let rec = TxRecord::encode(&t);
            let back = decode_exact::<TxRecord>(&rec).unwrap();
            assert_eq!(back.status, status);
            assert_eq!((back.first_seen_ms, back.latency_ms), (999, Some(12)));
            assert_eq!(back.vertices, vertices);
            // The body is kept only when no vertex holds it.
            assert_eq!(back.body, vertices.is_empty().then(|| tx.clone()));
            // Truncated or extended records are refused, never misread.
            assert!(decode_exact::<TxRecord>(&rec[..rec.len() - 1]).is_err());
            assert!(decode_exact::<TxRecord>(&[rec.as_slice(), &[0]].concat()).is_err());
        }
        let rec = v.encode();
        assert!(decode_exact::<VertexInfo>(&rec[..rec.len() - 1]).is_err());
        assert!(decode_exact::<VertexInfo>(&[rec.as_slice(), &[0]].concat()).is_err());
        assert!(decode_exact::<VertexInfo>(b"{\"creator\":1}").is_err());
        assert!(decode_exact::<TxRecord>(&[9]).is_err());
    }
}
