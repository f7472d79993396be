//! Block encryption: XChaCha20-Poly1305 under the key of the block's interval.
//!
//! The associated data binds a ciphertext to its stream, interval and block position, so a
//! storage node cannot pass one block off as another. Nonces are random (192 bits).

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use cpc_types::Hash32;
use rand_core::RngCore;

use crate::DataError;

/// Domain tag of a block's associated data.
pub const BLOCK_AD_DOMAIN: &[u8] = b"cpchain/data/block/v1";

/// Bytes a sealed block adds to its plaintext: nonce and tag.
pub const SEAL_OVERHEAD: usize = 24 + 16;

/// The symmetric key of one encryption interval.
#[derive(Clone, PartialEq, Eq)]
pub struct IntervalKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for IntervalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntervalKey(..)")
    }
}

impl IntervalKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// The key from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DataError> {
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DataError::malformed("interval key", "not 32 bytes"))?;
        Ok(Self(k))
    }

    /// The raw key (to wrap it for the owner).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn associated_data(stream: &Hash32, interval: u64, seq: u64) -> Vec<u8> {
    [
        BLOCK_AD_DOMAIN,
        &stream.0,
        &interval.to_be_bytes(),
        &seq.to_be_bytes(),
    ]
    .concat()
}

/// Encrypts a block: `nonce ‖ ciphertext ‖ tag`.
pub fn seal_block(
    key: &IntervalKey,
    stream: &Hash32,
    interval: u64,
    seq: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ad = associated_data(stream, interval, seq);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &ad,
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any length a block may have");
    let mut out = Vec::with_capacity(nonce.len() + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts and authenticates a block sealed by [`seal_block`] for the same position.
pub fn open_block(
    key: &IntervalKey,
    stream: &Hash32,
    interval: u64,
    seq: u64,
    sealed: &[u8],
) -> Result<Vec<u8>, DataError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(DataError::Decrypt { interval, seq });
    }
    let (nonce, ct) = sealed.split_at(24);
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let ad = associated_data(stream, interval, seq);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &ad })
        .map_err(|_| DataError::Decrypt { interval, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_blocks_open_only_at_their_position_with_their_key() {
        let key = IntervalKey::generate();
        let s = Hash32([7; 32]);
        let sealed = seal_block(&key, &s, 3, 40, b"temperature=21.5");
        assert_eq!(sealed.len(), 16 + SEAL_OVERHEAD);
        assert_eq!(
            open_block(&key, &s, 3, 40, &sealed).unwrap(),
            b"temperature=21.5"
        );
        // Two seals of one block differ (fresh nonce).
        assert_ne!(sealed, seal_block(&key, &s, 3, 40, b"temperature=21.5"));
        assert!(open_block(&key, &s, 3, 41, &sealed).is_err());
        assert!(open_block(&key, &s, 4, 40, &sealed).is_err());
        assert!(open_block(&key, &Hash32([8; 32]), 3, 40, &sealed).is_err());
        assert!(open_block(&IntervalKey::generate(), &s, 3, 40, &sealed).is_err());
        let mut bad = sealed.clone();
        bad[30] ^= 1;
        assert_eq!(
            open_block(&key, &s, 3, 40, &bad),
            Err(DataError::Decrypt {
                interval: 3,
                seq: 40
            })
        );
        assert!(open_block(&key, &s, 3, 40, &sealed[..10]).is_err());
    }
}
