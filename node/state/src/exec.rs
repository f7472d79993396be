//! Transaction execution rules.

use cpc_types::{Address, Hash32, SignedTransaction, TxKind, TxReceipt, sha256};

use crate::model::{Account, Anchor, Grant, LeaseOffer, SideGroup, Stream, Validator};
use crate::store::{Overlay, key};
use crate::{DAY_MS, MINUTE_MS, Params, TxError};

/// What execution knows about the block a transaction is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEnv {
    /// Block height.
    pub height: u64,
    /// The block's timestamp: the only clock execution sees.
    pub timestamp_ms: u64,
    /// The proposer, who receives fees.
    pub proposer: Address,
}

impl BlockEnv {
    /// The quota day of the block.
    pub fn day(&self) -> u64 {
        self.timestamp_ms / DAY_MS
    }

    fn minute(&self) -> u64 {
        self.timestamp_ms / MINUTE_MS
    }
}

/// Moves unbonded stake back to the balance once its day has come.
pub(crate) fn release_unbonded(acct: &mut Account, day: u64) {
    if acct.unbonding > 0 && day >= acct.unbonding_day {
        acct.balance = acct.balance.saturating_add(acct.unbonding);
        acct.unbonding = 0;
        acct.unbonding_day = 0;
    }
}

/// Free transactions per day of an account: the ordinary quota plus the DApp share.
pub(crate) fn free_quota(params: &Params, acct: &Account) -> u64 {
    let stake = acct.dapp_stake.saturating_add(acct.leased_in);
    u64::from(params.free_tx_per_day).saturating_add(stake / params.dapp_stake_per_free_tx.max(1))
}

fn credit(ov: &mut Overlay<'_>, addr: &Address, amount: u64) -> Result<(), TxError> {
    if amount == 0 {
        return Ok(());
    }
    let mut a = ov.account(addr);
    a.balance = a.balance.checked_add(amount).ok_or(TxError::Overflow)?;
    ov.set_account(addr, &a);
    Ok(())
}

fn debit(ov: &mut Overlay<'_>, addr: &Address, amount: u64) -> Result<(), TxError> {
    let mut a = ov.account(addr);
    a.balance = a
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientFunds {
            needed: amount,
            available: a.balance,
        })?;
    ov.set_account(addr, &a);
    Ok(())
}

fn positive(amount: u64, what: &'static str) -> Result<u64, TxError> {
    if amount == 0 {
        Err(TxError::InvalidAmount(what))
    } else {
        Ok(amount)
    }
}

/// Executes `tx` on the overlay: nonce, quota and fee first, then the kind's rule.
pub(crate) fn execute(
    ov: &mut Overlay<'_>,
    env: &BlockEnv,
    stx: &SignedTransaction,
) -> Result<TxReceipt, TxError> {
    let tx = &stx.tx;
    if tx.chain_id != ov.chain_id() {
        return Err(TxError::WrongChain {
            expected: ov.chain_id(),
            got: tx.chain_id,
        });
    }
    let sender = tx.sender.address();
    let id = tx.id();
    let params = ov.params();
    let mut acct = ov.account(&sender);
    if tx.nonce != acct.nonce {
        return Err(TxError::BadNonce {
            expected: acct.nonce,
            got: tx.nonce,
        });
    }
    if acct.quota_day != env.day() {
        acct.quota_day = env.day();
        acct.sent_today = 0;
    }
    if acct.rate_minute != env.minute() {
        acct.rate_minute = env.minute();
        acct.sent_this_minute = 0;
    }
    release_unbonded(&mut acct, env.day());
    // Free quota is for funded accounts: fresh addresses cannot write state for nothing.
    if acct.balance < params.base_fee {
        return Err(TxError::InsufficientFunds {
            needed: params.base_fee,
            available: acct.balance,
        });
    }
    let free = u64::from(acct.sent_today) < free_quota(params, &acct)
        && acct.sent_this_minute < params.rate_limit_per_minute;
    let fee = if free { 0 } else { params.base_fee };
    if fee > tx.max_fee {
        return Err(TxError::FeeTooHigh {
            fee,
            max_fee: tx.max_fee,
        });
    }
    acct.balance = acct
        .balance
        .checked_sub(fee)
        .ok_or(TxError::InsufficientFunds {
            needed: fee,
            available: acct.balance,
        })?;
    acct.nonce += 1;
    if free {
        acct.sent_today = acct.sent_today.saturating_add(1);
    }
    acct.sent_this_minute = acct.sent_this_minute.saturating_add(1);
    ov.set_account(&sender, &acct);

    apply_kind(ov, env, &sender, &id, stx)?;

    let foundation_share =
        (u128::from(fee) * u128::from(params.foundation_fee_percent) / 100) as u64;
    credit(ov, &params.foundation, foundation_share)?;
    credit(ov, &env.proposer, fee - foundation_share)?;
    Ok(TxReceipt { tx: id, fee, free })
}

fn apply_kind(
    ov: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    id: &Hash32,
    stx: &SignedTransaction,
) -> Result<(), TxError> {
    let params = ov.params();
    match &stx.tx.kind {
        TxKind::Transfer { to, amount } => {
            positive(*amount, "transfer of zero")?;
            debit(ov, sender, *amount)?;
            credit(ov, to, *amount)
        }
        TxKind::RegisterValidator {
            deposit,
            vrf_key,
            endpoint,
        } => {
            if *deposit < params.min_validator_deposit {
                return Err(TxError::InvalidAmount("deposit below the minimum"));
            }
            if endpoint.len() > 256 {
                return Err(TxError::Invalid("endpoint longer than 256 bytes".into()));
            }
            if ov.get(&key::validator(sender)).is_some() {
                return Err(TxError::NotAllowed(
                    "the sender is already a validator".into(),
                ));
            }
            debit(ov, sender, *deposit)?;
            let v = Validator {
                key: stx.tx.sender,
                vrf_key: *vrf_key,
                endpoint: endpoint.clone(),
                deposit: *deposit,
                credit: params.initial_credit,
                absent: 0,
            };
            ov.put(key::validator(sender), &v);
            Ok(())
        }
        TxKind::DataRecord(rec) => {
            if rec.first_interval > rec.last_interval {
                return Err(TxError::Invalid(
                    "first_interval after last_interval".into(),
                ));
            }
            if rec.capsule.len() > 16 * 1024 {
                return Err(TxError::Invalid("capsule longer than 16 KiB".into()));
            }
            let mut stream = match ov.get_decoded::<Stream>(&key::stream(&rec.stream_id)) {
                Some(s) if s.owner != *sender => {
                    return Err(TxError::NotAllowed(format!(
                        "stream {} belongs to {}",
                        rec.stream_id, s.owner
                    )));
                }
                Some(s) => s,
                None => Stream {
                    owner: *sender,
                    policy: rec.policy,
                    records: 0,
                },
            };
            let rk = key::record(&rec.stream_id, rec.first_interval);
            if ov.get(&rk).is_some() {
                return Err(TxError::NotAllowed(
                    "a record for this interval exists".into(),
                ));
            }
            stream.policy = rec.policy;
            stream.records += 1;
            ov.put(key::stream(&rec.stream_id), &stream);
            ov.put(rk, rec);
            Ok(())
        }
        TxKind::Grant {
            stream_id,
            grantee,
            first_interval,
            last_interval,
        } => {
            owned_stream(ov, stream_id, sender)?;
            if first_interval > last_interval {
                return Err(TxError::Invalid(
                    "first_interval after last_interval".into(),
                ));
            }
            let g = Grant {
                first_interval: *first_interval,
                last_interval: *last_interval,
                granted_at: env.height,
            };
            ov.put(key::grant(stream_id, grantee), &g);
            Ok(())
        }
        TxKind::Revoke { stream_id, grantee } => {
            owned_stream(ov, stream_id, sender)?;
            let gk = key::grant(stream_id, grantee);
            if ov.get(&gk).is_none() {
                return Err(TxError::NotFound {
                    what: "grant for stream",
                    id: *stream_id,
                });
            }
            ov.delete(gk);
            Ok(())
        }
        TxKind::Anchor {
            anchor: a,
            endorsements,
        } => side_anchor(ov, env, sender, a, endorsements),
        TxKind::Evidence(ev) if is_side_evidence(ev) => {
            let (group_id, offender) = side_equivocation(ev)?;
            let g: SideGroup =
                ov.get_decoded(&key::side_group(&group_id))
                    .ok_or(TxError::NotFound {
                        what: "side-chain group",
                        id: group_id,
                    })?;
            if !g.gateways.contains(&offender) {
                return Err(TxError::Invalid(
                    "evidence: the offender is not a gateway of the group".into(),
                ));
            }
            // One report per gateway and group: a second pair adds nothing.
            let k = key::side_offender(&group_id, &offender.address());
            if ov.get(&k).is_some() {
                return Err(TxError::NotAllowed(
                    "this gateway's equivocation is already on chain".into(),
                ));
            }
            ov.put(k, &env.height);
            // A gateway that is also a validator loses its credit and deposit as for a
            // consensus equivocation; any other gateway loses its future rewards.
            if let Some(v) = ov.get_decoded::<Validator>(&key::validator(&offender.address()))
                && (v.deposit > 0 || v.credit > 0)
            {
                slash(ov, sender, v)?;
            }
            Ok(())
        }
        TxKind::Evidence(ev) => {
            let (a, b) = conflicting_votes(ev, ov.chain_id())?;
            let offender = ev.offender.address();
            let Some(v) = ov.get_decoded::<Validator>(&key::validator(&offender)) else {
                return Err(TxError::Invalid("the offender is not a validator".into()));
            };
            if v.deposit == 0 && v.credit == 0 {
                return Err(TxError::NotAllowed(
                    "the offender has already been slashed".into(),
                ));
            }
            // The pair, in either order, is reported once.
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            let eid = sha256(&[&ev.offender.0, &a.signing_bytes(), &b.signing_bytes()]);
            if ov.get(&key::evidence(&eid)).is_some() {
                return Err(TxError::NotAllowed(
                    "this evidence is already on chain".into(),
                ));
            }
            ov.put(key::evidence(&eid), &env.height);
            slash(ov, sender, v)
        }
        TxKind::DappStake { amount } => {
            positive(*amount, "stake of zero")?;
            debit(ov, sender, *amount)?;
            let mut a = ov.account(sender);
            a.dapp_stake = a.dapp_stake.checked_add(*amount).ok_or(TxError::Overflow)?;
            ov.set_account(sender, &a);
            Ok(())
        }
        TxKind::DappUnstake { amount } => {
            positive(*amount, "unstake of zero")?;
            let mut a = ov.account(sender);
            a.dapp_stake = a
                .dapp_stake
                .checked_sub(*amount)
                .ok_or(TxError::InsufficientFunds {
                    needed: *amount,
                    available: a.dapp_stake,
                })?;
            // Unstaked CPC is spendable from the next day, so one stake cannot earn quota
            // for several accounts in a day.
            a.unbonding = a.unbonding.checked_add(*amount).ok_or(TxError::Overflow)?;
            a.unbonding_day = env.day() + 1;
            ov.set_account(sender, &a);
            Ok(())
        }
        TxKind::LeaseOffer {
            amount,
            fee_per_day,
            max_days,
        } => {
            positive(*amount, "lease of zero")?;
            if *max_days == 0 {
                return Err(TxError::InvalidAmount("max_days of zero"));
            }
            debit(ov, sender, *amount)?;
            let offer = LeaseOffer {
                lender: *sender,
                amount: *amount,
                fee_per_day: *fee_per_day,
                max_days: *max_days,
                lessee: None,
                end_day: 0,
            };
            ov.put(key::offer(id), &offer);
            Ok(())
        }
        TxKind::LeaseTake { offer, days } => {
            let mut o: LeaseOffer =
                ov.get_decoded(&key::offer(offer))
                    .ok_or(TxError::NotFound {
                        what: "lease offer",
                        id: *offer,
                    })?;
            if o.lessee.is_some() {
                return Err(TxError::NotAllowed("the offer is already leased".into()));
            }
            if o.lender == *sender {
                return Err(TxError::NotAllowed(
                    "a lender cannot lease its own offer".into(),
                ));
            }
            if *days == 0 || *days > o.max_days {
                return Err(TxError::Invalid(format!(
                    "days must be 1 to {}",
                    o.max_days
                )));
            }
            let fee = o
                .fee_per_day
                .checked_mul(u64::from(*days))
                .ok_or(TxError::Overflow)?;
            debit(ov, sender, fee)?;
            credit(ov, &o.lender, fee)?;
            let mut a = ov.account(sender);
            a.leased_in = a.leased_in.checked_add(o.amount).ok_or(TxError::Overflow)?;
            ov.set_account(sender, &a);
            o.lessee = Some(*sender);
            // Leases run in whole UTC days: the stake returns at the start of day
            // `today + days`, whatever the hour the lease was taken.
            o.end_day = env.day() + u64::from(*days);
            ov.put(key::offer(offer), &o);
            Ok(())
        }
        TxKind::LeaseCancel { offer } => {
            let o: LeaseOffer = ov
                .get_decoded(&key::offer(offer))
                .ok_or(TxError::NotFound {
                    what: "lease offer",
                    id: *offer,
                })?;
            if o.lender != *sender {
                return Err(TxError::NotAllowed(
                    "only the lender can cancel an offer".into(),
                ));
            }
            if o.lessee.is_some() {
                return Err(TxError::NotAllowed(
                    "the offer is leased until its end day".into(),
                ));
            }
            ov.delete(key::offer(offer));
            credit(ov, sender, o.amount)
        }
        TxKind::SideGroup {
            group_id,
            gateways,
            reward_per_anchor,
            fund,
        } => {
            if gateways.is_empty() || gateways.len() > 64 {
                return Err(TxError::Invalid(format!(
                    "{} gateways; a side-chain group has 1 to 64",
                    gateways.len()
                )));
            }
            if gateways.windows(2).any(|w| w[0] >= w[1]) {
                return Err(TxError::Invalid(
                    "gateways must be sorted, each listed once".into(),
                ));
            }
            let k = key::side_group(group_id);
            let (locked, pool, retired) = match ov.get_decoded::<SideGroup>(&k) {
                Some(g) if g.owner != *sender => {
                    return Err(TxError::NotAllowed(
                        "only the group's owner may change it".into(),
                    ));
                }
                // The running gateways sign the group's history and endorse its anchors
                // as this set: another set here would refuse their anchors and stop its
                // finality, and no handover from one set to the next exists yet.
                Some(g) if g.gateways != *gateways => {
                    return Err(TxError::NotAllowed(
                        "a side-chain group keeps the gateways it was declared with: list \
                         them as they are to change its reward or fund it; retire one that \
                         is gone for good (side_retire), or declare a new group"
                            .into(),
                    ));
                }
                Some(g) => (g.locked, g.pool, g.retired),
                None => (0, 0, Vec::new()),
            };
            debit(ov, sender, *fund)?;
            ov.put(
                k,
                &SideGroup {
                    owner: *sender,
                    gateways: gateways.clone(),
                    locked,
                    reward_per_anchor: *reward_per_anchor,
                    pool: pool.checked_add(*fund).ok_or(TxError::Overflow)?,
                    retired,
                },
            );
            Ok(())
        }
        TxKind::SideRetire { group_id, gateway } => {
            let k = key::side_group(group_id);
            let mut g: SideGroup = ov.get_decoded(&k).ok_or(TxError::NotFound {
                what: "side-chain group",
                id: *group_id,
            })?;
            if g.owner != *sender {
                return Err(TxError::NotAllowed(
                    "only the group's owner may retire its gateways".into(),
                ));
            }
            if g.gateways.binary_search(gateway).is_err() {
                return Err(TxError::Invalid(format!(
                    "{gateway} is not a gateway of the group"
                )));
            }
            let Err(at) = g.retired.binary_search(gateway) else {
                return Err(TxError::Invalid(format!("{gateway} is retired already")));
            };
            if g.retirable() == 0 {
                return Err(TxError::NotAllowed(format!(
                    "a group of {} gateways may retire at most {}: the rest must stay a quorum; \
                     bring a gateway back instead",
                    g.gateways.len(),
                    cpc_types::side_faults(g.gateways.len())
                )));
            }
            g.retired.insert(at, *gateway);
            ov.put(k, &g);
            Ok(())
        }
        TxKind::SideLock {
            group_id, amount, ..
        } => {
            positive(*amount, "side lock")?;
            let k = key::side_group(group_id);
            let mut g: SideGroup = ov.get_decoded(&k).ok_or(TxError::NotFound {
                what: "side-chain group",
                id: *group_id,
            })?;
            debit(ov, sender, *amount)?;
            g.locked = g.locked.checked_add(*amount).ok_or(TxError::Overflow)?;
            ov.put(k, &g);
            Ok(())
        }
    }
}

fn owned_stream(ov: &Overlay<'_>, stream_id: &Hash32, sender: &Address) -> Result<Stream, TxError> {
    let s: Stream = ov
        .get_decoded(&key::stream(stream_id))
        .ok_or(TxError::NotFound {
            what: "stream",
            id: *stream_id,
        })?;
    if s.owner != *sender {
        return Err(TxError::NotAllowed(format!(
            "stream {stream_id} belongs to {}",
            s.owner
        )));
    }
    Ok(s)
}

/// Returns a lease's stake to its lender and removes it from the DApp's stake.
pub(crate) fn end_lease(ov: &mut Overlay<'_>, id: &Hash32) {
    let Some(o) = ov.get_decoded::<LeaseOffer>(&key::offer(id)) else {
        return;
    };
    if let Some(lessee) = o.lessee {
        let mut a = ov.account(&lessee);
        a.leased_in = a.leased_in.saturating_sub(o.amount);
        ov.set_account(&lessee, &a);
    }
    ov.delete(key::offer(id));
    // Supply is conserved, so the lender's balance cannot overflow.
    let _ = credit(ov, &o.lender, o.amount);
}

/// Slashes a validator's credit to zero and its whole deposit: a tenth to the reporter, the
/// rest to the foundation (the supply stays the same).
fn slash(ov: &mut Overlay<'_>, reporter: &Address, mut v: Validator) -> Result<(), TxError> {
    let slashed = v.deposit;
    v.credit = 0;
    v.deposit = 0;
    ov.put(key::validator(&v.key.address()), &v);
    let reward = slashed / 10;
    credit(ov, reporter, reward)?;
    let foundation = ov.params().foundation;
    credit(ov, &foundation, slashed - reward)
}

/// Records a side-chain anchor that a quorum of the group's gateways endorsed, and pays its
/// cooperation rewards from the group's pool.
///
/// The main chain cannot recompute the anchor (it has no DAG); the endorsements stand for
/// that: any two quorums share an honest gateway, and an honest gateway endorses only an
/// anchor whose root, count and rewards it recomputed from its own confirmed DAG.
fn side_anchor(
    ov: &mut Overlay<'_>,
    env: &BlockEnv,
    sender: &Address,
    a: &cpc_types::SideAnchor,
    endorsements: &[cpc_types::Endorsement],
) -> Result<(), TxError> {
    let gk = key::side_group(&a.group_id);
    let mut group: SideGroup = ov.get_decoded(&gk).ok_or(TxError::NotFound {
        what: "side-chain group",
        id: a.group_id,
    })?;
    let n = group.gateways.len();
    if a.frontier.is_empty() || a.frontier.len() > n || a.frontier.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(TxError::Invalid(
            "the anchor's frontier must hold 1 to n vertex ids, sorted and unique".into(),
        ));
    }
    // Gateways apply anchors in sequence: a gap would leave them waiting forever.
    let prev = ov.get_decoded::<Anchor>(&key::anchor(&a.group_id));
    let (expected, floor) = prev
        .as_ref()
        .map_or((1, 0), |p| (p.sequence + 1, p.confirmed_vertices));
    if a.sequence != expected || a.confirmed_vertices < floor {
        return Err(TxError::Invalid(format!(
            "anchor {} does not follow the group's last anchor; the next is {expected}",
            a.sequence
        )));
    }
    let quorum = cpc_types::side_quorum(n);
    if endorsements
        .windows(2)
        .any(|w| w[0].gateway >= w[1].gateway)
    {
        return Err(TxError::Invalid(
            "endorsements must be sorted by gateway, each once".into(),
        ));
    }
    // A retired gateway's endorsement does not count: the box is gone, and its key may
    // be in anyone's hands.
    let counted = endorsements
        .iter()
        .filter(|e| group.retired.binary_search(&e.gateway).is_err())
        .count();
    if counted < quorum {
        let retired = if counted < endorsements.len() {
            " by gateways not retired"
        } else {
            ""
        };
        return Err(TxError::NotAllowed(format!(
            "{counted} endorsements{retired}; an anchor of this group needs {quorum}"
        )));
    }
    let msg = a.signing_bytes();
    for e in endorsements {
        if group.gateways.binary_search(&e.gateway).is_err() {
            return Err(TxError::NotAllowed(format!(
                "{} is not a gateway of the group",
                e.gateway
            )));
        }
        if !e.gateway.verify(&msg, &e.signature) {
            return Err(TxError::Invalid(format!(
                "the endorsement of {} does not verify",
                e.gateway
            )));
        }
    }
    if !a.rewards.is_empty()
        && (a.rewards.len() != n
            || a.rewards
                .iter()
                .zip(&group.gateways)
                .any(|(r, g)| r.gateway != *g))
    {
        return Err(TxError::Invalid(
            "rewards must list every gateway once, in key order".into(),
        ));
    }
    let total = a
        .rewards
        .iter()
        .try_fold(0u64, |t, r| t.checked_add(r.amount))
        .ok_or(TxError::Overflow)?;
    if total > group.reward_per_anchor {
        return Err(TxError::Invalid(format!(
            "the anchor pays {total} in rewards; the group pays at most {} per anchor",
            group.reward_per_anchor
        )));
    }
    // Gateways with an equivocation on chain are not paid; an empty pool pays in proportion.
    let payable: Vec<(Address, u64)> = a
        .rewards
        .iter()
        .map(|r| (r.gateway.address(), r.amount))
        .filter(|(addr, amount)| {
            *amount > 0 && ov.get(&key::side_offender(&a.group_id, addr)).is_none()
        })
        .collect();
    let due: u64 = payable.iter().map(|(_, x)| x).sum();
    let pool = group.pool;
    for (addr, amount) in payable {
        let paid = if due <= pool {
            amount
        } else {
            (u128::from(amount) * u128::from(pool) / u128::from(due)) as u64
        };
        credit(ov, &addr, paid)?;
        group.pool -= paid;
    }
    ov.put(gk, &group);
    ov.put(
        key::anchor(&a.group_id),
        &Anchor {
            submitter: *sender,
            sequence: a.sequence,
            frontier_root: a.root,
            confirmed_vertices: a.confirmed_vertices,
            height: env.height,
        },
    );
    Ok(())
}

/// Whether evidence is about side-chain vertices rather than consensus votes.
fn is_side_evidence(ev: &cpc_types::MisbehaviourEvidence) -> bool {
    ev.first.payload.starts_with(cpc_types::side::VERTEX_DOMAIN)
}

/// The group and gateway of evidence that one gateway signed two different vertices with
/// one sequence number.
fn side_equivocation(
    ev: &cpc_types::MisbehaviourEvidence,
) -> Result<(Hash32, cpc_types::PublicKey), TxError> {
    use cpc_types::{VertexHeader, decode_exact, side::VERTEX_DOMAIN};
    let bad = |m: &str| TxError::Invalid(format!("evidence: {m}"));
    let header = |m: &cpc_types::SignedMessage| -> Result<VertexHeader, TxError> {
        let body = m
            .payload
            .strip_prefix(VERTEX_DOMAIN)
            .ok_or_else(|| bad("a message is not a side-chain vertex"))?;
        let h: VertexHeader =
            decode_exact(body).map_err(|_| bad("a message is not a side-chain vertex"))?;
        if !ev.offender.verify(&m.payload, &m.signature) {
            return Err(bad("a signature does not verify"));
        }
        Ok(h)
    };
    let (a, b) = (header(&ev.first)?, header(&ev.second)?);
    if a.creator != ev.offender || b.creator != ev.offender {
        return Err(bad("the offender did not make both vertices"));
    }
    if a.group_id != b.group_id || a.sequence != b.sequence || a == b {
        return Err(bad("the vertices do not conflict"));
    }
    Ok((a.group_id, ev.offender))
}

/// The two votes of `ev` if they are a protocol violation of the Simplex rules: two
/// notarize (or two finalize) votes for different blocks in one view, or a finalize and a
/// nullify vote in one view. Any other pair — votes of different views, a notarize and a
/// nullify — is what an honest member may sign.
fn conflicting_votes(
    ev: &cpc_types::MisbehaviourEvidence,
    chain_id: u32,
) -> Result<(cpc_types::Vote, cpc_types::Vote), TxError> {
    use cpc_types::block::VOTE_DOMAIN;
    use cpc_types::{Vote, VoteKind, decode_exact};
    let bad = |m: &str| TxError::Invalid(format!("evidence: {m}"));
    let vote = |m: &cpc_types::SignedMessage| -> Result<Vote, TxError> {
        let body = m
            .payload
            .strip_prefix(VOTE_DOMAIN)
            .ok_or_else(|| bad("a message is not a consensus vote"))?;
        let v: Vote = decode_exact(body).map_err(|_| bad("a message is not a consensus vote"))?;
        if !ev.offender.verify(&m.payload, &m.signature) {
            return Err(bad("a signature does not verify"));
        }
        Ok(v)
    };
    let (a, b) = (vote(&ev.first)?, vote(&ev.second)?);
    if a.chain_id != chain_id || b.chain_id != chain_id {
        return Err(bad("a vote is for another chain"));
    }
    if a.view != b.view || a.epoch != b.epoch || a == b {
        return Err(bad("the votes do not conflict"));
    }
    let conflict = match (a.kind, b.kind) {
        (VoteKind::Notarize, VoteKind::Notarize) | (VoteKind::Finalize, VoteKind::Finalize) => {
            a.block != b.block
        }
        (VoteKind::Finalize, VoteKind::Nullify) | (VoteKind::Nullify, VoteKind::Finalize) => true,
        _ => false,
    };
    if conflict {
        Ok((a, b))
    } else {
        Err(bad("the votes do not conflict"))
    }
}

#[cfg(test)]
mod tests {
    use cpc_types::{Hash32, MisbehaviourEvidence, SecretKey, SignedMessage, Vote, VoteKind};

    use super::conflicting_votes;

    fn vote(kind: VoteKind, view: u64, block: u8) -> Vote {
        let nullify = kind == VoteKind::Nullify;
        Vote {
            chain_id: 1,
            epoch: 0,
            kind,
            view,
            parent_view: if nullify { 0 } else { view - 1 },
            parent: if nullify {
                Hash32::ZERO
            } else {
                Hash32([1; 32])
            },
            block: if nullify {
                Hash32::ZERO
            } else {
                Hash32([block; 32])
            },
        }
    }

    fn evidence(k: &SecretKey, a: Vote, b: Vote) -> MisbehaviourEvidence {
        let s = |v: Vote| SignedMessage {
            payload: v.signing_bytes(),
            signature: k.sign(&v.signing_bytes()),
        };
        MisbehaviourEvidence {
            offender: k.public(),
            first: s(a),
            second: s(b),
        }
    }

    #[test]
    fn only_votes_an_honest_member_never_signs_are_evidence() {
        use VoteKind::{Finalize, Notarize, Nullify};
        let k = SecretKey::from_bytes([4; 32]);
        let conflict = |a, b| conflicting_votes(&evidence(&k, a, b), 1).is_ok();
        assert!(conflict(vote(Notarize, 5, 1), vote(Notarize, 5, 2)));
        assert!(conflict(vote(Finalize, 5, 1), vote(Finalize, 5, 2)));
        assert!(conflict(vote(Finalize, 5, 1), vote(Nullify, 5, 0)));
        // What honest members do sign.
        assert!(!conflict(vote(Notarize, 5, 1), vote(Nullify, 5, 0)));
        assert!(!conflict(vote(Notarize, 5, 1), vote(Finalize, 5, 2)));
        assert!(!conflict(vote(Notarize, 5, 1), vote(Notarize, 6, 2)));
        assert!(!conflict(vote(Notarize, 5, 1), vote(Notarize, 5, 1)));
        // Two committees' views are apart: a member of both may vote in view 5 of each.
        let mut later = vote(Notarize, 5, 2);
        later.epoch = 1;
        assert!(!conflict(vote(Notarize, 5, 1), later));
        // Another chain's votes, or a signature by someone else.
        let mut other = vote(Notarize, 5, 2);
        other.chain_id = 2;
        assert!(!conflict(vote(Notarize, 5, 1), other));
        let mut ev = evidence(&k, vote(Notarize, 5, 1), vote(Notarize, 5, 2));
        ev.offender = SecretKey::from_bytes([5; 32]).public();
        assert!(conflicting_votes(&ev, 1).is_err());
        // A payload that is not a vote.
        let mut ev = evidence(&k, vote(Notarize, 5, 1), vote(Notarize, 5, 2));
        ev.second.payload = b"cpchain/vote/v3 junk".to_vec();
        ev.second.signature = k.sign(&ev.second.payload);
        assert!(conflicting_votes(&ev, 1).is_err());
    }
}
