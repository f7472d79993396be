//! The records kept in the state.

use cpc_types::codec::{Decode, DecodeError, Encode, Reader};
use cpc_types::{AccessPolicy, Address, Hash32, PublicKey, codec_struct};
use serde::{Deserialize, Serialize};

/// An account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable base units.
    pub balance: u64,
    /// Committed transactions sent; the next transaction must carry this nonce.
    pub nonce: u64,
    /// Base units staked as a DApp account.
    pub dapp_stake: u64,
    /// Base units of stake leased in from lenders (active leases).
    pub leased_in: u64,
    /// The day (`timestamp / DAY_MS`) that `sent_today` counts.
    pub quota_day: u64,
    /// Free transactions sent on `quota_day`.
    pub sent_today: u32,
    /// The minute (`timestamp / MINUTE_MS`) that `sent_this_minute` counts.
    pub rate_minute: u64,
    /// Transactions sent in `rate_minute`.
    pub sent_this_minute: u32,
    /// Unstaked base units not yet spendable.
    pub unbonding: u64,
    /// The day from which `unbonding` returns to the balance.
    pub unbonding_day: u64,
}
codec_struct!(Account {
    balance,
    nonce,
    dapp_stake,
    leased_in,
    quota_day,
    sent_today,
    rate_minute,
    sent_this_minute,
    unbonding,
    unbonding_day,
});

impl Account {
    /// Whether nothing is recorded for the account (such entries are not stored).
    pub fn is_empty(&self) -> bool {
        *self == Account::default()
    }
}

/// Stake offered for lease, and the lease once taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOffer {
    /// Who offers the stake and receives fee and stake back.
    pub lender: Address,
    /// Base units locked.
    pub amount: u64,
    /// Fee per day.
    pub fee_per_day: u64,
    /// Longest lease accepted, in days.
    pub max_days: u32,
    /// The DApp that leased it, if taken.
    pub lessee: Option<Address>,
    /// The day the lease ends (stake returns at the first block of that day).
    pub end_day: u64,
}
codec_struct!(LeaseOffer {
    lender,
    amount,
    fee_per_day,
    max_days,
    lessee,
    end_day
});

/// A consensus candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// The key that signs votes and proposals.
    pub key: PublicKey,
    /// The key of its VRF tickets.
    pub vrf_key: PublicKey,
    /// Where peers reach it.
    pub endpoint: String,
    /// Locked deposit.
    pub deposit: u64,
    /// Credit (reputation), 0–1000.
    pub credit: u32,
    /// Blocks in a row that carried the committee's votes without this member's.
    pub absent: u32,
}
codec_struct!(Validator {
    key,
    vrf_key,
    endpoint,
    deposit,
    credit,
    absent
});

/// A data stream and its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stream {
    /// The owner: the first account that recorded the stream.
    pub owner: Address,
    /// Access policy of the latest record.
    pub policy: AccessPolicy,
    /// Records published.
    pub records: u64,
}
codec_struct!(Stream {
    owner,
    policy,
    records
});

/// Read access to a range of a stream's intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// First interval.
    pub first_interval: u64,
    /// Last interval (inclusive).
    pub last_interval: u64,
    /// Height of the block that granted it.
    pub granted_at: u64,
}
codec_struct!(Grant {
    first_interval,
    last_interval,
    granted_at
});

/// The latest side-chain checkpoint of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The anchoring gateway.
    pub submitter: Address,
    /// Sequence number, increasing per group.
    pub sequence: u64,
    /// Root of the confirmed frontier.
    pub frontier_root: Hash32,
    /// Confirmed vertices covered.
    pub confirmed_vertices: u64,
    /// Height of the anchoring block.
    pub height: u64,
}
codec_struct!(Anchor {
    submitter,
    sequence,
    frontier_root,
    confirmed_vertices,
    height
});

/// A side-chain group declared on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideGroup {
    /// Who declared it, and alone may change its reward or fund it.
    pub owner: Address,
    /// The gateways' keys, sorted.
    pub gateways: Vec<PublicKey>,
    /// Base units locked in the group by side-lock transactions.
    pub locked: u64,
    /// The most an anchor pays in cooperation rewards.
    pub reward_per_anchor: u64,
    /// Base units left to pay rewards from.
    pub pool: u64,
    /// Gateways the owner retired (gone for good), sorted: at most `f` of them.
    pub retired: Vec<PublicKey>,
}

impl SideGroup {
    /// Gateways that may still be retired: a group keeps a quorum (`n − f`) of gateways
    /// that are not, or it could confirm nothing once they are gone.
    pub fn retirable(&self) -> usize {
        cpc_types::side_faults(self.gateways.len()).saturating_sub(self.retired.len())
    }
}

// `retired` is written only when not empty, so that a group that never retired a gateway
// encodes (and hashes into the state root) as it did before the field existed.
impl Encode for SideGroup {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.owner.encode_to(out);
        self.gateways.encode_to(out);
        self.locked.encode_to(out);
        self.reward_per_anchor.encode_to(out);
        self.pool.encode_to(out);
        if !self.retired.is_empty() {
            self.retired.encode_to(out);
        }
    }
}

impl Decode for SideGroup {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SideGroup {
            owner: Decode::decode_from(r)?,
            gateways: Decode::decode_from(r)?,
            locked: Decode::decode_from(r)?,
            reward_per_anchor: Decode::decode_from(r)?,
            pool: Decode::decode_from(r)?,
            retired: if r.remaining() > 0 {
                Decode::decode_from(r)?
            } else {
                Vec::new()
            },
        })
    }
}
