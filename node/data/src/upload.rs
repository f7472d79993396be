//! The owner's side of an upload and the reader's checks of what comes back.
//!
//! An [`Uploader`] seals each packed block under the key of its interval (a fresh key per
//! interval) and erasure-codes it at once, so a client can store a block's chunks while it
//! seals the next ([`Uploader::take_chunks`]) instead of holding a whole window in memory.
//! When an upload window of u intervals closes it emits an [`Upload`]: the on-chain
//! [`DataRecord`] (Merkle root of the blocks' ciphertext hashes, computed by the
//! accelerator), the [`Manifest`] that says where each block's chunks are, and the chunks
//! not taken yet.

use std::collections::BTreeMap;

use cpc_accel::Dispatcher;
use cpc_types::codec::Encode;
use cpc_types::{AccessPolicy, DataRecord, Hash32, decode_exact, sha256};
use serde::{Deserialize, Serialize};

use crate::erasure::{BlockEntry, encode_chunks};
use crate::keys::{DataKeys, RecordMeta, WrappedKey};
use crate::pack::{PlainBlock, Record, decode_records};
use crate::seal::{IntervalKey, open_block, seal_block};
use crate::{DataError, StreamParams};

/// Largest manifest accepted from the network.
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// Where the blocks of one upload are: stored in the DHT under its hash, which the
/// on-chain record's metadata names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The stream.
    pub stream_id: Hash32,
    /// First interval of the upload.
    pub first_interval: u64,
    /// Last interval (inclusive).
    pub last_interval: u64,
    /// The blocks, in stream order.
    pub blocks: Vec<BlockEntry>,
}
cpc_types::codec_struct!(Manifest {
    stream_id,
    first_interval,
    last_interval,
    blocks
});

impl Manifest {
    /// The canonical encoding (what is stored and hashed).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// The manifest's id: the SHA-256 of its encoding.
    pub fn id(&self) -> Hash32 {
        sha256(&[&self.to_bytes()])
    }

    /// Decodes a manifest fetched for `record` and checks it against the record: its hash
    /// is the one the metadata names, it covers the record's stream and intervals, and its
    /// block hashes have the record's Merkle root.
    pub fn verify(
        bytes: &[u8],
        record: &DataRecord,
        accel: &Dispatcher,
    ) -> Result<Manifest, DataError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(DataError::malformed("manifest", "too long"));
        }
        let meta = RecordMeta::of(record)?;
        if sha256(&[bytes]) != meta.manifest {
            return Err(DataError::Mismatch { what: "manifest" });
        }
        let m: Manifest = decode_exact(bytes).map_err(|e| DataError::malformed("manifest", e))?;
        if m.stream_id != record.stream_id
            || m.first_interval != record.first_interval
            || m.last_interval != record.last_interval
        {
            return Err(DataError::Mismatch {
                what: "manifest range",
            });
        }
        for b in &m.blocks {
            b.validate()?;
            if b.interval < m.first_interval || b.interval > m.last_interval {
                return Err(DataError::Mismatch {
                    what: "manifest block interval",
                });
            }
        }
        if merkle_root(accel, &m.blocks) != record.root {
            return Err(DataError::Mismatch {
                what: "manifest root",
            });
        }
        Ok(m)
    }

    /// The blocks of one interval.
    pub fn blocks_of(&self, interval: u64) -> impl Iterator<Item = &BlockEntry> {
        self.blocks.iter().filter(move |b| b.interval == interval)
    }
}

/// The record's Merkle root over the blocks' ciphertext hashes (through the accelerator).
pub fn merkle_root(accel: &Dispatcher, blocks: &[BlockEntry]) -> Hash32 {
    let leaves: Vec<[u8; 32]> = blocks.iter().map(|b| b.hash.0).collect();
    Hash32(accel.merkle_root(&leaves))
}

/// One chunk: its id (SHA-256) and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// SHA-256 of the bytes.
    pub id: Hash32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Everything one upload window produces.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The record to submit on chain (as `TxKind::DataRecord`).
    pub record: DataRecord,
    /// The manifest, whose encoding is stored in the DHT under [`Manifest::id`].
    pub manifest: Manifest,
    /// The chunks of every block not already taken with [`Uploader::take_chunks`], in
    /// manifest order (n per block).
    pub chunks: Vec<Chunk>,
}

impl Upload {
    /// Ciphertext bytes stored (before erasure coding).
    pub fn ciphertext_bytes(&self) -> u64 {
        self.manifest.blocks.iter().map(|b| b.len).sum()
    }
}

/// Seals blocks and cuts them into uploads; lives on the owner's side.
pub struct Uploader<'a> {
    params: StreamParams,
    stream: Hash32,
    policy: AccessPolicy,
    keys: &'a DataKeys,
    accel: &'a Dispatcher,
    window: Option<(u64, u64)>,
    /// The open window's blocks.
    entries: Vec<BlockEntry>,
    /// Chunks of the open window not taken yet.
    chunks: Vec<Chunk>,
    interval_keys: BTreeMap<u64, IntervalKey>,
}

impl std::fmt::Debug for Uploader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploader")
            .field("stream", &self.stream)
            .field("window", &self.window)
            .field("blocks", &self.entries.len())
            .finish()
    }
}

impl<'a> Uploader<'a> {
    /// An uploader for the owner with `keys`.
    pub fn new(
        params: StreamParams,
        stream: Hash32,
        policy: AccessPolicy,
        keys: &'a DataKeys,
        accel: &'a Dispatcher,
    ) -> Result<Self, DataError> {
        params.validate()?;
        Ok(Self {
            params,
            stream,
            policy,
            keys,
            accel,
            window: None,
            entries: Vec::new(),
            chunks: Vec::new(),
            interval_keys: BTreeMap::new(),
        })
    }

    /// Seals a block; returns the previous upload if this block opens a new window.
    /// Blocks must come in order (as a [`crate::Packer`] emits them).
    pub fn push(&mut self, block: &PlainBlock) -> Result<Option<Upload>, DataError> {
        let range = self.params.upload_range(block.interval);
        let done = match self.window {
            Some(w) if w.0 > range.0 => {
                return Err(DataError::OutOfOrder {
                    timestamp_ms: block.period * self.params.period_ms,
                    period: block.period,
                });
            }
            Some(w) if w != range => self.finish()?,
            _ => None,
        };
        self.window = Some(range);
        let key = self
            .interval_keys
            .entry(block.interval)
            .or_insert_with(IntervalKey::generate);
        let ct = seal_block(key, &self.stream, block.interval, block.seq, &block.bytes);
        let chunks = encode_chunks(
            &ct,
            usize::from(self.params.data_chunks),
            usize::from(self.params.total_chunks),
        )?;
        let mut items: Vec<&[u8]> = Vec::with_capacity(chunks.len() + 1);
        items.push(&ct);
        items.extend(chunks.iter().map(Vec::as_slice));
        let hashes = self.accel.sha256_batch(&items);
        let Some((hash, ids)) = hashes.split_first() else {
            return Err(DataError::Erasure("the accelerator hashed nothing".into()));
        };
        let (hash, ids) = (
            Hash32(*hash),
            ids.iter().copied().map(Hash32).collect::<Vec<_>>(),
        );
        self.entries.push(BlockEntry {
            seq: block.seq,
            interval: block.interval,
            hash,
            len: ct.len() as u64,
            data_chunks: self.params.data_chunks,
            chunks: ids.clone(),
        });
        self.chunks.extend(
            ids.into_iter()
                .zip(chunks)
                .map(|(id, bytes)| Chunk { id, bytes }),
        );
        Ok(done)
    }

    /// The chunks of the blocks pushed since the last call (n per block, in order): store
    /// them while the next blocks are sealed. The [`Upload`] of their window must be
    /// submitted only once they are all stored.
    pub fn take_chunks(&mut self) -> Vec<Chunk> {
        std::mem::take(&mut self.chunks)
    }

    /// Closes the open window, if it holds blocks.
    pub fn finish(&mut self) -> Result<Option<Upload>, DataError> {
        let Some((first, last)) = self.window.take() else {
            return Ok(None);
        };
        let blocks = std::mem::take(&mut self.entries);
        let all_chunks = std::mem::take(&mut self.chunks);
        let keys = std::mem::take(&mut self.interval_keys);
        if blocks.is_empty() {
            return Ok(None);
        }
        let manifest = Manifest {
            stream_id: self.stream,
            first_interval: first,
            last_interval: last,
            blocks,
        };
        let wrapped = keys
            .iter()
            .map(|(i, key)| match self.policy {
                AccessPolicy::Private => self.keys.wrap(&self.stream, *i, key),
                // Public data: the key is in the record, for anyone.
                AccessPolicy::Public => Ok(WrappedKey {
                    interval: *i,
                    capsule: Vec::new(),
                    ciphertext: key.as_bytes().to_vec(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = RecordMeta {
            manifest: manifest.id(),
            delegating_pk: self.keys.delegating_pk(&self.stream),
            verifying_pk: self.keys.verifying_pk(),
            keys: wrapped,
        };
        let record = DataRecord {
            stream_id: self.stream,
            first_interval: first,
            last_interval: last,
            root: merkle_root(self.accel, &manifest.blocks),
            policy: self.policy,
            capsule: meta.to_bytes(),
        };
        Ok(Some(Upload {
            record,
            manifest,
            chunks: all_chunks,
        }))
    }
}

/// Decrypts the rebuilt ciphertexts of an interval's blocks (in manifest order) and returns
/// their records.
pub fn open_interval(
    key: &IntervalKey,
    stream: &Hash32,
    blocks: &[(BlockEntry, Vec<u8>)],
) -> Result<Vec<Record>, DataError> {
    let mut out = Vec::new();
    for (entry, ct) in blocks {
        if sha256(&[ct]) != entry.hash {
            return Err(DataError::Mismatch { what: "block" });
        }
        let pt = open_block(key, stream, entry.interval, entry.seq, ct)?;
        out.extend(decode_records(&pt)?);
    }
    Ok(out)
}
