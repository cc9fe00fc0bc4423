//! Portable dot products of one quantized weight row with activation rows in
//! [`BlockQ8`] form — the reference for the SIMD versions and the path on targets
//! without them. Block layouts: ggml `ggml-common.h` (see `crate::format::quant`).
//! Written with fixed-length inner loops over i32 so LLVM vectorizes them (simd128).

use super::q8::BlockQ8;
use crate::format::quant::{iq4_values, iq4xs_scale, k2_codes, q2k_scale_min, q3k_scales, q3k_values, q5_values};
use half::f16;

#[inline]
pub(crate) fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Σ n·x over 32 unsigned weights `n` against one activation block.
#[inline]
fn idot_u(n: &[u8; 32], x: &[i8; 32]) -> i32 {
    let mut s = 0i32;
    for l in 0..32 {
        s += n[l] as i32 * x[l] as i32;
    }
    s
}

pub fn dot_q4_0(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xb) in w.chunks_exact(18).zip(x) {
        let mut n = [0u8; 32];
        for j in 0..16 {
            n[j] = b[2 + j] & 0xF;
            n[j + 16] = b[2 + j] >> 4;
        }
        acc += f16_at(b, 0) * (xb.d * idot_u(&n, &xb.qs) as f32 - 8.0 * xb.s);
    }
    acc
}

pub fn dot_q4_1(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xb) in w.chunks_exact(20).zip(x) {
        let mut n = [0u8; 32];
        for j in 0..16 {
            n[j] = b[4 + j] & 0xF;
            n[j + 16] = b[4 + j] >> 4;
        }
        acc += f16_at(b, 0) * xb.d * idot_u(&n, &xb.qs) as f32 + f16_at(b, 2) * xb.s;
    }
    acc
}

/// Q5_0: d·(q − 16) per element, so Σ w·x = d·(x.d·Σ q·qx − 16·x.s).
pub fn dot_q5_0(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xb) in w.chunks_exact(22).zip(x) {
        let n = q5_values(b, 2);
        acc += f16_at(b, 0) * (xb.d * idot_u(&n, &xb.qs) as f32 - 16.0 * xb.s);
    }
    acc
}

/// Q5_1: d·q + m per element, so Σ w·x = d·x.d·Σ q·qx + m·x.s.
pub fn dot_q5_1(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xb) in w.chunks_exact(24).zip(x) {
        let n = q5_values(b, 4);
        acc += f16_at(b, 0) * xb.d * idot_u(&n, &xb.qs) as f32 + f16_at(b, 2) * xb.s;
    }
    acc
}

/// Σ v·x over 32 signed weights `v` against one activation block.
#[inline]
fn idot_i(v: &[i8; 32], x: &[i8; 32]) -> i32 {
    let mut s = 0i32;
    for l in 0..32 {
        s += v[l] as i32 * x[l] as i32;
    }
    s
}

/// (Σ n·x over elements 0..16, over 16..32) for 32 codes `n`: the K-quants with a
/// scale per 16 elements.
#[inline]
fn idot_halves<T: Copy + Into<i32>>(n: &[T; 32], x: &[i8; 32]) -> (i32, i32) {
    let (mut a, mut b) = (0i32, 0i32);
    for l in 0..16 {
        a += n[l].into() * x[l] as i32;
        b += n[l + 16].into() * x[l + 16] as i32;
    }
    (a, b)
}

/// Q2_K (ggml `block_q2_K`, 84 B per 256): sub-block s (activation block s) has 2-bit
/// codes q and a 4-bit (scale, min) per half of 16, so
/// Σ w·x = x.d·(d·Σ_half sc·Σ q·qx − dmin·Σ_half m·Σ qx), both inner sums in integers.
pub fn dot_q2k(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xs) in w.chunks_exact(84).zip(x.chunks_exact(8)) {
        let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
        for s in 0..8 {
            let xb = &xs[s];
            let (qa, qb) = idot_halves(&k2_codes(b, 16, s), &xb.qs);
            let (xa, xbs) = idot_halves(&[1u8; 32], &xb.qs);
            let ((sa, ma), (sb, mb)) = (q2k_scale_min(b, 2 * s), q2k_scale_min(b, 2 * s + 1));
            let isc = sa as i32 * qa + sb as i32 * qb;
            let imn = ma as i32 * xa + mb as i32 * xbs;
            acc += xb.d * (d * isc as f32 - dmin * imn as f32);
        }
    }
    acc
}

/// Q3_K (ggml `block_q3_K`, 110 B per 256): signed values −4..4 and a 6-bit scale
/// (less 32) per half of 16: Σ w·x = d·x.d·Σ_half sc·Σ v·qx.
pub fn dot_q3k(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xs) in w.chunks_exact(110).zip(x.chunks_exact(8)) {
        let d = f16_at(b, 108);
        let sc = q3k_scales(b);
        for s in 0..8 {
            let xb = &xs[s];
            let (da, db) = idot_halves(&q3k_values(b, s), &xb.qs);
            acc += d * xb.d * (sc[2 * s] as i32 * da + sc[2 * s + 1] as i32 * db) as f32;
        }
    }
    acc
}

/// IQ4_NL (ggml `block_iq4_nl`, 18 B per 32): Σ w·x = d·x.d·Σ kvalues[q]·qx.
pub fn dot_iq4nl(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xb) in w.chunks_exact(18).zip(x) {
        acc += f16_at(b, 0) * xb.d * idot_i(&iq4_values(&b[2..18]), &xb.qs) as f32;
    }
    acc
}

/// IQ4_XS (ggml `block_iq4_xs`, 136 B per 256): IQ4_NL sub-blocks with a 6-bit scale
/// (less 32) each under one f16 d: Σ w·x = d·x.d·ls·Σ kvalues[q]·qx per sub-block.
pub fn dot_iq4xs(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xs) in w.chunks_exact(136).zip(x.chunks_exact(8)) {
        let d = f16_at(b, 0);
        for s in 0..8 {
            let xb = &xs[s];
            let v = iq4_values(&b[8 + 16 * s..24 + 16 * s]);
            acc += d * xb.d * (iq4xs_scale(b, s) * idot_i(&v, &xb.qs)) as f32;
        }
    }
    acc
}

pub fn dot_q8_0(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xb) in w.chunks_exact(34).zip(x) {
        let mut s = 0i32;
        for l in 0..32 {
            s += b[2 + l] as i8 as i32 * xb.qs[l] as i32;
        }
        acc += f16_at(b, 0) * xb.d * s as f32;
    }
    acc
}

/// The 6-bit (scale, min) of sub-block `j` of a Q4_K/Q5_K block (ggml `get_scale_min_k4`).
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

pub fn dot_q4k(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xs) in w.chunks_exact(144).zip(x.chunks_exact(8)) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        for c in 0..4 {
            let q = &b[16 + 32 * c..48 + 32 * c];
            let (mut lo, mut hi) = ([0u8; 32], [0u8; 32]);
            for l in 0..32 {
                lo[l] = q[l] & 0xF;
                hi[l] = q[l] >> 4;
            }
            for (j, n) in [(2 * c, &lo), (2 * c + 1, &hi)] {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                let xb = &xs[j];
                acc += d * sc as f32 * xb.d * idot_u(n, &xb.qs) as f32 - dmin * m as f32 * xb.s;
            }
        }
    }
    acc
}

pub fn dot_q5k(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xs) in w.chunks_exact(176).zip(x.chunks_exact(8)) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let qh = &b[16..48];
        for c in 0..4 {
            let q = &b[48 + 32 * c..80 + 32 * c];
            let (mut lo, mut hi) = ([0u8; 32], [0u8; 32]);
            for l in 0..32 {
                lo[l] = (q[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4);
                hi[l] = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
            }
            for (j, n) in [(2 * c, &lo), (2 * c + 1, &hi)] {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                let xb = &xs[j];
                acc += d * sc as f32 * xb.d * idot_u(n, &xb.qs) as f32 - dmin * m as f32 * xb.s;
            }
        }
    }
    acc
}

/// The 32 unsigned 6-bit values of Q6_K quarter `k` (elements 32k..32k+32) of half
/// `h`: low 4 bits from `ql` (bytes 0..32 or 32..64, low or high nibble), high 2 bits
/// from `qh` at bit 2k; scales `sc[2k]` and `sc[2k+1]` cover its two halves of 16.
#[inline]
pub fn q6k_quarter(b: &[u8], h: usize, k: usize) -> [u8; 32] {
    let ql = &b[64 * h..64 * h + 64];
    let qh = &b[128 + 32 * h..160 + 32 * h];
    let mut n = [0u8; 32];
    for l in 0..32 {
        let lo4 = match k {
            0 => ql[l] & 0xF,
            1 => ql[l + 32] & 0xF,
            2 => ql[l] >> 4,
            _ => ql[l + 32] >> 4,
        };
        n[l] = lo4 | (((qh[l] >> (2 * k)) & 3) << 4);
    }
    n
}

pub fn dot_q6k(w: &[u8], x: &[BlockQ8]) -> f32 {
    let mut acc = 0f32;
    for (b, xs) in w.chunks_exact(210).zip(x.chunks_exact(8)) {
        let d = f16_at(b, 208);
        for h in 0..2 {
            for k in 0..4 {
                let n = q6k_quarter(b, h, k);
                let xb = &xs[4 * h + k];
                let (sa, sb) = (b[192 + 8 * h + 2 * k] as i8 as i32, b[192 + 8 * h + 2 * k + 1] as i8 as i32);
                let (mut da, mut db, mut xa, mut xbs) = (0i32, 0i32, 0i32, 0i32);
                for l in 0..16 {
                    da += n[l] as i32 * xb.qs[l] as i32;
                    xa += xb.qs[l] as i32;
                    db += n[l + 16] as i32 * xb.qs[l + 16] as i32;
                    xbs += xb.qs[l + 16] as i32;
                }
                acc += d * xb.d * (sa * (da - 32 * xa) + sb * (db - 32 * xbs)) as f32;
            }
        }
    }
    acc
}
