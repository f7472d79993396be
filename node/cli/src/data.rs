//! The node's side of the data layer: it stores chunks for peers in RocksDB, holds kfrags
//! as a proxy and re-encrypts only for grants on chain. The protocol logic is in
//! `cpc-data`; this wires it to the store, the chain state and the network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use cpc_chain::Chain;
use cpc_data::proto::MAX_CHUNK_BYTES;
use cpc_data::{
    ChainView, DataKeys, DataRequest, DataResponse, KeyAnnouncement, KfragDelivery, Proxy,
    ProxyError,
};
use cpc_p2p::{DataService, PeerId};
use cpc_state::State;
use cpc_types::{Address, DataRecord, Encode, Hash32, sha256};

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
    announcements: Mutex<HashMap<Address, KeyAnnouncement>>,
    own: Option<KeyAnnouncement>,
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
            announcements: Mutex::new(HashMap::new()),
            own,
        })
    }

    fn proxy(&self) -> std::sync::MutexGuard<'_, Proxy> {
        self.proxy.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(&self, req: DataRequest) -> DataResponse {
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
                    return DataResponse::Refused("chunk does not hash to its id".into());
                }
                match store.chunk_put(&id, &bytes) {
                    Ok(()) => DataResponse::Ok,
                    Err(e) => failed(&e),
                }
            }
            DataRequest::Fetch { id } => match store.chunk_get(&id) {
                Ok(c) => DataResponse::Chunk(c),
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
            DataRequest::Announce(a) => match a.verify(&a.account.address()) {
                Ok(()) => {
                    self.announcements
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(a.account.address(), a);
                    DataResponse::Ok
                }
                Err(e) => DataResponse::Refused(e.to_string()),
            },
            DataRequest::Lookup { account } => {
                let own = self
                    .own
                    .as_ref()
                    .filter(|a| a.account.address() == account)
                    .cloned();
                let known = own.or_else(|| {
                    self.announcements
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&account)
                        .cloned()
                });
                DataResponse::Announcement(known)
            }
        }
    }
}

impl DataService for DataNode {
    fn handle(&self, peer: &PeerId, request: Vec<u8>) -> Vec<u8> {
        let resp = match DataRequest::from_bytes(&request) {
            Ok(req) => self.answer(req),
            Err(e) => {
                tracing::debug!(%peer, error = %e, "undecodable data request");
                DataResponse::Refused(e.to_string())
            }
        };
        resp.encode()
    }
}
