//! Layer 1: electing the committee of a term.
//!
//! At the start of term `t` every candidate proves its VRF over
//! `"cpchain/term/v1" || seed || t` and gossips the proof as a [`Ticket`]. The first 8 bytes
//! of the VRF output, big-endian, are its *lucky value*: uniform, unpredictable before
//! the seed is known, and the same for everyone who verifies the ticket. The election
//! score mixes credit (0–1000) and luck with integer weights:
//!
//! ```text
//! score = w · credit · ⌊2^64 / 1001⌋ + (100 − w) · lucky        (w = credit_weight_percent)
//! ```
//!
//! `reserved_seats` go to the luckiest candidates whose credit is below
//! `low_credit_below`, so newcomers can earn credit; the other seats go to the highest
//! scores. Ties break on the lucky value, then on the key, so the order is total and
//! every node derives the same committee. Candidates not elected form the standby list,
//! best first: when a member is removed, the first standby joins.
//!
//! The next term's seed hashes the current seed with the VRF output of the term's first
//! proposer: a single proposer cannot choose it, only withhold its block, which hands the
//! seed to a fallback hash.

use cpc_types::{Hash32, PublicKey, Ticket, VrfProof, sha256};
use serde::{Deserialize, Serialize};

use crate::vrf::{self, Output, VrfSecret};

/// Election parameters (genesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionParams {
    /// Committee size `k = 3f + 1`.
    pub committee_size: usize,
    /// Seats for candidates with low credit.
    pub reserved_seats: usize,
    /// Credit below which a candidate counts as low-credit.
    pub low_credit_below: u32,
    /// Weight of credit against luck in the score, 0–100.
    pub credit_weight_percent: u8,
}

/// A registered candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its signing key, which identifies it.
    pub key: PublicKey,
    /// Its VRF key.
    pub vrf_key: [u8; 32],
    /// Its credit, 0–1000.
    pub credit: u32,
}

/// A candidate whose ticket verified: its credit and lucky value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scored {
    /// Its signing key.
    pub key: PublicKey,
    /// Its credit, 0–1000.
    pub credit: u32,
    /// The lucky value of its ticket.
    pub lucky: u64,
}

/// Why an election cannot be held.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElectionError {
    /// Parameters out of range.
    #[error("invalid election parameters: {0}")]
    Params(&'static str),
    /// Fewer valid tickets than seats.
    #[error("{valid} valid tickets for {seats} seats")]
    TooFewTickets {
        /// Valid tickets.
        valid: usize,
        /// Seats.
        seats: usize,
    },
}

/// The outcome of an election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elected {
    /// Members, reserved seats first, each group best first.
    pub members: Vec<PublicKey>,
    /// Candidates not elected, best first: replacements in this order.
    pub standby: Vec<PublicKey>,
    /// Tickets that did not verify, or came from unknown candidates or for another term.
    pub rejected: Vec<PublicKey>,
}

impl ElectionParams {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ElectionError> {
        if self.committee_size == 0 || self.reserved_seats > self.committee_size {
            return Err(ElectionError::Params(
                "need 0 < committee_size and reserved_seats <= committee_size",
            ));
        }
        if self.credit_weight_percent > 100 {
            return Err(ElectionError::Params(
                "credit_weight_percent is at most 100",
            ));
        }
        Ok(())
    }
}

/// The VRF input of a term.
pub fn term_input(seed: &Hash32, term: u64) -> Vec<u8> {
    [&b"cpchain/term/v1"[..], &seed.0, &term.to_be_bytes()].concat()
}

/// A candidate's ticket for a term, and its VRF output.
pub fn make_ticket(
    secret: &VrfSecret,
    candidate: PublicKey,
    seed: &Hash32,
    term: u64,
) -> (Ticket, Output) {
    let (proof, output) = secret.prove(&term_input(seed, term));
    (
        Ticket {
            candidate,
            term,
            proof: VrfProof(proof),
        },
        output,
    )
}

/// The lucky value of a VRF output.
pub fn lucky_value(output: &Output) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&output[..8]);
    u64::from_be_bytes(b)
}

/// The election score (integer; no rounding differences between nodes).
pub fn score(credit: u32, lucky: u64, params: &ElectionParams) -> u128 {
    let w = u128::from(params.credit_weight_percent.min(100));
    let credit = u128::from(credit.min(1000)) * (u128::from(u64::MAX) / 1001);
    w * credit + (100 - w) * u128::from(lucky)
}

/// The seed of the next term, from this term's seed and the VRF output of its first
/// proposer (`None` when that proposer produced nothing).
pub fn next_seed(seed: &Hash32, term: u64, proposer_output: Option<&Output>) -> Hash32 {
    match proposer_output {
        Some(o) => sha256(&[b"cpchain/seed/v1", &seed.0, &term.to_be_bytes(), o]),
        None => sha256(&[b"cpchain/seed/fallback/v1", &seed.0, &term.to_be_bytes()]),
    }
}

/// Verifies the tickets and elects the committee of `term`.
pub fn elect(
    candidates: &[Candidate],
    tickets: &[Ticket],
    seed: &Hash32,
    term: u64,
    params: &ElectionParams,
) -> Result<Elected, ElectionError> {
    params.validate()?;
    let input = term_input(seed, term);
    let mut scored = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for t in tickets {
        let Some(c) = candidates.iter().find(|c| c.key == t.candidate) else {
            rejected.push(t.candidate);
            continue;
        };
        if t.term != term {
            rejected.push(t.candidate);
            continue;
        }
        match vrf::verify(&c.vrf_key, &input, &t.proof.0) {
            Ok(out) if seen.insert(c.key) => scored.push(Scored {
                key: c.key,
                credit: c.credit,
                lucky: lucky_value(&out),
            }),
            Ok(_) => {}
            Err(_) => rejected.push(t.candidate),
        }
    }
    let mut elected = rank(&scored, params)?;
    elected.rejected = rejected;
    Ok(elected)
}

/// Elects the committee from candidates whose tickets were verified (one entry per
/// candidate). The order of `scored` does not matter.
pub fn rank(scored: &[Scored], params: &ElectionParams) -> Result<Elected, ElectionError> {
    params.validate()?;
    if scored.len() < params.committee_size {
        return Err(ElectionError::TooFewTickets {
            valid: scored.len(),
            seats: params.committee_size,
        });
    }
    let score_of = |s: &Scored| score(s.credit, s.lucky, params);
    // Best first: higher score, then higher lucky value, then the smaller key.
    let best_first = |a: &&Scored, b: &&Scored| {
        score_of(b)
            .cmp(&score_of(a))
            .then(b.lucky.cmp(&a.lucky))
            .then(a.key.cmp(&b.key))
    };
    let mut low: Vec<&Scored> = scored
        .iter()
        .filter(|s| s.credit < params.low_credit_below)
        .collect();
    low.sort_by(|a, b| b.lucky.cmp(&a.lucky).then(a.key.cmp(&b.key)));
    let reserved: Vec<PublicKey> = low
        .iter()
        .take(params.reserved_seats)
        .map(|s| s.key)
        .collect();
    let mut rest: Vec<&Scored> = scored
        .iter()
        .filter(|s| !reserved.contains(&s.key))
        .collect();
    rest.sort_by(best_first);
    let open = params.committee_size - reserved.len();
    let mut members = reserved;
    members.extend(rest.iter().take(open).map(|s| s.key));
    let standby = rest.iter().skip(open).map(|s| s.key).collect();
    Ok(Elected {
        members,
        standby,
        rejected: Vec::new(),
    })
}
