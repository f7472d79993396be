//! Side-chain data: machine transactions, vertices, anchors, evidence, gossip messages.
//!
//! Everything here is hashed or signed through the canonical encoding of `cpc_types`.

use cpc_types::codec::{Decode, DecodeError, Encode, Reader, decode_exact};
pub use cpc_types::side::{ANCHOR_DOMAIN, VERTEX_DOMAIN};
use cpc_types::{
    Address, Endorsement, Hash32, MisbehaviourEvidence, PublicKey, SecretKey, SideAnchor,
    Signature, SignedMessage, TxKind, VertexHeader, codec_struct, sha256,
};
use serde::{Deserialize, Serialize};

/// Domain separation of machine-transaction signatures.
pub const MACHINE_TX_DOMAIN: &[u8] = b"cpchain/side/tx/v1";
/// The largest encoded gossip message accepted.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// A vertex id: the hash of its signing bytes.
pub type VertexId = Hash32;

/// What a machine transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MachineKind {
    /// Moves side-chain balance to another machine account of the group.
    Transfer {
        /// The recipient.
        to: Address,
        /// Base units moved.
        amount: u64,
    },
    /// Credits the sender with a main-chain lock made out to it (once per lock).
    Deposit {
        /// The id of the main-chain lock transaction.
        lock: Hash32,
    },
    /// Records a data event: a sensor reading's hash, a traffic event with its position.
    Event {
        /// Application-defined event type (e.g. 1 = sensor reading, 2 = congestion).
        event_type: u32,
        /// Hash of the reading or event payload, which stays off chain.
        data_hash: Hash32,
        /// Grid position east, application-defined units.
        x: u32,
        /// Grid position north, application-defined units.
        y: u32,
    },
}

impl Encode for MachineKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            MachineKind::Transfer { to, amount } => {
                out.push(0);
                to.encode_to(out);
                amount.encode_to(out);
            }
            MachineKind::Deposit { lock } => {
                out.push(1);
                lock.encode_to(out);
            }
            MachineKind::Event {
                event_type,
                data_hash,
                x,
                y,
            } => {
                out.push(2);
                event_type.encode_to(out);
                data_hash.encode_to(out);
                x.encode_to(out);
                y.encode_to(out);
            }
        }
    }
}

impl Decode for MachineKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.tag()? {
            0 => MachineKind::Transfer {
                to: Decode::decode_from(r)?,
                amount: Decode::decode_from(r)?,
            },
            1 => MachineKind::Deposit {
                lock: Decode::decode_from(r)?,
            },
            2 => MachineKind::Event {
                event_type: Decode::decode_from(r)?,
                data_hash: Decode::decode_from(r)?,
                x: Decode::decode_from(r)?,
                y: Decode::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "machine transaction kind",
                    tag,
                });
            }
        })
    }
}

/// An unsigned machine transaction.
///
/// Every transaction of a sender occupies the slot `(sender, nonce)`; two different
/// transactions in one slot conflict (a double spend), and only one of them can confirm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineTx {
    /// The group the transaction is for (replay protection across groups).
    pub group_id: Hash32,
    /// The machine's key; its account is its address.
    pub sender: PublicKey,
    /// The sender's count of earlier side-chain transactions.
    pub nonce: u64,
    /// What it does.
    pub kind: MachineKind,
}
codec_struct!(MachineTx {
    group_id,
    sender,
    nonce,
    kind
});

impl MachineTx {
    /// The bytes the machine signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = MACHINE_TX_DOMAIN.to_vec();
        self.encode_to(&mut out);
        out
    }

    /// The transaction hash.
    pub fn hash(&self) -> Hash32 {
        Self::hash_of(&self.signing_bytes())
    }

    /// The hash of the transaction whose [`signing_bytes`](Self::signing_bytes) these are,
    /// for callers that encoded them already (to verify the signature).
    pub fn hash_of(signing_bytes: &[u8]) -> Hash32 {
        sha256(&[signing_bytes])
    }

    /// The slot the transaction occupies.
    pub fn slot(&self) -> Slot {
        Slot {
            sender: self.sender.address(),
            nonce: self.nonce,
        }
    }

    /// Signs it.
    pub fn sign(self, key: &SecretKey) -> SignedMachineTx {
        let signature = key.sign(&self.signing_bytes());
        SignedMachineTx {
            tx: self,
            signature,
        }
    }
}

/// A machine transaction with the machine's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMachineTx {
    /// The transaction.
    pub tx: MachineTx,
    /// The machine's signature over [`MachineTx::signing_bytes`].
    pub signature: Signature,
}
codec_struct!(SignedMachineTx { tx, signature });

impl SignedMachineTx {
    /// The transaction hash (independent of the signature's encoding).
    pub fn hash(&self) -> Hash32 {
        self.tx.hash()
    }

    /// Decodes a transaction received from outside.
    pub fn decode_untrusted(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > cpc_types::MAX_TX_BYTES {
            return Err(DecodeError::TooLong {
                what: "machine transaction",
                len: bytes.len(),
                max: cpc_types::MAX_TX_BYTES,
            });
        }
        decode_exact(bytes)
    }
}

/// A spend slot: one per sender and nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    /// The sender's account.
    pub sender: Address,
    /// The nonce.
    pub nonce: u64,
}

/// An unsigned vertex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// The group.
    pub group_id: Hash32,
    /// The gateway that made it.
    pub creator: PublicKey,
    /// The creator's vertex count: 1 for its first vertex, one more for each next.
    pub sequence: u64,
    /// The creator's clock when it made the vertex (used for relay delays in scores).
    pub timestamp_ms: u64,
    /// The creator's previous vertex first (absent for sequence 1), then tips of other
    /// gateways, at most one per gateway.
    pub parents: Vec<VertexId>,
    /// The batch of machine transactions.
    pub txs: Vec<SignedMachineTx>,
}
codec_struct!(Vertex {
    group_id,
    creator,
    sequence,
    timestamp_ms,
    parents,
    txs
});

impl Vertex {
    /// What the gateway signs: the vertex with its transactions replaced by their hash.
    pub fn header(&self) -> VertexHeader {
        VertexHeader {
            group_id: self.group_id,
            creator: self.creator,
            sequence: self.sequence,
            timestamp_ms: self.timestamp_ms,
            parents: self.parents.clone(),
            txs_hash: sha256(&[&self.txs.encode()]),
        }
    }

    /// The bytes the gateway signs; their hash is the vertex id.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.header().signing_bytes()
    }

    /// Signs it.
    pub fn sign(self, key: &SecretKey) -> SignedVertex {
        let signing = self.signing_bytes();
        let signature = key.sign(&signing);
        let id = sha256(&[&signing]);
        SignedVertex {
            vertex: self,
            signature,
            id,
        }
    }
}

/// A vertex with its creator's signature. The id is cached; decoding recomputes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVertex {
    /// The vertex.
    pub vertex: Vertex,
    /// The creator's signature over [`Vertex::signing_bytes`].
    pub signature: Signature,
    /// The vertex id: the hash of its signing bytes.
    #[serde(skip_deserializing)]
    pub id: VertexId,
}

impl Encode for SignedVertex {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.vertex.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedVertex {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let vertex = Vertex::decode_from(r)?;
        let signature = Signature::decode_from(r)?;
        let id = sha256(&[&vertex.signing_bytes()]);
        Ok(SignedVertex {
            vertex,
            signature,
            id,
        })
    }
}

/// Two vertices one gateway signed with the same sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationEvidence {
    /// The offending gateway.
    pub offender: PublicKey,
    /// Its first vertex (the lower id).
    pub first: SignedVertex,
    /// Its second vertex.
    pub second: SignedVertex,
}
codec_struct!(EquivocationEvidence {
    offender,
    first,
    second
});

impl EquivocationEvidence {
    /// The evidence of two vertices of one creator and sequence, in id order.
    pub fn of(a: SignedVertex, b: SignedVertex) -> EquivocationEvidence {
        let (first, second) = if a.id < b.id { (a, b) } else { (b, a) };
        EquivocationEvidence {
            offender: first.vertex.creator,
            first,
            second,
        }
    }

    /// The main-chain transaction kind that reports it: the two vertex headers, signed.
    pub fn tx_kind(&self) -> TxKind {
        let signed = |v: &SignedVertex| SignedMessage {
            payload: v.vertex.signing_bytes(),
            signature: v.signature,
        };
        TxKind::Evidence(MisbehaviourEvidence {
            offender: self.offender,
            first: signed(&self.first),
            second: signed(&self.second),
        })
    }
}

/// An anchor with the endorsements this node holds for it, sorted by gateway. It goes to
/// the main chain once `n − f` gateways endorsed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAnchor {
    /// The anchor.
    pub anchor: SideAnchor,
    /// Gateways' signatures over [`SideAnchor::signing_bytes`].
    pub endorsements: Vec<Endorsement>,
}
codec_struct!(SignedAnchor {
    anchor,
    endorsements
});

/// What gateways gossip on the group's topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A new vertex.
    Vertex(SignedVertex),
    /// The sender's latest vertex per gateway, so peers fetch what they miss.
    Heads(Vec<VertexId>),
    /// Asks for vertices by id, and for their ancestors the asker lacks: `have` is its
    /// highest sequence held per gateway, in group order (see [`crate::SideChain`]).
    Request {
        /// The vertices asked for.
        ids: Vec<VertexId>,
        /// The asker's highest sequence per gateway (0: none).
        have: Vec<u64>,
    },
    /// Answers a request.
    Vertices(Vec<SignedVertex>),
    /// An anchor proposal with the endorsements the sender holds.
    Anchor(SignedAnchor),
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Vertex(v) => {
                out.push(0);
                v.encode_to(out);
            }
            Message::Heads(h) => {
                out.push(1);
                h.encode_to(out);
            }
            Message::Request { ids, have } => {
                out.push(2);
                ids.encode_to(out);
                have.encode_to(out);
            }
            Message::Vertices(vs) => {
                out.push(3);
                vs.encode_to(out);
            }
            Message::Anchor(a) => {
                out.push(4);
                a.encode_to(out);
            }
        }
    }
}

impl Decode for Message {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.tag()? {
            0 => Message::Vertex(Decode::decode_from(r)?),
            1 => Message::Heads(Decode::decode_from(r)?),
            2 => Message::Request {
                ids: Decode::decode_from(r)?,
                have: Decode::decode_from(r)?,
            },
            3 => Message::Vertices(Decode::decode_from(r)?),
            4 => Message::Anchor(Decode::decode_from(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "side-chain message",
                    tag,
                });
            }
        })
    }
}

impl Message {
    /// Decodes a gossip message from a peer, enforcing the size limit first.
    pub fn decode_untrusted(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLong {
                what: "side-chain message",
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        decode_exact(bytes)
    }
}
