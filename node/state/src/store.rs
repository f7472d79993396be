//! The key-value state, its overlay for atomic transactions, and the state root.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use cpc_accel::Dispatcher;
use cpc_types::codec::{Decode, Encode, decode_exact};
use cpc_types::{Address, DataRecord, Hash32, PublicKey, SignedTransaction, TxReceipt, sha256};

use crate::exec::{self, BlockEnv};
use crate::genesis::{Genesis, Params};
use crate::model::{Account, Grant, LeaseOffer, Stream, Validator};
use crate::{GenesisError, TxError};

/// Key prefixes: one byte per table.
pub(crate) mod key {
    use cpc_types::{Address, Hash32};

    pub(crate) const META: u8 = 0x00;
    pub(crate) const ACCOUNT: u8 = 0x01;
    pub(crate) const OFFER: u8 = 0x02;
    pub(crate) const VALIDATOR: u8 = 0x03;
    pub(crate) const STREAM: u8 = 0x04;
    pub(crate) const RECORD: u8 = 0x05;
    pub(crate) const GRANT: u8 = 0x06;
    pub(crate) const ANCHOR: u8 = 0x07;
    pub(crate) const EVIDENCE: u8 = 0x08;
    pub(crate) const TICKET: u8 = 0x09;
    pub(crate) const HISTORY: u8 = 0x0a;
    pub(crate) const SIDE_GROUP: u8 = 0x0b;
    pub(crate) const SIDE_OFFENDER: u8 = 0x0c;

    pub(crate) fn params() -> Vec<u8> {
        [&[META][..], b"params"].concat()
    }
    pub(crate) fn chain_id() -> Vec<u8> {
        [&[META][..], b"chain_id"].concat()
    }
    pub(crate) fn committee() -> Vec<u8> {
        [&[META][..], b"committee"].concat()
    }
    pub(crate) fn account(a: &Address) -> Vec<u8> {
        [&[ACCOUNT][..], &a.0].concat()
    }
    pub(crate) fn offer(id: &Hash32) -> Vec<u8> {
        [&[OFFER][..], &id.0].concat()
    }
    pub(crate) fn validator(a: &Address) -> Vec<u8> {
        [&[VALIDATOR][..], &a.0].concat()
    }
    pub(crate) fn stream(id: &Hash32) -> Vec<u8> {
        [&[STREAM][..], &id.0].concat()
    }
    pub(crate) fn record(stream: &Hash32, first: u64) -> Vec<u8> {
        [&[RECORD][..], &stream.0, &first.to_be_bytes()].concat()
    }
    pub(crate) fn grant(stream: &Hash32, grantee: &Address) -> Vec<u8> {
        [&[GRANT][..], &stream.0, &grantee.0].concat()
    }
    pub(crate) fn anchor(group: &Hash32) -> Vec<u8> {
        [&[ANCHOR][..], &group.0].concat()
    }
    pub(crate) fn evidence(id: &Hash32) -> Vec<u8> {
        [&[EVIDENCE][..], &id.0].concat()
    }
    pub(crate) fn tickets_of(term: u64) -> Vec<u8> {
        [&[TICKET][..], &term.to_be_bytes()].concat()
    }
    pub(crate) fn ticket(term: u64, candidate: &Address) -> Vec<u8> {
        [tickets_of(term).as_slice(), &candidate.0].concat()
    }
    pub(crate) fn side_group(group: &Hash32) -> Vec<u8> {
        [&[SIDE_GROUP][..], &group.0].concat()
    }
    pub(crate) fn side_offender(group: &Hash32, gateway: &Address) -> Vec<u8> {
        [&[SIDE_OFFENDER][..], &group.0, &gateway.0].concat()
    }
    pub(crate) fn history(epoch: u64) -> Vec<u8> {
        [&[HISTORY][..], &epoch.to_be_bytes()].concat()
    }
}

/// One stored entry, or its deletion, as written to disk.
pub type StateEntry = (Vec<u8>, Option<Vec<u8>>);

/// The whole state, in memory.
#[derive(Clone, Debug)]
pub struct State {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Leaf hashes of the state root, kept for entries whose hash is current.
    leaves: BTreeMap<Vec<u8>, Hash32>,
    /// Entries changed since the leaf hashes were last brought up to date.
    stale: BTreeSet<Vec<u8>>,
    /// Entries changed since the last [`State::take_diff`].
    diff: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Taken leases by (end day, offer), to return stake when they end.
    lease_ends: BTreeSet<(u64, Hash32)>,
    chain_id: u32,
    params: Params,
}

impl State {
    /// The state genesis creates.
    pub fn from_genesis(genesis: &Genesis) -> Result<State, GenesisError> {
        genesis.validate()?;
        let mut state = State {
            entries: BTreeMap::new(),
            leaves: BTreeMap::new(),
            stale: BTreeSet::new(),
            diff: BTreeMap::new(),
            lease_ends: BTreeSet::new(),
            chain_id: genesis.chain_id,
            params: genesis.params.clone(),
        };
        let mut writes = BTreeMap::new();
        writes.insert(key::params(), Some(genesis.params.encode()));
        writes.insert(key::chain_id(), Some(genesis.chain_id.encode()));
        for (addr, &balance) in &genesis.allocations {
            let acct = Account {
                balance,
                ..Account::default()
            };
            if !acct.is_empty() {
                writes.insert(key::account(addr), Some(acct.encode()));
            }
        }
        for v in &genesis.validators {
            let val = Validator {
                key: v.key,
                vrf_key: v.vrf_key,
                endpoint: v.endpoint.clone(),
                deposit: v.deposit,
                credit: genesis.params.initial_credit,
                absent: 0,
            };
            writes.insert(key::validator(&v.key.address()), Some(val.encode()));
        }
        for g in &genesis.side_groups {
            let group = crate::model::SideGroup {
                owner: g.owner,
                gateways: g.gateways.clone(),
                locked: 0,
                reward_per_anchor: g.reward_per_anchor,
                pool: g.reward_pool,
                retired: Vec::new(),
            };
            writes.insert(key::side_group(&g.id), Some(group.encode()));
        }
        let keys: Vec<PublicKey> = genesis.validators.iter().map(|v| v.key).collect();
        let committee =
            crate::consensus::genesis_committee(&keys, &genesis.params, &genesis.hash());
        writes.insert(key::history(0), Some(committee.encode()));
        writes.insert(key::committee(), Some(committee.encode()));
        state.commit(writes);
        Ok(state)
    }

    /// Rebuilds the state from stored entries (as written from [`State::take_diff`]).
    pub fn from_entries(
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<State, String> {
        let entries: BTreeMap<Vec<u8>, Vec<u8>> = entries.into_iter().collect();
        let params: Params = entries
            .get(&key::params())
            .ok_or("the state has no parameters")
            .and_then(|v| decode_exact(v).map_err(|_| "the stored parameters are corrupt"))?;
        let chain_id: u32 = entries
            .get(&key::chain_id())
            .ok_or("the state has no chain id")
            .and_then(|v| decode_exact(v).map_err(|_| "the stored chain id is corrupt"))?;
        match entries
            .get(&key::committee())
            .map(|v| decode_exact::<crate::CommitteeInfo>(v))
        {
            Some(Ok(c)) if !c.members.is_empty() => {}
            Some(_) => return Err("the stored committee is corrupt".into()),
            None => return Err("the state has no committee".into()),
        }
        let mut lease_ends = BTreeSet::new();
        for (k, v) in entries.range(vec![key::OFFER]..vec![key::OFFER + 1]) {
            let offer: LeaseOffer =
                decode_exact(v).map_err(|e| format!("corrupt lease offer: {e}"))?;
            let id = Hash32(k[1..].try_into().map_err(|_| "corrupt lease offer key")?);
            if offer.lessee.is_some() {
                lease_ends.insert((offer.end_day, id));
            }
        }
        let stale = entries.keys().cloned().collect();
        Ok(State {
            entries,
            leaves: BTreeMap::new(),
            stale,
            diff: BTreeMap::new(),
            lease_ends,
            chain_id,
            params,
        })
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// An account (the default, empty account when nothing is stored).
    pub fn account(&self, addr: &Address) -> Account {
        self.get_decoded(&key::account(addr)).unwrap_or_default()
    }

    /// A validator.
    pub fn validator(&self, addr: &Address) -> Option<Validator> {
        self.get_decoded(&key::validator(addr))
    }

    /// A side-chain group declared on chain.
    pub fn side_group(&self, id: &Hash32) -> Option<crate::model::SideGroup> {
        self.get_decoded(&key::side_group(id))
    }

    /// The height of the block that recorded `gateway`'s side-chain equivocation in
    /// `group`, if any; such a gateway is paid no more rewards.
    pub fn side_offender(&self, group: &Hash32, gateway: &Address) -> Option<u64> {
        self.get_decoded(&key::side_offender(group, gateway))
    }

    /// The latest anchor of a side-chain group.
    pub fn side_anchor(&self, id: &Hash32) -> Option<crate::model::Anchor> {
        self.get_decoded(&key::anchor(id))
    }

    /// A lease offer.
    pub fn lease_offer(&self, id: &Hash32) -> Option<LeaseOffer> {
        self.get_decoded(&key::offer(id))
    }

    /// A data stream.
    pub fn stream(&self, id: &Hash32) -> Option<Stream> {
        self.get_decoded(&key::stream(id))
    }

    /// The grant of `grantee` on a stream, if one is on chain (revoked grants are gone).
    pub fn grant(&self, stream: &Hash32, grantee: &Address) -> Option<Grant> {
        self.get_decoded(&key::grant(stream, grantee))
    }

    /// The data record of a stream whose interval range holds `interval`.
    pub fn data_record(&self, stream: &Hash32, interval: u64) -> Option<DataRecord> {
        let lo = key::record(stream, 0);
        let hi = key::record(stream, interval);
        let (_, v) = self.entries.range(lo..=hi).next_back()?;
        let rec: DataRecord = decode_exact(v).ok()?;
        (rec.first_interval <= interval && interval <= rec.last_interval).then_some(rec)
    }

    /// Up to `limit` data records of a stream, in interval order, from the one holding
    /// `from_interval` (or the first after it).
    pub fn data_records(
        &self,
        stream: &Hash32,
        from_interval: u64,
        limit: usize,
    ) -> Vec<DataRecord> {
        let start = match self.data_record(stream, from_interval) {
            Some(r) => key::record(stream, r.first_interval),
            None => key::record(stream, from_interval),
        };
        let end = key::record(stream, u64::MAX);
        self.entries
            .range(start..=end)
            .filter_map(|(_, v)| decode_exact::<DataRecord>(v).ok())
            .take(limit)
            .collect()
    }

    /// The record of a stream with the highest intervals.
    pub fn latest_record(&self, stream: &Hash32) -> Option<DataRecord> {
        let lo = key::record(stream, 0);
        let hi = key::record(stream, u64::MAX);
        let (_, v) = self.entries.range(lo..=hi).next_back()?;
        decode_exact(v).ok()
    }

    /// Up to `limit` data records of every stream, ordered by stream and interval, after
    /// the record `(stream, first_interval)` when given: a cursor to walk them in rounds.
    pub fn all_data_records(&self, after: Option<(Hash32, u64)>, limit: usize) -> Vec<DataRecord> {
        use std::ops::Bound;
        let lo = match after {
            Some((s, i)) => Bound::Excluded(key::record(&s, i)),
            None => Bound::Included(vec![key::RECORD]),
        };
        let hi = Bound::Excluded(vec![key::RECORD + 1]);
        self.entries
            .range::<Vec<u8>, _>((lo, hi))
            .filter_map(|(_, v)| decode_exact::<DataRecord>(v).ok())
            .take(limit)
            .collect()
    }

    /// Free transactions left today for `addr` at time `timestamp_ms`.
    pub fn quota_left(&self, addr: &Address, timestamp_ms: u64) -> u64 {
        let acct = self.account(addr);
        let day = timestamp_ms / crate::DAY_MS;
        let used = if acct.quota_day == day {
            u64::from(acct.sent_today)
        } else {
            0
        };
        exec::free_quota(&self.params, &acct).saturating_sub(used)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the state is empty (it never is after genesis).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&self, k: &[u8]) -> Option<&[u8]> {
        self.entries.get(k).map(Vec::as_slice)
    }

    pub(crate) fn entries_with_prefix<'s>(
        &'s self,
        prefix: &'s [u8],
    ) -> impl Iterator<Item = (&'s Vec<u8>, &'s Vec<u8>)> + 's {
        self.entries
            .range(prefix.to_vec()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub(crate) fn get_decoded<T: Decode>(&self, k: &[u8]) -> Option<T> {
        // Entries are written only by this crate from valid values.
        self.get(k).and_then(|v| decode_exact(v).ok())
    }

    /// Work done at the start of every block: leases ending today return their stake.
    pub fn begin_block(&mut self, env: &BlockEnv) {
        let day = env.day();
        let ended: Vec<(u64, Hash32)> = self
            .lease_ends
            .range(..(day + 1, Hash32::ZERO))
            .copied()
            .collect();
        if ended.is_empty() {
            return;
        }
        let mut ov = Overlay::new(self);
        for (_, id) in ended {
            exec::end_lease(&mut ov, &id);
        }
        let writes = ov.writes;
        self.commit(writes);
    }

    /// Executes one transaction whose signature has been verified. On error nothing changes.
    pub fn apply_tx(
        &mut self,
        env: &BlockEnv,
        tx: &SignedTransaction,
    ) -> Result<TxReceipt, TxError> {
        let mut ov = Overlay::new(self);
        let receipt = exec::execute(&mut ov, env, tx)?;
        let writes = ov.writes;
        self.commit(writes);
        Ok(receipt)
    }

    /// Runs a transaction without keeping its effects: the mempool's admission check.
    pub fn check_tx(&self, env: &BlockEnv, tx: &SignedTransaction) -> Result<TxReceipt, TxError> {
        let mut ov = Overlay::new(self);
        exec::execute(&mut ov, env, tx)
    }

    pub(crate) fn commit(&mut self, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        for (k, v) in writes {
            if k.first() == Some(&key::OFFER) {
                self.reindex_offer(&k, v.as_deref());
            }
            match &v {
                Some(val) => {
                    self.entries.insert(k.clone(), val.clone());
                }
                None => {
                    self.entries.remove(&k);
                    self.leaves.remove(&k);
                }
            }
            self.stale.insert(k.clone());
            self.diff.insert(k, v);
        }
    }

    fn reindex_offer(&mut self, k: &[u8], new: Option<&[u8]>) {
        let Ok(id) = <[u8; 32]>::try_from(&k[1..]).map(Hash32) else {
            return;
        };
        if let Some(old) = self.get_decoded::<LeaseOffer>(k) {
            self.lease_ends.remove(&(old.end_day, id));
        }
        if let Some(new) = new.and_then(|v| decode_exact::<LeaseOffer>(v).ok())
            && new.lessee.is_some()
        {
            self.lease_ends.insert((new.end_day, id));
        }
    }

    /// The state root; leaf hashes of changed entries are computed through the accelerator.
    pub fn root(&mut self, accel: &Dispatcher) -> Hash32 {
        if !self.stale.is_empty() {
            let stale: Vec<Vec<u8>> = std::mem::take(&mut self.stale)
                .into_iter()
                .filter(|k| self.entries.contains_key(k))
                .collect();
            let inputs: Vec<Vec<u8>> = stale
                .iter()
                .map(|k| {
                    let v = &self.entries[k];
                    let mut leaf = Vec::with_capacity(4 + k.len() + v.len());
                    (k.len() as u32).encode_to(&mut leaf);
                    leaf.extend_from_slice(k);
                    leaf.extend_from_slice(v);
                    leaf
                })
                .collect();
            let refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            for (k, h) in stale.into_iter().zip(accel.sha256_batch(&refs)) {
                self.leaves.insert(k, Hash32(h));
            }
        }
        let leaves: Vec<[u8; 32]> = self.leaves.values().map(|h| h.0).collect();
        Hash32(accel.merkle_root(&leaves))
    }

    /// The entries changed since the last call, for the block's storage write batch.
    pub fn take_diff(&mut self) -> Vec<StateEntry> {
        std::mem::take(&mut self.diff).into_iter().collect()
    }

    /// A digest of all entries, computed without the accelerator (for tests and audits).
    pub fn reference_root(&self) -> Hash32 {
        let leaves: Vec<[u8; 32]> = self
            .entries
            .iter()
            .map(|(k, v)| sha256(&[&(k.len() as u32).to_be_bytes(), k, v]).0)
            .collect();
        Hash32(cpc_accel::merkle::reference_root(&leaves))
    }
}

/// Pending writes over a state: reads see them, and they reach the state only on commit.
pub(crate) struct Overlay<'a> {
    base: &'a State,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    fn new(base: &'a State) -> Self {
        Self {
            base,
            writes: BTreeMap::new(),
        }
    }

    pub(crate) fn params(&self) -> &'a Params {
        &self.base.params
    }

    pub(crate) fn chain_id(&self) -> u32 {
        self.base.chain_id
    }

    pub(crate) fn get(&self, k: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self.writes.get(k) {
            Some(Some(v)) => Some(Cow::Borrowed(v)),
            Some(None) => None,
            None => self.base.get(k).map(Cow::Borrowed),
        }
    }

    pub(crate) fn get_decoded<T: Decode>(&self, k: &[u8]) -> Option<T> {
        self.get(k).and_then(|v| decode_exact(&v).ok())
    }

    pub(crate) fn put(&mut self, k: Vec<u8>, v: &impl Encode) {
        self.writes.insert(k, Some(v.encode()));
    }

    pub(crate) fn delete(&mut self, k: Vec<u8>) {
        self.writes.insert(k, None);
    }

    pub(crate) fn account(&self, a: &Address) -> Account {
        self.get_decoded(&key::account(a)).unwrap_or_default()
    }

    pub(crate) fn set_account(&mut self, a: &Address, acct: &Account) {
        if acct.is_empty() {
            self.delete(key::account(a));
        } else {
            self.put(key::account(a), acct);
        }
    }
}
