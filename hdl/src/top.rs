//! Top levels: the host link behind a UART, and the same on an iCE40 board.
//!
//! - [`UartTop256`] and [`UartTopDual`]: pins `clock`, `rx`, `tx`; the designs the
//!   generated Verilog testbench simulates.
//! - [`Hx8kTop256`] and [`Hx8kTopDual`]: the UART top behind the iCE40 PLL, which makes
//!   the 48 MHz core clock from the 12 MHz oscillator of the iCE40-HX8K breakout board
//!   (`clock` J3, UART `rx` B10 and `tx` B12 through the board's FTDI channel B, see
//!   `hdl/flow/hx8k.pcf`). The flow in `hdl/flow/` turns these into bitstreams.

use rust_hdl::prelude::*;

use crate::link::{Engine256, EngineDual, LinkParams};
use crate::uart::{UartRx, UartTx};

/// The core clock of the board tops, in MHz.
pub const BOARD_CLOCK_MHZ: u8 = 48;
/// The UART rate of the board tops, in baud.
pub const BOARD_BAUD: u32 = 3_000_000;
/// Clocks per UART bit on the boards: 48 MHz / 3 Mbaud.
pub const BOARD_CLOCKS_PER_BIT: u16 = 16;

macro_rules! uart_top {
    ($name:ident, $engine:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(LogicBlock)]
        pub struct $name {
            /// The core clock.
            pub clock: Signal<In, Clock>,
            /// UART line from the host.
            pub rx: Signal<In, Bit>,
            /// UART line to the host.
            pub tx: Signal<Out, Bit>,
            uart_rx: UartRx,
            uart_tx: UartTx,
            engine: $engine,
        }

        impl $name {
            /// A top level with a bit period of `clocks_per_bit` clocks.
            pub fn new(params: LinkParams, clocks_per_bit: u16) -> Self {
                Self {
                    clock: Default::default(),
                    rx: Default::default(),
                    tx: Default::default(),
                    uart_rx: UartRx::new(clocks_per_bit),
                    uart_tx: UartTx::new(clocks_per_bit),
                    engine: $engine::new(params),
                }
            }
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                clock!(self, clock, uart_rx, uart_tx, engine);
                self.uart_rx.rx.next = self.rx.val();
                self.engine.rx_data.next = self.uart_rx.data.val();
                self.engine.rx_valid.next = self.uart_rx.valid.val();
                self.uart_tx.data.next = self.engine.tx_data.val();
                self.uart_tx.valid.next = self.engine.tx_valid.val();
                self.engine.tx_ready.next = self.uart_tx.ready.val();
                self.tx.next = self.uart_tx.tx.val();
            }
        }
    };
}

uart_top!(
    UartTop256,
    Engine256,
    "The SHA-256 host link behind a UART."
);
uart_top!(
    UartTopDual,
    EngineDual,
    "The SHA-256 + SHA-512 host link behind a UART."
);

/// The iCE40 PLL (`SB_PLL40_CORE`) set for 12 MHz in, 48 MHz out (the values `icepll -i 12
/// -o 48` prints). The simulation model passes the clock through.
#[derive(LogicBlock, Default)]
pub struct Ice40Pll48 {
    /// The reference clock (12 MHz).
    pub clock_in: Signal<In, Clock>,
    /// The core clock (48 MHz).
    pub clock_out: Signal<Out, Clock>,
}

impl Logic for Ice40Pll48 {
    fn update(&mut self) {
        self.clock_out.next = self.clock_in.val();
    }

    fn connect(&mut self) {
        self.clock_out.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Wrapper(Wrapper {
            code: r#"
SB_PLL40_CORE #(
    .FEEDBACK_PATH("SIMPLE"),
    .DIVR(4'b0000),
    .DIVF(7'b0111111),
    .DIVQ(3'b100),
    .FILTER_RANGE(3'b001)
) pll_i (
    .REFERENCECLK(clock_in),
    .PLLOUTCORE(clock_out),
    .RESETB(1'b1),
    .BYPASS(1'b0)
);
"#
            .into(),
            cores: String::new(),
        })
    }
}

macro_rules! board_top {
    ($name:ident, $inner:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(LogicBlock)]
        pub struct $name {
            /// The board oscillator (12 MHz).
            pub clock: Signal<In, Clock>,
            /// UART line from the host.
            pub rx: Signal<In, Bit>,
            /// UART line to the host.
            pub tx: Signal<Out, Bit>,
            pll: Ice40Pll48,
            inner: $inner,
        }

        impl $name {
            /// The board design for links with these parameters.
            pub fn new(params: LinkParams) -> Self {
                Self {
                    clock: Default::default(),
                    rx: Default::default(),
                    tx: Default::default(),
                    pll: Default::default(),
                    inner: $inner::new(params, BOARD_CLOCKS_PER_BIT),
                }
            }
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                self.pll.clock_in.next = self.clock.val();
                self.inner.clock.next = self.pll.clock_out.val();
                self.inner.rx.next = self.rx.val();
                self.tx.next = self.inner.tx.val();
            }
        }
    };
}

board_top!(
    Hx8kTop256,
    UartTop256,
    "The SHA-256 accelerator for the iCE40-HX8K breakout board."
);
board_top!(
    Hx8kTopDual,
    UartTopDual,
    "The SHA-256 + SHA-512 accelerator for the iCE40-HX8K breakout board."
);
