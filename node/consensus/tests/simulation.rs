//! A seeded, deterministic network of committee members: delays, drops, partitions and
//! heals, crashes and restarts, an equivocating leader and a double-voting member. Every
//! seed checks safety (no two different blocks finalized at one view, anywhere) and
//! liveness once the network heals. A failing seed is named in the panic message and
//! replays exactly with `replay_one_seed` (see below). `CPC_SIM_SEEDS` sets how many
//! seeds run (200 by default).

use std::collections::{BTreeMap, BTreeSet};

use cpc_consensus::bft::{
    Action, Config, Event, Machine, Member, Message, Proposal, View, Vote, block_digest,
};
use cpc_types::Hash32;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Honest,
    /// Sends different proposals to the two halves of the committee.
    Equivocator,
    /// Votes for every proposal it sees and for a made-up block besides.
    DoubleVoter,
}

struct Outcome {
    finalized: Vec<BTreeMap<View, Proposal>>,
    evidence_against: BTreeSet<Member>,
    progress_after_heal: Vec<usize>,
    roles: Vec<Role>,
    online_at_end: Vec<bool>,
    views: Vec<View>,
    summaries: Vec<String>,
}

fn simulate(seed: u64) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: u16 = [4, 7, 10][rng.gen_range(0..3)];
    let f = usize::from((n - 1) / 3);
    let mut roles = vec![Role::Honest; usize::from(n)];
    let byz: Vec<usize> = (0..f).map(|_| rng.gen_range(0..usize::from(n))).collect();
    if let Some(&b) = byz.first() {
        roles[b] = Role::Equivocator;
    }
    if let Some(&b) = byz.get(1)
        && roles[b] == Role::Honest
    {
        roles[b] = Role::DoubleVoter;
    }
    let genesis = Hash32([7; 32]);
    let mut nodes: Vec<Machine> = (0..n)
        .map(|me| {
            Machine::new(
                Config {
                    members: n,
                    me,
                    timeout_ms: 200,
                },
                genesis,
            )
        })
        .collect();
    let mut online = vec![true; usize::from(n)];
    // One honest member crashes for a while (if one exists beyond the faulty budget).
    let crash = (0..usize::from(n)).find(|i| roles[*i] == Role::Honest && rng.gen_bool(0.5));
    let minority: BTreeSet<Member> = (0..n).filter(|_| rng.gen_bool(0.3)).collect();
    let mut queue: BTreeMap<(u64, u64), (Member, Member, Message)> = BTreeMap::new();
    let mut seq = 0u64;
    let mut evidence_against = BTreeSet::new();
    let heal_at = 3_000;
    let end = 15_000;
    let mut finalized_at_heal = vec![0usize; usize::from(n)];

    let mut now = 0u64;
    while now <= end {
        // Deliver due messages.
        let due: Vec<_> = queue.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
        let mut events: Vec<(Member, Event)> = Vec::new();
        for k in due {
            if let Some((from, to, msg)) = queue.remove(&k) {
                events.push((to, Event::Message(from, msg)));
            }
        }
        for i in 0..n {
            events.push((i, Event::Tick(now)));
        }
        for (to, ev) in events {
            let i = usize::from(to);
            if !online[i] {
                continue;
            }
            let mut propose =
                |view: View, parent: &Proposal| Some(block_digest(view, &parent.block, to));
            let actions = nodes[i].handle(ev, &mut propose);
            for a in actions {
                let mut sends: Vec<(Member, Message)> = Vec::new();
                match a {
                    Action::Broadcast(msg) => {
                        match (roles[i], &msg) {
                            (Role::Equivocator, Message::Propose(p)) => {
                                let mut other = *p;
                                other.block = block_digest(p.view, &p.parent, to + 1000);
                                for j in 0..n {
                                    // Half get one block, half the other; member 0 sees both.
                                    let m = if j % 2 == 0 { *p } else { other };
                                    sends.push((j, Message::Propose(m)));
                                    if j == 0 {
                                        sends.push((j, Message::Propose(other)));
                                    }
                                }
                            }
                            (Role::DoubleVoter, Message::Vote(Vote::Notarize(p))) => {
                                let mut fake = *p;
                                fake.block = block_digest(p.view, &p.parent, to + 2000);
                                for j in 0..n {
                                    sends.push((j, msg.clone()));
                                    sends.push((j, Message::Vote(Vote::Notarize(fake))));
                                }
                            }
                            _ => sends.extend((0..n).map(|j| (j, msg.clone()))),
                        }
                    }
                    Action::Evidence { member, .. } => {
                        if roles[i] == Role::Honest {
                            evidence_against.insert(member);
                        }
                    }
                    Action::Finalized(_) | Action::Sync { .. } | Action::Relay(_) => {}
                }
                for (j, msg) in sends {
                    if j == to {
                        continue;
                    }
                    let partitioned = now < heal_at
                        && now >= 1_000
                        && (minority.contains(&to) != minority.contains(&j));
                    let dropped = now < heal_at && rng.gen_bool(0.1);
                    if partitioned || dropped {
                        continue;
                    }
                    let delay = rng.gen_range(1..=40);
                    seq += 1;
                    queue.insert((now + delay, seq), (to, j, msg));
                }
            }
        }
        if let Some(c) = crash {
            if now == 1_500 {
                online[c] = false;
            }
            if now == 3_500 {
                online[c] = true;
            }
        }
        if now == 4_000 {
            for i in 0..usize::from(n) {
                finalized_at_heal[i] = nodes[i].finalized().len();
            }
        }
        now += 10;
    }
    let progress_after_heal = (0..usize::from(n))
        .map(|i| {
            nodes[i]
                .finalized()
                .len()
                .saturating_sub(finalized_at_heal[i])
        })
        .collect();
    Outcome {
        finalized: nodes.iter().map(|m| m.finalized().clone()).collect(),
        evidence_against,
        progress_after_heal,
        roles,
        online_at_end: online,
        views: nodes.iter().map(Machine::view).collect(),
        summaries: nodes.iter().map(Machine::summary).collect(),
    }
}

fn check(seed: u64) {
    let o = simulate(seed);
    let honest: Vec<usize> = (0..o.roles.len())
        .filter(|i| o.roles[*i] == Role::Honest)
        .collect();
    // Safety: one block per view across all honest members, and chains link.
    let mut by_view: BTreeMap<View, Hash32> = BTreeMap::new();
    for &i in &honest {
        for (v, p) in &o.finalized[i] {
            if let Some(b) = by_view.insert(*v, p.block) {
                assert_eq!(b, p.block, "seed {seed}: two blocks finalized at view {v}");
            }
        }
    }
    for &i in &honest {
        for p in o.finalized[i].values().filter(|p| p.view > 0) {
            if let Some(parent) = by_view.get(&p.parent_view) {
                assert_eq!(
                    *parent, p.parent,
                    "seed {seed}: finalized block at view {} forks",
                    p.view
                );
            }
        }
    }
    // Liveness after the heal.
    for &i in &honest {
        if o.online_at_end[i] {
            assert!(
                o.progress_after_heal[i] > 0,
                "seed {seed}: member {i} finalized nothing after the network healed"
            );
        }
    }
    // Nobody honest is accused.
    for &i in &honest {
        assert!(
            !o.evidence_against.contains(&(i as Member)),
            "seed {seed}: honest member {i} accused"
        );
    }
    // Equivocation is detected.
    for (i, r) in o.roles.iter().enumerate() {
        if *r == Role::DoubleVoter {
            assert!(
                o.evidence_against.contains(&(i as Member)),
                "seed {seed}: double voter {i} not reported"
            );
        }
    }
}

#[test]
fn safety_and_liveness_hold_on_every_seed() {
    let seeds: u64 = std::env::var("CPC_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        check(seed);
    }
}

#[test]
fn an_equivocating_leader_is_reported() {
    let mut reported = 0;
    for seed in 0..50 {
        let o = simulate(seed);
        if let Some(e) = o.roles.iter().position(|r| *r == Role::Equivocator)
            && o.evidence_against.contains(&(e as Member))
        {
            reported += 1;
        }
    }
    assert!(
        reported > 10,
        "equivocating leaders reported in only {reported} of 50 runs"
    );
}

/// Replays one seed and prints every member's state:
/// `SEED=57 cargo test -p cpc-consensus --test simulation replay_one_seed -- --ignored --nocapture`.
#[test]
#[ignore = "a replay tool for a failing seed"]
fn replay_one_seed() {
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let o = simulate(seed);
    for i in 0..o.roles.len() {
        let last = o.finalized[i].keys().next_back();
        eprintln!(
            "member {i} view {} {:?} online {} finalized {} last {:?} progress {}",
            o.views[i],
            o.roles[i],
            o.online_at_end[i],
            o.finalized[i].len(),
            last,
            o.progress_after_heal[i]
        );
        eprintln!("   {}", o.summaries[i]);
    }
}

#[test]
fn a_digest_replayed_in_a_later_view_does_not_confuse_finalization() {
    // View 1 notarized; the leader of view 2 proposes the same digest again.
    let g = Hash32([1; 32]);
    let mut m = Machine::new(
        Config {
            members: 4,
            me: 0,
            timeout_ms: 100,
        },
        g,
    );
    let mut propose = |v: View, p: &Proposal| Some(block_digest(v, &p.block, 0));
    m.handle(Event::Tick(0), &mut propose);
    let b1 = Hash32([9; 32]);
    let p1 = Proposal {
        view: 1,
        parent_view: 0,
        parent: g,
        block: b1,
    };
    for from in 1..4 {
        m.handle(
            Event::Message(from, Message::Vote(Vote::Notarize(p1))),
            &mut propose,
        );
    }
    let replay = Proposal {
        view: 2,
        parent_view: 1,
        parent: b1,
        block: b1,
    };
    m.handle(Event::Message(2, Message::Propose(replay)), &mut propose);
    for from in 1..4 {
        m.handle(
            Event::Message(from, Message::Vote(Vote::Finalize(1, b1))),
            &mut propose,
        );
    }
    assert_eq!(m.finalized().get(&1), Some(&p1));
}

#[test]
fn a_member_that_voted_finalize_never_nullifies_the_view() {
    let g = Hash32([1; 32]);
    let mut m = Machine::new(
        Config {
            members: 4,
            me: 3,
            timeout_ms: 100,
        },
        g,
    );
    let mut propose = |v: View, p: &Proposal| Some(block_digest(v, &p.block, 3));
    let p1 = Proposal {
        view: 1,
        parent_view: 0,
        parent: g,
        block: Hash32([5; 32]),
    };
    // The proposal and two votes arrive before the member's first tick.
    m.handle(Event::Message(1, Message::Propose(p1)), &mut propose);
    m.handle(
        Event::Message(2, Message::Vote(Vote::Notarize(p1))),
        &mut propose,
    );
    let mut all = m.handle(Event::Tick(0), &mut propose);
    all.extend(m.handle(Event::Tick(10_000), &mut propose));
    let finalize = all
        .iter()
        .any(|a| matches!(a, Action::Broadcast(Message::Vote(Vote::Finalize(1, _)))));
    let nullify = all
        .iter()
        .any(|a| matches!(a, Action::Broadcast(Message::Vote(Vote::Nullify(1)))));
    assert!(
        finalize && !nullify,
        "finalize {finalize}, nullify {nullify}"
    );
}

#[test]
fn far_future_votes_are_ignored_and_bounded() {
    let mut m = Machine::new(
        Config {
            members: 4,
            me: 0,
            timeout_ms: 100,
        },
        Hash32([1; 32]),
    );
    let mut propose = |v: View, p: &Proposal| Some(block_digest(v, &p.block, 0));
    m.handle(Event::Tick(0), &mut propose);
    for v in [u64::MAX, u64::MAX - 1, 1 << 40, 0] {
        for from in 1..4 {
            let out = m.handle(
                Event::Message(from, Message::Vote(Vote::Nullify(v))),
                &mut propose,
            );
            assert!(out.is_empty(), "view {v} must be ignored");
        }
    }
    assert_eq!(m.view(), 1);
}

fn votes_of(actions: &[Action]) -> Vec<Vote> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::Vote(v)) => Some(*v),
            _ => None,
        })
        .collect()
}

#[test]
fn a_restarted_member_keeps_its_votes_and_rejoins_at_its_last_view() {
    let g = Hash32([1; 32]);
    let cfg = Config {
        members: 4,
        me: 3,
        timeout_ms: 100,
    };
    let base = Proposal {
        view: 0,
        parent_view: 0,
        parent: Hash32::ZERO,
        block: g,
    };
    let p1 = Proposal {
        view: 1,
        parent_view: 0,
        parent: g,
        block: Hash32([5; 32]),
    };
    let mut m = Machine::restore(cfg, base);
    m.replay_own(Vote::Notarize(p1));
    let mut propose = |v: View, p: &Proposal| Some(block_digest(v, &p.block, 3));
    let first = m.handle(Event::Tick(0), &mut propose);
    assert_eq!(m.view(), 1, "it rejoins the view it voted in");
    assert!(votes_of(&first).is_empty());
    // A different proposal of the leader of view 1 gets no second notarize vote.
    let other = Proposal {
        block: Hash32([6; 32]),
        ..p1
    };
    let out = m.handle(Event::Message(1, Message::Propose(other)), &mut propose);
    assert!(
        !votes_of(&out)
            .iter()
            .any(|v| matches!(v, Vote::Notarize(p) if p.block == other.block)),
        "{out:?}"
    );
    // Its timer repeats its earlier vote and nullifies the view: allowed, since it never
    // voted to finalize it.
    let out = m.handle(Event::Tick(1000), &mut propose);
    let votes = votes_of(&out);
    assert!(votes.contains(&Vote::Notarize(p1)), "{votes:?}");
    assert!(votes.contains(&Vote::Nullify(1)), "{votes:?}");
}

#[test]
fn a_leader_whose_block_is_not_ready_proposes_on_a_later_tick() {
    let g = Hash32([1; 32]);
    let mut m = Machine::new(
        Config {
            members: 4,
            me: 1,
            timeout_ms: 1000,
        },
        g,
    );
    let mut ready = false;
    let mut propose = |v: View, p: &Proposal| ready.then(|| block_digest(v, &p.block, 1));
    let out = m.handle(Event::Tick(0), &mut propose);
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Broadcast(Message::Propose(_))))
    );
    ready = true;
    let mut propose = |v: View, p: &Proposal| ready.then(|| block_digest(v, &p.block, 1));
    let out = m.handle(Event::Tick(50), &mut propose);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Broadcast(Message::Propose(p)) if p.view == 1)),
        "{out:?}"
    );
}
