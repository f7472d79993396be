//! Consensus of the main chain, as pure state machines: events in, decisions out, no
//! sockets, disks or clocks.
//!
//! - Layer 1, the election: [`vrf`] implements ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381),
//!   and [`election`] turns the candidates' tickets — VRF proofs over the term seed — into a
//!   committee by credit and lucky value. Every node verifies every ticket and derives the
//!   same committee.
//! - Layer 2, agreement inside the committee: [`bft`] is a Simplex-style protocol
//!   (propose, notarize, finalize, nullify on timeout) tested in a seeded simulator with
//!   delays, drops, partitions, crashes and Byzantine members.

pub mod bft;
pub mod credit;
pub mod election;
pub mod vrf;
