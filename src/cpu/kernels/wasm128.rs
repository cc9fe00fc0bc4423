//! WebAssembly SIMD (simd128) dot products for the CPU path in the browser: one weight
//! row against R activation rows, each weight block unpacked once and reused for the
//! R rows (prefill).
//!
//! The integer products are exact, and each block's float arithmetic is written as
//! the same expression, in the same order, as in `scalar.rs`. The results are
//! therefore bit-identical to the portable twins. A test holds them to that, and it
//! also keeps the wasm build's greedy text equal to the native scalar binary's
//! (tests/wasm/smoke.cjs).
//!
//! Core op: `i32x4.dot_i16x8_s` takes eight i16 products and adds them in pairs into
//! four i32 lanes. Weight codes (at most 6 bits, or Q8_0's i8) and the i8 activations
//! are sign-extended to i16 first. The portable loop leaves LLVM to widen each
//! product to i32 on its own, about four times the instructions. Layouts: ggml
//! `ggml-common.h` (block_q4_0 18 B, block_q4_1 20 B, block_q5_0 22 B, block_q5_1 24 B,
//! block_q8_0 34 B, block_q2_K 84 B, block_q3_K 110 B, block_q4_K 144 B, block_q5_K
//! 176 B, block_q6_K 210 B, block_iq4_nl 18 B, block_iq4_xs 136 B), as in
//! `crate::format::quant`.

use super::q8::BlockQ8;
use super::scalar::{f16_at, scale_min_k4};
use crate::format::quant::{iq4xs_scale, q2k_scale_min, q3k_scales, KVALUES_IQ4NL};
use core::arch::wasm32::*;

pub mod tiled;

/// 32 weight codes as four i16x8 vectors (elements 0..8, 8..16, 16..24, 24..32).
type Codes = [v128; 4];

/// Widens two i8x16 vectors (elements 0..16 and 16..32) to i16.
#[inline(always)]
fn widen(lo: v128, hi: v128) -> Codes {
    [i16x8_extend_low_i8x16(lo), i16x8_extend_high_i8x16(lo), i16x8_extend_low_i8x16(hi), i16x8_extend_high_i8x16(hi)]
}

/// Σ codes·x over 32 elements, exactly.
#[inline(always)]
fn idot(c: &Codes, x: &[i8; 32]) -> i32 {
    // SAFETY: `x` is 32 bytes; v128_load has no alignment requirement.
    let (x0, x1) = unsafe { (v128_load(x.as_ptr() as *const v128), v128_load(x.as_ptr().add(16) as *const v128)) };
    let x = widen(x0, x1);
    let s = i32x4_add(i32x4_add(i32x4_dot_i16x8(c[0], x[0]), i32x4_dot_i16x8(c[1], x[1])), i32x4_add(i32x4_dot_i16x8(c[2], x[2]), i32x4_dot_i16x8(c[3], x[3])));
    hsum(s)
}

/// Σ codes·x over elements 0..16 (`half` 0) or 16..32 (`half` 1).
#[inline(always)]
fn idot16(c: &Codes, x: &[i8; 32], half: usize) -> i32 {
    // SAFETY: 16 bytes at 0 or 16 of a 32-byte array.
    let xv = unsafe { v128_load(x.as_ptr().add(16 * half) as *const v128) };
    let s = i32x4_add(i32x4_dot_i16x8(c[2 * half], i16x8_extend_low_i8x16(xv)), i32x4_dot_i16x8(c[2 * half + 1], i16x8_extend_high_i8x16(xv)));
    hsum(s)
}

#[inline(always)]
fn hsum(s: v128) -> i32 {
    i32x4_extract_lane::<0>(s).wrapping_add(i32x4_extract_lane::<1>(s)).wrapping_add(i32x4_extract_lane::<2>(s)).wrapping_add(i32x4_extract_lane::<3>(s))
}

#[inline(always)]
fn load16(b: &[u8], at: usize) -> v128 {
    assert!(at + 16 <= b.len());
    // SAFETY: bounds checked above; unaligned loads are allowed.
    unsafe { v128_load(b.as_ptr().add(at) as *const v128) }
}

/// 16 packed bytes at `at` → 32 nibbles, low nibbles first (Q4_0/Q4_1 element order).
#[inline(always)]
fn nibbles16(b: &[u8], at: usize) -> Codes {
    let q = load16(b, at);
    widen(v128_and(q, u8x16_splat(0x0F)), u8x16_shr(q, 4))
}

pub fn dot_q4_0<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(18).enumerate() {
        let (d, n) = (f16_at(b, 0), nibbles16(b, 2));
        for r in 0..R {
            let xb = &x[r][i];
            acc[r] += d * (xb.d * idot(&n, &xb.qs) as f32 - 8.0 * xb.s);
        }
    }
    acc
}

pub fn dot_q4_1<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(20).enumerate() {
        let (d, m, n) = (f16_at(b, 0), f16_at(b, 2), nibbles16(b, 4));
        for r in 0..R {
            let xb = &x[r][i];
            acc[r] += d * xb.d * idot(&n, &xb.qs) as f32 + m * xb.s;
        }
    }
    acc
}

/// The fifth bits of a Q5_0/Q5_1 block (`qh` at `at`: bit j for element j) as 0x10 in
/// byte j of two i8x16 vectors (elements 0..16, 16..32): byte j takes qh's byte j/8
/// and tests its bit j%8.
#[inline(always)]
fn fifth_bits(b: &[u8], at: usize) -> [v128; 2] {
    let v = u32x4_splat(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
    let bit = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let test = |bytes: v128| v128_and(u8x16_eq(v128_and(bytes, bit), bit), u8x16_splat(0x10));
    [test(i8x16_swizzle(v, u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))), test(i8x16_swizzle(v, u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)))]
}

/// Q5_0/Q5_1 codes: the nibbles at `qs` (Q4_0's order) with the fifth bits of `qh`.
#[inline(always)]
fn q5_codes(b: &[u8], qh: usize, qs: usize) -> Codes {
    let q = load16(b, qs);
    let [h0, h1] = fifth_bits(b, qh);
    widen(v128_or(v128_and(q, u8x16_splat(0x0F)), h0), v128_or(u8x16_shr(q, 4), h1))
}

pub fn dot_q5_0<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(22).enumerate() {
        let (d, n) = (f16_at(b, 0), q5_codes(b, 2, 6));
        for r in 0..R {
            let xb = &x[r][i];
            acc[r] += d * (xb.d * idot(&n, &xb.qs) as f32 - 16.0 * xb.s);
        }
    }
    acc
}

pub fn dot_q5_1<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(24).enumerate() {
        let (d, m, n) = (f16_at(b, 0), f16_at(b, 2), q5_codes(b, 4, 8));
        for r in 0..R {
            let xb = &x[r][i];
            acc[r] += d * xb.d * idot(&n, &xb.qs) as f32 + m * xb.s;
        }
    }
    acc
}

pub fn dot_q8_0<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(34).enumerate() {
        let (d, n) = (f16_at(b, 0), widen(load16(b, 2), load16(b, 18)));
        for r in 0..R {
            let xb = &x[r][i];
            acc[r] += d * xb.d * idot(&n, &xb.qs) as f32;
        }
    }
    acc
}

/// Q4_K and Q5_K: sub-blocks 2c and 2c+1 are the low and high nibbles of bytes
/// 32c..32c+32 (plus, for Q5_K, bits 2c and 2c+1 of `qh` as the fifth bit).
#[inline(always)]
fn dot_k<const R: usize, const Q5: bool>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (bb, qs) = if Q5 { (176, 48) } else { (144, 16) };
    let mut acc = [0f32; R];
    let m4 = u8x16_splat(0x0F);
    for (i, b) in w.chunks_exact(bb).enumerate() {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let qh = if Q5 { [load16(b, 16), load16(b, 32)] } else { [u8x16_splat(0); 2] };
        for c in 0..4 {
            let q = [load16(b, qs + 32 * c), load16(b, qs + 32 * c + 16)];
            for (j, hi) in [(2 * c, false), (2 * c + 1, true)] {
                let code = |k: usize| {
                    let v = if hi { u8x16_shr(q[k], 4) } else { v128_and(q[k], m4) };
                    if Q5 {
                        v128_or(v, i8x16_shl(v128_and(u8x16_shr(qh[k], j as u32), u8x16_splat(1)), 4))
                    } else {
                        v
                    }
                };
                let n = widen(code(0), code(1));
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                for r in 0..R {
                    let xb = &x[r][i * 8 + j];
                    acc[r] += d * sc as f32 * xb.d * idot(&n, &xb.qs) as f32 - dmin * m as f32 * xb.s;
                }
            }
        }
    }
    acc
}

pub fn dot_q4k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    dot_k::<R, false>(w, x)
}

pub fn dot_q5k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    dot_k::<R, true>(w, x)
}

/// Q6_K quarter k of half h (scalar `q6k_quarter`): low 4 bits from `ql`, high 2 from
/// `qh` at bit 2k, minus 32. The offset is folded into the codes: Σ(n − 32)·x is
/// the scalar kernel's `da − 32·xa` exactly.
pub fn dot_q6k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    let m4 = u8x16_splat(0x0F);
    for (i, b) in w.chunks_exact(210).enumerate() {
        let d = f16_at(b, 208);
        for h in 0..2 {
            let qh = [load16(b, 128 + 32 * h), load16(b, 144 + 32 * h)];
            for k in 0..4 {
                let code = |half: usize| {
                    let ql = load16(b, 64 * h + 32 * (k & 1) + 16 * half);
                    let lo4 = if k < 2 { v128_and(ql, m4) } else { u8x16_shr(ql, 4) };
                    let hi2 = i8x16_shl(v128_and(u8x16_shr(qh[half], 2 * k as u32), u8x16_splat(3)), 4);
                    i8x16_sub(v128_or(lo4, hi2), i8x16_splat(32))
                };
                let n = widen(code(0), code(1));
                let (sa, sb) = (b[192 + 8 * h + 2 * k] as i8 as i32, b[192 + 8 * h + 2 * k + 1] as i8 as i32);
                for r in 0..R {
                    let xb = &x[r][i * 8 + 4 * h + k];
                    acc[r] += d * xb.d * (sa * idot16(&n, &xb.qs, 0) + sb * idot16(&n, &xb.qs, 1)) as f32;
                }
            }
        }
    }
    acc
}

/// Q2_K/Q3_K two-bit codes of sub-block s = 4h + j: bits 2j.. of the 32 bytes at
/// `qs + 32h`, as two u8x16 vectors (elements 0..16, 16..32).
#[inline(always)]
fn k2_codes(b: &[u8], qs: usize, s: usize) -> [v128; 2] {
    let at = qs + 32 * (s / 4);
    let shift = 2 * (s % 4) as u32;
    [v128_and(u8x16_shr(load16(b, at), shift), u8x16_splat(3)), v128_and(u8x16_shr(load16(b, at + 16), shift), u8x16_splat(3))]
}

/// Q2_K: the scalar `dot_q2k`'s four integer sums per sub-block (Σ q·x and Σ x per
/// half of 16), then its float expression.
pub fn dot_q2k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    let ones = widen(u8x16_splat(1), u8x16_splat(1));
    for (i, b) in w.chunks_exact(84).enumerate() {
        let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
        for s in 0..8 {
            let [c0, c1] = k2_codes(b, 16, s);
            let n = widen(c0, c1);
            let ((sa, ma), (sb, mb)) = (q2k_scale_min(b, 2 * s), q2k_scale_min(b, 2 * s + 1));
            for r in 0..R {
                let xb = &x[r][i * 8 + s];
                let isc = sa as i32 * idot16(&n, &xb.qs, 0) + sb as i32 * idot16(&n, &xb.qs, 1);
                let imn = ma as i32 * idot16(&ones, &xb.qs, 0) + mb as i32 * idot16(&ones, &xb.qs, 1);
                acc[r] += xb.d * (d * isc as f32 - dmin * imn as f32);
            }
        }
    }
    acc
}

/// Q3_K: the two-bit codes with hmask bit s at bit 2, less 4 (values −4..4, scalar
/// `q3k_values`), against each half's scale.
pub fn dot_q3k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(110).enumerate() {
        let d = f16_at(b, 108);
        let sc = q3k_scales(b);
        let hm = [load16(b, 0), load16(b, 16)];
        for s in 0..8 {
            let c = k2_codes(b, 32, s);
            let code = |k: usize| {
                let high = i8x16_shl(v128_and(u8x16_shr(hm[k], s as u32), u8x16_splat(1)), 2);
                i8x16_sub(v128_or(c[k], high), i8x16_splat(4))
            };
            let n = widen(code(0), code(1));
            let (sa, sb) = (sc[2 * s] as i32, sc[2 * s + 1] as i32);
            for r in 0..R {
                let xb = &x[r][i * 8 + s];
                acc[r] += d * xb.d * (sa * idot16(&n, &xb.qs, 0) + sb * idot16(&n, &xb.qs, 1)) as f32;
            }
        }
    }
    acc
}

/// The IQ4_NL levels of the 16 nibble bytes at `at` (low nibbles first): a swizzle of
/// `kvalues_iq4nl`.
#[inline(always)]
fn iq4_levels(b: &[u8], at: usize) -> Codes {
    // SAFETY: the table is 16 bytes; unaligned loads are allowed.
    let table = unsafe { v128_load(KVALUES_IQ4NL.as_ptr() as *const v128) };
    let q = load16(b, at);
    widen(i8x16_swizzle(table, v128_and(q, u8x16_splat(0x0F))), i8x16_swizzle(table, u8x16_shr(q, 4)))
}

pub fn dot_iq4nl<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(18).enumerate() {
        let (d, n) = (f16_at(b, 0), iq4_levels(b, 2));
        for r in 0..R {
            let xb = &x[r][i];
            acc[r] += d * xb.d * idot(&n, &xb.qs) as f32;
        }
    }
    acc
}

pub fn dot_iq4xs<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [0f32; R];
    for (i, b) in w.chunks_exact(136).enumerate() {
        let d = f16_at(b, 0);
        for s in 0..8 {
            let (ls, n) = (iq4xs_scale(b, s), iq4_levels(b, 8 + 16 * s));
            for r in 0..R {
                let xb = &x[r][i * 8 + s];
                acc[r] += d * xb.d * (ls * idot(&n, &xb.qs)) as f32;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::super::{dot_scalar, q8::quantize_row, tests::random_x, BlockQ8};
    use crate::format::quant::{random_blocks, GgmlType};
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Every weight type, one and four activation rows: the same bits as the
    /// portable kernels (exact integer sums, the same float expression per block).
    #[wasm_bindgen_test]
    fn simd128_equals_scalar_bit_for_bit() {
        const R: usize = 4;
        for ty in [
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::Q5_0,
            GgmlType::Q5_1,
            GgmlType::Q8_0,
            GgmlType::Q2K,
            GgmlType::Q3K,
            GgmlType::Q4K,
            GgmlType::Q5K,
            GgmlType::Q6K,
            GgmlType::IQ4NL,
            GgmlType::IQ4XS,
        ] {
            let n_in = if ty.block_size() == 256 { 768 } else { 224 };
            let n_out = 5;
            let w = random_blocks(ty, n_in * n_out, 7 + n_in as u64);
            let xs: Vec<Vec<BlockQ8>> = (0..R)
                .map(|k| {
                    let mut q = vec![BlockQ8::ZERO; n_in / 32];
                    quantize_row(&random_x(n_in, 31 + k as u64), &mut q);
                    q
                })
                .collect();
            let rb = ty.row_bytes(n_in);
            for o in 0..n_out {
                let wr = &w[o * rb..(o + 1) * rb];
                let four = super::super::dot_rows::<R>(ty, wr, std::array::from_fn(|k| xs[k].as_slice()));
                for k in 0..R {
                    let one = super::super::dot_rows::<1>(ty, wr, [xs[k].as_slice()])[0];
                    let want = dot_scalar(ty, wr, &xs[k]);
                    assert!(
                        four[k].to_bits() == want.to_bits() && one.to_bits() == want.to_bits(),
                        "{}: first bad index row {o}, activation row {k}: simd128 {} (tile of {R}) / {one} (alone), scalar {want}",
                        ty.name(),
                        four[k]
                    );
                }
            }
        }
    }
}
