//! The straight-line field arithmetic of `wgsl/ed25519.wgsl` is generated here.
//!
//! Shader compilers keep arrays that are indexed by a loop counter in memory unless they
//! unroll the loop first, and software drivers such as lavapipe then run field
//! arithmetic about 50 times slower and compile it 10 times slower. The generated block
//! uses constant indices and named scalars only. This test fails when the block in the
//! shader differs from what the generator writes; run it with
//! `CPCHAIN_REGENERATE_KERNELS=1` to rewrite the block after changing the generator.

use std::fmt::Write as _;

const BEGIN: &str = "// BEGIN GENERATED: field arithmetic (kernels/tests/generated.rs)\n";
const END: &str = "// END GENERATED\n";

/// Limbs of 13 bits; 2^260 = 608 (mod p).
const LIMBS: usize = 20;

fn fe_literal(prefix: &str) -> String {
    let parts: Vec<String> = (0..LIMBS).map(|i| format!("{prefix}{i}")).collect();
    format!("Fe({})", parts.join(", "))
}

/// Two carry passes over `r0..r19` with the carry out of limb 19 folded into limb 0.
fn carry(out: &mut String, r: &str) {
    let _ = writeln!(out, "    var c = 0u;");
    for pass in 0..2 {
        for i in 0..LIMBS {
            let _ = writeln!(
                out,
                "    let u{pass}_{i} = {r}{i} + c; {r}{i} = u{pass}_{i} & MASK; c = u{pass}_{i} >> 13u;"
            );
        }
        let _ = writeln!(out, "    {r}0 += c * FOLD;");
        if pass == 0 {
            let _ = writeln!(out, "    c = 0u;");
        }
    }
}

fn gen_carry(out: &mut String) {
    let _ = writeln!(
        out,
        "// Carries limbs of up to 2^31 into a tight element; the carry out of limb 19 is\n\
         // folded back into limb 0 (times 2^260 mod p). Two passes: after the first the value\n\
         // is below 2^260 plus a small limb 0, so the second pass carries out at most 1."
    );
    let _ = writeln!(out, "fn fe_carry(a: Fe) -> Fe {{");
    for i in 0..LIMBS {
        let _ = writeln!(out, "    var r{i} = a[{i}];");
    }
    carry(out, "r");
    let _ = writeln!(out, "    return {};\n}}\n", fe_literal("r"));
}

fn gen_add_sub(out: &mut String) {
    let _ = writeln!(out, "fn fe_add(a: Fe, b: Fe) -> Fe {{");
    let terms: Vec<String> = (0..LIMBS).map(|i| format!("a[{i}] + b[{i}]")).collect();
    let _ = writeln!(out, "    return fe_carry(Fe({}));\n}}\n", terms.join(", "));
    let _ = writeln!(
        out,
        "// a + 64p - b: every limb of 64p is at least the largest limb of a tight element."
    );
    let _ = writeln!(out, "fn fe_sub(a: Fe, b: Fe) -> Fe {{");
    let terms: Vec<String> = (0..LIMBS)
        .map(|i| {
            let p64 = if i == 0 { 15168 } else { 16382 };
            format!("a[{i}] + {p64}u - b[{i}]")
        })
        .collect();
    let _ = writeln!(out, "    return fe_carry(Fe({}));\n}}\n", terms.join(", "));
}

/// Column sums `t0..t38` are already declared; carry them into 40 limbs, fold the upper
/// 20 (times 608) and carry.
fn reduce_columns(out: &mut String) {
    let _ = writeln!(out, "    var c = 0u;");
    for k in 0..2 * LIMBS - 1 {
        let _ = writeln!(
            out,
            "    let v{k} = t{k} + c; let l{k} = v{k} & MASK; c = v{k} >> 13u;"
        );
    }
    let _ = writeln!(out, "    let l39 = c;");
    let terms: Vec<String> = (0..LIMBS)
        .map(|i| format!("l{i} + l{} * FOLD", i + LIMBS))
        .collect();
    let _ = writeln!(out, "    return fe_carry(Fe({}));", terms.join(", "));
}

fn gen_mul(out: &mut String) {
    let _ = writeln!(
        out,
        "// Schoolbook: column sums below 20 * (2^13 + 608)^2 < 2^31, no carries inside."
    );
    let _ = writeln!(out, "fn fe_mul(a: Fe, b: Fe) -> Fe {{");
    for i in 0..LIMBS {
        let _ = writeln!(out, "    let a{i} = a[{i}]; let b{i} = b[{i}];");
    }
    for k in 0..2 * LIMBS - 1 {
        let terms: Vec<String> = (0..LIMBS)
            .filter(|&i| k >= i && k - i < LIMBS)
            .map(|i| format!("a{i} * b{}", k - i))
            .collect();
        let _ = writeln!(out, "    let t{k} = {};", terms.join(" + "));
    }
    reduce_columns(out);
    let _ = writeln!(out, "}}\n");
}

fn gen_sq(out: &mut String) {
    let _ = writeln!(out, "// Squaring: the 190 cross products once, doubled.");
    let _ = writeln!(out, "fn fe_sq(a: Fe) -> Fe {{");
    for i in 0..LIMBS {
        let _ = writeln!(out, "    let a{i} = a[{i}]; let d{i} = a{i} * 2u;");
    }
    for k in 0..2 * LIMBS - 1 {
        let mut terms = Vec::new();
        for i in 0..LIMBS {
            if k < i || k - i >= LIMBS {
                continue;
            }
            let j = k - i;
            if i < j {
                terms.push(format!("d{i} * a{j}"));
            } else if i == j {
                terms.push(format!("a{i} * a{i}"));
            }
        }
        let _ = writeln!(out, "    let t{k} = {};", terms.join(" + "));
    }
    reduce_columns(out);
    let _ = writeln!(out, "}}\n");
}

fn gen_canonical(out: &mut String) {
    let _ = writeln!(
        out,
        "// The unique representative in [0, p), limbs below 2^13 (limb 19 below 2^8): fold\n\
         // bits 255 and up twice (the second fold catches the carry of the first), then\n\
         // subtract p when the value plus 19 reaches 2^255."
    );
    let _ = writeln!(out, "fn fe_canonical(a: Fe) -> Fe {{");
    let _ = writeln!(out, "    let t = fe_carry(a);");
    for i in 0..LIMBS {
        let _ = writeln!(out, "    var r{i} = t[{i}];");
    }
    let _ = writeln!(out, "    var c = 0u;");
    for _ in 0..2 {
        let _ = writeln!(out, "    r0 += (r19 >> 8u) * 19u; r19 &= 0xffu;");
        for i in 0..LIMBS {
            let _ = writeln!(out, "    r{i} += c; c = r{i} >> 13u; r{i} &= MASK;");
        }
    }
    let _ = writeln!(out, "    c = 19u;");
    for i in 0..LIMBS {
        let _ = writeln!(
            out,
            "    let s{i} = (r{i} + c) & MASK; c = (r{i} + c) >> 13u;"
        );
    }
    let _ = writeln!(out, "    if ((s19 >> 8u) != 0u) {{");
    let s: Vec<String> = (0..LIMBS)
        .map(|i| {
            if i == LIMBS - 1 {
                "s19 & 0xffu".to_owned()
            } else {
                format!("s{i}")
            }
        })
        .collect();
    let _ = writeln!(out, "        return Fe({});\n    }}", s.join(", "));
    let _ = writeln!(out, "    return {};\n}}\n", fe_literal("r"));
}

fn gen_eq(out: &mut String) {
    let _ = writeln!(out, "fn fe_eq(a: Fe, b: Fe) -> bool {{");
    let _ = writeln!(
        out,
        "    let x = fe_canonical(a);\n    let y = fe_canonical(b);"
    );
    let terms: Vec<String> = (0..LIMBS).map(|i| format!("(x[{i}] ^ y[{i}])")).collect();
    let _ = writeln!(out, "    return ({}) == 0u;\n}}\n", terms.join(" | "));
}

fn gen_words(out: &mut String) {
    let _ = writeln!(
        out,
        "// 256 bits, little-endian words, to limbs (tight: limb 19 gets the top 9 bits). Any\n\
         // value below 2^256 is accepted and taken mod p."
    );
    let _ = writeln!(out, "fn fe_from_words(w: array<u32, 8>) -> Fe {{");
    let mut limbs = Vec::new();
    for i in 0..LIMBS {
        let bit = 13 * i;
        let (word, off) = (bit / 32, bit % 32);
        let mut e = format!("(w[{word}] >> {off}u)");
        if off > 19 && word < 7 {
            e = format!("({e} | (w[{}] << {}u))", word + 1, 32 - off);
        }
        limbs.push(format!("{e} & MASK"));
    }
    let _ = writeln!(out, "    return Fe({});\n}}\n", limbs.join(", "));

    let _ = writeln!(out, "// The canonical value as 8 little-endian words.");
    let _ = writeln!(out, "fn fe_to_words(a: Fe) -> array<u32, 8> {{");
    let _ = writeln!(out, "    let c = fe_canonical(a);");
    let mut words: Vec<Vec<String>> = vec![Vec::new(); 8];
    for i in 0..LIMBS {
        let bit = 13 * i;
        let (word, off) = (bit / 32, bit % 32);
        words[word].push(format!("(c[{i}] << {off}u)"));
        if off > 19 && word < 7 {
            words[word + 1].push(format!("(c[{i}] >> {}u)", 32 - off));
        }
    }
    let w: Vec<String> = words.iter().map(|t| t.join(" | ")).collect();
    let _ = writeln!(
        out,
        "    return array<u32, 8>({});\n}}\n",
        w.join(",\n        ")
    );
}

/// Loads and stores of field elements and points in the storage buffers.
fn gen_buffers(out: &mut String) {
    for (name, buffer) in [
        ("state", "state"),
        ("table", "tables"),
        ("base", "base_table"),
    ] {
        let loads: Vec<String> = (0..LIMBS).map(|i| format!("{buffer}[at + {i}u]")).collect();
        let _ = writeln!(
            out,
            "fn {name}_fe(at: u32) -> Fe {{\n    return Fe({});\n}}\n",
            loads.join(", ")
        );
        let _ = writeln!(out, "fn set_{name}_fe(at: u32, f: Fe) {{");
        for i in 0..LIMBS {
            let _ = writeln!(out, "    {buffer}[at + {i}u] = f[{i}];");
        }
        let _ = writeln!(out, "}}\n");
    }
}

fn generate() -> String {
    let mut out = String::from(BEGIN);
    gen_carry(&mut out);
    gen_add_sub(&mut out);
    gen_mul(&mut out);
    gen_sq(&mut out);
    gen_canonical(&mut out);
    gen_eq(&mut out);
    gen_words(&mut out);
    gen_buffers(&mut out);
    out.push_str(END);
    out
}

#[test]
fn the_generated_field_arithmetic_is_current() {
    // At run time, as cargo gives it: a binary fresh from a clone at another path (CI
    // shares the target directory) would carry that clone's path.
    let root = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let path = std::path::Path::new(&root).join("wgsl/ed25519.wgsl");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(BEGIN).expect("the BEGIN GENERATED marker");
    let end = text[start..].find(END).expect("the END GENERATED marker") + start + END.len();
    let want = generate();
    if text[start..end] == want {
        return;
    }
    if std::env::var_os("CPCHAIN_REGENERATE_KERNELS").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    panic!(
        "the generated block of {} is stale: run \
         `CPCHAIN_REGENERATE_KERNELS=1 cargo test -p cpc-kernels` and commit the result",
        path.display()
    );
}

#[test]
fn the_shader_has_no_loop_indexed_field_arithmetic() {
    // Guard against reintroducing per-limb loops in the hot code (see the file header).
    let text = cpc_kernels::wgsl::ED25519;
    for line in text.lines() {
        assert!(
            !line.contains("i < 20u"),
            "a loop over the 20 limbs in the shader: {line}"
        );
    }
}
