//! The host link: the protocol engine of [`crate::protocol`] in hardware, and the top
//! levels built from it.
//!
//! - [`LinkCore`] parses requests from a byte stream, keeps the block buffer (block RAM,
//!   16 words of 64 bits), streams a loaded block into a hash core at one word per
//!   cycle, and writes responses to a byte stream.
//! - [`Engine256`] and [`EngineDual`] join a `LinkCore` with the SHA-256 core (and the
//!   SHA-512 core) behind byte ports: what the simulation transport drives.
//!
//! The UART and board top levels are in [`crate::top`].

use rust_hdl::prelude::*;

use crate::protocol;
use crate::sha256::Sha256Core;
use crate::sha512::Sha512Core;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
enum LinkState {
    Idle,
    Cmd,
    Flags,
    Payload,
    CheckCrc,
    Exec,
    StreamPrime,
    Stream,
    WaitIdle,
    RespSync,
    RespStatus,
    RespPayload,
    RespCrc,
    Drain,
}

/// Build-time parameters of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// Feature bits reported by the version command ([`protocol::FEATURE_SHA256`], …).
    pub features: u8,
    /// The core clock in MHz, reported by the version command.
    pub clock_mhz: u8,
    /// Idle cycles after which a partial request is dropped.
    pub frame_timeout: u32,
}

/// The protocol engine; see the module documentation.
#[derive(LogicBlock)]
pub struct LinkCore {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A received byte.
    pub rx_data: Signal<In, Bits<8>>,
    /// `rx_data` is new this cycle.
    pub rx_valid: Signal<In, Bit>,
    /// The link consumes a byte this cycle (a byte offered otherwise is an overrun).
    pub rx_ready: Signal<Out, Bit>,
    /// A byte to send.
    pub tx_data: Signal<Out, Bits<8>>,
    /// `tx_data` holds a byte to send.
    pub tx_valid: Signal<Out, Bit>,
    /// The sender takes `tx_data` this cycle.
    pub tx_ready: Signal<In, Bit>,
    /// A block word for the hash core (SHA-256 uses the low 32 bits).
    pub core_data: Signal<Out, Bits<64>>,
    /// `core_data` holds a word.
    pub core_valid: Signal<Out, Bit>,
    /// The word starts a new message.
    pub core_first: Signal<Out, Bit>,
    /// The word is for the SHA-512 core.
    pub core_sel512: Signal<Out, Bit>,
    /// The core takes the word this cycle.
    pub core_ready: Signal<In, Bit>,
    /// Which digest word to show on `core_digest`.
    pub core_digest_sel: Signal<Out, Bits<3>>,
    /// A digest word (SHA-256 in the low 32 bits).
    pub core_digest: Signal<In, Bits<64>>,
    /// The selected core is hashing.
    pub core_busy: Signal<In, Bit>,
    /// The selected core's digest is valid.
    pub core_digest_valid: Signal<In, Bit>,

    ram: RAM<Bits<64>, 4>,
    state: DFF<LinkState>,
    cmd: DFF<Bits<8>>,
    flags: DFF<Bits<8>>,
    crc: DFF<Bits<8>>,
    cnt: DFF<Bits<8>>,
    acc: DFF<Bits<64>>,
    status: DFF<Bits<8>>,
    err: DFF<Bit>,
    idle: DFF<Bits<24>>,
    sidx: DFF<Bits<4>>,
    outw: DFF<Bits<64>>,
    rlen: DFF<Bits<8>>,
    wb: DFF<Bits<4>>,
    widx: DFF<Bits<3>>,
    crc_errors: DFF<Bits<8>>,
    overruns: DFF<Bits<8>>,
    timeouts: DFF<Bits<8>>,
    blocks: DFF<Bits<32>>,
    features: Constant<Bits<8>>,
    clock_mhz: Constant<Bits<8>>,
    timeout: Constant<Bits<24>>,

    sel512: Signal<Local, Bit>,
    has512: Signal<Local, Bit>,
    acc_new: Signal<Local, Bits<64>>,
    word_done: Signal<Local, Bit>,
    last_byte: Signal<Local, Bits<8>>,
    digest_word: Signal<Local, Bits<64>>,
    crc_byte: Signal<Local, Bits<8>>,
    crc_t: Signal<Local, Bits<8>>,
    in_frame: Signal<Local, Bit>,
}

impl LinkCore {
    /// A link with these parameters.
    pub fn new(params: LinkParams) -> Self {
        assert!(params.frame_timeout >= 16 && params.frame_timeout < (1 << 24));
        Self {
            clock: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            rx_ready: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            core_data: Default::default(),
            core_valid: Default::default(),
            core_first: Default::default(),
            core_sel512: Default::default(),
            core_ready: Default::default(),
            core_digest_sel: Default::default(),
            core_digest: Default::default(),
            core_busy: Default::default(),
            core_digest_valid: Default::default(),
            ram: Default::default(),
            state: Default::default(),
            cmd: Default::default(),
            flags: Default::default(),
            crc: Default::default(),
            cnt: Default::default(),
            acc: Default::default(),
            status: Default::default(),
            err: Default::default(),
            idle: Default::default(),
            sidx: Default::default(),
            outw: Default::default(),
            rlen: Default::default(),
            wb: Default::default(),
            widx: Default::default(),
            crc_errors: Default::default(),
            overruns: Default::default(),
            timeouts: Default::default(),
            blocks: Default::default(),
            features: Constant::new(u64::from(params.features).into()),
            clock_mhz: Constant::new(u64::from(params.clock_mhz).into()),
            timeout: Constant::new(u64::from(params.frame_timeout).into()),
            sel512: Default::default(),
            has512: Default::default(),
            acc_new: Default::default(),
            word_done: Default::default(),
            last_byte: Default::default(),
            digest_word: Default::default(),
            crc_byte: Default::default(),
            crc_t: Default::default(),
            in_frame: Default::default(),
        }
    }
}

impl Logic for LinkCore {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, cmd, flags, crc, cnt, acc, status, err, idle, sidx, outw, rlen, wb,
            widx, crc_errors, overruns, timeouts, blocks
        );
        self.ram.read_clock.next = self.clock.val();
        self.ram.write_clock.next = self.clock.val();

        self.sel512.next = self.flags.q.val().get_bit(2);
        self.has512.next = self.features.val().get_bit(1);
        // A SHA-512 digest word fills the 64-bit output shifter; a SHA-256 one its top half.
        self.digest_word.next = self.core_digest.val() << 32;
        if self.sel512.val() {
            self.digest_word.next = self.core_digest.val();
        }

        // Defaults: nothing offered, nothing written.
        self.rx_ready.next = false;
        self.tx_valid.next = false;
        self.tx_data.next = 0.into();
        self.core_valid.next = false;
        self.core_data.next = self.ram.read_data.val();
        self.core_first.next = self.flags.q.val().get_bit(0) & (self.sidx.q.val() == 0);
        self.core_sel512.next = self.sel512.val();
        self.core_digest_sel.next = self.widx.q.val();
        self.ram.read_address.next = self.sidx.q.val();
        self.ram.write_enable.next = false;
        self.acc_new.next = (self.acc.q.val() << 8) | bit_cast::<64, 8>(self.rx_data.val());
        self.ram.write_data.next = self.acc_new.val();
        self.ram.write_address.next = bit_cast::<4, 8>(self.cnt.q.val() >> 2);
        self.word_done.next = (self.cnt.q.val() & 3) == 3;
        self.last_byte.next = bits::<8>(63_u64);
        if self.sel512.val() {
            self.ram.write_address.next = bit_cast::<4, 8>(self.cnt.q.val() >> 3);
            self.word_done.next = (self.cnt.q.val() & 7) == 7;
            self.last_byte.next = bits::<8>(127_u64);
        }

        // The response byte on offer.
        match self.state.q.val() {
            LinkState::RespSync => {
                self.tx_valid.next = true;
                self.tx_data.next = bits::<8>(0x5a_u64);
            }
            LinkState::RespStatus => {
                self.tx_valid.next = true;
                self.tx_data.next = self.status.q.val();
            }
            LinkState::RespPayload => {
                self.tx_valid.next = true;
                self.tx_data.next = bit_cast::<8, 64>(self.outw.q.val() >> 56);
            }
            LinkState::RespCrc => {
                self.tx_valid.next = true;
                self.tx_data.next = self.crc.q.val();
            }
            _ => {}
        }

        // CRC-8 (polynomial 0x07) of the running value and one byte, bit-serially unrolled.
        self.crc_byte.next = self.rx_data.val();
        if self.tx_valid.val() {
            self.crc_byte.next = self.tx_data.val();
        }
        self.crc_t.next = self.crc.q.val() ^ self.crc_byte.val();
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }
        if self.crc_t.val().get_bit(7) {
            self.crc_t.next = (self.crc_t.val() << 1) ^ 7;
        } else {
            self.crc_t.next = self.crc_t.val() << 1;
        }

        // Receiving: inside a frame the idle timer runs; a silent line ends the frame.
        self.in_frame.next = (self.state.q.val() == LinkState::Cmd)
            | (self.state.q.val() == LinkState::Flags)
            | (self.state.q.val() == LinkState::Payload)
            | (self.state.q.val() == LinkState::CheckCrc)
            | (self.state.q.val() == LinkState::Drain);
        // After an error response the rest of a bad frame is ignored, not an overrun.
        self.rx_ready.next = self.in_frame.val()
            | (self.state.q.val() == LinkState::Idle)
            | (self.err.q.val()
                & ((self.state.q.val() == LinkState::RespSync)
                    | (self.state.q.val() == LinkState::RespStatus)
                    | (self.state.q.val() == LinkState::RespCrc)));
        if self.rx_valid.val() {
            self.idle.d.next = 0.into();
        } else if self.in_frame.val() {
            self.idle.d.next = self.idle.q.val() + 1;
            if self.idle.q.val() == self.timeout.val() {
                self.state.d.next = LinkState::Idle;
                if self.state.q.val() != LinkState::Drain {
                    self.timeouts.d.next = self.timeouts.q.val() + 1;
                }
            }
        }
        if self.rx_valid.val() & !self.rx_ready.val() {
            self.overruns.d.next = self.overruns.q.val() + 1;
        }

        match self.state.q.val() {
            LinkState::Idle => {
                if self.rx_valid.val() & (self.rx_data.val() == 0xa5) {
                    self.crc.d.next = 0.into();
                    self.state.d.next = LinkState::Cmd;
                }
            }
            LinkState::Cmd => {
                if self.rx_valid.val() {
                    self.cmd.d.next = self.rx_data.val();
                    self.flags.d.next = 0.into();
                    self.crc.d.next = self.crc_t.val();
                    if (self.rx_data.val() == 0x56) | (self.rx_data.val() == 0x3f) {
                        self.state.d.next = LinkState::CheckCrc;
                    } else if (self.rx_data.val() == 0x4c)
                        | (self.rx_data.val() == 0x53)
                        | (self.rx_data.val() == 0x44)
                    {
                        self.state.d.next = LinkState::Flags;
                    } else {
                        self.status.d.next = bits::<8>(2_u64);
                        self.err.d.next = true;
                        self.rlen.d.next = 0.into();
                        self.state.d.next = LinkState::RespSync;
                    }
                }
            }
            LinkState::Flags => {
                if self.rx_valid.val() {
                    self.flags.d.next = self.rx_data.val();
                    self.crc.d.next = self.crc_t.val();
                    self.cnt.d.next = 0.into();
                    if self.cmd.q.val() == 0x4c {
                        self.state.d.next = LinkState::Payload;
                    } else {
                        self.state.d.next = LinkState::CheckCrc;
                    }
                }
            }
            LinkState::Payload => {
                if self.rx_valid.val() {
                    self.crc.d.next = self.crc_t.val();
                    self.acc.d.next = self.acc_new.val();
                    self.cnt.d.next = self.cnt.q.val() + 1;
                    if self.word_done.val() {
                        self.ram.write_enable.next = true;
                    }
                    if self.cnt.q.val() == self.last_byte.val() {
                        self.state.d.next = LinkState::CheckCrc;
                    }
                }
            }
            LinkState::CheckCrc => {
                if self.rx_valid.val() {
                    self.rlen.d.next = 0.into();
                    if self.rx_data.val() != self.crc.q.val() {
                        self.crc_errors.d.next = self.crc_errors.q.val() + 1;
                        self.status.d.next = bits::<8>(1_u64);
                        self.err.d.next = true;
                        self.state.d.next = LinkState::RespSync;
                    } else if self.sel512.val() & !self.has512.val() {
                        self.status.d.next = bits::<8>(3_u64);
                        self.err.d.next = false;
                        self.state.d.next = LinkState::RespSync;
                    } else {
                        self.status.d.next = 0.into();
                        self.err.d.next = false;
                        self.state.d.next = LinkState::Exec;
                    }
                }
            }
            LinkState::Exec => {
                self.widx.d.next = 0.into();
                self.state.d.next = LinkState::RespSync;
                if self.cmd.q.val() == 0x56 {
                    self.outw.d.next = bits::<64>(0x4350_4346_0100_0000_u64)
                        | (bit_cast::<64, 8>(self.features.val()) << 16)
                        | (bit_cast::<64, 8>(self.clock_mhz.val()) << 8);
                    self.rlen.d.next = bits::<8>(7_u64);
                    self.wb.d.next = bits::<4>(8_u64);
                }
                if self.cmd.q.val() == 0x3f {
                    self.outw.d.next = (bit_cast::<64, 1>(self.core_busy.val().into()) << 56)
                        | (bit_cast::<64, 1>(self.core_digest_valid.val().into()) << 57)
                        | (bit_cast::<64, 8>(self.crc_errors.q.val()) << 48)
                        | (bit_cast::<64, 8>(self.overruns.q.val()) << 40)
                        | (bit_cast::<64, 8>(self.timeouts.q.val()) << 32)
                        | bit_cast::<64, 32>(self.blocks.q.val());
                    self.rlen.d.next = bits::<8>(8_u64);
                    self.wb.d.next = bits::<4>(8_u64);
                }
                if (self.cmd.q.val() == 0x53)
                    | ((self.cmd.q.val() == 0x4c) & self.flags.q.val().get_bit(1))
                {
                    self.state.d.next = LinkState::StreamPrime;
                }
                if self.cmd.q.val() == 0x44 {
                    self.state.d.next = LinkState::WaitIdle;
                }
            }
            LinkState::StreamPrime => {
                // The block RAM answers a cycle after its address.
                self.sidx.d.next = 0.into();
                self.ram.read_address.next = 0.into();
                self.state.d.next = LinkState::Stream;
            }
            LinkState::Stream => {
                self.core_valid.next = true;
                if self.core_ready.val() {
                    self.sidx.d.next = self.sidx.q.val() + 1;
                    self.ram.read_address.next = self.sidx.q.val() + 1;
                    if self.sidx.q.val() == 15 {
                        self.blocks.d.next = self.blocks.q.val() + 1;
                        self.sidx.d.next = 0.into();
                        self.state.d.next = LinkState::RespSync;
                    }
                }
            }
            LinkState::WaitIdle => {
                if !self.core_busy.val() {
                    self.outw.d.next = self.digest_word.val();
                    self.widx.d.next = 1.into();
                    self.wb.d.next = bits::<4>(4_u64);
                    self.rlen.d.next = bits::<8>(32_u64);
                    if self.sel512.val() {
                        self.wb.d.next = bits::<4>(8_u64);
                        self.rlen.d.next = bits::<8>(64_u64);
                    }
                    self.state.d.next = LinkState::RespSync;
                }
            }
            LinkState::RespSync => {
                if self.tx_ready.val() {
                    self.crc.d.next = 0.into();
                    self.state.d.next = LinkState::RespStatus;
                }
            }
            LinkState::RespStatus => {
                if self.tx_ready.val() {
                    self.crc.d.next = self.crc_t.val();
                    if self.rlen.q.val() == 0 {
                        self.state.d.next = LinkState::RespCrc;
                    } else {
                        self.state.d.next = LinkState::RespPayload;
                    }
                }
            }
            LinkState::RespPayload => {
                if self.tx_ready.val() {
                    self.crc.d.next = self.crc_t.val();
                    self.outw.d.next = self.outw.q.val() << 8;
                    self.rlen.d.next = self.rlen.q.val() - 1;
                    self.wb.d.next = self.wb.q.val() - 1;
                    if self.rlen.q.val() == 1 {
                        self.state.d.next = LinkState::RespCrc;
                    } else if self.wb.q.val() == 1 {
                        self.outw.d.next = self.digest_word.val();
                        self.widx.d.next = self.widx.q.val() + 1;
                        self.wb.d.next = bits::<4>(4_u64);
                        if self.sel512.val() {
                            self.wb.d.next = bits::<4>(8_u64);
                        }
                    }
                }
            }
            LinkState::RespCrc => {
                if self.tx_ready.val() {
                    self.idle.d.next = 0.into();
                    if self.err.q.val() {
                        self.state.d.next = LinkState::Drain;
                    } else {
                        self.state.d.next = LinkState::Idle;
                    }
                }
            }
            LinkState::Drain => {}
        }
    }
}

/// The parameters of the SHA-256 link at `clock_mhz`.
pub fn params_256(clock_mhz: u8, frame_timeout: u32) -> LinkParams {
    LinkParams {
        features: protocol::FEATURE_SHA256,
        clock_mhz,
        frame_timeout,
    }
}

/// The parameters of the SHA-256 + SHA-512 link at `clock_mhz`.
pub fn params_dual(clock_mhz: u8, frame_timeout: u32) -> LinkParams {
    LinkParams {
        features: protocol::FEATURE_SHA256 | protocol::FEATURE_SHA512,
        clock_mhz,
        frame_timeout,
    }
}

/// A link and the SHA-256 core behind byte ports.
#[derive(LogicBlock)]
pub struct Engine256 {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A received byte.
    pub rx_data: Signal<In, Bits<8>>,
    /// `rx_data` is new this cycle.
    pub rx_valid: Signal<In, Bit>,
    /// The engine consumes a byte this cycle.
    pub rx_ready: Signal<Out, Bit>,
    /// A byte to send.
    pub tx_data: Signal<Out, Bits<8>>,
    /// `tx_data` holds a byte to send.
    pub tx_valid: Signal<Out, Bit>,
    /// The sender takes `tx_data` this cycle.
    pub tx_ready: Signal<In, Bit>,
    link: LinkCore,
    sha256: Sha256Core,
}

impl Engine256 {
    /// An engine with these link parameters.
    pub fn new(params: LinkParams) -> Self {
        Self {
            clock: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            rx_ready: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            link: LinkCore::new(params),
            sha256: Default::default(),
        }
    }
}

impl Logic for Engine256 {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, link, sha256);
        self.link.rx_data.next = self.rx_data.val();
        self.link.rx_valid.next = self.rx_valid.val();
        self.rx_ready.next = self.link.rx_ready.val();
        self.tx_data.next = self.link.tx_data.val();
        self.tx_valid.next = self.link.tx_valid.val();
        self.link.tx_ready.next = self.tx_ready.val();
        self.sha256.in_data.next = bit_cast::<32, 64>(self.link.core_data.val());
        self.sha256.in_valid.next = self.link.core_valid.val();
        self.sha256.in_first.next = self.link.core_first.val();
        self.link.core_ready.next = self.sha256.in_ready.val();
        self.sha256.digest_sel.next = self.link.core_digest_sel.val();
        self.link.core_digest.next = bit_cast::<64, 32>(self.sha256.digest_word.val());
        self.link.core_busy.next = self.sha256.busy.val();
        self.link.core_digest_valid.next = self.sha256.digest_valid.val();
    }
}

/// A link with the SHA-256 and SHA-512 cores behind byte ports.
#[derive(LogicBlock)]
pub struct EngineDual {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A received byte.
    pub rx_data: Signal<In, Bits<8>>,
    /// `rx_data` is new this cycle.
    pub rx_valid: Signal<In, Bit>,
    /// The engine consumes a byte this cycle.
    pub rx_ready: Signal<Out, Bit>,
    /// A byte to send.
    pub tx_data: Signal<Out, Bits<8>>,
    /// `tx_data` holds a byte to send.
    pub tx_valid: Signal<Out, Bit>,
    /// The sender takes `tx_data` this cycle.
    pub tx_ready: Signal<In, Bit>,
    link: LinkCore,
    sha256: Sha256Core,
    sha512: Sha512Core,
}

impl EngineDual {
    /// An engine with these link parameters.
    pub fn new(params: LinkParams) -> Self {
        Self {
            clock: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            rx_ready: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            link: LinkCore::new(params),
            sha256: Default::default(),
            sha512: Default::default(),
        }
    }
}

impl Logic for EngineDual {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, link, sha256, sha512);
        self.link.rx_data.next = self.rx_data.val();
        self.link.rx_valid.next = self.rx_valid.val();
        self.rx_ready.next = self.link.rx_ready.val();
        self.tx_data.next = self.link.tx_data.val();
        self.tx_valid.next = self.link.tx_valid.val();
        self.link.tx_ready.next = self.tx_ready.val();
        self.sha256.in_data.next = bit_cast::<32, 64>(self.link.core_data.val());
        self.sha512.in_data.next = self.link.core_data.val();
        self.sha256.in_first.next = self.link.core_first.val();
        self.sha512.in_first.next = self.link.core_first.val();
        self.sha256.digest_sel.next = self.link.core_digest_sel.val();
        self.sha512.digest_sel.next = self.link.core_digest_sel.val();
        self.sha256.in_valid.next = self.link.core_valid.val() & !self.link.core_sel512.val();
        self.sha512.in_valid.next = self.link.core_valid.val() & self.link.core_sel512.val();
        if self.link.core_sel512.val() {
            self.link.core_ready.next = self.sha512.in_ready.val();
            self.link.core_digest.next = self.sha512.digest_word.val();
            self.link.core_busy.next = self.sha512.busy.val();
            self.link.core_digest_valid.next = self.sha512.digest_valid.val();
        } else {
            self.link.core_ready.next = self.sha256.in_ready.val();
            self.link.core_digest.next = bit_cast::<64, 32>(self.sha256.digest_word.val());
            self.link.core_busy.next = self.sha256.busy.val();
            self.link.core_digest_valid.next = self.sha256.digest_valid.val();
        }
    }
}
