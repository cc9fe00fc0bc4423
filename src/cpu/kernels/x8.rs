//! Weights re-laid eight rows at a time for AVX-512 VNNI (`vpdpbusd` on 256-bit
//! registers through AVX512VL). Each 32-bit lane of a register holds four consecutive
//! codes of one of eight rows, so one `dpbusd` against four activation bytes broadcast
//! to every lane advances eight row dot products at once: a block's integer sums come
//! out one per row with no horizontal reduction, and the eight rows' f16 scales sit
//! side by side for a single `vcvtph2ps`. The idea is llama.cpp's repacked
//! `block_q4_0x8` (ggml-cpu `repack.cpp`); this layout and these kernels are our own.
//!
//! Layout of one group of 8 rows: its 32-element blocks in order, each
//!   Q4_0: d[8] f16 | codes[128]            = 144 bytes (8 × 18)
//!   Q4_1: d[8] f16 | m[8] f16 | codes[128] = 160 bytes (8 × 20)
//!   Q8_0: d[8] f16 | codes[256]            = 272 bytes (8 × 34)
//! 4-bit codes: byte `32L + 4r + i` (L < 4) has element 4L+i of row r in its low
//! nibble and element 16+4L+i in its high nibble — which is byte 4L+i of the ggml
//! block (ggml-common.h: `qs[j]` = element j | element j+16 << 4).
//! 8-bit codes: byte `32L + 4r + i` (L < 8) is element 4L+i of row r plus 128, so
//! `dpbusd` can take the weights as its unsigned operand; the kernels subtract
//! 128 · Σx again through the activation block's sum.
//! Same size as the ggml blocks, so memory and bytes read per token do not change.

use super::q8::BlockQ8;
use crate::format::quant::GgmlType;
use half::f16;

/// Rows per group.
pub const ROWS: usize = 8;

/// Types with an interleaved layout.
pub fn supported(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// Where the codes start inside a group's block (after the scales).
fn codes_at(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_1 => 32,
        _ => 16,
    }
}

/// Re-lays `w` (`n_out` rows of `n_in`, ggml blocks) in groups of [`ROWS`] rows.
/// `n_out` must be a multiple of [`ROWS`] and `ty` [`supported`].
pub fn pack(ty: GgmlType, w: &[u8], n_in: usize, n_out: usize) -> Vec<u8> {
    assert!(supported(ty) && n_out % ROWS == 0 && n_in % 32 == 0);
    let (nb, bb) = (n_in / 32, ty.block_bytes());
    let (rb, gb) = (nb * bb, ROWS * bb);
    let co = codes_at(ty);
    let mut out = vec![0u8; w.len()];
    for g in 0..n_out / ROWS {
        for b in 0..nb {
            let dst = &mut out[(g * nb + b) * gb..][..gb];
            for r in 0..ROWS {
                let src = &w[(g * ROWS + r) * rb + b * bb..][..bb];
                dst[2 * r..2 * r + 2].copy_from_slice(&src[..2]);
                match ty {
                    GgmlType::Q4_1 => {
                        dst[16 + 2 * r..18 + 2 * r].copy_from_slice(&src[2..4]);
                        for l in 0..4 {
                            dst[co + 32 * l + 4 * r..][..4].copy_from_slice(&src[4 + 4 * l..][..4]);
                        }
                    }
                    GgmlType::Q4_0 => {
                        for l in 0..4 {
                            dst[co + 32 * l + 4 * r..][..4].copy_from_slice(&src[2 + 4 * l..][..4]);
                        }
                    }
                    _ => {
                        for l in 0..8 {
                            for i in 0..4 {
                                dst[co + 32 * l + 4 * r + i] = src[2 + 4 * l + i] ^ 0x80;
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Plain-Rust twin of the SIMD kernels: the 8 rows of group `g` (its `nb` blocks)
/// dotted with one activation row.
pub fn dot_scalar(ty: GgmlType, g: &[u8], x: &[BlockQ8]) -> [f32; ROWS] {
    let gb = ROWS * ty.block_bytes();
    let co = codes_at(ty);
    let mut acc = [0f32; ROWS];
    for (blk, xb) in g.chunks_exact(gb).zip(x) {
        for (r, a) in acc.iter_mut().enumerate() {
            let d = f16_at(blk, 2 * r);
            let mut isum = 0i32;
            if ty == GgmlType::Q8_0 {
                for l in 0..8 {
                    for i in 0..4 {
                        isum += blk[co + 32 * l + 4 * r + i] as i32 * xb.qs[4 * l + i] as i32;
                    }
                }
            } else {
                for l in 0..4 {
                    for i in 0..4 {
                        let c = blk[co + 32 * l + 4 * r + i];
                        isum += (c & 0xF) as i32 * xb.qs[4 * l + i] as i32 + (c >> 4) as i32 * xb.qs[16 + 4 * l + i] as i32;
                    }
                }
            }
            *a += match ty {
                GgmlType::Q4_1 => d * xb.d * isum as f32 + f16_at(blk, 16 + 2 * r) * xb.s,
                GgmlType::Q4_0 => d * (xb.d * isum as f32 - 8.0 * xb.s),
                _ => d * (xb.d * isum as f32 - 128.0 * xb.s),
            };
        }
    }
    acc
}

/// Whether this CPU runs the interleaved kernels (and `PRECIS_SIMD` does not ask for
/// less); matrices are only re-laid when it does.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::simd() == super::Simd::Avx512
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The 8 rows of group `g` against `T` activation rows, by the SIMD kernel.
/// Callers check [`available`] first.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn dot<const T: usize>(ty: GgmlType, g: &[u8], nb: usize, x: [&[BlockQ8]; T]) -> [[f32; ROWS]; T] {
    debug_assert!(available() && g.len() == nb * ROWS * ty.block_bytes() && x.iter().all(|r| r.len() >= nb));
    // SAFETY: `available()` checked the CPU features when the matrix was packed; the
    // group holds `nb` whole blocks and every activation row at least `nb` blocks.
    unsafe {
        match ty {
            GgmlType::Q4_1 => avx512::q4::<T, true>(g, nb, x),
            GgmlType::Q4_0 => avx512::q4::<T, false>(g, nb, x),
            _ => avx512::q8::<T>(g, nb, x),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn dot<const T: usize>(ty: GgmlType, g: &[u8], _nb: usize, x: [&[BlockQ8]; T]) -> [[f32; ROWS]; T] {
    std::array::from_fn(|t| dot_scalar(ty, g, x[t]))
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::missing_safety_doc)]
mod avx512 {
    use super::{BlockQ8, ROWS};
    use std::arch::x86_64::*;

    /// Prefetch distance in bytes: decode streams each matrix once from DRAM.
    const AHEAD: usize = 1024;

    /// Activation bytes `4k..4k+4` of `x` in every lane.
    #[inline(always)]
    unsafe fn bcast(x: &BlockQ8, k: usize) -> __m256i {
        _mm256_set1_epi32((x.qs.as_ptr() as *const i32).add(k).read_unaligned())
    }

    #[inline(always)]
    unsafe fn dp(acc: __m256i, u: __m256i, x: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, u, x)
    }

    /// One block's Σ code·x for the 8 rows. `c[k]` pairs with activation word k
    /// (bytes 4k..4k+4); four independent chains, so one token alone still keeps the
    /// units busy.
    #[inline(always)]
    unsafe fn isum(c: &[__m256i; 8], x: &BlockQ8) -> __m256i {
        let z = _mm256_setzero_si256();
        let a = dp(dp(z, c[0], bcast(x, 0)), c[4], bcast(x, 4));
        let b = dp(dp(z, c[1], bcast(x, 1)), c[5], bcast(x, 5));
        let e = dp(dp(z, c[2], bcast(x, 2)), c[6], bcast(x, 6));
        let f = dp(dp(z, c[3], bcast(x, 3)), c[7], bcast(x, 7));
        _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(e, f))
    }

    /// Per block: `acc += cvt(isum) · (d · x.d)` and `off += o · x.s`, where `o` is
    /// the weights' per-row offset term (Q4_1's min, −8·d, −128·d): two accumulators,
    /// so the FMAs of a block do not chain, and the same order of additions for every
    /// `T` — a token's result does not depend on how many others share its pass
    /// (decoding step by step equals prefill bit for bit). The offset products are
    /// rounded before they are added, not fused, as ggml's `summs += m·s` is: with
    /// ggml's order our greedy SmolLM2 text follows llama.cpp's for 59 of 64 tokens
    /// of the fixture, fused only 7 (near-ties break either way on rounding alone).
    #[inline(always)]
    unsafe fn accumulate<const T: usize>(c: &[__m256i; 8], dv: __m256, mv: __m256, x: &[&[BlockQ8]; T], b: usize, ad: &mut [__m256; T], am: &mut [__m256; T]) {
        for t in 0..T {
            let xb = x[t].get_unchecked(b);
            let s = isum(c, xb);
            ad[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dv, _mm256_set1_ps(xb.d)), ad[t]);
            am[t] = _mm256_add_ps(am[t], _mm256_mul_ps(mv, _mm256_set1_ps(xb.s)));
        }
    }

    #[inline(always)]
    unsafe fn finish<const T: usize>(ad: [__m256; T], am: [__m256; T]) -> [[f32; ROWS]; T] {
        let mut out = [[0f32; ROWS]; T];
        for t in 0..T {
            _mm256_storeu_ps(out[t].as_mut_ptr(), _mm256_add_ps(ad[t], am[t]));
        }
        out
    }

    /// Q4_1 (`MIN`) and Q4_0.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    pub unsafe fn q4<const T: usize, const MIN: bool>(g: &[u8], nb: usize, x: [&[BlockQ8]; T]) -> [[f32; ROWS]; T] {
        let (gb, co) = if MIN { (160, 32) } else { (144, 16) };
        let mut ad = [_mm256_setzero_ps(); T];
        let mut am = [_mm256_setzero_ps(); T];
        let m4 = _mm256_set1_epi8(0x0F);
        let p0 = g.as_ptr();
        for b in 0..nb {
            let p = p0.add(b * gb);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(AHEAD) as *const i8);
            let dv = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
            let mv = if MIN { _mm256_cvtph_ps(_mm_loadu_si128(p.add(16) as *const __m128i)) } else { _mm256_mul_ps(dv, _mm256_set1_ps(-8.0)) };
            // c[L] = low nibbles (elements 4L..), c[4+L] = high (16+4L..): word order.
            let mut c = [_mm256_setzero_si256(); 8];
            for l in 0..4 {
                let v = _mm256_loadu_si256(p.add(co + 32 * l) as *const __m256i);
                c[l] = _mm256_and_si256(v, m4);
                c[4 + l] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
            accumulate(&c, dv, mv, &x, b, &mut ad, &mut am);
        }
        finish(ad, am)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    pub unsafe fn q8<const T: usize>(g: &[u8], nb: usize, x: [&[BlockQ8]; T]) -> [[f32; ROWS]; T] {
        let mut ad = [_mm256_setzero_ps(); T];
        let mut am = [_mm256_setzero_ps(); T];
        let p0 = g.as_ptr();
        for b in 0..nb {
            let p = p0.add(b * 272);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(AHEAD) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(AHEAD + 64) as *const i8);
            let dv = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
            let mv = _mm256_mul_ps(dv, _mm256_set1_ps(-128.0));
            let c: [__m256i; 8] = std::array::from_fn(|l| _mm256_loadu_si256(p.add(16 + 32 * l) as *const __m256i));
            accumulate(&c, dv, mv, &x, b, &mut ad, &mut am);
        }
        finish(ad, am)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::kernels::q8::quantize_row;
    use crate::cpu::kernels::scalar;
    use crate::format::quant::random_blocks;

    fn random_row(n: usize, seed: u64) -> Vec<BlockQ8> {
        let mut s = seed | 1;
        let x: Vec<f32> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        let mut q = vec![BlockQ8::ZERO; n / 32];
        quantize_row(&x, &mut q);
        q
    }

    /// Interleaving changes only the order of the float additions (the SIMD kernel
    /// keeps the offset term apart): relative to the row's magnitude, f32 rounding.
    /// Between tile sizes the SIMD results must be identical.
    const TOL_REORDER: f32 = 1e-5;

    fn close(got: f32, want: f32, what: &str) {
        assert!((got - want).abs() <= TOL_REORDER * want.abs().max(1.0), "{what}: got {got}, want {want}");
    }

    #[test]
    fn packed_twin_equals_ggml_scalar_per_row() {
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let (n_in, n_out) = (96, 16);
            let w = random_blocks(ty, n_in * n_out, 3);
            let packed = pack(ty, &w, n_in, n_out);
            let x = random_row(n_in, 8);
            let (rb, gbytes) = (ty.row_bytes(n_in), ty.row_bytes(n_in) * ROWS);
            for g in 0..n_out / ROWS {
                let got = dot_scalar(ty, &packed[g * gbytes..][..gbytes], &x);
                for r in 0..ROWS {
                    let o = g * ROWS + r;
                    let row = &w[o * rb..][..rb];
                    let want = match ty {
                        GgmlType::Q4_0 => scalar::dot_q4_0(row, &x),
                        GgmlType::Q4_1 => scalar::dot_q4_1(row, &x),
                        _ => scalar::dot_q8_0(row, &x),
                    };
                    close(got[r], want, &format!("{}: first bad row {o}", ty.name()));
                }
            }
        }
    }

    #[test]
    fn simd_equals_packed_twin() {
        if !available() {
            eprintln!("no AVX-512 VNNI on this CPU: the interleaved SIMD kernels are not used here");
            return;
        }
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let n_in = 32 * 19;
            let nb = n_in / 32;
            let w = random_blocks(ty, n_in * ROWS * 2, 21);
            let packed = pack(ty, &w, n_in, ROWS * 2);
            let gbytes = ty.row_bytes(n_in) * ROWS;
            let xs: Vec<Vec<BlockQ8>> = (0..8).map(|k| random_row(n_in, 50 + k)).collect();
            for g in 0..2 {
                let grp = &packed[g * gbytes..][..gbytes];
                let one = dot::<1>(ty, grp, nb, [&xs[0]]);
                let four = dot::<4>(ty, grp, nb, std::array::from_fn(|k| xs[k].as_slice()));
                let eight = dot::<8>(ty, grp, nb, std::array::from_fn(|k| xs[k].as_slice()));
                for t in 0..8 {
                    let want = dot_scalar(ty, grp, &xs[t]);
                    for r in 0..ROWS {
                        let what = |k: usize| format!("{}: T={k}, first bad (group {g}, token {t}, row {r})", ty.name());
                        close(eight[t][r], want[r], &what(8));
                        if t < 4 {
                            assert_eq!(four[t][r].to_bits(), eight[t][r].to_bits(), "{}", what(4));
                        }
                        if t == 0 {
                            assert_eq!(one[0][r].to_bits(), eight[0][r].to_bits(), "{}", what(1));
                        }
                    }
                }
            }
        }
    }
}
