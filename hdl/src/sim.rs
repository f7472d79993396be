//! Cycle-by-cycle simulation of the designs of this crate, in-process.
//!
//! rust-hdl's own `Simulation` runs testbenches on threads and hands the circuit between
//! them at every event; stepping the clock directly is an order of magnitude faster and is
//! all a host transport needs.

use rust_hdl::prelude::*;

/// Most delta cycles allowed for a design to settle after a clock edge.
const MAX_DELTAS: usize = 256;

/// A design with one clock that [`Stepper`] can drive.
pub trait Clocked: Block {
    /// The design's clock input.
    fn clock_mut(&mut self) -> &mut Signal<In, Clock>;
}

/// Why a simulation could not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleError;

impl std::fmt::Display for SettleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the design did not settle after a clock edge (combinational loop)")
    }
}

impl std::error::Error for SettleError {}

/// Owns a design and advances it one clock cycle at a time.
pub struct Stepper<T: Clocked> {
    /// The design; set its inputs' `next`, call [`Stepper::cycle`], read its outputs.
    pub uut: T,
    cycles: u64,
}

impl<T: Clocked> Stepper<T> {
    /// Connects the design and settles it with the clock low.
    pub fn new(mut uut: T) -> Result<Self, SettleError> {
        uut.connect_all();
        if !simulate(&mut uut, MAX_DELTAS) {
            return Err(SettleError);
        }
        Ok(Self { uut, cycles: 0 })
    }

    /// Propagates input changes without a clock edge.
    pub fn settle(&mut self) -> Result<(), SettleError> {
        if simulate(&mut self.uut, MAX_DELTAS) {
            Ok(())
        } else {
            Err(SettleError)
        }
    }

    /// One rising and one falling clock edge.
    pub fn cycle(&mut self) -> Result<(), SettleError> {
        self.uut.clock_mut().next = true.into();
        self.settle()?;
        self.uut.clock_mut().next = false.into();
        self.settle()?;
        self.cycles += 1;
        Ok(())
    }

    /// Clock cycles run so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }
}

/// A design with the byte ports of [`crate::link::LinkCore`].
pub trait ByteEngine: Clocked {
    /// Whether the design consumes a byte this cycle.
    fn rx_ready(&self) -> bool;
    /// Offers a byte (or nothing) this cycle.
    fn offer(&mut self, byte: Option<u8>);
    /// The byte the design sends this cycle, if any; the sender always takes it.
    fn take(&mut self) -> Option<u8>;
}

macro_rules! byte_engine {
    ($($t:ty),*) => {$(
        impl ByteEngine for $t {
            fn rx_ready(&self) -> bool {
                self.rx_ready.val()
            }
            fn offer(&mut self, byte: Option<u8>) {
                self.rx_valid.next = byte.is_some();
                self.rx_data.next = u64::from(byte.unwrap_or(0)).into();
                self.tx_ready.next = true;
            }
            fn take(&mut self) -> Option<u8> {
                self.tx_valid.val().then(|| self.tx_data.val().to_u8())
            }
        }
    )*};
}

byte_engine!(crate::link::Engine256, crate::link::EngineDual);

/// Runs a byte-port design: bytes written go in as fast as the design takes them, bytes
/// it sends are collected.
pub struct LinkSim<E: ByteEngine> {
    stepper: Stepper<E>,
    pending: std::collections::VecDeque<u8>,
    output: std::collections::VecDeque<u8>,
}

impl<E: ByteEngine> LinkSim<E> {
    /// Starts the design.
    pub fn new(engine: E) -> Result<Self, SettleError> {
        Ok(Self {
            stepper: Stepper::new(engine)?,
            pending: Default::default(),
            output: Default::default(),
        })
    }

    /// Queues bytes for the design.
    pub fn write(&mut self, bytes: &[u8]) {
        self.pending.extend(bytes);
    }

    /// Runs until at least `want` bytes have been sent by the design and nothing is left to
    /// send it, or `max_cycles` cycles have run; returns the cycles run.
    pub fn run_until(&mut self, want: usize, max_cycles: u64) -> Result<u64, SettleError> {
        let mut ran = 0;
        while ran < max_cycles && (self.output.len() < want || !self.pending.is_empty()) {
            let offer = if self.stepper.uut.rx_ready() {
                self.pending.front().copied()
            } else {
                None
            };
            self.stepper.uut.offer(offer);
            self.stepper.settle()?;
            if let Some(b) = self.stepper.uut.take() {
                self.output.push_back(b);
            }
            if offer.is_some() {
                self.pending.pop_front();
            }
            self.stepper.cycle()?;
            ran += 1;
        }
        self.stepper.uut.offer(None);
        self.stepper.settle()?;
        Ok(ran)
    }

    /// Removes and returns up to `max` bytes the design has sent.
    pub fn read(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.output.len());
        self.output.drain(..n).collect()
    }

    /// Bytes sent by the design and not yet read.
    pub fn available(&self) -> usize {
        self.output.len()
    }

    /// Clock cycles run so far.
    pub fn cycles(&self) -> u64 {
        self.stepper.cycles()
    }
}
