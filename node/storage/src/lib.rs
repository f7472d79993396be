//! RocksDB storage for the node.
//!
//! Column families:
//!
//! | family | key | value |
//! |---|---|---|
//! | `headers` | height (u64 BE) | header and certificate |
//! | `bodies` | height | the block's transactions |
//! | `receipts` | height | the receipts of those transactions |
//! | `txindex` | transaction id | height and index in the block |
//! | `state` | state key | state value |
//! | `meta` | name | storage format, genesis hash, head height |
//! | `journal` | view, sequence | consensus messages this node sent since the last final block |
//! | `chunks` | chunk id (SHA-256) | an encrypted data chunk or manifest this node stores |
//! | `kfrags` | stream id, grantee | a kfrag this node holds as a proxy |
//! | `keys` | account address | the account's signed umbral key announcement |
//! | `side` | group id, `v` or `t`, vertex id or transaction hash | side-chain history the node pruned from memory |
//! | | group id, `a`, anchor (u64 BE), `v` or `t`, id | empty: the vertices the archive files under that final anchor, and the transactions no vertex there holds |
//! | | group id, `s`, anchor | the bytes filed under it (u64 LE) |
//! | | group id, `k` | the first anchor not forgotten (u64 LE; see `Store::side_forget`) |
//!
//! A committed block is one atomic write batch: header, body, receipts, index entries,
//! the state changes and the new head. A crash leaves the store at the last committed
//! block, never between. The store records its format and the genesis it belongs to, and
//! refuses a data directory written by another format or for another network rather
//! than reading it wrongly.

use std::path::{Path, PathBuf};

use cpc_types::codec::{Decode, Encode, decode_exact};
use cpc_types::{Block, BlockHeader, Certificate, Hash32, SignedTransaction, Ticket, TxReceipt};
use rocksdb::{ColumnFamilyDescriptor, DB, IteratorMode, Options, WriteBatch, WriteOptions};

/// The storage format this build reads and writes (v4: anchors carry endorsements and
/// rewards, side groups a reward pool).
pub const FORMAT: &str = "cpchain-storage-v4";

const CF_HEADERS: &str = "headers";
const CF_BODIES: &str = "bodies";
const CF_RECEIPTS: &str = "receipts";
const CF_TXINDEX: &str = "txindex";
const CF_STATE: &str = "state";
const CF_META: &str = "meta";
const CF_JOURNAL: &str = "journal";
const CF_CHUNKS: &str = "chunks";
const CF_KFRAGS: &str = "kfrags";
const CF_KEYS: &str = "keys";
const CF_SIDE: &str = "side";
const FAMILIES: [&str; 11] = [
    CF_HEADERS,
    CF_BODIES,
    CF_RECEIPTS,
    CF_TXINDEX,
    CF_STATE,
    CF_META,
    CF_JOURNAL,
    CF_CHUNKS,
    CF_KFRAGS,
    CF_KEYS,
    CF_SIDE,
];

const META_FORMAT: &[u8] = b"format";
const META_GENESIS: &[u8] = b"genesis";
const META_HEAD: &[u8] = b"head";

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another cpchain process")]
    InUse(PathBuf),
    /// The directory was written by another storage format.
    #[error(
        "data directory {path} holds storage format {found:?}; this cpchain uses {expected:?}. \
         Use the cpchain version that wrote it, or start from an empty directory"
    )]
    Format {
        /// The directory.
        path: PathBuf,
        /// What it holds.
        found: String,
        /// What this build uses.
        expected: &'static str,
    },
    /// The directory belongs to another network.
    #[error(
        "data directory {path} belongs to the network with genesis {found}; the configured genesis is {expected}"
    )]
    Genesis {
        /// The directory.
        path: PathBuf,
        /// Genesis hash stored.
        found: Hash32,
        /// Genesis hash configured.
        expected: Hash32,
    },
    /// The directory holds something else.
    #[error(
        "{0} is not empty and is not a cpchain data directory; choose an empty or new directory"
    )]
    NotOurs(PathBuf),
    /// Stored bytes do not decode.
    #[error("corrupt {0} in the data directory")]
    Corrupt(String),
    /// RocksDB failed.
    #[error("storage error: {0}")]
    Db(#[from] rocksdb::Error),
}

/// Settings of the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The RocksDB directory.
    pub path: PathBuf,
    /// Whether every block commit waits for the disk (survives power loss, not only a
    /// crash of the process).
    pub sync: bool,
}

/// A stored key and value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Where a transaction was committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Index in the block.
    pub index: u32,
}

/// The node's store.
pub struct Store {
    db: DB,
    path: PathBuf,
    sync: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store for the network whose genesis hash is `genesis`.
    pub fn open(config: &StoreConfig, genesis: Hash32) -> Result<Store, StorageError> {
        let path = config.path.clone();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(256);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // Flushes and compactions yield to consensus and the side chain: on a small
        // appliance they otherwise take the cores in bursts and show as latency.
        if let Ok(mut env) = rocksdb::Env::new() {
            env.lower_thread_pool_cpu_priority();
            env.lower_high_priority_thread_pool_cpu_priority();
            opts.set_env(&env);
        }
        let non_empty = std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_some());
        match DB::list_cf(&opts, &path) {
            Ok(found) => {
                // Ours has a `meta` family and nothing we do not know.
                let foreign = found
                    .iter()
                    .any(|cf| cf != "default" && !FAMILIES.contains(&cf.as_str()));
                if foreign || !found.iter().any(|cf| cf == CF_META) {
                    return Err(StorageError::Format {
                        path,
                        found: format!("a RocksDB with column families {found:?}"),
                        expected: FORMAT,
                    });
                }
            }
            Err(_) if non_empty => return Err(StorageError::NotOurs(path)),
            Err(_) => {}
        }
        let cfs = FAMILIES.iter().map(|n| {
            let mut o = Options::default();
            if *n == CF_CHUNKS {
                // Chunks are ciphertext: compression costs time and saves nothing.
                o.set_compression_type(rocksdb::DBCompressionType::None);
                // Megabyte values live in blob files: compactions move their keys, not
                // their bytes (in the LSM every level would rewrite every chunk).
                o.set_enable_blob_files(true);
                o.set_min_blob_size(4 << 10);
                o.set_blob_file_size(256 << 20);
                o.set_blob_compression_type(rocksdb::DBCompressionType::None);
                // Space of deleted (pruned, repaired-away) chunks comes back.
                o.set_enable_blob_gc(true);
            }
            ColumnFamilyDescriptor::new(*n, o)
        });
        let db = DB::open_cf_descriptors(&opts, &path, cfs).map_err(|e| {
            if e.to_string().contains("lock") {
                StorageError::InUse(path.clone())
            } else {
                StorageError::Db(e)
            }
        })?;
        let store = Store {
            db,
            path,
            sync: config.sync,
        };
        let meta = store.cf(CF_META)?;
        match store.db.get_cf(meta, META_FORMAT)? {
            Some(found) if found != FORMAT.as_bytes() => {
                return Err(StorageError::Format {
                    path: store.path.clone(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: FORMAT,
                });
            }
            Some(_) => {}
            None => {
                if store.db.get_cf(meta, META_HEAD)?.is_some() {
                    return Err(StorageError::Corrupt(
                        "metadata: head without format".into(),
                    ));
                }
                let mut batch = WriteBatch::default();
                batch.put_cf(meta, META_FORMAT, FORMAT);
                batch.put_cf(meta, META_GENESIS, genesis.0);
                store.write(batch)?;
            }
        }
        let stored = store
            .db
            .get_cf(meta, META_GENESIS)?
            .ok_or_else(|| StorageError::Corrupt("metadata: no genesis".into()))?;
        let found = Hash32(
            stored
                .as_slice()
                .try_into()
                .map_err(|_| StorageError::Corrupt("metadata: genesis hash".into()))?,
        );
        if found != genesis {
            return Err(StorageError::Genesis {
                path: store.path.clone(),
                found,
                expected: genesis,
            });
        }
        Ok(store)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StorageError::Corrupt(format!("column family {name} is missing")))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Height of the last committed block, `None` before genesis is committed.
    pub fn head(&self) -> Result<Option<u64>, StorageError> {
        match self.db.get_cf(self.cf(CF_META)?, META_HEAD)? {
            None => Ok(None),
            Some(v) => decode_exact::<u64>(&v)
                .map(Some)
                .map_err(|_| StorageError::Corrupt("metadata: head height".into())),
        }
    }

    /// Appends a consensus message this node sends in `view`; `sync` waits for the disk
    /// (votes must be durable before they leave, or a restart could vote twice).
    pub fn journal_append(
        &self,
        view: u64,
        seq: u32,
        msg: &[u8],
        sync: bool,
    ) -> Result<(), StorageError> {
        let mut key = view.to_be_bytes().to_vec();
        key.extend_from_slice(&seq.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.put_cf_opt(self.cf(CF_JOURNAL)?, key, msg, &wo)?;
        Ok(())
    }

    /// The journal as (view, sequence, message), in key order.
    pub fn journal(&self) -> Result<Vec<(u64, u32, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_JOURNAL)?, IteratorMode::Start)
        {
            let (k, v) = item?;
            let (Ok(view), Ok(seq)) = (
                <[u8; 8]>::try_from(&k[..k.len().min(8)]),
                <[u8; 4]>::try_from(&k[k.len().min(8)..]),
            ) else {
                return Err(StorageError::Corrupt("journal key".into()));
            };
            out.push((
                u64::from_be_bytes(view),
                u32::from_be_bytes(seq),
                v.to_vec(),
            ));
        }
        Ok(out)
    }

    /// Drops journal entries of views below `view`.
    pub fn journal_prune(&self, view: u64) -> Result<(), StorageError> {
        let cf = self.cf(CF_JOURNAL)?;
        self.db
            .delete_range_cf(cf, 0u64.to_be_bytes(), view.to_be_bytes())?;
        Ok(())
    }

    /// Commits a block atomically: the block, its receipts, the index, the state changes and
    /// the new head.
    pub fn commit_block(
        &self,
        block: &Block,
        receipts: &[TxReceipt],
        state_changes: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StorageError> {
        let h = block.header.height.to_be_bytes();
        let mut batch = WriteBatch::default();
        let mut header = block.header.encode();
        block.certificate.encode_to(&mut header);
        batch.put_cf(self.cf(CF_HEADERS)?, h, header);
        let mut body = block.txs.encode();
        block.tickets.encode_to(&mut body);
        block.parent_votes.encode_to(&mut body);
        batch.put_cf(self.cf(CF_BODIES)?, h, body);
        batch.put_cf(self.cf(CF_RECEIPTS)?, h, receipts.to_vec().encode());
        let index = self.cf(CF_TXINDEX)?;
        for (i, tx) in block.txs.iter().enumerate() {
            let mut loc = block.header.height.encode();
            (i as u32).encode_to(&mut loc);
            batch.put_cf(index, tx.id().0, loc);
        }
        let state = self.cf(CF_STATE)?;
        for (k, v) in state_changes {
            match v {
                Some(v) => batch.put_cf(state, k, v),
                None => batch.delete_cf(state, k),
            }
        }
        batch.put_cf(self.cf(CF_META)?, META_HEAD, block.header.height.encode());
        self.write(batch)
    }

    /// The header and certificate at `height`.
    pub fn header(&self, height: u64) -> Result<Option<(BlockHeader, Certificate)>, StorageError> {
        let Some(v) = self.db.get_cf(self.cf(CF_HEADERS)?, height.to_be_bytes())? else {
            return Ok(None);
        };
        let mut r = cpc_types::codec::Reader::new(&v);
        let header = BlockHeader::decode_from(&mut r);
        let cert = Certificate::decode_from(&mut r);
        match (header, cert, r.remaining()) {
            (Ok(h), Ok(c), 0) => Ok(Some((h, c))),
            _ => Err(StorageError::Corrupt(format!("header at height {height}"))),
        }
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StorageError> {
        let Some((header, certificate)) = self.header(height)? else {
            return Ok(None);
        };
        let body = self
            .db
            .get_cf(self.cf(CF_BODIES)?, height.to_be_bytes())?
            .ok_or_else(|| StorageError::Corrupt(format!("missing body at height {height}")))?;
        let mut r = cpc_types::codec::Reader::new(&body);
        let txs = Vec::<SignedTransaction>::decode_from(&mut r);
        let tickets = Vec::<Ticket>::decode_from(&mut r);
        let parent_votes = Certificate::decode_from(&mut r);
        match (txs, tickets, parent_votes, r.remaining()) {
            (Ok(txs), Ok(tickets), Ok(parent_votes), 0) => Ok(Some(Block {
                header,
                certificate,
                txs,
                tickets,
                parent_votes,
            })),
            _ => Err(StorageError::Corrupt(format!("body at height {height}"))),
        }
    }

    /// The receipts of the block at `height`.
    pub fn receipts(&self, height: u64) -> Result<Option<Vec<TxReceipt>>, StorageError> {
        self.db
            .get_cf(self.cf(CF_RECEIPTS)?, height.to_be_bytes())?
            .map(|v| {
                decode_exact(&v)
                    .map_err(|_| StorageError::Corrupt(format!("receipts at height {height}")))
            })
            .transpose()
    }

    /// Where a transaction was committed.
    pub fn tx_location(&self, id: &Hash32) -> Result<Option<TxLocation>, StorageError> {
        let Some(v) = self.db.get_cf(self.cf(CF_TXINDEX)?, id.0)? else {
            return Ok(None);
        };
        let mut r = cpc_types::codec::Reader::new(&v);
        match (
            u64::decode_from(&mut r),
            u32::decode_from(&mut r),
            r.remaining(),
        ) {
            (Ok(height), Ok(index), 0) => Ok(Some(TxLocation { height, index })),
            _ => Err(StorageError::Corrupt(format!(
                "index entry of transaction {id}"
            ))),
        }
    }

    /// Every state entry, in key order.
    pub fn state_entries(&self) -> Result<Vec<KeyValue>, StorageError> {
        self.db
            .iterator_cf(self.cf(CF_STATE)?, IteratorMode::Start)
            .map(|kv| {
                kv.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(StorageError::from)
            })
            .collect()
    }

    /// Stores a chunk under its id (the caller has checked that the id is its hash).
    pub fn chunk_put(&self, id: &Hash32, bytes: &[u8]) -> Result<(), StorageError> {
        self.db.put_cf(self.cf(CF_CHUNKS)?, id.0, bytes)?;
        Ok(())
    }

    /// A stored chunk.
    pub fn chunk_get(&self, id: &Hash32) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(CF_CHUNKS)?, id.0)?)
    }

    /// Whether a chunk is stored.
    pub fn chunk_has(&self, id: &Hash32) -> Result<bool, StorageError> {
        let cf = self.cf(CF_CHUNKS)?;
        if !self.db.key_may_exist_cf(cf, id.0) {
            return Ok(false);
        }
        Ok(self.db.get_pinned_cf(cf, id.0)?.is_some())
    }

    /// Deletes a chunk.
    pub fn chunk_delete(&self, id: &Hash32) -> Result<(), StorageError> {
        self.db.delete_cf(self.cf(CF_CHUNKS)?, id.0)?;
        Ok(())
    }

    /// Ids of the stored chunks, in key order.
    pub fn chunk_ids(&self) -> Result<Vec<Hash32>, StorageError> {
        self.db
            .iterator_cf(self.cf(CF_CHUNKS)?, IteratorMode::Start)
            .map(|kv| {
                let (k, _) = kv?;
                let id: [u8; 32] = k
                    .as_ref()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("chunk id".into()))?;
                Ok(Hash32(id))
            })
            .collect()
    }

    /// Archives side-chain history of group `group` that the node pruned from memory:
    /// vertex records and transaction records under their ids, each filed under the final
    /// anchor whose history it belongs to, in one write. Returns the bytes added per
    /// anchor, which [`Store::side_forget`] frees again. A record of an anchor the archive
    /// forgot is not written; with `may_exist` (history pruned again, as a restart's
    /// replay does), neither is one the archive holds, so that it is not counted twice.
    pub fn side_archive(
        &self,
        group: &Hash32,
        vertices: &[SideRecord],
        txs: &[SideRecord],
        may_exist: bool,
    ) -> Result<Vec<(u64, u64)>, StorageError> {
        let cf = self.cf(CF_SIDE)?;
        let kept_from = self.side_kept_from(group)?;
        let mut batch = WriteBatch::default();
        let mut added: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
        for (tag, records) in [(b'v', vertices), (b't', txs)] {
            for r in records.iter().filter(|r| r.anchor >= kept_from) {
                let key = side_key(group, tag, &r.id);
                if may_exist && self.db.get_pinned_cf(cf, key)?.is_some() {
                    continue;
                }
                let mut bytes = key.len() + r.value.len();
                batch.put_cf(cf, key, &r.value);
                if r.indexed {
                    let index = side_index_key(group, r.anchor, tag, &r.id);
                    batch.put_cf(cf, index, []);
                    bytes += index.len();
                }
                *added.entry(r.anchor).or_default() += bytes as u64;
            }
        }
        let mut totals = Vec::with_capacity(added.len());
        for (anchor, bytes) in added {
            let key = side_size_key(group, anchor);
            let before = read_u64(self.db.get_pinned_cf(cf, key)?.as_deref())?;
            batch.put_cf(cf, key, (before + bytes).to_le_bytes());
            totals.push((anchor, bytes));
        }
        // Neither synced nor logged: the side-chain log holds the same history, and a
        // restart replays it (a crash loses at most the unflushed part of the archive);
        // before the node drops that log for a snapshot, `side_flush` makes it durable.
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.db.write_opt(batch, &wo)?;
        Ok(totals)
    }

    /// The side-chain archive of group `group` by anchor: the bytes filed under each
    /// (oldest first), and the first anchor not forgotten (0 when none was).
    pub fn side_archive_sizes(
        &self,
        group: &Hash32,
    ) -> Result<(Vec<(u64, u64)>, u64), StorageError> {
        Ok((
            self.side_sizes(group, u64::MAX)?,
            self.side_kept_from(group)?,
        ))
    }

    /// Forgets the side-chain history of group `group` filed under anchor `anchor` and
    /// any anchor below it: its records leave the archive, with the transactions that
    /// `records` finds in a vertex record among them and that are final no later than
    /// `anchor` (a transaction final at a later anchor is filed there), and later records
    /// of those anchors are not written. Returns the bytes freed.
    ///
    /// It deletes in writes of at most about 4,096 records, so that no single write holds
    /// the cores for long; a crash between them leaves the rest for the next call.
    pub fn side_forget(
        &self,
        group: &Hash32,
        anchor: u64,
        records: &impl SideFormat,
    ) -> Result<u64, StorageError> {
        let cf = self.cf(CF_SIDE)?;
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        let mut batch = WriteBatch::default();
        // A transaction record filed under `anchor` or below: final there, or (one with
        // its own index entry) not final at a later anchor since it was filed.
        let filed_here = |id: &Hash32, own_entry: bool| -> Result<bool, StorageError> {
            let Some(tx) = self.db.get_pinned_cf(cf, side_key(group, b't', id))? else {
                return Ok(false);
            };
            Ok(match records.final_anchor(&tx) {
                Some(a) => a <= anchor,
                None => own_entry,
            })
        };
        let mut freed = 0;
        for (a, bytes) in self.side_sizes(group, anchor)? {
            let prefix = side_index_prefix(group, a);
            for kv in self
                .db
                .iterator_cf(cf, IteratorMode::From(&prefix, rocksdb::Direction::Forward))
            {
                let (k, _) = kv?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let corrupt = || StorageError::Corrupt("a side-chain index entry".into());
                let tag = *k.get(41).ok_or_else(corrupt)?;
                let id = Hash32(k[42..].try_into().map_err(|_| corrupt())?);
                match tag {
                    b'v' => {
                        let key = side_key(group, b'v', &id);
                        if let Some(vertex) = self.db.get_pinned_cf(cf, key)? {
                            for tx in records.txs_of(&vertex) {
                                if filed_here(&tx, false)? {
                                    batch.delete_cf(cf, side_key(group, b't', &tx));
                                }
                            }
                        }
                        batch.delete_cf(cf, key);
                    }
                    _ => {
                        if filed_here(&id, true)? {
                            batch.delete_cf(cf, side_key(group, tag, &id));
                        }
                    }
                }
                batch.delete_cf(cf, k);
                if batch.len() >= 4096 {
                    self.db.write_opt(std::mem::take(&mut batch), &wo)?;
                }
            }
            batch.delete_cf(cf, side_size_key(group, a));
            freed += bytes;
        }
        let kept_from = self.side_kept_from(group)?.max(anchor.saturating_add(1));
        batch.put_cf(cf, side_kept_key(group), kept_from.to_le_bytes());
        self.db.write_opt(batch, &wo)?;
        Ok(freed)
    }

    /// The bytes the side-chain archive of group `group` files under each anchor up to
    /// `upto`, oldest first.
    fn side_sizes(&self, group: &Hash32, upto: u64) -> Result<Vec<(u64, u64)>, StorageError> {
        let from = side_size_key(group, 0);
        let mut sizes = Vec::new();
        for kv in self.db.iterator_cf(
            self.cf(CF_SIDE)?,
            IteratorMode::From(&from, rocksdb::Direction::Forward),
        ) {
            let (k, v) = kv?;
            if k.len() != from.len() || k[..33] != from[..33] {
                break;
            }
            let anchor = u64::from_be_bytes(
                k[33..]
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("a side-chain archive size key".into()))?,
            );
            if anchor > upto {
                break;
            }
            sizes.push((anchor, read_u64(Some(&v))?));
        }
        Ok(sizes)
    }

    /// The first anchor of group `group` whose history the archive did not forget.
    fn side_kept_from(&self, group: &Hash32) -> Result<u64, StorageError> {
        read_u64(
            self.db
                .get_pinned_cf(self.cf(CF_SIDE)?, side_kept_key(group))?
                .as_deref(),
        )
    }

    /// Writes the side-chain archive's memory to disk and waits for it: what
    /// [`Store::side_archive`] wrote before survives a crash from then on.
    pub fn side_flush(&self) -> Result<(), StorageError> {
        let mut fo = rocksdb::FlushOptions::default();
        fo.set_wait(true);
        self.db.flush_cf_opt(self.cf(CF_SIDE)?, &fo)?;
        Ok(())
    }

    /// An archived side-chain vertex record of group `group`.
    pub fn side_vertex(
        &self,
        group: &Hash32,
        id: &Hash32,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_SIDE)?, side_key(group, b'v', id))?)
    }

    /// An archived side-chain transaction record of group `group`.
    pub fn side_tx(&self, group: &Hash32, hash: &Hash32) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_SIDE)?, side_key(group, b't', hash))?)
    }

    /// Stores a kfrag this node holds as a proxy.
    pub fn kfrag_put(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.db.put_cf(self.cf(CF_KFRAGS)?, key, value)?;
        Ok(())
    }

    /// Deletes a kfrag.
    pub fn kfrag_delete(&self, key: &[u8]) -> Result<(), StorageError> {
        self.db.delete_cf(self.cf(CF_KFRAGS)?, key)?;
        Ok(())
    }

    /// Stores an account's key announcement (the caller verified it).
    pub fn key_put(&self, account: &[u8], announcement: &[u8]) -> Result<(), StorageError> {
        self.db.put_cf(self.cf(CF_KEYS)?, account, announcement)?;
        Ok(())
    }

    /// An account's stored key announcement.
    pub fn key_get(&self, account: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(CF_KEYS)?, account)?)
    }

    /// Every kfrag held.
    pub fn kfrags(&self) -> Result<Vec<KeyValue>, StorageError> {
        self.db
            .iterator_cf(self.cf(CF_KFRAGS)?, IteratorMode::Start)
            .map(|kv| {
                kv.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(StorageError::from)
            })
            .collect()
    }
}

/// A record of pruned side-chain history for [`Store::side_archive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SideRecord {
    /// The final anchor it is filed under: the archive forgets whole anchors.
    pub anchor: u64,
    /// The vertex id or transaction hash.
    pub id: Hash32,
    /// The record.
    pub value: Vec<u8>,
    /// Whether it has an index entry under its anchor. A transaction final at the anchor
    /// of a vertex that holds it (and filed there) needs none: [`Store::side_forget`]
    /// finds it through the vertex, which keeps the index a hundredth of the records
    /// under load.
    pub indexed: bool,
}

/// What [`Store::side_forget`] needs to read in the records the node archives.
pub trait SideFormat {
    /// The hashes of the transactions a vertex record holds.
    fn txs_of(&self, vertex: &[u8]) -> Vec<Hash32>;
    /// The anchor at which a transaction record is final, if it is.
    fn final_anchor(&self, tx: &[u8]) -> Option<u64>;
}

/// The key of a side-chain archive record.
fn side_key(group: &Hash32, tag: u8, id: &Hash32) -> [u8; 65] {
    let mut k = [0u8; 65];
    k[..32].copy_from_slice(&group.0);
    k[32] = tag;
    k[33..].copy_from_slice(&id.0);
    k
}

/// The key of a side-chain archive record's index entry, under its anchor.
fn side_index_key(group: &Hash32, anchor: u64, tag: u8, id: &Hash32) -> [u8; 74] {
    let mut k = [0u8; 74];
    k[..41].copy_from_slice(&side_index_prefix(group, anchor));
    k[41] = tag;
    k[42..].copy_from_slice(&id.0);
    k
}

/// The start of every index entry of the side-chain archive under an anchor.
fn side_index_prefix(group: &Hash32, anchor: u64) -> [u8; 41] {
    side_anchor_key(group, b'a', anchor)
}

/// The key of the bytes the side-chain archive files under an anchor.
fn side_size_key(group: &Hash32, anchor: u64) -> [u8; 41] {
    side_anchor_key(group, b's', anchor)
}

/// Group id, `tag`, anchor (big-endian, so that an anchor's keys sort in anchor order).
fn side_anchor_key(group: &Hash32, tag: u8, anchor: u64) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[..32].copy_from_slice(&group.0);
    k[32] = tag;
    k[33..].copy_from_slice(&anchor.to_be_bytes());
    k
}

/// The key of the first anchor whose side-chain history the archive keeps.
fn side_kept_key(group: &Hash32) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[..32].copy_from_slice(&group.0);
    k[32] = b'k';
    k
}

/// A little-endian u64 value; none reads as 0.
fn read_u64(v: Option<&[u8]>) -> Result<u64, StorageError> {
    match v {
        None => Ok(0),
        Some(b) => Ok(u64::from_le_bytes(b.try_into().map_err(|_| {
            StorageError::Corrupt("a side-chain archive size".into())
        })?)),
    }
}
