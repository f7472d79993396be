//! Key generation and the two client roles: participants encrypt, the key holder decrypts.

use rand_core::RngCore;
use tfhe::prelude::*;
use tfhe::{
    ClientKey, CompactCiphertextList, CompactPublicKey, CompressedServerKey, FheBool, FheUint8,
};

use tfhe::integer::IntegerCiphertext as _;

use super::{MAX_CLIENT_KEY_BYTES, MAX_RESULT_BYTES, PARAMETERS, deserialize, serialize};
use crate::matching::{FheError, GRID_MAX, KeyId, NO_DRIVER};

/// A new key set, serialized (TFHE-rs safe serialization).
pub struct KeySet {
    /// The client key: decrypts; stays with the key holder.
    pub client_key: Vec<u8>,
    /// The compressed server key: computes; goes to the appliance.
    pub server_key: Vec<u8>,
    /// The compact public key: encrypts; goes to every participant.
    pub public_key: Vec<u8>,
    /// The server key's id.
    pub key_id: KeyId,
    /// The set's tag, carried by every ciphertext made with it.
    pub tag: [u8; 16],
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("key_id", &self.key_id)
            .field("tag", &hex::encode(self.tag))
            .finish_non_exhaustive()
    }
}

/// Generates a key set under [`PARAMETERS`] with a random tag. Takes seconds: the server
/// key holds the bootstrapping key.
pub fn generate_keys() -> Result<KeySet, FheError> {
    let mut tag = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut tag);
    let mut client = ClientKey::generate(super::tfhe_config());
    client.tag_mut().set_data(&tag);
    let server = CompressedServerKey::new(&client);
    let public = CompactPublicKey::new(&client);
    let server_key = serialize(&server, u64::MAX)?;
    Ok(KeySet {
        client_key: serialize(&client, MAX_CLIENT_KEY_BYTES)?,
        public_key: serialize(&public, MAX_CLIENT_KEY_BYTES)?,
        key_id: KeyId::of(&server_key),
        server_key,
        tag,
    })
}

/// Encrypts participants' values under a compact public key.
pub struct Encryptor {
    key: CompactPublicKey,
}

impl Encryptor {
    /// Reads a serialized compact public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FheError> {
        let key = deserialize::<CompactPublicKey>(
            bytes,
            MAX_CLIENT_KEY_BYTES,
            &super::pke_parameters(),
            "the public key",
        )?;
        Ok(Self { key })
    }

    /// The tag of the key set, hex.
    pub fn tag(&self) -> String {
        hex::encode(self.key.tag().data())
    }

    /// A rider's position.
    pub fn rider(&self, x: u8, y: u8) -> Result<Vec<u8>, FheError> {
        on_grid(x, y)?;
        let mut list = CompactCiphertextList::builder(&self.key);
        list.push(x).push(y);
        super::serialize(&list.build_packed(), super::MAX_INPUT_BYTES)
    }

    /// A driver's position and availability.
    pub fn driver(&self, x: u8, y: u8, available: bool) -> Result<Vec<u8>, FheError> {
        on_grid(x, y)?;
        let mut list = CompactCiphertextList::builder(&self.key);
        list.push(x).push(y).push(available);
        super::serialize(&list.build_packed(), super::MAX_INPUT_BYTES)
    }

    /// A search tag (a query or a record's tag).
    pub fn search_tag(&self, tag: u32) -> Result<Vec<u8>, FheError> {
        let mut list = CompactCiphertextList::builder(&self.key);
        list.push(tag);
        super::serialize(&list.build_packed(), super::MAX_INPUT_BYTES)
    }
}

fn on_grid(x: u8, y: u8) -> Result<(), FheError> {
    if x > GRID_MAX || y > GRID_MAX {
        return Err(FheError::Malformed(format!(
            "position ({x}, {y}) is off the grid: coordinates run from 0 to {GRID_MAX}"
        )));
    }
    Ok(())
}

/// A decrypted nearest-match result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nearest {
    /// The winner's index among the job's drivers, `None` when no driver was available.
    pub driver: Option<u8>,
    /// Its Manhattan distance to the rider.
    pub distance: u8,
}

/// Decrypts results with the client key.
pub struct Decryptor {
    key: ClientKey,
}

impl Decryptor {
    /// Reads a serialized client key made by [`generate_keys`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FheError> {
        if bytes.len() as u64 > MAX_CLIENT_KEY_BYTES {
            return Err(FheError::TooLarge(format!(
                "the client key is {} bytes, more than {MAX_CLIENT_KEY_BYTES}",
                bytes.len()
            )));
        }
        let key: ClientKey = deserialize_unchecked(bytes, MAX_CLIENT_KEY_BYTES, "the client key")?;
        let ours = tfhe::shortint::AtomicPatternParameters::from(
            tfhe::shortint::parameters::PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
        );
        if key.computation_parameters() != ours {
            return Err(FheError::Malformed(format!(
                "the client key uses other parameters than {PARAMETERS}"
            )));
        }
        Ok(Self { key })
    }

    /// The tag of the key set, hex.
    pub fn tag(&self) -> String {
        hex::encode(self.key.tag().data())
    }

    fn check_tag(&self, found: &tfhe::Tag, what: &str) -> Result<(), FheError> {
        if found.data() != self.key.tag().data() {
            return Err(FheError::WrongKey(format!(
                "{what} was computed under key set {} but this client key is {}",
                hex::encode(found.data()),
                self.tag()
            )));
        }
        Ok(())
    }

    /// Decrypts a nearest-match result.
    pub fn nearest(&self, index: &[u8], distance: &[u8]) -> Result<Nearest, FheError> {
        let index = self.uint8(index, "the winner index")?;
        let distance = self.uint8(distance, "the winner distance")?;
        Ok(Nearest {
            driver: (distance != NO_DRIVER).then_some(index),
            distance,
        })
    }

    /// Decrypts search flags.
    pub fn search(&self, matches: &[Vec<u8>]) -> Result<Vec<bool>, FheError> {
        matches
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let what = format!("match flag {i}");
                let flag: FheBool = deserialize_unchecked(bytes, MAX_RESULT_BYTES, &what)?;
                self.check_tag(flag.tag(), &what)?;
                let block = flag.into_raw_parts();
                check_blocks(std::slice::from_ref(&block), 1, 1, &what)?;
                guard(|| self.key.as_ref().decrypt_one_block(&block) != 0)
            })
            .collect()
    }

    fn uint8(&self, bytes: &[u8], what: &str) -> Result<u8, FheError> {
        let value: FheUint8 = deserialize_unchecked(bytes, MAX_RESULT_BYTES, what)?;
        self.check_tag(value.tag(), what)?;
        let (radix, ..) = value.into_raw_parts();
        check_blocks(radix.blocks(), 4, 3, what)?;
        guard(|| self.key.as_ref().decrypt_radix::<u8>(&radix))
    }
}

/// Deserializes a result within `limit` bytes, checking its header (type, version) but
/// not its metadata: the degree of a result block depends on the values the circuit
/// selected between, so TFHE-rs's exact-degree conformance would refuse valid results.
/// [`check_blocks`] checks what matters for decryption instead.
fn deserialize_unchecked<T>(bytes: &[u8], limit: u64, what: &str) -> Result<T, FheError>
where
    T: serde::de::DeserializeOwned + tfhe::Unversionize + tfhe::named::Named,
{
    let mut reader = bytes;
    let value = tfhe::safe_serialization::DeserializationConfig::new(limit)
        .disable_conformance()
        .deserialize_from::<T>(&mut reader)
        .map_err(|e| {
            FheError::Malformed(format!(
                "{what} is not a {} of this key format ({PARAMETERS}): {e}",
                T::NAME.rsplit("::").next().unwrap_or(T::NAME)
            ))
        })?;
    if !reader.is_empty() {
        return Err(FheError::Malformed(format!(
            "{what} has {} bytes after the ciphertext",
            reader.len()
        )));
    }
    Ok(value)
}

/// Checks that result blocks have the parameter set's LWE dimension, modulus, message
/// and carry moduli and atomic pattern, empty carries and at most nominal noise.
fn check_blocks(
    blocks: &[tfhe::shortint::Ciphertext],
    count: usize,
    max_degree: u64,
    what: &str,
) -> Result<(), FheError> {
    use tfhe::shortint::ciphertext::NoiseLevel;
    let bad = |why: &str| {
        FheError::Malformed(format!("{what} is not a result of this key format: {why}"))
    };
    if blocks.len() != count {
        return Err(bad(&format!("{} blocks instead of {count}", blocks.len())));
    }
    let base = tfhe::shortint::AtomicPatternParameters::from(
        tfhe::shortint::parameters::PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    )
    .to_shortint_conformance_param();
    for block in blocks {
        if block.degree.get() > max_degree || block.noise_level() > NoiseLevel::NOMINAL {
            return Err(bad("a block has carries or excess noise"));
        }
        let params = tfhe::shortint::parameters::CiphertextConformanceParams {
            degree: block.degree,
            noise_level: block.noise_level(),
            ..base
        };
        if !block.is_conformant(&params) {
            return Err(bad("a block has other parameters"));
        }
    }
    Ok(())
}

/// Runs TFHE-rs code that may assert on inputs it cannot handle, turning a panic into an
/// error.
pub(crate) fn guard<T>(f: impl FnOnce() -> T) -> Result<T, FheError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown fault".into());
        FheError::Failed(format!("TFHE-rs failed: {msg}"))
    })
}
