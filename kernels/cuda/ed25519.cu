// Ed25519 batch verification under ZIP-215, one signature per thread. The CUDA twin of
// ../wgsl/ed25519.wgsl: same buffer layout, same algorithm, same decoding rules (see the
// WGSL file's header).
//
// Field elements mod p = 2^255 - 19 are ten 32-bit limbs of alternately 26 and 25 bits
// (radix 2^25.5), multiplied with 64-bit products: the 32x32->64 multiply-add is native
// on NVIDIA GPUs, so this needs a quarter of the multiplications of the 13-bit limbs WGSL
// has to use. The arithmetic follows curve25519-dalek's 32-bit backend (FieldElement2625);
// every function returns a reduced element (limbs at most 2^26 or 2^25 plus a little).
//
// Compiled by NVRTC for the device, and as host C++ through host_shim.h for the tests.

typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;

struct Fe {
    u32 v[10];
};

struct Pt {
    Fe x, y, z, t;
};

// (Y + X, Y - X, Z, 2dT): the form of a point that is added to another.
struct Cached {
    Fe ypx, ymx, z, t2d;
};

// ---------------------------------------------------------------------------------------
// Field arithmetic mod p = 2^255 - 19

__device__ static Fe fe_reduce(u64 z[10]) {
    const u64 m26 = (1ull << 26) - 1;
    const u64 m25 = (1ull << 25) - 1;
    // Two halves of the carry chain, then the wrap-around through 19.
    z[1] += z[0] >> 26; z[0] &= m26;  z[5] += z[4] >> 26; z[4] &= m26;
    z[2] += z[1] >> 25; z[1] &= m25;  z[6] += z[5] >> 25; z[5] &= m25;
    z[3] += z[2] >> 26; z[2] &= m26;  z[7] += z[6] >> 26; z[6] &= m26;
    z[4] += z[3] >> 25; z[3] &= m25;  z[8] += z[7] >> 25; z[7] &= m25;
    z[5] += z[4] >> 26; z[4] &= m26;  z[9] += z[8] >> 26; z[8] &= m26;
    z[0] += 19 * (z[9] >> 25); z[9] &= m25;
    z[1] += z[0] >> 26; z[0] &= m26;
    Fe r;
    for (int i = 0; i < 10; i++) r.v[i] = (u32)z[i];
    return r;
}

__device__ static Fe fe_add(const Fe& a, const Fe& b) {
    u64 z[10];
    for (int i = 0; i < 10; i++) z[i] = (u64)a.v[i] + b.v[i];
    return fe_reduce(z);
}

// 16p, limb by limb, keeps a + 16p - b non-negative.
__device__ static Fe fe_sub(const Fe& a, const Fe& b) {
    u64 z[10];
    for (int i = 0; i < 10; i++) {
        u32 p16 = (i == 0) ? (0x3ffffedu << 4) : ((i & 1) ? (0x1ffffffu << 4) : (0x3ffffffu << 4));
        z[i] = (u64)(a.v[i] + p16 - b.v[i]);
    }
    return fe_reduce(z);
}

__device__ static Fe fe_zero() {
    Fe r;
    for (int i = 0; i < 10; i++) r.v[i] = 0;
    return r;
}

__device__ static Fe fe_one() {
    Fe r = fe_zero();
    r.v[0] = 1;
    return r;
}

__device__ static Fe fe_neg(const Fe& a) {
    return fe_sub(fe_zero(), a);
}

__device__ static u64 m(u32 x, u32 y) {
    return (u64)x * (u64)y;
}

__device__ static Fe fe_mul(const Fe& a, const Fe& b) {
    const u32* x = a.v;
    const u32* y = b.v;
    u32 y1_19 = 19 * y[1], y2_19 = 19 * y[2], y3_19 = 19 * y[3], y4_19 = 19 * y[4];
    u32 y5_19 = 19 * y[5], y6_19 = 19 * y[6], y7_19 = 19 * y[7], y8_19 = 19 * y[8];
    u32 y9_19 = 19 * y[9];
    u32 x1_2 = 2 * x[1], x3_2 = 2 * x[3], x5_2 = 2 * x[5], x7_2 = 2 * x[7], x9_2 = 2 * x[9];
    u64 z[10];
    z[0] = m(x[0], y[0]) + m(x1_2, y9_19) + m(x[2], y8_19) + m(x3_2, y7_19) + m(x[4], y6_19) + m(x5_2, y5_19) + m(x[6], y4_19) + m(x7_2, y3_19) + m(x[8], y2_19) + m(x9_2, y1_19);
    z[1] = m(x[0], y[1]) + m(x[1], y[0]) + m(x[2], y9_19) + m(x[3], y8_19) + m(x[4], y7_19) + m(x[5], y6_19) + m(x[6], y5_19) + m(x[7], y4_19) + m(x[8], y3_19) + m(x[9], y2_19);
    z[2] = m(x[0], y[2]) + m(x1_2, y[1]) + m(x[2], y[0]) + m(x3_2, y9_19) + m(x[4], y8_19) + m(x5_2, y7_19) + m(x[6], y6_19) + m(x7_2, y5_19) + m(x[8], y4_19) + m(x9_2, y3_19);
    z[3] = m(x[0], y[3]) + m(x[1], y[2]) + m(x[2], y[1]) + m(x[3], y[0]) + m(x[4], y9_19) + m(x[5], y8_19) + m(x[6], y7_19) + m(x[7], y6_19) + m(x[8], y5_19) + m(x[9], y4_19);
    z[4] = m(x[0], y[4]) + m(x1_2, y[3]) + m(x[2], y[2]) + m(x3_2, y[1]) + m(x[4], y[0]) + m(x5_2, y9_19) + m(x[6], y8_19) + m(x7_2, y7_19) + m(x[8], y6_19) + m(x9_2, y5_19);
    z[5] = m(x[0], y[5]) + m(x[1], y[4]) + m(x[2], y[3]) + m(x[3], y[2]) + m(x[4], y[1]) + m(x[5], y[0]) + m(x[6], y9_19) + m(x[7], y8_19) + m(x[8], y7_19) + m(x[9], y6_19);
    z[6] = m(x[0], y[6]) + m(x1_2, y[5]) + m(x[2], y[4]) + m(x3_2, y[3]) + m(x[4], y[2]) + m(x5_2, y[1]) + m(x[6], y[0]) + m(x7_2, y9_19) + m(x[8], y8_19) + m(x9_2, y7_19);
    z[7] = m(x[0], y[7]) + m(x[1], y[6]) + m(x[2], y[5]) + m(x[3], y[4]) + m(x[4], y[3]) + m(x[5], y[2]) + m(x[6], y[1]) + m(x[7], y[0]) + m(x[8], y9_19) + m(x[9], y8_19);
    z[8] = m(x[0], y[8]) + m(x1_2, y[7]) + m(x[2], y[6]) + m(x3_2, y[5]) + m(x[4], y[4]) + m(x5_2, y[3]) + m(x[6], y[2]) + m(x7_2, y[1]) + m(x[8], y[0]) + m(x9_2, y9_19);
    z[9] = m(x[0], y[9]) + m(x[1], y[8]) + m(x[2], y[7]) + m(x[3], y[6]) + m(x[4], y[5]) + m(x[5], y[4]) + m(x[6], y[3]) + m(x[7], y[2]) + m(x[8], y[1]) + m(x[9], y[0]);
    return fe_reduce(z);
}

__device__ static Fe fe_sq(const Fe& a) {
    const u32* x = a.v;
    u32 x0_2 = 2 * x[0], x1_2 = 2 * x[1], x2_2 = 2 * x[2], x3_2 = 2 * x[3], x4_2 = 2 * x[4];
    u32 x5_2 = 2 * x[5], x6_2 = 2 * x[6], x7_2 = 2 * x[7];
    u32 x5_19 = 19 * x[5], x6_19 = 19 * x[6], x7_19 = 19 * x[7], x8_19 = 19 * x[8], x9_19 = 19 * x[9];
    u64 z[10];
    // Multiplying the sums by 2 in 64 bits keeps the 32-bit factors below 2^31.
    z[0] = m(x[0], x[0]) + m(x2_2, x8_19) + m(x4_2, x6_19) + (m(x1_2, x9_19) + m(x3_2, x7_19) + m(x[5], x5_19)) * 2;
    z[1] = m(x0_2, x[1]) + m(x3_2, x8_19) + m(x5_2, x6_19) + (m(x[2], x9_19) + m(x[4], x7_19)) * 2;
    z[2] = m(x0_2, x[2]) + m(x1_2, x[1]) + m(x4_2, x8_19) + m(x[6], x6_19) + (m(x3_2, x9_19) + m(x5_2, x7_19)) * 2;
    z[3] = m(x0_2, x[3]) + m(x1_2, x[2]) + m(x5_2, x8_19) + (m(x[4], x9_19) + m(x[6], x7_19)) * 2;
    z[4] = m(x0_2, x[4]) + m(x1_2, x3_2) + m(x[2], x[2]) + m(x6_2, x8_19) + (m(x5_2, x9_19) + m(x[7], x7_19)) * 2;
    z[5] = m(x0_2, x[5]) + m(x1_2, x[4]) + m(x2_2, x[3]) + m(x7_2, x8_19) + m(x[6], x9_19) * 2;
    z[6] = m(x0_2, x[6]) + m(x1_2, x5_2) + m(x2_2, x[4]) + m(x3_2, x[3]) + m(x[8], x8_19) + m(x7_2, x9_19) * 2;
    z[7] = m(x0_2, x[7]) + m(x1_2, x[6]) + m(x2_2, x[5]) + m(x3_2, x[4]) + m(x[8], x9_19) * 2;
    z[8] = m(x0_2, x[8]) + m(x1_2, x7_2) + m(x2_2, x[6]) + m(x3_2, x5_2) + m(x[4], x[4]) + m(x[9], x9_19) * 2;
    z[9] = m(x0_2, x[9]) + m(x1_2, x[8]) + m(x2_2, x[7]) + m(x3_2, x[6]) + m(x4_2, x[5]);
    return fe_reduce(z);
}

__device__ static Fe fe_sqn(Fe a, int n) {
    for (int i = 0; i < n; i++) a = fe_sq(a);
    return a;
}

// The canonical value (in [0, p)) as 8 little-endian words.
__device__ static void fe_to_words(const Fe& a, u32 w[8]) {
    u64 z[10];
    for (int i = 0; i < 10; i++) z[i] = a.v[i];
    Fe r = fe_reduce(z);
    u32* h = r.v;
    // h < 2p; h >= p exactly when h + 19 carries out of bit 255.
    u32 q = (h[0] + 19) >> 26;
    q = (h[1] + q) >> 25;
    q = (h[2] + q) >> 26;
    q = (h[3] + q) >> 25;
    q = (h[4] + q) >> 26;
    q = (h[5] + q) >> 25;
    q = (h[6] + q) >> 26;
    q = (h[7] + q) >> 25;
    q = (h[8] + q) >> 26;
    q = (h[9] + q) >> 25;
    h[0] += 19 * q;
    const u32 m26 = (1u << 26) - 1, m25 = (1u << 25) - 1;
    h[1] += h[0] >> 26; h[0] &= m26;
    h[2] += h[1] >> 25; h[1] &= m25;
    h[3] += h[2] >> 26; h[2] &= m26;
    h[4] += h[3] >> 25; h[3] &= m25;
    h[5] += h[4] >> 26; h[4] &= m26;
    h[6] += h[5] >> 25; h[5] &= m25;
    h[7] += h[6] >> 26; h[6] &= m26;
    h[8] += h[7] >> 25; h[7] &= m25;
    h[9] += h[8] >> 26; h[8] &= m26;
    h[9] &= m25;
    // Limb i starts at bit 0, 26, 51, 77, 102, 128, 153, 179, 204, 230.
    for (int i = 0; i < 8; i++) w[i] = 0;
    const int start[10] = {0, 26, 51, 77, 102, 128, 153, 179, 204, 230};
    for (int i = 0; i < 10; i++) {
        int word = start[i] >> 5, off = start[i] & 31;
        w[word] |= h[i] << off;
        if (off != 0 && word < 7) w[word + 1] |= h[i] >> (32 - off);
    }
}

// 256 bits, little-endian words, to a field element; any value below 2^256 is accepted
// and taken mod p (bit 255 counts as 2^255 = 19).
__device__ static Fe fe_from_words(const u32 w[8]) {
    const int start[10] = {0, 26, 51, 77, 102, 128, 153, 179, 204, 230};
    u64 z[10];
    for (int i = 0; i < 10; i++) {
        int bits = (i & 1) ? 25 : 26;
        int word = start[i] >> 5, off = start[i] & 31;
        u64 v = (u64)w[word] >> off;
        if (word < 7) v |= (u64)w[word + 1] << (32 - off);
        z[i] = v & ((1ull << bits) - 1);
    }
    z[0] += 19 * (u64)(w[7] >> 31);
    return fe_reduce(z);
}

__device__ static bool fe_eq(const Fe& a, const Fe& b) {
    u32 x[8], y[8];
    fe_to_words(a, x);
    fe_to_words(b, y);
    u32 diff = 0;
    for (int i = 0; i < 8; i++) diff |= x[i] ^ y[i];
    return diff == 0;
}

__device__ static bool fe_is_zero(const Fe& a) {
    return fe_eq(a, fe_zero());
}

// "Negative" in the sense of RFC 8032: the canonical value is odd.
__device__ static bool fe_is_negative(const Fe& a) {
    u32 w[8];
    fe_to_words(a, w);
    return (w[0] & 1) == 1;
}

// z^((p-5)/8) = z^(2^252 - 3), by the addition chain of curve25519-dalek's pow_p58.
__device__ static Fe fe_pow_p58(const Fe& z) {
    Fe t0 = fe_sq(z);                  // 2
    Fe t1 = fe_sqn(t0, 2);             // 8
    Fe t2 = fe_mul(z, t1);             // 9
    Fe t3 = fe_mul(t0, t2);            // 11
    Fe t4 = fe_sq(t3);                 // 22
    Fe t5 = fe_mul(t2, t4);            // 2^5 - 1
    Fe t6 = fe_sqn(t5, 5);
    Fe t7 = fe_mul(t6, t5);            // 2^10 - 1
    Fe t8 = fe_sqn(t7, 10);
    Fe t9 = fe_mul(t8, t7);            // 2^20 - 1
    Fe t10 = fe_sqn(t9, 20);
    Fe t11 = fe_mul(t10, t9);          // 2^40 - 1
    Fe t12 = fe_sqn(t11, 10);
    Fe t13 = fe_mul(t12, t7);          // 2^50 - 1
    Fe t14 = fe_sqn(t13, 50);
    Fe t15 = fe_mul(t14, t13);         // 2^100 - 1
    Fe t16 = fe_sqn(t15, 100);
    Fe t17 = fe_mul(t16, t15);         // 2^200 - 1
    Fe t18 = fe_sqn(t17, 50);
    Fe t19 = fe_mul(t18, t13);         // 2^250 - 1
    Fe t20 = fe_sqn(t19, 2);           // 2^252 - 4
    return fe_mul(z, t20);             // 2^252 - 3
}

// Constants as little-endian words: d, 2d, sqrt(-1) and the base point.
__constant__ u32 ED_D[8] = {0x135978a3u, 0x75eb4dcau, 0x4141d8abu, 0x00700a4du, 0x7779e898u, 0x8cc74079u, 0x2b6ffe73u, 0x52036ceeu};
__constant__ u32 ED_D2[8] = {0x26b2f159u, 0xebd69b94u, 0x8283b156u, 0x00e0149au, 0xeef3d130u, 0x198e80f2u, 0x56dffce7u, 0x2406d9dcu};
__constant__ u32 ED_SQRT_M1[8] = {0x4a0ea0b0u, 0xc4ee1b27u, 0xad2fe478u, 0x2f431806u, 0x3dfbd7a7u, 0x2b4d0099u, 0x4fc1df0bu, 0x2b832480u};
__constant__ u32 ED_BASE_X[8] = {0x8f25d51au, 0xc9562d60u, 0x9525a7b2u, 0x692cc760u, 0xfdd6dc5cu, 0xc0a4e231u, 0xcd6e53feu, 0x216936d3u};
__constant__ u32 ED_BASE_Y[8] = {0x66666658u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u, 0x66666666u};

__device__ static Fe fe_const(const u32 w[8]) {
    u32 c[8];
    for (int i = 0; i < 8; i++) c[i] = w[i];
    return fe_from_words(c);
}

// ---------------------------------------------------------------------------------------
// Points on -x^2 + y^2 = 1 + d x^2 y^2 in extended coordinates (X : Y : Z : T); complete
// formulas (Hisil–Wong–Carter–Dawson, a = -1), small-order points included.

__device__ static Pt pt_identity() {
    Pt p;
    p.x = fe_zero();
    p.y = fe_one();
    p.z = fe_one();
    p.t = fe_zero();
    return p;
}

__device__ static Pt pt_neg(const Pt& p) {
    Pt r = p;
    r.x = fe_neg(p.x);
    r.t = fe_neg(p.t);
    return r;
}

__device__ static Cached pt_cached(const Pt& p) {
    Cached c;
    c.ypx = fe_add(p.y, p.x);
    c.ymx = fe_sub(p.y, p.x);
    c.z = p.z;
    c.t2d = fe_mul(p.t, fe_const(ED_D2));
    return c;
}

__device__ static Cached cached_neg(const Cached& c) {
    Cached r;
    r.ypx = c.ymx;
    r.ymx = c.ypx;
    r.z = c.z;
    r.t2d = fe_neg(c.t2d);
    return r;
}

// p + q: 8 multiplications.
__device__ static Pt pt_add(const Pt& p, const Cached& q) {
    Fe a = fe_mul(fe_sub(p.y, p.x), q.ymx);
    Fe b = fe_mul(fe_add(p.y, p.x), q.ypx);
    Fe c = fe_mul(p.t, q.t2d);
    Fe zz = fe_mul(p.z, q.z);
    Fe d = fe_add(zz, zz);
    Fe e = fe_sub(b, a);
    Fe f = fe_sub(d, c);
    Fe g = fe_add(d, c);
    Fe h = fe_add(b, a);
    Pt r;
    r.x = fe_mul(e, f);
    r.y = fe_mul(g, h);
    r.z = fe_mul(f, g);
    r.t = fe_mul(e, h);
    return r;
}

// 2p: 4 squarings and 4 multiplications.
__device__ static Pt pt_dbl(const Pt& p) {
    Fe a = fe_sq(p.x);
    Fe b = fe_sq(p.y);
    Fe zz = fe_sq(p.z);
    Fe c = fe_add(zz, zz);
    Fe e = fe_sub(fe_sub(fe_sq(fe_add(p.x, p.y)), a), b);
    Fe g = fe_sub(b, a);
    Fe f = fe_sub(g, c);
    Fe h = fe_neg(fe_add(a, b));
    Pt r;
    r.x = fe_mul(e, f);
    r.y = fe_mul(g, h);
    r.z = fe_mul(f, g);
    r.t = fe_mul(e, h);
    return r;
}

// Decompression exactly as curve25519-dalek's CompressedEdwardsY::decompress; false when
// the encoding is not a point.
__device__ static bool pt_decompress(const u32 enc[8], Pt* out) {
    u32 yw[8];
    for (int i = 0; i < 8; i++) yw[i] = enc[i];
    yw[7] &= 0x7fffffffu;
    u32 sign = enc[7] >> 31;
    Fe y = fe_from_words(yw);
    Fe one = fe_one();
    Fe yy = fe_sq(y);
    Fe u = fe_sub(yy, one);                                // y^2 - 1
    Fe v = fe_add(fe_mul(yy, fe_const(ED_D)), one);        // d y^2 + 1, never 0
    // r = u v^3 (u v^7)^((p-5)/8) is a square root of u/v, or of -u/v, when either exists.
    Fe v3 = fe_mul(fe_sq(v), v);
    Fe v7 = fe_mul(fe_sq(v3), v);
    Fe r = fe_mul(fe_mul(u, v3), fe_pow_p58(fe_mul(u, v7)));
    Fe check = fe_mul(v, fe_sq(r));
    bool correct = fe_eq(check, u);
    bool flipped = fe_eq(check, fe_neg(u));
    if (flipped) r = fe_mul(r, fe_const(ED_SQRT_M1));
    if (fe_is_negative(r)) r = fe_neg(r);
    if (sign == 1) r = fe_neg(r);
    out->x = r;
    out->y = y;
    out->z = one;
    out->t = fe_mul(r, y);
    return correct || flipped;
}

// ---------------------------------------------------------------------------------------
// Scalars mod L = 2^252 + 27742317777372353535851937790883648493

__device__ static bool scalar_is_canonical(const u32 s[8]) {
    const u32 l[8] = {0x5cf5d3edu, 0x5812631au, 0xa2f79cd6u, 0x14def9deu, 0u, 0u, 0u, 0x10000000u};
    for (int i = 7; i >= 0; i--) {
        if (s[i] < l[i]) return true;
        if (s[i] > l[i]) return false;
    }
    return false;
}

// Signed radix-16 digits in [-8, 8) (the last one up to 8); needs s < 2^255.
__device__ static void scalar_radix16(const u32 s[8], i32 e[64]) {
    for (int i = 0; i < 64; i++) e[i] = (i32)((s[i >> 3] >> ((i & 7) * 4)) & 15u);
    for (int i = 0; i < 63; i++) {
        i32 carry = (e[i] + 8) >> 4;
        e[i] -= carry << 4;
        e[i + 1] += carry;
    }
}

// ---------------------------------------------------------------------------------------
// Verification

__device__ static bool verify_item(const u32* item) {
    u32 a_enc[8], r_enc[8], s[8], k[8];
    for (int i = 0; i < 8; i++) {
        a_enc[i] = item[i];
        r_enc[i] = item[8 + i];
        s[i] = item[16 + i];
        k[i] = item[24 + i];
    }
    if (!scalar_is_canonical(s)) return false;
    Pt a, r;
    if (!pt_decompress(a_enc, &a)) return false;
    if (!pt_decompress(r_enc, &r)) return false;

    // Tables of 1..8 times -A (entries 0..7) and B (entries 8..15), in cached form.
    Cached table[16];
    for (int which = 0; which < 2; which++) {
        Pt p;
        if (which == 0) {
            p = pt_neg(a);
        } else {
            p.x = fe_const(ED_BASE_X);
            p.y = fe_const(ED_BASE_Y);
            p.z = fe_one();
            p.t = fe_mul(p.x, p.y);
        }
        Cached first = pt_cached(p);
        table[8 * which] = first;
        Pt acc = p;
        for (int i = 1; i < 8; i++) {
            acc = pt_add(acc, first);
            table[8 * which + i] = pt_cached(acc);
        }
    }

    // R' = [k](-A) + [S]B by Straus' method over signed 4-bit windows.
    i32 ek[64], es[64];
    scalar_radix16(k, ek);
    scalar_radix16(s, es);
    Pt q = pt_identity();
    for (int i = 63; i >= 0; i--) {
        if (i != 63) {
            for (int j = 0; j < 4; j++) q = pt_dbl(q);
        }
        for (int which = 0; which < 2; which++) {
            i32 digit = which == 0 ? ek[i] : es[i];
            if (digit != 0) {
                Cached c = table[8 * which + (digit < 0 ? -digit : digit) - 1];
                if (digit < 0) c = cached_neg(c);
                q = pt_add(q, c);
            }
        }
    }

    // [8](R - R') must be the identity: X = 0 and Y = Z.
    Pt diff = pt_add(r, pt_cached(pt_neg(q)));
    for (int j = 0; j < 3; j++) diff = pt_dbl(diff);
    return fe_is_zero(diff.x) && fe_eq(diff.y, diff.z);
}

extern "C" __global__ void ed25519_verify(const u32* __restrict__ items, u32* __restrict__ verdicts, u32 count) {
    u32 idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= count) return;
    verdicts[idx] = verify_item(items + (u64)idx * 32) ? 1u : 0u;
}

// Field self-test for the host tests: per pair (a, b) of 256-bit inputs (16 words) it
// writes a*b, a^2, a+b, a-b, a^((p-5)/8) and a, each canonical, then the x of the
// decompression of a read as an encoding, then 1 when a decodes: 57 words.
extern "C" __global__ void field_ops(const u32* __restrict__ pairs, u32* __restrict__ out, u32 count) {
    u32 idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= count) return;
    u32 raw_a[8], raw_b[8];
    for (int i = 0; i < 8; i++) {
        raw_a[i] = pairs[(u64)idx * 16 + i];
        raw_b[i] = pairs[(u64)idx * 16 + 8 + i];
    }
    Fe a = fe_from_words(raw_a);
    Fe b = fe_from_words(raw_b);
    Pt dec;
    bool ok = pt_decompress(raw_a, &dec);
    u32* o = out + (u64)idx * 57;
    fe_to_words(fe_mul(a, b), o);
    fe_to_words(fe_sq(a), o + 8);
    fe_to_words(fe_add(a, b), o + 16);
    fe_to_words(fe_sub(a, b), o + 24);
    fe_to_words(fe_pow_p58(a), o + 32);
    fe_to_words(a, o + 40);
    fe_to_words(dec.x, o + 48);
    o[56] = ok ? 1u : 0u;
}
