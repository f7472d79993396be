//! The node's network side of the data layer, behind `/v1/data/…`: placing a client's
//! already-encrypted chunks on the storage nodes closest to each chunk's hash, rebuilding
//! blocks from any k verified chunks (penalising nodes that send a chunk that does not
//! hash to its id), delivering kfrags to a grant's proxies, collecting cfrags, and the
//! repair task that re-creates lost chunks. Keys and plaintext never come here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cpc_api::ApiError;
use cpc_api::data::{
    CfragsView, DataGateway, DataStatus, DeliveryView, FetchedBlock, GatewayFuture, StoredChunk,
};
use cpc_chain::Chain;
use cpc_data::erasure::BlockEntry;
use cpc_data::placement::{closest, place_block, place_repair};
use cpc_data::proto::{MAX_HAS_IDS, NOT_ITS_ID};
use cpc_data::{
    BlockAssembler, DataRequest, DataResponse, KeyAnnouncement, KfragDelivery, Manifest, Offer,
    RecordMeta, RepairPlan, plan_repair, rebuild_chunks,
};
use cpc_p2p::{DataMessage, Network, PeerId};
use cpc_types::{Address, Hash32, sha256};
use serde::{Deserialize, Serialize};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most proxies asked for cfrags.
const MAX_PROXIES: usize = 16;
/// Domain of the key whose closest nodes are a grant's proxies.
const PROXY_DOMAIN: &[u8] = b"cpchain/data/proxies/v1";
/// Records the repair task looks at per round.
const REPAIR_BATCH: usize = 32;

/// The `[data]` section of the node configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DataConfig {
    /// Milliseconds between repair rounds (0: no repair task).
    pub(crate) repair_interval_ms: u64,
    /// Repair a block when fewer than k + repair_margin of its n chunks remain.
    pub(crate) repair_margin: u16,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            repair_interval_ms: 30_000,
            repair_margin: 2,
        }
    }
}

/// How the gateway reaches storage nodes (the swarm, or a test's fake).
pub(crate) trait Transport: Send + Sync + 'static {
    /// This node.
    fn local(&self) -> PeerId;
    /// The other storage nodes.
    fn peers(&self) -> BoxFuture<'_, Vec<PeerId>>;
    /// One request to one node (this one included).
    fn request(
        &self,
        peer: PeerId,
        req: DataRequest,
    ) -> BoxFuture<'_, Result<DataResponse, String>>;
    /// Penalises a node that answered with data that fails its hash.
    fn strike(&self, peer: PeerId);
}

/// The swarm, with this node's own [`crate::data::DataNode`] answering for it.
pub(crate) struct NetTransport {
    pub(crate) net: Network,
    pub(crate) node: Arc<crate::data::DataNode>,
}

impl Transport for NetTransport {
    fn local(&self) -> PeerId {
        self.net.local_peer_id()
    }

    fn peers(&self) -> BoxFuture<'_, Vec<PeerId>> {
        Box::pin(self.net.data_peers())
    }

    fn request(
        &self,
        peer: PeerId,
        req: DataRequest,
    ) -> BoxFuture<'_, Result<DataResponse, String>> {
        Box::pin(async move {
            if peer == self.net.local_peer_id() {
                let node = self.node.clone();
                return tokio::task::spawn_blocking(move || node.answer(req))
                    .await
                    .map_err(|e| e.to_string());
            }
            let bytes = self
                .net
                .data_request(peer, DataMessage::from_parts(req.to_parts()))
                .await
                .map_err(|e| e.to_string())?;
            DataResponse::from_shared(&bytes).map_err(|e| format!("{peer}: {e}"))
        })
    }

    fn strike(&self, peer: PeerId) {
        self.net.strike(peer);
    }
}

/// The gateway of a running node.
pub(crate) fn gateway(
    net: Network,
    node: Arc<crate::data::DataNode>,
) -> Arc<Gateway<NetTransport>> {
    let counted = node.clone();
    Arc::new(Gateway::new(
        NetTransport { net, node },
        Box::new(move || counted.stored()),
    ))
}

#[derive(Default)]
struct Counters {
    placed: AtomicU64,
    fetched: AtomicU64,
    bad: AtomicU64,
    repaired: AtomicU64,
    lost: AtomicU64,
    rounds: AtomicU64,
}

/// The data layer's network operations.
pub(crate) struct Gateway<T: Transport> {
    t: Arc<T>,
    counters: Counters,
    stored: Box<dyn Fn() -> u64 + Send + Sync>,
}

fn node_key(p: &PeerId) -> Hash32 {
    sha256(&[&p.to_bytes()])
}

/// The key whose closest nodes hold a grant's kfrags.
fn proxy_key(stream: &Hash32, grantee: &Address) -> Hash32 {
    sha256(&[PROXY_DOMAIN, &stream.0, &grantee.0])
}

fn unavailable(m: String) -> ApiError {
    ApiError::Unavailable(m)
}

impl<T: Transport> Gateway<T> {
    pub(crate) fn new(t: T, stored: Box<dyn Fn() -> u64 + Send + Sync>) -> Self {
        Self {
            t: Arc::new(t),
            counters: Counters::default(),
            stored,
        }
    }

    /// This node and its peers, with their keys in Kademlia's metric.
    async fn nodes(&self) -> Vec<(PeerId, Hash32)> {
        let local = self.t.local();
        let mut all: BTreeSet<PeerId> = self.t.peers().await.into_iter().collect();
        all.insert(local);
        all.into_iter().map(|p| (p, node_key(&p))).collect()
    }

    /// Sends `reqs` concurrently; answers come back in order.
    async fn ask_all(
        &self,
        reqs: Vec<(PeerId, DataRequest)>,
    ) -> Vec<(PeerId, Result<DataResponse, String>)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, (peer, req)) in reqs.into_iter().enumerate() {
            let t = self.t.clone();
            set.spawn(async move { (i, peer, t.request(peer, req).await) });
        }
        let mut out = BTreeMap::new();
        while let Some(r) = set.join_next().await {
            if let Ok((i, peer, r)) = r {
                out.insert(i, (peer, r));
            }
        }
        out.into_values().collect()
    }

    fn bad_chunk(&self, peer: PeerId, id: &Hash32) {
        tracing::warn!(%peer, chunk = %id, "a storage node sent a chunk that does not match its hash; penalised");
        self.counters.bad.fetch_add(1, Ordering::Relaxed);
        self.t.strike(peer);
    }

    async fn store_chunks(
        &self,
        chunks: Vec<(Hash32, Bytes)>,
        replicas: usize,
    ) -> Result<Vec<StoredChunk>, ApiError> {
        let nodes = self.nodes().await;
        // Placed by the ids they came with: the storage nodes check them.
        let (ids, chunks): (Vec<Hash32>, Vec<Bytes>) = chunks.into_iter().unzip();
        let placed = place_block(&ids, &nodes, replicas);
        let mut reqs = Vec::new();
        for (i, targets) in placed.iter().enumerate() {
            for p in targets {
                reqs.push((
                    *p,
                    DataRequest::Store {
                        id: ids[i],
                        bytes: chunks[i].clone(),
                    },
                ));
            }
        }
        let order: Vec<usize> = placed
            .iter()
            .enumerate()
            .flat_map(|(i, t)| std::iter::repeat_n(i, t.len()))
            .collect();
        let mut stored_on: Vec<Vec<String>> = vec![Vec::new(); chunks.len()];
        let mut last_error: Vec<String> = vec![String::new(); chunks.len()];
        for ((peer, r), i) in self.ask_all(reqs).await.into_iter().zip(order) {
            match r {
                Ok(DataResponse::Ok) => stored_on[i].push(peer.to_string()),
                Ok(DataResponse::Refused(m)) if m == NOT_ITS_ID => {
                    // Checked here only when refused, so the common path hashes once.
                    if sha256(&[&chunks[i]]) != ids[i] {
                        return Err(ApiError::Malformed(format!(
                            "chunk {} does not hash to its id",
                            ids[i]
                        )));
                    }
                    tracing::warn!(%peer, chunk = %ids[i], "a storage node refused a chunk that matches its id; penalised");
                    self.t.strike(peer);
                    last_error[i] = format!("{peer}: {m}");
                }
                Ok(DataResponse::Refused(m)) => last_error[i] = format!("{peer}: {m}"),
                Ok(other) => last_error[i] = format!("{peer}: unexpected answer {other:?}"),
                Err(e) => last_error[i] = e,
            }
        }
        // A chunk no target took goes to the next nodes by distance.
        for i in 0..chunks.len() {
            if !stored_on[i].is_empty() {
                continue;
            }
            for p in closest(&ids[i], &nodes, nodes.len()) {
                if placed[i].contains(&p) {
                    continue;
                }
                let req = DataRequest::Store {
                    id: ids[i],
                    bytes: chunks[i].clone(),
                };
                match self.t.request(p, req).await {
                    Ok(DataResponse::Ok) => {
                        stored_on[i].push(p.to_string());
                        break;
                    }
                    Ok(other) => last_error[i] = format!("{p}: {other:?}"),
                    Err(e) => last_error[i] = e,
                }
            }
            if stored_on[i].is_empty() {
                return Err(unavailable(format!(
                    "chunk {} could not be stored on any of {} storage nodes: {}",
                    ids[i],
                    nodes.len(),
                    last_error[i]
                )));
            }
        }
        self.counters
            .placed
            .fetch_add(chunks.len() as u64, Ordering::Relaxed);
        Ok(ids
            .into_iter()
            .zip(stored_on)
            .map(|(id, stored_on)| StoredChunk { id, stored_on })
            .collect())
    }

    async fn fetch_chunk(&self, id: Hash32) -> Result<Vec<u8>, ApiError> {
        let nodes = self.nodes().await;
        for p in closest(&id, &nodes, nodes.len()) {
            match self.t.request(p, DataRequest::Fetch { id }).await {
                Ok(DataResponse::Chunk(Some(b))) if sha256(&[&b]) == id => return Ok(b.into()),
                Ok(DataResponse::Chunk(Some(_))) => self.bad_chunk(p, &id),
                _ => {}
            }
        }
        Err(ApiError::NotFound(format!(
            "chunk {id} is on none of the {} reachable storage nodes",
            nodes.len()
        )))
    }

    /// Gathers k verified chunks of a block: the data chunks first, each from the node
    /// it was placed on, then any other; a chunk that fails its hash is dropped and its
    /// sender penalised.
    async fn assemble(&self, entry: BlockEntry) -> Result<(BlockAssembler, usize), ApiError> {
        let nodes = self.nodes().await;
        let mut asm =
            BlockAssembler::new(entry.clone()).map_err(|e| ApiError::Malformed(e.to_string()))?;
        let candidates = place_block(&entry.chunks, &nodes, nodes.len());
        let mut cursor = vec![0usize; entry.n()];
        let mut dead: BTreeSet<PeerId> = BTreeSet::new();
        let mut rejected = 0;
        while !asm.is_ready() {
            let need = entry.k() - asm.held().len();
            let mut batch = Vec::new();
            for i in asm.wanted() {
                if batch.len() == need {
                    break;
                }
                while let Some(p) = candidates[i].get(cursor[i]) {
                    cursor[i] += 1;
                    if !dead.contains(p) {
                        batch.push((i, *p));
                        break;
                    }
                }
            }
            if batch.is_empty() {
                return Err(unavailable(format!(
                    "block {} of interval {}: only {} of the {} chunks needed answer from {} storage nodes; try again when more nodes are up",
                    entry.seq,
                    entry.interval,
                    asm.held().len(),
                    entry.k(),
                    nodes.len()
                )));
            }
            let reqs = batch
                .iter()
                .map(|(i, p)| {
                    (
                        *p,
                        DataRequest::Fetch {
                            id: entry.chunks[*i],
                        },
                    )
                })
                .collect();
            for ((peer, r), (i, _)) in self.ask_all(reqs).await.into_iter().zip(&batch) {
                match r {
                    Ok(DataResponse::Chunk(Some(bytes))) => {
                        if asm.offer(*i, bytes) == Offer::Rejected {
                            rejected += 1;
                            self.bad_chunk(peer, &entry.chunks[*i]);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "storage node unreachable");
                        dead.insert(peer);
                    }
                }
            }
        }
        Ok((asm, rejected))
    }

    async fn grant_proxies(&self, stream: &Hash32, grantee: &Address, count: usize) -> Vec<PeerId> {
        closest(&proxy_key(stream, grantee), &self.nodes().await, count)
    }

    /// One repair round over the next records on chain; `cursor` walks them in turn.
    pub(crate) async fn repair_round(
        &self,
        chain: &Chain,
        cursor: &mut Option<(Hash32, u64)>,
        margin: usize,
    ) {
        self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let after = *cursor;
        let records = chain.with_state(|s| s.all_data_records(after, REPAIR_BATCH));
        *cursor = if records.len() < REPAIR_BATCH {
            None
        } else {
            records.last().map(|r| (r.stream_id, r.first_interval))
        };
        if records.is_empty() {
            return;
        }
        let local = self.t.local();
        // Only nodes that answer count: a dead one lingers in the routing table.
        let known = self.nodes().await;
        let pings = known
            .iter()
            .map(|(p, _)| (*p, DataRequest::Has { ids: Vec::new() }))
            .collect();
        let live: BTreeSet<PeerId> = self
            .ask_all(pings)
            .await
            .into_iter()
            .filter(|(_, r)| matches!(r, Ok(DataResponse::Have(_))))
            .map(|(p, _)| p)
            .collect();
        let nodes: Vec<(PeerId, Hash32)> = known
            .into_iter()
            .filter(|(p, _)| live.contains(p))
            .collect();
        for rec in records {
            let Ok(meta) = RecordMeta::of(&rec) else {
                continue;
            };
            // One node repairs each upload: the one closest to its manifest.
            if closest(&meta.manifest, &nodes, 1).first() != Some(&local) {
                continue;
            }
            let manifest = match self.fetch_chunk(meta.manifest).await {
                Ok(bytes) => match Manifest::verify(&bytes, &rec, chain.accel()) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(stream = %rec.stream_id, error = %e, "unusable manifest");
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(stream = %rec.stream_id, error = %e, "manifest not found; its upload cannot be repaired");
                    continue;
                }
            };
            if let Err(e) = self.repair_upload(&manifest, &nodes, margin).await {
                tracing::warn!(stream = %rec.stream_id, error = %e, "repair failed");
            }
        }
    }

    async fn repair_upload(
        &self,
        manifest: &Manifest,
        nodes: &[(PeerId, Hash32)],
        margin: usize,
    ) -> Result<(), ApiError> {
        // Who holds what: one Has per node per batch of ids.
        let ids: Vec<Hash32> = manifest
            .blocks
            .iter()
            .flat_map(|b| b.chunks.iter().copied())
            .collect();
        let mut holders: HashMap<Hash32, Vec<PeerId>> = HashMap::new();
        for batch in ids.chunks(MAX_HAS_IDS) {
            let reqs = nodes
                .iter()
                .map(|(p, _)| {
                    (
                        *p,
                        DataRequest::Has {
                            ids: batch.to_vec(),
                        },
                    )
                })
                .collect();
            for (peer, r) in self.ask_all(reqs).await {
                if let Ok(DataResponse::Have(flags)) = r {
                    for (id, has) in batch.iter().zip(flags) {
                        if has {
                            holders.entry(*id).or_default().push(peer);
                        }
                    }
                }
            }
        }
        for entry in &manifest.blocks {
            let present: Vec<bool> = entry
                .chunks
                .iter()
                .map(|id| holders.contains_key(id))
                .collect();
            let missing = match plan_repair(entry, &present, entry.k() + margin) {
                RepairPlan::Healthy => continue,
                RepairPlan::Lost => {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        seq = entry.seq,
                        interval = entry.interval,
                        "block lost: fewer than k chunks remain"
                    );
                    continue;
                }
                RepairPlan::Repair { missing, .. } => missing,
            };
            let (asm, _) = self.assemble(entry.clone()).await?;
            let rebuilt =
                rebuild_chunks(&asm, &missing).map_err(|e| ApiError::Internal(e.to_string()))?;
            let mut block_holders: Vec<PeerId> = entry
                .chunks
                .iter()
                .flat_map(|id| holders.get(id).cloned().unwrap_or_default())
                .collect();
            for (i, bytes) in rebuilt {
                let id = entry.chunks[i];
                let Some(to) = place_repair(&id, nodes, &block_holders) else {
                    continue;
                };
                let req = DataRequest::Store {
                    id,
                    bytes: bytes.into(),
                };
                match self.t.request(to, req).await {
                    Ok(DataResponse::Ok) => {
                        self.counters.repaired.fetch_add(1, Ordering::Relaxed);
                        block_holders.push(to);
                        tracing::info!(chunk = %id, node = %to, seq = entry.seq, "re-created a lost chunk");
                    }
                    other => {
                        tracing::warn!(chunk = %id, node = %to, answer = ?other, "could not store a repaired chunk")
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs repair rounds until the node stops.
pub(crate) async fn repair_task<T: Transport>(
    gateway: Arc<Gateway<T>>,
    node: Arc<crate::data::DataNode>,
    chain: Arc<Chain>,
    config: DataConfig,
) {
    if config.repair_interval_ms == 0 {
        return;
    }
    let mut cursor = None;
    let mut tick = tokio::time::interval(Duration::from_millis(config.repair_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        // Revoked grants' kfrags go even if nobody asks the proxy again.
        let n = node.clone();
        if let Ok(dropped) = tokio::task::spawn_blocking(move || n.prune()).await
            && dropped > 0
        {
            tracing::info!(dropped, "deleted the kfrags of revoked grants");
        }
        gateway
            .repair_round(&chain, &mut cursor, usize::from(config.repair_margin))
            .await;
    }
}

impl<T: Transport> DataGateway for Gateway<T> {
    fn store(
        &self,
        chunks: Vec<(Hash32, Bytes)>,
        replicas: usize,
    ) -> GatewayFuture<'_, Vec<StoredChunk>> {
        Box::pin(self.store_chunks(chunks, replicas))
    }

    fn fetch(&self, id: Hash32) -> GatewayFuture<'_, Vec<u8>> {
        Box::pin(self.fetch_chunk(id))
    }

    fn fetch_block(&self, entry: BlockEntry) -> GatewayFuture<'_, FetchedBlock> {
        Box::pin(async move {
            let (asm, rejected) = self.assemble(entry).await?;
            let ciphertext = asm
                .finish()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            self.counters.fetched.fetch_add(1, Ordering::Relaxed);
            Ok(FetchedBlock {
                ciphertext,
                rejected,
            })
        })
    }

    fn deliver_kfrags(
        &self,
        deliveries: Vec<KfragDelivery>,
    ) -> GatewayFuture<'_, Vec<DeliveryView>> {
        Box::pin(async move {
            let (stream, grantee) = (deliveries[0].stream, deliveries[0].grantee);
            let proxies = self
                .grant_proxies(&stream, &grantee, deliveries.len())
                .await;
            if proxies.len() < deliveries.len() {
                return Err(unavailable(format!(
                    "{} kfrags but only {} storage nodes are reachable; grant with --proxies {} or fewer",
                    deliveries.len(),
                    proxies.len(),
                    proxies.len()
                )));
            }
            let reqs = proxies
                .into_iter()
                .zip(deliveries)
                .map(|(p, d)| (p, DataRequest::Kfrag(d)))
                .collect();
            Ok(self
                .ask_all(reqs)
                .await
                .into_iter()
                .map(|(peer, r)| {
                    let error = match r {
                        Ok(DataResponse::Ok) => None,
                        Ok(DataResponse::Refused(m)) => Some(m),
                        Ok(other) => Some(format!("unexpected answer {other:?}")),
                        Err(e) => Some(e),
                    };
                    DeliveryView {
                        proxy: peer.to_string(),
                        accepted: error.is_none(),
                        error,
                    }
                })
                .collect())
        })
    }

    fn cfrags(
        &self,
        stream: Hash32,
        grantee: Address,
        interval: u64,
    ) -> GatewayFuture<'_, CfragsView> {
        Box::pin(async move {
            let proxies = self.grant_proxies(&stream, &grantee, MAX_PROXIES).await;
            let reqs = proxies
                .into_iter()
                .map(|p| {
                    (
                        p,
                        DataRequest::Reencrypt {
                            stream,
                            grantee,
                            interval,
                        },
                    )
                })
                .collect();
            let mut view = CfragsView::default();
            for (peer, r) in self.ask_all(reqs).await {
                match r {
                    Ok(DataResponse::Cfrag(c)) => view.cfrags.push(hex::encode(c)),
                    Ok(DataResponse::Refused(m)) => view.refused.push(m),
                    Ok(other) => view
                        .refused
                        .push(format!("{peer}: unexpected answer {other:?}")),
                    Err(e) => view.refused.push(e),
                }
            }
            view.refused.sort();
            view.refused.dedup();
            Ok(view)
        })
    }

    fn announce(&self, announcement: KeyAnnouncement) -> GatewayFuture<'_, usize> {
        Box::pin(async move {
            let reqs = self
                .nodes()
                .await
                .into_iter()
                .map(|(p, _)| (p, DataRequest::Announce(announcement.clone())))
                .collect();
            Ok(self
                .ask_all(reqs)
                .await
                .into_iter()
                .filter(|(_, r)| matches!(r, Ok(DataResponse::Ok)))
                .count())
        })
    }

    fn lookup(&self, account: Address) -> GatewayFuture<'_, Option<KeyAnnouncement>> {
        Box::pin(async move {
            let local = self.t.local();
            if let Ok(DataResponse::Announcement(Some(a))) =
                self.t.request(local, DataRequest::Lookup { account }).await
                && a.verify(&account).is_ok()
            {
                return Ok(Some(a));
            }
            let reqs = self
                .t
                .peers()
                .await
                .into_iter()
                .map(|p| (p, DataRequest::Lookup { account }))
                .collect();
            Ok(self
                .ask_all(reqs)
                .await
                .into_iter()
                .find_map(|(_, r)| match r {
                    Ok(DataResponse::Announcement(Some(a))) if a.verify(&account).is_ok() => {
                        Some(a)
                    }
                    _ => None,
                }))
        })
    }

    fn status(&self) -> DataStatus {
        let c = &self.counters;
        DataStatus {
            chunks_stored: (self.stored)(),
            chunks_placed: c.placed.load(Ordering::Relaxed),
            blocks_fetched: c.fetched.load(Ordering::Relaxed),
            bad_chunks: c.bad.load(Ordering::Relaxed),
            chunks_repaired: c.repaired.load(Ordering::Relaxed),
            blocks_lost: c.lost.load(Ordering::Relaxed),
            repair_rounds: c.rounds.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use cpc_data::erasure::encode_chunks;

    use super::*;

    /// Storage nodes in memory: some down, some returning altered chunks.
    #[derive(Default)]
    struct FakeNet {
        nodes: Vec<PeerId>,
        stores: Mutex<HashMap<PeerId, HashMap<Hash32, Vec<u8>>>>,
        down: Mutex<BTreeSet<PeerId>>,
        tamper: Mutex<BTreeSet<PeerId>>,
        strikes: Mutex<Vec<PeerId>>,
    }

    impl FakeNet {
        fn new(n: usize) -> Self {
            Self {
                nodes: (0..n).map(|_| PeerId::random()).collect(),
                ..Self::default()
            }
        }
    }

    impl Transport for Arc<FakeNet> {
        fn local(&self) -> PeerId {
            self.nodes[0]
        }
        fn peers(&self) -> BoxFuture<'_, Vec<PeerId>> {
            Box::pin(async move { self.nodes[1..].to_vec() })
        }
        fn request(
            &self,
            peer: PeerId,
            req: DataRequest,
        ) -> BoxFuture<'_, Result<DataResponse, String>> {
            Box::pin(async move {
                if self.down.lock().unwrap().contains(&peer) {
                    return Err(format!("{peer} is down"));
                }
                let mut stores = self.stores.lock().unwrap();
                let store = stores.entry(peer).or_default();
                Ok(match req {
                    DataRequest::Store { id, bytes } => {
                        if sha256(&[&bytes]) != id {
                            return Ok(DataResponse::Refused(NOT_ITS_ID.into()));
                        }
                        store.insert(id, bytes.to_vec());
                        DataResponse::Ok
                    }
                    DataRequest::Fetch { id } => {
                        let mut c = store.get(&id).cloned();
                        if self.tamper.lock().unwrap().contains(&peer)
                            && let Some(b) = c.as_mut()
                        {
                            b[0] ^= 1;
                        }
                        DataResponse::Chunk(c.map(Bytes::from))
                    }
                    DataRequest::Has { ids } => {
                        DataResponse::Have(ids.iter().map(|i| store.contains_key(i)).collect())
                    }
                    _ => DataResponse::Refused("not a proxy".into()),
                })
            })
        }
        fn strike(&self, peer: PeerId) {
            self.strikes.lock().unwrap().push(peer);
        }
    }

    /// Chunks with their ids, as `POST /v1/data/chunks` brings them.
    type Chunks = Vec<(Hash32, Bytes)>;

    fn block(k: usize, n: usize) -> (BlockEntry, Vec<u8>, Chunks) {
        let ct: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks = encode_chunks(&ct, k, n).unwrap();
        let entry = BlockEntry {
            seq: 3,
            interval: 1,
            hash: sha256(&[&ct]),
            len: ct.len() as u64,
            data_chunks: k as u16,
            chunks: chunks.iter().map(|c| sha256(&[c])).collect(),
        };
        let chunks = entry
            .chunks
            .iter()
            .copied()
            .zip(chunks.into_iter().map(Bytes::from))
            .collect();
        (entry, ct, chunks)
    }

    fn holder(net: &FakeNet, id: &Hash32) -> Vec<PeerId> {
        let stores = net.stores.lock().unwrap();
        net.nodes
            .iter()
            .filter(|p| stores.get(p).is_some_and(|s| s.contains_key(id)))
            .copied()
            .collect()
    }

    #[tokio::test]
    async fn a_block_survives_a_tampering_node_and_n_minus_k_losses() {
        let net = Arc::new(FakeNet::new(4));
        let gw = Gateway::new(net.clone(), Box::new(|| 0));
        let (entry, ct, chunks) = block(2, 4);
        // A chunk sent with another's id: refused, the client told why.
        let mut wrong = chunks.clone();
        wrong[1].0 = wrong[0].0;
        let err = gw.store(wrong, 1).await.unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)), "{err:?}");
        net.stores.lock().unwrap().clear();
        let stored = gw.store(chunks, 1).await.unwrap();
        // One chunk per node.
        let mut on: Vec<&String> = stored.iter().map(|s| &s.stored_on[0]).collect();
        on.sort();
        on.dedup();
        assert_eq!(on.len(), 4, "{stored:?}");

        // The node holding chunk 0 alters what it sends: caught, penalised, replaced.
        let liar = holder(&net, &entry.chunks[0])[0];
        net.tamper.lock().unwrap().insert(liar);
        let got = gw.fetch_block(entry.clone()).await.unwrap();
        assert_eq!(got.ciphertext, ct);
        assert_eq!(got.rejected, 1);
        assert_eq!(*net.strikes.lock().unwrap(), vec![liar]);
        assert_eq!(gw.status().bad_chunks, 1);

        // One more node down: the two honest ones still rebuild it.
        let other = holder(&net, &entry.chunks[1])[0];
        net.down.lock().unwrap().insert(other);
        assert_eq!(gw.fetch_block(entry.clone()).await.unwrap().ciphertext, ct);
        // A third loss leaves one good chunk: a clear error, no panic.
        let third = holder(&net, &entry.chunks[2])[0];
        net.down.lock().unwrap().insert(third);
        let err = gw.fetch_block(entry.clone()).await.unwrap_err().to_string();
        assert!(err.contains("only 1 of the 2 chunks needed"), "{err}");
    }

    #[tokio::test]
    async fn repair_re_creates_a_lost_chunk_on_a_live_node() {
        let net = Arc::new(FakeNet::new(5));
        let gw = Gateway::new(net.clone(), Box::new(|| 0));
        let (entry, ct, chunks) = block(2, 4);
        gw.store(chunks, 1).await.unwrap();
        let manifest = Manifest {
            stream_id: Hash32([1; 32]),
            first_interval: 0,
            last_interval: 3,
            blocks: vec![entry.clone()],
        };
        let before: Vec<PeerId> = entry.chunks.iter().map(|id| holder(&net, id)[0]).collect();
        let spare = *net.nodes.iter().find(|p| !before.contains(p)).unwrap();
        let lost = before[3];
        net.down.lock().unwrap().insert(lost);
        let live: Vec<(PeerId, Hash32)> = net
            .nodes
            .iter()
            .filter(|p| **p != lost)
            .map(|p| (*p, node_key(p)))
            .collect();
        // Healthy enough with a margin of 1 (3 of k + 1 = 3 remain): nothing to do.
        gw.repair_upload(&manifest, &live, 1).await.unwrap();
        assert_eq!(gw.status().chunks_repaired, 0);
        // With a margin of 2, the missing chunk is re-created on the node holding none of
        // the block.
        gw.repair_upload(&manifest, &live, 2).await.unwrap();
        assert_eq!(gw.status().chunks_repaired, 1);
        let mut now = holder(&net, &entry.chunks[3]);
        now.sort();
        let mut want = vec![lost, spare];
        want.sort();
        assert_eq!(now, want);
        // Two more nodes go down: without the repair one chunk would remain, with it two.
        net.down.lock().unwrap().extend([before[0], before[1]]);
        assert_eq!(gw.fetch_block(entry).await.unwrap().ciphertext, ct);
    }
}
