//! Homomorphic matching with TFHE-rs (feature `fhe`).
//!
//! Three parties, three keys:
//!
//! - the **key holder** runs [`generate_keys`] once and keeps the client key: it alone can
//!   decrypt ([`Decryptor`]);
//! - **participants** (riders, drivers, data owners) get the compact public key and
//!   encrypt their own values with it ([`Encryptor`]): a grid position, an availability
//!   flag, a search tag — each as one packed compact ciphertext list;
//! - the **appliance** gets the compressed server key, loads it once
//!   ([`TfheMatcher::load_key`], cached under a memory bound) and computes on ciphertexts
//!   it cannot read ([`TfheMatcher`] implements [`crate::FheMatcher`]).
//!
//! Every key and ciphertext uses one parameter set, [`PARAMETERS`]: TFHE-rs's default
//! 2-bit-message/2-bit-carry blocks (KS-PBS, TUniform noise, failure probability 2⁻¹²⁸)
//! with dedicated compact-public-key parameters and a keyswitch into the compute key.
//! The key set carries a random 16-byte tag that TFHE-rs copies into every ciphertext,
//! so a ciphertext made under another key set is refused by name instead of silently
//! giving garbage.
//!
//! # The computations
//!
//! **Nearest driver** (whitepaper §4.2, shared travel): rider `(x, y)` and drivers
//! `(x_i, y_i, available_i)`, coordinates on the grid `0..=GRID_MAX` (8-bit ciphertexts).
//! Per driver, in parallel: `d_i = |x - x_i| + |y - y_i|` (each `|a - b|` is one
//! overflowing subtraction, a negation and a select on the borrow), then
//! `d_i = available_i ? d_i : NO_DRIVER`. An arg-min tree then merges neighbours
//! level by level (`a.d <= b.d` selects distance and index; the left, lower index wins
//! ties), so the result is the lowest-indexed nearest available driver and its distance;
//! distance [`NO_DRIVER`] means none was available. Depth `ceil(log2 N)` merges; the
//! tree's shape ([`arg_min`]) does not depend on the thread count.
//!
//! **Encrypted search** (§3.1, the data market's private search): one encrypted 32-bit
//! query tag against N encrypted record tags gives N encrypted equality flags.
//!
//! [`nearest_plain`] and [`search_plain`] are the plaintext definitions the encrypted
//! results must decrypt to.
//!
//! # Threads
//!
//! TFHE-rs reads its server key from a thread-local. A [`TfheMatcher`] owns a rayon pool
//! and runs one job at a time on it: before a job it sets the job's key on every pool
//! thread (`broadcast`), after it clears them, and nothing changes the key while a job
//! runs — a thread that steals work inside a TFHE-rs operation must never swap the key
//! that operation is reading.

mod circuit;
mod keys;
mod matcher;

pub use circuit::{Driver, Rider, abs_diff, arg_min, distance, merge};
pub use keys::{Decryptor, Encryptor, KeySet, Nearest, generate_keys};
pub use matcher::{FheConfig, FheDevice, TfheMatcher};

use crate::matching::FheError;
pub use crate::matching::{GRID_MAX, MAX_DRIVERS, NO_DRIVER};

use tfhe::shortint::parameters::{
    CompactPublicKeyEncryptionParameters, PARAM_KEYSWITCH_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
};

/// The TFHE-rs version and parameter set of every key and ciphertext.
pub const PARAMETERS: &str = "tfhe-rs 1.8 PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 \
     + PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128";

/// Largest serialized participant ciphertext (a packed list of at most three values is
/// about 17 KiB).
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Largest serialized result ciphertext (an 8-bit result is about 66 KB).
pub const MAX_RESULT_BYTES: u64 = 1 << 20;

/// Largest serialized client key or public key.
pub const MAX_CLIENT_KEY_BYTES: u64 = 64 << 20;

/// The TFHE-rs configuration of the parameter set.
pub fn tfhe_config() -> tfhe::Config {
    tfhe::ConfigBuilder::with_custom_parameters(PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128)
        .use_dedicated_compact_public_key_parameters((
            PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
            PARAM_KEYSWITCH_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
        ))
        .build()
}

pub(crate) fn pke_parameters() -> CompactPublicKeyEncryptionParameters {
    PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128
}

/// The nearest available driver by Manhattan distance — lowest index on ties — and the
/// distance, or `None` when no driver is available: what an encrypted nearest-match
/// decrypts to. Coordinates must lie on the grid (`<= GRID_MAX`).
pub fn nearest_plain(rider: (u8, u8), drivers: &[(u8, u8, bool)]) -> Option<(usize, u8)> {
    drivers
        .iter()
        .enumerate()
        .filter(|(_, d)| d.2)
        .map(|(i, &(x, y, _))| (rider.0.abs_diff(x) + rider.1.abs_diff(y), i))
        .min()
        .map(|(d, i)| (i, d))
}

/// Whether each record equals the query: what an encrypted search decrypts to.
pub fn search_plain(query: u32, records: &[u32]) -> Vec<bool> {
    records.iter().map(|&r| r == query).collect()
}

/// Serializes a TFHE-rs object with versioning, within `limit` bytes.
pub(crate) fn serialize<T>(value: &T, limit: u64) -> Result<Vec<u8>, FheError>
where
    T: serde::Serialize + tfhe::Versionize + tfhe::named::Named,
{
    let mut out = Vec::new();
    tfhe::safe_serialization::SerializationConfig::new(limit)
        .serialize_into(value, &mut out)
        .map_err(|e| FheError::Failed(format!("cannot serialize a {}: {e}", T::NAME)))?;
    Ok(out)
}

/// Deserializes a TFHE-rs object within `limit` bytes, checking its header (type name,
/// version) and its conformance to `params`. `what` names the input in errors.
pub(crate) fn deserialize<T>(
    bytes: &[u8],
    limit: u64,
    params: &T::ParameterSet,
    what: &str,
) -> Result<T, FheError>
where
    T: serde::de::DeserializeOwned
        + tfhe::Unversionize
        + tfhe::named::Named
        + tfhe::prelude::ParameterSetConformant,
{
    if bytes.len() as u64 > limit {
        return Err(FheError::TooLarge(format!(
            "{what} is {} bytes, more than the {limit} a {} may take",
            bytes.len(),
            short_name::<T>()
        )));
    }
    let mut reader = bytes;
    let value = tfhe::safe_serialization::DeserializationConfig::new(limit)
        .deserialize_from::<T>(&mut reader, params)
        .map_err(|e| {
            FheError::Malformed(format!(
                "{what} is not a {} of this key format ({PARAMETERS}): {e}",
                short_name::<T>()
            ))
        })?;
    if !reader.is_empty() {
        return Err(FheError::Malformed(format!(
            "{what} has {} bytes after the {}: send one serialized value",
            reader.len(),
            short_name::<T>()
        )));
    }
    Ok(value)
}

fn short_name<T: tfhe::named::Named>() -> &'static str {
    T::NAME.rsplit("::").next().unwrap_or(T::NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_nearest_prefers_the_lowest_index_on_ties_and_skips_unavailable() {
        let drivers = [(5, 5, true), (3, 3, false), (1, 1, true), (1, 1, true)];
        assert_eq!(nearest_plain((2, 2), &drivers), Some((2, 2)));
        assert_eq!(nearest_plain((2, 2), &[(0, 0, false)]), None);
        assert_eq!(nearest_plain((2, 2), &[]), None);
        assert_eq!(
            nearest_plain((0, 0), &[(GRID_MAX, GRID_MAX, true)]),
            Some((0, 254))
        );
    }

    #[test]
    fn plain_search_flags_equal_tags() {
        assert_eq!(search_plain(7, &[1, 7, 7, 0]), [false, true, true, false]);
    }
}
