//! Activations quantized to 8 bits in blocks of 32, the partner of every weight type's
//! integer dot product (the role ggml's Q8_0/Q8_1/Q8_K play). One f32 scale per 32
//! values — finer than Q8_K's per-256 — plus the block's sum, which folds
//! the weights' offsets (Q4_0's −8, Q4_1's min, K-quants' mins) out of the inner loop.

#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ8 {
    pub d: f32,
    /// `d · Σ qs`: the block's value sum, for the weights' offset terms.
    pub s: f32,
    pub qs: [i8; 32],
}

const _: () = assert!(std::mem::size_of::<BlockQ8>() == 40);

impl BlockQ8 {
    pub const ZERO: BlockQ8 = BlockQ8 { d: 0.0, s: 0.0, qs: [0; 32] };
}

/// Quantizes one row (`x.len()` a multiple of 32) into `out` (len / 32 blocks):
/// symmetric, scale = max|x| / 127, round to nearest (ties to even, as ggml's AVX
/// `quantize_row_q8_1` rounds).
pub fn quantize_row(x: &[f32], out: &mut [BlockQ8]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx2_fma() {
        // SAFETY: the CPU has AVX2.
        return unsafe { quantize_row_avx2(x, out) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    quantize_row_simd128(x, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    quantize_row_body(x, out)
}

/// The same with intrinsics: Rust's saturating `f32 as i32` keeps LLVM from
/// vectorizing the portable loop, and `cvtps` on values already in ±127 needs no
/// saturation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_row_avx2(x: &[f32], out: &mut [BlockQ8]) {
    use std::arch::x86_64::*;
    let sign = _mm256_set1_ps(-0.0);
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        let v: [__m256; 4] = std::array::from_fn(|k| _mm256_loadu_ps(xs.as_ptr().add(8 * k)));
        let a = v.map(|v| _mm256_andnot_ps(sign, v));
        let m = _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3]));
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let amax = _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        let q = v.map(|v| _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v, id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
        // packs work per 128-bit lane; the permute puts the 8 dwords back in order.
        let p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(b.qs.as_mut_ptr() as *mut __m256i, p);
        let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        b.d = d;
        b.s = d * _mm_cvtsi128_si32(s) as f32;
    }
}

/// [`quantize_row_body`] on simd128 vectors, the same bits: the max of absolute values
/// is exact in any order (`pmax` equals `f32::max` there, NaN aside, which no finite
/// activation is), the rounding trick is the same per element, and the integer sum
/// is exact. (Only a nonzero block whose max is below ~4e-37, where 1/d overflows,
/// would differ: there the narrowing saturates where `as i8` wraps.) LLVM leaves the portable loop scalar (its `f32::max` is a libm call on
/// wasm32: `f32.max` treats NaN otherwise), which cost as much as a small matmul.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn quantize_row_simd128(x: &[f32], out: &mut [BlockQ8]) {
    use core::arch::wasm32::*;
    const ROUND: f32 = 12_582_912.0;
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        // SAFETY: 32 floats are eight v128; unaligned loads are allowed.
        let v: [v128; 8] = std::array::from_fn(|k| unsafe { v128_load(xs.as_ptr().add(4 * k) as *const v128) });
        // A closure: a `#[target_feature]` intrinsic is not an `FnMut` itself.
        let a = v.map(|v| f32x4_abs(v));
        let m = f32x4_pmax(f32x4_pmax(f32x4_pmax(a[0], a[1]), f32x4_pmax(a[2], a[3])), f32x4_pmax(f32x4_pmax(a[4], a[5]), f32x4_pmax(a[6], a[7])));
        let m = f32x4_pmax(m, i32x4_shuffle::<2, 3, 0, 1>(m, m));
        let m = f32x4_pmax(m, i32x4_shuffle::<1, 0, 3, 2>(m, m));
        let amax = f32x4_extract_lane::<0>(m);
        let d = amax / 127.0;
        let id = f32x4_splat(if d > 0.0 { 1.0 / d } else { 0.0 });
        let r = f32x4_splat(ROUND);
        let q = v.map(|v| i32x4_trunc_sat_f32x4(f32x4_sub(f32x4_add(f32x4_mul(v, id), r), r)));
        // |q| <= 127: the saturating narrowings are plain truncations, as `q as i8`.
        let p = i8x16_narrow_i16x8(i16x8_narrow_i32x4(q[0], q[1]), i16x8_narrow_i32x4(q[2], q[3]));
        let p2 = i8x16_narrow_i16x8(i16x8_narrow_i32x4(q[4], q[5]), i16x8_narrow_i32x4(q[6], q[7]));
        // SAFETY: 32 bytes into the block's 32 codes.
        unsafe {
            v128_store(b.qs.as_mut_ptr() as *mut v128, p);
            v128_store(b.qs.as_mut_ptr().add(16) as *mut v128, p2);
        }
        let s = i32x4_add(i32x4_add(i32x4_add(q[0], q[1]), i32x4_add(q[2], q[3])), i32x4_add(i32x4_add(q[4], q[5]), i32x4_add(q[6], q[7])));
        let s = i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s) + i32x4_extract_lane::<2>(s) + i32x4_extract_lane::<3>(s);
        b.d = d;
        b.s = d * s as f32;
    }
}

/// The portable twin.
pub fn quantize_row_body(x: &[f32], out: &mut [BlockQ8]) {
    // Adding and removing 1.5·2^23 rounds to the nearest integer (ties to even)
    // without a libm `roundf` call per element.
    const ROUND: f32 = 12_582_912.0;
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        let mut m = [0f32; 8];
        for c in xs.chunks_exact(8) {
            for l in 0..8 {
                m[l] = m[l].max(c[l].abs());
            }
        }
        let amax = m.iter().fold(0f32, |a, &v| a.max(v));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = [0i32; 8];
        for (qs, c) in b.qs.chunks_exact_mut(8).zip(xs.chunks_exact(8)) {
            for l in 0..8 {
                let q = ((c[l] * id + ROUND) - ROUND) as i32;
                qs[l] = q as i8;
                sum[l] += q;
            }
        }
        b.d = d;
        b.s = d * sum.iter().sum::<i32>() as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Natively the AVX2 copy, in wasm32 the simd128 one (`make test-wasm-kernels`).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn simd_quantize_equals_portable() {
        let mut s = 7u64;
        let x: Vec<f32> = (0..32 * 37)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                // Some blocks all zero, some with one large outlier, some tiny, some
                // all negative.
                match (i / 32) % 7 {
                    0 => 0.0,
                    1 => v * 1e-30,
                    2 => -v.abs(),
                    _ if i % 97 == 0 => v * 300.0,
                    _ => v,
                }
            })
            .collect();
        let (mut a, mut b) = (vec![BlockQ8::ZERO; 37], vec![BlockQ8::ZERO; 37]);
        quantize_row(&x, &mut a);
        quantize_row_body(&x, &mut b);
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!(p.qs == q.qs && p.d == q.d && p.s == q.s, "first bad block {i}: {p:?} vs {q:?}");
        }
    }
}
