//! The node's side of the data layer: it stores chunks for peers in RocksDB, holds kfrags
//! as a proxy and re-encrypts only for grants on chain. The protocol logic is in
//! `cpc-data`; this wires it to the store, the chain state and the network.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use cpc_chain::Chain;
use cpc_data::proto::MAX_CHUNK_BYTES;
use cpc_data::{
    ChainView, DataKeys, DataRequest, DataResponse, KeyAnnouncement, KfragDelivery, Proxy,
    ProxyError,
};
use cpc_p2p::{DataMessage, DataService, PeerId};
use cpc_state::State;
use cpc_types::{Address, DataRecord, Encode, Hash32, decode_exact, sha256};

/// The chain state as a proxy reads it.
struct StateView<'a>(&'a State);

impl ChainView for StateView<'_> {
    fn stream_owner(&self, stream: &Hash32) -> Option<Address> {
        self.0.stream(stream).map(|s| s.owner)
    }
    fn grant(&self, stream: &Hash32, grantee: &Address) -> Option<(u64, u64)> {
        self.0
            .grant(stream, grantee)
            .map(|g| (g.first_interval, g.last_interval))
    }
    fn record(&self, stream: &Hash32, interval: u64) -> Option<DataRecord> {
        self.0.data_record(stream, interval)
    }
}

fn kfrag_key(stream: &Hash32, grantee: &Address) -> Vec<u8> {
    [&stream.0[..], &grantee.0].concat()
}

/// Serves the data protocol to peers.
pub(crate) struct DataNode {
    chain: Arc<Chain>,
    proxy: Mutex<Proxy>,
    own: Option<KeyAnnouncement>,
    stored: std::sync::atomic::AtomicU64,
}

impl DataNode {
    /// Opens the service, loading the kfrags held before a restart (those whose grant is
    /// still on chain).
    pub(crate) fn open(chain: Arc<Chain>) -> Result<Self> {
        let mut proxy = Proxy::new();
        let stored = chain
            .store()
            .kfrags()
            .context("cannot read the stored kfrags")?;
        for (key, value) in stored {
            let accepted = KfragDelivery::from_bytes(&value).ok().is_some_and(|d| {
                chain
                    .with_state(|s| {
                        let view = StateView(s);
                        view.grant(&d.stream, &d.grantee)
                            .is_some()
                            .then(|| proxy.accept(&view, &d))
                    })
                    .is_some_and(|r| r.is_ok())
            });
            if !accepted {
                chain.store().kfrag_delete(&key)?;
            }
        }
        let own = chain.key().map(|k| DataKeys::from_account(k).announce(k));
        Ok(Self {
            chain,
            proxy: Mutex::new(proxy),
            own,
            stored: Default::default(),
        })
    }

    /// Chunks accepted for storage since the node started.
    pub(crate) fn stored(&self) -> u64 {
        self.stored.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops the kfrags of grants no longer on chain (revoked), in memory and on disk.
    pub(crate) fn prune(&self) -> usize {
        let dropped = self.chain.with_state(|s| self.proxy().prune(&StateView(s)));
        let store = self.chain.store();
        if let Ok(stored) = store.kfrags() {
            for (key, value) in stored {
                let live = KfragDelivery::from_bytes(&value).is_ok_and(|d| {
                    self.chain
                        .with_state(|s| s.grant(&d.stream, &d.grantee).is_some())
                });
                if !live && let Err(e) = store.kfrag_delete(&key) {
                    tracing::warn!(error = %e, "cannot delete a revoked kfrag");
                }
            }
        }
        dropped
    }

    fn proxy(&self) -> std::sync::MutexGuard<'_, Proxy> {
        self.proxy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers a request (the swarm's, decoded by [`DataService::handle`], or this node's
    /// own gateway's, which needs no encoding).
    pub(crate) fn answer(&self, req: DataRequest) -> DataResponse {
        let store = self.chain.store();
        let failed = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "data request failed");
            DataResponse::Refused(format!("storage error: {e}"))
        };
        match req {
            DataRequest::Store { id, bytes } => {
                if bytes.len() > MAX_CHUNK_BYTES {
                    return DataResponse::Refused("chunk too large".into());
                }
                if sha256(&[&bytes]) != id {
                    return DataResponse::Refused(cpc_data::proto::NOT_ITS_ID.into());
                }
                match store.chunk_put(&id, &bytes) {
                    Ok(()) => {
                        self.stored
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        DataResponse::Ok
                    }
                    Err(e) => failed(&e),
                }
            }
            DataRequest::Fetch { id } => match store.chunk_get(&id) {
                Ok(c) => DataResponse::Chunk(c.map(Bytes::from)),
                Err(e) => failed(&e),
            },
            DataRequest::Has { ids } => match ids.iter().map(|id| store.chunk_has(id)).collect() {
                Ok(flags) => DataResponse::Have(flags),
                Err(e) => failed(&e),
            },
            DataRequest::Kfrag(d) => {
                let r = self
                    .chain
                    .with_state(|s| self.proxy().accept(&StateView(s), &d));
                match r {
                    Ok(()) => match store.kfrag_put(&kfrag_key(&d.stream, &d.grantee), &d.encode())
                    {
                        Ok(()) => DataResponse::Ok,
                        Err(e) => failed(&e),
                    },
                    Err(e) => DataResponse::Refused(e.to_string()),
                }
            }
            DataRequest::Reencrypt {
                stream,
                grantee,
                interval,
            } => {
                let r = self.chain.with_state(|s| {
                    self.proxy()
                        .reencrypt(&StateView(s), &stream, &grantee, interval)
                });
                match r {
                    Ok(cfrag) => DataResponse::Cfrag(cfrag),
                    Err(e) => {
                        if matches!(e, ProxyError::NoGrant { .. }) {
                            // The proxy dropped the kfrag; so does the disk.
                            let _ = store.kfrag_delete(&kfrag_key(&stream, &grantee));
                        }
                        DataResponse::Refused(e.to_string())
                    }
                }
            }
            // Kept on disk: a grantee announces once, and owners look it up any time later.
            DataRequest::Announce(a) => match a.verify(&a.account.address()) {
                Ok(()) => match self
                    .chain
                    .store()
                    .key_put(&a.account.address().0, &a.encode())
                {
                    Ok(()) => DataResponse::Ok,
                    Err(e) => DataResponse::Refused(format!("cannot store the key: {e}")),
                },
                Err(e) => DataResponse::Refused(e.to_string()),
            },
            DataRequest::Lookup { account } => {
                let own = self
                    .own
                    .as_ref()
                    .filter(|a| a.account.address() == account)
                    .cloned();
                let known = own.or_else(|| {
                    let bytes = self.chain.store().key_get(&account.0).ok().flatten()?;
                    decode_exact::<KeyAnnouncement>(&bytes)
                        .ok()
                        .filter(|a| a.verify(&account).is_ok())
                });
                DataResponse::Announcement(known)
            }
        }
    }
}

impl DataService for DataNode {
    fn handle(&self, peer: &PeerId, request: Bytes) -> DataMessage {
        let resp = match DataRequest::from_shared(&request) {
            Ok(req) => self.answer(req),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "undecodable data request");
                DataResponse::Refused(e.to_string())
            }
        };
        DataMessage::from_parts(resp.to_parts())
    }
}

#[cfg(test)]
mod tests {
    use cpc_chain::{Engine, EngineConfig};
    use cpc_data::{Packer, Record, RecordMeta, StreamParams, Uploader};
    use cpc_types::{AccessPolicy, SecretKey, Transaction, TxKind, UNITS_PER_CPC, decode_exact};

    use super::*;
    use crate::testing::T0;

    struct World {
        dir: tempfile::TempDir,
        validator: SecretKey,
        owner: SecretKey,
        grantee: SecretKey,
        nonce: u64,
        now: u64,
    }

    impl World {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                validator: SecretKey::from_bytes([100; 32]),
                owner: SecretKey::from_bytes([1; 32]),
                grantee: SecretKey::from_bytes([2; 32]),
                nonce: 0,
                now: T0 + 1000,
            }
        }

        fn open(&self) -> Arc<Chain> {
            crate::testing::chain(
                self.dir.path(),
                &self.validator,
                self.owner.address(),
                1_000 * UNITS_PER_CPC,
            )
        }

        /// Submits one transaction of the owner and commits it in a block.
        fn commit(&mut self, chain: &Arc<Chain>, kind: TxKind) {
            let tx = Transaction {
                chain_id: 3,
                sender: self.owner.public(),
                nonce: self.nonce,
                max_fee: UNITS_PER_CPC,
                kind,
            }
            .sign(&self.owner);
            self.nonce += 1;
            self.now += 1000;
            let r = chain.submit(vec![tx], self.now);
            assert!(r.iter().all(Result::is_ok), "{r:?}");
            let config = EngineConfig {
                block_interval_ms: 0,
                ..EngineConfig::default()
            };
            let mut engine = Engine::new(chain.clone(), config).unwrap();
            let before = chain.height();
            engine.tick(1, self.now);
            assert_eq!(chain.height(), before + 1, "no block committed");
        }
    }

    fn ask(node: &DataNode, req: &DataRequest) -> DataResponse {
        let peer = PeerId::random();
        // As the network carries them: parts sent, one buffer received.
        let sent = DataMessage::from_parts(req.to_parts()).into_bytes();
        DataResponse::from_shared(&node.handle(&peer, sent).into_bytes()).unwrap()
    }

    #[test]
    fn stores_chunks_and_re_encrypts_only_for_grants_on_chain() {
        let mut w = World::new();
        let chain = w.open();
        let node = DataNode::open(chain.clone()).unwrap();
        let okeys = DataKeys::from_account(&w.owner);
        let gkeys = DataKeys::from_account(&w.grantee);
        let stream = sha256(&[b"stream"]);

        // An upload of one interval.
        let params = StreamParams::default();
        let mut packer = Packer::new(params, 0, 0).unwrap();
        let record = Record {
            timestamp_ms: 5,
            payload: b"21.5 C".to_vec(),
        };
        assert!(packer.push(&record).unwrap().is_empty());
        let mut up =
            Uploader::new(params, stream, AccessPolicy::Private, &okeys, chain.accel()).unwrap();
        assert!(up.push(&packer.flush().unwrap()).unwrap().is_none());
        let upload = up.finish().unwrap().unwrap();

        // Chunks: stored when they hash to their id, fetched back, listed.
        let c = &upload.chunks[0];
        let bad = DataRequest::Store {
            id: c.id,
            bytes: Bytes::from_static(b"not it"),
        };
        assert!(matches!(ask(&node, &bad), DataResponse::Refused(_)));
        let store = DataRequest::Store {
            id: c.id,
            bytes: c.bytes.clone().into(),
        };
        assert_eq!(ask(&node, &store), DataResponse::Ok);
        assert_eq!(
            ask(&node, &DataRequest::Fetch { id: c.id }),
            DataResponse::Chunk(Some(c.bytes.clone().into()))
        );
        let other = upload.chunks[1].id;
        assert_eq!(
            ask(
                &node,
                &DataRequest::Has {
                    ids: vec![c.id, other]
                }
            ),
            DataResponse::Have(vec![true, false])
        );
        assert!(matches!(
            DataResponse::from_shared(
                &node
                    .handle(&PeerId::random(), Bytes::from_static(&[0xff]))
                    .into_bytes()
            )
            .unwrap(),
            DataResponse::Refused(_)
        ));

        // Key announcements: a node answers for its own account and keeps verified ones.
        let ann = gkeys.announce(&w.grantee);
        assert_eq!(
            ask(&node, &DataRequest::Announce(ann.clone())),
            DataResponse::Ok
        );
        assert_eq!(
            ask(
                &node,
                &DataRequest::Lookup {
                    account: w.grantee.address()
                }
            ),
            DataResponse::Announcement(Some(ann.clone()))
        );
        // Announcements are on disk: a restarted service still answers.
        let restarted = DataNode::open(chain.clone()).unwrap();
        assert_eq!(
            ask(
                &restarted,
                &DataRequest::Lookup {
                    account: w.grantee.address()
                }
            ),
            DataResponse::Announcement(Some(ann.clone()))
        );
        let own = ask(
            &node,
            &DataRequest::Lookup {
                account: w.validator.address(),
            },
        );
        assert!(matches!(own, DataResponse::Announcement(Some(_))));
        let mut forged = ann.clone();
        forged.receiving_pk = okeys.receiving_pk();
        assert!(matches!(
            ask(&node, &DataRequest::Announce(forged)),
            DataResponse::Refused(_)
        ));

        // A kfrag for a stream not on chain is refused.
        let kfrags = okeys.kfrags(&stream, &ann.receiving_pk, 1, 1).unwrap();
        let delivery = KfragDelivery::sign_all(
            &w.owner,
            stream,
            w.grantee.address(),
            &ann.receiving_pk,
            kfrags,
        )
        .remove(0);
        assert!(matches!(
            ask(&node, &DataRequest::Kfrag(delivery.clone())),
            DataResponse::Refused(_)
        ));

        // The record goes on chain: the owner's kfrag is accepted, but without a grant the
        // proxy refuses to re-encrypt.
        w.commit(&chain, TxKind::DataRecord(upload.record.clone()));
        assert_eq!(
            ask(&node, &DataRequest::Kfrag(delivery.clone())),
            DataResponse::Ok
        );
        let reencrypt = DataRequest::Reencrypt {
            stream,
            grantee: w.grantee.address(),
            interval: 0,
        };
        let DataResponse::Refused(why) = ask(&node, &reencrypt) else {
            panic!("re-encrypted without a grant");
        };
        assert!(why.contains("no grant on chain"), "{why}");
        // The refusal dropped the kfrag; the owner sends it again.
        assert!(chain.store().kfrags().unwrap().is_empty());
        assert_eq!(
            ask(&node, &DataRequest::Kfrag(delivery.clone())),
            DataResponse::Ok
        );

        // Granted: the cfrag opens the interval key for the grantee.
        w.commit(
            &chain,
            TxKind::Grant {
                stream_id: stream,
                grantee: w.grantee.address(),
                first_interval: 0,
                last_interval: 0,
            },
        );
        let DataResponse::Cfrag(cfrag) = ask(&node, &reencrypt) else {
            panic!("no cfrag for a granted interval");
        };
        let meta = RecordMeta::of(&upload.record).unwrap();
        let (key, bad) = gkeys.open_granted(&meta, 0, &[cfrag], 1).unwrap();
        assert!(bad.is_empty());
        assert_eq!(key, okeys.unwrap_own(&stream, &meta, 0).unwrap());

        // The kfrag survives a restart of the service while the grant holds.
        let node = DataNode::open(chain.clone()).unwrap();
        assert!(matches!(ask(&node, &reencrypt), DataResponse::Cfrag(_)));

        // Revoked: refused, and the kfrag is gone from memory and disk.
        w.commit(
            &chain,
            TxKind::Revoke {
                stream_id: stream,
                grantee: w.grantee.address(),
            },
        );
        // The periodic prune drops it without anyone asking.
        assert_eq!(node.prune(), 1);
        assert!(chain.store().kfrags().unwrap().is_empty());
        assert!(matches!(ask(&node, &reencrypt), DataResponse::Refused(_)));
        let stored: KfragDelivery = decode_exact(&delivery.encode()).unwrap();
        assert_eq!(stored, delivery);
    }
}
