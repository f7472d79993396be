//! Credit: the reputation (0–1000) that, with luck, elects the committee.
//!
//! Valid proposals and votes raise a member's credit; a missed proposal or a view without
//! its vote lowers it; equivocation (evidence on chain) takes it to zero. Applying a
//! block's credit events is deterministic — saturating integer arithmetic, events in the
//! order given (block order) — and returns the committee change, which goes in the next
//! block's header: members whose credit fell below the threshold leave, and the best
//! standby candidates of the same election take their seats, in standby order. A seat
//! keeps its position, so leader rotation is otherwise undisturbed.

use std::collections::{BTreeMap, VecDeque};

use cpc_types::{CommitteeChange, PublicKey};
use serde::{Deserialize, Serialize};

use crate::election::Elected;

/// The highest credit.
pub const MAX_CREDIT: u32 = 1000;

/// Credit rewards, penalties and the removal threshold (genesis parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditParams {
    /// Reward for a block proposed and finalized.
    pub proposal_reward: u32,
    /// Reward for a vote in a finalization certificate.
    pub vote_reward: u32,
    /// Penalty for a leader's view that was nullified.
    pub missed_proposal_penalty: u32,
    /// Penalty for a finalization certificate without this member's vote.
    pub absence_penalty: u32,
    /// Members below this credit leave the committee.
    pub removal_threshold: u32,
}

impl Default for CreditParams {
    fn default() -> Self {
        Self {
            proposal_reward: 5,
            vote_reward: 1,
            missed_proposal_penalty: 25,
            absence_penalty: 2,
            removal_threshold: 100,
        }
    }
}

/// Something a member did, as recorded by a finalized block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditEvent {
    /// Proposed a block that was finalized.
    Proposed(PublicKey),
    /// Voted in a finalization certificate.
    Voted(PublicKey),
    /// Led a view that was nullified.
    MissedProposal(PublicKey),
    /// Missing from a finalization certificate.
    Absent(PublicKey),
    /// Signed two conflicting messages (evidence on chain).
    Equivocated(PublicKey),
}

/// The committee of a term, its credits and its standby list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    members: Vec<PublicKey>,
    standby: VecDeque<PublicKey>,
    credit: BTreeMap<PublicKey, u32>,
}

impl Committee {
    /// The elected committee, with every candidate's credit (unknown candidates have 0).
    pub fn new(elected: &Elected, credit: &BTreeMap<PublicKey, u32>) -> Self {
        let all = elected.members.iter().chain(&elected.standby);
        Self {
            members: elected.members.clone(),
            standby: elected.standby.iter().copied().collect(),
            credit: all
                .map(|k| (*k, credit.get(k).copied().unwrap_or(0).min(MAX_CREDIT)))
                .collect(),
        }
    }

    /// Members, by seat.
    pub fn members(&self) -> &[PublicKey] {
        &self.members
    }

    /// A candidate's credit.
    pub fn credit(&self, key: &PublicKey) -> Option<u32> {
        self.credit.get(key).copied()
    }

    /// Applies a block's events and returns the committee change they cause, if any.
    pub fn apply(
        &mut self,
        events: &[CreditEvent],
        params: &CreditParams,
    ) -> Option<CommitteeChange> {
        for e in events {
            let (key, delta): (&PublicKey, i64) = match e {
                CreditEvent::Proposed(k) => (k, i64::from(params.proposal_reward)),
                CreditEvent::Voted(k) => (k, i64::from(params.vote_reward)),
                CreditEvent::MissedProposal(k) => (k, -i64::from(params.missed_proposal_penalty)),
                CreditEvent::Absent(k) => (k, -i64::from(params.absence_penalty)),
                CreditEvent::Equivocated(k) => (k, -i64::from(MAX_CREDIT)),
            };
            if let Some(c) = self.credit.get_mut(key) {
                *c = (i64::from(*c) + delta).clamp(0, i64::from(MAX_CREDIT)) as u32;
            }
        }
        let mut change = CommitteeChange::default();
        for seat in 0..self.members.len() {
            let m = self.members[seat];
            if self.credit.get(&m).copied().unwrap_or(0) >= params.removal_threshold {
                continue;
            }
            // The next standby with enough credit takes the seat.
            let next = loop {
                match self.standby.pop_front() {
                    Some(c)
                        if self.credit.get(&c).copied().unwrap_or(0)
                            >= params.removal_threshold =>
                    {
                        break Some(c);
                    }
                    Some(_) => continue,
                    None => break None,
                }
            };
            change.removed.push(m);
            if let Some(n) = next {
                self.members[seat] = n;
                change.added.push(n);
            }
        }
        // Seats without a replacement are dropped; the committee shrinks until re-election.
        self.members
            .retain(|m| !change.removed.contains(m) || change.added.contains(m));
        (!change.removed.is_empty()).then_some(change)
    }
}
