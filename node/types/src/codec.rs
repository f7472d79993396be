//! The canonical binary encoding.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use thiserror::Error;

/// Why bytes are not the canonical encoding of a value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("input ends at byte {at}: {needed} more bytes needed")]
    UnexpectedEnd {
        /// Offset where the value started.
        at: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes are left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// An enum or option tag is not defined.
    #[error("invalid {what} tag {tag}")]
    InvalidTag {
        /// The type being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A length exceeds its limit.
    #[error("{what} of {len} exceeds the limit of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Text is not UTF-8.
    #[error("text is not valid utf-8")]
    InvalidUtf8,
    /// A value is well formed but breaks a rule of its type.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Writes the canonical encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The encoding as a new vector.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// Reads the canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from `r`.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Decodes exactly one value: the whole input, nothing more or less.
pub fn decode_exact<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::decode_from(&mut r)?;
    match r.remaining() {
        0 => Ok(v),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// A cursor over the input.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    unbounded: bool,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            unbounded: false,
        }
    }

    /// A reader of a large local record (a snapshot of a node's state): lengths are limited
    /// by the bytes left alone, not by the limits a message from a peer must meet.
    pub fn unbounded(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            unbounded: true,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                at: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A `u32` length prefix, checked against `max` and against the input left (every
    /// element takes at least `min_elem` bytes), so a forged length allocates nothing.
    pub fn length(
        &mut self,
        what: &'static str,
        max: usize,
        min_elem: usize,
    ) -> Result<usize, DecodeError> {
        let len = u32::decode_from(self)? as usize;
        if len > max && !self.unbounded {
            return Err(DecodeError::TooLong { what, len, max });
        }
        if len.saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                at: self.pos,
                needed: len * min_elem.max(1) - self.remaining(),
            });
        }
        Ok(len)
    }

    /// One tag byte.
    pub fn tag(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
        }
        impl Decode for $t {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                let n = b.len();
                b.copy_from_slice(r.take(n)?);
                Ok(<$t>::from_be_bytes(b))
            }
        }
    )*};
}
int_codec!(u8, u16, u32, u64, u128, i128);

impl Encode for bool {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what: "bool", tag }),
        }
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> Decode for [u8; N] {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut b = [0u8; N];
        b.copy_from_slice(r.take(N)?);
        Ok(b)
    }
}

/// Byte strings and lists are limited to this many elements.
pub const MAX_LEN: usize = 16 * 1024 * 1024;

impl Encode for String {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode_to(out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Decode for String {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.length("text", MAX_LEN, 1)?;
        String::from_utf8(r.take(len)?.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }
}

/// A list: its length, then its items.
fn put_list<'a, T: Encode + 'a>(len: usize, items: impl Iterator<Item = &'a T>, out: &mut Vec<u8>) {
    (len as u32).encode_to(out);
    for item in items {
        item.encode_to(out);
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_list(self.len(), self.iter(), out);
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.length("list", MAX_LEN, 1)?;
        // The length is checked against the bytes left, not against the memory of the
        // decoded elements, which may be far larger: grow as elements actually decode.
        let mut v = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            v.push(T::decode_from(r)?);
        }
        Ok(v)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (**self).encode_to(out);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode_to(out);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.tag()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "option",
                tag,
            }),
        }
    }
}

/// A `usize` is a `u64` on the wire, whatever the platform.
impl Encode for usize {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (*self as u64).encode_to(out);
    }
}

impl Decode for usize {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        usize::try_from(u64::decode_from(r)?).map_err(|_| DecodeError::Invalid("usize"))
    }
}

impl Encode for () {
    fn encode_to(&self, _: &mut Vec<u8>) {}
}

impl Decode for () {
    fn decode_from(_: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl<T: Encode> Encode for Box<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (**self).encode_to(out);
    }
}

impl<T: Decode> Decode for Box<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode_from(r).map(Box::new)
    }
}

/// Tuples are their elements, in order.
macro_rules! tuple_codec {
    ($($t:ident),*) => {
        impl<$($t: Encode),*> Encode for ($($t,)*) {
            #[allow(non_snake_case)]
            fn encode_to(&self, out: &mut Vec<u8>) {
                let ($($t,)*) = self;
                $( $t.encode_to(out); )*
            }
        }
        impl<$($t: Decode),*> Decode for ($($t,)*) {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(($($t::decode_from(r)?,)*))
            }
        }
    };
}
tuple_codec!(A, B);
tuple_codec!(A, B, C);

impl<T: Encode> Encode for VecDeque<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_list(self.len(), self.iter(), out);
    }
}

impl<T: Decode> Decode for VecDeque<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Vec::<T>::decode_from(r).map(VecDeque::from)
    }
}

/// Ordered maps and sets are lists in ascending order; a list out of order or with a
/// repeated key is not an encoding of one (a map has one encoding).
impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode_to(out);
        for (k, v) in self {
            k.encode_to(out);
            v.encode_to(out);
        }
    }
}

impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.length("map", MAX_LEN, 1)?;
        let mut m = BTreeMap::new();
        for _ in 0..len {
            let k = K::decode_from(r)?;
            if m.last_key_value().is_some_and(|(last, _)| *last >= k) {
                return Err(DecodeError::Invalid("map key order"));
            }
            let v = V::decode_from(r)?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

impl<T: Encode> Encode for BTreeSet<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        put_list(self.len(), self.iter(), out);
    }
}

impl<T: Decode + Ord> Decode for BTreeSet<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.length("set", MAX_LEN, 1)?;
        let mut s = BTreeSet::new();
        for _ in 0..len {
            let item = T::decode_from(r)?;
            if s.last().is_some_and(|last| *last >= item) {
                return Err(DecodeError::Invalid("set order"));
            }
            s.insert(item);
        }
        Ok(s)
    }
}

/// Implements [`Encode`] and [`Decode`] for a struct as the concatenation of its fields in
/// the order listed (which must be the declaration order, for readability).
#[macro_export]
macro_rules! codec_struct {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl $crate::codec::Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                $( $crate::codec::Encode::encode_to(&self.$field, out); )*
            }
        }
        impl $crate::codec::Decode for $name {
            fn decode_from(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                Ok(Self { $( $field: $crate::codec::Decode::decode_from(r)?, )* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_and_bad_tags_are_rejected() {
        assert_eq!(decode_exact::<u32>(&[0, 0, 0, 1]), Ok(1));
        assert_eq!(
            decode_exact::<u32>(&[0, 0, 0, 1, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            decode_exact::<bool>(&[2]),
            Err(DecodeError::InvalidTag { .. })
        ));
        assert!(matches!(
            decode_exact::<Option<u8>>(&[7, 1]),
            Err(DecodeError::InvalidTag { .. })
        ));
        assert!(matches!(
            decode_exact::<u64>(&[1, 2]),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn collections_round_trip_and_have_one_encoding() {
        let m: BTreeMap<u32, (u8, Option<u64>)> = [(1, (2, None)), (7, (0, Some(9)))].into();
        assert_eq!(
            decode_exact::<BTreeMap<u32, (u8, Option<u64>)>>(&m.encode()),
            Ok(m)
        );
        let s: BTreeSet<usize> = [3, 1, 2].into();
        assert_eq!(decode_exact::<BTreeSet<usize>>(&s.encode()), Ok(s));
        let q: VecDeque<Box<u16>> = [Box::new(5), Box::new(4)].into();
        assert_eq!(decode_exact::<VecDeque<Box<u16>>>(&q.encode()), Ok(q));
        assert_eq!(decode_exact::<i128>(&(-5i128).encode()), Ok(-5));
        // Out of order, or repeated: not a set.
        let unsorted = vec![2u64, 1].encode();
        assert!(decode_exact::<BTreeSet<u64>>(&unsorted).is_err());
        let repeated = vec![(1u8, 0u8), (1, 1)].encode();
        assert!(decode_exact::<BTreeMap<u8, u8>>(&repeated).is_err());
        assert_eq!(
            decode_exact::<Vec<(u8, u8)>>(&repeated),
            Ok(vec![(1, 0), (1, 1)])
        );
    }

    #[test]
    fn an_unbounded_reader_limits_lengths_by_the_bytes_left_alone() {
        let bytes = [0, 0, 0, 3, 1, 2, 3];
        assert!(Reader::new(&bytes).length("x", 2, 1).is_err());
        assert_eq!(Reader::unbounded(&bytes).length("x", 2, 1), Ok(3));
        assert!(Reader::unbounded(&bytes).length("x", 2, 2).is_err());
    }

    #[test]
    fn forged_lengths_allocate_nothing() {
        // Claims four billion elements in a five-byte input.
        let bytes = [0xff, 0xff, 0xff, 0xf0, 0];
        assert!(decode_exact::<Vec<u64>>(&bytes).is_err());
        assert!(decode_exact::<String>(&bytes).is_err());
        let bytes = [0, 0, 0, 9, 1, 2];
        assert!(matches!(
            decode_exact::<Vec<u8>>(&bytes),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn text_must_be_utf8() {
        let b = vec![0xffu8, 0xfe].encode();
        assert_eq!(decode_exact::<String>(&b), Err(DecodeError::InvalidUtf8));
    }
}
