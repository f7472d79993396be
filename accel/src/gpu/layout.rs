//! The buffer layouts of the kernels in `cpc-kernels`, shared by the WGSL and CUDA
//! backends (and by the tests that run the CUDA kernels on the host).
//!
//! Everything is little-endian 32-bit words. See the table in the `cpc_kernels` crate
//! documentation for what each kernel reads and writes.

use std::ops::Range;

use rayon::prelude::*;

use crate::backend::SigItem;
use crate::{Digest, merkle};

pub use cpc_kernels::{ED25519_ITEM_WORDS, FIELD_OPS_OUT_WORDS, WORKGROUP_SIZE};

/// Words per digest, leaf or Merkle node.
pub const NODE_WORDS: usize = 8;

/// Messages packed for `sha256_batch`: the message words, and `(first word, byte length)`
/// per message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackedMessages {
    /// Message bytes, each message starting on a word boundary.
    pub data: Vec<u32>,
    /// `first word, byte length` per message.
    pub spans: Vec<u32>,
}

/// Words a message occupies in [`PackedMessages::data`].
pub fn message_words(len: usize) -> usize {
    len.div_ceil(4)
}

/// SHA-256 blocks of a message of `len` bytes: the message, the 0x80 byte and the 64-bit
/// length, in 64-byte blocks.
pub fn sha256_blocks(len: usize) -> usize {
    (len + 72) / 64
}

/// Packs messages for `sha256_batch`. Messages must be shorter than 4 GiB and the total
/// below 16 GiB, which [`split_messages`] guarantees.
pub fn pack_messages(msgs: &[&[u8]]) -> PackedMessages {
    let words: usize = msgs.iter().map(|m| message_words(m.len())).sum();
    let mut data = Vec::with_capacity(words.max(1));
    let mut spans = Vec::with_capacity(2 * msgs.len());
    for m in msgs {
        spans.push(data.len() as u32);
        spans.push(m.len() as u32);
        let mut chunks = m.chunks_exact(4);
        for c in &mut chunks {
            data.push(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 4];
            last[..rest.len()].copy_from_slice(rest);
            data.push(u32::from_le_bytes(last));
        }
    }
    // Device buffers cannot be empty; a batch of empty messages still binds one word.
    if data.is_empty() {
        data.push(0);
    }
    PackedMessages { data, spans }
}

/// Cuts a batch of messages into consecutive runs of at most `max_count` messages and at
/// most `max_words` words of data. `Err(i)` names a message that alone exceeds
/// `max_words` (or the kernel's 32-bit byte length).
pub fn split_messages(
    msgs: &[&[u8]],
    max_count: usize,
    max_words: usize,
) -> Result<Vec<Range<usize>>, usize> {
    let max_count = max_count.max(1);
    let mut runs = Vec::new();
    let (mut start, mut words) = (0, 0usize);
    for (i, m) in msgs.iter().enumerate() {
        let w = message_words(m.len());
        // The kernel's length arithmetic (len + 72) stays in 32 bits.
        if w > max_words || m.len() > u32::MAX as usize - 128 {
            return Err(i);
        }
        if i > start && (i - start == max_count || words + w > max_words) {
            runs.push(start..i);
            start = i;
            words = 0;
        }
        words += w;
    }
    if start < msgs.len() {
        runs.push(start..msgs.len());
    }
    Ok(runs)
}

/// A digest from its 8 big-endian state words.
pub fn digest_from_words(w: &[u32]) -> Digest {
    let mut d = [0u8; 32];
    for (out, word) in d.chunks_exact_mut(4).zip(w) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    d
}

/// Digests from consecutive groups of 8 words.
pub fn digests_from_words(w: &[u32]) -> Vec<Digest> {
    w.chunks_exact(NODE_WORDS).map(digest_from_words).collect()
}

/// Leaves or nodes as the Merkle kernels read them (8 big-endian words each).
pub fn node_words(nodes: &[Digest]) -> Vec<u32> {
    let mut out = Vec::with_capacity(nodes.len() * NODE_WORDS);
    for n in nodes {
        out.extend(
            n.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    out
}

/// The node counts of the Merkle levels above `leaves` leaves, down to the root:
/// `5 → [3, 2, 1]`. Empty for zero or one leaf.
pub fn merkle_levels(leaves: usize) -> Vec<usize> {
    let mut levels = Vec::new();
    let mut n = leaves;
    while n > 1 {
        n = n.div_ceil(2);
        levels.push(n);
    }
    levels
}

/// The root of the empty tree, which needs no device.
pub fn empty_merkle_root() -> Digest {
    merkle::empty_root()
}

fn words_of(bytes: &[u8; 32], out: &mut [u32]) {
    for (w, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}

/// Writes one item's 32 words (`A`, `R`, `S`, `k`) into `out`.
pub fn ed25519_item(item: &SigItem<'_>, out: &mut [u32]) {
    debug_assert_eq!(out.len(), ED25519_ITEM_WORDS);
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&item.signature[..32]);
    s.copy_from_slice(&item.signature[32..]);
    words_of(&item.public_key, &mut out[0..8]);
    words_of(&r, &mut out[8..16]);
    words_of(&s, &mut out[16..24]);
    words_of(
        &crate::cpu::ed25519_challenge(item).to_bytes(),
        &mut out[24..32],
    );
}

/// Packs items for `ed25519_verify` into `out` (cleared first). The challenge hashes of a
/// large chunk are spread over rayon's pool: one core hashes about 2.5 million challenges
/// a second, less than a large GPU verifies.
pub fn pack_ed25519(items: &[SigItem<'_>], out: &mut Vec<u32>) {
    out.clear();
    out.resize(items.len() * ED25519_ITEM_WORDS, 0);
    if items.len() >= 1024 {
        out.par_chunks_exact_mut(ED25519_ITEM_WORDS)
            .zip(items.par_iter())
            .with_min_len(256)
            .for_each(|(words, item)| ed25519_item(item, words));
    } else {
        for (item, words) in items.iter().zip(out.chunks_exact_mut(ED25519_ITEM_WORDS)) {
            ed25519_item(item, words);
        }
    }
}

/// Verdicts from the kernel's output words; anything but 0 or 1 is a device fault.
pub fn verdicts_from_words(w: &[u32]) -> Option<Vec<bool>> {
    w.iter()
        .map(|&v| match v {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        })
        .collect()
}

/// The dispatch grid for `n` invocations: `(x, y)` workgroups with x at most `max_x`, and
/// the invocations per row the kernels use to number themselves.
pub fn grid(n: usize, max_x: u32) -> (u32, u32, u32) {
    let groups = n.div_ceil(WORKGROUP_SIZE as usize).max(1);
    let x = groups.min(max_x.max(1) as usize);
    let y = groups.div_ceil(x);
    (x as u32, y as u32, x as u32 * WORKGROUP_SIZE)
}

/// The uniform parameters every kernel reads: count, invocations per row, padding.
pub fn params(count: usize, row: u32) -> [u32; 4] {
    [count as u32, row, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_pack_on_word_boundaries() {
        let msgs: Vec<&[u8]> = vec![b"", b"abcde", b"wxyz", b"q"];
        let p = pack_messages(&msgs);
        assert_eq!(p.spans, vec![0, 0, 0, 5, 2, 4, 3, 1]);
        assert_eq!(
            p.data,
            vec![
                u32::from_le_bytes(*b"abcd"),
                u32::from_le_bytes([b'e', 0, 0, 0]),
                u32::from_le_bytes(*b"wxyz"),
                u32::from_le_bytes([b'q', 0, 0, 0]),
            ]
        );
        assert_eq!(pack_messages(&[b"" as &[u8]]).data, vec![0]);
    }

    #[test]
    fn split_respects_count_and_words() {
        let a = [0u8; 16];
        let msgs: Vec<&[u8]> = vec![&a; 10];
        assert_eq!(
            split_messages(&msgs, 4, 100).unwrap(),
            vec![0..4, 4..8, 8..10]
        );
        assert_eq!(
            split_messages(&msgs, 100, 12).unwrap(),
            vec![0..3, 3..6, 6..9, 9..10]
        );
        assert_eq!(split_messages(&msgs, 100, 3), Err(0));
        assert_eq!(
            split_messages(&[], 4, 4).unwrap(),
            Vec::<Range<usize>>::new()
        );
        let empties: Vec<&[u8]> = vec![b""; 5];
        assert_eq!(
            split_messages(&empties, 2, 1).unwrap(),
            vec![0..2, 2..4, 4..5]
        );
    }

    #[test]
    fn node_words_round_trip() {
        let d: Digest = std::array::from_fn(|i| i as u8);
        assert_eq!(digest_from_words(&node_words(&[d])), d);
        assert_eq!(node_words(&[d])[0], 0x0001_0203);
    }

    #[test]
    fn levels_and_grid() {
        assert_eq!(merkle_levels(5), vec![3, 2, 1]);
        assert_eq!(merkle_levels(1), Vec::<usize>::new());
        assert_eq!(merkle_levels(4), vec![2, 1]);
        assert_eq!(grid(1, 65535), (1, 1, 64));
        assert_eq!(grid(65, 65535), (2, 1, 128));
        assert_eq!(grid(64 * 10, 4), (4, 3, 256));
    }
}
