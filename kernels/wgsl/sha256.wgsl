// SHA-256 (FIPS 180-4) over batches, and the Merkle tree rule of cpc_accel::merkle.
//
// - `sha256_batch`: one message per invocation. The messages sit back to back in `data`,
//   each starting on a word boundary, bytes in little-endian order within a word; `spans`
//   holds (first word, byte length) per message. Padding is generated on the fly.
//   One dispatch hashes at most BLOCKS_PER_PASS blocks of each message, from block
//   `params.first_block`; `digests` carries the running state from one dispatch to the
//   next, so the host dispatches until the longest message is done. The bound keeps every
//   invocation short: software Vulkan (lavapipe) ends any invocation after 65535 loop
//   iterations in total — which would silently truncate a 64 KiB message — and desktop
//   drivers reset a GPU whose dispatch runs for seconds.
// - `merkle_leaves`: node i = SHA-256(0x00 || leaf i).
// - `merkle_nodes`: one level up: node i = SHA-256(0x01 || in[2i] || in[2i+1]); an odd
//   last node is copied unchanged.
//
// Digests, leaves and nodes are 8 words each in SHA-256's own (big-endian) word order, so
// levels chain on the device without byte swaps.

struct Params {
    count: u32,
    // Invocations per row of the dispatch grid (workgroups in x times the workgroup size).
    row: u32,
    // sha256_batch: the first block of each message this dispatch hashes.
    first_block: u32,
    _pad: u32,
}

// About 80 loop iterations per block (64 rounds, 16 schedule words), so a dispatch stays
// well inside lavapipe's 65535.
const BLOCKS_PER_PASS: u32 = 512u;

@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read> spans: array<u32>;
@group(0) @binding(2) var<storage, read_write> digests: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;

var<private> K: array<u32, 64> = array<u32, 64>(
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
);

fn initial_state() -> array<u32, 8> {
    return array<u32, 8>(0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                         0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u);
}

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

fn bswap(x: u32) -> u32 {
    return (x << 24u) | ((x & 0xff00u) << 8u) | ((x >> 8u) & 0xff00u) | (x >> 24u);
}

// One compression of a 16-word block into `state`, with the message schedule kept in a
// 16-word ring.
fn compress(state: array<u32, 8>, block: array<u32, 16>) -> array<u32, 8> {
    var w = block;
    var a = state[0];
    var b = state[1];
    var c = state[2];
    var d = state[3];
    var e = state[4];
    var f = state[5];
    var g = state[6];
    var h = state[7];
    for (var i = 0u; i < 64u; i++) {
        var wi = w[i];
        if (i >= 16u) {
            let w15 = w[(i + 1u) & 15u];
            let w2 = w[(i + 14u) & 15u];
            let s0 = rotr(w15, 7u) ^ rotr(w15, 18u) ^ (w15 >> 3u);
            let s1 = rotr(w2, 17u) ^ rotr(w2, 19u) ^ (w2 >> 10u);
            wi = w[i & 15u] + s0 + w[(i + 9u) & 15u] + s1;
            w[i & 15u] = wi;
        }
        let t1 = h + (rotr(e, 6u) ^ rotr(e, 11u) ^ rotr(e, 25u)) + ((e & f) ^ (~e & g)) + K[i] + wi;
        let t2 = (rotr(a, 2u) ^ rotr(a, 13u) ^ rotr(a, 22u)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    return array<u32, 8>(state[0] + a, state[1] + b, state[2] + c, state[3] + d,
                         state[4] + e, state[5] + f, state[6] + g, state[7] + h);
}

fn invocation(gid: vec3<u32>) -> u32 {
    return gid.y * params.row + gid.x;
}

// Big-endian word `j` of padded block `blk` of the message at word `first`, `len` bytes.
fn message_word(first: u32, len: u32, last_block: u32, blk: u32, j: u32) -> u32 {
    if (blk == last_block && j >= 14u) {
        // The bit length, 64-bit big-endian.
        if (j == 14u) {
            return len >> 29u;
        }
        return len << 3u;
    }
    let pos = blk * 64u + j * 4u;
    if (pos + 4u <= len) {
        return bswap(data[first + (pos >> 2u)]);
    }
    var w = 0u;
    for (var k = 0u; k < 4u; k++) {
        let at = pos + k;
        var byte = 0u;
        if (at < len) {
            byte = (data[first + (at >> 2u)] >> ((at & 3u) * 8u)) & 0xffu;
        } else if (at == len) {
            byte = 0x80u;
        }
        w = (w << 8u) | byte;
    }
    return w;
}

@compute @workgroup_size(64)
fn sha256_batch(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count) {
        return;
    }
    let first = spans[2u * idx];
    let len = spans[2u * idx + 1u];
    // Message, the 0x80 byte and the 8-byte length, in 64-byte blocks.
    let blocks = (len + 72u) / 64u;
    let start = params.first_block;
    if (start >= blocks) {
        return;
    }
    let end = min(blocks, start + BLOCKS_PER_PASS);
    var state = initial_state();
    if (start > 0u) {
        for (var i = 0u; i < 8u; i++) {
            state[i] = digests[8u * idx + i];
        }
    }
    for (var blk = start; blk < end; blk++) {
        var block: array<u32, 16>;
        for (var j = 0u; j < 16u; j++) {
            block[j] = message_word(first, len, blocks - 1u, blk, j);
        }
        state = compress(state, block);
    }
    for (var i = 0u; i < 8u; i++) {
        digests[8u * idx + i] = state[i];
    }
}

// The Merkle kernels read nodes from `data` and write to `digests`.

@compute @workgroup_size(64)
fn merkle_leaves(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count) {
        return;
    }
    // 0x00 || leaf: 33 bytes, one block.
    var block: array<u32, 16>;
    var prev = 0u;
    for (var j = 0u; j < 8u; j++) {
        let l = data[8u * idx + j];
        block[j] = (prev << 24u) | (l >> 8u);
        prev = l;
    }
    block[8] = (prev << 24u) | 0x00800000u;
    block[15] = 33u * 8u;
    let state = compress(initial_state(), block);
    for (var i = 0u; i < 8u; i++) {
        digests[8u * idx + i] = state[i];
    }
}

@compute @workgroup_size(64)
fn merkle_nodes(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    let n = params.count;
    if (2u * idx >= n) {
        return;
    }
    if (2u * idx + 1u == n) {
        for (var i = 0u; i < 8u; i++) {
            digests[8u * idx + i] = data[16u * idx + i];
        }
        return;
    }
    // 0x01 || left || right: 65 bytes, two blocks.
    var block: array<u32, 16>;
    var prev = 1u;
    for (var j = 0u; j < 16u; j++) {
        let l = data[16u * idx + j];
        block[j] = (prev << 24u) | (l >> 8u);
        prev = l;
    }
    var state = compress(initial_state(), block);
    var tail: array<u32, 16>;
    tail[0] = (prev << 24u) | 0x00800000u;
    tail[15] = 65u * 8u;
    state = compress(state, tail);
    for (var i = 0u; i < 8u; i++) {
        digests[8u * idx + i] = state[i];
    }
}
