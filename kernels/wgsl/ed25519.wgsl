// Ed25519 batch verification under ZIP-215, one signature per invocation.
//
// Input: 32 words per item, little-endian: the public key A (words 0..8), R (8..16), S
// (16..24) and the challenge k = SHA-512(R || A || M) mod L (24..32), which the host
// computes. Output: one word per item, 1 when
//
//     S < L,  A and R decode,  [8]([S]B - [k]A - R) = 0          (ZIP-215)
//
// Decoding follows curve25519-dalek exactly: the top bit of an encoding is the sign of x,
// y is taken mod p (non-canonical y accepted), x = sqrt((y^2 - 1) / (d y^2 + 1)) must
// exist, the non-negative root is negated when the sign bit is set (so x = 0 with the sign
// bit set decodes to x = 0).
//
// Field elements mod p = 2^255 - 19 are 20 limbs of 13 bits (260 bits of room). WGSL has
// no 64-bit integers; 13-bit limbs keep every product below 2^26 and a full column of 20
// products below 2^32, so schoolbook multiplication needs no carry handling inside a
// column. "Tight" elements — what every function returns — have limbs below 2^13, except
// limb 0 which may reach 2^13 + 608; they are not necessarily below p.
//
// The verification runs as a sequence of passes over the batch, each its own entry point,
// with the per-item state in storage buffers between passes:
//
//   ed_decode      S < L, decode A and R, signed radix-16 digits of S and k, -A
//   ed_table       1..8 times -A, in cached form
//   ed_windows     8 of the 64 windows of R' = [k](-A) + [S]B per dispatch (8 dispatches)
//   ed_finish      [8](R - R') = 0
//
// plus ed_base_table, run once, which fills the table of B. Every field multiplication is
// inlined where it is called and unrolled by the driver's compiler; splitting the work
// keeps each pipeline to a few point operations, which software drivers (lavapipe)
// compile in seconds instead of many minutes, and costs a real GPU only the state traffic
// between passes (at most 3.3 KiB per signature per pass, against ~3700 field multiplications
// in total).

alias Fe = array<u32, 20>;

struct Pt {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

// (Y + X, Y - X, Z, 2dT): the form of a point that is added to another.
struct Cached {
    ypx: Fe,
    ymx: Fe,
    z: Fe,
    t2d: Fe,
}

struct Params {
    count: u32,
    // Invocations per row of the dispatch grid (workgroups in x times the workgroup size).
    row: u32,
    // ed_windows: the first window of this pass (0 is the most significant).
    first: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> items: array<u32>;
// The verdicts; between passes 1 means "still valid".
@group(0) @binding(1) var<storage, read_write> verdicts: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
// Per item, STATE_WORDS: the accumulator Q (a point), R (a point), the packed digits.
@group(0) @binding(3) var<storage, read_write> state: array<u32>;
// Per item, TABLE_WORDS: 1..8 times -A in cached form.
@group(0) @binding(4) var<storage, read_write> tables: array<u32>;
// 1..8 times B in cached form, filled once by ed_base_table.
@group(0) @binding(5) var<storage, read_write> base_table: array<u32>;

const STATE_WORDS: u32 = 192u;
const STATE_Q: u32 = 0u;
const STATE_R: u32 = 80u;
const STATE_DIGITS: u32 = 160u;
const TABLE_WORDS: u32 = 640u;
const WINDOWS_PER_PASS: u32 = 8u;

const MASK: u32 = 0x1fffu;
// 2^260 = 2^5 * 2^255 = 32 * 19 (mod p).
const FOLD: u32 = 608u;

const FE_ZERO: Fe = Fe(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
const FE_ONE: Fe = Fe(1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
// d = -121665/121666.
const FE_D: Fe = Fe(6307u, 6859u, 4740u, 5787u, 5982u, 3157u, 1287u, 2472u, 4106u, 3u,
                    6694u, 3827u, 1943u, 928u, 3635u, 8142u, 2927u, 1905u, 219u, 164u);
const FE_D2: Fe = Fe(4441u, 5527u, 1289u, 3383u, 3773u, 6315u, 2574u, 4944u, 20u, 7u,
                     5196u, 7655u, 3886u, 1856u, 7270u, 8092u, 5855u, 3810u, 438u, 72u);
// sqrt(-1) = 2^((p-1)/4), the root curve25519-dalek uses.
const FE_SQRT_M1: Fe = Fe(176u, 4213u, 2514u, 7222u, 3150u, 4668u, 5311u, 213u, 792u, 6522u,
                          5609u, 7159u, 2451u, 1664u, 3245u, 7137u, 4033u, 1026u, 201u, 87u);
// The base point B.
const BASE_X: Fe = Fe(5402u, 6446u, 6179u, 3162u, 3221u, 5081u, 5270u, 3090u, 3271u, 841u,
                      5911u, 7085u, 799u, 4721u, 6914u, 2687u, 3438u, 5790u, 6733u, 66u);
const BASE_Y: Fe = Fe(1624u, 4915u, 6553u, 3276u, 1638u, 4915u, 6553u, 3276u, 1638u, 4915u,
                      6553u, 3276u, 1638u, 4915u, 6553u, 3276u, 1638u, 4915u, 6553u, 204u);
const BASE_T: Fe = Fe(7587u, 3518u, 3305u, 7445u, 5853u, 2426u, 7493u, 4110u, 4255u, 2311u,
                      6367u, 2391u, 2278u, 5415u, 5531u, 3788u, 6027u, 6270u, 471u, 207u);

// ---------------------------------------------------------------------------------------
// Field arithmetic mod p = 2^255 - 19

// BEGIN GENERATED: field arithmetic (kernels/tests/generated.rs)
// Carries limbs of up to 2^31 into a tight element; the carry out of limb 19 is
// folded back into limb 0 (times 2^260 mod p). Two passes: after the first the value
// is below 2^260 plus a small limb 0, so the second pass carries out at most 1.
fn fe_carry(a: Fe) -> Fe {
    var r0 = a[0];
    var r1 = a[1];
    var r2 = a[2];
    var r3 = a[3];
    var r4 = a[4];
    var r5 = a[5];
    var r6 = a[6];
    var r7 = a[7];
    var r8 = a[8];
    var r9 = a[9];
    var r10 = a[10];
    var r11 = a[11];
    var r12 = a[12];
    var r13 = a[13];
    var r14 = a[14];
    var r15 = a[15];
    var r16 = a[16];
    var r17 = a[17];
    var r18 = a[18];
    var r19 = a[19];
    var c = 0u;
    let u0_0 = r0 + c; r0 = u0_0 & MASK; c = u0_0 >> 13u;
    let u0_1 = r1 + c; r1 = u0_1 & MASK; c = u0_1 >> 13u;
    let u0_2 = r2 + c; r2 = u0_2 & MASK; c = u0_2 >> 13u;
    let u0_3 = r3 + c; r3 = u0_3 & MASK; c = u0_3 >> 13u;
    let u0_4 = r4 + c; r4 = u0_4 & MASK; c = u0_4 >> 13u;
    let u0_5 = r5 + c; r5 = u0_5 & MASK; c = u0_5 >> 13u;
    let u0_6 = r6 + c; r6 = u0_6 & MASK; c = u0_6 >> 13u;
    let u0_7 = r7 + c; r7 = u0_7 & MASK; c = u0_7 >> 13u;
    let u0_8 = r8 + c; r8 = u0_8 & MASK; c = u0_8 >> 13u;
    let u0_9 = r9 + c; r9 = u0_9 & MASK; c = u0_9 >> 13u;
    let u0_10 = r10 + c; r10 = u0_10 & MASK; c = u0_10 >> 13u;
    let u0_11 = r11 + c; r11 = u0_11 & MASK; c = u0_11 >> 13u;
    let u0_12 = r12 + c; r12 = u0_12 & MASK; c = u0_12 >> 13u;
    let u0_13 = r13 + c; r13 = u0_13 & MASK; c = u0_13 >> 13u;
    let u0_14 = r14 + c; r14 = u0_14 & MASK; c = u0_14 >> 13u;
    let u0_15 = r15 + c; r15 = u0_15 & MASK; c = u0_15 >> 13u;
    let u0_16 = r16 + c; r16 = u0_16 & MASK; c = u0_16 >> 13u;
    let u0_17 = r17 + c; r17 = u0_17 & MASK; c = u0_17 >> 13u;
    let u0_18 = r18 + c; r18 = u0_18 & MASK; c = u0_18 >> 13u;
    let u0_19 = r19 + c; r19 = u0_19 & MASK; c = u0_19 >> 13u;
    r0 += c * FOLD;
    c = 0u;
    let u1_0 = r0 + c; r0 = u1_0 & MASK; c = u1_0 >> 13u;
    let u1_1 = r1 + c; r1 = u1_1 & MASK; c = u1_1 >> 13u;
    let u1_2 = r2 + c; r2 = u1_2 & MASK; c = u1_2 >> 13u;
    let u1_3 = r3 + c; r3 = u1_3 & MASK; c = u1_3 >> 13u;
    let u1_4 = r4 + c; r4 = u1_4 & MASK; c = u1_4 >> 13u;
    let u1_5 = r5 + c; r5 = u1_5 & MASK; c = u1_5 >> 13u;
    let u1_6 = r6 + c; r6 = u1_6 & MASK; c = u1_6 >> 13u;
    let u1_7 = r7 + c; r7 = u1_7 & MASK; c = u1_7 >> 13u;
    let u1_8 = r8 + c; r8 = u1_8 & MASK; c = u1_8 >> 13u;
    let u1_9 = r9 + c; r9 = u1_9 & MASK; c = u1_9 >> 13u;
    let u1_10 = r10 + c; r10 = u1_10 & MASK; c = u1_10 >> 13u;
    let u1_11 = r11 + c; r11 = u1_11 & MASK; c = u1_11 >> 13u;
    let u1_12 = r12 + c; r12 = u1_12 & MASK; c = u1_12 >> 13u;
    let u1_13 = r13 + c; r13 = u1_13 & MASK; c = u1_13 >> 13u;
    let u1_14 = r14 + c; r14 = u1_14 & MASK; c = u1_14 >> 13u;
    let u1_15 = r15 + c; r15 = u1_15 & MASK; c = u1_15 >> 13u;
    let u1_16 = r16 + c; r16 = u1_16 & MASK; c = u1_16 >> 13u;
    let u1_17 = r17 + c; r17 = u1_17 & MASK; c = u1_17 >> 13u;
    let u1_18 = r18 + c; r18 = u1_18 & MASK; c = u1_18 >> 13u;
    let u1_19 = r19 + c; r19 = u1_19 & MASK; c = u1_19 >> 13u;
    r0 += c * FOLD;
    return Fe(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19);
}

fn fe_add(a: Fe, b: Fe) -> Fe {
    return fe_carry(Fe(a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5], a[6] + b[6], a[7] + b[7], a[8] + b[8], a[9] + b[9], a[10] + b[10], a[11] + b[11], a[12] + b[12], a[13] + b[13], a[14] + b[14], a[15] + b[15], a[16] + b[16], a[17] + b[17], a[18] + b[18], a[19] + b[19]));
}

// a + 64p - b: every limb of 64p is at least the largest limb of a tight element.
fn fe_sub(a: Fe, b: Fe) -> Fe {
    return fe_carry(Fe(a[0] + 15168u - b[0], a[1] + 16382u - b[1], a[2] + 16382u - b[2], a[3] + 16382u - b[3], a[4] + 16382u - b[4], a[5] + 16382u - b[5], a[6] + 16382u - b[6], a[7] + 16382u - b[7], a[8] + 16382u - b[8], a[9] + 16382u - b[9], a[10] + 16382u - b[10], a[11] + 16382u - b[11], a[12] + 16382u - b[12], a[13] + 16382u - b[13], a[14] + 16382u - b[14], a[15] + 16382u - b[15], a[16] + 16382u - b[16], a[17] + 16382u - b[17], a[18] + 16382u - b[18], a[19] + 16382u - b[19]));
}

// Schoolbook: column sums below 20 * (2^13 + 608)^2 < 2^31, no carries inside.
fn fe_mul(a: Fe, b: Fe) -> Fe {
    let a0 = a[0]; let b0 = b[0];
    let a1 = a[1]; let b1 = b[1];
    let a2 = a[2]; let b2 = b[2];
    let a3 = a[3]; let b3 = b[3];
    let a4 = a[4]; let b4 = b[4];
    let a5 = a[5]; let b5 = b[5];
    let a6 = a[6]; let b6 = b[6];
    let a7 = a[7]; let b7 = b[7];
    let a8 = a[8]; let b8 = b[8];
    let a9 = a[9]; let b9 = b[9];
    let a10 = a[10]; let b10 = b[10];
    let a11 = a[11]; let b11 = b[11];
    let a12 = a[12]; let b12 = b[12];
    let a13 = a[13]; let b13 = b[13];
    let a14 = a[14]; let b14 = b[14];
    let a15 = a[15]; let b15 = b[15];
    let a16 = a[16]; let b16 = b[16];
    let a17 = a[17]; let b17 = b[17];
    let a18 = a[18]; let b18 = b[18];
    let a19 = a[19]; let b19 = b[19];
    let t0 = a0 * b0;
    let t1 = a0 * b1 + a1 * b0;
    let t2 = a0 * b2 + a1 * b1 + a2 * b0;
    let t3 = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
    let t4 = a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0;
    let t5 = a0 * b5 + a1 * b4 + a2 * b3 + a3 * b2 + a4 * b1 + a5 * b0;
    let t6 = a0 * b6 + a1 * b5 + a2 * b4 + a3 * b3 + a4 * b2 + a5 * b1 + a6 * b0;
    let t7 = a0 * b7 + a1 * b6 + a2 * b5 + a3 * b4 + a4 * b3 + a5 * b2 + a6 * b1 + a7 * b0;
    let t8 = a0 * b8 + a1 * b7 + a2 * b6 + a3 * b5 + a4 * b4 + a5 * b3 + a6 * b2 + a7 * b1 + a8 * b0;
    let t9 = a0 * b9 + a1 * b8 + a2 * b7 + a3 * b6 + a4 * b5 + a5 * b4 + a6 * b3 + a7 * b2 + a8 * b1 + a9 * b0;
    let t10 = a0 * b10 + a1 * b9 + a2 * b8 + a3 * b7 + a4 * b6 + a5 * b5 + a6 * b4 + a7 * b3 + a8 * b2 + a9 * b1 + a10 * b0;
    let t11 = a0 * b11 + a1 * b10 + a2 * b9 + a3 * b8 + a4 * b7 + a5 * b6 + a6 * b5 + a7 * b4 + a8 * b3 + a9 * b2 + a10 * b1 + a11 * b0;
    let t12 = a0 * b12 + a1 * b11 + a2 * b10 + a3 * b9 + a4 * b8 + a5 * b7 + a6 * b6 + a7 * b5 + a8 * b4 + a9 * b3 + a10 * b2 + a11 * b1 + a12 * b0;
    let t13 = a0 * b13 + a1 * b12 + a2 * b11 + a3 * b10 + a4 * b9 + a5 * b8 + a6 * b7 + a7 * b6 + a8 * b5 + a9 * b4 + a10 * b3 + a11 * b2 + a12 * b1 + a13 * b0;
    let t14 = a0 * b14 + a1 * b13 + a2 * b12 + a3 * b11 + a4 * b10 + a5 * b9 + a6 * b8 + a7 * b7 + a8 * b6 + a9 * b5 + a10 * b4 + a11 * b3 + a12 * b2 + a13 * b1 + a14 * b0;
    let t15 = a0 * b15 + a1 * b14 + a2 * b13 + a3 * b12 + a4 * b11 + a5 * b10 + a6 * b9 + a7 * b8 + a8 * b7 + a9 * b6 + a10 * b5 + a11 * b4 + a12 * b3 + a13 * b2 + a14 * b1 + a15 * b0;
    let t16 = a0 * b16 + a1 * b15 + a2 * b14 + a3 * b13 + a4 * b12 + a5 * b11 + a6 * b10 + a7 * b9 + a8 * b8 + a9 * b7 + a10 * b6 + a11 * b5 + a12 * b4 + a13 * b3 + a14 * b2 + a15 * b1 + a16 * b0;
    let t17 = a0 * b17 + a1 * b16 + a2 * b15 + a3 * b14 + a4 * b13 + a5 * b12 + a6 * b11 + a7 * b10 + a8 * b9 + a9 * b8 + a10 * b7 + a11 * b6 + a12 * b5 + a13 * b4 + a14 * b3 + a15 * b2 + a16 * b1 + a17 * b0;
    let t18 = a0 * b18 + a1 * b17 + a2 * b16 + a3 * b15 + a4 * b14 + a5 * b13 + a6 * b12 + a7 * b11 + a8 * b10 + a9 * b9 + a10 * b8 + a11 * b7 + a12 * b6 + a13 * b5 + a14 * b4 + a15 * b3 + a16 * b2 + a17 * b1 + a18 * b0;
    let t19 = a0 * b19 + a1 * b18 + a2 * b17 + a3 * b16 + a4 * b15 + a5 * b14 + a6 * b13 + a7 * b12 + a8 * b11 + a9 * b10 + a10 * b9 + a11 * b8 + a12 * b7 + a13 * b6 + a14 * b5 + a15 * b4 + a16 * b3 + a17 * b2 + a18 * b1 + a19 * b0;
    let t20 = a1 * b19 + a2 * b18 + a3 * b17 + a4 * b16 + a5 * b15 + a6 * b14 + a7 * b13 + a8 * b12 + a9 * b11 + a10 * b10 + a11 * b9 + a12 * b8 + a13 * b7 + a14 * b6 + a15 * b5 + a16 * b4 + a17 * b3 + a18 * b2 + a19 * b1;
    let t21 = a2 * b19 + a3 * b18 + a4 * b17 + a5 * b16 + a6 * b15 + a7 * b14 + a8 * b13 + a9 * b12 + a10 * b11 + a11 * b10 + a12 * b9 + a13 * b8 + a14 * b7 + a15 * b6 + a16 * b5 + a17 * b4 + a18 * b3 + a19 * b2;
    let t22 = a3 * b19 + a4 * b18 + a5 * b17 + a6 * b16 + a7 * b15 + a8 * b14 + a9 * b13 + a10 * b12 + a11 * b11 + a12 * b10 + a13 * b9 + a14 * b8 + a15 * b7 + a16 * b6 + a17 * b5 + a18 * b4 + a19 * b3;
    let t23 = a4 * b19 + a5 * b18 + a6 * b17 + a7 * b16 + a8 * b15 + a9 * b14 + a10 * b13 + a11 * b12 + a12 * b11 + a13 * b10 + a14 * b9 + a15 * b8 + a16 * b7 + a17 * b6 + a18 * b5 + a19 * b4;
    let t24 = a5 * b19 + a6 * b18 + a7 * b17 + a8 * b16 + a9 * b15 + a10 * b14 + a11 * b13 + a12 * b12 + a13 * b11 + a14 * b10 + a15 * b9 + a16 * b8 + a17 * b7 + a18 * b6 + a19 * b5;
    let t25 = a6 * b19 + a7 * b18 + a8 * b17 + a9 * b16 + a10 * b15 + a11 * b14 + a12 * b13 + a13 * b12 + a14 * b11 + a15 * b10 + a16 * b9 + a17 * b8 + a18 * b7 + a19 * b6;
    let t26 = a7 * b19 + a8 * b18 + a9 * b17 + a10 * b16 + a11 * b15 + a12 * b14 + a13 * b13 + a14 * b12 + a15 * b11 + a16 * b10 + a17 * b9 + a18 * b8 + a19 * b7;
    let t27 = a8 * b19 + a9 * b18 + a10 * b17 + a11 * b16 + a12 * b15 + a13 * b14 + a14 * b13 + a15 * b12 + a16 * b11 + a17 * b10 + a18 * b9 + a19 * b8;
    let t28 = a9 * b19 + a10 * b18 + a11 * b17 + a12 * b16 + a13 * b15 + a14 * b14 + a15 * b13 + a16 * b12 + a17 * b11 + a18 * b10 + a19 * b9;
    let t29 = a10 * b19 + a11 * b18 + a12 * b17 + a13 * b16 + a14 * b15 + a15 * b14 + a16 * b13 + a17 * b12 + a18 * b11 + a19 * b10;
    let t30 = a11 * b19 + a12 * b18 + a13 * b17 + a14 * b16 + a15 * b15 + a16 * b14 + a17 * b13 + a18 * b12 + a19 * b11;
    let t31 = a12 * b19 + a13 * b18 + a14 * b17 + a15 * b16 + a16 * b15 + a17 * b14 + a18 * b13 + a19 * b12;
    let t32 = a13 * b19 + a14 * b18 + a15 * b17 + a16 * b16 + a17 * b15 + a18 * b14 + a19 * b13;
    let t33 = a14 * b19 + a15 * b18 + a16 * b17 + a17 * b16 + a18 * b15 + a19 * b14;
    let t34 = a15 * b19 + a16 * b18 + a17 * b17 + a18 * b16 + a19 * b15;
    let t35 = a16 * b19 + a17 * b18 + a18 * b17 + a19 * b16;
    let t36 = a17 * b19 + a18 * b18 + a19 * b17;
    let t37 = a18 * b19 + a19 * b18;
    let t38 = a19 * b19;
    var c = 0u;
    let v0 = t0 + c; let l0 = v0 & MASK; c = v0 >> 13u;
    let v1 = t1 + c; let l1 = v1 & MASK; c = v1 >> 13u;
    let v2 = t2 + c; let l2 = v2 & MASK; c = v2 >> 13u;
    let v3 = t3 + c; let l3 = v3 & MASK; c = v3 >> 13u;
    let v4 = t4 + c; let l4 = v4 & MASK; c = v4 >> 13u;
    let v5 = t5 + c; let l5 = v5 & MASK; c = v5 >> 13u;
    let v6 = t6 + c; let l6 = v6 & MASK; c = v6 >> 13u;
    let v7 = t7 + c; let l7 = v7 & MASK; c = v7 >> 13u;
    let v8 = t8 + c; let l8 = v8 & MASK; c = v8 >> 13u;
    let v9 = t9 + c; let l9 = v9 & MASK; c = v9 >> 13u;
    let v10 = t10 + c; let l10 = v10 & MASK; c = v10 >> 13u;
    let v11 = t11 + c; let l11 = v11 & MASK; c = v11 >> 13u;
    let v12 = t12 + c; let l12 = v12 & MASK; c = v12 >> 13u;
    let v13 = t13 + c; let l13 = v13 & MASK; c = v13 >> 13u;
    let v14 = t14 + c; let l14 = v14 & MASK; c = v14 >> 13u;
    let v15 = t15 + c; let l15 = v15 & MASK; c = v15 >> 13u;
    let v16 = t16 + c; let l16 = v16 & MASK; c = v16 >> 13u;
    let v17 = t17 + c; let l17 = v17 & MASK; c = v17 >> 13u;
    let v18 = t18 + c; let l18 = v18 & MASK; c = v18 >> 13u;
    let v19 = t19 + c; let l19 = v19 & MASK; c = v19 >> 13u;
    let v20 = t20 + c; let l20 = v20 & MASK; c = v20 >> 13u;
    let v21 = t21 + c; let l21 = v21 & MASK; c = v21 >> 13u;
    let v22 = t22 + c; let l22 = v22 & MASK; c = v22 >> 13u;
    let v23 = t23 + c; let l23 = v23 & MASK; c = v23 >> 13u;
    let v24 = t24 + c; let l24 = v24 & MASK; c = v24 >> 13u;
    let v25 = t25 + c; let l25 = v25 & MASK; c = v25 >> 13u;
    let v26 = t26 + c; let l26 = v26 & MASK; c = v26 >> 13u;
    let v27 = t27 + c; let l27 = v27 & MASK; c = v27 >> 13u;
    let v28 = t28 + c; let l28 = v28 & MASK; c = v28 >> 13u;
    let v29 = t29 + c; let l29 = v29 & MASK; c = v29 >> 13u;
    let v30 = t30 + c; let l30 = v30 & MASK; c = v30 >> 13u;
    let v31 = t31 + c; let l31 = v31 & MASK; c = v31 >> 13u;
    let v32 = t32 + c; let l32 = v32 & MASK; c = v32 >> 13u;
    let v33 = t33 + c; let l33 = v33 & MASK; c = v33 >> 13u;
    let v34 = t34 + c; let l34 = v34 & MASK; c = v34 >> 13u;
    let v35 = t35 + c; let l35 = v35 & MASK; c = v35 >> 13u;
    let v36 = t36 + c; let l36 = v36 & MASK; c = v36 >> 13u;
    let v37 = t37 + c; let l37 = v37 & MASK; c = v37 >> 13u;
    let v38 = t38 + c; let l38 = v38 & MASK; c = v38 >> 13u;
    let l39 = c;
    return fe_carry(Fe(l0 + l20 * FOLD, l1 + l21 * FOLD, l2 + l22 * FOLD, l3 + l23 * FOLD, l4 + l24 * FOLD, l5 + l25 * FOLD, l6 + l26 * FOLD, l7 + l27 * FOLD, l8 + l28 * FOLD, l9 + l29 * FOLD, l10 + l30 * FOLD, l11 + l31 * FOLD, l12 + l32 * FOLD, l13 + l33 * FOLD, l14 + l34 * FOLD, l15 + l35 * FOLD, l16 + l36 * FOLD, l17 + l37 * FOLD, l18 + l38 * FOLD, l19 + l39 * FOLD));
}

// Squaring: the 190 cross products once, doubled.
fn fe_sq(a: Fe) -> Fe {
    let a0 = a[0]; let d0 = a0 * 2u;
    let a1 = a[1]; let d1 = a1 * 2u;
    let a2 = a[2]; let d2 = a2 * 2u;
    let a3 = a[3]; let d3 = a3 * 2u;
    let a4 = a[4]; let d4 = a4 * 2u;
    let a5 = a[5]; let d5 = a5 * 2u;
    let a6 = a[6]; let d6 = a6 * 2u;
    let a7 = a[7]; let d7 = a7 * 2u;
    let a8 = a[8]; let d8 = a8 * 2u;
    let a9 = a[9]; let d9 = a9 * 2u;
    let a10 = a[10]; let d10 = a10 * 2u;
    let a11 = a[11]; let d11 = a11 * 2u;
    let a12 = a[12]; let d12 = a12 * 2u;
    let a13 = a[13]; let d13 = a13 * 2u;
    let a14 = a[14]; let d14 = a14 * 2u;
    let a15 = a[15]; let d15 = a15 * 2u;
    let a16 = a[16]; let d16 = a16 * 2u;
    let a17 = a[17]; let d17 = a17 * 2u;
    let a18 = a[18]; let d18 = a18 * 2u;
    let a19 = a[19]; let d19 = a19 * 2u;
    let t0 = a0 * a0;
    let t1 = d0 * a1;
    let t2 = d0 * a2 + a1 * a1;
    let t3 = d0 * a3 + d1 * a2;
    let t4 = d0 * a4 + d1 * a3 + a2 * a2;
    let t5 = d0 * a5 + d1 * a4 + d2 * a3;
    let t6 = d0 * a6 + d1 * a5 + d2 * a4 + a3 * a3;
    let t7 = d0 * a7 + d1 * a6 + d2 * a5 + d3 * a4;
    let t8 = d0 * a8 + d1 * a7 + d2 * a6 + d3 * a5 + a4 * a4;
    let t9 = d0 * a9 + d1 * a8 + d2 * a7 + d3 * a6 + d4 * a5;
    let t10 = d0 * a10 + d1 * a9 + d2 * a8 + d3 * a7 + d4 * a6 + a5 * a5;
    let t11 = d0 * a11 + d1 * a10 + d2 * a9 + d3 * a8 + d4 * a7 + d5 * a6;
    let t12 = d0 * a12 + d1 * a11 + d2 * a10 + d3 * a9 + d4 * a8 + d5 * a7 + a6 * a6;
    let t13 = d0 * a13 + d1 * a12 + d2 * a11 + d3 * a10 + d4 * a9 + d5 * a8 + d6 * a7;
    let t14 = d0 * a14 + d1 * a13 + d2 * a12 + d3 * a11 + d4 * a10 + d5 * a9 + d6 * a8 + a7 * a7;
    let t15 = d0 * a15 + d1 * a14 + d2 * a13 + d3 * a12 + d4 * a11 + d5 * a10 + d6 * a9 + d7 * a8;
    let t16 = d0 * a16 + d1 * a15 + d2 * a14 + d3 * a13 + d4 * a12 + d5 * a11 + d6 * a10 + d7 * a9 + a8 * a8;
    let t17 = d0 * a17 + d1 * a16 + d2 * a15 + d3 * a14 + d4 * a13 + d5 * a12 + d6 * a11 + d7 * a10 + d8 * a9;
    let t18 = d0 * a18 + d1 * a17 + d2 * a16 + d3 * a15 + d4 * a14 + d5 * a13 + d6 * a12 + d7 * a11 + d8 * a10 + a9 * a9;
    let t19 = d0 * a19 + d1 * a18 + d2 * a17 + d3 * a16 + d4 * a15 + d5 * a14 + d6 * a13 + d7 * a12 + d8 * a11 + d9 * a10;
    let t20 = d1 * a19 + d2 * a18 + d3 * a17 + d4 * a16 + d5 * a15 + d6 * a14 + d7 * a13 + d8 * a12 + d9 * a11 + a10 * a10;
    let t21 = d2 * a19 + d3 * a18 + d4 * a17 + d5 * a16 + d6 * a15 + d7 * a14 + d8 * a13 + d9 * a12 + d10 * a11;
    let t22 = d3 * a19 + d4 * a18 + d5 * a17 + d6 * a16 + d7 * a15 + d8 * a14 + d9 * a13 + d10 * a12 + a11 * a11;
    let t23 = d4 * a19 + d5 * a18 + d6 * a17 + d7 * a16 + d8 * a15 + d9 * a14 + d10 * a13 + d11 * a12;
    let t24 = d5 * a19 + d6 * a18 + d7 * a17 + d8 * a16 + d9 * a15 + d10 * a14 + d11 * a13 + a12 * a12;
    let t25 = d6 * a19 + d7 * a18 + d8 * a17 + d9 * a16 + d10 * a15 + d11 * a14 + d12 * a13;
    let t26 = d7 * a19 + d8 * a18 + d9 * a17 + d10 * a16 + d11 * a15 + d12 * a14 + a13 * a13;
    let t27 = d8 * a19 + d9 * a18 + d10 * a17 + d11 * a16 + d12 * a15 + d13 * a14;
    let t28 = d9 * a19 + d10 * a18 + d11 * a17 + d12 * a16 + d13 * a15 + a14 * a14;
    let t29 = d10 * a19 + d11 * a18 + d12 * a17 + d13 * a16 + d14 * a15;
    let t30 = d11 * a19 + d12 * a18 + d13 * a17 + d14 * a16 + a15 * a15;
    let t31 = d12 * a19 + d13 * a18 + d14 * a17 + d15 * a16;
    let t32 = d13 * a19 + d14 * a18 + d15 * a17 + a16 * a16;
    let t33 = d14 * a19 + d15 * a18 + d16 * a17;
    let t34 = d15 * a19 + d16 * a18 + a17 * a17;
    let t35 = d16 * a19 + d17 * a18;
    let t36 = d17 * a19 + a18 * a18;
    let t37 = d18 * a19;
    let t38 = a19 * a19;
    var c = 0u;
    let v0 = t0 + c; let l0 = v0 & MASK; c = v0 >> 13u;
    let v1 = t1 + c; let l1 = v1 & MASK; c = v1 >> 13u;
    let v2 = t2 + c; let l2 = v2 & MASK; c = v2 >> 13u;
    let v3 = t3 + c; let l3 = v3 & MASK; c = v3 >> 13u;
    let v4 = t4 + c; let l4 = v4 & MASK; c = v4 >> 13u;
    let v5 = t5 + c; let l5 = v5 & MASK; c = v5 >> 13u;
    let v6 = t6 + c; let l6 = v6 & MASK; c = v6 >> 13u;
    let v7 = t7 + c; let l7 = v7 & MASK; c = v7 >> 13u;
    let v8 = t8 + c; let l8 = v8 & MASK; c = v8 >> 13u;
    let v9 = t9 + c; let l9 = v9 & MASK; c = v9 >> 13u;
    let v10 = t10 + c; let l10 = v10 & MASK; c = v10 >> 13u;
    let v11 = t11 + c; let l11 = v11 & MASK; c = v11 >> 13u;
    let v12 = t12 + c; let l12 = v12 & MASK; c = v12 >> 13u;
    let v13 = t13 + c; let l13 = v13 & MASK; c = v13 >> 13u;
    let v14 = t14 + c; let l14 = v14 & MASK; c = v14 >> 13u;
    let v15 = t15 + c; let l15 = v15 & MASK; c = v15 >> 13u;
    let v16 = t16 + c; let l16 = v16 & MASK; c = v16 >> 13u;
    let v17 = t17 + c; let l17 = v17 & MASK; c = v17 >> 13u;
    let v18 = t18 + c; let l18 = v18 & MASK; c = v18 >> 13u;
    let v19 = t19 + c; let l19 = v19 & MASK; c = v19 >> 13u;
    let v20 = t20 + c; let l20 = v20 & MASK; c = v20 >> 13u;
    let v21 = t21 + c; let l21 = v21 & MASK; c = v21 >> 13u;
    let v22 = t22 + c; let l22 = v22 & MASK; c = v22 >> 13u;
    let v23 = t23 + c; let l23 = v23 & MASK; c = v23 >> 13u;
    let v24 = t24 + c; let l24 = v24 & MASK; c = v24 >> 13u;
    let v25 = t25 + c; let l25 = v25 & MASK; c = v25 >> 13u;
    let v26 = t26 + c; let l26 = v26 & MASK; c = v26 >> 13u;
    let v27 = t27 + c; let l27 = v27 & MASK; c = v27 >> 13u;
    let v28 = t28 + c; let l28 = v28 & MASK; c = v28 >> 13u;
    let v29 = t29 + c; let l29 = v29 & MASK; c = v29 >> 13u;
    let v30 = t30 + c; let l30 = v30 & MASK; c = v30 >> 13u;
    let v31 = t31 + c; let l31 = v31 & MASK; c = v31 >> 13u;
    let v32 = t32 + c; let l32 = v32 & MASK; c = v32 >> 13u;
    let v33 = t33 + c; let l33 = v33 & MASK; c = v33 >> 13u;
    let v34 = t34 + c; let l34 = v34 & MASK; c = v34 >> 13u;
    let v35 = t35 + c; let l35 = v35 & MASK; c = v35 >> 13u;
    let v36 = t36 + c; let l36 = v36 & MASK; c = v36 >> 13u;
    let v37 = t37 + c; let l37 = v37 & MASK; c = v37 >> 13u;
    let v38 = t38 + c; let l38 = v38 & MASK; c = v38 >> 13u;
    let l39 = c;
    return fe_carry(Fe(l0 + l20 * FOLD, l1 + l21 * FOLD, l2 + l22 * FOLD, l3 + l23 * FOLD, l4 + l24 * FOLD, l5 + l25 * FOLD, l6 + l26 * FOLD, l7 + l27 * FOLD, l8 + l28 * FOLD, l9 + l29 * FOLD, l10 + l30 * FOLD, l11 + l31 * FOLD, l12 + l32 * FOLD, l13 + l33 * FOLD, l14 + l34 * FOLD, l15 + l35 * FOLD, l16 + l36 * FOLD, l17 + l37 * FOLD, l18 + l38 * FOLD, l19 + l39 * FOLD));
}

// The unique representative in [0, p), limbs below 2^13 (limb 19 below 2^8): fold
// bits 255 and up twice (the second fold catches the carry of the first), then
// subtract p when the value plus 19 reaches 2^255.
fn fe_canonical(a: Fe) -> Fe {
    let t = fe_carry(a);
    var r0 = t[0];
    var r1 = t[1];
    var r2 = t[2];
    var r3 = t[3];
    var r4 = t[4];
    var r5 = t[5];
    var r6 = t[6];
    var r7 = t[7];
    var r8 = t[8];
    var r9 = t[9];
    var r10 = t[10];
    var r11 = t[11];
    var r12 = t[12];
    var r13 = t[13];
    var r14 = t[14];
    var r15 = t[15];
    var r16 = t[16];
    var r17 = t[17];
    var r18 = t[18];
    var r19 = t[19];
    var c = 0u;
    r0 += (r19 >> 8u) * 19u; r19 &= 0xffu;
    r0 += c; c = r0 >> 13u; r0 &= MASK;
    r1 += c; c = r1 >> 13u; r1 &= MASK;
    r2 += c; c = r2 >> 13u; r2 &= MASK;
    r3 += c; c = r3 >> 13u; r3 &= MASK;
    r4 += c; c = r4 >> 13u; r4 &= MASK;
    r5 += c; c = r5 >> 13u; r5 &= MASK;
    r6 += c; c = r6 >> 13u; r6 &= MASK;
    r7 += c; c = r7 >> 13u; r7 &= MASK;
    r8 += c; c = r8 >> 13u; r8 &= MASK;
    r9 += c; c = r9 >> 13u; r9 &= MASK;
    r10 += c; c = r10 >> 13u; r10 &= MASK;
    r11 += c; c = r11 >> 13u; r11 &= MASK;
    r12 += c; c = r12 >> 13u; r12 &= MASK;
    r13 += c; c = r13 >> 13u; r13 &= MASK;
    r14 += c; c = r14 >> 13u; r14 &= MASK;
    r15 += c; c = r15 >> 13u; r15 &= MASK;
    r16 += c; c = r16 >> 13u; r16 &= MASK;
    r17 += c; c = r17 >> 13u; r17 &= MASK;
    r18 += c; c = r18 >> 13u; r18 &= MASK;
    r19 += c; c = r19 >> 13u; r19 &= MASK;
    r0 += (r19 >> 8u) * 19u; r19 &= 0xffu;
    r0 += c; c = r0 >> 13u; r0 &= MASK;
    r1 += c; c = r1 >> 13u; r1 &= MASK;
    r2 += c; c = r2 >> 13u; r2 &= MASK;
    r3 += c; c = r3 >> 13u; r3 &= MASK;
    r4 += c; c = r4 >> 13u; r4 &= MASK;
    r5 += c; c = r5 >> 13u; r5 &= MASK;
    r6 += c; c = r6 >> 13u; r6 &= MASK;
    r7 += c; c = r7 >> 13u; r7 &= MASK;
    r8 += c; c = r8 >> 13u; r8 &= MASK;
    r9 += c; c = r9 >> 13u; r9 &= MASK;
    r10 += c; c = r10 >> 13u; r10 &= MASK;
    r11 += c; c = r11 >> 13u; r11 &= MASK;
    r12 += c; c = r12 >> 13u; r12 &= MASK;
    r13 += c; c = r13 >> 13u; r13 &= MASK;
    r14 += c; c = r14 >> 13u; r14 &= MASK;
    r15 += c; c = r15 >> 13u; r15 &= MASK;
    r16 += c; c = r16 >> 13u; r16 &= MASK;
    r17 += c; c = r17 >> 13u; r17 &= MASK;
    r18 += c; c = r18 >> 13u; r18 &= MASK;
    r19 += c; c = r19 >> 13u; r19 &= MASK;
    c = 19u;
    let s0 = (r0 + c) & MASK; c = (r0 + c) >> 13u;
    let s1 = (r1 + c) & MASK; c = (r1 + c) >> 13u;
    let s2 = (r2 + c) & MASK; c = (r2 + c) >> 13u;
    let s3 = (r3 + c) & MASK; c = (r3 + c) >> 13u;
    let s4 = (r4 + c) & MASK; c = (r4 + c) >> 13u;
    let s5 = (r5 + c) & MASK; c = (r5 + c) >> 13u;
    let s6 = (r6 + c) & MASK; c = (r6 + c) >> 13u;
    let s7 = (r7 + c) & MASK; c = (r7 + c) >> 13u;
    let s8 = (r8 + c) & MASK; c = (r8 + c) >> 13u;
    let s9 = (r9 + c) & MASK; c = (r9 + c) >> 13u;
    let s10 = (r10 + c) & MASK; c = (r10 + c) >> 13u;
    let s11 = (r11 + c) & MASK; c = (r11 + c) >> 13u;
    let s12 = (r12 + c) & MASK; c = (r12 + c) >> 13u;
    let s13 = (r13 + c) & MASK; c = (r13 + c) >> 13u;
    let s14 = (r14 + c) & MASK; c = (r14 + c) >> 13u;
    let s15 = (r15 + c) & MASK; c = (r15 + c) >> 13u;
    let s16 = (r16 + c) & MASK; c = (r16 + c) >> 13u;
    let s17 = (r17 + c) & MASK; c = (r17 + c) >> 13u;
    let s18 = (r18 + c) & MASK; c = (r18 + c) >> 13u;
    let s19 = (r19 + c) & MASK; c = (r19 + c) >> 13u;
    if ((s19 >> 8u) != 0u) {
        return Fe(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16, s17, s18, s19 & 0xffu);
    }
    return Fe(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19);
}

fn fe_eq(a: Fe, b: Fe) -> bool {
    let x = fe_canonical(a);
    let y = fe_canonical(b);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4]) | (x[5] ^ y[5]) | (x[6] ^ y[6]) | (x[7] ^ y[7]) | (x[8] ^ y[8]) | (x[9] ^ y[9]) | (x[10] ^ y[10]) | (x[11] ^ y[11]) | (x[12] ^ y[12]) | (x[13] ^ y[13]) | (x[14] ^ y[14]) | (x[15] ^ y[15]) | (x[16] ^ y[16]) | (x[17] ^ y[17]) | (x[18] ^ y[18]) | (x[19] ^ y[19])) == 0u;
}

// 256 bits, little-endian words, to limbs (tight: limb 19 gets the top 9 bits). Any
// value below 2^256 is accepted and taken mod p.
fn fe_from_words(w: array<u32, 8>) -> Fe {
    return Fe((w[0] >> 0u) & MASK, (w[0] >> 13u) & MASK, ((w[0] >> 26u) | (w[1] << 6u)) & MASK, (w[1] >> 7u) & MASK, ((w[1] >> 20u) | (w[2] << 12u)) & MASK, (w[2] >> 1u) & MASK, (w[2] >> 14u) & MASK, ((w[2] >> 27u) | (w[3] << 5u)) & MASK, (w[3] >> 8u) & MASK, ((w[3] >> 21u) | (w[4] << 11u)) & MASK, (w[4] >> 2u) & MASK, (w[4] >> 15u) & MASK, ((w[4] >> 28u) | (w[5] << 4u)) & MASK, (w[5] >> 9u) & MASK, ((w[5] >> 22u) | (w[6] << 10u)) & MASK, (w[6] >> 3u) & MASK, (w[6] >> 16u) & MASK, ((w[6] >> 29u) | (w[7] << 3u)) & MASK, (w[7] >> 10u) & MASK, (w[7] >> 23u) & MASK);
}

// The canonical value as 8 little-endian words.
fn fe_to_words(a: Fe) -> array<u32, 8> {
    let c = fe_canonical(a);
    return array<u32, 8>((c[0] << 0u) | (c[1] << 13u) | (c[2] << 26u),
        (c[2] >> 6u) | (c[3] << 7u) | (c[4] << 20u),
        (c[4] >> 12u) | (c[5] << 1u) | (c[6] << 14u) | (c[7] << 27u),
        (c[7] >> 5u) | (c[8] << 8u) | (c[9] << 21u),
        (c[9] >> 11u) | (c[10] << 2u) | (c[11] << 15u) | (c[12] << 28u),
        (c[12] >> 4u) | (c[13] << 9u) | (c[14] << 22u),
        (c[14] >> 10u) | (c[15] << 3u) | (c[16] << 16u) | (c[17] << 29u),
        (c[17] >> 3u) | (c[18] << 10u) | (c[19] << 23u));
}

fn state_fe(at: u32) -> Fe {
    return Fe(state[at + 0u], state[at + 1u], state[at + 2u], state[at + 3u], state[at + 4u], state[at + 5u], state[at + 6u], state[at + 7u], state[at + 8u], state[at + 9u], state[at + 10u], state[at + 11u], state[at + 12u], state[at + 13u], state[at + 14u], state[at + 15u], state[at + 16u], state[at + 17u], state[at + 18u], state[at + 19u]);
}

fn set_state_fe(at: u32, f: Fe) {
    state[at + 0u] = f[0];
    state[at + 1u] = f[1];
    state[at + 2u] = f[2];
    state[at + 3u] = f[3];
    state[at + 4u] = f[4];
    state[at + 5u] = f[5];
    state[at + 6u] = f[6];
    state[at + 7u] = f[7];
    state[at + 8u] = f[8];
    state[at + 9u] = f[9];
    state[at + 10u] = f[10];
    state[at + 11u] = f[11];
    state[at + 12u] = f[12];
    state[at + 13u] = f[13];
    state[at + 14u] = f[14];
    state[at + 15u] = f[15];
    state[at + 16u] = f[16];
    state[at + 17u] = f[17];
    state[at + 18u] = f[18];
    state[at + 19u] = f[19];
}

fn table_fe(at: u32) -> Fe {
    return Fe(tables[at + 0u], tables[at + 1u], tables[at + 2u], tables[at + 3u], tables[at + 4u], tables[at + 5u], tables[at + 6u], tables[at + 7u], tables[at + 8u], tables[at + 9u], tables[at + 10u], tables[at + 11u], tables[at + 12u], tables[at + 13u], tables[at + 14u], tables[at + 15u], tables[at + 16u], tables[at + 17u], tables[at + 18u], tables[at + 19u]);
}

fn set_table_fe(at: u32, f: Fe) {
    tables[at + 0u] = f[0];
    tables[at + 1u] = f[1];
    tables[at + 2u] = f[2];
    tables[at + 3u] = f[3];
    tables[at + 4u] = f[4];
    tables[at + 5u] = f[5];
    tables[at + 6u] = f[6];
    tables[at + 7u] = f[7];
    tables[at + 8u] = f[8];
    tables[at + 9u] = f[9];
    tables[at + 10u] = f[10];
    tables[at + 11u] = f[11];
    tables[at + 12u] = f[12];
    tables[at + 13u] = f[13];
    tables[at + 14u] = f[14];
    tables[at + 15u] = f[15];
    tables[at + 16u] = f[16];
    tables[at + 17u] = f[17];
    tables[at + 18u] = f[18];
    tables[at + 19u] = f[19];
}

fn base_fe(at: u32) -> Fe {
    return Fe(base_table[at + 0u], base_table[at + 1u], base_table[at + 2u], base_table[at + 3u], base_table[at + 4u], base_table[at + 5u], base_table[at + 6u], base_table[at + 7u], base_table[at + 8u], base_table[at + 9u], base_table[at + 10u], base_table[at + 11u], base_table[at + 12u], base_table[at + 13u], base_table[at + 14u], base_table[at + 15u], base_table[at + 16u], base_table[at + 17u], base_table[at + 18u], base_table[at + 19u]);
}

fn set_base_fe(at: u32, f: Fe) {
    base_table[at + 0u] = f[0];
    base_table[at + 1u] = f[1];
    base_table[at + 2u] = f[2];
    base_table[at + 3u] = f[3];
    base_table[at + 4u] = f[4];
    base_table[at + 5u] = f[5];
    base_table[at + 6u] = f[6];
    base_table[at + 7u] = f[7];
    base_table[at + 8u] = f[8];
    base_table[at + 9u] = f[9];
    base_table[at + 10u] = f[10];
    base_table[at + 11u] = f[11];
    base_table[at + 12u] = f[12];
    base_table[at + 13u] = f[13];
    base_table[at + 14u] = f[14];
    base_table[at + 15u] = f[15];
    base_table[at + 16u] = f[16];
    base_table[at + 17u] = f[17];
    base_table[at + 18u] = f[18];
    base_table[at + 19u] = f[19];
}

// END GENERATED

fn fe_neg(a: Fe) -> Fe {
    return fe_sub(FE_ZERO, a);
}

fn fe_sqn(a: Fe, n: u32) -> Fe {
    var r = a;
    for (var i = 0u; i < n; i++) {
        r = fe_sq(r);
    }
    return r;
}

fn fe_is_zero(a: Fe) -> bool {
    return fe_eq(a, FE_ZERO);
}

// "Negative" in the sense of RFC 8032: the canonical value is odd.
fn fe_is_negative(a: Fe) -> bool {
    return (fe_canonical(a)[0] & 1u) == 1u;
}

// z^((p-5)/8) = z^(2^252 - 3), by the addition chain of curve25519-dalek's pow_p58 (251
// squarings, 11 multiplications), run as a loop over its steps so the shader holds one
// squaring and one multiplication. Step i: square n times, multiply by saved[m] (none when
// m = 9), keep the result in saved[s] (none when s = 9).
fn fe_pow_p58(z: Fe) -> Fe {
    var n = array<u32, 12>(1u, 2u, 0u, 1u, 5u, 10u, 20u, 10u, 50u, 100u, 50u, 2u);
    var m = array<u32, 12>(9u, 0u, 1u, 2u, 4u, 5u, 6u, 5u, 7u, 8u, 7u, 0u);
    var s = array<u32, 12>(1u, 2u, 9u, 4u, 5u, 6u, 9u, 7u, 8u, 9u, 9u, 9u);
    var saved: array<Fe, 10>;
    saved[0] = z;
    var acc = z;
    for (var i = 0u; i < 12u; i++) {
        acc = fe_sqn(acc, n[i]);
        if (m[i] != 9u) {
            acc = fe_mul(acc, saved[m[i]]);
        }
        if (s[i] != 9u) {
            saved[s[i]] = acc;
        }
    }
    return acc;
}

// ---------------------------------------------------------------------------------------
// Points on -x^2 + y^2 = 1 + d x^2 y^2 in extended coordinates (X : Y : Z : T), x = X/Z,
// y = Y/Z, xy = T/Z. The formulas (Hisil–Wong–Carter–Dawson, a = -1) are complete for
// this curve, small-order points and the identity included.

fn pt_identity() -> Pt {
    return Pt(FE_ZERO, FE_ONE, FE_ONE, FE_ZERO);
}

fn pt_neg(p: Pt) -> Pt {
    return Pt(fe_neg(p.x), p.y, p.z, fe_neg(p.t));
}

fn pt_cached(p: Pt) -> Cached {
    return Cached(fe_add(p.y, p.x), fe_sub(p.y, p.x), p.z, fe_mul(p.t, FE_D2));
}

fn cached_neg(c: Cached) -> Cached {
    return Cached(c.ymx, c.ypx, c.z, fe_neg(c.t2d));
}

// p + q: 8 multiplications.
fn pt_add(p: Pt, q: Cached) -> Pt {
    let a = fe_mul(fe_sub(p.y, p.x), q.ymx);
    let b = fe_mul(fe_add(p.y, p.x), q.ypx);
    let c = fe_mul(p.t, q.t2d);
    let zz = fe_mul(p.z, q.z);
    let d = fe_add(zz, zz);
    let e = fe_sub(b, a);
    let f = fe_sub(d, c);
    let g = fe_add(d, c);
    let h = fe_add(b, a);
    return Pt(fe_mul(e, f), fe_mul(g, h), fe_mul(f, g), fe_mul(e, h));
}

// 2p: 4 squarings and 4 multiplications.
fn pt_dbl(p: Pt) -> Pt {
    let a = fe_sq(p.x);
    let b = fe_sq(p.y);
    let zz = fe_sq(p.z);
    let c = fe_add(zz, zz);
    let e = fe_sub(fe_sub(fe_sq(fe_add(p.x, p.y)), a), b);
    let g = fe_sub(b, a);
    let f = fe_sub(g, c);
    let h = fe_neg(fe_add(a, b));
    return Pt(fe_mul(e, f), fe_mul(g, h), fe_mul(f, g), fe_mul(e, h));
}

struct Decoded {
    p: Pt,
    ok: bool,
}

// Decompression exactly as curve25519-dalek's CompressedEdwardsY::decompress.
fn pt_decompress(enc: array<u32, 8>) -> Decoded {
    var yw = enc;
    yw[7] &= 0x7fffffffu;
    let sign = enc[7] >> 31u;
    let y = fe_from_words(yw);
    let yy = fe_sq(y);
    let u = fe_sub(yy, FE_ONE);                 // y^2 - 1
    let v = fe_add(fe_mul(yy, FE_D), FE_ONE);   // d y^2 + 1, never 0: -1/d is not a square
    // r = u v^3 (u v^7)^((p-5)/8) is a square root of u/v, or of -u/v, when either exists.
    let v3 = fe_mul(fe_sq(v), v);
    let v7 = fe_mul(fe_sq(v3), v);
    var r = fe_mul(fe_mul(u, v3), fe_pow_p58(fe_mul(u, v7)));
    let check = fe_mul(v, fe_sq(r));
    let correct = fe_eq(check, u);
    let flipped = fe_eq(check, fe_neg(u));
    if (flipped) {
        r = fe_mul(r, FE_SQRT_M1);
    }
    if (fe_is_negative(r)) {
        r = fe_neg(r);
    }
    if (sign == 1u) {
        r = fe_neg(r);
    }
    return Decoded(Pt(r, y, FE_ONE, fe_mul(r, y)), correct || flipped);
}

// ---------------------------------------------------------------------------------------
// Scalars mod L = 2^252 + 27742317777372353535851937790883648493

// S < L, comparing little-endian words from the top.
fn scalar_is_canonical(s: array<u32, 8>) -> bool {
    if (s[7] != 0x10000000u) {
        return s[7] < 0x10000000u;
    }
    if ((s[6] | s[5] | s[4]) != 0u) {
        return false;
    }
    if (s[3] != 0x14def9deu) {
        return s[3] < 0x14def9deu;
    }
    if (s[2] != 0xa2f79cd6u) {
        return s[2] < 0xa2f79cd6u;
    }
    if (s[1] != 0x5812631au) {
        return s[1] < 0x5812631au;
    }
    return s[0] < 0x5cf5d3edu;
}

// Signed radix-16 digits in [-8, 8): s = sum e[i] 16^i. Needs s < 2^255 (so the last
// digit stays below 8); both scalars are below L here.
fn scalar_radix16(s: array<u32, 8>) -> array<i32, 64> {
    var e: array<i32, 64>;
    for (var i = 0u; i < 64u; i++) {
        e[i] = i32((s[i >> 3u] >> ((i & 7u) * 4u)) & 15u);
    }
    for (var i = 0u; i < 63u; i++) {
        let carry = (e[i] + 8) >> 4u;
        e[i] -= carry << 4u;
        e[i + 1u] += carry;
    }
    return e;
}

// ---------------------------------------------------------------------------------------
// Verification passes

fn load8(b: u32) -> array<u32, 8> {
    return array<u32, 8>(items[b], items[b + 1u], items[b + 2u], items[b + 3u],
                         items[b + 4u], items[b + 5u], items[b + 6u], items[b + 7u]);
}

fn invocation(gid: vec3<u32>) -> u32 {
    return gid.y * params.row + gid.x;
}

fn state_pt(idx: u32, at: u32) -> Pt {
    let b = idx * STATE_WORDS + at;
    return Pt(state_fe(b), state_fe(b + 20u), state_fe(b + 40u), state_fe(b + 60u));
}

fn set_state_pt(idx: u32, at: u32, p: Pt) {
    let b = idx * STATE_WORDS + at;
    set_state_fe(b, p.x);
    set_state_fe(b + 20u, p.y);
    set_state_fe(b + 40u, p.z);
    set_state_fe(b + 60u, p.t);
}

// Entry `i` (0..8) of the table of -A of item `idx`.
fn table_get(idx: u32, i: u32) -> Cached {
    let b = idx * TABLE_WORDS + i * 80u;
    return Cached(table_fe(b), table_fe(b + 20u), table_fe(b + 40u), table_fe(b + 60u));
}

fn table_set(idx: u32, i: u32, c: Cached) {
    let b = idx * TABLE_WORDS + i * 80u;
    set_table_fe(b, c.ypx);
    set_table_fe(b + 20u, c.ymx);
    set_table_fe(b + 40u, c.z);
    set_table_fe(b + 60u, c.t2d);
}

// Entry `i` (0..8) of the table of B.
fn base_get(i: u32) -> Cached {
    let b = i * 80u;
    return Cached(base_fe(b), base_fe(b + 20u), base_fe(b + 40u), base_fe(b + 60u));
}

// Digit `i` (0..64) of scalar `which` (0: k, 1: S); stored as bytes biased by 8.
fn digit(idx: u32, which: u32, i: u32) -> i32 {
    let n = which * 64u + i;
    let w = state[idx * STATE_WORDS + STATE_DIGITS + (n >> 2u)];
    return i32((w >> ((n & 3u) * 8u)) & 0xffu) - 8;
}

// S < L; A and R decode; the digits of k and S; -A and R kept for the next passes.
@compute @workgroup_size(64)
fn ed_decode(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count) {
        return;
    }
    verdicts[idx] = 0u;
    let base = idx * 32u;
    let s = load8(base + 16u);
    if (!scalar_is_canonical(s)) {
        return;
    }
    // Decode A then R through one call site, which keeps the pipeline small: -A goes to
    // Q (where ed_table builds its multiples from) and to the first table entry, R to
    // where ed_finish reads it.
    for (var which = 0u; which < 2u; which++) {
        let dec = pt_decompress(load8(base + 8u * which));
        if (!dec.ok) {
            return;
        }
        if (which == 0u) {
            let minus_a = pt_neg(dec.p);
            set_state_pt(idx, STATE_Q, minus_a);
            table_set(idx, 0u, pt_cached(minus_a));
        } else {
            set_state_pt(idx, STATE_R, dec.p);
        }
    }
    let ek = scalar_radix16(load8(base + 24u));
    let es = scalar_radix16(s);
    for (var w = 0u; w < 32u; w++) {
        var packed = 0u;
        for (var j = 0u; j < 4u; j++) {
            let n = 4u * w + j;
            var d = es[(n - 64u) & 63u];
            if (n < 64u) {
                d = ek[n];
            }
            packed |= u32(d + 8) << (8u * j);
        }
        state[idx * STATE_WORDS + STATE_DIGITS + w] = packed;
    }
    verdicts[idx] = 1u;
}

// 2..8 times -A; Q becomes the identity.
@compute @workgroup_size(64)
fn ed_table(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count || verdicts[idx] == 0u) {
        return;
    }
    let first = table_get(idx, 0u);
    var acc = state_pt(idx, STATE_Q);
    for (var i = 1u; i < 8u; i++) {
        acc = pt_add(acc, first);
        table_set(idx, i, pt_cached(acc));
    }
    set_state_pt(idx, STATE_Q, pt_identity());
}

// Q = 16^8 Q + the next 8 windows of [k](-A) + [S]B (Straus' method, signed 4-bit
// windows, most significant first).
@compute @workgroup_size(64)
fn ed_windows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count || verdicts[idx] == 0u) {
        return;
    }
    var q = state_pt(idx, STATE_Q);
    for (var w = 0u; w < WINDOWS_PER_PASS; w++) {
        let i = 63u - (params.first + w);
        if (i != 63u) {
            for (var j = 0u; j < 4u; j++) {
                q = pt_dbl(q);
            }
        }
        for (var which = 0u; which < 2u; which++) {
            let d = digit(idx, which, i);
            if (d != 0i) {
                var c: Cached;
                if (which == 0u) {
                    c = table_get(idx, u32(abs(d)) - 1u);
                } else {
                    c = base_get(u32(abs(d)) - 1u);
                }
                if (d < 0i) {
                    c = cached_neg(c);
                }
                q = pt_add(q, c);
            }
        }
    }
    set_state_pt(idx, STATE_Q, q);
}

// [8](R - R') must be the identity: X = 0 and Y = Z.
@compute @workgroup_size(64)
fn ed_finish(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count || verdicts[idx] == 0u) {
        return;
    }
    var diff = pt_add(state_pt(idx, STATE_R), pt_cached(pt_neg(state_pt(idx, STATE_Q))));
    for (var j = 0u; j < 3u; j++) {
        diff = pt_dbl(diff);
    }
    verdicts[idx] = select(0u, 1u, fe_is_zero(diff.x) && fe_eq(diff.y, diff.z));
}

// The table of B, once per device; one invocation.
@compute @workgroup_size(1)
fn ed_base_table() {
    let p = Pt(BASE_X, BASE_Y, FE_ONE, BASE_T);
    let first = pt_cached(p);
    var acc = p;
    for (var i = 0u; i < 8u; i++) {
        var c = first;
        if (i > 0u) {
            acc = pt_add(acc, first);
            c = pt_cached(acc);
        }
        set_base_fe(80u * i, c.ypx);
        set_base_fe(80u * i + 20u, c.ymx);
        set_base_fe(80u * i + 40u, c.z);
        set_base_fe(80u * i + 60u, c.t2d);
    }
}

// ---------------------------------------------------------------------------------------
fn store8(at: u32, w: array<u32, 8>) {
    verdicts[at] = w[0];
    verdicts[at + 1u] = w[1];
    verdicts[at + 2u] = w[2];
    verdicts[at + 3u] = w[3];
    verdicts[at + 4u] = w[4];
    verdicts[at + 5u] = w[5];
    verdicts[at + 6u] = w[6];
    verdicts[at + 7u] = w[7];
}

// Field self-test, used by the host tests only: for each pair (a, b) of 256-bit inputs
// (16 words) it writes a*b, a^2, a+b, a-b, a^((p-5)/8) and a, each canonical, then the x
// of the decompression of a read as an encoding, then 1 when a decodes: 57 words.
@compute @workgroup_size(64)
fn field_ops(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = invocation(gid);
    if (idx >= params.count) {
        return;
    }
    let raw_a = load8(idx * 16u);
    let a = fe_from_words(raw_a);
    let b = fe_from_words(load8(idx * 16u + 8u));
    let dec = pt_decompress(raw_a);
    let base = idx * 57u;
    store8(base, fe_to_words(fe_mul(a, b)));
    store8(base + 8u, fe_to_words(fe_sq(a)));
    store8(base + 16u, fe_to_words(fe_add(a, b)));
    store8(base + 24u, fe_to_words(fe_sub(a, b)));
    store8(base + 32u, fe_to_words(fe_pow_p58(a)));
    store8(base + 40u, fe_to_words(a));
    store8(base + 48u, fe_to_words(dec.p.x));
    verdicts[base + 56u] = select(0u, 1u, dec.ok);
}
