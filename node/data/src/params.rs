//! Per-stream parameters.

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The most encryption intervals one upload may cover: each needs a wrapped key in the
/// record's metadata, which the chain limits to 16 KiB.
pub const MAX_INTERVALS_PER_UPLOAD: u32 = 48;

/// The largest erasure code: chunks of one block.
pub const MAX_TOTAL_CHUNKS: u16 = 64;

/// How a stream is packed, encrypted, published and stored.
///
/// Time is cut into periods of `period_ms` (T); each period's records form one block (or
/// several when they exceed `max_block_bytes`). An encryption interval (e) is
/// `blocks_per_interval` periods and has its own key; an upload (u) is
/// `intervals_per_upload` intervals and yields one on-chain record. Each block's
/// ciphertext is split into `data_chunks` (k) pieces and extended to `total_chunks` (n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamParams {
    /// Block period T in milliseconds.
    pub period_ms: u64,
    /// Periods per encryption interval (e / T).
    pub blocks_per_interval: u32,
    /// Encryption intervals per upload (u / e).
    pub intervals_per_upload: u32,
    /// Chunks any block is rebuilt from (k).
    pub data_chunks: u16,
    /// Chunks stored per block (n > k).
    pub total_chunks: u16,
    /// Largest plaintext block in bytes; a period holding more is split.
    pub max_block_bytes: u32,
}

impl Default for StreamParams {
    fn default() -> Self {
        Self {
            period_ms: 10_000,
            blocks_per_interval: 6,
            intervals_per_upload: 10,
            data_chunks: 4,
            total_chunks: 6,
            max_block_bytes: 4 << 20,
        }
    }
}

impl StreamParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |m: &str| Err(DataError::Params(m.to_string()));
        if self.period_ms == 0 {
            return bad("period_ms must be positive");
        }
        if self.blocks_per_interval == 0 {
            return bad("blocks_per_interval must be positive");
        }
        if self.intervals_per_upload == 0 || self.intervals_per_upload > MAX_INTERVALS_PER_UPLOAD {
            return Err(DataError::Params(format!(
                "intervals_per_upload must be 1..={MAX_INTERVALS_PER_UPLOAD}"
            )));
        }
        if self.data_chunks == 0 || self.total_chunks <= self.data_chunks {
            return bad("need 0 < data_chunks (k) < total_chunks (n)");
        }
        if self.total_chunks > MAX_TOTAL_CHUNKS {
            return Err(DataError::Params(format!(
                "total_chunks must be at most {MAX_TOTAL_CHUNKS}"
            )));
        }
        if self.max_block_bytes < 64 || self.max_block_bytes > 64 << 20 {
            return bad("max_block_bytes must be 64 B..=64 MiB");
        }
        Ok(())
    }

    /// The encryption interval of a period.
    pub fn interval_of_period(&self, period: u64) -> u64 {
        period / u64::from(self.blocks_per_interval)
    }

    /// The interval range `[first, last]` of the upload holding `interval`.
    pub fn upload_range(&self, interval: u64) -> (u64, u64) {
        let u = u64::from(self.intervals_per_upload);
        let first = interval - interval % u;
        (first, first.saturating_add(u - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_codes_are_rejected() {
        StreamParams::default().validate().unwrap();
        let p = StreamParams {
            data_chunks: 4,
            total_chunks: 4,
            ..StreamParams::default()
        };
        assert!(p.validate().is_err());
        let p = StreamParams {
            intervals_per_upload: 0,
            ..StreamParams::default()
        };
        assert!(p.validate().is_err());
        let p = StreamParams::default();
        assert_eq!(p.upload_range(0), (0, 9));
        assert_eq!(p.upload_range(23), (20, 29));
        assert_eq!(p.interval_of_period(13), 2);
    }
}
