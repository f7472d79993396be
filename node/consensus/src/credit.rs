//! Credit: the reputation (0–1000) that, with luck, elects the committee.
//!
//! Every final block records what the committee did, as [`CreditEvent`]s: its proposer
//! proposed; the leaders of the views skipped before it missed their proposals; the
//! members whose votes for the parent it carries voted, and the others were absent.
//! Equivocation (evidence on chain) takes credit to zero. Applying events is
//! deterministic — saturating integer arithmetic in block order.
//!
//! After a block's events, members below the removal threshold leave the committee and
//! the best standby candidates of the same election take their seats
//! ([`replace_below_threshold`]); the change is written in that block's header and the
//! new members certify from the next block on. A seat keeps its position, so leader
//! rotation is otherwise undisturbed.

use cpc_types::PublicKey;
use serde::{Deserialize, Serialize};

/// The highest credit.
pub const MAX_CREDIT: u32 = 1000;

/// Credit rewards, penalties and the removal threshold (genesis parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditParams {
    /// Reward for a block proposed and finalized.
    pub proposal_reward: u32,
    /// Reward for a vote carried by the next block.
    pub vote_reward: u32,
    /// Penalty for a leader's view that was skipped.
    pub missed_proposal_penalty: u32,
    /// Penalty for each block without this member's vote, beyond the grace.
    pub absence_penalty: u32,
    /// Members below this credit leave the committee.
    pub removal_threshold: u32,
}

/// Something a member did, as recorded by a final block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditEvent {
    /// Proposed a block that was finalized.
    Proposed(PublicKey),
    /// Its vote for the parent is in the block.
    Voted(PublicKey),
    /// Led a view that was skipped.
    MissedProposal(PublicKey),
    /// Its vote has been missing from too many blocks in a row.
    Absent(PublicKey),
    /// Signed two conflicting messages (evidence on chain).
    Equivocated(PublicKey),
}

impl CreditEvent {
    /// Whose credit changes.
    pub fn key(&self) -> &PublicKey {
        match self {
            CreditEvent::Proposed(k)
            | CreditEvent::Voted(k)
            | CreditEvent::MissedProposal(k)
            | CreditEvent::Absent(k)
            | CreditEvent::Equivocated(k) => k,
        }
    }

    /// The change of credit.
    pub fn delta(&self, params: &CreditParams) -> i64 {
        match self {
            CreditEvent::Proposed(_) => i64::from(params.proposal_reward),
            CreditEvent::Voted(_) => i64::from(params.vote_reward),
            CreditEvent::MissedProposal(_) => -i64::from(params.missed_proposal_penalty),
            CreditEvent::Absent(_) => -i64::from(params.absence_penalty),
            CreditEvent::Equivocated(_) => -i64::from(MAX_CREDIT),
        }
    }
}

/// `credit + delta`, kept within 0–1000.
pub fn adjust(credit: u32, delta: i64) -> u32 {
    (i64::from(credit.min(MAX_CREDIT)) + delta).clamp(0, i64::from(MAX_CREDIT)) as u32
}

/// A committee after members below the threshold were replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replacement {
    /// The new committee, by seat.
    pub members: Vec<PublicKey>,
    /// The standby list that remains, best first.
    pub standby: Vec<PublicKey>,
    /// Members that left.
    pub removed: Vec<PublicKey>,
    /// Standby candidates that joined.
    pub added: Vec<PublicKey>,
}

/// Replaces every member whose `credit` is below `threshold` by the next standby candidate
/// at or above it, in standby order; standby candidates below it are passed over and
/// dropped from the list. A seat without a replacement is dropped, so the committee
/// shrinks until the next election — but never to nothing: when every member would leave
/// and nobody can join, the committee stays as it is. `None` when nothing changes.
pub fn replace_below_threshold(
    members: &[PublicKey],
    standby: &[PublicKey],
    credit: impl Fn(&PublicKey) -> u32,
    threshold: u32,
) -> Option<Replacement> {
    let mut seats: Vec<Option<PublicKey>> = members.iter().copied().map(Some).collect();
    let mut queue = standby.iter().copied();
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for seat in &mut seats {
        let Some(m) = *seat else { continue };
        if credit(&m) >= threshold {
            continue;
        }
        removed.push(m);
        *seat = queue.find(|c| credit(c) >= threshold && !members.contains(c));
        if let Some(c) = *seat {
            added.push(c);
        }
    }
    if removed.is_empty() {
        return None;
    }
    let members: Vec<PublicKey> = seats.into_iter().flatten().collect();
    if members.is_empty() {
        return None;
    }
    Some(Replacement {
        members,
        standby: queue.collect(),
        removed,
        added,
    })
}
