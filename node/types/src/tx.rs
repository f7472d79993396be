//! Transactions.
//!
//! A [`Transaction`] names its chain, its sender's key, a nonce (the sender's count of
//! committed transactions) and the highest fee the sender accepts; its [`TxKind`] says what
//! it does. The id of a transaction is the hash of its signing bytes, so it does not
//! depend on the signature's encoding (ZIP-215 accepts several encodings of one signature).

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode, Reader, decode_exact};
use crate::keys::SecretKey;
use crate::primitives::{Address, Hash32, PublicKey, Signature, sha256};
use crate::side::{Endorsement, SideAnchor};
use crate::{MAX_TX_BYTES, codec_struct};

/// Domain separation of transaction signatures.
pub const TX_DOMAIN: &[u8] = b"cpchain/tx/v1";

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is for (replay protection across networks).
    pub chain_id: u32,
    /// The sender's public key; the sender's account is its address.
    pub sender: PublicKey,
    /// The sender's committed transaction count when this one executes.
    pub nonce: u64,
    /// The most the sender pays in fees, in base units.
    pub max_fee: u64,
    /// What the transaction does.
    pub kind: TxKind,
}
codec_struct!(Transaction {
    chain_id,
    sender,
    nonce,
    max_fee,
    kind
});

impl Transaction {
    /// The bytes the sender signs: the domain tag followed by the encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = TX_DOMAIN.to_vec();
        self.encode_to(&mut out);
        out
    }

    /// The transaction id.
    pub fn id(&self) -> Hash32 {
        sha256(&[&self.signing_bytes()])
    }

    /// Signs the transaction.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its sender's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The sender's signature over [`Transaction::signing_bytes`].
    pub signature: Signature,
}
codec_struct!(SignedTransaction { tx, signature });

impl SignedTransaction {
    /// The transaction id (independent of the signature).
    pub fn id(&self) -> Hash32 {
        self.tx.id()
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.tx.sender.address()
    }

    /// Decodes a transaction received from outside, enforcing the size limit first.
    pub fn decode_untrusted(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(DecodeError::TooLong {
                what: "transaction",
                len: bytes.len(),
                max: MAX_TX_BYTES,
            });
        }
        decode_exact(bytes)
    }
}

/// Who may read a data stream's intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessPolicy {
    /// Only the owner and explicit grantees.
    Private,
    /// Anyone may obtain re-encrypted keys.
    Public,
}

impl Encode for AccessPolicy {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(match self {
            AccessPolicy::Private => 0,
            AccessPolicy::Public => 1,
        });
    }
}

impl Decode for AccessPolicy {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(AccessPolicy::Private),
            1 => Ok(AccessPolicy::Public),
            tag => Err(DecodeError::InvalidTag {
                what: "access policy",
                tag,
            }),
        }
    }
}

/// An on-chain data record: the hash credential of one upload interval of a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The stream.
    pub stream_id: Hash32,
    /// First encryption interval covered.
    pub first_interval: u64,
    /// Last encryption interval covered (inclusive).
    pub last_interval: u64,
    /// Merkle root of the ciphertext block hashes.
    pub root: Hash32,
    /// Who may read.
    pub policy: AccessPolicy,
    /// The interval keys encrypted to the owner (umbral capsules), opaque to the chain.
    #[serde(with = "hex_bytes")]
    pub capsule: Vec<u8>,
}
codec_struct!(DataRecord {
    stream_id,
    first_interval,
    last_interval,
    root,
    policy,
    capsule
});

/// A signed consensus message, as carried in evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage {
    /// The canonical encoding of the message.
    #[serde(with = "hex_bytes")]
    pub payload: Vec<u8>,
    /// The offender's signature over the payload.
    pub signature: Signature,
}
codec_struct!(SignedMessage { payload, signature });

/// Two conflicting messages signed by one validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MisbehaviourEvidence {
    /// The validator that signed both.
    pub offender: PublicKey,
    /// The first message.
    pub first: SignedMessage,
    /// The second, conflicting message.
    pub second: SignedMessage,
}
codec_struct!(MisbehaviourEvidence {
    offender,
    first,
    second
});

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxKind {
    /// Moves CPC to another account.
    Transfer {
        /// The recipient.
        to: Address,
        /// Base units moved.
        amount: u64,
    },
    /// Becomes a consensus candidate, locking a deposit.
    RegisterValidator {
        /// Base units locked as deposit.
        deposit: u64,
        /// The key of the candidate's VRF election tickets.
        vrf_key: PublicKey,
        /// Where peers reach the candidate (a libp2p multiaddress).
        endpoint: String,
    },
    /// Publishes the hash credential of a data interval.
    DataRecord(DataRecord),
    /// Lets `grantee` read intervals of a stream.
    Grant {
        /// The stream.
        stream_id: Hash32,
        /// Who may read.
        grantee: Address,
        /// First interval granted.
        first_interval: u64,
        /// Last interval granted (inclusive).
        last_interval: u64,
    },
    /// Withdraws a grant.
    Revoke {
        /// The stream.
        stream_id: Hash32,
        /// Whose grant ends.
        grantee: Address,
    },
    /// Anchors a side-chain checkpoint endorsed by a quorum of the group's gateways, and
    /// pays the anchor's cooperation rewards from the group's reward pool.
    Anchor {
        /// The checkpoint. Its frontier is on chain so every gateway can check a final
        /// anchor against its own DAG without any off-chain proposal (after a restart of
        /// the whole group nobody holds one).
        anchor: SideAnchor,
        /// Signatures of at least `side_quorum(n)` distinct gateways, sorted by key.
        endorsements: Vec<Endorsement>,
    },
    /// Reports a validator that signed two conflicting consensus votes, or a side-chain
    /// gateway that signed two vertices with one sequence number (payloads are
    /// [`crate::side::VertexHeader`] signing bytes).
    Evidence(MisbehaviourEvidence),
    /// Stakes CPC as a DApp account, for transaction quota in proportion.
    DappStake {
        /// Base units staked.
        amount: u64,
    },
    /// Returns staked CPC.
    DappUnstake {
        /// Base units returned.
        amount: u64,
    },
    /// Offers stake for lease to DApps, locking it.
    LeaseOffer {
        /// Base units offered.
        amount: u64,
        /// Lease fee per day, in base units, paid to the lender.
        fee_per_day: u64,
        /// The longest lease accepted, in days.
        max_days: u32,
    },
    /// Leases an offer's stake for some days, paying the fee up front.
    LeaseTake {
        /// The offer (the id of its `LeaseOffer` transaction).
        offer: Hash32,
        /// Days leased.
        days: u32,
    },
    /// Withdraws an offer that is not leased.
    LeaseCancel {
        /// The offer.
        offer: Hash32,
    },
    /// Declares a side-chain group and its gateways; the first sender owns the group and
    /// alone may send it again, to change its reward or fund it. The gateways stay those it
    /// was declared with.
    SideGroup {
        /// The group id (`cpc_sidechain::Group::id_of(name)`).
        group_id: Hash32,
        /// The gateways' keys, sorted, without duplicates (1 to 64).
        gateways: Vec<PublicKey>,
        /// The most an anchor pays in cooperation rewards, in base units.
        reward_per_anchor: u64,
        /// Base units moved from the owner into the group's reward pool.
        fund: u64,
    },
    /// Locks CPC in a side-chain group, funding a machine account's side balance; the
    /// lock's id is this transaction's id.
    SideLock {
        /// The group.
        group_id: Hash32,
        /// The machine account credited on the side chain.
        account: Address,
        /// Base units locked.
        amount: u64,
    },
    /// Retires a gateway of a side-chain group that is gone for good (its owner only): the
    /// group's pruning stops waiting for it, and it signs for the group no more. It stays
    /// one of the group's `n`; at most `f = ⌊(n − 1) / 3⌋` are retired.
    SideRetire {
        /// The group.
        group_id: Hash32,
        /// The gateway's key.
        gateway: PublicKey,
    },
}

impl TxKind {
    /// The kind's name, as in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            TxKind::Transfer { .. } => "transfer",
            TxKind::RegisterValidator { .. } => "register_validator",
            TxKind::DataRecord(_) => "data_record",
            TxKind::Grant { .. } => "grant",
            TxKind::Revoke { .. } => "revoke",
            TxKind::Anchor { .. } => "anchor",
            TxKind::Evidence(_) => "evidence",
            TxKind::DappStake { .. } => "dapp_stake",
            TxKind::DappUnstake { .. } => "dapp_unstake",
            TxKind::LeaseOffer { .. } => "lease_offer",
            TxKind::LeaseTake { .. } => "lease_take",
            TxKind::LeaseCancel { .. } => "lease_cancel",
            TxKind::SideGroup { .. } => "side_group",
            TxKind::SideLock { .. } => "side_lock",
            TxKind::SideRetire { .. } => "side_retire",
        }
    }
}

impl Encode for TxKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            TxKind::Transfer { to, amount } => {
                out.push(0);
                to.encode_to(out);
                amount.encode_to(out);
            }
            TxKind::RegisterValidator {
                deposit,
                vrf_key,
                endpoint,
            } => {
                out.push(1);
                deposit.encode_to(out);
                vrf_key.encode_to(out);
                endpoint.encode_to(out);
            }
            TxKind::DataRecord(r) => {
                out.push(2);
                r.encode_to(out);
            }
            TxKind::Grant {
                stream_id,
                grantee,
                first_interval,
                last_interval,
            } => {
                out.push(3);
                stream_id.encode_to(out);
                grantee.encode_to(out);
                first_interval.encode_to(out);
                last_interval.encode_to(out);
            }
            TxKind::Revoke { stream_id, grantee } => {
                out.push(4);
                stream_id.encode_to(out);
                grantee.encode_to(out);
            }
            TxKind::Anchor {
                anchor,
                endorsements,
            } => {
                out.push(5);
                anchor.encode_to(out);
                endorsements.encode_to(out);
            }
            TxKind::Evidence(e) => {
                out.push(6);
                e.encode_to(out);
            }
            TxKind::DappStake { amount } => {
                out.push(7);
                amount.encode_to(out);
            }
            TxKind::DappUnstake { amount } => {
                out.push(8);
                amount.encode_to(out);
            }
            TxKind::LeaseOffer {
                amount,
                fee_per_day,
                max_days,
            } => {
                out.push(9);
                amount.encode_to(out);
                fee_per_day.encode_to(out);
                max_days.encode_to(out);
            }
            TxKind::LeaseTake { offer, days } => {
                out.push(10);
                offer.encode_to(out);
                days.encode_to(out);
            }
            TxKind::LeaseCancel { offer } => {
                out.push(11);
                offer.encode_to(out);
            }
            TxKind::SideGroup {
                group_id,
                gateways,
                reward_per_anchor,
                fund,
            } => {
                out.push(12);
                group_id.encode_to(out);
                gateways.encode_to(out);
                reward_per_anchor.encode_to(out);
                fund.encode_to(out);
            }
            TxKind::SideLock {
                group_id,
                account,
                amount,
            } => {
                out.push(13);
                group_id.encode_to(out);
                account.encode_to(out);
                amount.encode_to(out);
            }
            TxKind::SideRetire { group_id, gateway } => {
                out.push(14);
                group_id.encode_to(out);
                gateway.encode_to(out);
            }
        }
    }
}

impl Decode for TxKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let d = |r: &mut Reader<'_>| -> Result<u64, DecodeError> { u64::decode_from(r) };
        Ok(match r.tag()? {
            0 => TxKind::Transfer {
                to: Decode::decode_from(r)?,
                amount: d(r)?,
            },
            1 => TxKind::RegisterValidator {
                deposit: d(r)?,
                vrf_key: Decode::decode_from(r)?,
                endpoint: Decode::decode_from(r)?,
            },
            2 => TxKind::DataRecord(Decode::decode_from(r)?),
            3 => TxKind::Grant {
                stream_id: Decode::decode_from(r)?,
                grantee: Decode::decode_from(r)?,
                first_interval: d(r)?,
                last_interval: d(r)?,
            },
            4 => TxKind::Revoke {
                stream_id: Decode::decode_from(r)?,
                grantee: Decode::decode_from(r)?,
            },
            5 => TxKind::Anchor {
                anchor: Decode::decode_from(r)?,
                endorsements: Decode::decode_from(r)?,
            },
            6 => TxKind::Evidence(Decode::decode_from(r)?),
            7 => TxKind::DappStake { amount: d(r)? },
            8 => TxKind::DappUnstake { amount: d(r)? },
            9 => TxKind::LeaseOffer {
                amount: d(r)?,
                fee_per_day: d(r)?,
                max_days: Decode::decode_from(r)?,
            },
            10 => TxKind::LeaseTake {
                offer: Decode::decode_from(r)?,
                days: Decode::decode_from(r)?,
            },
            11 => TxKind::LeaseCancel {
                offer: Decode::decode_from(r)?,
            },
            12 => TxKind::SideGroup {
                group_id: Decode::decode_from(r)?,
                gateways: Decode::decode_from(r)?,
                reward_per_anchor: d(r)?,
                fund: d(r)?,
            },
            13 => TxKind::SideLock {
                group_id: Decode::decode_from(r)?,
                account: Decode::decode_from(r)?,
                amount: d(r)?,
            },
            14 => TxKind::SideRetire {
                group_id: Decode::decode_from(r)?,
                gateway: Decode::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "transaction kind",
                    tag,
                });
            }
        })
    }
}

/// Serde helper: byte strings as hex in JSON.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    /// Reads hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}
