//! The simulation transport: the host-link design run cycle by cycle by rust-hdl.
//!
//! Bytes go straight into the design's byte ports (no UART bit timing), so a request
//! costs about one cycle per byte plus the hashing: correct and slow, for CI and for
//! developing host software without a board. A response must arrive within a budget of
//! clock cycles, which stands in for the serial transport's wall-clock timeout.

use std::time::Duration;

use cpc_hdl::link::{Engine256, EngineDual, params_256, params_dual};
use cpc_hdl::sim::{ByteEngine, LinkSim, SettleError};
use serde::{Deserialize, Serialize};

use super::transport::{FpgaError, Transport};

/// Idle cycles after which the simulated link drops a partial request. Shorter than the
/// board's (2^16) so resynchronising costs little simulation time.
pub const SIM_FRAME_TIMEOUT: u32 = 1024;
/// Cycles a response may take before the transport reports a timeout.
pub const SIM_RESPONSE_CYCLES: u64 = 20_000;
/// The clock the simulated design reports, in MHz (the board's).
const SIM_CLOCK_MHZ: u8 = 48;

/// Which bitstream to simulate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimDesign {
    /// The SHA-256 bitstream.
    Sha256,
    /// The SHA-256 + SHA-512 bitstream.
    #[default]
    Dual,
}

enum Engine {
    Sha256(Box<LinkSim<Engine256>>),
    Dual(Box<LinkSim<EngineDual>>),
}

/// Runs the host-link design in-process; see the module documentation.
pub struct SimTransport {
    engine: Engine,
    design: SimDesign,
    response_cycles: u64,
}

fn settle_error(e: SettleError) -> FpgaError {
    FpgaError::Io(format!("simulation failed: {e}"))
}

impl SimTransport {
    /// Starts a simulation of `design`.
    pub fn new(design: SimDesign) -> Result<Self, FpgaError> {
        let engine = match design {
            SimDesign::Sha256 => Engine::Sha256(Box::new(
                LinkSim::new(Engine256::new(params_256(SIM_CLOCK_MHZ, SIM_FRAME_TIMEOUT)))
                    .map_err(settle_error)?,
            )),
            SimDesign::Dual => Engine::Dual(Box::new(
                LinkSim::new(EngineDual::new(params_dual(
                    SIM_CLOCK_MHZ,
                    SIM_FRAME_TIMEOUT,
                )))
                .map_err(settle_error)?,
            )),
        };
        Ok(Self {
            engine,
            design,
            response_cycles: SIM_RESPONSE_CYCLES,
        })
    }

    /// Clock cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        match &self.engine {
            Engine::Sha256(s) => s.cycles(),
            Engine::Dual(s) => s.cycles(),
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut dyn SimOps) -> R) -> R {
        match &mut self.engine {
            Engine::Sha256(s) => f(s.as_mut()),
            Engine::Dual(s) => f(s.as_mut()),
        }
    }
}

/// The object-safe part of [`LinkSim`].
trait SimOps {
    fn write(&mut self, bytes: &[u8]);
    fn run_until(&mut self, want: usize, max_cycles: u64) -> Result<u64, SettleError>;
    fn read(&mut self, max: usize) -> Vec<u8>;
    fn available(&self) -> usize;
}

impl<E: ByteEngine> SimOps for LinkSim<E> {
    fn write(&mut self, bytes: &[u8]) {
        LinkSim::write(self, bytes)
    }
    fn run_until(&mut self, want: usize, max_cycles: u64) -> Result<u64, SettleError> {
        LinkSim::run_until(self, want, max_cycles)
    }
    fn read(&mut self, max: usize) -> Vec<u8> {
        LinkSim::read(self, max)
    }
    fn available(&self) -> usize {
        LinkSim::available(self)
    }
}

impl Transport for SimTransport {
    fn send(&mut self, bytes: &[u8]) -> Result<(), FpgaError> {
        self.with(|s| s.write(bytes));
        Ok(())
    }

    fn recv_exact(&mut self, buf: &mut [u8], _timeout: Duration) -> Result<(), FpgaError> {
        let budget = self.response_cycles;
        let want = buf.len();
        let got = self.with(|s| -> Result<Vec<u8>, FpgaError> {
            s.run_until(want, budget).map_err(settle_error)?;
            Ok(s.read(want))
        })?;
        if got.len() < want {
            return Err(FpgaError::Timeout {
                waited_ms: 0,
                got: got.len(),
                want,
            });
        }
        buf.copy_from_slice(&got);
        Ok(())
    }

    fn resync(&mut self) -> Result<(), FpgaError> {
        let cycles = u64::from(SIM_FRAME_TIMEOUT) + 64;
        self.with(|s| -> Result<(), FpgaError> {
            s.run_until(usize::MAX, cycles).map_err(settle_error)?;
            let n = s.available();
            s.read(n);
            Ok(())
        })
    }

    fn describe(&self) -> String {
        let design = match self.design {
            SimDesign::Sha256 => "sha256",
            SimDesign::Dual => "sha256+sha512",
        };
        format!("sim: rust-hdl cycle simulation of the {design} host link")
    }
}
