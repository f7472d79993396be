//! The cores in rust-hdl simulation against the `sha2` crate.

use cpc_hdl::protocol::{sha256_pad, sha512_pad};
use cpc_hdl::sha256::{SHA256_CYCLES_PER_BLOCK, Sha256Core};
use cpc_hdl::sha512::{SHA512_CYCLES_PER_BLOCK, Sha512Core};
use cpc_hdl::sim::Stepper;
use rand::{Rng, SeedableRng};
use sha2::Digest;

/// Hashes `msg` on the simulated core; returns the digest and the cycles per block.
fn sha256_on_core(s: &mut Stepper<Sha256Core>, msg: &[u8]) -> ([u8; 32], u64) {
    let padded = sha256_pad(msg);
    let start = s.cycles();
    for (i, word) in padded.chunks(4).enumerate() {
        s.uut.in_data.next = u64::from(u32::from_be_bytes(word.try_into().unwrap())).into();
        s.uut.in_valid.next = true;
        s.uut.in_first.next = i == 0;
        s.settle().unwrap();
        let mut guard = 0;
        while !s.uut.in_ready.val() {
            s.cycle().unwrap();
            guard += 1;
            assert!(guard < 200, "core never ready");
        }
        s.cycle().unwrap();
    }
    s.uut.in_valid.next = false;
    s.settle().unwrap();
    let mut guard = 0;
    while !s.uut.digest_valid.val() {
        s.cycle().unwrap();
        guard += 1;
        assert!(guard < 200, "core never finished");
    }
    let cycles = (s.cycles() - start) / (padded.len() as u64 / 64);
    let mut out = [0u8; 32];
    for w in 0..8 {
        s.uut.digest_sel.next = (w as u64).into();
        s.settle().unwrap();
        let v = s.uut.digest_word.val().to_u32();
        out[w * 4..w * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    (out, cycles)
}

fn fips_messages() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"abc".to_vec(),
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".to_vec(),
    ]
}

#[test]
fn sha256_core_matches_sha2() {
    let mut s = Stepper::new(Sha256Core::default()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut msgs = fips_messages();
    for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 128, 200] {
        msgs.push((0..len).map(|_| rng.r#gen()).collect());
    }
    for msg in &msgs {
        let (got, cycles) = sha256_on_core(&mut s, msg);
        let want: [u8; 32] = sha2::Sha256::digest(msg).into();
        assert_eq!(got, want, "message of {} bytes", msg.len());
        // The last block's readout wait is included; a gap-free stream is the constant.
        assert!(
            cycles <= SHA256_CYCLES_PER_BLOCK + 1,
            "{cycles} cycles per block"
        );
    }
}

fn sha512_on_core(s: &mut Stepper<Sha512Core>, msg: &[u8]) -> ([u8; 64], u64) {
    let padded = sha512_pad(msg);
    let start = s.cycles();
    for (i, word) in padded.chunks(8).enumerate() {
        s.uut.in_data.next = u64::from_be_bytes(word.try_into().unwrap()).into();
        s.uut.in_valid.next = true;
        s.uut.in_first.next = i == 0;
        s.settle().unwrap();
        let mut guard = 0;
        while !s.uut.in_ready.val() {
            s.cycle().unwrap();
            guard += 1;
            assert!(guard < 200, "core never ready");
        }
        s.cycle().unwrap();
    }
    s.uut.in_valid.next = false;
    s.settle().unwrap();
    let mut guard = 0;
    while !s.uut.digest_valid.val() {
        s.cycle().unwrap();
        guard += 1;
        assert!(guard < 200, "core never finished");
    }
    let cycles = (s.cycles() - start) / (padded.len() as u64 / 128);
    let mut out = [0u8; 64];
    for w in 0..8 {
        s.uut.digest_sel.next = (w as u64).into();
        s.settle().unwrap();
        let v = s.uut.digest_word.val().to_u64();
        out[w * 8..w * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    (out, cycles)
}

#[test]
fn sha512_core_matches_sha2() {
    let mut s = Stepper::new(Sha512Core::default()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut msgs = fips_messages();
    for len in [0usize, 1, 111, 112, 127, 128, 129, 300] {
        msgs.push((0..len).map(|_| rng.r#gen()).collect());
    }
    for msg in &msgs {
        let (got, cycles) = sha512_on_core(&mut s, msg);
        let want: [u8; 64] = sha2::Sha512::digest(msg).into();
        assert_eq!(got, want, "message of {} bytes", msg.len());
        assert!(
            cycles <= SHA512_CYCLES_PER_BLOCK + 1,
            "{cycles} cycles per block"
        );
    }
}

/// The documented cycle count: back-to-back blocks of one message, measured.
#[test]
fn cycles_per_block_are_as_documented() {
    let mut s = Stepper::new(Sha256Core::default()).unwrap();
    let msg = vec![0x61u8; 64 * 8 - 9];
    let (_, per_block) = sha256_on_core(&mut s, &msg);
    assert_eq!(per_block, SHA256_CYCLES_PER_BLOCK);
    let mut s = Stepper::new(Sha512Core::default()).unwrap();
    let msg = vec![0x61u8; 128 * 8 - 17];
    let (_, per_block) = sha512_on_core(&mut s, &msg);
    assert_eq!(per_block, SHA512_CYCLES_PER_BLOCK);
}
