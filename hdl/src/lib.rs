//! Hardware cores for the FPGA backend, written in rust-hdl.
//!
//! The SHA-256 and SHA-512 cores, their cycle-level simulations, the UART host-link top
//! level and Verilog emission for the iCE40 flow in `hdl/flow/` live here. The cores
//! arrive with the FPGA backend; this crate fixes their home in the workspace.
