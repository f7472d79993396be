//! A plain reference for arithmetic mod p = 2^255 - 19 (four 64-bit limbs, schoolbook),
//! to check the kernels' `field_ops` output on its own, before any curve code.

use curve25519_dalek::edwards::CompressedEdwardsY;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

type U = [u64; 4];

const P: U = [
    0xffff_ffff_ffff_ffed,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
];

fn from_le(b: &[u8; 32]) -> U {
    std::array::from_fn(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()))
}

fn to_le(u: &U) -> [u8; 32] {
    let mut b = [0u8; 32];
    for i in 0..4 {
        b[8 * i..8 * i + 8].copy_from_slice(&u[i].to_le_bytes());
    }
    b
}

fn geq(a: &U, b: &U) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

fn sub_raw(a: &U, b: &U) -> U {
    let mut out = [0u64; 4];
    let mut borrow = 0u64;
    for i in 0..4 {
        let (d, b1) = a[i].overflowing_sub(b[i]);
        let (d, b2) = d.overflowing_sub(borrow);
        out[i] = d;
        borrow = u64::from(b1 || b2);
    }
    out
}

/// Reduces a 512-bit value (eight limbs) mod p: 2^256 = 38.
fn reduce_wide(w: [u64; 8]) -> U {
    let mut acc = [0u128; 5];
    for i in 0..4 {
        acc[i] += u128::from(w[i]) + u128::from(w[i + 4]) * 38;
    }
    let mut limbs = [0u64; 5];
    let mut carry = 0u128;
    for i in 0..4 {
        let v = acc[i] + carry;
        limbs[i] = v as u64;
        carry = v >> 64;
    }
    limbs[4] = carry as u64;
    // Fold the fifth limb (times 2^256 = 38), then bit 255 (2^255 = 19), then subtract p.
    let mut v = [limbs[0], limbs[1], limbs[2], limbs[3]];
    let mut extra = u128::from(limbs[4]) * 38;
    for limb in &mut v {
        let s = u128::from(*limb) + extra;
        *limb = s as u64;
        extra = s >> 64;
    }
    v[0] = v[0].wrapping_add((extra as u64) * 38);
    for _ in 0..2 {
        let top = v[3] >> 63;
        v[3] &= !(1 << 63);
        let mut c = u128::from(top * 19);
        for limb in &mut v {
            let s = u128::from(*limb) + c;
            *limb = s as u64;
            c = s >> 64;
        }
    }
    if geq(&v, &P) { sub_raw(&v, &P) } else { v }
}

pub fn reduce(a: &[u8; 32]) -> [u8; 32] {
    let u = from_le(a);
    to_le(&reduce_wide([u[0], u[1], u[2], u[3], 0, 0, 0, 0]))
}

pub fn mul(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (x, y) = (from_le(a), from_le(b));
    let mut w = [0u128; 8];
    for i in 0..4 {
        let mut carry = 0u128;
        for j in 0..4 {
            let t = u128::from(x[i]) * u128::from(y[j]) + w[i + j] + carry;
            w[i + j] = t & u128::from(u64::MAX);
            carry = t >> 64;
        }
        w[i + 4] += carry;
    }
    to_le(&reduce_wide(std::array::from_fn(|i| w[i] as u64)))
}

pub fn add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (x, y) = (from_le(&reduce(a)), from_le(&reduce(b)));
    let mut out = [0u64; 4];
    let mut carry = 0u128;
    for i in 0..4 {
        let s = u128::from(x[i]) + u128::from(y[i]) + carry;
        out[i] = s as u64;
        carry = s >> 64;
    }
    to_le(&reduce_wide([out[0], out[1], out[2], out[3], 0, 0, 0, 0]))
}

pub fn neg(a: &[u8; 32]) -> [u8; 32] {
    let x = from_le(&reduce(a));
    if x == [0; 4] {
        return [0; 32];
    }
    to_le(&sub_raw(&P, &x))
}

pub fn sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    add(a, &neg(b))
}

pub fn pow(a: &[u8; 32], e: &[u8; 32]) -> [u8; 32] {
    let mut r = {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    };
    for bit in (0..256).rev() {
        r = mul(&r, &r);
        if (e[bit / 8] >> (bit % 8)) & 1 == 1 {
            r = mul(&r, a);
        }
    }
    r
}

/// (p - 5) / 8 = 2^252 - 3.
pub fn p58() -> [u8; 32] {
    let mut e = [0xffu8; 32];
    e[0] = 0xfd;
    e[31] = 0x0f;
    e
}

/// Inputs for `field_ops`: special values against each other, then random pairs.
pub fn field_inputs(seed: u64, random: usize) -> Vec<([u8; 32], [u8; 32])> {
    let mut specials: Vec<[u8; 32]> = Vec::new();
    let small = |v: u8| {
        let mut b = [0u8; 32];
        b[0] = v;
        b
    };
    specials.extend([small(0), small(1), small(2), small(19)]);
    let p = to_le(&P);
    specials.push(p);
    let mut p_minus_1 = p;
    p_minus_1[0] -= 1;
    specials.push(p_minus_1);
    let mut p_plus_1 = p;
    p_plus_1[0] += 1;
    specials.push(p_plus_1);
    let mut top = [0xffu8; 32];
    top[31] = 0x7f;
    specials.push(top); // 2^255 - 1
    specials.push([0xff; 32]); // 2^256 - 1
    let mut two_255 = [0u8; 32];
    two_255[31] = 0x80;
    specials.push(two_255);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pairs = Vec::new();
    for a in &specials {
        for b in &specials {
            pairs.push((*a, *b));
        }
    }
    for _ in 0..random {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);
        pairs.push((a, b));
    }
    pairs
}

pub fn pack(pairs: &[([u8; 32], [u8; 32])]) -> Vec<u32> {
    let mut words = Vec::with_capacity(pairs.len() * 16);
    for (a, b) in pairs {
        for half in [a, b] {
            words.extend(
                half.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap())),
            );
        }
    }
    words
}

fn bytes_of(words: &[u32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The x of a decoded encoding, by the same rule as curve25519-dalek, or `None`.
fn decoded_x(enc: &[u8; 32]) -> Option<[u8; 32]> {
    let ok = CompressedEdwardsY(*enc).decompress().is_some();
    let mut y = *enc;
    y[31] &= 0x7f;
    let one = {
        let mut o = [0u8; 32];
        o[0] = 1;
        o
    };
    // d = -121665 / 121666
    let d = mul(
        &neg(&{
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&121_665u32.to_le_bytes());
            b
        }),
        &pow(
            &{
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&121_666u32.to_le_bytes());
                b
            },
            &{
                // p - 2
                let mut e = to_le(&P);
                e[0] -= 2;
                e
            },
        ),
    );
    let yy = mul(&y, &y);
    let u = sub(&yy, &one);
    let v = add(&mul(&yy, &d), &one);
    let v3 = mul(&mul(&v, &v), &v);
    let v7 = mul(&mul(&v3, &v3), &v);
    let mut r = mul(&mul(&u, &v3), &pow(&mul(&u, &v7), &p58()));
    let check = mul(&v, &mul(&r, &r));
    let correct = check == reduce(&u);
    let flipped = check == neg(&u);
    assert_eq!(
        ok,
        correct || flipped,
        "reference disagrees with dalek on {}",
        hex::encode(enc)
    );
    if !ok {
        return None;
    }
    if flipped {
        // sqrt(-1) = 2^((p-1)/4)
        let mut two = [0u8; 32];
        two[0] = 2;
        let mut e = to_le(&P);
        e[0] -= 1;
        // (p - 1) / 4: shift right by 2
        let mut q = [0u8; 32];
        for i in 0..32 {
            q[i] = (e[i] >> 2) | if i + 1 < 32 { e[i + 1] << 6 } else { 0 };
        }
        r = mul(&r, &pow(&two, &q));
    }
    if r[0] & 1 == 1 {
        r = neg(&r);
    }
    if enc[31] >> 7 == 1 {
        r = neg(&r);
    }
    Some(r)
}

/// Checks the 57 output words per pair of the `field_ops` kernel against the reference.
pub fn check_field_ops(pairs: &[([u8; 32], [u8; 32])], out: &[u32]) {
    assert_eq!(out.len(), pairs.len() * 57, "57 words per pair");
    let mut bad = Vec::new();
    for (i, ((a, b), o)) in pairs.iter().zip(out.chunks_exact(57)).enumerate() {
        let want = [
            ("a*b", mul(a, b)),
            ("a^2", mul(a, a)),
            ("a+b", add(a, b)),
            ("a-b", sub(a, b)),
            ("a^((p-5)/8)", pow(a, &p58())),
            ("a mod p", reduce(a)),
        ];
        for (k, (name, w)) in want.iter().enumerate() {
            let got = bytes_of(&o[8 * k..8 * k + 8]);
            if got != *w {
                bad.push(format!(
                    "#{i} {name}: a={} b={} got {} want {}",
                    hex::encode(a),
                    hex::encode(b),
                    hex::encode(got),
                    hex::encode(w)
                ));
            }
        }
        let x = decoded_x(a);
        match (x, o[56]) {
            (None, 0) => {}
            (Some(x), 1) if bytes_of(&o[48..56]) == x => {}
            (want, flag) => bad.push(format!(
                "#{i} decode {}: device flag {flag} x {}, want {:?}",
                hex::encode(a),
                hex::encode(bytes_of(&o[48..56])),
                want.map(hex::encode)
            )),
        }
    }
    assert!(
        bad.is_empty(),
        "{} field results differ:\n{}",
        bad.len(),
        bad.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}
