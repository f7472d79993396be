//! The SHA-512 core: the challenge hash `SHA-512(R || A || M)` of Ed25519 verification,
//! the first stage an FPGA signature-verification pipeline takes off the CPU.
//!
//! It is the SHA-256 core of [`crate::sha256`] widened to 64-bit words: the same
//! valid/ready word stream (16 big-endian 64-bit words of a host-padded 128-byte block),
//! the same `in_first`, `digest_sel`/`digest_word`, `busy` and `digest_valid` signals, and
//! the same cut critical paths (`h + K + W` a round ahead, carry-save sums, the schedule
//! a word ahead, round constants from a synchronous ROM).
//!
//! A block takes **82 cycles** with a gap-free stream: 1 to take word 0, 80 rounds, 1 to
//! add the working variables into the chaining value.

use rust_hdl::prelude::*;

/// The SHA-512 round constants.
pub const K512: [u64; 80] = [
    0x428a2f98d728ae22,
    0x7137449123ef65cd,
    0xb5c0fbcfec4d3b2f,
    0xe9b5dba58189dbbc,
    0x3956c25bf348b538,
    0x59f111f1b605d019,
    0x923f82a4af194f9b,
    0xab1c5ed5da6d8118,
    0xd807aa98a3030242,
    0x12835b0145706fbe,
    0x243185be4ee4b28c,
    0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f,
    0x80deb1fe3b1696b1,
    0x9bdc06a725c71235,
    0xc19bf174cf692694,
    0xe49b69c19ef14ad2,
    0xefbe4786384f25e3,
    0x0fc19dc68b8cd5b5,
    0x240ca1cc77ac9c65,
    0x2de92c6f592b0275,
    0x4a7484aa6ea6e483,
    0x5cb0a9dcbd41fbd4,
    0x76f988da831153b5,
    0x983e5152ee66dfab,
    0xa831c66d2db43210,
    0xb00327c898fb213f,
    0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2,
    0xd5a79147930aa725,
    0x06ca6351e003826f,
    0x142929670a0e6e70,
    0x27b70a8546d22ffc,
    0x2e1b21385c26c926,
    0x4d2c6dfc5ac42aed,
    0x53380d139d95b3df,
    0x650a73548baf63de,
    0x766a0abb3c77b2a8,
    0x81c2c92e47edaee6,
    0x92722c851482353b,
    0xa2bfe8a14cf10364,
    0xa81a664bbc423001,
    0xc24b8b70d0f89791,
    0xc76c51a30654be30,
    0xd192e819d6ef5218,
    0xd69906245565a910,
    0xf40e35855771202a,
    0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8,
    0x1e376c085141ab53,
    0x2748774cdf8eeb99,
    0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63,
    0x4ed8aa4ae3418acb,
    0x5b9cca4f7763e373,
    0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc,
    0x78a5636f43172f60,
    0x84c87814a1f0ab72,
    0x8cc702081a6439ec,
    0x90befffa23631e28,
    0xa4506cebde82bde9,
    0xbef9a3f7b2c67915,
    0xc67178f2e372532b,
    0xca273eceea26619c,
    0xd186b8c721c0c207,
    0xeada7dd6cde0eb1e,
    0xf57d4f7fee6ed178,
    0x06f067aa72176fba,
    0x0a637dc5a2c898a6,
    0x113f9804bef90dae,
    0x1b710b35131c471b,
    0x28db77f523047d84,
    0x32caab7b40c72493,
    0x3c9ebe0a15c9bebc,
    0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6,
    0x597f299cfc657e2a,
    0x5fcb6fab3ad6faec,
    0x6c44198c4a475817,
];

/// Clock cycles per 128-byte block with a gap-free input stream.
pub const SHA512_CYCLES_PER_BLOCK: u64 = 82;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
enum Phase {
    Idle,
    Round,
    Final,
}

/// The SHA-512 core; see the module documentation.
#[derive(LogicBlock)]
pub struct Sha512Core {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A message word (big-endian).
    pub in_data: Signal<In, Bits<64>>,
    /// `in_data` holds a word.
    pub in_valid: Signal<In, Bit>,
    /// With the first word of a block: the block starts a new message.
    pub in_first: Signal<In, Bit>,
    /// The core takes `in_data` this cycle if `in_valid`.
    pub in_ready: Signal<Out, Bit>,
    /// Which chaining word `digest_word` shows.
    pub digest_sel: Signal<In, Bits<3>>,
    /// Chaining word `digest_sel` (big-endian).
    pub digest_word: Signal<Out, Bits<64>>,
    /// A block is being hashed.
    pub busy: Signal<Out, Bit>,
    /// The chaining value is the digest of the blocks fed so far.
    pub digest_valid: Signal<Out, Bit>,

    phase: DFF<Phase>,
    round: DFF<Bits<7>>,
    a: DFF<Bits<64>>,
    b: DFF<Bits<64>>,
    c: DFF<Bits<64>>,
    d: DFF<Bits<64>>,
    e: DFF<Bits<64>>,
    f: DFF<Bits<64>>,
    g: DFF<Bits<64>>,
    h: DFF<Bits<64>>,
    h0: DFF<Bits<64>>,
    h1: DFF<Bits<64>>,
    h2: DFF<Bits<64>>,
    h3: DFF<Bits<64>>,
    h4: DFF<Bits<64>>,
    h5: DFF<Bits<64>>,
    h6: DFF<Bits<64>>,
    h7: DFF<Bits<64>>,
    w0: DFF<Bits<64>>,
    w1: DFF<Bits<64>>,
    w2: DFF<Bits<64>>,
    w3: DFF<Bits<64>>,
    w4: DFF<Bits<64>>,
    w5: DFF<Bits<64>>,
    w6: DFF<Bits<64>>,
    w7: DFF<Bits<64>>,
    w8: DFF<Bits<64>>,
    w9: DFF<Bits<64>>,
    w10: DFF<Bits<64>>,
    w11: DFF<Bits<64>>,
    w12: DFF<Bits<64>>,
    w13: DFF<Bits<64>>,
    w14: DFF<Bits<64>>,
    w15: DFF<Bits<64>>,
    wn: DFF<Bits<64>>,
    hkw: DFF<Bits<64>>,
    dhkw: DFF<Bits<64>>,
    valid: DFF<Bit>,
    // The round-constant ROM answers a cycle after its address: nothing is taken until
    // it has (the first cycle after configuration).
    primed: DFF<Bit>,
    k: SyncROM<Bits<64>, 7>,

    take: Signal<Local, Bit>,
    advance: Signal<Local, Bit>,
    wsrc: Signal<Local, Bits<64>>,
    hsel: Signal<Local, Bits<64>>,
    dsel: Signal<Local, Bits<64>>,
    big_s0: Signal<Local, Bits<64>>,
    big_s1: Signal<Local, Bits<64>>,
    ch: Signal<Local, Bits<64>>,
    maj: Signal<Local, Bits<64>>,
    x1s: Signal<Local, Bits<64>>,
    x1c: Signal<Local, Bits<64>>,
    x2s: Signal<Local, Bits<64>>,
    x2c: Signal<Local, Bits<64>>,
    x3s: Signal<Local, Bits<64>>,
    x3c: Signal<Local, Bits<64>>,
    ys: Signal<Local, Bits<64>>,
    yc: Signal<Local, Bits<64>>,
    ks: Signal<Local, Bits<64>>,
    kc: Signal<Local, Bits<64>>,
    kds: Signal<Local, Bits<64>>,
    kdc: Signal<Local, Bits<64>>,
    sig0: Signal<Local, Bits<64>>,
    sig1: Signal<Local, Bits<64>>,
    ws1: Signal<Local, Bits<64>>,
    wc1: Signal<Local, Bits<64>>,
    ws2: Signal<Local, Bits<64>>,
    wc2: Signal<Local, Bits<64>>,
}

impl Default for Sha512Core {
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
            k: K512.iter().map(|&k| Bits::<64>::from(k)).into(),
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

impl Logic for Sha512Core {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, phase, round, a, b, c, d, e, f, g, h, h0, h1, h2, h3, h4, h5, h6, h7, w0,
            w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, wn, hkw, dhkw, valid,
            primed
        );
        clock!(self, clock, k);

        // Round functions of the current state.
        self.big_s0.next = ((self.a.q.val() >> 28) | (self.a.q.val() << 36))
            ^ ((self.a.q.val() >> 34) | (self.a.q.val() << 30))
            ^ ((self.a.q.val() >> 39) | (self.a.q.val() << 25));
        self.big_s1.next = ((self.e.q.val() >> 14) | (self.e.q.val() << 50))
            ^ ((self.e.q.val() >> 18) | (self.e.q.val() << 46))
            ^ ((self.e.q.val() >> 41) | (self.e.q.val() << 23));
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
        self.sig0.next = ((self.w2.q.val() >> 1) | (self.w2.q.val() << 63))
            ^ ((self.w2.q.val() >> 8) | (self.w2.q.val() << 56))
            ^ (self.w2.q.val() >> 7);
        self.sig1.next = ((self.w15.q.val() >> 19) | (self.w15.q.val() << 45))
            ^ ((self.w15.q.val() >> 61) | (self.w15.q.val() << 3))
            ^ (self.w15.q.val() >> 6);
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
                self.hsel.next = bits::<64>(0x5be0cd19137e2179_u64);
                self.dsel.next = bits::<64>(0xa54ff53a5f1d36f1_u64);
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
                        self.a.d.next = bits::<64>(0x6a09e667f3bcc908_u64);
                        self.b.d.next = bits::<64>(0xbb67ae8584caa73b_u64);
                        self.c.d.next = bits::<64>(0x3c6ef372fe94f82b_u64);
                        self.d.d.next = bits::<64>(0xa54ff53a5f1d36f1_u64);
                        self.e.d.next = bits::<64>(0x510e527fade682d1_u64);
                        self.f.d.next = bits::<64>(0x9b05688c2b3e6c1f_u64);
                        self.g.d.next = bits::<64>(0x1f83d9abfb41bd6b_u64);
                        self.h.d.next = bits::<64>(0x5be0cd19137e2179_u64);
                        self.h0.d.next = bits::<64>(0x6a09e667f3bcc908_u64);
                        self.h1.d.next = bits::<64>(0xbb67ae8584caa73b_u64);
                        self.h2.d.next = bits::<64>(0x3c6ef372fe94f82b_u64);
                        self.h3.d.next = bits::<64>(0xa54ff53a5f1d36f1_u64);
                        self.h4.d.next = bits::<64>(0x510e527fade682d1_u64);
                        self.h5.d.next = bits::<64>(0x9b05688c2b3e6c1f_u64);
                        self.h6.d.next = bits::<64>(0x1f83d9abfb41bd6b_u64);
                        self.h7.d.next = bits::<64>(0x5be0cd19137e2179_u64);
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
                    if self.round.q.val() == 79 {
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
