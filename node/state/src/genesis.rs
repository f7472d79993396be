//! The genesis file: chain id, economic parameters, allocations and first validators.

use std::collections::BTreeMap;

use cpc_types::codec::{Decode, DecodeError, Encode, Reader};
use cpc_types::{Address, Hash32, PublicKey, TOTAL_SUPPLY, UNITS_PER_CPC, codec_struct, sha256};
use serde::{Deserialize, Serialize};

use crate::GenesisError;

/// The latest timestamp accepted anywhere (9999-12-31), so timestamps never overflow.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_000;

/// Economic and block parameters, fixed at genesis and stored in the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Free transactions per UTC day for an ordinary account.
    pub free_tx_per_day: u32,
    /// Transactions per minute beyond which each one pays the fee.
    pub rate_limit_per_minute: u32,
    /// Fee of a transaction beyond the free quota or the rate limit, in base units.
    pub base_fee: u64,
    /// Base units of DApp stake that earn one more free transaction per day.
    pub dapp_stake_per_free_tx: u64,
    /// The foundation account.
    pub foundation: Address,
    /// Share of every fee paid to the foundation, 0–100; the proposer gets the rest.
    pub foundation_fee_percent: u8,
    /// Smallest deposit of a validator registration, in base units.
    pub min_validator_deposit: u64,
    /// Credit of a newly registered validator (0–1000).
    pub initial_credit: u32,
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Credit a validator earns for each final block it proposed.
    #[serde(default = "default_proposal_reward")]
    pub proposal_reward: u32,
    /// Credit a validator loses for each view it led that was nullified.
    #[serde(default = "default_missed_proposal_penalty")]
    pub missed_proposal_penalty: u32,
    /// Committee seats `k`; `3f + 1` seats tolerate `f` faulty members.
    #[serde(default = "default_committee_size")]
    pub committee_size: u32,
    /// Blocks per election term; the committee is elected anew at the end of each.
    #[serde(default = "default_term_length")]
    pub term_length: u64,
    /// Seats of each election reserved for the luckiest low-credit candidates.
    #[serde(default = "default_reserved_seats")]
    pub reserved_seats: u32,
    /// Credit below which a candidate may take a reserved seat.
    #[serde(default = "default_low_credit_below")]
    pub low_credit_below: u32,
    /// Weight of credit against luck in the election score, 0–100.
    #[serde(default = "default_credit_weight_percent")]
    pub credit_weight_percent: u8,
    /// Credit a member earns for each of its votes a block carries.
    #[serde(default = "default_vote_reward")]
    pub vote_reward: u32,
    /// Credit a member loses for each block without its vote, beyond `absence_grace`.
    #[serde(default = "default_absence_penalty")]
    pub absence_penalty: u32,
    /// Blocks in a row a member's vote may be missing before it loses credit (slow links
    /// miss some; a member that is down misses all).
    #[serde(default = "default_absence_grace")]
    pub absence_grace: u32,
    /// Members whose credit falls below this leave the committee.
    #[serde(default = "default_removal_threshold")]
    pub removal_threshold: u32,
    /// Credit a candidate earns for each ticket recorded on chain.
    #[serde(default = "default_ticket_reward")]
    pub ticket_reward: u32,
}

fn default_proposal_reward() -> u32 {
    1
}
fn default_missed_proposal_penalty() -> u32 {
    10
}
fn default_committee_size() -> u32 {
    4
}
fn default_term_length() -> u64 {
    600
}
fn default_reserved_seats() -> u32 {
    1
}
fn default_low_credit_below() -> u32 {
    550
}
fn default_credit_weight_percent() -> u8 {
    50
}
fn default_vote_reward() -> u32 {
    1
}
fn default_absence_penalty() -> u32 {
    2
}
fn default_absence_grace() -> u32 {
    8
}
fn default_removal_threshold() -> u32 {
    100
}
fn default_ticket_reward() -> u32 {
    20
}
codec_struct!(Params {
    free_tx_per_day,
    rate_limit_per_minute,
    base_fee,
    dapp_stake_per_free_tx,
    foundation,
    foundation_fee_percent,
    min_validator_deposit,
    initial_credit,
    max_block_txs,
    proposal_reward,
    missed_proposal_penalty,
    committee_size,
    term_length,
    reserved_seats,
    low_credit_below,
    credit_weight_percent,
    vote_reward,
    absence_penalty,
    absence_grace,
    removal_threshold,
    ticket_reward,
});

impl Params {
    /// Defaults for a new network, with `foundation` as the foundation account.
    pub fn with_foundation(foundation: Address) -> Self {
        Self {
            free_tx_per_day: 100,
            rate_limit_per_minute: 30,
            base_fee: UNITS_PER_CPC / 1000,
            dapp_stake_per_free_tx: 10 * UNITS_PER_CPC,
            foundation,
            foundation_fee_percent: 20,
            min_validator_deposit: 10_000 * UNITS_PER_CPC,
            initial_credit: 500,
            max_block_txs: 20_000,
            proposal_reward: default_proposal_reward(),
            missed_proposal_penalty: default_missed_proposal_penalty(),
            committee_size: default_committee_size(),
            term_length: default_term_length(),
            reserved_seats: default_reserved_seats(),
            low_credit_below: default_low_credit_below(),
            credit_weight_percent: default_credit_weight_percent(),
            vote_reward: default_vote_reward(),
            absence_penalty: default_absence_penalty(),
            absence_grace: default_absence_grace(),
            removal_threshold: default_removal_threshold(),
            ticket_reward: default_ticket_reward(),
        }
    }
}

/// A validator present from genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Its signing key.
    pub key: PublicKey,
    /// Its VRF key.
    pub vrf_key: PublicKey,
    /// Where peers reach it.
    pub endpoint: String,
    /// Deposit locked from the supply.
    pub deposit: u64,
}
impl GenesisValidator {
    /// A validator whose VRF key is its signing key and whose endpoint is unknown (peers
    /// find it some other way): what `cpchain init` and the tests declare.
    pub fn new(key: PublicKey, deposit: u64) -> GenesisValidator {
        GenesisValidator {
            key,
            vrf_key: key,
            endpoint: String::new(),
            deposit,
        }
    }
}

codec_struct!(GenesisValidator {
    key,
    vrf_key,
    endpoint,
    deposit
});

/// A side-chain group present from genesis, as a `side_group` transaction would declare
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisSideGroup {
    /// The group id (`cpc_sidechain::Group::id_of(name)`).
    pub id: Hash32,
    /// The account that owns the group and alone may change its reward or fund it.
    pub owner: Address,
    /// The gateways' keys, sorted, each once.
    pub gateways: Vec<PublicKey>,
    /// The most an anchor pays in cooperation rewards, in base units.
    #[serde(default)]
    pub reward_per_anchor: u64,
    /// Base units in the group's reward pool from the start (part of the supply).
    #[serde(default)]
    pub reward_pool: u64,
}
codec_struct!(GenesisSideGroup {
    id,
    owner,
    gateways,
    reward_per_anchor,
    reward_pool
});

/// The genesis file (`genesis.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain id every transaction and block carries.
    pub chain_id: u32,
    /// Timestamp of the genesis block.
    pub timestamp_ms: u64,
    /// Parameters.
    pub params: Params,
    /// Initial balances in base units. With the validators' deposits and the side groups'
    /// reward pools they add up to
    /// exactly 1,000,000,000 CPC.
    pub allocations: BTreeMap<Address, u64>,
    /// Validators from the start.
    pub validators: Vec<GenesisValidator>,
    /// Side-chain groups from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub side_groups: Vec<GenesisSideGroup>,
}

impl Encode for Genesis {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.timestamp_ms.encode_to(out);
        self.params.encode_to(out);
        (self.allocations.len() as u32).encode_to(out);
        for (a, v) in &self.allocations {
            a.encode_to(out);
            v.encode_to(out);
        }
        self.validators.encode_to(out);
        // Absent when empty, so genesis files written before side groups keep their hash.
        if !self.side_groups.is_empty() {
            self.side_groups.encode_to(out);
        }
    }
}

impl Decode for Genesis {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain_id = Decode::decode_from(r)?;
        let timestamp_ms = Decode::decode_from(r)?;
        let params = Decode::decode_from(r)?;
        let n = r.length("allocations", usize::MAX, 28)?;
        let mut allocations = BTreeMap::new();
        let mut last: Option<Address> = None;
        for _ in 0..n {
            let a = Address::decode_from(r)?;
            if last.is_some_and(|l| l >= a) {
                return Err(DecodeError::Invalid("allocation order"));
            }
            last = Some(a);
            allocations.insert(a, u64::decode_from(r)?);
        }
        Ok(Self {
            chain_id,
            timestamp_ms,
            params,
            allocations,
            validators: Decode::decode_from(r)?,
            side_groups: if r.remaining() > 0 {
                Decode::decode_from(r)?
            } else {
                Vec::new()
            },
        })
    }
}

impl Genesis {
    /// Checks supply, uniqueness and parameter ranges.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let deposits: u128 = self.validators.iter().map(|v| u128::from(v.deposit)).sum();
        let sum: u128 = self
            .allocations
            .values()
            .map(|&v| u128::from(v))
            .sum::<u128>()
            + deposits
            + self
                .side_groups
                .iter()
                .map(|g| u128::from(g.reward_pool))
                .sum::<u128>();
        if sum != u128::from(TOTAL_SUPPLY) {
            return Err(GenesisError::Supply {
                sum,
                expected: TOTAL_SUPPLY,
            });
        }
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        let mut keys: Vec<Address> = self.validators.iter().map(|v| v.key.address()).collect();
        keys.sort();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(GenesisError::Param(format!(
                "validator {} is listed twice",
                w[0]
            )));
        }
        let mut ids: Vec<Hash32> = self.side_groups.iter().map(|g| g.id).collect();
        ids.sort();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(GenesisError::Param("a side group is listed twice".into()));
        }
        for g in &self.side_groups {
            if g.gateways.is_empty() || g.gateways.len() > 64 {
                return Err(GenesisError::Param(format!(
                    "side group {} has {} gateways; a group has 1 to 64",
                    g.id,
                    g.gateways.len()
                )));
            }
            if g.gateways.windows(2).any(|w| w[0] >= w[1]) {
                return Err(GenesisError::Param(format!(
                    "the gateways of side group {} must be sorted, each listed once",
                    g.id
                )));
            }
        }
        let p = &self.params;
        if p.foundation_fee_percent > 100 {
            return Err(GenesisError::Param(format!(
                "foundation_fee_percent is {}, at most 100",
                p.foundation_fee_percent
            )));
        }
        if p.dapp_stake_per_free_tx == 0 {
            return Err(GenesisError::Param(
                "dapp_stake_per_free_tx must be positive".into(),
            ));
        }
        if p.max_block_txs == 0 {
            return Err(GenesisError::Param("max_block_txs must be positive".into()));
        }
        if self.timestamp_ms > MAX_TIMESTAMP_MS {
            return Err(GenesisError::Param(format!(
                "timestamp_ms {} is beyond the year 9999",
                self.timestamp_ms
            )));
        }
        if p.initial_credit > 1000 {
            return Err(GenesisError::Param("initial_credit is at most 1000".into()));
        }
        crate::consensus::election_params(p)
            .validate()
            .map_err(|e| GenesisError::Param(e.to_string()))?;
        if p.committee_size > u32::from(u16::MAX) {
            return Err(GenesisError::Param(format!(
                "committee_size is {}, at most {}",
                p.committee_size,
                u16::MAX
            )));
        }
        // Candidates need part of a term to prove and spread their tickets.
        if p.term_length < 8 {
            return Err(GenesisError::Param(format!(
                "term_length is {} blocks; at least 8 leave time for election tickets",
                p.term_length
            )));
        }
        if p.removal_threshold > 1000 || p.initial_credit < p.removal_threshold {
            return Err(GenesisError::Param(
                "removal_threshold must be at most 1000 and at most initial_credit".into(),
            ));
        }
        Ok(())
    }

    /// The genesis hash: identifies the network, stored with the data directory.
    pub fn hash(&self) -> Hash32 {
        sha256(&[b"cpchain/genesis/v1", &self.encode()])
    }
}
