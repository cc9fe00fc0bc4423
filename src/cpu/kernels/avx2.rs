//! AVX2+FMA dot products for the hot weight types, several activation rows per pass so
//! each weight block is unpacked once and reused from registers (prefill), the same
//! code with one row for decode. Same math as `scalar.rs`, which tests hold them to.
//! Core trick: `maddubs` multiplies unsigned weight codes by signed 8-bit activations
//! and adds pairs to i16 (no overflow: 63·127·2 < 2^15), `madd` with ones widens to i32.

#![allow(clippy::missing_safety_doc)]

/// The kernels, instantiated twice: plain AVX2 (`maddubs` + `madd`) and AVX-VNNI,
/// whose `dpbusd` does both in one instruction. `target_feature` must be on every
/// function for the intrinsics to inline, hence a macro rather than a generic.
macro_rules! kernels {
    ($module:ident, $features:literal, $vnni:literal, $evex:literal) => {
        pub mod $module {
            use crate::cpu::kernels::q8::BlockQ8;
            use crate::cpu::kernels::scalar::scale_min_k4;
            use crate::format::quant::{iq4xs_scale, q3k_scales, KVALUES_IQ4NL};
            use std::arch::x86_64::*;

/// Block scales are f16; the F16C instruction converts one inline (the `half` crate's
/// runtime dispatch costs a call per block).
#[inline]
#[target_feature(enable = $features)]
unsafe fn f16_at(b: &[u8], i: usize) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(u16::from_le_bytes([b[i], b[i + 1]]) as i32)))
}

#[inline]
#[target_feature(enable = $features)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// 16 packed bytes → 32 nibbles: low nibbles in lanes 0..16, high in 16..32 (the
/// element order of Q4_0/Q4_1 blocks).
#[inline]
#[target_feature(enable = $features)]
unsafe fn nibbles16(p: *const u8) -> __m256i {
    let q = _mm_loadu_si128(p as *const __m128i);
    let m = _mm_set1_epi8(0x0F);
    _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m))
}

/// How far ahead to prefetch the weight stream: decode reads each weight once, from
/// DRAM, and the hardware prefetcher alone leaves the loads stalled.
const PREFETCH: usize = 768;

/// Runs `step(block, index, acc, off)` over `w`'s blocks of `bb` bytes, alternating
/// two accumulator sets so consecutive FMAs are independent; unrolled by hand so
/// the accumulators stay in registers.
#[inline(always)]
unsafe fn pairs<const R: usize>(w: &[u8], bb: usize, mut step: impl FnMut(&[u8], usize, &mut [__m256; R], &mut [f32; R])) -> ([__m256; R], [f32; R]) {
    let (mut a0, mut a1) = ([_mm256_setzero_ps(); R], [_mm256_setzero_ps(); R]);
    let (mut o0, mut o1) = ([0f32; R], [0f32; R]);
    let mut it = w.chunks_exact(2 * bb);
    let mut i = 0;
    for b2 in it.by_ref() {
        _mm_prefetch::<_MM_HINT_T0>(b2.as_ptr().wrapping_add(PREFETCH) as *const i8);
        step(&b2[..bb], i, &mut a0, &mut o0);
        step(&b2[bb..], i + 1, &mut a1, &mut o1);
        i += 2;
    }
    if !it.remainder().is_empty() {
        step(it.remainder(), i, &mut a0, &mut o0);
    }
    for r in 0..R {
        a0[r] = _mm256_add_ps(a0[r], a1[r]);
        o0[r] += o1[r];
    }
    (a0, o0)
}

/// Σ u·v over each group of 4 bytes (u unsigned, v signed) as 8 i32 lanes.
#[inline]
#[target_feature(enable = $features)]
unsafe fn udot_raw(u: __m256i, v: __m256i) -> __m256i {
    if $evex {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, v)
    } else if $vnni {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, v)
    } else {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, v), _mm256_set1_epi16(1))
    }
}

/// Σ u·x as 8 i32 lanes.
#[inline]
#[target_feature(enable = $features)]
unsafe fn udot(u: __m256i, x: &BlockQ8) -> __m256i {
    udot_raw(u, _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i))
}

#[target_feature(enable = $features)]
pub unsafe fn dot_q4_0<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (acc, off) = pairs::<R>(w, 18, |b, i, acc, off| {
        let d = f16_at(b, 0);
        let n = nibbles16(b.as_ptr().add(2));
        for r in 0..R {
            let xb = x[r].get_unchecked(i);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(n, xb)), _mm256_set1_ps(d * xb.d), acc[r]);
            off[r] += d * xb.s;
        }
    });
    std::array::from_fn(|r| hsum(acc[r]) - 8.0 * off[r])
}

#[target_feature(enable = $features)]
pub unsafe fn dot_q4_1<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (acc, off) = pairs::<R>(w, 20, |b, i, acc, off| {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let n = nibbles16(b.as_ptr().add(4));
        for r in 0..R {
            let xb = x[r].get_unchecked(i);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(n, xb)), _mm256_set1_ps(d * xb.d), acc[r]);
            off[r] += m * xb.s;
        }
    });
    std::array::from_fn(|r| hsum(acc[r]) + off[r])
}

/// The 32 fifth bits of a Q5_0/Q5_1 block (`qh` at `p`, a little-endian u32 whose bit
/// j belongs to element j) as 0x10 in byte j: byte j takes qh's byte j/8 and tests
/// its bit j%8 — the element order of `nibbles16`.
#[inline]
#[target_feature(enable = $features)]
unsafe fn fifth_bits(p: *const u8) -> __m256i {
    let qh = (p as *const u32).read_unaligned() as i32;
    let spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    let v = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10))
}

/// Q5_0 (22 B): as Q4_0 with the fifth bit, codes 0..32 offset by 16.
#[target_feature(enable = $features)]
pub unsafe fn dot_q5_0<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (acc, off) = pairs::<R>(w, 22, |b, i, acc, off| {
        let d = f16_at(b, 0);
        let n = _mm256_or_si256(nibbles16(b.as_ptr().add(6)), fifth_bits(b.as_ptr().add(2)));
        for r in 0..R {
            let xb = x[r].get_unchecked(i);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(n, xb)), _mm256_set1_ps(d * xb.d), acc[r]);
            off[r] += d * xb.s;
        }
    });
    std::array::from_fn(|r| hsum(acc[r]) - 16.0 * off[r])
}

/// Q5_1 (24 B): as Q4_1 with the fifth bit.
#[target_feature(enable = $features)]
pub unsafe fn dot_q5_1<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (acc, off) = pairs::<R>(w, 24, |b, i, acc, off| {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let n = _mm256_or_si256(nibbles16(b.as_ptr().add(8)), fifth_bits(b.as_ptr().add(4)));
        for r in 0..R {
            let xb = x[r].get_unchecked(i);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(udot(n, xb)), _mm256_set1_ps(d * xb.d), acc[r]);
            off[r] += m * xb.s;
        }
    });
    std::array::from_fn(|r| hsum(acc[r]) + off[r])
}

#[target_feature(enable = $features)]
pub unsafe fn dot_q8_0<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (acc, _) = pairs::<R>(w, 34, |b, i, acc, _| {
        let d = f16_at(b, 0);
        let wv = _mm256_loadu_si256(b.as_ptr().add(2) as *const __m256i);
        // maddubs needs an unsigned operand: |w| times x carrying w's sign.
        let aw = _mm256_sign_epi8(wv, wv);
        for r in 0..R {
            let xb = x[r].get_unchecked(i);
            let xv = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
            let p = udot_raw(aw, _mm256_sign_epi8(xv, wv));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * xb.d), acc[r]);
        }
    });
    std::array::from_fn(|r| hsum(acc[r]))
}

/// `a` in lanes 0..4 and `b` in lanes 4..8: per-lane factors for the K-quants with a
/// scale per 16 elements (a `udot_raw` lane k sums elements 4k..4k+4).
#[inline]
#[target_feature(enable = $features)]
unsafe fn halves(a: f32, b: f32) -> __m256 {
    _mm256_set_m128(_mm_set1_ps(b), _mm_set1_ps(a))
}

/// Q2_K (84 B per 256): sub-block s = 4h + j is bits 2j..2j+2 of the 32 code bytes of
/// half h; per 16 elements d·sc on Σ q·x and dmin·m on Σ x (scalar `dot_q2k`).
#[target_feature(enable = $features)]
pub unsafe fn dot_q2k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    let m3 = _mm256_set1_epi8(3);
    let ones8 = _mm256_set1_epi8(1);
    for (sb, b) in w.chunks_exact(84).enumerate() {
        _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH) as *const i8);
        let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
        for h in 0..2 {
            let q = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * h) as *const __m256i);
            for j in 0..4 {
                let s = 4 * h + j;
                let n = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), m3);
                let (ca, cb) = (b[2 * s], b[2 * s + 1]);
                let sc = halves(d * (ca & 15) as f32, d * (cb & 15) as f32);
                let mn = halves(dmin * (ca >> 4) as f32, dmin * (cb >> 4) as f32);
                for r in 0..R {
                    let xb = x[r].get_unchecked(sb * 8 + s);
                    let xv = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
                    let qx = _mm256_cvtepi32_ps(udot_raw(n, xv));
                    let sx = _mm256_cvtepi32_ps(udot_raw(ones8, xv));
                    let t = _mm256_fmsub_ps(qx, sc, _mm256_mul_ps(sx, mn));
                    acc[r] = _mm256_fmadd_ps(t, _mm256_set1_ps(xb.d), acc[r]);
                }
            }
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}

/// Q3_K (110 B per 256): Q2_K's codes with the high bit `s` of hmask[l] at bit 2 give
/// 0..8 = value + 4; the 4 comes off through Σ x, per 16 elements (scalar `dot_q3k`).
#[target_feature(enable = $features)]
pub unsafe fn dot_q3k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    let m3 = _mm256_set1_epi8(3);
    let ones8 = _mm256_set1_epi8(1);
    for (sb, b) in w.chunks_exact(110).enumerate() {
        _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH) as *const i8);
        let d = f16_at(b, 108);
        let scales = q3k_scales(b);
        let hm = _mm256_loadu_si256(b.as_ptr() as *const __m256i);
        for h in 0..2 {
            let q = _mm256_loadu_si256(b.as_ptr().add(32 + 32 * h) as *const __m256i);
            for j in 0..4 {
                let s = 4 * h + j;
                let lo = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), m3);
                let hi = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(s as i32)), ones8);
                let n = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2));
                let sc = halves(d * scales[2 * s] as f32, d * scales[2 * s + 1] as f32);
                for r in 0..R {
                    let xb = x[r].get_unchecked(sb * 8 + s);
                    let xv = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
                    let v = _mm256_sub_epi32(udot_raw(n, xv), _mm256_slli_epi32(udot_raw(ones8, xv), 2));
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(sc, _mm256_set1_ps(xb.d)), acc[r]);
                }
            }
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}

/// IQ4_NL/IQ4_XS levels of the 16 nibble bytes at `p` (in `nibbles16`'s order): a byte
/// shuffle of `kvalues_iq4nl`, signed.
#[inline]
#[target_feature(enable = $features)]
unsafe fn iq4_levels(p: *const u8) -> __m256i {
    let table = _mm256_broadcastsi128_si256(_mm_loadu_si128(KVALUES_IQ4NL.as_ptr() as *const __m128i));
    _mm256_shuffle_epi8(table, nibbles16(p))
}

/// Σ v·x as 8 i32 lanes for signed weights `v` (|v| ≤ 127): |v| against x carrying v's
/// sign, as Q8_0 does.
#[inline]
#[target_feature(enable = $features)]
unsafe fn sdot(v: __m256i, x: &BlockQ8) -> __m256i {
    let xv = _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i);
    udot_raw(_mm256_sign_epi8(v, v), _mm256_sign_epi8(xv, v))
}

/// IQ4_NL (18 B per 32): Q4_0's nibbles through the level table.
#[target_feature(enable = $features)]
pub unsafe fn dot_iq4nl<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let (acc, _) = pairs::<R>(w, 18, |b, i, acc, _| {
        let d = f16_at(b, 0);
        let v = iq4_levels(b.as_ptr().add(2));
        for r in 0..R {
            let xb = x[r].get_unchecked(i);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sdot(v, xb)), _mm256_set1_ps(d * xb.d), acc[r]);
        }
    });
    std::array::from_fn(|r| hsum(acc[r]))
}

/// IQ4_XS (136 B per 256): eight IQ4_NL sub-blocks of 16 bytes at 8, scale d·(ls − 32).
#[target_feature(enable = $features)]
pub unsafe fn dot_iq4xs<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    for (sb, b) in w.chunks_exact(136).enumerate() {
        _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().wrapping_add(PREFETCH) as *const i8);
        let d = f16_at(b, 0);
        for s in 0..8 {
            let v = iq4_levels(b.as_ptr().add(8 + 16 * s));
            let dl = d * iq4xs_scale(b, s) as f32;
            for r in 0..R {
                let xb = x[r].get_unchecked(sb * 8 + s);
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sdot(v, xb)), _mm256_set1_ps(dl * xb.d), acc[r]);
            }
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}

/// Q4_K and Q5_K share the sub-block structure: 8 sub-blocks of 32 with 6-bit
/// (scale, min); `codes(c)` yields the two sub-blocks of chunk c as 32 unsigned codes.
#[inline]
#[target_feature(enable = $features)]
unsafe fn dot_kq<const R: usize>(w: &[u8], bb: usize, x: [&[BlockQ8]; R], codes: impl Fn(&[u8], usize) -> (__m256i, __m256i)) -> [f32; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    let mut off = [0f32; R];
    for (sb, b) in w.chunks_exact(bb).enumerate() {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        for c in 0..4 {
            let (lo, hi) = codes(b, c);
            for (j, n) in [(2 * c, lo), (2 * c + 1, hi)] {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                for r in 0..R {
                    let xb = x[r].get_unchecked(sb * 8 + j);
                    let p = _mm256_cvtepi32_ps(udot(n, xb));
                    acc[r] = _mm256_fmadd_ps(p, _mm256_set1_ps(d * sc as f32 * xb.d), acc[r]);
                    off[r] += dmin * m as f32 * xb.s;
                }
            }
        }
    }
    std::array::from_fn(|r| hsum(acc[r]) - off[r])
}

#[target_feature(enable = $features)]
pub unsafe fn dot_q4k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    dot_kq(w, 144, x, |b, c| {
        let q = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * c) as *const __m256i);
        let m = _mm256_set1_epi8(0x0F);
        (_mm256_and_si256(q, m), _mm256_and_si256(_mm256_srli_epi16(q, 4), m))
    })
}

#[target_feature(enable = $features)]
pub unsafe fn dot_q5k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    dot_kq(w, 176, x, |b, c| {
        let q = _mm256_loadu_si256(b.as_ptr().add(48 + 32 * c) as *const __m256i);
        let qh = _mm256_loadu_si256(b.as_ptr().add(16) as *const __m256i);
        let m = _mm256_set1_epi8(0x0F);
        let one = _mm256_set1_epi8(1);
        // Fifth bit: bit 2c of qh for the low-nibble sub-block, 2c+1 for the high one.
        let bit = |k: i32| {
            let s = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(k));
            _mm256_slli_epi16(_mm256_and_si256(s, one), 4)
        };
        (_mm256_or_si256(_mm256_and_si256(q, m), bit(2 * c as i32)), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m), bit(2 * c as i32 + 1)))
    })
}

#[target_feature(enable = $features)]
pub unsafe fn dot_q6k<const R: usize>(w: &[u8], x: [&[BlockQ8]; R]) -> [f32; R] {
    let mut acc = [_mm256_setzero_ps(); R];
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(3);
    let ones8 = _mm256_set1_epi8(1);
    for (sb, b) in w.chunks_exact(210).enumerate() {
        let d = f16_at(b, 208);
        for h in 0..2 {
            let ql0 = _mm256_loadu_si256(b.as_ptr().add(64 * h) as *const __m256i);
            let ql1 = _mm256_loadu_si256(b.as_ptr().add(64 * h + 32) as *const __m256i);
            let qh = _mm256_loadu_si256(b.as_ptr().add(128 + 32 * h) as *const __m256i);
            for k in 0..4 {
                let lo = match k {
                    0 => _mm256_and_si256(ql0, m4),
                    1 => _mm256_and_si256(ql1, m4),
                    2 => _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                    _ => _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                };
                let hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)), m2);
                let n = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
                let (sa, sbb) = (b[192 + 8 * h + 2 * k] as i8 as f32, b[192 + 8 * h + 2 * k + 1] as i8 as f32);
                for r in 0..R {
                    let xb = x[r].get_unchecked(sb * 8 + 4 * h + k);
                    let xv = _mm256_loadu_si256(xb.qs.as_ptr() as *const __m256i);
                    // Σ (n − 32)·x per 16-lane half: i32 lanes 0..4 are elements
                    // 0..16 (scale sa), lanes 4..8 elements 16..32 (scale sb).
                    let nx = udot_raw(n, xv);
                    let sx = udot_raw(ones8, xv);
                    let v = _mm256_sub_epi32(nx, _mm256_slli_epi32(sx, 5));
                    let s = d * xb.d;
                    let scale = _mm256_setr_ps(s * sa, s * sa, s * sa, s * sa, s * sbb, s * sbb, s * sbb, s * sbb);
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), scale, acc[r]);
                }
            }
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}
        }
    };
}

kernels!(plain, "avx2,fma,f16c", false, false);
kernels!(vnni, "avx2,fma,f16c,avxvnni", true, false);
kernels!(vnni512, "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni", false, true);
