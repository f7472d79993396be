//! The consensus part of the state: the committee of the current epoch, the election term
//! with its seeds and tickets, and the credit every block records.
//!
//! - **Terms.** Term `t` is heights `t·T + 1 ..= (t + 1)·T` (`T = term_length`). The first
//!   block of a term carries its proposer's VRF proof over the term's seed; its output
//!   seeds the next term ([`cpc_consensus::election::next_seed`]). A proposer cannot
//!   choose that output, only withhold its block, which hands the seed to the next
//!   leader's output.
//! - **Tickets.** Once the next term's seed is known, every registered validator proves
//!   its VRF over it; blocks carry the tickets and the state records each candidate's
//!   lucky value. The last block of a term elects the next committee from them (credit and
//!   luck, reserved seats for low credit; `cpc_consensus::election::rank`).
//! - **Epochs.** One committee certifies the blocks of one epoch. A block that changes the
//!   committee — an election, or members whose credit fell below the threshold replaced
//!   from the standby list — ends its epoch: its header carries the
//!   [`CommitteeChange`], and the new committee certifies from the next block on.
//! - **Credit.** Every block rewards its proposer and the voters of its parent that it
//!   carries, and penalises the leaders of the views skipped before it and members whose
//!   votes have been missing for more than `absence_grace` blocks in a row.
//!
//! Everything here is integer arithmetic over sorted maps: every node computes the same.

use std::collections::BTreeMap;

use cpc_consensus::credit::{self, CreditEvent, CreditParams};
use cpc_consensus::election::{self, ElectionParams, Scored};
use cpc_consensus::vrf;
use cpc_types::codec::{Decode, DecodeError, Encode, Reader};
use cpc_types::{Address, CommitteeChange, Hash32, PublicKey, Ticket, VrfProof, codec_struct};
use serde::{Deserialize, Serialize};

use crate::genesis::Params;
use crate::model::Validator;
use crate::store::{State, key};

/// Most tickets one block carries.
pub const MAX_BLOCK_TICKETS: usize = 256;

/// Why a committee took office.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// The genesis validators.
    #[default]
    Genesis,
    /// Elected by tickets for a new term.
    Election,
    /// A new term without enough tickets: the committee serves again.
    Reappointed,
    /// Members below the credit threshold were replaced.
    Removal,
}

impl Encode for ChangeReason {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(match self {
            ChangeReason::Genesis => 0,
            ChangeReason::Election => 1,
            ChangeReason::Reappointed => 2,
            ChangeReason::Removal => 3,
        });
    }
}

impl Decode for ChangeReason {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match u8::decode_from(r)? {
            0 => Ok(ChangeReason::Genesis),
            1 => Ok(ChangeReason::Election),
            2 => Ok(ChangeReason::Reappointed),
            3 => Ok(ChangeReason::Removal),
            tag => Err(DecodeError::InvalidTag {
                what: "committee change reason",
                tag,
            }),
        }
    }
}

/// A candidate's lucky value in its term's election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lucky {
    /// The candidate.
    pub key: PublicKey,
    /// The first 8 bytes of its VRF output.
    pub value: u64,
}
codec_struct!(Lucky { key, value });

/// The committee in office and what the next election needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeInfo {
    /// The epoch: one per committee.
    pub epoch: u64,
    /// The election term.
    pub term: u64,
    /// The first height this committee certifies.
    pub from_height: u64,
    /// The members, by seat: the leader of view `v` is `members[v mod n]`.
    pub members: Vec<PublicKey>,
    /// Candidates that replace removed members, best first.
    pub standby: Vec<PublicKey>,
    /// Lucky values of the elected members and standby candidates, by key.
    pub lucky: Vec<Lucky>,
    /// The seed of this term.
    pub seed: Hash32,
    /// The seed of the next term, once the term's first block set it.
    pub next_seed: Option<Hash32>,
    /// Why this committee took office.
    pub reason: ChangeReason,
}
codec_struct!(CommitteeInfo {
    epoch,
    term,
    from_height,
    members,
    standby,
    lucky,
    seed,
    next_seed,
    reason
});

impl CommitteeInfo {
    /// A candidate's lucky value, when it was elected by ticket.
    pub fn lucky_of(&self, key: &PublicKey) -> Option<u64> {
        self.lucky.iter().find(|l| l.key == *key).map(|l| l.value)
    }
}

/// Why a block breaks a consensus rule of the state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The first block of a term has no VRF proof.
    #[error("the first block of term {0} must carry its proposer's vrf proof")]
    VrfMissing(u64),
    /// A block that does not start a term carries a VRF proof.
    #[error("only the first block of a term carries a vrf proof")]
    VrfUnexpected,
    /// The VRF proof does not verify.
    #[error("the proposer's vrf proof does not verify")]
    VrfInvalid,
    /// A ticket is invalid.
    #[error("ticket of {candidate}: {error}")]
    Ticket {
        /// Whose ticket.
        candidate: PublicKey,
        /// What is wrong.
        error: TicketError,
    },
    /// Too many tickets.
    #[error("{0} tickets in one block; the limit is {MAX_BLOCK_TICKETS}")]
    TooManyTickets(usize),
}

/// Why a ticket is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Tickets are for the next term only.
    #[error("for term {got}, tickets are for term {expected}")]
    WrongTerm {
        /// The ticket's term.
        got: u64,
        /// The next term.
        expected: u64,
    },
    /// The next term's seed is set by the first block of this term.
    #[error("the seed of the next term is not known yet")]
    SeedUnknown,
    /// The candidate is not a registered validator.
    #[error("not a registered validator")]
    NotValidator,
    /// The candidate lost its deposit.
    #[error("the validator was slashed")]
    Slashed,
    /// The candidate's ticket is on chain already.
    #[error("already recorded")]
    Recorded,
    /// The same ticket twice in one block.
    #[error("twice in one block")]
    Duplicate,
    /// The VRF proof does not verify with the candidate's VRF key.
    #[error("the vrf proof does not verify")]
    Proof,
}

impl TicketError {
    /// Whether a correct peer may send such a ticket (it is early, late or repeated), as
    /// opposed to a forged or foreign one.
    pub fn is_benign(&self) -> bool {
        matches!(
            self,
            TicketError::WrongTerm { .. }
                | TicketError::SeedUnknown
                | TicketError::Recorded
                | TicketError::Duplicate
        )
    }
}

/// What a block records for the credit of the committee.
#[derive(Clone, Copy, Debug)]
pub struct BlockCredit<'a> {
    /// The block's height.
    pub height: u64,
    /// Its view.
    pub view: u64,
    /// Its parent's view.
    pub parent_view: u64,
    /// Its proposer.
    pub proposer: &'a PublicKey,
    /// The proposer's VRF proof (first block of a term).
    pub vrf_proof: Option<&'a VrfProof>,
    /// The members whose votes for the parent the block carries, checked by the caller;
    /// `None` when it carries none.
    pub voters: Option<&'a [PublicKey]>,
}

/// The election parameters among the genesis parameters.
pub fn election_params(p: &Params) -> ElectionParams {
    ElectionParams {
        committee_size: p.committee_size as usize,
        reserved_seats: p.reserved_seats as usize,
        low_credit_below: p.low_credit_below,
        credit_weight_percent: p.credit_weight_percent,
    }
}

/// The credit parameters among the genesis parameters.
pub fn credit_params(p: &Params) -> CreditParams {
    CreditParams {
        proposal_reward: p.proposal_reward,
        vote_reward: p.vote_reward,
        missed_proposal_penalty: p.missed_proposal_penalty,
        absence_penalty: p.absence_penalty,
        removal_threshold: p.removal_threshold,
    }
}

/// The seed of term 0.
pub fn genesis_seed(genesis_hash: &Hash32) -> Hash32 {
    cpc_types::sha256(&[b"cpchain/seed/genesis/v1", &genesis_hash.0])
}

/// The term of a block at `height` (genesis and the first term's blocks are term 0).
pub fn term_of(height: u64, term_length: u64) -> u64 {
    height.saturating_sub(1) / term_length.max(1)
}

/// Whether a block at `height` is the first of its term.
pub fn starts_term(height: u64, term_length: u64) -> bool {
    height >= 1 && (height - 1).is_multiple_of(term_length.max(1))
}

impl State {
    /// The committee in office and the election state.
    pub fn committee_info(&self) -> CommitteeInfo {
        // Genesis writes it, blocks only replace it, and `from_entries` checks it.
        self.get_decoded(&key::committee()).unwrap_or_default()
    }

    /// The committee that certifies the next block, by seat.
    pub fn committee(&self) -> Vec<PublicKey> {
        self.committee_info().members
    }

    /// The committee that took office at `epoch`, as it was then.
    pub fn committee_at(&self, epoch: u64) -> Option<CommitteeInfo> {
        self.get_decoded(&key::history(epoch))
    }

    /// Lucky values recorded for the next term's election, by candidate.
    pub fn tickets(&self) -> Vec<(Address, u64)> {
        let term = self.committee_info().term + 1;
        let prefix = key::tickets_of(term);
        self.entries_with_prefix(&prefix)
            .filter_map(|(k, v)| {
                let a = Address(k.get(prefix.len()..)?.try_into().ok()?);
                Some((a, cpc_types::decode_exact::<u64>(v).ok()?))
            })
            .collect()
    }

    /// Checks a ticket against this state and returns its lucky value: for the next term,
    /// after its seed is known, by a validator that is not slashed, not recorded yet.
    pub fn check_ticket(&self, t: &Ticket) -> Result<u64, RuleError> {
        let bad = |error| RuleError::Ticket {
            candidate: t.candidate,
            error,
        };
        let info = self.committee_info();
        if t.term != info.term + 1 {
            return Err(bad(TicketError::WrongTerm {
                got: t.term,
                expected: info.term + 1,
            }));
        }
        let seed = info.next_seed.ok_or(bad(TicketError::SeedUnknown))?;
        let addr = t.candidate.address();
        let v = self
            .validator(&addr)
            .ok_or(bad(TicketError::NotValidator))?;
        if v.deposit == 0 {
            return Err(bad(TicketError::Slashed));
        }
        if self.get(&key::ticket(t.term, &addr)).is_some() {
            return Err(bad(TicketError::Recorded));
        }
        let out = vrf::verify(
            &v.vrf_key.0,
            &election::term_input(&seed, t.term),
            &t.proof.0,
        )
        .map_err(|_| bad(TicketError::Proof))?;
        Ok(election::lucky_value(&out))
    }

    /// Records a block's tickets; on error the state is unchanged.
    pub fn record_tickets(&mut self, tickets: &[Ticket]) -> Result<(), RuleError> {
        if tickets.len() > MAX_BLOCK_TICKETS {
            return Err(RuleError::TooManyTickets(tickets.len()));
        }
        let mut writes = BTreeMap::new();
        for t in tickets {
            let lucky = self.check_ticket(t)?;
            let k = key::ticket(t.term, &t.candidate.address());
            if writes.insert(k, Some(lucky.encode())).is_some() {
                return Err(RuleError::Ticket {
                    candidate: t.candidate,
                    error: TicketError::Duplicate,
                });
            }
        }
        self.commit(writes);
        Ok(())
    }

    /// The end of every block: the seed of the next term (first block of a term), the
    /// credit the block records, and the committee change it causes — an election at the
    /// end of a term, otherwise members below the credit threshold replaced. The change is
    /// returned for the block's header.
    pub fn end_block(&mut self, b: &BlockCredit<'_>) -> Result<Option<CommitteeChange>, RuleError> {
        let params = self.params().clone();
        let mut info = self.committee_info();
        let mut writes = BTreeMap::new();
        if starts_term(b.height, params.term_length) {
            let proof = b.vrf_proof.ok_or(RuleError::VrfMissing(info.term))?;
            let vrf_key = self
                .validator(&b.proposer.address())
                .map(|v| v.vrf_key)
                .ok_or(RuleError::VrfInvalid)?;
            let out = vrf::verify(
                &vrf_key.0,
                &election::term_input(&info.seed, info.term),
                &proof.0,
            )
            .map_err(|_| RuleError::VrfInvalid)?;
            info.next_seed = Some(election::next_seed(&info.seed, info.term, Some(&out)));
        } else if b.vrf_proof.is_some() {
            return Err(RuleError::VrfUnexpected);
        }

        // Credit events, in a fixed order; then each validator's credit changes once.
        let cp = credit_params(&params);
        let n = info.members.len() as u64;
        let mut events = vec![CreditEvent::Proposed(*b.proposer)];
        // A longer gap charges each leader once per round, bounded so a huge view jump
        // costs bounded work.
        let skipped = b
            .view
            .saturating_sub(b.parent_view)
            .saturating_sub(1)
            .min(n * 8);
        for k in 0..skipped {
            let v = b.parent_view + 1 + k;
            events.push(CreditEvent::MissedProposal(info.members[(v % n) as usize]));
        }
        let mut validators: BTreeMap<Address, Validator> = BTreeMap::new();
        if let Some(voters) = b.voters {
            for m in &info.members {
                let Some(mut v) = self.validator(&m.address()) else {
                    continue;
                };
                if voters.contains(m) {
                    v.absent = 0;
                    events.push(CreditEvent::Voted(*m));
                } else {
                    v.absent = v.absent.saturating_add(1);
                    if v.absent > params.absence_grace {
                        events.push(CreditEvent::Absent(*m));
                    }
                }
                validators.insert(m.address(), v);
            }
        }
        for e in &events {
            let addr = e.key().address();
            let v = match validators.get_mut(&addr) {
                Some(v) => v,
                None => match self.validator(&addr) {
                    Some(v) => validators.entry(addr).or_insert(v),
                    None => continue,
                },
            };
            // A slashed validator earns nothing back, even for the block that slashed it.
            if v.deposit > 0 {
                v.credit = credit::adjust(v.credit, e.delta(&cp));
            }
        }

        let change = if b.height.is_multiple_of(params.term_length.max(1)) {
            Some(self.elect(&params, &mut info, &mut validators, b.height, &mut writes))
        } else {
            self.replace_members(&params, &mut info, &validators, b.height)
        };
        for (addr, v) in validators {
            if self.validator(&addr).as_ref() != Some(&v) {
                writes.insert(key::validator(&addr), Some(v.encode()));
            }
        }
        if change.is_some() {
            writes.insert(key::history(info.epoch), Some(info.encode()));
        }
        writes.insert(key::committee(), Some(info.encode()));
        self.commit(writes);
        Ok(change)
    }

    /// The election of the next term, from the tickets recorded during this one.
    fn elect(
        &self,
        params: &Params,
        info: &mut CommitteeInfo,
        validators: &mut BTreeMap<Address, Validator>,
        height: u64,
        writes: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> CommitteeChange {
        let term = info.term + 1;
        let mut scored = Vec::new();
        for (addr, lucky) in self.tickets() {
            writes.insert(key::ticket(term, &addr), None);
            let v = match validators.get_mut(&addr) {
                Some(v) => v,
                None => match self.validator(&addr) {
                    Some(v) => validators.entry(addr).or_insert(v),
                    None => continue,
                },
            };
            // Proving a ticket shows the candidate is up: a little credit, so a member
            // removed for downtime can earn its way back.
            v.credit = credit::adjust(v.credit, i64::from(params.ticket_reward));
            if v.deposit > 0 && v.credit >= params.removal_threshold {
                scored.push(Scored {
                    key: v.key,
                    credit: v.credit,
                    lucky,
                });
            }
        }
        let old = info.members.clone();
        let seed = info
            .next_seed
            .unwrap_or_else(|| election::next_seed(&info.seed, info.term, None));
        match election::rank(&scored, &election_params(params)) {
            Ok(elected) => {
                info.members = elected.members;
                info.standby = elected.standby;
                info.lucky = scored
                    .iter()
                    .map(|s| Lucky {
                        key: s.key,
                        value: s.lucky,
                    })
                    .collect();
                info.lucky.sort_by_key(|l| l.key);
                info.reason = ChangeReason::Election;
            }
            // Too few candidates: the committee serves another term.
            Err(_) => info.reason = ChangeReason::Reappointed,
        }
        info.epoch += 1;
        info.term = term;
        info.from_height = height + 1;
        info.seed = seed;
        info.next_seed = None;
        change_of(info, &old)
    }

    /// Replaces members below the credit threshold (or slashed) from the standby list.
    fn replace_members(
        &self,
        params: &Params,
        info: &mut CommitteeInfo,
        validators: &BTreeMap<Address, Validator>,
        height: u64,
    ) -> Option<CommitteeChange> {
        let credit_of = |k: &PublicKey| {
            let v = validators
                .get(&k.address())
                .cloned()
                .or_else(|| self.validator(&k.address()));
            v.filter(|v| v.deposit > 0).map_or(0, |v| v.credit)
        };
        let r = credit::replace_below_threshold(
            &info.members,
            &info.standby,
            credit_of,
            params.removal_threshold,
        )?;
        let old = std::mem::replace(&mut info.members, r.members);
        info.standby = r.standby;
        info.epoch += 1;
        info.from_height = height + 1;
        info.reason = ChangeReason::Removal;
        Some(change_of(info, &old))
    }
}

fn change_of(info: &CommitteeInfo, old: &[PublicKey]) -> CommitteeChange {
    CommitteeChange {
        epoch: info.epoch,
        term: info.term,
        members: info.members.clone(),
        removed: old
            .iter()
            .filter(|k| !info.members.contains(k))
            .copied()
            .collect(),
        added: info
            .members
            .iter()
            .filter(|k| !old.contains(k))
            .copied()
            .collect(),
    }
}

/// The committee genesis installs: the first `committee_size` validators, the others on
/// standby.
pub(crate) fn genesis_committee(
    validators: &[PublicKey],
    params: &Params,
    genesis_hash: &Hash32,
) -> CommitteeInfo {
    let k = (params.committee_size as usize).min(validators.len());
    CommitteeInfo {
        epoch: 0,
        term: 0,
        from_height: 1,
        members: validators[..k].to_vec(),
        standby: validators[k..].to_vec(),
        lucky: Vec::new(),
        seed: genesis_seed(genesis_hash),
        next_seed: None,
        reason: ChangeReason::Genesis,
    }
}
