//! Known-answer tests, shared by unit tests and `cpchain accel selftest`.
//!
//! - SHA-256: the FIPS 180-4 examples (NIST CSRC "Examples with intermediate values").
//! - Merkle: roots of leaves `[i; 32]`, computed independently of this crate.
//! - Ed25519: the RFC 8032 §7.1 vectors, tampered variants of them, and the ZIP-215
//!   small-order cases (every combination of small-order `A` and `R`, canonical or not,
//!   with `S = 0`): valid under ZIP-215, invalid under stricter rules, so a backend that
//!   implements the wrong rule fails here.

use serde::Serialize;

use crate::backend::{Accelerator, BackendKind, SigItem};
use crate::dispatch::{ed25519_split, merkle_split, sha256_split};
use crate::{Digest, cpu};

/// A SHA-256 known answer.
#[derive(Clone, Debug)]
pub struct Sha256Vector {
    /// Where the vector comes from.
    pub name: &'static str,
    /// The input.
    pub message: Vec<u8>,
    /// The expected digest.
    pub digest: Digest,
}

/// A Merkle known answer over the leaves `[0; 32], [1; 32], …`.
#[derive(Clone, Debug)]
pub struct MerkleVector {
    /// Number of leaves.
    pub leaves: usize,
    /// The expected root.
    pub root: Digest,
}

impl MerkleVector {
    /// The leaves of this vector.
    pub fn leaf_values(&self) -> Vec<Digest> {
        (0..self.leaves).map(|i| [i as u8; 32]).collect()
    }
}

/// An Ed25519 known verdict.
#[derive(Clone, Debug)]
pub struct Ed25519Vector {
    /// What the case exercises.
    pub name: String,
    /// The encoded public key.
    pub public_key: [u8; 32],
    /// The signature `R || S`.
    pub signature: [u8; 64],
    /// The message.
    pub message: Vec<u8>,
    /// The ZIP-215 verdict.
    pub valid: bool,
}

impl Ed25519Vector {
    /// The vector as a verification item.
    pub fn item(&self) -> SigItem<'_> {
        SigItem {
            public_key: self.public_key,
            signature: self.signature,
            message: &self.message,
        }
    }
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    // The strings below are constants of this file; a bad one fails every unit test.
    hex::decode_to_slice(s, &mut out).unwrap_or_else(|e| panic!("bad constant {s}: {e}"));
    out
}

/// The FIPS 180-4 SHA-256 examples, plus the empty message.
pub fn sha256_vectors() -> Vec<Sha256Vector> {
    vec![
        Sha256Vector {
            name: "empty message",
            message: Vec::new(),
            digest: unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        },
        Sha256Vector {
            name: "FIPS 180-4 one block: abc",
            message: b"abc".to_vec(),
            digest: unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        },
        Sha256Vector {
            name: "FIPS 180-4 two blocks: 448 bits",
            message: b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
            digest: unhex("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        },
        Sha256Vector {
            name: "FIPS 180-4 896 bits",
            message: b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".to_vec(),
            digest: unhex("cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        },
        Sha256Vector {
            name: "FIPS 180-4 one million a",
            message: vec![b'a'; 1_000_000],
            digest: unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        },
    ]
}

/// Merkle roots of `n` leaves `[i; 32]`, from an independent implementation of the rule.
pub fn merkle_vectors() -> Vec<MerkleVector> {
    [
        (
            0,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            1,
            "7f9c9e31ac8256ca2f258583df262dbc7d6f68f2a03043d5c99a4ae5a7396ce9",
        ),
        (
            2,
            "28fb81e496897e0ce886f08602392e9239b65c659041e5202163e58ad898f444",
        ),
        (
            3,
            "ba8d94b7fbcecae7b81c4c80574fe24734a6917bf9c1ecd66ff3e0c34ead4620",
        ),
        (
            5,
            "85e20cac1f02fda7bcdb2fc3f908568c57018c77815f1fa361acad13994f08bf",
        ),
        (
            8,
            "f907f23f76aa01b755a614d31ef9832909f44638b4590073301e61e6d01f9a1d",
        ),
        (
            13,
            "cebcf8c0a77418c03d4694b0e14ccebed8416ff87d3ad4da873423948f8622fd",
        ),
    ]
    .into_iter()
    .map(|(leaves, root)| MerkleVector {
        leaves,
        root: unhex(root),
    })
    .collect()
}

/// Leaves `SHA-256(i as u32, little-endian)` for `i < 4097`: one past a power of two, so
/// the odd-node rule runs at every level.
pub fn big_merkle_leaves() -> Vec<Digest> {
    (0..4097u32)
        .map(|i| cpu::sha256_one(&i.to_le_bytes()))
        .collect()
}

/// The root of [`big_merkle_leaves`], computed independently of this crate.
pub const BIG_MERKLE_ROOT: &str =
    "1ad6f2c3cea88d66a25b35192518c8d8e4dbf925aa3fcefd1b9a42db98302d42";

/// The group order `L = 2^252 + 27742317777372353535851937790883648493`, little-endian.
pub const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `S + L`: the same scalar mod L, encoded non-canonically (always fits in 256 bits since
/// a valid `S` is below `L < 2^253`).
pub fn add_order(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(ED25519_L[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// Encodings of the eight small-order points: the canonical ones, then the six
/// non-canonical encodings ZIP-215 accepts (non-canonical `y` or a sign bit on `x = 0`).
pub fn small_order_encodings() -> Vec<[u8; 32]> {
    [
        // canonical: identity, order 8, order 4, order 8, order 2, order 8, order 4, order 8
        "0100000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        // non-canonical: (0, 1) with sign bit, (0, -1) with sign bit, y = 0 as p, y = 1 as p + 1
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ]
    .into_iter()
    .map(unhex)
    .collect()
}

/// A 32-byte string that is not the encoding of any curve point (`y = 2` has no `x`).
pub const NOT_A_POINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 2;
    b
};

fn sig(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    out
}

/// RFC 8032 vectors, tampered variants, and the ZIP-215 small-order matrix.
pub fn ed25519_vectors() -> Vec<Ed25519Vector> {
    let rfc: [(&str, &str, &str, &str); 4] = [
        (
            "RFC 8032 test 1",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            "",
        ),
        (
            "RFC 8032 test 2",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            "72",
        ),
        (
            "RFC 8032 test 3",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            "af82",
        ),
        (
            "RFC 8032 test SHA(abc)",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];
    let mut out = Vec::new();
    for (name, pk, sg, msg) in rfc {
        let public_key: [u8; 32] = unhex(pk);
        let signature: [u8; 64] = unhex(sg);
        let message = hex::decode(msg).unwrap_or_else(|e| panic!("bad constant {msg}: {e}"));
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&signature[..32]);
        s.copy_from_slice(&signature[32..]);
        let mut tampered_msg = message.clone();
        tampered_msg.push(0);
        let mut flipped_r = r;
        flipped_r[0] ^= 1;
        let mut neg_key = public_key;
        neg_key[31] ^= 0x80;
        let case = |suffix: &str, public_key, signature, message: &Vec<u8>, valid| Ed25519Vector {
            name: format!("{name}{suffix}"),
            public_key,
            signature,
            message: message.clone(),
            valid,
        };
        out.push(case("", public_key, signature, &message, true));
        out.push(case(
            ", message extended",
            public_key,
            signature,
            &tampered_msg,
            false,
        ));
        out.push(case(
            ", R bit flipped",
            public_key,
            sig(&flipped_r, &s),
            &message,
            false,
        ));
        out.push(case(
            ", S + L (non-canonical S)",
            public_key,
            sig(&r, &add_order(&s)),
            &message,
            false,
        ));
        out.push(case(", key negated", neg_key, signature, &message, false));
        out.push(case(
            ", key not a point",
            NOT_A_POINT,
            signature,
            &message,
            false,
        ));
        out.push(case(
            ", R not a point",
            public_key,
            sig(&NOT_A_POINT, &s),
            &message,
            false,
        ));
    }
    let small = small_order_encodings();
    for (i, a) in small.iter().enumerate() {
        for (j, r) in small.iter().enumerate() {
            out.push(Ed25519Vector {
                name: format!("ZIP-215 small order A#{i} R#{j}, S = 0"),
                public_key: *a,
                signature: sig(r, &[0; 32]),
                message: b"Zcash".to_vec(),
                valid: true,
            });
        }
        out.push(Ed25519Vector {
            name: format!("ZIP-215 small order A#{i}, S = L"),
            public_key: *a,
            signature: sig(a, &ED25519_L),
            message: b"Zcash".to_vec(),
            valid: false,
        });
    }
    out
}

/// The outcome of running every known answer on one backend.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SelftestReport {
    /// The backend tested.
    pub backend: Option<BackendKind>,
    /// Cases checked.
    pub checked: usize,
    /// Names of the cases whose answer differed, or that failed to run.
    pub failures: Vec<String>,
}

impl SelftestReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every known answer on `backend`, each operation as one batch (so batch code paths,
/// not only single ones, are exercised).
pub fn selftest(backend: &dyn Accelerator) -> SelftestReport {
    let info = backend.info();
    let max = info.max_batch.unwrap_or(usize::MAX);
    let mut report = SelftestReport {
        backend: Some(info.kind),
        ..SelftestReport::default()
    };

    let sha = sha256_vectors();
    let msgs: Vec<&[u8]> = sha.iter().map(|v| v.message.as_slice()).collect();
    report.checked += sha.len();
    match sha256_split(backend, &msgs, max) {
        Ok(got) if got.len() == sha.len() => {
            for (v, d) in sha.iter().zip(got) {
                if d != v.digest {
                    report.failures.push(format!("sha256: {}", v.name));
                }
            }
        }
        Ok(got) => report.failures.push(format!(
            "sha256: {} digests for {} messages",
            got.len(),
            sha.len()
        )),
        Err(e) => report.failures.push(format!("sha256: {e}")),
    }

    for v in merkle_vectors() {
        report.checked += 1;
        match merkle_split(backend, &v.leaf_values(), max) {
            Ok(root) if root == v.root => {}
            Ok(_) => report.failures.push(format!("merkle: {} leaves", v.leaves)),
            Err(e) => report
                .failures
                .push(format!("merkle: {} leaves: {e}", v.leaves)),
        }
    }
    // A tree large enough for the parallel and split code paths of every backend.
    let big = big_merkle_leaves();
    report.checked += 1;
    match merkle_split(backend, &big, max) {
        Ok(root) if root == unhex::<32>(BIG_MERKLE_ROOT) => {}
        Ok(_) => report
            .failures
            .push(format!("merkle: {} leaves", big.len())),
        Err(e) => report
            .failures
            .push(format!("merkle: {} leaves: {e}", big.len())),
    }

    let ed = ed25519_vectors();
    let items: Vec<SigItem<'_>> = ed.iter().map(Ed25519Vector::item).collect();
    report.checked += ed.len();
    match ed25519_split(backend, &items, max) {
        Ok(got) if got.len() == ed.len() => {
            for (v, ok) in ed.iter().zip(got) {
                if ok != v.valid {
                    report.failures.push(format!(
                        "ed25519: {} (expected {}, got {ok})",
                        v.name, v.valid
                    ));
                }
            }
        }
        Ok(got) => report.failures.push(format!(
            "ed25519: {} verdicts for {} items",
            got.len(),
            ed.len()
        )),
        Err(e) => report.failures.push(format!("ed25519: {e}")),
    }
    report
}
