//! Networking of the node: a libp2p swarm on TCP with Noise and Yamux.
//!
//! - **Gossipsub** carries three topics: transactions, consensus messages and election
//!   tickets, plus one topic per side-chain group the node joins
//!   ([`Network::join_side_group`]). Validation is manual: nothing is relayed until the node says
//!   [`Verdict::Accept`]; a rejected message costs its sender gossipsub score, and a peer
//!   rejected [`P2pConfig::ban_after_invalid`] times is disconnected and banned.
//! - **Kademlia** finds peers beyond the configured bootnodes; identify tells it their
//!   listen addresses. Bootnodes that drop are dialed again.
//! - **Request-response** (`/cpchain/sync/1`) serves final blocks to peers that catch up;
//!   answers come from a [`BlockSource`].
//! - **Request-response** (`/cpchain/side/2`) carries side-chain messages meant for one
//!   peer (answers to a catch-up request), so they do not flood the group's topic.
//! - **Request-response** (`/cpchain/data/2`) carries the data layer's requests (store and
//!   fetch chunks, deliver kfrags, ask for re-encryption) as opaque length-prefixed
//!   [`DataMessage`]s (not CBOR: chunks are megabytes, sent from their own buffers and read
//!   into one buffer each); a
//!   [`DataService`] answers them and [`Network::data_request`] sends them. Which peers
//!   store a chunk is the data layer's choice among [`Network::data_peers`].
//!
//! The swarm runs on its own task. [`Network`] is the handle: commands in, [`NetEvent`]s
//! out. Message sizes are capped at [`P2pConfig::max_message_bytes`]; a peer that sends
//! garbage never stops the node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, StreamProtocol, Swarm, SwarmBuilder, connection_limits, gossipsub, identify,
    identity, kad, noise, request_response, tcp, yamux,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use libp2p::PeerId;

/// The peer id of the node whose network key is `secret`.
pub fn peer_id(secret: [u8; 32]) -> Result<String, P2pError> {
    identity::Keypair::ed25519_from_bytes(secret)
        .map(|k| k.public().to_peer_id().to_string())
        .map_err(|e| P2pError::Key(e.to_string()))
}

/// Settings of the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Listen address, as a multiaddr.
    pub listen: String,
    /// Peers to connect to at start, as multiaddrs (`/ip4/1.2.3.4/tcp/7645`).
    pub bootnodes: Vec<String>,
    /// Most connections.
    pub max_peers: u32,
    /// Largest gossip message, bytes.
    pub max_message_bytes: usize,
    /// Invalid messages after which a peer is disconnected and banned.
    pub ban_after_invalid: u32,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/7645".into(),
            bootnodes: Vec::new(),
            max_peers: 50,
            max_message_bytes: 8 << 20,
            ban_after_invalid: 5,
        }
    }
}

/// Network failures at start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// An address does not parse.
    #[error("invalid multiaddr {addr:?}: {reason}")]
    Addr {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {reason}; choose another with --p2p.listen")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The node key is invalid.
    #[error("invalid node key: {0}")]
    Key(String),
    /// The swarm could not be built.
    #[error("network setup: {0}")]
    Setup(String),
}

/// A gossip topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Batches of signed transactions.
    Txs,
    /// Proposals, votes and certificates.
    Consensus,
    /// Election tickets.
    Tickets,
    /// The gossip of one side-chain group, by its 32-byte id.
    Side([u8; 32]),
}

impl Topic {
    const ALL: [Topic; 3] = [Topic::Txs, Topic::Consensus, Topic::Tickets];

    fn ident(self) -> gossipsub::IdentTopic {
        gossipsub::IdentTopic::new(match self {
            Topic::Txs => "/cpchain/txs/1".to_owned(),
            Topic::Consensus => "/cpchain/consensus/1".to_owned(),
            Topic::Tickets => "/cpchain/tickets/1".to_owned(),
            Topic::Side(group) => {
                let hex: String = group.iter().map(|b| format!("{b:02x}")).collect();
                format!("/cpchain/side/{hex}/2")
            }
        })
    }
}

/// The verdict on a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: relay it.
    Accept,
    /// Not useful: drop it without penalty.
    Ignore,
    /// Invalid: drop it and penalise the sender.
    Reject,
}

/// Where peers' sync requests are answered from.
pub trait BlockSource: Send + Sync + 'static {
    /// Encoded final blocks from height `from` on, a bounded run.
    fn blocks_from(&self, from: u64) -> Vec<Vec<u8>>;
}

/// Answers peers' data-layer requests. Requests and answers are opaque to the network;
/// `handle` runs on a blocking thread, so it may read the disk.
pub trait DataService: Send + Sync + 'static {
    /// The answer to `request` from `peer`.
    fn handle(&self, peer: &PeerId, request: Bytes) -> DataMessage;
}

/// A data-layer message: parts sent one after the other as one length-prefixed message, so
/// a chunk can travel as its own part without being copied into a frame. A received
/// message is one part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataMessage(Vec<Bytes>);

impl DataMessage {
    /// A message of these parts, in order.
    pub fn from_parts(parts: Vec<Bytes>) -> Self {
        Self(parts)
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its bytes (copied only when it has several parts).
    pub fn into_bytes(self) -> Bytes {
        match <[Bytes; 1]>::try_from(self.0) {
            Ok([one]) => one,
            Err(parts) => parts.concat().into(),
        }
    }
}

impl From<Vec<u8>> for DataMessage {
    fn from(v: Vec<u8>) -> Self {
        Self(vec![v.into()])
    }
}

/// The data service of a node that stores no data: every answer is empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDataService;

impl DataService for NoDataService {
    fn handle(&self, _peer: &PeerId, _request: Bytes) -> DataMessage {
        DataMessage::default()
    }
}

/// A data request that got no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// The peer could not be reached or did not answer in time.
    #[error("peer {peer} did not answer: {reason}")]
    Failed {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The network task is gone (the node is stopping).
    #[error("the network is shut down")]
    Closed,
}

/// An opaque gossip message id, handed back with the verdict.
#[derive(Clone, Debug)]
pub struct MessageRef {
    id: gossipsub::MessageId,
    source: PeerId,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message to validate; answer with [`Network::validate`].
    Gossip {
        /// Its topic.
        topic: Topic,
        /// The message, for the verdict.
        msg: MessageRef,
        /// The payload.
        data: Vec<u8>,
    },
    /// A message of a side-chain group this node joined: from the group's topic (`msg` is
    /// set: answer with [`Network::validate`]) or sent to this node alone (`msg` is
    /// `None`).
    Side {
        /// The group.
        group: [u8; 32],
        /// The peer that wrote it (the gossip author, not the relay).
        from: PeerId,
        /// The gossip message, for the verdict.
        msg: Option<MessageRef>,
        /// The payload.
        data: Vec<u8>,
    },
    /// Blocks a peer sent in answer to [`Network::fetch`].
    Blocks {
        /// Who sent them.
        peer: PeerId,
        /// Encoded blocks.
        blocks: Vec<Vec<u8>>,
    },
}

/// A connected peer as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerView {
    /// Its id.
    pub peer_id: String,
    /// The address of the connection.
    pub address: String,
    /// Its gossipsub score.
    pub score: f64,
    /// Invalid messages it sent.
    pub invalid: u32,
}

/// Network counters and peers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NetStatus {
    /// This node's peer id.
    pub peer_id: String,
    /// Addresses it listens on.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerView>,
    /// Peers banned for invalid messages.
    pub banned: usize,
    /// Gossip messages published.
    pub published: u64,
    /// Gossip messages that could not be published (no peers yet, queue full).
    pub publish_failed: u64,
    /// Gossip messages received.
    pub received: u64,
    /// Messages rejected as invalid.
    pub rejected: u64,
}

enum Command {
    Publish(Topic, Vec<u8>),
    Validate(MessageRef, Verdict),
    Fetch(u64),
    Strike(PeerId),
    Respond(
        request_response::ResponseChannel<SyncResponse>,
        SyncResponse,
    ),
    DataRequest(
        PeerId,
        DataMessage,
        oneshot::Sender<Result<Bytes, RequestError>>,
    ),
    DataRespond(request_response::ResponseChannel<DataMessage>, DataMessage),
    DataPeers(oneshot::Sender<Vec<PeerId>>),
    SideJoin([u8; 32]),
    SideSend(PeerId, [u8; 32], Vec<u8>),
}

/// Least time between two sync requests of one peer that are served.
const SYNC_INTERVAL: Duration = Duration::from_millis(200);

/// The handle of a running network.
#[derive(Clone)]
pub struct Network {
    cmds: mpsc::Sender<Command>,
    status: Arc<Mutex<NetStatus>>,
    peer_id: PeerId,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
struct CborBytes(Vec<u8>);

impl Serialize for CborBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for CborBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CborBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<CborBytes, E> {
                Ok(CborBytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<CborBytes, E> {
                Ok(CborBytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SyncRequest {
    from: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SyncResponse {
    blocks: Vec<CborBytes>,
}

/// The data protocol's codec: a message is a 4-byte big-endian length and its bytes, read
/// into one buffer of exactly that size. Chunks are megabytes: CBOR would copy each one
/// twice more and grow its read buffer by doubling.
#[derive(Clone, Debug)]
struct DataCodec {
    max: usize,
}

impl DataCodec {
    async fn read<T: AsyncRead + Unpin + Send>(&self, io: &mut T) -> std::io::Result<DataMessage> {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a data message of {len} bytes (at most {})", self.max),
            ));
        }
        let mut buf = vec![0; len];
        io.read_exact(&mut buf).await?;
        Ok(buf.into())
    }

    async fn write<T: AsyncWrite + Unpin + Send>(
        &self,
        io: &mut T,
        msg: DataMessage,
    ) -> std::io::Result<()> {
        let len = u32::try_from(msg.len())
            .ok()
            .filter(|l| *l as usize <= self.max)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "a data message of {} bytes (at most {})",
                        msg.len(),
                        self.max
                    ),
                )
            })?;
        io.write_all(&len.to_be_bytes()).await?;
        for part in &msg.0 {
            io.write_all(part).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl request_response::Codec for DataCodec {
    type Protocol = StreamProtocol;
    type Request = DataMessage;
    type Response = DataMessage;

    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<DataMessage>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read(io).await
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<DataMessage>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: DataMessage,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: DataMessage,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write(io, res).await
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SideMessage {
    group: [u8; 32],
    data: CborBytes,
}

/// The answer to a side message: it arrived (the content travels only one way).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SideAck;

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    kademlia: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    data: request_response::Behaviour<DataCodec>,
    side: request_response::cbor::Behaviour<SideMessage, SideAck>,
}

const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/cpchain/kad/1");
const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/cpchain/sync/1");
const DATA_PROTOCOL: StreamProtocol = StreamProtocol::new("/cpchain/data/2");
// Side-chain wire version 2 (topic and protocol): a request tells what the asker holds.
// Nodes of version 1 cannot read it; on separate names they ignore each other's side chain
// instead of penalising each other for undecodable messages.
const SIDE_PROTOCOL: StreamProtocol = StreamProtocol::new("/cpchain/side/2");
const IDENTIFY_VERSION: &str = "/cpchain/1";

fn parse_addr(s: &str) -> Result<Multiaddr, P2pError> {
    s.parse()
        .map_err(|e: libp2p::multiaddr::Error| P2pError::Addr {
            addr: s.to_owned(),
            reason: e.to_string(),
        })
}

/// Every topic is scored alike: only invalid messages count.
fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // Score −n² after n rejected messages: gossipsub graylists a peer at −80
        // (from 9), and this node bans it from `ban_after_invalid` (5) already.
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.99,
        ..Default::default()
    }
}

fn score_params() -> gossipsub::PeerScoreParams {
    let mut p = gossipsub::PeerScoreParams {
        // Local networks put many nodes on one IP.
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for t in Topic::ALL {
        p.topics.insert(t.ident().hash(), topic_score_params());
    }
    p
}

fn behaviour(key: &identity::Keypair, config: &P2pConfig) -> Result<Behaviour, P2pError> {
    let setup = |e: String| P2pError::Setup(e);
    let gs_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        .heartbeat_initial_delay(Duration::from_millis(100))
        .mesh_n(4)
        .mesh_n_low(2)
        .mesh_n_high(8)
        .mesh_outbound_min(1)
        .gossip_lazy(4)
        .max_transmit_size(config.max_message_bytes)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .build()
        .map_err(|e| setup(e.to_string()))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gs_config,
    )
    .map_err(|e| setup(e.to_owned()))?;
    gossipsub
        .with_peer_score(score_params(), gossipsub::PeerScoreThresholds::default())
        .map_err(setup)?;
    for t in Topic::ALL {
        gossipsub
            .subscribe(&t.ident())
            .map_err(|e| setup(e.to_string()))?;
    }
    let peer_id = key.public().to_peer_id();
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(Duration::from_secs(30));
    let mut kademlia =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    kademlia.set_mode(Some(kad::Mode::Server));
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_VERSION.to_owned(), key.public())
            .with_agent_version(format!("cpchain/{}", env!("CARGO_PKG_VERSION"))),
    );
    let max = u64::try_from(config.max_message_bytes).unwrap_or(u64::MAX);
    let codec = request_response::cbor::codec::Codec::<SyncRequest, SyncResponse>::default()
        .set_request_size_maximum(1 << 10)
        .set_response_size_maximum(max.saturating_mul(4));
    let sync = request_response::cbor::Behaviour::with_codec(
        codec,
        [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
    );
    // A data request carries at most one chunk, an answer at most one chunk or a list
    // of small items; both fit the gossip limit with room for framing.
    let data = request_response::Behaviour::with_codec(
        DataCodec {
            max: config.max_message_bytes.saturating_add(1 << 16),
        },
        [(DATA_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(30))
            .with_max_concurrent_streams(256),
    );
    // A side message is one gossip-sized message; the answer is an acknowledgement.
    let side_codec = request_response::cbor::codec::Codec::<SideMessage, SideAck>::default()
        .set_request_size_maximum(max.saturating_add(1 << 10))
        .set_response_size_maximum(1 << 10);
    let side = request_response::cbor::Behaviour::with_codec(
        side_codec,
        [(SIDE_PROTOCOL, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(10))
            .with_max_concurrent_streams(256),
    );
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_peers))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(16)),
    );
    Ok(Behaviour {
        limits,
        gossipsub,
        kademlia,
        identify,
        sync,
        data,
        side,
    })
}

impl Network {
    /// Starts the swarm on the current tokio runtime with the node key `secret` (32
    /// bytes of Ed25519 secret). Events arrive on the returned receiver.
    pub fn start(
        config: P2pConfig,
        secret: [u8; 32],
        source: Arc<dyn BlockSource>,
    ) -> Result<(Network, mpsc::Receiver<NetEvent>), P2pError> {
        Self::start_with_data(config, secret, source, Arc::new(NoDataService))
    }

    /// [`Network::start`], with peers' data requests answered by `data`.
    pub fn start_with_data(
        config: P2pConfig,
        secret: [u8; 32],
        source: Arc<dyn BlockSource>,
        data: Arc<dyn DataService>,
    ) -> Result<(Network, mpsc::Receiver<NetEvent>), P2pError> {
        let key = identity::Keypair::ed25519_from_bytes(secret)
            .map_err(|e| P2pError::Key(e.to_string()))?;
        let peer_id = key.public().to_peer_id();
        let listen = parse_addr(&config.listen)?;
        let bootnodes = config
            .bootnodes
            .iter()
            .map(|b| parse_addr(b))
            .collect::<Result<Vec<_>, _>>()?;
        let b = behaviour(&key, &config)?;
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| P2pError::Setup(e.to_string()))?
            .with_behaviour(|_| b)
            .map_err(|e| P2pError::Setup(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        swarm.listen_on(listen).map_err(|e| P2pError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;
        let (cmd_tx, cmd_rx) = mpsc::channel(8192);
        let (ev_tx, ev_rx) = mpsc::channel(8192);
        let status = Arc::new(Mutex::new(NetStatus {
            peer_id: peer_id.to_string(),
            ..NetStatus::default()
        }));
        let driver = Driver {
            swarm,
            commands: cmd_tx.downgrade(),
            served: BTreeMap::new(),
            config,
            bootnodes,
            source,
            data,
            pending_data: HashMap::new(),
            events: ev_tx,
            status: status.clone(),
            peers: BTreeMap::new(),
            strikes: BTreeMap::new(),
            banned: BTreeSet::new(),
            next_fetch_peer: 0,
            side_groups: BTreeSet::new(),
        };
        tokio::spawn(driver.run(cmd_rx));
        Ok((
            Network {
                cmds: cmd_tx,
                status,
                peer_id,
            },
            ev_rx,
        ))
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> String {
        self.peer_id.to_string()
    }

    fn send(&self, c: Command) {
        // A full queue drops the command: gossip is best effort and consensus repeats
        // itself on timeouts.
        let _ = self.cmds.try_send(c);
    }

    /// Publishes `data` on `topic`.
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        self.send(Command::Publish(topic, data));
    }

    /// Reports the verdict on a received gossip message.
    pub fn validate(&self, msg: MessageRef, verdict: Verdict) {
        self.send(Command::Validate(msg, verdict));
    }

    /// Asks a connected peer for final blocks from `from` on.
    pub fn fetch(&self, from: u64) {
        self.send(Command::Fetch(from));
    }

    /// Subscribes to the topic of side-chain group `group`; its messages then arrive as
    /// [`NetEvent::Side`]. Joining twice is harmless.
    pub fn join_side_group(&self, group: [u8; 32]) {
        self.send(Command::SideJoin(group));
    }

    /// Sends a side-chain message of `group` to `peer` alone (best effort: a full queue
    /// or an unreachable peer drops it, and the side chain asks again).
    pub fn side_send(&self, peer: PeerId, group: [u8; 32], data: Vec<u8>) {
        self.send(Command::SideSend(peer, group, data));
    }

    /// Counts an invalid answer against `peer` (as a rejected gossip message does).
    pub fn strike(&self, peer: PeerId) {
        self.send(Command::Strike(peer));
    }

    /// Sends a data-layer request to `peer` and waits for its answer.
    pub async fn data_request(
        &self,
        peer: PeerId,
        request: DataMessage,
    ) -> Result<Bytes, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Command::DataRequest(peer, request, tx))
            .await
            .map_err(|_| RequestError::Closed)?;
        rx.await.map_err(|_| RequestError::Closed)?
    }

    /// The peers that may store data: connected peers and those in the Kademlia routing
    /// table, without banned ones.
    pub async fn data_peers(&self) -> Vec<PeerId> {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::DataPeers(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// This node's peer id, typed.
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Peers and counters.
    pub fn status(&self) -> NetStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Driver {
    swarm: Swarm<Behaviour>,
    /// Where sync answers computed off the task come back (weak: the task ends when
    /// every [`Network`] handle is gone).
    commands: mpsc::WeakSender<Command>,
    /// When each peer's last sync request was served.
    served: BTreeMap<PeerId, std::time::Instant>,
    config: P2pConfig,
    bootnodes: Vec<Multiaddr>,
    source: Arc<dyn BlockSource>,
    data: Arc<dyn DataService>,
    pending_data:
        HashMap<request_response::OutboundRequestId, oneshot::Sender<Result<Bytes, RequestError>>>,
    events: mpsc::Sender<NetEvent>,
    status: Arc<Mutex<NetStatus>>,
    peers: BTreeMap<PeerId, Multiaddr>,
    strikes: BTreeMap<PeerId, u32>,
    banned: BTreeSet<PeerId>,
    next_fetch_peer: usize,
    side_groups: BTreeSet<[u8; 32]>,
}

impl Driver {
    fn stat(&self) -> std::sync::MutexGuard<'_, NetStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<Command>) {
        self.dial_bootnodes();
        let mut redial = tokio::time::interval(Duration::from_secs(3));
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm(ev).await,
                cmd = cmds.recv() => match cmd {
                    Some(c) => self.on_command(c),
                    None => return,
                },
                _ = redial.tick() => {
                    self.dial_bootnodes();
                    if self.swarm.connected_peers().next().is_some() {
                        let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
                    }
                }
                _ = refresh.tick() => self.refresh_status(),
            }
        }
    }

    fn dial_bootnodes(&mut self) {
        let connected: BTreeSet<&Multiaddr> = self.peers.values().collect();
        let todo: Vec<Multiaddr> = self
            .bootnodes
            .iter()
            .filter(|a| !connected.contains(a))
            .cloned()
            .collect();
        for a in todo {
            if let Err(e) = self.swarm.dial(a.clone()) {
                tracing::debug!(addr = %a, error = %e, "dial");
            }
        }
    }

    fn refresh_status(&mut self) {
        let gs = &self.swarm.behaviour().gossipsub;
        let peers: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(p, a)| PeerView {
                peer_id: p.to_string(),
                address: a.to_string(),
                score: gs.peer_score(p).unwrap_or(0.0),
                invalid: self.strikes.get(p).copied().unwrap_or(0),
            })
            .collect();
        let listen: Vec<String> = self.swarm.listeners().map(|a| a.to_string()).collect();
        let banned = self.banned.len();
        let mut st = self.stat();
        st.peers = peers;
        st.listen = listen;
        st.banned = banned;
    }

    fn strike(&mut self, peer: PeerId) {
        self.stat().rejected += 1;
        let n = self.strikes.entry(peer).or_default();
        *n += 1;
        if *n >= self.config.ban_after_invalid && self.banned.insert(peer) {
            tracing::warn!(%peer, "banning a peer that sent invalid messages");
            self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Publish(topic, data) => {
                let r = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic.ident(), data);
                let mut st = self.stat();
                match r {
                    Ok(_) => st.published += 1,
                    Err(e) => {
                        st.publish_failed += 1;
                        tracing::trace!(error = %e, "publish");
                    }
                }
            }
            Command::Validate(msg, verdict) => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&msg.id, &msg.source, acceptance);
                if verdict == Verdict::Reject {
                    self.strike(msg.source);
                }
            }
            Command::Fetch(from) => {
                let peers: Vec<PeerId> = self.peers.keys().copied().collect();
                if peers.is_empty() {
                    return;
                }
                let peer = peers[self.next_fetch_peer % peers.len()];
                self.next_fetch_peer = self.next_fetch_peer.wrapping_add(1);
                self.swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, SyncRequest { from });
            }
            Command::Strike(peer) => self.strike(peer),
            Command::Respond(channel, resp) => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
            }
            Command::DataRequest(peer, request, reply) => {
                if self.banned.contains(&peer) {
                    let _ = reply.send(Err(RequestError::Failed {
                        peer: peer.to_string(),
                        reason: "banned".into(),
                    }));
                    return;
                }
                let id = self.swarm.behaviour_mut().data.send_request(&peer, request);
                self.pending_data.insert(id, reply);
            }
            Command::DataRespond(channel, resp) => {
                let _ = self.swarm.behaviour_mut().data.send_response(channel, resp);
            }
            Command::SideJoin(group) => {
                if self.side_groups.insert(group) {
                    let topic = Topic::Side(group).ident();
                    let gs = &mut self.swarm.behaviour_mut().gossipsub;
                    if let Err(e) = gs.set_topic_params(topic.clone(), topic_score_params()) {
                        tracing::warn!(error = %e, "side topic scoring");
                    }
                    if let Err(e) = gs.subscribe(&topic) {
                        tracing::warn!(error = %e, "cannot subscribe to the side-chain topic");
                    }
                }
            }
            Command::SideSend(peer, group, data) => {
                if peer == *self.swarm.local_peer_id() || self.banned.contains(&peer) {
                    return;
                }
                self.swarm.behaviour_mut().side.send_request(
                    &peer,
                    SideMessage {
                        group,
                        data: CborBytes(data),
                    },
                );
            }
            Command::DataPeers(reply) => {
                let mut peers: BTreeSet<PeerId> = self.peers.keys().copied().collect();
                for bucket in self.swarm.behaviour_mut().kademlia.kbuckets() {
                    for e in bucket.iter() {
                        peers.insert(*e.node.key.preimage());
                    }
                }
                peers.retain(|p| !self.banned.contains(p));
                let _ = reply.send(peers.into_iter().collect());
            }
        }
    }

    async fn on_side(&mut self, ev: request_response::Event<SideMessage, SideAck>) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .side
                    .send_response(channel, SideAck);
                if self.banned.contains(&peer) || !self.side_groups.contains(&request.group) {
                    return;
                }
                let ev = NetEvent::Side {
                    group: request.group,
                    from: peer,
                    msg: None,
                    data: request.data.0,
                };
                let _ = self.events.send(ev).await;
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "side-chain message not delivered");
            }
            _ => {}
        }
    }

    fn on_data(&mut self, ev: request_response::Event<DataMessage, DataMessage>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let service = self.data.clone();
                    let cmds = self.commands.clone();
                    tokio::task::spawn_blocking(move || {
                        let answer = service.handle(&peer, request.into_bytes());
                        if let Some(cmds) = cmds.upgrade() {
                            let _ = cmds.blocking_send(Command::DataRespond(channel, answer));
                        }
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_data.remove(&request_id) {
                        let _ = reply.send(Ok(response.into_bytes()));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending_data.remove(&request_id) {
                    let _ = reply.send(Err(RequestError::Failed {
                        peer: peer.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "data request from peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    async fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer_id = %self.swarm.local_peer_id(), "p2p listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                if self.banned.contains(&peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let addr = endpoint.get_remote_address().clone();
                // Remember the dialed address for outbound connections, so a dropped
                // bootnode is recognised and dialed again.
                let addr = match &endpoint {
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => address.clone(),
                    _ => addr,
                };
                tracing::debug!(%peer_id, %addr, "peer connected");
                self.peers.insert(peer_id, addr);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                tracing::debug!(%peer_id, "peer disconnected");
                self.peers.remove(&peer_id);
                self.served.remove(&peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                self.stat().received += 1;
                let topic = Topic::ALL
                    .into_iter()
                    .chain(self.side_groups.iter().map(|g| Topic::Side(*g)))
                    .find(|t| t.ident().hash() == message.topic);
                let msg = MessageRef {
                    id: message_id,
                    source: propagation_source,
                };
                match topic {
                    Some(Topic::Side(group)) => {
                        let ev = NetEvent::Side {
                            group,
                            from: message.source.unwrap_or(propagation_source),
                            msg: Some(msg),
                            data: message.data,
                        };
                        let _ = self.events.send(ev).await;
                    }
                    Some(topic) => {
                        let ev = NetEvent::Gossip {
                            topic,
                            msg,
                            data: message.data,
                        };
                        let _ = self.events.send(ev).await;
                    }
                    None => self.on_command(Command::Validate(msg, Verdict::Reject)),
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocol_version != IDENTIFY_VERSION {
                    tracing::debug!(%peer_id, version = %info.protocol_version, "foreign peer");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if info.protocols.contains(&KAD_PROTOCOL) {
                    for a in info.listen_addrs {
                        self.swarm.behaviour_mut().kademlia.add_address(&peer_id, a);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // A peer asking too often gets an empty answer.
                    let now = std::time::Instant::now();
                    let last = self.served.insert(peer, now);
                    if last.is_some_and(|t| now.duration_since(t) < SYNC_INTERVAL) {
                        let resp = SyncResponse { blocks: Vec::new() };
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
                        return;
                    }
                    // Reading the store takes a moment: off the swarm's task, which
                    // keeps gossiping; the answer comes back as a command.
                    let source = self.source.clone();
                    let cmds = self.commands.clone();
                    tokio::task::spawn_blocking(move || {
                        let blocks = source.blocks_from(request.from);
                        let resp = SyncResponse {
                            blocks: blocks.into_iter().map(CborBytes).collect(),
                        };
                        if let Some(cmds) = cmds.upgrade() {
                            let _ = cmds.blocking_send(Command::Respond(channel, resp));
                        }
                    });
                }
                request_response::Message::Response { response, .. } => {
                    let blocks = response.blocks.into_iter().map(|b| b.0).collect();
                    let _ = self.events.send(NetEvent::Blocks { peer, blocks }).await;
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure { peer, error, .. },
            )) => {
                tracing::debug!(%peer, %error, "sync request failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Data(ev)) => self.on_data(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Side(ev)) => self.on_side(ev).await,
            _ => {}
        }
    }
}
