//! The election: verifiable, deterministic, credit- and luck-weighted, with reserved seats.

use cpc_consensus::election::{self, Candidate, ElectionError, ElectionParams};
use cpc_consensus::vrf::VrfSecret;
use cpc_types::{Hash32, PublicKey, Ticket};
use proptest::prelude::*;

struct Node {
    vrf: VrfSecret,
    key: PublicKey,
    credit: u32,
}

fn nodes(credits: &[u32]) -> Vec<Node> {
    credits
        .iter()
        .enumerate()
        .map(|(i, &credit)| {
            let vrf = VrfSecret::from_seed(&[i as u8 + 1; 32]);
            Node {
                key: PublicKey(vrf.public()),
                vrf,
                credit,
            }
        })
        .collect()
}

fn candidates(n: &[Node]) -> Vec<Candidate> {
    n.iter()
        .map(|n| Candidate {
            key: n.key,
            vrf_key: n.vrf.public(),
            credit: n.credit,
        })
        .collect()
}

fn tickets(n: &[Node], seed: &Hash32, term: u64) -> Vec<Ticket> {
    n.iter()
        .map(|n| election::make_ticket(&n.vrf, n.key, seed, term).0)
        .collect()
}

const PARAMS: ElectionParams = ElectionParams {
    committee_size: 4,
    reserved_seats: 1,
    low_credit_below: 200,
    credit_weight_percent: 70,
};

#[test]
fn every_ordering_of_tickets_elects_the_same_committee() {
    let n = nodes(&[900, 800, 700, 100, 600, 500, 50, 950]);
    let seed = Hash32([3; 32]);
    let mut t = tickets(&n, &seed, 7);
    let first = election::elect(&candidates(&n), &t, &seed, 7, &PARAMS).unwrap();
    assert_eq!(first.members.len(), 4);
    assert_eq!(first.standby.len(), 4);
    for _ in 0..8 {
        t.rotate_left(3);
        t.swap(0, 5);
        assert_eq!(
            election::elect(&candidates(&n), &t, &seed, 7, &PARAMS).unwrap(),
            first
        );
    }
    // The reserved seat goes to a low-credit candidate.
    let low: Vec<PublicKey> = n.iter().filter(|x| x.credit < 200).map(|x| x.key).collect();
    assert!(low.contains(&first.members[0]));
}

#[test]
fn invalid_foreign_and_stale_tickets_are_rejected() {
    let n = nodes(&[900, 800, 700, 600, 500]);
    let seed = Hash32([4; 32]);
    let mut t = tickets(&n, &seed, 1);
    t[0].proof.0[50] ^= 1; // forged
    t[1].term = 2; // another term
    let outsider = VrfSecret::from_seed(&[99; 32]);
    t.push(election::make_ticket(&outsider, PublicKey(outsider.public()), &seed, 1).0);
    let params = ElectionParams {
        committee_size: 3,
        reserved_seats: 0,
        ..PARAMS
    };
    let e = election::elect(&candidates(&n), &t, &seed, 1, &params).unwrap();
    assert_eq!(e.rejected.len(), 3);
    assert!(!e.members.contains(&n[0].key) && !e.members.contains(&n[1].key));
    let too_many = ElectionParams {
        committee_size: 4,
        reserved_seats: 0,
        ..PARAMS
    };
    assert_eq!(
        election::elect(&candidates(&n), &t, &seed, 1, &too_many),
        Err(ElectionError::TooFewTickets { valid: 3, seats: 4 })
    );
}

#[test]
fn with_full_credit_weight_the_highest_credit_wins_and_luck_breaks_ties() {
    let n = nodes(&[300, 900, 500, 700, 800]);
    let seed = Hash32([5; 32]);
    let params = ElectionParams {
        committee_size: 3,
        reserved_seats: 0,
        low_credit_below: 0,
        credit_weight_percent: 100,
    };
    let e = election::elect(&candidates(&n), &tickets(&n, &seed, 1), &seed, 1, &params).unwrap();
    assert_eq!(e.members, vec![n[1].key, n[4].key, n[3].key]);
    assert_eq!(
        e.standby,
        vec![n[2].key, n[0].key],
        "replacements come best first"
    );
}

#[test]
fn seeds_chain_and_differ_with_the_proposer_output() {
    let s = Hash32([1; 32]);
    let a = election::next_seed(&s, 1, Some(&[1; 64]));
    let b = election::next_seed(&s, 1, Some(&[2; 64]));
    assert_ne!(a, b);
    assert_ne!(election::next_seed(&s, 1, None), a);
    assert_eq!(
        election::next_seed(&s, 1, None),
        election::next_seed(&s, 1, None)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn luck_changes_with_the_seed_and_scores_stay_in_range(seed in any::<[u8; 32]>(), credit in 0u32..2000, w in 0u8..=100) {
        let v = VrfSecret::from_seed(&[7; 32]);
        let (t, out) = election::make_ticket(&v, PublicKey(v.public()), &Hash32(seed), 1);
        let verified = cpc_consensus::vrf::verify(&v.public(), &election::term_input(&Hash32(seed), 1), &t.proof.0).unwrap();
        prop_assert_eq!(verified, out);
        let p = ElectionParams { credit_weight_percent: w, ..PARAMS };
        let sc = election::score(credit, election::lucky_value(&out), &p);
        prop_assert!(sc <= 100 * u128::from(u64::MAX));
    }
}
