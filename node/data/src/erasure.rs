//! Chunks: a block's ciphertext split into k pieces and Reed–Solomon-extended to n.
//!
//! Chunk `i < k` is the i-th slice of the (zero-padded) ciphertext; chunks `k..n` are
//! recovery chunks. A chunk's id is its SHA-256, listed in the block's [`BlockEntry`], so
//! every chunk is checked before use and a node that returns anything else is caught.

use std::collections::BTreeMap;

use bytes::Bytes;

use cpc_types::{Hash32, sha256};
use serde::{Deserialize, Serialize};

use crate::DataError;

/// Where a block's chunks are, and how to check them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// The block's position in its stream.
    pub seq: u64,
    /// Its encryption interval.
    pub interval: u64,
    /// SHA-256 of the block's ciphertext (a leaf of the record's Merkle root).
    pub hash: Hash32,
    /// Length of the ciphertext.
    pub len: u64,
    /// Chunks needed to rebuild the block (k).
    pub data_chunks: u16,
    /// Ids of the n chunks, in order.
    pub chunks: Vec<Hash32>,
}
cpc_types::codec_struct!(BlockEntry {
    seq,
    interval,
    hash,
    len,
    data_chunks,
    chunks
});

impl BlockEntry {
    /// k.
    pub fn k(&self) -> usize {
        usize::from(self.data_chunks)
    }

    /// n.
    pub fn n(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes of each chunk.
    pub fn chunk_len(&self) -> usize {
        chunk_len(self.len as usize, self.k())
    }

    /// Checks the entry's shape (for entries read from outside).
    pub fn validate(&self) -> Result<(), DataError> {
        if self.k() == 0 || self.n() <= self.k() || self.n() > usize::from(crate::MAX_TOTAL_CHUNKS)
        {
            return Err(DataError::malformed("block entry", "bad k-of-n"));
        }
        if self.len > u64::from(u32::MAX) {
            return Err(DataError::malformed("block entry", "block too long"));
        }
        Ok(())
    }
}

/// Chunk size for a ciphertext of `len` bytes cut in `k`: even, as the codec needs.
pub fn chunk_len(len: usize, k: usize) -> usize {
    let per = len.div_ceil(k).max(2);
    per + per % 2
}

/// Splits and extends a ciphertext into `n` chunks, `k` of which rebuild it.
pub fn encode_chunks(ciphertext: &[u8], k: usize, n: usize) -> Result<Vec<Vec<u8>>, DataError> {
    if k == 0 || n <= k {
        return Err(DataError::Params("need 0 < k < n".into()));
    }
    let cl = chunk_len(ciphertext.len(), k);
    let mut originals: Vec<Vec<u8>> = (0..k)
        .map(|i| {
            let start = (i * cl).min(ciphertext.len());
            let end = ((i + 1) * cl).min(ciphertext.len());
            let mut c = ciphertext[start..end].to_vec();
            c.resize(cl, 0);
            c
        })
        .collect();
    let recovery = reed_solomon_simd::encode(k, n - k, &originals)
        .map_err(|e| DataError::Erasure(e.to_string()))?;
    originals.extend(recovery);
    Ok(originals)
}

/// What became of a chunk offered to a [`BlockAssembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Verified and kept.
    Accepted,
    /// Already held; ignored.
    Duplicate,
    /// Does not hash to the id the block lists: penalise whoever sent it.
    Rejected,
}

/// Collects verified chunks of one block until k of them rebuild it.
#[derive(Debug)]
pub struct BlockAssembler {
    entry: BlockEntry,
    held: BTreeMap<usize, Bytes>,
}

impl BlockAssembler {
    /// An assembler for the block `entry` describes.
    pub fn new(entry: BlockEntry) -> Result<Self, DataError> {
        entry.validate()?;
        Ok(Self {
            entry,
            held: BTreeMap::new(),
        })
    }

    /// The block being rebuilt.
    pub fn entry(&self) -> &BlockEntry {
        &self.entry
    }

    /// Offers chunk `index`; it is kept only if it hashes to the listed id.
    pub fn offer(&mut self, index: usize, bytes: impl Into<Bytes>) -> Offer {
        let bytes = bytes.into();
        let Some(id) = self.entry.chunks.get(index) else {
            return Offer::Rejected;
        };
        if sha256(&[&bytes]) != *id || bytes.len() != self.entry.chunk_len() {
            return Offer::Rejected;
        }
        if self.held.contains_key(&index) {
            return Offer::Duplicate;
        }
        self.held.insert(index, bytes);
        Offer::Accepted
    }

    /// Whether k verified chunks are held.
    pub fn is_ready(&self) -> bool {
        self.held.len() >= self.entry.k()
    }

    /// Indices of chunks not held yet, in the order to ask for them (data chunks first:
    /// with all of them no decoding is needed).
    pub fn wanted(&self) -> Vec<usize> {
        (0..self.entry.n())
            .filter(|i| !self.held.contains_key(i))
            .collect()
    }

    /// Indices of the chunks held.
    pub fn held(&self) -> Vec<usize> {
        self.held.keys().copied().collect()
    }

    /// Rebuilds the ciphertext and checks it against the block hash.
    pub fn finish(&self) -> Result<Vec<u8>, DataError> {
        let k = self.entry.k();
        let n = self.entry.n();
        if !self.is_ready() {
            return Err(DataError::NotEnoughChunks {
                seq: self.entry.seq,
                have: self.held.len(),
                need: k,
            });
        }
        let cl = self.entry.chunk_len();
        let mut originals: Vec<Option<&[u8]>> = vec![None; k];
        for (i, c) in self.held.range(..k) {
            originals[*i] = Some(&c[..]);
        }
        let restored = if originals.iter().all(Option::is_some) {
            BTreeMap::new()
        } else {
            reed_solomon_simd::decode(
                k,
                n - k,
                self.held.range(..k).map(|(i, c)| (*i, c)),
                self.held.range(k..).map(|(i, c)| (*i - k, c)),
            )
            .map_err(|e| DataError::Erasure(e.to_string()))?
        };
        let mut out = Vec::with_capacity(k * cl);
        for (i, held) in originals.iter().enumerate() {
            match held {
                Some(c) => out.extend_from_slice(c),
                None => out.extend_from_slice(
                    restored
                        .get(&i)
                        .ok_or_else(|| DataError::Erasure(format!("chunk {i} not restored")))?,
                ),
            }
        }
        out.truncate(self.entry.len as usize);
        if sha256(&[&out]) != self.entry.hash {
            return Err(DataError::Mismatch { what: "block" });
        }
        Ok(out)
    }
}

/// A repair task's decision for one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepairPlan {
    /// Enough chunks remain.
    Healthy,
    /// Fetch any k of `available`, rebuild, and store `missing` again.
    Repair {
        /// Chunks still stored.
        available: Vec<usize>,
        /// Chunks to re-create.
        missing: Vec<usize>,
    },
    /// Fewer than k chunks remain: the block cannot be rebuilt.
    Lost,
}

/// Plans the repair of a block whose chunks `present` are reachable: repair when fewer
/// than `threshold` (clamped to k..=n) remain.
pub fn plan_repair(entry: &BlockEntry, present: &[bool], threshold: usize) -> RepairPlan {
    let available: Vec<usize> = (0..entry.n())
        .filter(|i| present.get(*i).copied().unwrap_or(false))
        .collect();
    let threshold = threshold.clamp(entry.k(), entry.n());
    if available.len() < entry.k() {
        RepairPlan::Lost
    } else if available.len() >= threshold {
        RepairPlan::Healthy
    } else {
        let missing = (0..entry.n()).filter(|i| !available.contains(i)).collect();
        RepairPlan::Repair { available, missing }
    }
}

/// Re-creates chunks `missing` from an assembler holding k verified chunks; each
/// re-created chunk is checked against its listed id.
pub fn rebuild_chunks(
    assembler: &BlockAssembler,
    missing: &[usize],
) -> Result<Vec<(usize, Vec<u8>)>, DataError> {
    let entry = assembler.entry();
    let ciphertext = assembler.finish()?;
    let all = encode_chunks(&ciphertext, entry.k(), entry.n())?;
    missing
        .iter()
        .map(|&i| {
            let c = all
                .get(i)
                .ok_or_else(|| DataError::Erasure(format!("no chunk {i}")))?;
            if sha256(&[c]) != entry.chunks[i] {
                return Err(DataError::Mismatch {
                    what: "rebuilt chunk",
                });
            }
            Ok((i, c.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_for(ct: &[u8], k: usize, n: usize) -> (BlockEntry, Vec<Vec<u8>>) {
        let chunks = encode_chunks(ct, k, n).unwrap();
        let entry = BlockEntry {
            seq: 9,
            interval: 1,
            hash: sha256(&[ct]),
            len: ct.len() as u64,
            data_chunks: k as u16,
            chunks: chunks.iter().map(|c| sha256(&[c])).collect(),
        };
        (entry, chunks)
    }

    #[test]
    fn any_k_of_n_chunks_rebuild_the_block() {
        for len in [1usize, 7, 64, 1001, 70_000] {
            let ct: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let (entry, chunks) = entry_for(&ct, 4, 6);
            // Every 4-subset of 6.
            for mask in 0u32..64 {
                if mask.count_ones() != 4 {
                    continue;
                }
                let mut a = BlockAssembler::new(entry.clone()).unwrap();
                for i in (0..6).filter(|i| mask & (1 << i) != 0) {
                    assert_eq!(a.offer(i, chunks[i].clone()), Offer::Accepted);
                }
                assert_eq!(a.finish().unwrap(), ct, "len {len} mask {mask:b}");
            }
        }
    }

    #[test]
    fn tampered_chunks_are_rejected_and_others_used() {
        let ct: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let (entry, chunks) = entry_for(&ct, 4, 6);
        let mut a = BlockAssembler::new(entry).unwrap();
        let mut bad = chunks[0].clone();
        bad[3] ^= 0x40;
        assert_eq!(a.offer(0, bad), Offer::Rejected);
        assert_eq!(a.offer(1, chunks[0].clone()), Offer::Rejected); // wrong position
        assert_eq!(a.offer(17, chunks[0].clone()), Offer::Rejected);
        for (i, c) in chunks.iter().enumerate().take(4).skip(1) {
            assert_eq!(a.offer(i, c.clone()), Offer::Accepted);
        }
        assert_eq!(a.offer(1, chunks[1].clone()), Offer::Duplicate);
        assert!(matches!(
            a.finish(),
            Err(DataError::NotEnoughChunks {
                have: 3,
                need: 4,
                ..
            })
        ));
        assert_eq!(a.wanted(), vec![0, 4, 5]);
        assert_eq!(a.offer(5, chunks[5].clone()), Offer::Accepted);
        assert_eq!(a.finish().unwrap(), ct);
    }

    #[test]
    fn a_forged_entry_is_caught_by_the_block_hash() {
        // A consistent set of chunks for other data: every chunk verifies against the
        // forged entry, but the rebuilt block does not hash to the credential.
        let (mut entry, _) = entry_for(&[1u8; 100], 2, 3);
        let (forged, chunks) = entry_for(&[2u8; 100], 2, 3);
        entry.chunks = forged.chunks;
        let mut a = BlockAssembler::new(entry).unwrap();
        a.offer(0, chunks[0].clone());
        a.offer(2, chunks[2].clone());
        assert_eq!(a.finish(), Err(DataError::Mismatch { what: "block" }));
    }

    #[test]
    fn repair_recreates_the_lost_chunks() {
        let ct: Vec<u8> = (0..9999u32).map(|i| i as u8).collect();
        let (entry, chunks) = entry_for(&ct, 4, 6);
        assert_eq!(plan_repair(&entry, &[true; 6], 6), RepairPlan::Healthy);
        assert_eq!(
            plan_repair(&entry, &[true, false, true, false, false, true], 6),
            RepairPlan::Lost
        );
        let present = [false, true, true, true, false, true];
        assert_eq!(plan_repair(&entry, &present, 4), RepairPlan::Healthy);
        let RepairPlan::Repair { available, missing } = plan_repair(&entry, &present, 6) else {
            panic!("expected a repair");
        };
        assert_eq!(missing, vec![0, 4]);
        let mut a = BlockAssembler::new(entry).unwrap();
        for i in available {
            a.offer(i, chunks[i].clone());
        }
        let rebuilt = rebuild_chunks(&a, &missing).unwrap();
        assert_eq!(
            rebuilt,
            vec![(0, chunks[0].clone()), (4, chunks[4].clone())]
        );
    }
}
