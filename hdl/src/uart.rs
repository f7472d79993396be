//! A UART (8 data bits, no parity, 1 stop bit), the board's link to the host.
//!
//! The bit period is a whole number of clocks (`clocks_per_bit`, at least 4), fixed when
//! the design is built: 48 MHz / 3 Mbaud = 16 on the iCE40 boards.

use rust_hdl::prelude::*;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
enum RxState {
    Idle,
    Start,
    Data,
    Stop,
}

/// The receiver: samples the line in the middle of each bit and strobes `valid` for one
/// cycle per byte. A byte without its stop bit (a framing error) is dropped.
#[derive(LogicBlock)]
pub struct UartRx {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// The serial line (idle high).
    pub rx: Signal<In, Bit>,
    /// The byte received.
    pub data: Signal<Out, Bits<8>>,
    /// High for one cycle when `data` holds a new byte.
    pub valid: Signal<Out, Bit>,
    sync0: DFF<Bit>,
    sync1: DFF<Bit>,
    state: DFF<RxState>,
    timer: DFF<Bits<16>>,
    bit: DFF<Bits<3>>,
    shift: DFF<Bits<8>>,
    strobe: DFF<Bit>,
    period: Constant<Bits<16>>,
    half: Constant<Bits<16>>,
    line: Signal<Local, Bits<1>>,
}

impl UartRx {
    /// A receiver for a bit period of `clocks_per_bit` clocks.
    pub fn new(clocks_per_bit: u16) -> Self {
        assert!(clocks_per_bit >= 4, "a bit must last at least 4 clocks");
        Self {
            clock: Default::default(),
            rx: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            sync0: Default::default(),
            sync1: Default::default(),
            state: Default::default(),
            timer: Default::default(),
            bit: Default::default(),
            shift: Default::default(),
            strobe: Default::default(),
            period: Constant::new(u64::from(clocks_per_bit - 1).into()),
            half: Constant::new(u64::from(clocks_per_bit / 2 - 1).into()),
            line: Default::default(),
        }
    }
}

impl Logic for UartRx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, sync0, sync1, state, timer, bit, shift, strobe);
        // Two flip-flops bring the asynchronous line into the clock domain. They start high
        // (line idle) so power-up is not a start bit.
        self.sync0.d.next = !self.rx.val();
        self.sync1.d.next = self.sync0.q.val();
        self.strobe.d.next = false;
        // The line level as a 1-bit value, negated before any widening.
        self.line.next = (!self.sync1.q.val()).into();
        self.timer.d.next = self.timer.q.val() - 1;
        match self.state.q.val() {
            RxState::Idle => {
                if self.sync1.q.val() {
                    self.timer.d.next = self.half.val();
                    self.state.d.next = RxState::Start;
                }
            }
            RxState::Start => {
                if self.timer.q.val() == 0 {
                    if self.sync1.q.val() {
                        self.timer.d.next = self.period.val();
                        self.bit.d.next = 0.into();
                        self.state.d.next = RxState::Data;
                    } else {
                        // A glitch, not a start bit.
                        self.state.d.next = RxState::Idle;
                    }
                }
            }
            RxState::Data => {
                if self.timer.q.val() == 0 {
                    self.timer.d.next = self.period.val();
                    self.shift.d.next =
                        (self.shift.q.val() >> 1) | (bit_cast::<8, 1>(self.line.val()) << 7);
                    self.bit.d.next = self.bit.q.val() + 1;
                    if self.bit.q.val() == 7 {
                        self.state.d.next = RxState::Stop;
                    }
                }
            }
            RxState::Stop => {
                if self.timer.q.val() == 0 {
                    // The line is inverted in sync0/sync1: low there is a high stop bit.
                    if !self.sync1.q.val() {
                        self.strobe.d.next = true;
                    }
                    self.state.d.next = RxState::Idle;
                }
            }
        }
        self.data.next = self.shift.q.val();
        self.valid.next = self.strobe.q.val();
    }
}

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
enum TxState {
    Idle,
    Busy,
}

/// The transmitter: takes a byte when `valid` and `ready` are both high and sends it.
#[derive(LogicBlock)]
pub struct UartTx {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// The byte to send.
    pub data: Signal<In, Bits<8>>,
    /// `data` holds a byte to send.
    pub valid: Signal<In, Bit>,
    /// The transmitter is idle and takes `data` this cycle.
    pub ready: Signal<Out, Bit>,
    /// The serial line (idle high).
    pub tx: Signal<Out, Bit>,
    state: DFF<TxState>,
    timer: DFF<Bits<16>>,
    bits: DFF<Bits<4>>,
    // Start bit, 8 data bits and the stop bit, sent LSB first; stored inverted so the
    // all-zero power-up value is an idle (high) line.
    shift: DFF<Bits<10>>,
    period: Constant<Bits<16>>,
    // Negated at 8 bits before widening: in Verilog `~` inside a wider expression would
    // negate the zero extension too.
    inverted: Signal<Local, Bits<8>>,
}

impl UartTx {
    /// A transmitter for a bit period of `clocks_per_bit` clocks.
    pub fn new(clocks_per_bit: u16) -> Self {
        assert!(clocks_per_bit >= 4, "a bit must last at least 4 clocks");
        Self {
            clock: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            ready: Default::default(),
            tx: Default::default(),
            state: Default::default(),
            timer: Default::default(),
            bits: Default::default(),
            shift: Default::default(),
            period: Constant::new(u64::from(clocks_per_bit - 1).into()),
            inverted: Default::default(),
        }
    }
}

impl Logic for UartTx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, timer, bits, shift);
        self.ready.next = false;
        self.inverted.next = !self.data.val();
        self.timer.d.next = self.timer.q.val() - 1;
        match self.state.q.val() {
            TxState::Idle => {
                self.ready.next = true;
                self.shift.d.next = 0.into();
                if self.valid.val() {
                    // Inverted frame: start bit 1, data inverted, stop bit 0.
                    self.shift.d.next =
                        (bit_cast::<10, 8>(self.inverted.val()) << 1) | bits::<10>(1_u64);
                    self.timer.d.next = self.period.val();
                    self.bits.d.next = 0.into();
                    self.state.d.next = TxState::Busy;
                }
            }
            TxState::Busy => {
                if self.timer.q.val() == 0 {
                    self.timer.d.next = self.period.val();
                    self.shift.d.next = self.shift.q.val() >> 1;
                    self.bits.d.next = self.bits.q.val() + 1;
                    if self.bits.q.val() == 9 {
                        self.state.d.next = TxState::Idle;
                    }
                }
            }
        }
        self.tx.next = !self.shift.q.val().get_bit(0);
    }
}
