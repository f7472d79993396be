//! The data protocol between nodes (`/cpchain/data/2`): requests and answers in the
//! canonical encoding. The network carries them as opaque bytes; a storage node answers
//! them with its chunk store and its [`crate::Proxy`].
//!
//! Chunks are megabytes and most of what the protocol carries, so they are shared
//! [`Bytes`]: [`DataRequest::to_parts`] sends a chunk as its own part after a small header,
//! and [`DataRequest::from_shared`] slices it out of the received buffer, so a chunk is not
//! copied between the HTTP body, the network and the store.

use bytes::Bytes;
use cpc_types::codec::{Decode, DecodeError, Encode, Reader};
use cpc_types::{Address, Hash32};

use crate::{DataError, KeyAnnouncement, KfragDelivery};

/// Largest chunk a node accepts (a chunk of the largest block, with room to spare).
pub const MAX_CHUNK_BYTES: usize = 8 << 20;
/// A storage node's refusal of a chunk whose bytes do not hash to the id it came with.
pub const NOT_ITS_ID: &str = "chunk does not hash to its id";

/// Most ids in one [`DataRequest::Has`].
pub const MAX_HAS_IDS: usize = 4096;

/// What a node asks a storage node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataRequest {
    /// Store a chunk (or a manifest) under its hash.
    Store {
        /// SHA-256 of `bytes`.
        id: Hash32,
        /// The chunk.
        bytes: Bytes,
    },
    /// Return a chunk.
    Fetch {
        /// Its id.
        id: Hash32,
    },
    /// Which of these chunks are stored (for repair).
    Has {
        /// Chunk ids.
        ids: Vec<Hash32>,
    },
    /// Hold a kfrag as a proxy.
    Kfrag(KfragDelivery),
    /// Re-encrypt an interval's capsule for a grantee.
    Reencrypt {
        /// The stream.
        stream: Hash32,
        /// The grantee.
        grantee: Address,
        /// The interval.
        interval: u64,
    },
    /// Keep an account's receiving-key announcement.
    Announce(KeyAnnouncement),
    /// Return the announcement of an account.
    Lookup {
        /// The account.
        account: Address,
    },
}

/// A storage node's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataResponse {
    /// Done.
    Ok,
    /// The chunk asked for, if stored.
    Chunk(Option<Bytes>),
    /// One flag per id of a [`DataRequest::Has`].
    Have(Vec<bool>),
    /// A cfrag (MessagePack, as umbral serialises it).
    Cfrag(Vec<u8>),
    /// An announcement, if known.
    Announcement(Option<KeyAnnouncement>),
    /// The request was refused; the reason is for the user.
    Refused(String),
}

impl Encode for DataRequest {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            DataRequest::Store { id, bytes } => {
                out.push(0);
                id.encode_to(out);
                encode_bytes(bytes, out);
            }
            DataRequest::Fetch { id } => {
                out.push(1);
                id.encode_to(out);
            }
            DataRequest::Has { ids } => {
                out.push(2);
                ids.encode_to(out);
            }
            DataRequest::Kfrag(d) => {
                out.push(3);
                d.encode_to(out);
            }
            DataRequest::Reencrypt {
                stream,
                grantee,
                interval,
            } => {
                out.push(4);
                stream.encode_to(out);
                grantee.encode_to(out);
                interval.encode_to(out);
            }
            DataRequest::Announce(a) => {
                out.push(5);
                a.encode_to(out);
            }
            DataRequest::Lookup { account } => {
                out.push(6);
                account.encode_to(out);
            }
        }
    }
}

impl DataRequest {
    /// Decodes from `r`, which reads `buf`; a chunk is sliced out of `buf`.
    fn decode_with(r: &mut Reader<'_>, buf: &Bytes) -> Result<Self, DecodeError> {
        Ok(match r.tag()? {
            0 => DataRequest::Store {
                id: Hash32::decode_from(r)?,
                bytes: decode_shared(r, buf)?,
            },
            1 => DataRequest::Fetch {
                id: Hash32::decode_from(r)?,
            },
            2 => {
                let ids = Vec::<Hash32>::decode_from(r)?;
                if ids.len() > MAX_HAS_IDS {
                    return Err(DecodeError::TooLong {
                        what: "chunk ids",
                        len: ids.len(),
                        max: MAX_HAS_IDS,
                    });
                }
                DataRequest::Has { ids }
            }
            3 => DataRequest::Kfrag(KfragDelivery::decode_from(r)?),
            4 => DataRequest::Reencrypt {
                stream: Hash32::decode_from(r)?,
                grantee: Address::decode_from(r)?,
                interval: u64::decode_from(r)?,
            },
            5 => DataRequest::Announce(KeyAnnouncement::decode_from(r)?),
            6 => DataRequest::Lookup {
                account: Address::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "data request",
                    tag,
                });
            }
        })
    }
}

impl Encode for DataResponse {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            DataResponse::Ok => out.push(0),
            DataResponse::Chunk(c) => {
                out.push(1);
                match c {
                    None => out.push(0),
                    Some(b) => {
                        out.push(1);
                        encode_bytes(b, out);
                    }
                }
            }
            DataResponse::Have(flags) => {
                out.push(2);
                flags.encode_to(out);
            }
            DataResponse::Cfrag(b) => {
                out.push(3);
                encode_bytes(b, out);
            }
            DataResponse::Announcement(a) => {
                out.push(4);
                a.encode_to(out);
            }
            DataResponse::Refused(m) => {
                out.push(5);
                m.encode_to(out);
            }
        }
    }
}

impl DataResponse {
    /// Decodes from `r`, which reads `buf`; a chunk is sliced out of `buf`.
    fn decode_with(r: &mut Reader<'_>, buf: &Bytes) -> Result<Self, DecodeError> {
        Ok(match r.tag()? {
            0 => DataResponse::Ok,
            1 => DataResponse::Chunk(match r.tag()? {
                0 => None,
                1 => Some(decode_shared(r, buf)?),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "optional chunk",
                        tag,
                    });
                }
            }),
            2 => DataResponse::Have(Vec::<bool>::decode_from(r)?),
            3 => DataResponse::Cfrag(decode_shared(r, buf)?.to_vec()),
            4 => DataResponse::Announcement(Option::<KeyAnnouncement>::decode_from(r)?),
            5 => DataResponse::Refused(String::decode_from(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "data response",
                    tag,
                });
            }
        })
    }
}

// Chunks are large: a length and the raw bytes, copied at once rather than per element.
fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    (b.len() as u32).encode_to(out);
    out.extend_from_slice(b);
}

fn decode_shared(r: &mut Reader<'_>, buf: &Bytes) -> Result<Bytes, DecodeError> {
    let len = r.length("chunk", MAX_CHUNK_BYTES, 1)?;
    Ok(buf.slice_ref(r.take(len)?))
}

/// The encoding of a message whose last field may be a chunk: the chunk as its own part,
/// everything before it encoded in the first.
fn parts(head: impl FnOnce(&mut Vec<u8>), chunk: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    head(&mut out);
    (chunk.len() as u32).encode_to(&mut out);
    vec![out.into(), chunk.clone()]
}

/// Decodes all of `buf`, slicing chunks out of it.
fn from_shared<T>(
    buf: &Bytes,
    what: &'static str,
    decode: impl FnOnce(&mut Reader<'_>, &Bytes) -> Result<T, DecodeError>,
) -> Result<T, DataError> {
    let mut r = Reader::new(buf);
    let v = decode(&mut r, buf).map_err(|e| DataError::malformed(what, e))?;
    match r.remaining() {
        0 => Ok(v),
        n => Err(DataError::malformed(what, DecodeError::TrailingBytes(n))),
    }
}

impl DataRequest {
    /// Decodes a request received from a peer; a chunk stays in `buf`, uncopied.
    pub fn from_shared(buf: &Bytes) -> Result<Self, DataError> {
        from_shared(buf, "data request", Self::decode_with)
    }

    /// The encoding as parts to send one after the other (a chunk is not copied).
    pub fn to_parts(&self) -> Vec<Bytes> {
        match self {
            DataRequest::Store { id, bytes } => parts(
                |out| {
                    out.push(0);
                    id.encode_to(out);
                },
                bytes,
            ),
            other => vec![other.encode().into()],
        }
    }
}

impl DataResponse {
    /// Decodes an answer received from a peer; a chunk stays in `buf`, uncopied.
    pub fn from_shared(buf: &Bytes) -> Result<Self, DataError> {
        from_shared(buf, "data response", Self::decode_with)
    }

    /// The encoding as parts to send one after the other (a chunk is not copied).
    pub fn to_parts(&self) -> Vec<Bytes> {
        match self {
            DataResponse::Chunk(Some(c)) => parts(|out| out.extend_from_slice(&[1, 1]), c),
            other => vec![other.encode().into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpc_types::SecretKey;

    #[test]
    fn requests_and_answers_round_trip_and_garbage_is_refused() {
        let owner = SecretKey::from_bytes([1; 32]);
        let keys = crate::DataKeys::from_account(&owner);
        let reqs = vec![
            DataRequest::Store {
                id: Hash32([1; 32]),
                bytes: Bytes::from(vec![9; 1000]),
            },
            DataRequest::Fetch {
                id: Hash32([2; 32]),
            },
            DataRequest::Has {
                ids: vec![Hash32([3; 32]); 3],
            },
            DataRequest::Reencrypt {
                stream: Hash32([4; 32]),
                grantee: owner.address(),
                interval: 77,
            },
            DataRequest::Announce(keys.announce(&owner)),
            DataRequest::Lookup {
                account: owner.address(),
            },
        ];
        for r in reqs {
            assert_eq!(DataRequest::from_shared(&r.encode().into()).unwrap(), r);
            let sent = r.to_parts().concat();
            assert_eq!(sent, r.encode(), "parts are the canonical encoding");
            assert_eq!(DataRequest::from_shared(&sent.into()).unwrap(), r);
        }
        let resps = vec![
            DataResponse::Ok,
            DataResponse::Chunk(None),
            DataResponse::Chunk(Some(Bytes::from_static(&[1, 2, 3]))),
            DataResponse::Have(vec![true, false]),
            DataResponse::Cfrag(vec![7; 300]),
            DataResponse::Announcement(Some(keys.announce(&owner))),
            DataResponse::Refused("no grant".into()),
        ];
        for r in resps {
            assert_eq!(DataResponse::from_shared(&r.encode().into()).unwrap(), r);
            let sent = r.to_parts().concat();
            assert_eq!(sent, r.encode(), "parts are the canonical encoding");
            assert_eq!(DataResponse::from_shared(&sent.into()).unwrap(), r);
        }
        // A received chunk is a view into the received buffer, not a copy.
        let chunk = Bytes::from(vec![5; 4096]);
        let buf = Bytes::from(
            DataRequest::Store {
                id: Hash32([6; 32]),
                bytes: chunk.clone(),
            }
            .to_parts()
            .concat(),
        );
        let DataRequest::Store { bytes, .. } = DataRequest::from_shared(&buf).unwrap() else {
            panic!("not a store request");
        };
        assert_eq!(bytes, chunk);
        assert_eq!(bytes.as_ptr(), buf[buf.len() - 4096..].as_ptr());
        let mut trailing = buf.to_vec();
        trailing.push(0);
        assert!(DataRequest::from_shared(&trailing.into()).is_err());
        let req = |b: &[u8]| DataRequest::from_shared(&Bytes::copy_from_slice(b));
        assert!(req(&[9]).is_err());
        assert!(req(&[0, 1, 2]).is_err());
        // A forged length allocates nothing and fails.
        let mut forged = vec![0];
        forged.extend_from_slice(&[0; 32]);
        forged.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(req(&forged).is_err());
    }
}
