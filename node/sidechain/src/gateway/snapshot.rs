//! Snapshots of the state machine: everything a node holds, in the canonical encoding, so
//! that a restart resumes from it instead of replaying the whole history.
//!
//! The encoding names every field of [`SideChain`] (the destructuring below has no `..`), so
//! a field added to the state machine does not compile until it is written here too. Hash
//! maps are written in key order, so a state has one snapshot, and the seeded simulator
//! requires every node's snapshot to restore to a node with the same snapshot. What a
//! restart changes on purpose (the node listens again before it signs) and what is counted
//! again from the rest is not written.

use std::sync::Arc;

use cpc_accel::Dispatcher;
use cpc_types::codec::{Decode, DecodeError, Encode, Reader};
use cpc_types::{Hash32, PublicKey, SecretKey, codec_struct};

use super::{
    Account, Config, Final, Map, Occ, PrunedLast, RETIRED, SideChain, SlotInfo, TxInfo, TxKey,
    VertexInfo, map,
};
use crate::SideError;
use crate::types::Slot;

/// What a snapshot starts with; the version follows it.
const MAGIC: &[u8; 16] = b"cpc-side-state\0\0";
/// Version 4 added the retired gateways at the end; version 3 is read as none retired.
const VERSION: u32 = 4;

codec_struct!(Slot { sender, nonce });
codec_struct!(TxKey { hash, slot });
codec_struct!(TxInfo {
    tx,
    status,
    first_seen_ms,
    latency_ms,
    vertices
});
codec_struct!(SlotInfo { occs, endorsed });
codec_struct!(PrunedLast {
    copy,
    debits,
    confirmed,
    double_spent
});
codec_struct!(Account {
    balance,
    included_next,
    pooled,
    pruned_next,
    pruned_last,
    pruned_credits,
    pruned_dead_credits
});
codec_struct!(Occ {
    slot,
    prev,
    credits,
    shortfall,
    debits,
    credit,
    lock,
    confirmed
});
codec_struct!(Final {
    root,
    count,
    frontier
});

/// A held vertex with everything derived from it (the [`Encode`] of [`VertexInfo`] is the
/// archive form, which leaves out what only the ledger rule uses).
fn put_held(v: &VertexInfo, out: &mut Vec<u8>) {
    let VertexInfo {
        vertex,
        creator,
        clock,
        seen_by,
        settled_by,
        confirmed_ms,
        anchor,
        keys,
        points,
        lazy,
        missing,
        pruned,
        continued,
    } = v;
    vertex.encode_to(out);
    creator.encode_to(out);
    clock.encode_to(out);
    seen_by.encode_to(out);
    settled_by.encode_to(out);
    confirmed_ms.encode_to(out);
    anchor.encode_to(out);
    keys.encode_to(out);
    points.encode_to(out);
    lazy.encode_to(out);
    missing.encode_to(out);
    pruned.encode_to(out);
    continued.encode_to(out);
}

fn get_held(r: &mut Reader<'_>) -> Result<VertexInfo, DecodeError> {
    Ok(VertexInfo {
        vertex: get(r)?,
        creator: get(r)?,
        clock: get(r)?,
        seen_by: get(r)?,
        settled_by: get(r)?,
        confirmed_ms: get(r)?,
        anchor: get(r)?,
        keys: get(r)?,
        points: get(r)?,
        lazy: get(r)?,
        missing: get(r)?,
        pruned: get(r)?,
        continued: get(r)?,
    })
}

/// A hash map in key order (its iteration order is the hasher's, random per process).
fn put_map<K: Ord + Encode, V>(m: &Map<K, V>, out: &mut Vec<u8>, put: impl Fn(&V, &mut Vec<u8>)) {
    let mut entries: Vec<(&K, &V)> = m.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    (entries.len() as u32).encode_to(out);
    for (k, v) in entries {
        k.encode_to(out);
        put(v, out);
    }
}

fn get_map<K, V>(
    r: &mut Reader<'_>,
    get: impl Fn(&mut Reader<'_>) -> Result<V, DecodeError>,
) -> Result<Map<K, V>, DecodeError>
where
    K: Ord + Decode + std::hash::Hash + Clone,
{
    let len = r.length("map", cpc_types::codec::MAX_LEN, 1)?;
    let mut m = map();
    // Grown as entries decode beyond this: a damaged length must not reserve gigabytes.
    m.reserve(len.min(1 << 16));
    let mut last: Option<K> = None;
    for _ in 0..len {
        let k = K::decode_from(r)?;
        if last.as_ref().is_some_and(|l| *l >= k) {
            return Err(DecodeError::Invalid("map key order"));
        }
        let v = get(r)?;
        last = Some(k.clone());
        m.insert(k, v);
    }
    Ok(m)
}

fn put<T: Encode>(v: &T, out: &mut Vec<u8>) {
    v.encode_to(out);
}

fn get<T: Decode>(r: &mut Reader<'_>) -> Result<T, DecodeError> {
    T::decode_from(r)
}

impl SideChain {
    /// The node's whole state in the canonical encoding; [`SideChain::restore`] reads it
    /// back. Taken between two inputs, it stands for every input handled so far, so a node
    /// may drop its log of them once the snapshot is safe on disk.
    pub fn snapshot(&self) -> Vec<u8> {
        // No `..`: a new field must be written here before this compiles.
        let SideChain {
            cfg,
            key: _,
            me,
            accel: _,
            // The run's own condition: a restarted node signs again.
            halted: _,
            now,
            vertices,
            by_seq,
            latest,
            equivocators,
            retired,
            waiting,
            requested,
            // Peers' pace, which a restored node learns again.
            heads_seen: _,
            txs,
            occs,
            slots,
            lock_occs,
            credits,
            dependents,
            locks,
            accounts,
            pool,
            parked,
            // Counted again from `parked`.
            parked_len: _,
            funding,
            to_reference,
            to_settle,
            my_seq,
            my_last,
            own_seen,
            last_vertex_ms,
            last_heads_ms,
            // A restored node has just started: it listens before it signs (see `restore`).
            started_ms: _,
            confirmed_vertices,
            confirmed_txs,
            anchor_root,
            anchor_count,
            final_seq,
            last_final_ms,
            verified,
            proposals,
            matched,
            sent,
            finals,
            final_mismatch,
            submitted,
            anchor_log,
            scores,
            rewards,
            equivocations,
            pruned_tips,
            pruned_seq,
            prunable,
            prune_due,
            pruned_locks,
            pruned_recent,
            pruned_known,
            pruned_order,
            pruned_ids,
            pruned_vertices,
            pruned_txs,
            accepted,
            unpruned,
            absorbing,
            absorb_backlog,
            absorb_pace,
            last_absorb_ms,
            refused,
        } = self;
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(MAGIC);
        VERSION.encode_to(&mut out);
        cfg.group.id.encode_to(&mut out);
        cfg.group.gateways.encode_to(&mut out);
        me.encode_to(&mut out);
        // Changed at run time by the main chain (`Input::RewardPerAnchor`).
        cfg.reward_per_anchor.encode_to(&mut out);
        now.encode_to(&mut out);
        put_map(vertices, &mut out, put_held);
        by_seq.encode_to(&mut out);
        latest.encode_to(&mut out);
        equivocators.encode_to(&mut out);
        waiting.encode_to(&mut out);
        requested.encode_to(&mut out);
        put_map(txs, &mut out, put);
        put_map(occs, &mut out, put);
        put_map(slots, &mut out, put);
        put_map(lock_occs, &mut out, put);
        put_map(credits, &mut out, put);
        put_map(dependents, &mut out, put);
        put_map(locks, &mut out, put);
        put_map(accounts, &mut out, put);
        pool.encode_to(&mut out);
        parked.encode_to(&mut out);
        funding.encode_to(&mut out);
        to_reference.encode_to(&mut out);
        to_settle.encode_to(&mut out);
        my_seq.encode_to(&mut out);
        my_last.encode_to(&mut out);
        own_seen.encode_to(&mut out);
        last_vertex_ms.encode_to(&mut out);
        last_heads_ms.encode_to(&mut out);
        confirmed_vertices.encode_to(&mut out);
        confirmed_txs.encode_to(&mut out);
        anchor_root.encode_to(&mut out);
        anchor_count.encode_to(&mut out);
        final_seq.encode_to(&mut out);
        last_final_ms.encode_to(&mut out);
        verified.encode_to(&mut out);
        proposals.encode_to(&mut out);
        matched.encode_to(&mut out);
        sent.encode_to(&mut out);
        finals.encode_to(&mut out);
        final_mismatch.encode_to(&mut out);
        submitted.encode_to(&mut out);
        anchor_log.encode_to(&mut out);
        scores.encode_to(&mut out);
        rewards.encode_to(&mut out);
        equivocations.encode_to(&mut out);
        pruned_tips.encode_to(&mut out);
        pruned_seq.encode_to(&mut out);
        prunable.encode_to(&mut out);
        prune_due.encode_to(&mut out);
        put_map(pruned_locks, &mut out, put);
        pruned_recent.encode_to(&mut out);
        put_map(pruned_known, &mut out, put);
        pruned_order.encode_to(&mut out);
        pruned_ids.encode_to(&mut out);
        pruned_vertices.encode_to(&mut out);
        pruned_txs.encode_to(&mut out);
        accepted.encode_to(&mut out);
        put_map(unpruned, &mut out, put);
        absorbing.encode_to(&mut out);
        absorb_backlog.encode_to(&mut out);
        absorb_pace.encode_to(&mut out);
        last_absorb_ms.encode_to(&mut out);
        refused.encode_to(&mut out);
        retired.encode_to(&mut out);
        out
    }

    /// The node a [`SideChain::snapshot`] was taken of, restarted: with `cfg`, `key` and
    /// `accel` as [`SideChain::new`] takes them (but the reward per anchor, which the
    /// main chain changes at run time, from the snapshot). The group and this node's place
    /// in it (its key, or none) must be those of the snapshot.
    ///
    /// Like a new node, it signs nothing before its first [`Input::Tick`] and then listens
    /// for a while: fed the messages logged after the snapshot first (its own later
    /// vertices among them), it never signs one of their sequence numbers again.
    ///
    /// [`Input::Tick`]: crate::Input::Tick
    pub fn restore(
        cfg: Config,
        key: Option<SecretKey>,
        accel: Arc<Dispatcher>,
        snapshot: &[u8],
    ) -> Result<SideChain, SideError> {
        let fresh = SideChain::new(cfg, key, accel)?;
        let mut r = Reader::unbounded(snapshot);
        let bad = |e: DecodeError| SideError::Snapshot(e.to_string());
        if r.take(MAGIC.len()).map_err(bad)? != MAGIC {
            return Err(SideError::Snapshot("not a side-chain snapshot".into()));
        }
        let version = u32::decode_from(&mut r).map_err(bad)?;
        if version != VERSION && version != 3 {
            return Err(SideError::Snapshot(format!(
                "version {version}, this node reads version {VERSION}"
            )));
        }
        let group = Hash32::decode_from(&mut r).map_err(bad)?;
        let gateways = Vec::<PublicKey>::decode_from(&mut r).map_err(bad)?;
        if group != fresh.cfg.group.id || gateways != fresh.cfg.group.gateways {
            return Err(SideError::Snapshot("taken of another group".into()));
        }
        let me = Option::<usize>::decode_from(&mut r).map_err(bad)?;
        if me != fresh.me {
            return Err(SideError::Snapshot(
                "taken with another gateway key (or with none, or with one and not now)".into(),
            ));
        }
        let reward_per_anchor = u64::decode_from(&mut r).map_err(bad)?;
        let mut s = Self::read_state(fresh, version, &mut r).map_err(bad)?;
        s.cfg.reward_per_anchor = reward_per_anchor;
        match r.remaining() {
            0 => Ok(s),
            n => Err(bad(DecodeError::TrailingBytes(n))),
        }
    }

    /// The fields after the header, in the order `snapshot` writes them.
    fn read_state(
        fresh: SideChain,
        version: u32,
        r: &mut Reader<'_>,
    ) -> Result<SideChain, DecodeError> {
        let n = fresh.cfg.group.n();
        let mut s = SideChain {
            cfg: fresh.cfg,
            key: fresh.key,
            me: fresh.me,
            accel: fresh.accel,
            halted: None,
            now: get(r)?,
            vertices: get_map(r, get_held)?,
            by_seq: get(r)?,
            latest: get(r)?,
            equivocators: get(r)?,
            retired: 0,
            waiting: get(r)?,
            requested: get(r)?,
            heads_seen: Default::default(),
            txs: get_map(r, get)?,
            occs: get_map(r, get)?,
            slots: get_map(r, get)?,
            lock_occs: get_map(r, get)?,
            credits: get_map(r, get)?,
            dependents: get_map(r, get)?,
            locks: get_map(r, get)?,
            accounts: get_map(r, get)?,
            pool: get(r)?,
            parked: get(r)?,
            parked_len: 0,
            funding: get(r)?,
            to_reference: get(r)?,
            to_settle: get(r)?,
            my_seq: get(r)?,
            my_last: get(r)?,
            own_seen: get(r)?,
            last_vertex_ms: get(r)?,
            last_heads_ms: get(r)?,
            started_ms: None,
            confirmed_vertices: get(r)?,
            confirmed_txs: get(r)?,
            anchor_root: get(r)?,
            anchor_count: get(r)?,
            final_seq: get(r)?,
            last_final_ms: get(r)?,
            verified: get(r)?,
            proposals: get(r)?,
            matched: get(r)?,
            sent: get(r)?,
            finals: get(r)?,
            final_mismatch: get(r)?,
            submitted: get(r)?,
            anchor_log: get(r)?,
            scores: get(r)?,
            rewards: get(r)?,
            equivocations: get(r)?,
            pruned_tips: get(r)?,
            pruned_seq: get(r)?,
            prunable: get(r)?,
            prune_due: get(r)?,
            pruned_locks: get_map(r, get)?,
            pruned_recent: get(r)?,
            pruned_known: get_map(r, get)?,
            pruned_order: get(r)?,
            pruned_ids: get(r)?,
            pruned_vertices: get(r)?,
            pruned_txs: get(r)?,
            accepted: get(r)?,
            unpruned: get_map(r, get)?,
            absorbing: get(r)?,
            absorb_backlog: get(r)?,
            absorb_pace: get(r)?,
            last_absorb_ms: get(r)?,
            refused: get(r)?,
        };
        if version >= 4 {
            s.retired = get(r)?;
        }
        // Per-gateway vectors are indexed by gateway: a wrong length would panic later.
        let per_gateway = [
            s.latest.len(),
            s.scores.len(),
            s.rewards.len(),
            s.pruned_tips.len(),
            s.pruned_seq.len(),
        ];
        if per_gateway.iter().any(|l| *l != n)
            || s.vertices
                .values()
                .any(|v| v.creator >= n || v.clock.len() != n)
            || s.equivocators.last().is_some_and(|g| *g >= n)
            || (n < 64 && s.retired >> n != 0)
        {
            return Err(DecodeError::Invalid(
                "per-gateway state of another group size",
            ));
        }
        // What the state machine looks up without a check (a checksummed local file that
        // breaks these is another program's, or another version's).
        let held = |id: &Hash32| s.vertices.contains_key(id);
        if !s.latest.iter().flatten().all(|(_, id)| held(id))
            || !s.my_last.iter().all(held)
            || !s.pruned_tips.iter().flatten().all(held)
            // A tentative anchor's vertices (the final one's may be pruned).
            || !s
                .verified
                .range(s.final_seq + 1..)
                .flat_map(|(_, (_, _, c))| c)
                .all(held)
            || s.by_seq.keys().any(|(c, _)| *c >= n)
            || s.pruned_ids.keys().any(|(c, _)| *c >= n)
        {
            return Err(DecodeError::Invalid("a vertex the state names is not held"));
        }
        s.parked_len = s.parked.values().map(Vec::len).sum();
        if s.retired_me() {
            s.halted = Some(RETIRED.into());
        }
        Ok(s)
    }
}
