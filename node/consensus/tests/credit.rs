//! Credit rewards and penalties, removal below the threshold and replacement from the
//! standby list.

use std::collections::BTreeMap;

use cpc_consensus::credit::{
    CreditEvent, CreditParams, MAX_CREDIT, adjust, replace_below_threshold,
};
use cpc_types::PublicKey;

fn k(i: u8) -> PublicKey {
    PublicKey([i; 32])
}

const P: CreditParams = CreditParams {
    proposal_reward: 5,
    vote_reward: 1,
    missed_proposal_penalty: 25,
    absence_penalty: 2,
    removal_threshold: 100,
};

#[test]
fn rewards_and_penalties_saturate() {
    let mut c = 999;
    for e in [CreditEvent::Proposed(k(1)), CreditEvent::Voted(k(1))] {
        c = adjust(c, e.delta(&P));
    }
    assert_eq!(c, MAX_CREDIT);
    let mut c = 500;
    for _ in 0..10 {
        c = adjust(c, CreditEvent::Absent(k(3)).delta(&P));
    }
    assert_eq!(c, 480);
    assert_eq!(adjust(480, CreditEvent::Equivocated(k(3)).delta(&P)), 0);
    assert_eq!(adjust(5000, 0), MAX_CREDIT, "out-of-range credit is capped");
}

#[test]
fn members_below_the_threshold_are_replaced_by_the_next_best_standby() {
    let mut credit: BTreeMap<PublicKey, u32> = [
        (1, 900),
        (2, 110),
        (3, 800),
        (4, 700),
        (5, 50),
        (6, 600),
        (7, 550),
    ]
    .into_iter()
    .map(|(i, c)| (k(i), c))
    .collect();
    let members = vec![k(1), k(2), k(3), k(4)];
    let standby = vec![k(5), k(6), k(7)];
    let of = |c: &BTreeMap<PublicKey, u32>| {
        let c = c.clone();
        move |key: &PublicKey| c.get(key).copied().unwrap_or(0)
    };
    assert_eq!(
        replace_below_threshold(&members, &standby, of(&credit), 100),
        None
    );
    // Member 2 misses a proposal: 110 − 25 < 100.
    let c2 = credit.get_mut(&k(2)).unwrap();
    *c2 = adjust(*c2, CreditEvent::MissedProposal(k(2)).delta(&P));
    let r = replace_below_threshold(&members, &standby, of(&credit), 100).unwrap();
    assert_eq!(r.removed, vec![k(2)]);
    // Standby 5 is below the threshold itself, so 6 takes the seat — at member 2's position.
    assert_eq!(r.added, vec![k(6)]);
    assert_eq!(r.members, vec![k(1), k(6), k(3), k(4)]);
    assert_eq!(r.standby, vec![k(7)]);
    // Equivocation removes at once; the next standby (7) joins.
    credit.insert(k(3), 0);
    let r = replace_below_threshold(&r.members, &r.standby, of(&credit), 100).unwrap();
    assert_eq!(
        (r.removed.clone(), r.added.clone()),
        (vec![k(3)], vec![k(7)])
    );
    // No standby left: the seat is dropped.
    credit.insert(k(4), 0);
    let r = replace_below_threshold(&r.members, &r.standby, of(&credit), 100).unwrap();
    assert_eq!((r.removed.clone(), r.added.clone()), (vec![k(4)], vec![]));
    assert_eq!(r.members, vec![k(1), k(6), k(7)]);
    // Everyone below and nobody to join: the committee stays rather than vanish.
    let zero = |_: &PublicKey| 0;
    assert_eq!(replace_below_threshold(&r.members, &[], zero, 100), None);
}
