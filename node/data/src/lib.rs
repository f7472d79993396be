//! The CPChain encrypted data layer: the chain holds hashes and rights, the data lives
//! encrypted off chain.
//!
//! The owner of a sensor stream runs the pipeline, in order:
//!
//! 1. [`Packer`] packs time-ordered [`Record`]s into a block per period T ([`StreamParams`]).
//! 2. [`Uploader`] seals each block with XChaCha20-Poly1305 under a fresh random key per
//!    encryption interval e, binding stream, interval and block position as associated
//!    data ([`seal`]); every upload window of u intervals it emits an [`Upload`]: the
//!    on-chain [`cpc_types::DataRecord`] (Merkle root of the blocks' ciphertext hashes via
//!    the accelerator, stream, interval range, policy, and the interval keys wrapped with
//!    umbral in its metadata, [`RecordMeta`]), a [`Manifest`], and the chunks.
//! 3. Each block's ciphertext is cut into k chunks and Reed–Solomon-extended to n
//!    ([`erasure`]); chunk ids are SHA-256 hashes, and [`placement`] puts each chunk on
//!    the storage nodes nearest its id in Kademlia's metric.
//!
//! A reader fetches the manifest named by the record and checks it against the root
//! ([`Manifest::verify`]), feeds chunks to a [`BlockAssembler`], which keeps only chunks
//! that hash to their ids (rejects are reported so the sender can be penalised) and
//! rebuilds the block from any k, checked against its hash. The owner opens interval keys
//! with [`DataKeys::unwrap_own`]; a grantee collects cfrags from m proxies ([`Proxy`],
//! which re-encrypts only while the grant is on chain) and opens the key with
//! [`DataKeys::open_granted`]. [`plan_repair`] and [`rebuild_chunks`] re-create lost chunks.
//!
//! [`proto`] is the wire format between nodes. Nothing here does I/O: the node wires it to RocksDB, libp2p and the chain.

pub mod erasure;
mod error;
pub mod keys;
pub mod pack;
mod params;
pub mod placement;
pub mod proto;
pub mod seal;
pub mod upload;

pub use erasure::{BlockAssembler, BlockEntry, Offer, RepairPlan, plan_repair, rebuild_chunks};
pub use error::DataError;
pub use keys::{
    ChainView, DataKeys, KeyAnnouncement, KfragDelivery, Proxy, ProxyError, RecordMeta,
};
pub use pack::{Packer, PlainBlock, Record};
pub use params::{MAX_INTERVALS_PER_UPLOAD, MAX_TOTAL_CHUNKS, StreamParams};
pub use proto::{DataRequest, DataResponse};
pub use seal::IntervalKey;
pub use upload::{Chunk, Manifest, Upload, Uploader, open_interval};
