//! Hashes, addresses, keys and signatures.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

/// Why a string is not a valid hash, address, key or signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct ParseError {
    what: &'static str,
    reason: String,
}

fn parse_hex<const N: usize>(what: &'static str, s: &str) -> Result<[u8; N], ParseError> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| ParseError {
        what,
        reason: format!("expected {} hex digits: {e}", 2 * N),
    })?;
    Ok(out)
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $n:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl Default for $name {
            /// All zero bytes.
            fn default() -> Self {
                Self([0; $n])
            }
        }

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                parse_hex::<$n>($what, s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                self.0.encode_to(out);
            }
        }

        impl Decode for $name {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self(Decode::decode_from(r)?))
            }
        }
    };
}

fixed_bytes!(
    /// A SHA-256 digest: block hashes, transaction ids, roots.
    Hash32, 32, "hash"
);
fixed_bytes!(
    /// An encoded Ed25519 public key.
    PublicKey, 32, "public key"
);
fixed_bytes!(
    /// An Ed25519 signature `R || S`.
    Signature, 64, "signature"
);
fixed_bytes!(
    /// A VRF proof (ECVRF-EDWARDS25519-SHA512-TAI, RFC 9381): `Gamma || c || s`.
    VrfProof, 80, "vrf proof"
);

impl Hash32 {
    /// The all-zero hash: the parent of the genesis block.
    pub const ZERO: Hash32 = Hash32([0; 32]);
}

impl PublicKey {
    /// The account address of this key.
    pub fn address(&self) -> Address {
        Address::of(self)
    }

    /// ZIP-215 single verification. Batches go through the accelerator instead.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        ed25519_consensus::VerificationKey::try_from(self.0)
            .and_then(|vk| vk.verify(&ed25519_consensus::Signature::from(sig.0), msg))
            .is_ok()
    }
}

/// An account: the first 20 bytes of `SHA-256("cpchain/address" || public key)`, written
/// `cpc` followed by 40 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of a public key.
    pub fn of(pk: &PublicKey) -> Address {
        let h = sha256(&[b"cpchain/address", &pk.0]);
        let mut a = [0u8; 20];
        a.copy_from_slice(&h.0[..20]);
        Address(a)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpc{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Address {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let hex = s.strip_prefix("cpc").ok_or_else(|| ParseError {
            what: "address",
            reason: "must start with cpc".into(),
        })?;
        parse_hex::<20>("address", hex).map(Address)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Encode for Address {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
    }
}

impl Decode for Address {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self(Decode::decode_from(r)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        let a = Address([7; 20]);
        assert_eq!(a.to_string().parse::<Address>(), Ok(a));
        assert!("0707".parse::<Address>().is_err());
        assert!(
            format!("cpc{}", "zz".repeat(20))
                .parse::<Address>()
                .is_err()
        );
        let h = sha256(&[b"x"]);
        assert_eq!(h.to_string().parse::<Hash32>(), Ok(h));
        assert_eq!(format!("0x{h}").parse::<Hash32>(), Ok(h));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
    }
}
