//! Credit rewards and penalties, removal below the threshold and replacement from the
//! standby list.

use std::collections::BTreeMap;

use cpc_consensus::credit::{Committee, CreditEvent, CreditParams, MAX_CREDIT};
use cpc_consensus::election::Elected;
use cpc_types::PublicKey;

fn k(i: u8) -> PublicKey {
    PublicKey([i; 32])
}

fn committee(credits: &[(u8, u32)], members: &[u8], standby: &[u8]) -> Committee {
    let elected = Elected {
        members: members.iter().map(|i| k(*i)).collect(),
        standby: standby.iter().map(|i| k(*i)).collect(),
        rejected: vec![],
    };
    let credit: BTreeMap<PublicKey, u32> = credits.iter().map(|(i, c)| (k(*i), *c)).collect();
    Committee::new(&elected, &credit)
}

#[test]
fn rewards_and_penalties_saturate() {
    let mut c = committee(
        &[(1, 999), (2, 110), (3, 500), (4, 500)],
        &[1, 2, 3, 4],
        &[],
    );
    let p = CreditParams::default();
    assert_eq!(
        c.apply(&[CreditEvent::Proposed(k(1)), CreditEvent::Voted(k(1))], &p),
        None
    );
    assert_eq!(c.credit(&k(1)), Some(MAX_CREDIT));
    c.apply(&[CreditEvent::Absent(k(3)); 10], &p);
    assert_eq!(c.credit(&k(3)), Some(480));
    c.apply(&[CreditEvent::Absent(k(9))], &p); // not a candidate: ignored
}

#[test]
fn members_below_the_threshold_are_replaced_by_the_next_best_standby() {
    let mut c = committee(
        &[
            (1, 900),
            (2, 110),
            (3, 800),
            (4, 700),
            (5, 50),
            (6, 600),
            (7, 550),
        ],
        &[1, 2, 3, 4],
        &[5, 6, 7],
    );
    let p = CreditParams::default();
    // Member 2 misses a proposal: 110 − 25 < 100.
    let change = c.apply(&[CreditEvent::MissedProposal(k(2))], &p).unwrap();
    assert_eq!(change.removed, vec![k(2)]);
    // Standby 5 is below the threshold itself, so 6 takes the seat — at member 2's position.
    assert_eq!(change.added, vec![k(6)]);
    assert_eq!(c.members(), &[k(1), k(6), k(3), k(4)]);
    // Equivocation removes at once; the next standby (7) joins.
    let change = c.apply(&[CreditEvent::Equivocated(k(3))], &p).unwrap();
    assert_eq!((change.removed, change.added), (vec![k(3)], vec![k(7)]));
    assert_eq!(c.credit(&k(3)), Some(0));
    // No standby left: the seat is dropped.
    let change = c.apply(&[CreditEvent::Equivocated(k(4))], &p).unwrap();
    assert_eq!((change.removed, change.added), (vec![k(4)], vec![]));
    assert_eq!(c.members(), &[k(1), k(6), k(7)]);
}
