//! End-to-end tests that start real `cpchain` processes: single nodes, local appliance
//! networks, crashes and restarts. Command-level tests of the binary live beside it in
//! `node/cli/tests`; this crate is for scenarios that span several processes.
