// SHA-256 (FIPS 180-4) over batches, and the Merkle tree rule of cpc_accel::merkle. The
// CUDA twin of ../wgsl/sha256.wgsl: same buffer layout, same kernels (see that file's
// header). Compiled by NVRTC for the device, and as host C++ through host_shim.h for the
// tests.

typedef unsigned int u32;
typedef unsigned long long u64;

__constant__ u32 SHA256_K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

__device__ static void sha256_init(u32 s[8]) {
    s[0] = 0x6a09e667u; s[1] = 0xbb67ae85u; s[2] = 0x3c6ef372u; s[3] = 0xa54ff53au;
    s[4] = 0x510e527fu; s[5] = 0x9b05688cu; s[6] = 0x1f83d9abu; s[7] = 0x5be0cd19u;
}

__device__ static u32 rotr(u32 x, u32 n) {
    return (x >> n) | (x << (32 - n));
}

__device__ static u32 bswap32(u32 x) {
    return (x << 24) | ((x & 0xff00u) << 8) | ((x >> 8) & 0xff00u) | (x >> 24);
}

// One compression of a 16-word block into `s`, with the schedule in a 16-word ring.
__device__ static void sha256_compress(u32 s[8], u32 w[16]) {
    u32 a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (int i = 0; i < 64; i++) {
        u32 wi = w[i & 15];
        if (i >= 16) {
            u32 w15 = w[(i + 1) & 15];
            u32 w2 = w[(i + 14) & 15];
            u32 s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
            u32 s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
            wi = w[i & 15] + s0 + w[(i + 9) & 15] + s1;
            w[i & 15] = wi;
        }
        u32 t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + wi;
        u32 t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
}

// Big-endian word `j` of padded block `blk` of the message at word `first`, `len` bytes.
__device__ static u32 message_word(const u32* data, u32 first, u32 len, u32 last_block, u32 blk, u32 j) {
    if (blk == last_block && j >= 14) {
        return j == 14 ? (len >> 29) : (len << 3);
    }
    u32 pos = blk * 64 + j * 4;
    if (pos + 4 <= len) return bswap32(data[first + (pos >> 2)]);
    u32 w = 0;
    for (u32 k = 0; k < 4; k++) {
        u32 at = pos + k;
        u32 byte = 0;
        if (at < len) {
            byte = (data[first + (at >> 2)] >> ((at & 3) * 8)) & 0xffu;
        } else if (at == len) {
            byte = 0x80u;
        }
        w = (w << 8) | byte;
    }
    return w;
}

extern "C" __global__ void sha256_batch(const u32* __restrict__ data, const u32* __restrict__ spans,
                                        u32* __restrict__ digests, u32 count) {
    u32 idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= count) return;
    u32 first = spans[2 * idx];
    u32 len = spans[2 * idx + 1];
    u32 blocks = (len + 72) / 64;
    u32 s[8];
    sha256_init(s);
    for (u32 blk = 0; blk < blocks; blk++) {
        u32 w[16];
        for (u32 j = 0; j < 16; j++) w[j] = message_word(data, first, len, blocks - 1, blk, j);
        sha256_compress(s, w);
    }
    for (int i = 0; i < 8; i++) digests[(u64)idx * 8 + i] = s[i];
}

// node i = SHA-256(0x00 || leaf i): 33 bytes, one block.
extern "C" __global__ void merkle_leaves(const u32* __restrict__ src, u32* __restrict__ dst, u32 count) {
    u32 idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= count) return;
    u32 w[16];
    u32 prev = 0;
    for (int j = 0; j < 8; j++) {
        u32 l = src[(u64)idx * 8 + j];
        w[j] = (prev << 24) | (l >> 8);
        prev = l;
    }
    w[8] = (prev << 24) | 0x00800000u;
    for (int j = 9; j < 15; j++) w[j] = 0;
    w[15] = 33 * 8;
    u32 s[8];
    sha256_init(s);
    sha256_compress(s, w);
    for (int i = 0; i < 8; i++) dst[(u64)idx * 8 + i] = s[i];
}

// One level up from `count` nodes: SHA-256(0x01 || left || right), 65 bytes in two
// blocks; an odd last node is copied. Launched with ⌈count/2⌉ threads.
extern "C" __global__ void merkle_nodes(const u32* __restrict__ src, u32* __restrict__ dst, u32 count) {
    u32 idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (2 * (u64)idx >= count) return;
    if (2 * (u64)idx + 1 == count) {
        for (int i = 0; i < 8; i++) dst[(u64)idx * 8 + i] = src[(u64)idx * 16 + i];
        return;
    }
    u32 w[16];
    u32 prev = 1;
    for (int j = 0; j < 16; j++) {
        u32 l = src[(u64)idx * 16 + j];
        w[j] = (prev << 24) | (l >> 8);
        prev = l;
    }
    u32 s[8];
    sha256_init(s);
    sha256_compress(s, w);
    u32 tail[16];
    tail[0] = (prev << 24) | 0x00800000u;
    for (int j = 1; j < 15; j++) tail[j] = 0;
    tail[15] = 65 * 8;
    sha256_compress(s, tail);
    for (int i = 0; i < 8; i++) dst[(u64)idx * 8 + i] = s[i];
}
