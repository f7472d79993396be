//! The SHA-256 core: one compression round per clock, fed by a valid/ready word stream.
//!
//! # Interface
//!
//! - `in_data`/`in_valid`/`in_ready`: the 16 big-endian message words of a padded 64-byte
//!   block, one per accepted cycle. Padding is the host's job (see
//!   [`crate::protocol::sha256_pad`]): the core hashes whole blocks only, which keeps the
//!   length counter and byte shifter out of the fabric.
//! - `in_first`: sampled with the block's first word; the block starts a new message
//!   (chaining value reset to the initial hash value) instead of continuing one.
//! - `digest_sel`/`digest_word`: the chaining value `H0..H7`, one word at a time (a mux, so
//!   no 256-bit port crosses the design).
//! - `busy`: a block is being hashed; `digest_valid`: the last block finished and
//!   `digest_word` holds its result (cleared when the next block starts).
//!
//! # Timing
//!
//! A block takes **66 cycles** when words arrive without gaps: 1 cycle takes word 0, 64
//! round cycles (which take words 1–15 while rounds 0–14 run) and 1 cycle adds the working
//! variables into the chaining value. The next block's first word is accepted in the cycle
//! after that.
//!
//! To reach the clock target on an iCE40 the critical paths are cut:
//!
//! - `h + K[t] + W[t]` (and `d + h + K[t] + W[t]`) are computed one round ahead, into
//!   `hkw`/`dhkw`, so a round adds five operands for `a` and three for `e`;
//! - multi-operand sums go through carry-save adders, so each has one carry chain;
//! - the message schedule computes `W[t+1]` a round ahead, into `wn`;
//! - the round constants come from a synchronous ROM (block RAM), addressed a cycle ahead.

use rust_hdl::prelude::*;

/// The SHA-256 round constants.
pub const K256: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Clock cycles per 64-byte block with a gap-free input stream.
pub const SHA256_CYCLES_PER_BLOCK: u64 = 66;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
enum Phase {
    Idle,
    Round,
    Final,
}

/// The SHA-256 core; see the module documentation.
#[derive(LogicBlock)]
pub struct Sha256Core {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A message word (big-endian).
    pub in_data: Signal<In, Bits<32>>,
    /// `in_data` holds a word.
    pub in_valid: Signal<In, Bit>,
    /// With the first word of a block: the block starts a new message.
    pub in_first: Signal<In, Bit>,
    /// The core takes `in_data` this cycle if `in_valid`.
    pub in_ready: Signal<Out, Bit>,
    /// Which chaining word `digest_word` shows.
    pub digest_sel: Signal<In, Bits<3>>,
    /// Chaining word `digest_sel` (big-endian).
    pub digest_word: Signal<Out, Bits<32>>,
    /// A block is being hashed.
    pub busy: Signal<Out, Bit>,
    /// The chaining value is the digest of the blocks fed so far.
    pub digest_valid: Signal<Out, Bit>,

    phase: DFF<Phase>,
    round: DFF<Bits<6>>,
    a: DFF<Bits<32>>,
    b: DFF<Bits<32>>,
    c: DFF<Bits<32>>,
    d: DFF<Bits<32>>,
    e: DFF<Bits<32>>,
    f: DFF<Bits<32>>,
    g: DFF<Bits<32>>,
    h: DFF<Bits<32>>,
    h0: DFF<Bits<32>>,
    h1: DFF<Bits<32>>,
    h2: DFF<Bits<32>>,
    h3: DFF<Bits<32>>,
    h4: DFF<Bits<32>>,
    h5: DFF<Bits<32>>,
    h6: DFF<Bits<32>>,
    h7: DFF<Bits<32>>,
    w0: DFF<Bits<32>>,
    w1: DFF<Bits<32>>,
    w2: DFF<Bits<32>>,
    w3: DFF<Bits<32>>,
    w4: DFF<Bits<32>>,
    w5: DFF<Bits<32>>,
    w6: DFF<Bits<32>>,
    w7: DFF<Bits<32>>,
    w8: DFF<Bits<32>>,
    w9: DFF<Bits<32>>,
    w10: DFF<Bits<32>>,
    w11: DFF<Bits<32>>,
    w12: DFF<Bits<32>>,
    w13: DFF<Bits<32>>,
    w14: DFF<Bits<32>>,
    w15: DFF<Bits<32>>,
    wn: DFF<Bits<32>>,
    hkw: DFF<Bits<32>>,
    dhkw: DFF<Bits<32>>,
    valid: DFF<Bit>,
    // The round-constant ROM answers a cycle after its address: nothing is taken until
    // it has (the first cycle after configuration).
    primed: DFF<Bit>,
    k: SyncROM<Bits<32>, 6>,

    take: Signal<Local, Bit>,
    advance: Signal<Local, Bit>,
    wsrc: Signal<Local, Bits<32>>,
    hsel: Signal<Local, Bits<32>>,
    dsel: Signal<Local, Bits<32>>,
    big_s0: Signal<Local, Bits<32>>,
    big_s1: Signal<Local, Bits<32>>,
    ch: Signal<Local, Bits<32>>,
    maj: Signal<Local, Bits<32>>,
    x1s: Signal<Local, Bits<32>>,
    x1c: Signal<Local, Bits<32>>,
    x2s: Signal<Local, Bits<32>>,
    x2c: Signal<Local, Bits<32>>,
    x3s: Signal<Local, Bits<32>>,
    x3c: Signal<Local, Bits<32>>,
    ys: Signal<Local, Bits<32>>,
    yc: Signal<Local, Bits<32>>,
    ks: Signal<Local, Bits<32>>,
    kc: Signal<Local, Bits<32>>,
    kds: Signal<Local, Bits<32>>,
    kdc: Signal<Local, Bits<32>>,
    sig0: Signal<Local, Bits<32>>,
    sig1: Signal<Local, Bits<32>>,
    ws1: Signal<Local, Bits<32>>,
    wc1: Signal<Local, Bits<32>>,
    ws2: Signal<Local, Bits<32>>,
    wc2: Signal<Local, Bits<32>>,
}

impl Default for Sha256Core {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_data: Default::default(),
            in_valid: Default::default(),
            in_first: Default::default(),
            in_ready: Default::default(),
            digest_sel: Default::default(),
            digest_word: Default::default(),
            busy: Default::default(),
            digest_valid: Default::default(),
            phase: Default::default(),
            round: Default::default(),
            a: Default::default(),
            b: Default::default(),
            c: Default::default(),
            d: Default::default(),
            e: Default::default(),
            f: Default::default(),
            g: Default::default(),
            h: Default::default(),
            h0: Default::default(),
            h1: Default::default(),
            h2: Default::default(),
            h3: Default::default(),
            h4: Default::default(),
            h5: Default::default(),
            h6: Default::default(),
            h7: Default::default(),
            w0: Default::default(),
            w1: Default::default(),
            w2: Default::default(),
            w3: Default::default(),
            w4: Default::default(),
            w5: Default::default(),
            w6: Default::default(),
            w7: Default::default(),
            w8: Default::default(),
            w9: Default::default(),
            w10: Default::default(),
            w11: Default::default(),
            w12: Default::default(),
            w13: Default::default(),
            w14: Default::default(),
            w15: Default::default(),
            wn: Default::default(),
            hkw: Default::default(),
            dhkw: Default::default(),
            valid: Default::default(),
            primed: Default::default(),
            k: K256.iter().map(|&k| Bits::<32>::from(u64::from(k))).into(),
            take: Default::default(),
            advance: Default::default(),
            wsrc: Default::default(),
            hsel: Default::default(),
            dsel: Default::default(),
            big_s0: Default::default(),
            big_s1: Default::default(),
            ch: Default::default(),
            maj: Default::default(),
            x1s: Default::default(),
            x1c: Default::default(),
            x2s: Default::default(),
            x2c: Default::default(),
            x3s: Default::default(),
            x3c: Default::default(),
            ys: Default::default(),
            yc: Default::default(),
            ks: Default::default(),
            kc: Default::default(),
            kds: Default::default(),
            kdc: Default::default(),
            sig0: Default::default(),
            sig1: Default::default(),
            ws1: Default::default(),
            wc1: Default::default(),
            ws2: Default::default(),
            wc2: Default::default(),
        }
    }
}

impl Logic for Sha256Core {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, phase, round, a, b, c, d, e, f, g, h, h0, h1, h2, h3, h4, h5, h6, h7, w0,
            w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, wn, hkw, dhkw, valid,
            primed
        );
        clock!(self, clock, k);

        // Round functions of the current state.
        self.big_s0.next = ((self.a.q.val() >> 2) | (self.a.q.val() << 30))
            ^ ((self.a.q.val() >> 13) | (self.a.q.val() << 19))
            ^ ((self.a.q.val() >> 22) | (self.a.q.val() << 10));
        self.big_s1.next = ((self.e.q.val() >> 6) | (self.e.q.val() << 26))
            ^ ((self.e.q.val() >> 11) | (self.e.q.val() << 21))
            ^ ((self.e.q.val() >> 25) | (self.e.q.val() << 7));
        self.ch.next = (self.e.q.val() & self.f.q.val()) ^ (!self.e.q.val() & self.g.q.val());
        self.maj.next = (self.a.q.val() & self.b.q.val())
            ^ (self.a.q.val() & self.c.q.val())
            ^ (self.b.q.val() & self.c.q.val());

        // a' = hkw + S1 + ch + S0 + maj, three carry-save levels and one carry chain.
        self.x1s.next = self.hkw.q.val() ^ self.big_s1.val() ^ self.ch.val();
        self.x1c.next = ((self.hkw.q.val() & self.big_s1.val())
            | (self.hkw.q.val() & self.ch.val())
            | (self.big_s1.val() & self.ch.val()))
            << 1;
        self.x2s.next = self.x1s.val() ^ self.x1c.val() ^ self.big_s0.val();
        self.x2c.next = ((self.x1s.val() & self.x1c.val())
            | (self.x1s.val() & self.big_s0.val())
            | (self.x1c.val() & self.big_s0.val()))
            << 1;
        self.x3s.next = self.x2s.val() ^ self.x2c.val() ^ self.maj.val();
        self.x3c.next = ((self.x2s.val() & self.x2c.val())
            | (self.x2s.val() & self.maj.val())
            | (self.x2c.val() & self.maj.val()))
            << 1;
        // e' = dhkw + S1 + ch.
        self.ys.next = self.dhkw.q.val() ^ self.big_s1.val() ^ self.ch.val();
        self.yc.next = ((self.dhkw.q.val() & self.big_s1.val())
            | (self.dhkw.q.val() & self.ch.val())
            | (self.big_s1.val() & self.ch.val()))
            << 1;

        // Message schedule, one word ahead: W[t+2] from the window W[t-15..t].
        self.sig0.next = ((self.w2.q.val() >> 7) | (self.w2.q.val() << 25))
            ^ ((self.w2.q.val() >> 18) | (self.w2.q.val() << 14))
            ^ (self.w2.q.val() >> 3);
        self.sig1.next = ((self.w15.q.val() >> 17) | (self.w15.q.val() << 15))
            ^ ((self.w15.q.val() >> 19) | (self.w15.q.val() << 13))
            ^ (self.w15.q.val() >> 10);
        self.ws1.next = self.sig1.val() ^ self.w10.q.val() ^ self.sig0.val();
        self.wc1.next = ((self.sig1.val() & self.w10.q.val())
            | (self.sig1.val() & self.sig0.val())
            | (self.w10.q.val() & self.sig0.val()))
            << 1;
        self.ws2.next = self.ws1.val() ^ self.wc1.val() ^ self.w1.q.val();
        self.wc2.next = ((self.ws1.val() & self.wc1.val())
            | (self.ws1.val() & self.w1.q.val())
            | (self.wc1.val() & self.w1.q.val()))
            << 1;

        // The word entering the window this cycle: from the stream for W[0..15], else wn.
        self.wsrc.next = self.wn.q.val();
        if (self.phase.q.val() == Phase::Idle) | (self.round.q.val() < 15) {
            self.wsrc.next = self.in_data.val();
        }
        // h and d of the next round: g and c, or the chaining value at a block start.
        self.hsel.next = self.g.q.val();
        self.dsel.next = self.c.q.val();
        if self.phase.q.val() == Phase::Idle {
            self.hsel.next = self.h7.q.val();
            self.dsel.next = self.h3.q.val();
            if self.in_first.val() {
                self.hsel.next = bits::<32>(0x5be0cd19_u64);
                self.dsel.next = bits::<32>(0xa54ff53a_u64);
            }
        }
        // hkw' = h' + K + W, dhkw' = d' + hkw'.
        self.ks.next = self.hsel.val() ^ self.k.data.val() ^ self.wsrc.val();
        self.kc.next = ((self.hsel.val() & self.k.data.val())
            | (self.hsel.val() & self.wsrc.val())
            | (self.k.data.val() & self.wsrc.val()))
            << 1;
        self.kds.next = self.ks.val() ^ self.kc.val() ^ self.dsel.val();
        self.kdc.next = ((self.ks.val() & self.kc.val())
            | (self.ks.val() & self.dsel.val())
            | (self.kc.val() & self.dsel.val()))
            << 1;

        self.take.next = false;
        self.advance.next = false;
        self.in_ready.next = false;
        self.k.address.next = self.round.q.val() + 1;
        match self.phase.q.val() {
            Phase::Idle => {
                self.in_ready.next = self.primed.q.val();
                self.primed.d.next = true;
                self.k.address.next = 0.into();
                if self.in_valid.val() & self.primed.q.val() {
                    self.take.next = true;
                    self.k.address.next = 1.into();
                    self.valid.d.next = false;
                    self.round.d.next = 0.into();
                    self.phase.d.next = Phase::Round;
                    if self.in_first.val() {
                        self.a.d.next = bits::<32>(0x6a09e667_u64);
                        self.b.d.next = bits::<32>(0xbb67ae85_u64);
                        self.c.d.next = bits::<32>(0x3c6ef372_u64);
                        self.d.d.next = bits::<32>(0xa54ff53a_u64);
                        self.e.d.next = bits::<32>(0x510e527f_u64);
                        self.f.d.next = bits::<32>(0x9b05688c_u64);
                        self.g.d.next = bits::<32>(0x1f83d9ab_u64);
                        self.h.d.next = bits::<32>(0x5be0cd19_u64);
                        self.h0.d.next = bits::<32>(0x6a09e667_u64);
                        self.h1.d.next = bits::<32>(0xbb67ae85_u64);
                        self.h2.d.next = bits::<32>(0x3c6ef372_u64);
                        self.h3.d.next = bits::<32>(0xa54ff53a_u64);
                        self.h4.d.next = bits::<32>(0x510e527f_u64);
                        self.h5.d.next = bits::<32>(0x9b05688c_u64);
                        self.h6.d.next = bits::<32>(0x1f83d9ab_u64);
                        self.h7.d.next = bits::<32>(0x5be0cd19_u64);
                    } else {
                        self.a.d.next = self.h0.q.val();
                        self.b.d.next = self.h1.q.val();
                        self.c.d.next = self.h2.q.val();
                        self.d.d.next = self.h3.q.val();
                        self.e.d.next = self.h4.q.val();
                        self.f.d.next = self.h5.q.val();
                        self.g.d.next = self.h6.q.val();
                        self.h.d.next = self.h7.q.val();
                    }
                }
            }
            Phase::Round => {
                if self.round.q.val() < 15 {
                    self.in_ready.next = true;
                    if self.in_valid.val() {
                        self.advance.next = true;
                        self.take.next = true;
                    }
                } else {
                    self.advance.next = true;
                }
                if self.advance.val() {
                    self.k.address.next = self.round.q.val() + 2;
                    self.a.d.next = self.x3s.val() + self.x3c.val();
                    self.b.d.next = self.a.q.val();
                    self.c.d.next = self.b.q.val();
                    self.d.d.next = self.c.q.val();
                    self.e.d.next = self.ys.val() + self.yc.val();
                    self.f.d.next = self.e.q.val();
                    self.g.d.next = self.f.q.val();
                    self.h.d.next = self.g.q.val();
                    self.round.d.next = self.round.q.val() + 1;
                    self.take.next = true;
                    if self.round.q.val() == 63 {
                        self.phase.d.next = Phase::Final;
                    }
                }
            }
            Phase::Final => {
                self.k.address.next = 0.into();
                self.h0.d.next = self.h0.q.val() + self.a.q.val();
                self.h1.d.next = self.h1.q.val() + self.b.q.val();
                self.h2.d.next = self.h2.q.val() + self.c.q.val();
                self.h3.d.next = self.h3.q.val() + self.d.q.val();
                self.h4.d.next = self.h4.q.val() + self.e.q.val();
                self.h5.d.next = self.h5.q.val() + self.f.q.val();
                self.h6.d.next = self.h6.q.val() + self.g.q.val();
                self.h7.d.next = self.h7.q.val() + self.h.q.val();
                self.valid.d.next = true;
                self.phase.d.next = Phase::Idle;
            }
        }

        // A taken step shifts the schedule window and precomputes the next round's sums.
        if self.take.val() {
            self.w0.d.next = self.w1.q.val();
            self.w1.d.next = self.w2.q.val();
            self.w2.d.next = self.w3.q.val();
            self.w3.d.next = self.w4.q.val();
            self.w4.d.next = self.w5.q.val();
            self.w5.d.next = self.w6.q.val();
            self.w6.d.next = self.w7.q.val();
            self.w7.d.next = self.w8.q.val();
            self.w8.d.next = self.w9.q.val();
            self.w9.d.next = self.w10.q.val();
            self.w10.d.next = self.w11.q.val();
            self.w11.d.next = self.w12.q.val();
            self.w12.d.next = self.w13.q.val();
            self.w13.d.next = self.w14.q.val();
            self.w14.d.next = self.w15.q.val();
            self.w15.d.next = self.wsrc.val();
            self.wn.d.next = self.ws2.val() + self.wc2.val();
            self.hkw.d.next = self.ks.val() + self.kc.val();
            self.dhkw.d.next = self.kds.val() + self.kdc.val();
        }

        self.busy.next = self.phase.q.val() != Phase::Idle;
        self.digest_valid.next = self.valid.q.val();
        self.digest_word.next = self.h0.q.val();
        match self.digest_sel.val().index() {
            1 => self.digest_word.next = self.h1.q.val(),
            2 => self.digest_word.next = self.h2.q.val(),
            3 => self.digest_word.next = self.h3.q.val(),
            4 => self.digest_word.next = self.h4.q.val(),
            5 => self.digest_word.next = self.h5.q.val(),
            6 => self.digest_word.next = self.h6.q.val(),
            7 => self.digest_word.next = self.h7.q.val(),
            _ => {}
        }
    }
}
