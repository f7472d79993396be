//! The differential suite every device backend must pass: each operation on the device
//! against the CPU reference, on random batches and on adversarial ZIP-215 inputs.

#![allow(dead_code, unreachable_pub)]

pub mod field;
pub mod host_cuda;

use cpc_accel::cpu::{CpuBackend, CpuConfig, ed25519_verify_one};
use cpc_accel::vectors::{self, NOT_A_POINT, small_order_encodings};
use cpc_accel::{Accelerator, Digest, SigItem, merkle};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::{EdwardsPoint, Scalar};
use ed25519_consensus::SigningKey;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest as _, Sha512};

pub fn cpu() -> CpuBackend {
    CpuBackend::new(CpuConfig { threads: 1 }).unwrap()
}

/// An owned signature item.
#[derive(Clone, Debug)]
pub struct Owned {
    pub what: String,
    pub pk: [u8; 32],
    pub sig: [u8; 64],
    pub msg: Vec<u8>,
}

impl Owned {
    pub fn item(&self) -> SigItem<'_> {
        SigItem {
            public_key: self.pk,
            signature: self.sig,
            message: &self.msg,
        }
    }
}

/// Compares a device's verdicts with the reference, item by item, naming the first
/// mismatches.
pub fn assert_same_verdicts(dev: &dyn Accelerator, items: &[Owned]) -> (usize, usize) {
    let refs: Vec<SigItem<'_>> = items.iter().map(Owned::item).collect();
    let got = dev.ed25519_verify_batch(&refs).expect("the device answers");
    assert_eq!(got.len(), items.len(), "one verdict per item");
    let mut bad = Vec::new();
    let mut valid = 0;
    for (i, (item, &v)) in items.iter().zip(&got).enumerate() {
        let want = ed25519_verify_one(&item.item());
        valid += usize::from(want);
        if v != want {
            bad.push(format!(
                "#{i} {}: device {v}, cpu {want} (pk {}, sig {})",
                item.what,
                hex::encode(item.pk),
                hex::encode(item.sig)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} verdicts differ from the CPU reference:\n{}",
        bad.len(),
        items.len(),
        bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    (valid, items.len() - valid)
}

fn random_msg(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max);
    let mut m = vec![0u8; len];
    rng.fill_bytes(&mut m);
    m
}

/// `n` random items: three quarters valid, the rest corrupted in assorted ways.
pub fn random_items(seed: u64, n: usize) -> Vec<Owned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let sk = SigningKey::new(&mut rng);
            let mut msg = random_msg(&mut rng, 300);
            let mut sig = sk.sign(&msg).to_bytes();
            let mut pk = sk.verification_key().to_bytes();
            let what = match i % 8 {
                0..=5 => "valid",
                6 => match rng.gen_range(0..4) {
                    0 => {
                        msg.push(1);
                        "message changed"
                    }
                    1 => {
                        sig[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8);
                        "R bit flipped"
                    }
                    2 => {
                        sig[32 + rng.gen_range(0..31)] ^= 1 << rng.gen_range(0..8);
                        "S bit flipped"
                    }
                    _ => {
                        pk[rng.gen_range(0..32)] ^= 1 << rng.gen_range(0..8);
                        "A bit flipped"
                    }
                },
                _ => {
                    rng.fill_bytes(&mut sig);
                    "random signature"
                }
            };
            Owned {
                what: what.to_owned(),
                pk,
                sig,
                msg,
            }
        })
        .collect()
}

fn le(s: &Scalar) -> [u8; 32] {
    s.to_bytes()
}

fn add_le(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    (carry == 0).then_some(out)
}

const L_BYTES: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// A signature made from scalars directly, so keys and nonces can carry torsion:
/// `A = aB + T_a`, `R = rB + T_r`, `S = r + k a` with `k` hashed over the given encodings.
fn forged(
    a: Scalar,
    t_a: EdwardsPoint,
    r: Scalar,
    t_r: EdwardsPoint,
    msg: &[u8],
) -> ([u8; 32], [u8; 64]) {
    let big_a = (ED25519_BASEPOINT_POINT * a + t_a).compress().to_bytes();
    let big_r = (ED25519_BASEPOINT_POINT * r + t_r).compress().to_bytes();
    let h: [u8; 64] = Sha512::new()
        .chain_update(big_r)
        .chain_update(big_a)
        .chain_update(msg)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&h);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(&le(&s));
    (big_a, sig)
}

/// y + p for y < 19 (y < 2^255 - p): the non-canonical encodings of 19 points' y, with
/// either sign bit.
fn non_canonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for y in 0u8..19 {
        // p + y = 2^255 - 19 + y: low byte 0xed + y (no carry for y < 19), 0xff..., 0x7f.
        let mut e = [0xffu8; 32];
        e[0] = 0xed + y;
        e[31] = 0x7f;
        out.push(e);
        let mut neg = e;
        neg[31] |= 0x80;
        out.push(neg);
    }
    out
}

/// Adversarial items: every case ZIP-215 singles out, each next to the rule a backend
/// could get wrong.
pub fn adversarial_items(seed: u64) -> Vec<Owned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut push = |what: String, pk: [u8; 32], sig: [u8; 64], msg: Vec<u8>| {
        out.push(Owned { what, pk, sig, msg })
    };

    // The known-answer vectors (RFC 8032, tampered variants, the small-order matrix).
    for v in vectors::ed25519_vectors() {
        push(v.name.clone(), v.public_key, v.signature, v.message.clone());
    }

    // Small-order and non-canonical encodings as A and R, with S = 0 and with random S.
    let mut encodings = small_order_encodings();
    encodings.extend(non_canonical_encodings());
    encodings.push(NOT_A_POINT);
    // x = 0 with the sign bit set: y = 1 and y = -1.
    let mut one_neg = [0u8; 32];
    one_neg[0] = 1;
    one_neg[31] = 0x80;
    encodings.push(one_neg);
    let mut minus_one_neg = [0xffu8; 32];
    minus_one_neg[0] = 0xec;
    encodings.push(minus_one_neg);
    for (i, a) in encodings.iter().enumerate() {
        for (j, r) in encodings.iter().enumerate() {
            if (i + j) % 3 != 0 {
                continue;
            }
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(r);
            let msg = random_msg(&mut rng, 40);
            push(
                format!("encodings A#{i} R#{j}, S = 0"),
                *a,
                sig,
                msg.clone(),
            );
            let s = Scalar::from_bytes_mod_order(rng.r#gen());
            sig[32..].copy_from_slice(&le(&s));
            push(format!("encodings A#{i} R#{j}, random S"), *a, sig, msg);
        }
    }

    // Torsion on A and R: valid under the cofactored equation only.
    for (t, &torsion_a) in EIGHT_TORSION.iter().enumerate() {
        for u in [0usize, 3, 4, 7] {
            let a = Scalar::from_bytes_mod_order(rng.r#gen());
            let r = Scalar::from_bytes_mod_order(rng.r#gen());
            let msg = random_msg(&mut rng, 100);
            let (pk, sig) = forged(a, torsion_a, r, EIGHT_TORSION[u], &msg);
            push(format!("torsion A+T{t}, R+T{u}"), pk, sig, msg);
        }
    }

    // The identity as A with S = r: [8]SB = [8]R holds when R = rB.
    for _ in 0..8 {
        let r = Scalar::from_bytes_mod_order(rng.r#gen());
        let msg = random_msg(&mut rng, 64);
        let big_r = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        let mut pk = [0u8; 32];
        pk[0] = 1;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(&le(&r));
        push("identity A, S = r".into(), pk, sig, msg);
    }

    // S at and around L, and S + L of valid signatures (malleability).
    for _ in 0..16 {
        let sk = SigningKey::new(&mut rng);
        let msg = random_msg(&mut rng, 200);
        let sig = sk.sign(&msg).to_bytes();
        let pk = sk.verification_key().to_bytes();
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        if let Some(s_plus_l) = add_le(&s, &L_BYTES) {
            let mut bad = sig;
            bad[32..].copy_from_slice(&s_plus_l);
            push("S + L".into(), pk, bad, msg.clone());
        }
        for (name, s) in [
            ("S = L", L_BYTES),
            ("S = L - 1", {
                let mut l = L_BYTES;
                l[0] -= 1;
                l
            }),
            ("S = L + 1", {
                let mut l = L_BYTES;
                l[0] += 1;
                l
            }),
            ("S = 2^255 - 1", {
                let mut m = [0xffu8; 32];
                m[31] = 0x7f;
                m
            }),
            ("S = 2^256 - 1", [0xffu8; 32]),
            ("S = 2^252", {
                let mut m = [0u8; 32];
                m[31] = 0x10;
                m
            }),
        ] {
            let mut bad = sig;
            bad[32..].copy_from_slice(&s);
            push(name.into(), pk, bad, msg.clone());
        }
        push("valid".into(), pk, sig, msg.clone());
        // A and R with the sign bit flipped, and the non-canonical twin of A when its y
        // is small (never for random keys) — the flips at least must agree.
        let mut flipped = pk;
        flipped[31] ^= 0x80;
        push("A sign flipped".into(), flipped, sig, msg.clone());
        let mut rflip = sig;
        rflip[31] ^= 0x80;
        push("R sign flipped".into(), pk, rflip, msg);
    }

    // Message lengths around SHA-512's block boundaries (the challenge hash).
    for len in [
        0usize, 1, 47, 48, 111, 112, 127, 128, 129, 239, 240, 1000, 4096,
    ] {
        let sk = SigningKey::new(&mut rng);
        let mut msg = vec![0u8; len];
        rng.fill_bytes(&mut msg);
        let sig = sk.sign(&msg).to_bytes();
        push(
            format!("message of {len} bytes"),
            sk.verification_key().to_bytes(),
            sig,
            msg,
        );
    }
    out
}

/// Messages of every length around SHA-256's block boundaries, and random ones.
pub fn sha_messages(seed: u64, random: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut msgs: Vec<Vec<u8>> = (0..=200)
        .map(|len| {
            let mut m = vec![0u8; len];
            rng.fill_bytes(&mut m);
            m
        })
        .collect();
    for len in [
        447usize, 448, 511, 512, 1000, 4095, 4096, 4097, 65_536, 100_003,
    ] {
        let mut m = vec![0u8; len];
        rng.fill_bytes(&mut m);
        msgs.push(m);
    }
    msgs.extend((0..random).map(|_| random_msg(&mut rng, 700)));
    msgs
}

pub fn assert_same_digests(dev: &dyn Accelerator, msgs: &[Vec<u8>]) {
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let got = dev.sha256_batch(&refs).expect("the device answers");
    let want = cpu().sha256(&refs);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            hex::encode(g),
            hex::encode(w),
            "message #{i} of {} bytes",
            msgs[i].len()
        );
    }
}

pub fn leaves(seed: u64, n: usize) -> Vec<Digest> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.r#gen()).collect()
}

pub fn assert_same_roots(dev: &dyn Accelerator, sizes: impl IntoIterator<Item = usize>) {
    for n in sizes {
        let l = leaves(n as u64, n);
        let got = dev.merkle_root(&l).expect("the device answers");
        assert_eq!(
            hex::encode(got),
            hex::encode(merkle::reference_root(&l)),
            "{n} leaves"
        );
    }
}

/// The Merkle sizes every backend is checked on: every size up to 70, powers of two and
/// their neighbours, and a few thousand.
pub fn merkle_sizes() -> Vec<usize> {
    let mut sizes: Vec<usize> = (0..=70).collect();
    for k in 7..=12 {
        sizes.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
    }
    sizes.push(5000);
    sizes
}

/// Known answers through the backend, as `cpchain accel selftest` runs them.
pub fn assert_selftest(dev: &dyn Accelerator) {
    let report = vectors::selftest(dev);
    assert!(report.passed(), "selftest failures: {:?}", report.failures);
}
