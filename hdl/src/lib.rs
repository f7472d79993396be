//! Hardware cores for the FPGA backend, written in rust-hdl.
//!
//! - [`sha256::Sha256Core`] and [`sha512::Sha512Core`]: iterative hash cores, one round
//!   per clock, fed by a valid/ready word stream of host-padded blocks.
//! - [`uart`], [`link`], [`top`]: the host link of [`protocol`] (UART framing, a small
//!   command protocol, a block buffer in block RAM) and the top levels built from it,
//!   up to complete iCE40-HX8K designs.
//! - [`sim`]: a cycle stepper that runs any of these designs in-process; the FPGA
//!   backend's simulation transport is built on [`sim::LinkSim`].
//! - [`emit`]: Verilog of every top level (`cpchain hdl emit`) and generated
//!   self-checking testbenches for Icarus Verilog.
//!
//! `hdl/flow/build.sh` turns the emitted board designs into iCE40 bitstreams with yosys,
//! nextpnr-ice40 and icepack, and fails when a design does not fit or misses its clock.

pub mod emit;
pub mod link;
pub mod protocol;
pub mod sha256;
pub mod sha512;
pub mod sim;
pub mod top;
pub mod uart;

macro_rules! clocked {
    ($($t:ty),*) => {$(
        impl sim::Clocked for $t {
            fn clock_mut(&mut self) -> &mut rust_hdl::prelude::Signal<rust_hdl::prelude::In, rust_hdl::prelude::Clock> {
                &mut self.clock
            }
        }
    )*};
}

clocked!(
    sha256::Sha256Core,
    sha512::Sha512Core,
    link::Engine256,
    link::EngineDual,
    top::UartTop256,
    top::UartTopDual
);
