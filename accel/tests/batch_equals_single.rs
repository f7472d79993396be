//! Property tests: batch verdicts equal single verdicts, and parallel hashing equals the
//! sequential reference, on random inputs with adversarial items mixed in.

mod common;

use cpc_accel::cpu::{CpuBackend, CpuConfig, ed25519_verify_one, sha256_one};
use cpc_accel::vectors::{NOT_A_POINT, add_order, small_order_encodings};
use cpc_accel::{SigItem, merkle};
use ed25519_consensus::SigningKey;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to do to the i-th signature.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    None,
    WrongKey,
    FlipMessageBit,
    FlipSignatureBit,
    NonCanonicalS,
    SmallOrderA,
    SmallOrderR,
    SmallOrderBoth,
    KeyNotAPoint,
}

const CORRUPTIONS: [Corruption; 9] = [
    Corruption::None,
    Corruption::WrongKey,
    Corruption::FlipMessageBit,
    Corruption::FlipSignatureBit,
    Corruption::NonCanonicalS,
    Corruption::SmallOrderA,
    Corruption::SmallOrderR,
    Corruption::SmallOrderBoth,
    Corruption::KeyNotAPoint,
];

struct Owned {
    pk: [u8; 32],
    sig: [u8; 64],
    msg: Vec<u8>,
}

fn make_batch(seed: u64, kinds: &[usize]) -> Vec<Owned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let small = small_order_encodings();
    kinds
        .iter()
        .map(|&k| {
            let sk = SigningKey::new(&mut rng);
            let len = rng.gen_range(0..200);
            let mut msg: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let mut sig = sk.sign(&msg).to_bytes();
            let mut pk = sk.verification_key().to_bytes();
            let so = small[rng.gen_range(0..small.len())];
            match CORRUPTIONS[k] {
                Corruption::None => {}
                Corruption::WrongKey => {
                    pk = SigningKey::new(&mut rng).verification_key().to_bytes()
                }
                Corruption::FlipMessageBit => {
                    if msg.is_empty() {
                        msg.push(0);
                    } else {
                        let i = rng.gen_range(0..msg.len());
                        msg[i] ^= 1 << rng.gen_range(0..8);
                    }
                }
                Corruption::FlipSignatureBit => {
                    let i = rng.gen_range(0..64);
                    sig[i] ^= 1 << rng.gen_range(0..8);
                }
                Corruption::NonCanonicalS => {
                    let mut s = [0u8; 32];
                    s.copy_from_slice(&sig[32..]);
                    sig[32..].copy_from_slice(&add_order(&s));
                }
                Corruption::SmallOrderA => pk = so,
                Corruption::SmallOrderR => sig[..32].copy_from_slice(&so),
                Corruption::SmallOrderBoth => {
                    // Valid under ZIP-215 for any message.
                    pk = so;
                    sig[..32].copy_from_slice(&small[rng.gen_range(0..small.len())]);
                    sig[32..].fill(0);
                }
                Corruption::KeyNotAPoint => pk = NOT_A_POINT,
            }
            Owned { pk, sig, msg }
        })
        .collect()
}

fn items(owned: &[Owned]) -> Vec<SigItem<'_>> {
    owned
        .iter()
        .map(|o| SigItem {
            public_key: o.pk,
            signature: o.sig,
            message: &o.msg,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn batch_verdicts_equal_single_verdicts(
        seed in any::<u64>(),
        // Mostly valid items, with each corruption appearing now and then.
        kinds in prop::collection::vec(prop_oneof![6 => Just(0usize), 4 => 1usize..9], 0..150),
        threads in 1usize..4,
    ) {
        let owned = make_batch(seed, &kinds);
        let items = items(&owned);
        let cpu = CpuBackend::new(CpuConfig { threads }).unwrap();
        let batch = cpu.ed25519(&items);
        let single: Vec<bool> = items.iter().map(ed25519_verify_one).collect();
        prop_assert_eq!(&batch, &single);
        for (k, v) in kinds.iter().zip(&batch) {
            if *k == 0 || matches!(CORRUPTIONS[*k], Corruption::SmallOrderBoth) {
                prop_assert!(*v, "a valid signature was rejected");
            }
        }
    }

    #[test]
    fn parallel_sha256_equals_one_at_a_time(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..200),
        threads in 1usize..4,
    ) {
        let cpu = CpuBackend::new(CpuConfig { threads }).unwrap();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let want: Vec<[u8; 32]> = refs.iter().map(|m| sha256_one(m)).collect();
        prop_assert_eq!(cpu.sha256(&refs), want);
    }
}

#[test]
fn a_single_bad_signature_in_a_large_batch_is_isolated() {
    // 2000 valid signatures and one bad one at every position class (start, middle, end).
    for bad in [0usize, 1000, 1999] {
        let mut kinds = vec![0usize; 2000];
        kinds[bad] = 3;
        let owned = make_batch(bad as u64, &kinds);
        let cpu = CpuBackend::new(CpuConfig { threads: 2 }).unwrap();
        let verdicts = cpu.ed25519(&items(&owned));
        for (i, v) in verdicts.iter().enumerate() {
            assert_eq!(*v, i != bad, "item {i}");
        }
    }
}

#[test]
fn the_batch_equation_gives_the_reference_verdicts_on_adversarial_inputs() {
    // Non-canonical and small-order encodings, forgeries that pass only the cofactorless
    // or only the cofactored equation: the batch path (dalek 4, AVX2 where the CPU has it)
    // must agree with ed25519-consensus item by item, whole and shuffled into valid items.
    let adversarial = common::adversarial_items(11);
    let mut mixed = common::random_items(12, 600);
    mixed.extend(adversarial.iter().cloned());
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for i in (1..mixed.len()).rev() {
        mixed.swap(i, rng.gen_range(0..=i));
    }
    for threads in [1, 2] {
        let cpu = CpuBackend::new(CpuConfig { threads }).unwrap();
        let (valid, invalid) = common::assert_same_verdicts(&cpu, &adversarial);
        assert!(valid > 0 && invalid > 0, "{valid} valid, {invalid} invalid");
        common::assert_same_verdicts(&cpu, &mixed);
    }
}

#[test]
fn cached_keys_give_the_same_verdicts() {
    // One key signs many messages; checked twice (the second time its decompression comes
    // from the cache), with some signatures corrupted and the key reused as a wrong key.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let sk = SigningKey::new(&mut rng);
    let other = SigningKey::new(&mut rng);
    let mut owned = Vec::new();
    for i in 0..300u32 {
        let msg = i.to_be_bytes().to_vec();
        let mut sig = sk.sign(&msg).to_bytes();
        let mut pk = sk.verification_key().to_bytes();
        match i % 7 {
            3 => sig[i as usize % 64] ^= 1,
            5 => pk = other.verification_key().to_bytes(),
            _ => {}
        }
        owned.push(Owned { pk, sig, msg });
    }
    let cpu = CpuBackend::new(CpuConfig { threads: 2 }).unwrap();
    let want: Vec<bool> = items(&owned).iter().map(ed25519_verify_one).collect();
    assert!(want.iter().any(|v| *v) && want.iter().any(|v| !*v));
    for _ in 0..2 {
        assert_eq!(cpu.ed25519(&items(&owned)), want);
    }
}

#[test]
fn parallel_merkle_equals_the_reference_on_large_trees() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for n in [4095usize, 4096, 4097, 10_000, 65_537] {
        let leaves: Vec<[u8; 32]> = (0..n).map(|_| rng.r#gen()).collect();
        let cpu = CpuBackend::new(CpuConfig { threads: 2 }).unwrap();
        assert_eq!(
            cpu.merkle(&leaves),
            merkle::reference_root(&leaves),
            "n={n}"
        );
    }
}
