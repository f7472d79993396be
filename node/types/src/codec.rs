//! The canonical binary encoding.

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
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
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
        if len > max {
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
int_codec!(u8, u16, u32, u64);

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

impl<T: Encode> Encode for Vec<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode_to(out);
        for item in self {
            item.encode_to(out);
        }
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
