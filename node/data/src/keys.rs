//! Interval keys under umbral proxy re-encryption.
//!
//! Every account derives its umbral keys from its node key ([`DataKeys`]): one delegating
//! key per stream (so a kfrag for one stream opens nothing of another), one signing key for
//! kfrags, and one receiving key that grantees announce ([`KeyAnnouncement`]). Interval
//! keys are encrypted to the stream's delegating key; the capsules travel in the on-chain
//! record's metadata ([`RecordMeta`]). To share, the owner splits a re-encryption key into
//! n kfrags for m-of-n proxies ([`KfragDelivery`]); a [`Proxy`] turns a capsule into a
//! cfrag only while the grant is on chain, and the grantee combines m verified cfrags.

use std::collections::HashMap;

use cpc_types::codec::Encode;
use cpc_types::{Address, DataRecord, Hash32, PublicKey, Signature, decode_exact, sha256};
use serde::{Deserialize, Serialize};
use umbral_pre::{
    Capsule, CapsuleFrag, DefaultDeserialize, DefaultSerialize, KeyFrag, SecretKey,
    SecretKeyFactory, Signer, VerifiedKeyFrag,
};

use crate::{DataError, IntervalKey};

/// Domain of the seed of an account's umbral keys.
const SEED_DOMAIN: &[u8] = b"cpchain/data/umbral-seed/v1";
/// Domain of key announcements.
pub const ANNOUNCE_DOMAIN: &[u8] = b"cpchain/data/key-announcement/v1";
/// Domain of kfrag deliveries.
pub const DELIVERY_DOMAIN: &[u8] = b"cpchain/data/kfrag-delivery/v1";

fn umbral_err(e: impl std::fmt::Display) -> DataError {
    DataError::Umbral(e.to_string())
}

fn public_key(bytes: &[u8], what: &'static str) -> Result<umbral_pre::PublicKey, DataError> {
    umbral_pre::PublicKey::try_from_compressed_bytes(bytes)
        .map_err(|e| DataError::malformed(what, e))
}

/// An interval key encrypted to the stream owner's delegating key — or, in a record with
/// the public policy, the interval key itself (empty capsule): anyone may read public
/// data, so there is nothing to delegate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The interval.
    pub interval: u64,
    /// The umbral capsule (MessagePack, as umbral serialises it); empty when public.
    pub capsule: Vec<u8>,
    /// The interval key under the capsule's key, or the key itself when public.
    pub ciphertext: Vec<u8>,
}
cpc_types::codec_struct!(WrappedKey {
    interval,
    capsule,
    ciphertext
});

/// The metadata of an on-chain data record (its `capsule` field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// Id (SHA-256) of the upload's manifest, stored in the DHT.
    pub manifest: Hash32,
    /// The stream's umbral delegating public key (compressed).
    pub delegating_pk: Vec<u8>,
    /// The owner's umbral kfrag-signing public key (compressed).
    pub verifying_pk: Vec<u8>,
    /// The keys of the intervals holding data.
    pub keys: Vec<WrappedKey>,
}
cpc_types::codec_struct!(RecordMeta {
    manifest,
    delegating_pk,
    verifying_pk,
    keys
});

impl RecordMeta {
    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes the metadata of a record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DataError> {
        decode_exact(bytes).map_err(|e| DataError::malformed("record metadata", e))
    }

    /// The metadata of an on-chain record.
    pub fn of(record: &DataRecord) -> Result<Self, DataError> {
        Self::from_bytes(&record.capsule)
    }

    /// The wrapped key of an interval.
    pub fn key_for(&self, interval: u64) -> Result<&WrappedKey, DataError> {
        self.keys
            .iter()
            .find(|k| k.interval == interval)
            .ok_or(DataError::NoKey(interval))
    }

    /// The interval key of a record with the public policy.
    pub fn public_key_for(&self, interval: u64) -> Result<IntervalKey, DataError> {
        let w = self.key_for(interval)?;
        if !w.capsule.is_empty() {
            return Err(DataError::malformed(
                "public record",
                "the interval key is encrypted",
            ));
        }
        IntervalKey::from_bytes(&w.ciphertext)
    }

    fn capsule_for(&self, interval: u64) -> Result<(Capsule, &WrappedKey), DataError> {
        let w = self.key_for(interval)?;
        let capsule =
            Capsule::from_bytes(&w.capsule).map_err(|e| DataError::malformed("capsule", e))?;
        Ok((capsule, w))
    }
}

/// An account's umbral keys, derived from its node key.
pub struct DataKeys {
    factory: SecretKeyFactory,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(..)")
    }
}

impl DataKeys {
    /// The data keys of an account.
    pub fn from_account(account: &cpc_types::SecretKey) -> Self {
        let seed = sha256(&[SEED_DOMAIN, &account.to_bytes()]);
        let factory = SecretKeyFactory::from_secure_randomness(&seed.0)
            .expect("a SHA-256 digest is a 32-byte seed");
        Self { factory }
    }

    fn delegating(&self, stream: &Hash32) -> SecretKey {
        self.factory
            .make_key(&[b"stream/".as_slice(), &stream.0].concat())
    }

    fn signer(&self) -> Signer {
        Signer::new(self.factory.make_key(b"kfrag-signer"))
    }

    fn receiving(&self) -> SecretKey {
        self.factory.make_key(b"receiving")
    }

    /// The delegating public key of a stream.
    pub fn delegating_pk(&self, stream: &Hash32) -> Vec<u8> {
        self.delegating(stream)
            .public_key()
            .to_compressed_bytes()
            .into_vec()
    }

    /// The public key that verifies this account's kfrags.
    pub fn verifying_pk(&self) -> Vec<u8> {
        self.signer()
            .verifying_key()
            .to_compressed_bytes()
            .into_vec()
    }

    /// The public key others re-encrypt to when they share with this account.
    pub fn receiving_pk(&self) -> Vec<u8> {
        self.receiving()
            .public_key()
            .to_compressed_bytes()
            .into_vec()
    }

    /// Encrypts an interval key to the stream's delegating key.
    pub fn wrap(
        &self,
        stream: &Hash32,
        interval: u64,
        key: &IntervalKey,
    ) -> Result<WrappedKey, DataError> {
        let pk = self.delegating(stream).public_key();
        let (capsule, ct) = umbral_pre::encrypt(&pk, key.as_bytes()).map_err(umbral_err)?;
        Ok(WrappedKey {
            interval,
            capsule: capsule.to_bytes().map_err(umbral_err)?.into_vec(),
            ciphertext: ct.into_vec(),
        })
    }

    /// Opens the key of an interval of the owner's own stream.
    pub fn unwrap_own(
        &self,
        stream: &Hash32,
        meta: &RecordMeta,
        interval: u64,
    ) -> Result<IntervalKey, DataError> {
        let (capsule, w) = meta.capsule_for(interval)?;
        let key = umbral_pre::decrypt_original(&self.delegating(stream), &capsule, &w.ciphertext)
            .map_err(umbral_err)?;
        IntervalKey::from_bytes(&key)
    }

    /// Splits the re-encryption key from `stream` to `receiving_pk` into `shares` kfrags,
    /// `threshold` of which are needed.
    pub fn kfrags(
        &self,
        stream: &Hash32,
        receiving_pk: &[u8],
        threshold: usize,
        shares: usize,
    ) -> Result<Vec<Vec<u8>>, DataError> {
        if threshold == 0 || threshold > shares || shares > 255 {
            return Err(DataError::Params(
                "grant needs 1 <= threshold <= shares <= 255".into(),
            ));
        }
        let receiving = public_key(receiving_pk, "receiving key")?;
        umbral_pre::generate_kfrags(
            &self.delegating(stream),
            &receiving,
            &self.signer(),
            threshold,
            shares,
            true,
            true,
        )
        .iter()
        .map(|k| k.to_bytes().map(|b| b.into_vec()).map_err(umbral_err))
        .collect()
    }

    /// Opens a granted interval key from cfrags: each is verified against the record's
    /// keys first; the indices of those that fail are returned so their proxies can be
    /// reported.
    pub fn open_granted(
        &self,
        meta: &RecordMeta,
        interval: u64,
        cfrags: &[Vec<u8>],
        threshold: usize,
    ) -> Result<(IntervalKey, Vec<usize>), DataError> {
        let (capsule, w) = meta.capsule_for(interval)?;
        let delegating = public_key(&meta.delegating_pk, "delegating key")?;
        let verifying = public_key(&meta.verifying_pk, "verifying key")?;
        let receiving = self.receiving();
        let receiving_pk = receiving.public_key();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (i, bytes) in cfrags.iter().enumerate() {
            let verified = CapsuleFrag::from_bytes(bytes).ok().and_then(|c| {
                c.verify(&capsule, &verifying, &delegating, &receiving_pk)
                    .ok()
            });
            match verified {
                Some(v) => good.push(v),
                None => bad.push(i),
            }
        }
        if good.len() < threshold.max(1) {
            return Err(DataError::NotEnoughCfrags {
                valid: good.len(),
                needed: threshold.max(1),
            });
        }
        let key =
            umbral_pre::decrypt_reencrypted(&receiving, &delegating, &capsule, good, &w.ciphertext)
                .map_err(umbral_err)?;
        Ok((IntervalKey::from_bytes(&key)?, bad))
    }

    /// This account's signed announcement of its receiving key.
    pub fn announce(&self, account: &cpc_types::SecretKey) -> KeyAnnouncement {
        let mut a = KeyAnnouncement {
            account: account.public(),
            receiving_pk: self.receiving_pk(),
            signature: Signature([0; 64]),
        };
        a.signature = account.sign(&a.signing_bytes());
        a
    }
}

/// An account's receiving key, signed by its node key, so owners can share with an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAnnouncement {
    /// The account's node key.
    pub account: PublicKey,
    /// Its umbral receiving key (compressed).
    pub receiving_pk: Vec<u8>,
    /// Signature of the node key over [`KeyAnnouncement::signing_bytes`].
    pub signature: Signature,
}
cpc_types::codec_struct!(KeyAnnouncement {
    account,
    receiving_pk,
    signature
});

impl KeyAnnouncement {
    /// The signed bytes.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = ANNOUNCE_DOMAIN.to_vec();
        self.account.encode_to(&mut out);
        self.receiving_pk.encode_to(&mut out);
        out
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes an announcement.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DataError> {
        decode_exact(bytes).map_err(|e| DataError::malformed("key announcement", e))
    }

    /// Checks the signature and that the announcement is `address`'s.
    pub fn verify(&self, address: &Address) -> Result<(), DataError> {
        if self.account.address() != *address
            || !self.account.verify(&self.signing_bytes(), &self.signature)
        {
            return Err(DataError::BadAnnouncement(*address));
        }
        public_key(&self.receiving_pk, "receiving key")?;
        Ok(())
    }
}

/// A kfrag on its way from a stream owner to a proxy, signed by the owner's node key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KfragDelivery {
    /// The stream shared.
    pub stream: Hash32,
    /// Who it is shared with.
    pub grantee: Address,
    /// The grantee's receiving key.
    pub receiving_pk: Vec<u8>,
    /// The kfrag (MessagePack, as umbral serialises it).
    pub kfrag: Vec<u8>,
    /// The owner's node key.
    pub owner: PublicKey,
    /// The owner's signature over [`KfragDelivery::signing_bytes`].
    pub signature: Signature,
}
cpc_types::codec_struct!(KfragDelivery {
    stream,
    grantee,
    receiving_pk,
    kfrag,
    owner,
    signature
});

impl KfragDelivery {
    /// Signs one delivery per kfrag.
    pub fn sign_all(
        account: &cpc_types::SecretKey,
        stream: Hash32,
        grantee: Address,
        receiving_pk: &[u8],
        kfrags: Vec<Vec<u8>>,
    ) -> Vec<KfragDelivery> {
        kfrags
            .into_iter()
            .map(|kfrag| {
                let mut d = KfragDelivery {
                    stream,
                    grantee,
                    receiving_pk: receiving_pk.to_vec(),
                    kfrag,
                    owner: account.public(),
                    signature: Signature([0; 64]),
                };
                d.signature = account.sign(&d.signing_bytes());
                d
            })
            .collect()
    }

    /// The signed bytes.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = DELIVERY_DOMAIN.to_vec();
        self.stream.encode_to(&mut out);
        self.grantee.encode_to(&mut out);
        self.receiving_pk.encode_to(&mut out);
        self.kfrag.encode_to(&mut out);
        self.owner.encode_to(&mut out);
        out
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Decodes a delivery.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DataError> {
        decode_exact(bytes).map_err(|e| DataError::malformed("kfrag delivery", e))
    }
}

/// What a proxy reads from the chain.
pub trait ChainView {
    /// The owner of a stream.
    fn stream_owner(&self, stream: &Hash32) -> Option<Address>;
    /// The interval range `grantee` may read, if a grant is on chain.
    fn grant(&self, stream: &Hash32, grantee: &Address) -> Option<(u64, u64)>;
    /// The record whose interval range holds `interval`.
    fn record(&self, stream: &Hash32, interval: u64) -> Option<DataRecord>;
}

/// Why a proxy refused to re-encrypt.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    /// No grant on chain (never granted, or revoked).
    #[error("no grant on chain for {grantee} on stream {stream} (never granted or revoked)")]
    NoGrant {
        /// The stream.
        stream: Hash32,
        /// The would-be grantee.
        grantee: Address,
    },
    /// The grant does not cover the interval.
    #[error("the grant covers intervals {first}..={last}, not {interval}")]
    OutOfRange {
        /// The interval asked for.
        interval: u64,
        /// First granted.
        first: u64,
        /// Last granted.
        last: u64,
    },
    /// This proxy holds no kfrag for the grant.
    #[error("this proxy holds no kfrag for the grant")]
    NoKfrag,
    /// No record on chain holds the interval.
    #[error("no record on chain holds interval {0}")]
    NoRecord(u64),
    /// A delivery is not acceptable.
    #[error("kfrag delivery refused: {0}")]
    BadDelivery(String),
    /// The record's metadata is unusable.
    #[error(transparent)]
    Data(#[from] DataError),
}

struct HeldKfrag {
    owner: Address,
    receiving_pk: umbral_pre::PublicKey,
    kfrag: KeyFrag,
}

/// A storage node's proxy role: holds kfrags, re-encrypts capsules for live grants.
#[derive(Default)]
pub struct Proxy {
    held: HashMap<(Hash32, Address), HeldKfrag>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("kfrags", &self.held.len())
            .finish()
    }
}

impl Proxy {
    /// An empty proxy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Kfrags held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no kfrag is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Accepts a kfrag signed by the stream's owner on chain.
    pub fn accept(
        &mut self,
        chain: &impl ChainView,
        delivery: &KfragDelivery,
    ) -> Result<(), ProxyError> {
        let bad = |m: &str| ProxyError::BadDelivery(m.to_string());
        if !delivery
            .owner
            .verify(&delivery.signing_bytes(), &delivery.signature)
        {
            return Err(bad("bad owner signature"));
        }
        let owner = delivery.owner.address();
        if chain.stream_owner(&delivery.stream) != Some(owner) {
            return Err(bad("the sender does not own the stream on chain"));
        }
        let receiving_pk = public_key(&delivery.receiving_pk, "receiving key")?;
        let kfrag = KeyFrag::from_bytes(&delivery.kfrag).map_err(|e| bad(&e.to_string()))?;
        self.held.insert(
            (delivery.stream, delivery.grantee),
            HeldKfrag {
                owner,
                receiving_pk,
                kfrag,
            },
        );
        Ok(())
    }

    /// Deletes the kfrag of a revoked grant.
    pub fn revoke(&mut self, stream: &Hash32, grantee: &Address) -> bool {
        self.held.remove(&(*stream, *grantee)).is_some()
    }

    /// Deletes every kfrag whose grant is no longer on chain; returns how many.
    pub fn prune(&mut self, chain: &impl ChainView) -> usize {
        let before = self.held.len();
        self.held.retain(|(s, g), _| chain.grant(s, g).is_some());
        before - self.held.len()
    }

    /// Re-encrypts the capsule of `interval` for `grantee`, if the grant is on chain and
    /// covers it. Returns the cfrag (MessagePack).
    pub fn reencrypt(
        &mut self,
        chain: &impl ChainView,
        stream: &Hash32,
        grantee: &Address,
        interval: u64,
    ) -> Result<Vec<u8>, ProxyError> {
        let Some((first, last)) = chain.grant(stream, grantee) else {
            // Revoked or never granted: the kfrag, if any, must not outlive the grant.
            self.held.remove(&(*stream, *grantee));
            return Err(ProxyError::NoGrant {
                stream: *stream,
                grantee: *grantee,
            });
        };
        if interval < first || interval > last {
            return Err(ProxyError::OutOfRange {
                interval,
                first,
                last,
            });
        }
        let held = self
            .held
            .get(&(*stream, *grantee))
            .ok_or(ProxyError::NoKfrag)?;
        if chain.stream_owner(stream) != Some(held.owner) {
            return Err(ProxyError::NoKfrag);
        }
        let record = chain
            .record(stream, interval)
            .ok_or(ProxyError::NoRecord(interval))?;
        let meta = RecordMeta::of(&record)?;
        let (capsule, _) = meta.capsule_for(interval)?;
        let delegating = public_key(&meta.delegating_pk, "delegating key")?;
        let verifying = public_key(&meta.verifying_pk, "verifying key")?;
        let kfrag: VerifiedKeyFrag = held
            .kfrag
            .clone()
            .verify(&verifying, Some(&delegating), Some(&held.receiving_pk))
            .map_err(|(e, _)| ProxyError::BadDelivery(format!("kfrag does not verify: {e}")))?;
        let cfrag = umbral_pre::reencrypt(&capsule, kfrag);
        Ok(cfrag.to_bytes().map_err(umbral_err)?.into_vec())
    }
}
