//! Layer 2: BFT agreement inside the committee, Simplex-style (Chan and Pass, 2023), as a
//! sans-IO state machine.
//!
//! Why Simplex: one round of votes notarizes a block and a second finalizes it, a view
//! change is one more vote (nullify) with no separate protocol, and the proof of safety
//! is short. With `n = 3f + 1` members and quorums of `2f + 1`:
//!
//! 1. Entering view `v`, the leader `committee[v mod n]` proposes a block whose parent is
//!    the latest notarized block such that every view in between is nullified, and votes
//!    for it.
//! 2. A member votes `notarize(v, b)` for the first valid proposal of the leader of `v`,
//!    unless it already voted in `v`.
//! 3. `2f + 1` notarize votes notarize `b`. A member that has not voted `nullify(v)` then
//!    votes `finalize(v, b)`, and everyone moves to `v + 1`.
//! 4. When the view's timer fires first, a member votes `nullify(v)`; `2f + 1` of them
//!    nullify the view and everyone moves to `v + 1`. Timeouts back off exponentially.
//! 5. `2f + 1` finalize votes finalize `b` and all its ancestors: final, never reverted.
//!
//! Safety: two quorums share an honest member, who votes once per view, so at most one
//! block per view is notarized; a finalized view cannot also be nullified, so every later
//! proposal extends the finalized block.
//!
//! The machine takes authenticated messages (signatures are checked by the caller, in
//! batches through the accelerator) and returns actions. Time enters only as
//! [`Event::Tick`]. Certificates are forwarded on receipt so that members who missed
//! votes catch up; a member that sees a certificate of a later view jumps to it. A
//! second, different proposal or vote from one member in one view is reported as
//! [`Action::Evidence`].

use std::collections::{BTreeMap, BTreeSet};

use cpc_types::{Hash32, sha256};

/// How far ahead of its view a member accepts votes and proposals.
pub const VIEW_WINDOW: View = 256;

/// A consensus view (one chance for one leader to propose).
pub type View = u64;
/// A member's index in the committee.
pub type Member = u16;

/// A proposed block, by digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proposal {
    /// The view.
    pub view: View,
    /// The view of the parent block (0 is genesis).
    pub parent_view: View,
    /// The parent block.
    pub parent: Hash32,
    /// The block.
    pub block: Hash32,
}

/// A vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Vote {
    /// For a proposal.
    Notarize(Proposal),
    /// Against the view (timeout).
    Nullify(View),
    /// For a notarized block.
    Finalize(View, Hash32),
}

impl Vote {
    /// The view voted in.
    pub fn view(&self) -> View {
        match self {
            Vote::Notarize(p) => p.view,
            Vote::Nullify(v) | Vote::Finalize(v, _) => *v,
        }
    }
}

/// A quorum certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Certificate {
    /// `2f + 1` notarize votes.
    Notarization(Proposal, BTreeSet<Member>),
    /// `2f + 1` nullify votes.
    Nullification(View, BTreeSet<Member>),
    /// `2f + 1` finalize votes.
    Finalization(Proposal, BTreeSet<Member>),
}

/// A message between members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The leader's proposal.
    Propose(Proposal),
    /// A vote.
    Vote(Vote),
    /// A certificate, forwarded.
    Certificate(Certificate),
}

/// What happens to a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The clock, in milliseconds.
    Tick(u64),
    /// An authenticated message from a member.
    Message(Member, Message),
}

/// What a member must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send to every other member.
    Broadcast(Message),
    /// A block is final; emitted once per block, in chain order.
    Finalized(Proposal),
    /// Blocks of views `after + 1 ..= upto` ending in `block` are final but were never
    /// seen here: fetch them from peers.
    Sync {
        /// The last finalized view known here.
        after: View,
        /// The view of the last missing block.
        upto: View,
        /// The last missing block.
        block: Hash32,
    },
    /// Send again another leader's proposal, notarized and not yet final, that this member
    /// holds: a member that restarted lost the blocks it had not committed, and without
    /// them it cannot vote for their children.
    Relay(Proposal),
    /// Two conflicting messages from one member.
    Evidence {
        /// The offender.
        member: Member,
        /// One message.
        first: Message,
        /// The other.
        second: Message,
    },
}

/// Settings of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Committee size `n = 3f + 1`.
    pub members: u16,
    /// This member's index.
    pub me: Member,
    /// First view timeout, milliseconds; doubles after each timed-out view, up to 8×.
    pub timeout_ms: u64,
}

impl Config {
    /// Votes needed for a certificate.
    pub fn quorum(&self) -> usize {
        let n = usize::from(self.members.max(1));
        n - (n - 1) / 3
    }

    /// The leader of a view.
    pub fn leader(&self, view: View) -> Member {
        (view % u64::from(self.members.max(1))) as Member
    }
}

#[derive(Default)]
struct ViewVotes {
    proposal: Option<Proposal>,
    notarize: BTreeMap<Member, Proposal>,
    nullify: BTreeSet<Member>,
    finalize: BTreeMap<Member, Hash32>,
    voted_notarize: bool,
    voted_nullify: bool,
    voted_finalize: bool,
}

/// One member's consensus state.
pub struct Machine {
    config: Config,
    view: View,
    deadline: Option<u64>,
    now: u64,
    timeouts_in_row: u32,
    votes: BTreeMap<View, ViewVotes>,
    notarized: BTreeMap<View, Proposal>,
    nullified: BTreeSet<View>,
    finalized_upto: View,
    finalized: BTreeMap<View, Proposal>,
    /// Proposals this member has validated or seen certified, by view and block: a digest
    /// alone could be replayed by a Byzantine leader in another view.
    known: BTreeMap<(View, Hash32), Proposal>,
    /// The notarization (or else nullification) of each view since the last finalized one.
    certs: BTreeMap<View, Certificate>,
}

/// Records `from`'s vote for `value` unless it voted before; returns its earlier vote when
/// that one differs (equivocation).
fn first_vote<T: Copy + PartialEq>(
    votes: &mut BTreeMap<Member, T>,
    from: Member,
    value: T,
) -> Option<T> {
    match votes.get(&from) {
        Some(earlier) if *earlier != value => Some(*earlier),
        Some(_) => None,
        None => {
            votes.insert(from, value);
            None
        }
    }
}

/// The digest the simulator and tests use for a block: deterministic in its position.
pub fn block_digest(view: View, parent: &Hash32, proposer: Member) -> Hash32 {
    sha256(&[
        b"cpchain/sim-block",
        &view.to_be_bytes(),
        &parent.0,
        &proposer.to_be_bytes(),
    ])
}

impl Machine {
    /// A member at view 1 over the genesis block (view 0, digest `genesis`).
    pub fn new(config: Config, genesis: Hash32) -> Self {
        let g = Proposal {
            view: 0,
            parent_view: 0,
            parent: Hash32::ZERO,
            block: genesis,
        };
        Self {
            config,
            view: 0,
            deadline: None,
            now: 0,
            timeouts_in_row: 0,
            votes: BTreeMap::new(),
            notarized: BTreeMap::from([(0, g)]),
            nullified: BTreeSet::new(),
            finalized_upto: 0,
            finalized: BTreeMap::from([(0, g)]),
            known: BTreeMap::from([((0, genesis), g)]),
            certs: BTreeMap::new(),
        }
    }

    /// A member restarting after `finalized`, its last final block. Replay what it sent
    /// before it stopped with [`Machine::replay_own`] (its votes) and as events (the
    /// certificates) before the first tick.
    pub fn restore(config: Config, finalized: Proposal) -> Self {
        let mut m = Self::new(config, finalized.block);
        let f = finalized;
        m.view = f.view;
        m.finalized_upto = f.view;
        m.finalized = BTreeMap::from([(f.view, f)]);
        m.notarized = BTreeMap::from([(f.view, f)]);
        m.known = BTreeMap::from([((f.view, f.block), f)]);
        m
    }

    /// Restores a vote this member cast before a restart, so it never casts a different
    /// one; it rejoins at the last view it voted in (where its timer will repeat the vote
    /// or nullify), not later: views it skipped could otherwise never be nullified.
    pub fn replay_own(&mut self, vote: Vote) {
        let view = vote.view();
        if view <= self.finalized_upto || self.deadline.is_some() {
            return;
        }
        let me = self.config.me;
        let leader = self.config.leader(view) == me;
        let vv = self.votes.entry(view).or_default();
        match vote {
            Vote::Notarize(p) => {
                vv.voted_notarize = true;
                vv.notarize.insert(me, p);
                if leader {
                    vv.proposal = Some(p);
                }
                self.known.insert((p.view, p.block), p);
            }
            Vote::Nullify(_) => {
                vv.voted_nullify = true;
                vv.nullify.insert(me);
            }
            Vote::Finalize(_, b) => {
                vv.voted_finalize = true;
                vv.finalize.insert(me, b);
            }
        }
        self.view = self.view.max(view - 1);
    }

    /// The view of the last finalized block.
    pub fn finalized_view(&self) -> View {
        self.finalized_upto
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// A one-line summary of the current and previous views, for logs.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "view {} finalized {} deadline {:?}",
            self.view, self.finalized_upto, self.deadline
        );
        for v in self.view.saturating_sub(1)..=self.view {
            if let Some(vv) = self.votes.get(&v) {
                out += &format!(
                    " | v{v}: proposal {} notarize {} nullify {} finalize {} voted n/x/f {}/{}/{} notarized {} nullified {}",
                    vv.proposal.is_some(),
                    vv.notarize.len(),
                    vv.nullify.len(),
                    vv.finalize.len(),
                    vv.voted_notarize,
                    vv.voted_nullify,
                    vv.voted_finalize,
                    self.notarized.contains_key(&v),
                    self.nullified.contains(&v)
                );
            }
        }
        out
    }

    /// The finalized chain: view → block, genesis included.
    pub fn finalized(&self) -> &BTreeMap<View, Proposal> {
        &self.finalized
    }

    /// Handles one event.
    pub fn handle(
        &mut self,
        event: Event,
        propose: &mut dyn FnMut(View, &Proposal) -> Option<Hash32>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Tick(now) => {
                self.now = now;
                if self.deadline.is_none() {
                    let first = self.view.saturating_add(1);
                    self.enter(first, &mut out, propose);
                } else if self.deadline.is_some_and(|d| now >= d) {
                    self.timeout(&mut out);
                    self.advance(&mut out, propose);
                } else {
                    // A leader whose block was not ready asks again.
                    self.act_in_view(&mut out, propose);
                }
            }
            Event::Message(from, msg) => self.on_message(from, msg, &mut out, propose),
        }
        out
    }

    fn timeout(&mut self, out: &mut Vec<Action>) {
        self.timeouts_in_row = (self.timeouts_in_row + 1).min(3);
        self.deadline = Some(self.now + (self.config.timeout_ms << self.timeouts_in_row));
        let v = self.view;
        let me = self.config.me;
        let vv = self.votes.entry(v).or_default();
        // A member that voted to finalize the view never nullifies it: the safety of
        // finalization rests on that. Otherwise it repeats what it said in the view, and
        // the certificates since the last finalization, so others catch up after a heal.
        if !vv.voted_finalize {
            if !vv.voted_nullify {
                vv.voted_nullify = true;
                vv.nullify.insert(me);
            }
            out.push(Action::Broadcast(Message::Vote(Vote::Nullify(v))));
        }
        if let Some(f) = vv.finalize.get(&me).copied() {
            out.push(Action::Broadcast(Message::Vote(Vote::Finalize(v, f))));
        }
        if let Some(p) = vv.proposal.filter(|_| self.config.leader(v) == me) {
            out.push(Action::Broadcast(Message::Propose(p)));
        }
        if let Some(p) = self
            .votes
            .get(&v)
            .and_then(|vv| vv.notarize.get(&me).copied())
        {
            out.push(Action::Broadcast(Message::Vote(Vote::Notarize(p))));
        }
        // Every certificate since the last finalized view: a proposal is valid only to a
        // member that knows its parent's notarization and the nullifications in between
        // (and, with real blocks, the notarized blocks themselves).
        let from = self.finalized_upto.max(v.saturating_sub(64)) + 1;
        for view in from..v {
            if let Some(c) = self.certificate_of(view) {
                if let Certificate::Notarization(p, _) = &c {
                    out.push(Action::Relay(*p));
                }
                out.push(Action::Broadcast(Message::Certificate(c)));
            }
        }
        if let Some((&fv, p)) = self.finalized.iter().next_back()
            && let Some(vv) = self.votes.get(&fv)
        {
            let voters: BTreeSet<Member> = vv
                .finalize
                .iter()
                .filter(|(_, b)| **b == p.block)
                .map(|(m, _)| *m)
                .collect();
            if voters.len() >= self.config.quorum() {
                out.push(Action::Broadcast(Message::Certificate(
                    Certificate::Finalization(*p, voters),
                )));
            }
        }
        self.check_quorums(v, out);
    }

    fn certificate_of(&self, view: View) -> Option<Certificate> {
        self.certs.get(&view).cloned()
    }

    /// The parent a proposal in `view` must extend: the latest notarized block with every
    /// view between it and `view` nullified.
    fn parent_for(&self, view: View) -> Option<Proposal> {
        let mut v = view.checked_sub(1)?;
        loop {
            if let Some(p) = self.notarized.get(&v) {
                return Some(*p);
            }
            if !self.nullified.contains(&v) {
                return None;
            }
            v = v.checked_sub(1)?;
        }
    }

    fn valid_parent(&self, p: &Proposal) -> bool {
        p.parent_view < p.view
            && self
                .notarized
                .get(&p.parent_view)
                .is_some_and(|n| n.block == p.parent)
            && (p.parent_view + 1..p.view).all(|v| self.nullified.contains(&v))
    }

    fn enter(
        &mut self,
        view: View,
        out: &mut Vec<Action>,
        propose: &mut dyn FnMut(View, &Proposal) -> Option<Hash32>,
    ) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.deadline = Some(self.now + (self.config.timeout_ms << self.timeouts_in_row));
        self.act_in_view(out, propose);
        self.check_quorums(view, out);
    }

    /// Proposes (as leader) and votes in the current view as soon as this member knows
    /// enough: on entering it, and again whenever a certificate fills in a missing parent
    /// or nullification.
    fn act_in_view(
        &mut self,
        out: &mut Vec<Action>,
        propose: &mut dyn FnMut(View, &Proposal) -> Option<Hash32>,
    ) {
        let view = self.view;
        let proposed = self
            .votes
            .get(&view)
            .is_some_and(|vv| vv.proposal.is_some());
        if self.config.leader(view) == self.config.me
            && !proposed
            && let Some((parent, block)) = self
                .parent_for(view)
                .and_then(|parent| propose(view, &parent).map(|b| (parent, b)))
        {
            let p = Proposal {
                view,
                parent_view: parent.view,
                parent: parent.block,
                block,
            };
            out.push(Action::Broadcast(Message::Propose(p)));
            self.on_proposal(self.config.me, p, out);
        }
        // Votes and proposals may have arrived before this member could use them.
        if let Some(p) = self.votes.get(&view).and_then(|vv| vv.proposal) {
            self.try_notarize(p, out);
        }
    }

    fn on_message(
        &mut self,
        from: Member,
        msg: Message,
        out: &mut Vec<Action>,
        propose: &mut dyn FnMut(View, &Proposal) -> Option<Hash32>,
    ) {
        if from >= self.config.members {
            return;
        }
        // Votes and proposals far ahead are dropped: a Byzantine member could otherwise grow
        // this member's state without bound. Certificates (2f + 1 signatures) may jump.
        let view = match &msg {
            Message::Propose(p) => Some(p.view),
            Message::Vote(v) => Some(v.view()),
            Message::Certificate(_) => None,
        };
        if view.is_some_and(|v| v == 0 || v > self.view.saturating_add(VIEW_WINDOW)) {
            return;
        }
        match msg {
            Message::Propose(p) => {
                if self.config.leader(p.view) == from {
                    self.on_proposal(from, p, out);
                }
            }
            Message::Vote(v) => self.on_vote(from, v, out),
            Message::Certificate(c) => self.on_certificate(c, out),
        }
        self.advance(out, propose);
    }

    fn on_proposal(&mut self, from: Member, p: Proposal, out: &mut Vec<Action>) {
        if p.view <= self.finalized_upto {
            return;
        }
        let vv = self.votes.entry(p.view).or_default();
        match vv.proposal {
            Some(q) if q != p => {
                out.push(Action::Evidence {
                    member: from,
                    first: Message::Propose(q),
                    second: Message::Propose(p),
                });
                return;
            }
            Some(_) => return,
            None => vv.proposal = Some(p),
        }
        // The leader's proposal counts as its notarize vote.
        self.on_vote(from, Vote::Notarize(p), out);
        if p.view == self.view {
            self.try_notarize(p, out);
        }
    }

    fn try_notarize(&mut self, p: Proposal, out: &mut Vec<Action>) {
        if !self.valid_parent(&p) {
            return;
        }
        let me = self.config.me;
        let vv = self.votes.entry(p.view).or_default();
        if vv.voted_notarize || vv.voted_nullify {
            return;
        }
        vv.voted_notarize = true;
        vv.notarize.insert(me, p);
        self.known.insert((p.view, p.block), p);
        out.push(Action::Broadcast(Message::Vote(Vote::Notarize(p))));
        self.check_quorums(p.view, out);
    }

    fn on_vote(&mut self, from: Member, vote: Vote, out: &mut Vec<Action>) {
        let view = vote.view();
        if view <= self.finalized_upto && !matches!(vote, Vote::Finalize(..)) {
            return;
        }
        let vv = self.votes.entry(view).or_default();
        // Finalize and nullify in one view break the safety argument: evidence too.
        let earlier = match vote {
            Vote::Notarize(p) => first_vote(&mut vv.notarize, from, p).map(Vote::Notarize),
            Vote::Nullify(_) => {
                vv.nullify.insert(from);
                vv.finalize.get(&from).map(|b| Vote::Finalize(view, *b))
            }
            Vote::Finalize(_, b) => first_vote(&mut vv.finalize, from, b)
                .map(|c| Vote::Finalize(view, c))
                .or_else(|| vv.nullify.contains(&from).then_some(Vote::Nullify(view))),
        };
        if let Some(first) = earlier {
            out.push(Action::Evidence {
                member: from,
                first: Message::Vote(first),
                second: Message::Vote(vote),
            });
        }
        self.check_quorums(view, out);
    }

    fn on_certificate(&mut self, c: Certificate, out: &mut Vec<Action>) {
        // A certificate is `2f + 1` signed votes (checked by the caller): it stands on its
        // own, whatever votes this member counted itself.
        let q = self.config.quorum();
        let valid = |voters: &BTreeSet<Member>| {
            voters.len() >= q && voters.iter().all(|m| *m < self.config.members)
        };
        match c {
            Certificate::Notarization(p, voters)
                if valid(&voters) && p.view > self.finalized_upto =>
            {
                self.set_notarized(p, voters, out);
            }
            Certificate::Nullification(v, voters) if valid(&voters) && v > self.finalized_upto => {
                self.set_nullified(v, voters, out);
            }
            Certificate::Finalization(p, voters)
                if valid(&voters) && p.view > self.finalized_upto =>
            {
                self.known.insert((p.view, p.block), p);
                self.finalize(p, out);
                if self.finalized_upto >= p.view {
                    out.push(Action::Broadcast(Message::Certificate(
                        Certificate::Finalization(p, voters),
                    )));
                }
            }
            _ => {}
        }
    }

    fn set_notarized(&mut self, p: Proposal, voters: BTreeSet<Member>, out: &mut Vec<Action>) {
        if self.notarized.contains_key(&p.view) {
            return;
        }
        self.notarized.insert(p.view, p);
        self.known.insert((p.view, p.block), p);
        self.timeouts_in_row = 0;
        let cert = Certificate::Notarization(p, voters);
        self.certs.insert(p.view, cert.clone());
        out.push(Action::Broadcast(Message::Certificate(cert)));
        let me = self.config.me;
        let vv = self.votes.entry(p.view).or_default();
        if !vv.voted_nullify && !vv.voted_finalize {
            vv.voted_finalize = true;
            vv.finalize.insert(me, p.block);
            out.push(Action::Broadcast(Message::Vote(Vote::Finalize(
                p.view, p.block,
            ))));
        }
    }

    fn set_nullified(&mut self, view: View, voters: BTreeSet<Member>, out: &mut Vec<Action>) {
        if self.nullified.insert(view) {
            let cert = Certificate::Nullification(view, voters);
            self.certs.entry(view).or_insert_with(|| cert.clone());
            out.push(Action::Broadcast(Message::Certificate(cert)));
        }
    }

    fn check_quorums(&mut self, view: View, out: &mut Vec<Action>) {
        let q = self.config.quorum();
        let Some(vv) = self.votes.get(&view) else {
            return;
        };
        // Notarization: a quorum of votes for one proposal.
        let mut tally: BTreeMap<Proposal, BTreeSet<Member>> = BTreeMap::new();
        for (m, p) in &vv.notarize {
            tally.entry(*p).or_default().insert(*m);
        }
        let notarization = tally.into_iter().find(|(_, s)| s.len() >= q);
        let nullification = (vv.nullify.len() >= q).then(|| vv.nullify.clone());
        // Finalization: a quorum of finalize votes for one block.
        let mut fin: BTreeMap<Hash32, BTreeSet<Member>> = BTreeMap::new();
        for (m, b) in &vv.finalize {
            fin.entry(*b).or_default().insert(*m);
        }
        let finalization = fin.into_iter().find(|(_, s)| s.len() >= q);
        if let Some((p, voters)) = notarization {
            self.set_notarized(p, voters, out);
        }
        if let Some(voters) = nullification {
            self.set_nullified(view, voters, out);
        }
        if let Some((b, voters)) = finalization
            && view > self.finalized_upto
        {
            let p = self
                .notarized
                .get(&view)
                .filter(|n| n.block == b)
                .or_else(|| self.known.get(&(view, b)))
                .copied();
            if let Some(p) = p {
                self.finalize(p, out);
                out.push(Action::Broadcast(Message::Certificate(
                    Certificate::Finalization(p, voters),
                )));
            }
        }
    }

    fn finalize(&mut self, p: Proposal, out: &mut Vec<Action>) {
        // Walk back to the last finalized block, then emit in chain order. Ancestors this
        // member never saw are final too (the certificate says so): `Action::Sync` asks the
        // node to fetch them from peers and apply them; the machine itself skips the gap.
        let mut chain = vec![p];
        let mut cur = p;
        let mut gap = false;
        while cur.parent_view > self.finalized_upto {
            match self.known.get(&(cur.parent_view, cur.parent)).copied() {
                // Each step must go strictly back in view, or a crafted cycle would loop.
                Some(parent) if parent.view < cur.view => {
                    chain.push(parent);
                    cur = parent;
                }
                Some(_) => return,
                None => {
                    gap = true;
                    break;
                }
            }
        }
        if !gap
            && (cur.parent_view != self.finalized_upto
                || self.finalized.get(&cur.parent_view).map(|f| f.block) != Some(cur.parent))
        {
            // Cannot happen with 2f + 1 honest quorums; refuse rather than fork.
            return;
        }
        if gap {
            out.push(Action::Sync {
                after: self.finalized_upto,
                upto: cur.parent_view,
                block: cur.parent,
            });
        }
        for b in chain.into_iter().rev() {
            self.finalized.insert(b.view, b);
            // A finalized block is notarized: later proposals may name it as parent.
            self.notarized.insert(b.view, b);
            out.push(Action::Finalized(b));
        }
        self.finalized_upto = p.view;
        // Old views can no longer matter.
        let upto = self.finalized_upto;
        self.votes = self.votes.split_off(&upto);
        self.certs = self.certs.split_off(&upto);
        self.notarized = self.notarized.split_off(&upto);
        self.nullified = self.nullified.split_off(&upto);
        self.known = self.known.split_off(&(upto, Hash32::ZERO));
    }

    fn advance(
        &mut self,
        out: &mut Vec<Action>,
        propose: &mut dyn FnMut(View, &Proposal) -> Option<Hash32>,
    ) {
        // Move past every view that has a certificate, including ones ahead of us.
        loop {
            let next = self
                .notarized
                .keys()
                .chain(self.nullified.iter())
                .filter(|v| **v >= self.view && **v > 0)
                .max()
                .copied();
            match next {
                Some(v) => {
                    let Some(next) = v.checked_add(1) else { break };
                    let before = self.view;
                    self.enter(next, out, propose);
                    if self.view == before {
                        break;
                    }
                }
                None => break,
            }
        }
        self.act_in_view(out, propose);
    }
}
