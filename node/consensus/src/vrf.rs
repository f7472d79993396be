//! ECVRF-EDWARDS25519-SHA512-TAI, RFC 9381 §5 with the suite of §5.5 (suite string
//! `0x03`, try-and-increment encoding to the curve, 16-byte challenges).
//!
//! A prover with secret key `SK` produces, for an input `alpha`, a proof `pi` (80 bytes)
//! and an output `beta` (64 bytes). Anyone with the public key checks `pi` and derives the
//! same `beta`; nobody without `SK` can predict `beta`, and for one key and input there is
//! only one `beta`. The keys are Ed25519 keys (RFC 8032 §5.1.5), so a validator may use its
//! signing seed.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use sha2::{Digest, Sha512};

const SUITE: u8 = 0x03;

/// Length of a proof.
pub const PROOF_LEN: usize = 80;

/// A VRF proof: `Gamma || c (16 bytes) || s (32 bytes)`.
pub type Proof = [u8; PROOF_LEN];

/// A VRF output.
pub type Output = [u8; 64];

/// Why a proof is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VrfError {
    /// The public key does not decode, or has small order.
    #[error("invalid vrf public key")]
    PublicKey,
    /// The proof does not decode or does not verify.
    #[error("invalid vrf proof")]
    Proof,
}

/// RFC 8032 decoding: rejects non-canonical `y` (dalek alone would reduce it).
fn string_to_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let p = CompressedEdwardsY(*bytes).decompress()?;
    let canonical = p.compress().to_bytes();
    // x = 0 encodes with either sign bit; RFC 8032 rejects the set bit, so compare all.
    (canonical == *bytes).then_some(p)
}

fn encode_to_curve(salt: &[u8; 32], alpha: &[u8]) -> Option<EdwardsPoint> {
    (0u8..=255).find_map(|ctr| {
        let h = Sha512::new()
            .chain_update([SUITE, 0x01])
            .chain_update(salt)
            .chain_update(alpha)
            .chain_update([ctr, 0x00])
            .finalize();
        let mut s = [0u8; 32];
        s.copy_from_slice(&h[..32]);
        string_to_point(&s).map(|p| p.mul_by_cofactor())
    })
}

fn challenge(points: [&EdwardsPoint; 5]) -> [u8; 16] {
    let mut h = Sha512::new().chain_update([SUITE, 0x02]);
    for p in points {
        h.update(p.compress().as_bytes());
    }
    let d = h.chain_update([0x00]).finalize();
    let mut c = [0u8; 16];
    c.copy_from_slice(&d[..16]);
    c
}

fn challenge_scalar(c: &[u8; 16]) -> Scalar {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(c);
    Scalar::from_bytes_mod_order(b)
}

fn proof_to_hash(gamma: &EdwardsPoint) -> Output {
    let d = Sha512::new()
        .chain_update([SUITE, 0x03])
        .chain_update(gamma.mul_by_cofactor().compress().as_bytes())
        .chain_update([0x00])
        .finalize();
    let mut out = [0u8; 64];
    out.copy_from_slice(&d);
    out
}

/// A VRF secret key (an Ed25519 seed).
#[derive(Clone)]
pub struct VrfSecret {
    x: Scalar,
    prefix: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for VrfSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VrfSecret(public {})", hex_short(&self.public))
    }
}

fn hex_short(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

impl VrfSecret {
    /// The key of a 32-byte seed, expanded as RFC 8032 §5.1.5.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let h = Sha512::digest(seed);
        let mut scalar = [0u8; 32];
        scalar.copy_from_slice(&h[..32]);
        scalar[0] &= 248;
        scalar[31] &= 127;
        scalar[31] |= 64;
        let x = Scalar::from_bytes_mod_order(scalar);
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&h[32..]);
        let public = (ED25519_BASEPOINT_POINT * x).compress().to_bytes();
        Self { x, prefix, public }
    }

    /// The public key (the Ed25519 public key of the seed).
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The proof and output for `alpha`.
    pub fn prove(&self, alpha: &[u8]) -> (Proof, Output) {
        // encode_to_curve fails only with probability 2^-256 over 256 tries; fall back to
        // the base point rather than panic (such a proof would not verify).
        let h = encode_to_curve(&self.public, alpha).unwrap_or(ED25519_BASEPOINT_POINT);
        let gamma = h * self.x;
        let mut k_string = [0u8; 64];
        k_string.copy_from_slice(
            &Sha512::new()
                .chain_update(self.prefix)
                .chain_update(h.compress().as_bytes())
                .finalize(),
        );
        let k = Scalar::from_bytes_mod_order_wide(&k_string);
        let y = ED25519_BASEPOINT_POINT * self.x;
        let c = challenge([&y, &h, &gamma, &(ED25519_BASEPOINT_POINT * k), &(h * k)]);
        let s = k + challenge_scalar(&c) * self.x;
        let mut pi = [0u8; PROOF_LEN];
        pi[..32].copy_from_slice(gamma.compress().as_bytes());
        pi[32..48].copy_from_slice(&c);
        pi[48..].copy_from_slice(s.as_bytes());
        (pi, proof_to_hash(&gamma))
    }
}

/// Verifies `pi` for `alpha` under `public` and returns the output.
pub fn verify(public: &[u8; 32], alpha: &[u8], pi: &Proof) -> Result<Output, VrfError> {
    let y = string_to_point(public).ok_or(VrfError::PublicKey)?;
    if y.mul_by_cofactor().is_identity() {
        return Err(VrfError::PublicKey);
    }
    let mut g = [0u8; 32];
    g.copy_from_slice(&pi[..32]);
    let gamma = string_to_point(&g).ok_or(VrfError::Proof)?;
    let mut c = [0u8; 16];
    c.copy_from_slice(&pi[32..48]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&pi[48..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)).ok_or(VrfError::Proof)?;
    let h = encode_to_curve(public, alpha).ok_or(VrfError::Proof)?;
    let cs = challenge_scalar(&c);
    let u = ED25519_BASEPOINT_POINT * s - y * cs;
    let v = h * s - gamma * cs;
    if challenge([&y, &h, &gamma, &u, &v]) != c {
        return Err(VrfError::Proof);
    }
    Ok(proof_to_hash(&gamma))
}
