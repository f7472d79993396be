//! Consensus of the main chain, as pure state machines: events in, decisions out, no
//! sockets, disks or clocks.
//!
//! This crate holds layer 1, the election: [`vrf`] implements
//! ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381), and [`election`] turns the candidates'
//! tickets — VRF proofs over the term seed — into a committee by credit and lucky value.
//! Every node verifies every ticket and derives the same committee.

pub mod election;
pub mod vrf;
