//! ggml tensor types and their block layouts, with plain-Rust dequantization.
//!
//! Layouts follow ggml's `ggml-common.h` (`block_q4_0`, `block_q4_1`, `block_q5_0`,
//! `block_q5_1`, `block_q8_0`, `block_q2_K`, `block_q3_K`, `block_q4_K`, `block_q5_K`,
//! `block_q6_K`, `block_iq4_nl`, `block_iq4_xs`); sizes are pinned below at compile time.
//! Dequantization follows ggml-quants.c `dequantize_row_<type>`.
//! These dequantizers are the slow twins every fast path (the CPU's integer dot
//! products in cpu/kernels, the WGSL decoders) is tested against, and they back the embedding row lookup.

use half::{bf16, f16};
use std::mem::size_of;

/// Elements per super-block of the K-quants.
pub const QK_K: usize = 256;

#[repr(C)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; 16],
}
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; 16],
}
/// ggml `block_q5_0`: f16 d, 32 fifth bits `qh` (a little-endian u32: bit j belongs to
/// element j), 16 bytes of low nibbles (elements 0..16 low, 16..32 high); x = d·(q − 16).
/// `qh` is bytes, as in ggml, so the block packs to 22 bytes with no padding.
#[repr(C)]
pub struct BlockQ5_0 {
    pub d: f16,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}
/// ggml `block_q5_1`: f16 d and m, then Q5_0's `qh` and `qs`; x = d·q + m.
#[repr(C)]
pub struct BlockQ5_1 {
    pub d: f16,
    pub m: f16,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; 32],
}
/// ggml `block_q2_K` (84 B per 256): 16 scale bytes, one per 16 elements (low nibble
/// the scale, high nibble the min), 64 bytes of 2-bit codes, then f16 d and dmin;
/// x = d·sc·q − dmin·m. Code of element 128h + 32j + l: bits 2j..2j+2 of qs[32h + l].
#[repr(C)]
pub struct BlockQ2K {
    pub scales: [u8; 16],
    pub qs: [u8; 64],
    pub d: f16,
    pub dmin: f16,
}
/// ggml `block_q3_K` (110 B per 256): 32 bytes `hmask` (bit b of byte l: the high bit of
/// element 32b + l), Q2_K's 64 bytes of 2-bit codes, 12 bytes of sixteen 6-bit scales,
/// f16 d; x = d·(sc − 32)·(q − 4·(1 − high bit)).
#[repr(C)]
pub struct BlockQ3K {
    pub hmask: [u8; 32],
    pub qs: [u8; 64],
    pub scales: [u8; 12],
    pub d: f16,
}
#[repr(C)]
pub struct BlockQ4K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}
#[repr(C)]
pub struct BlockQ5K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}
#[repr(C)]
pub struct BlockQ6K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: f16,
}

/// ggml `block_iq4_nl` (18 B per 32): f16 d, 16 bytes of nibbles in Q4_0's order (low:
/// elements 0..16, high: 16..32), each an index into [`KVALUES_IQ4NL`]; x = d·kvalues[q].
#[repr(C)]
pub struct BlockIQ4NL {
    pub d: f16,
    pub qs: [u8; 16],
}
/// ggml `block_iq4_xs` (136 B per 256): f16 d, a u16 of the eight sub-blocks' high scale
/// bits (2 each), 4 bytes of their low scale nibbles, then per 32-element sub-block 16
/// bytes of IQ4_NL nibbles; x = d·(ls − 32)·kvalues[q].
#[repr(C)]
pub struct BlockIQ4XS {
    pub d: f16,
    pub scales_h: u16,
    pub scales_l: [u8; 4],
    pub qs: [u8; 128],
}

/// ggml's `kvalues_iq4nl` (ggml-common.h): the sixteen non-uniform levels IQ4_NL and
/// IQ4_XS nibbles index.
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ2K>() == 84);
const _: () = assert!(size_of::<BlockQ3K>() == 110);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ6K>() == 210);
const _: () = assert!(size_of::<BlockIQ4NL>() == 18);
const _: () = assert!(size_of::<BlockIQ4XS>() == 136);

/// The ggml types Precis reads. Discriminants are ggml's `enum ggml_type` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2K = 10,
    Q3K = 11,
    Q4K = 12,
    Q5K = 13,
    Q6K = 14,
    IQ4NL = 20,
    IQ4XS = 23,
    BF16 = 30,
}

impl GgmlType {
    pub fn from_u32(v: u32) -> Option<Self> {
        use GgmlType::*;
        Some(match v {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            20 => IQ4NL,
            23 => IQ4XS,
            30 => BF16,
            _ => return None,
        })
    }
    /// Elements per block.
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | IQ4NL => 32,
            Q2K | Q3K | Q4K | Q5K | Q6K | IQ4XS => QK_K,
        }
    }
    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        use GgmlType::*;
        match self {
            F32 => 4,
            F16 | BF16 => 2,
            Q4_0 => size_of::<BlockQ4_0>(),
            Q4_1 => size_of::<BlockQ4_1>(),
            Q5_0 => size_of::<BlockQ5_0>(),
            Q5_1 => size_of::<BlockQ5_1>(),
            Q8_0 => size_of::<BlockQ8_0>(),
            Q2K => size_of::<BlockQ2K>(),
            Q3K => size_of::<BlockQ3K>(),
            Q4K => size_of::<BlockQ4K>(),
            Q5K => size_of::<BlockQ5K>(),
            Q6K => size_of::<BlockQ6K>(),
            IQ4NL => size_of::<BlockIQ4NL>(),
            IQ4XS => size_of::<BlockIQ4XS>(),
        }
    }
    /// Bytes taken by `n` elements (`n` a multiple of the block size).
    pub fn row_bytes(self, n: usize) -> usize {
        n / self.block_size() * self.block_bytes()
    }
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            BF16 => "BF16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            IQ4NL => "IQ4_NL",
            IQ4XS => "IQ4_XS",
        }
    }
}

/// Every type Precis reads, in ggml id order.
pub const SUPPORTED: [GgmlType; 15] = {
    use GgmlType::*;
    [F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2K, Q3K, Q4K, Q5K, Q6K, IQ4NL, IQ4XS, BF16]
};

/// "F32, F16, Q4_0, …": the types Precis reads, for messages.
pub fn supported_names() -> String {
    SUPPORTED.map(GgmlType::name).join(", ")
}

/// ggml's name for a type id Precis does not read (`enum ggml_type` in ggml.h), so a
/// refusal names it: IQ2/IQ3 files are common.
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        9 => "Q8_1",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        21 => "IQ3_S",
        22 => "IQ2_S",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        _ => return GgmlType::from_u32(id).map(GgmlType::name),
    })
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Unpacks the 6-bit (scale, min) pair `j` of a Q4_K/Q5_K block's 12 scale bytes
/// (ggml `get_scale_min_k4`): pairs 0..4 sit in the low 6 bits of bytes 0..8, pairs
/// 4..8 are split between the nibbles of bytes 8..12 and the top 2 bits of bytes 0..8.
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
    } else {
        let sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (sc as f32, m as f32)
    }
}

/// Dequantizes `out.len()` elements from `src` (which holds exactly those elements'
/// blocks). Panics only if the caller's lengths disagree — callers check shapes.
pub fn dequantize(ty: GgmlType, src: &[u8], out: &mut [f32]) {
    assert_eq!(src.len(), ty.row_bytes(out.len()), "dequantize: {} bytes for {} {:?} elements", src.len(), out.len(), ty);
    let (bs, bb) = (ty.block_size(), ty.block_bytes());
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes(c.try_into().unwrap());
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        _ => {
            for (y, b) in out.chunks_exact_mut(bs).zip(src.chunks_exact(bb)) {
                match ty {
                    GgmlType::Q4_0 => dequant_q4_0(b, y),
                    GgmlType::Q4_1 => dequant_q4_1(b, y),
                    GgmlType::Q5_0 => dequant_q5_0(b, y),
                    GgmlType::Q5_1 => dequant_q5_1(b, y),
                    GgmlType::Q8_0 => dequant_q8_0(b, y),
                    GgmlType::Q2K => dequant_q2k(b, y),
                    GgmlType::Q3K => dequant_q3k(b, y),
                    GgmlType::Q4K => dequant_q4k(b, y),
                    GgmlType::Q5K => dequant_q5k(b, y),
                    GgmlType::Q6K => dequant_q6k(b, y),
                    GgmlType::IQ4NL => dequant_iq4nl(b, y),
                    GgmlType::IQ4XS => dequant_iq4xs(b, y),
                    _ => unreachable!(),
                }
            }
        }
    }
}

/// Dequantizes a whole tensor to a fresh vector.
pub fn dequantize_vec(ty: GgmlType, src: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize(ty, src, &mut out);
    out
}

// Q4_0: 32 weights = d * (nibble - 8); low nibbles are elements 0..16, high 16..32.
fn dequant_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = ((q & 0xF) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

// Q4_1: 32 weights = d * nibble + m.
fn dequant_q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for j in 0..16 {
        let q = b[4 + j];
        y[j] = (q & 0xF) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// The 32 unsigned 5-bit values of a Q5_0/Q5_1 block whose `qh` starts at byte `at`
/// (ggml `dequantize_row_q5_0`): element j < 16 takes the low nibble of qs[j] and bit j
/// of qh; element j + 16 the high nibble of qs[j] and bit j + 16.
pub fn q5_values(b: &[u8], at: usize) -> [u8; 32] {
    let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let qs = &b[at + 4..at + 20];
    let mut n = [0u8; 32];
    for j in 0..16 {
        n[j] = (qs[j] & 0xF) | ((((qh >> j) & 1) as u8) << 4);
        n[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    n
}

// Q5_0: 32 weights = d * (q - 16).
fn dequant_q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (y, q) in y.iter_mut().zip(q5_values(b, 2)) {
        *y = (q as i32 - 16) as f32 * d;
    }
}

// Q5_1: 32 weights = d * q + m.
fn dequant_q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (y, q) in y.iter_mut().zip(q5_values(b, 4)) {
        *y = q as f32 * d + m;
    }
}

// Q8_0: 32 weights = d * int8.
fn dequant_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for j in 0..32 {
        y[j] = b[2 + j] as i8 as f32 * d;
    }
}

/// The 32 two-bit codes (0..4) of 32-element sub-block `s` (0..8) of a Q2_K or Q3_K
/// block whose `qs` starts at byte `at` (ggml `dequantize_row_q2_K`, `_q3_K`): element
/// 32s + l takes bits 2(s % 4).. of qs[32(s / 4) + l].
#[inline]
pub fn k2_codes(b: &[u8], at: usize, s: usize) -> [u8; 32] {
    let q = &b[at + 32 * (s / 4)..][..32];
    let shift = 2 * (s % 4);
    let mut n = [0u8; 32];
    for l in 0..32 {
        n[l] = (q[l] >> shift) & 3;
    }
    n
}

/// Q2_K's (scale, min) nibbles of 16-element group `k` (0..16).
#[inline]
pub fn q2k_scale_min(b: &[u8], k: usize) -> (u8, u8) {
    (b[k] & 0xF, b[k] >> 4)
}

// Q2_K: per 16 elements, d·sc·q − dmin·m with 4-bit sc and m.
fn dequant_q2k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
    for s in 0..8 {
        let n = k2_codes(b, 16, s);
        for half in 0..2 {
            let (sc, m) = q2k_scale_min(b, 2 * s + half);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            for l in 16 * half..16 * half + 16 {
                y[32 * s + l] = dl * n[l] as f32 - ml;
            }
        }
    }
}

/// The sixteen 6-bit scales of a Q3_K block, minus 32 (ggml `dequantize_row_q3_K`'s
/// unpacking of its 12 bytes at 96): scale k's low 4 bits are the low nibble of byte k
/// (k < 8) or the high nibble of byte k − 8; its high 2 bits are bits 2(k / 4).. of
/// byte 8 + k % 4.
#[inline]
pub fn q3k_scales(b: &[u8]) -> [i8; 16] {
    let s = &b[96..108];
    let mut out = [0i8; 16];
    for k in 0..16 {
        let lo = if k < 8 { s[k] & 0xF } else { s[k - 8] >> 4 };
        let hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
        out[k] = (lo | (hi << 4)) as i8 - 32;
    }
    out
}

/// The 32 signed 3-bit values (−4..4) of sub-block `s` of a Q3_K block: its two-bit
/// code, less 4 where bit `s` of hmask[l] is clear.
#[inline]
pub fn q3k_values(b: &[u8], s: usize) -> [i8; 32] {
    let n = k2_codes(b, 32, s);
    let mut v = [0i8; 32];
    for l in 0..32 {
        v[l] = n[l] as i8 - if (b[l] >> s) & 1 == 0 { 4 } else { 0 };
    }
    v
}

// Q3_K: per 16 elements, d·(sc − 32)·q with q in −4..4.
fn dequant_q3k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 108);
    let sc = q3k_scales(b);
    for s in 0..8 {
        let v = q3k_values(b, s);
        for half in 0..2 {
            let dl = d * sc[2 * s + half] as f32;
            for l in 16 * half..16 * half + 16 {
                y[32 * s + l] = dl * v[l] as f32;
            }
        }
    }
}

/// The 32 levels of 16 IQ4_NL nibble bytes (ggml `dequantize_row_iq4_nl`): low nibbles
/// are elements 0..16, high nibbles 16..32, each an index into [`KVALUES_IQ4NL`].
#[inline]
pub fn iq4_values(qs: &[u8]) -> [i8; 32] {
    let mut v = [0i8; 32];
    for j in 0..16 {
        v[j] = KVALUES_IQ4NL[(qs[j] & 0xF) as usize];
        v[j + 16] = KVALUES_IQ4NL[(qs[j] >> 4) as usize];
    }
    v
}

/// The 6-bit scale of IQ4_XS sub-block `s` (0..8), minus 32 (ggml
/// `dequantize_row_iq4_xs`): low 4 bits from nibble s % 2 of scales_l[s / 2], high 2
/// bits from bits 2s.. of the little-endian u16 scales_h.
#[inline]
pub fn iq4xs_scale(b: &[u8], s: usize) -> i32 {
    let lo = (b[4 + s / 2] >> (4 * (s % 2))) & 0xF;
    let hi = (u16::from_le_bytes([b[2], b[3]]) >> (2 * s)) & 3;
    (lo as u16 | (hi << 4)) as i32 - 32
}

// IQ4_NL: 32 weights = d * kvalues[nibble].
fn dequant_iq4nl(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (y, v) in y.iter_mut().zip(iq4_values(&b[2..18])) {
        *y = d * v as f32;
    }
}

// IQ4_XS: 8 sub-blocks of 32 weights = d * (ls - 32) * kvalues[nibble].
fn dequant_iq4xs(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for s in 0..8 {
        let dl = d * iq4xs_scale(b, s) as f32;
        for (y, v) in y[32 * s..32 * s + 32].iter_mut().zip(iq4_values(&b[8 + 16 * s..24 + 16 * s])) {
            *y = dl * v as f32;
        }
    }
}

// Q4_K: 8 sub-blocks of 32, each with a 6-bit scale and min; 64 elements share 32
// bytes of nibbles (low nibbles first sub-block, high nibbles the next).
fn dequant_q4k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qs = &b[16..144];
    for chunk in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let q = &qs[32 * chunk..32 * chunk + 32];
        let out = &mut y[64 * chunk..64 * chunk + 64];
        for l in 0..32 {
            out[l] = d * sc1 * (q[l] & 0xF) as f32 - dmin * m1;
            out[l + 32] = d * sc2 * (q[l] >> 4) as f32 - dmin * m2;
        }
    }
}

// Q5_K: as Q4_K with a fifth bit per element from `qh` (bit 2*chunk for the low-nibble
// half, bit 2*chunk+1 for the high-nibble half).
fn dequant_q5k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for chunk in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (u1, u2) = (1u8 << (2 * chunk), 1u8 << (2 * chunk + 1));
        let q = &qs[32 * chunk..32 * chunk + 32];
        let out = &mut y[64 * chunk..64 * chunk + 64];
        for l in 0..32 {
            let lo = (q[l] & 0xF) + if qh[l] & u1 != 0 { 16 } else { 0 };
            let hi = (q[l] >> 4) + if qh[l] & u2 != 0 { 16 } else { 0 };
            out[l] = d * sc1 * lo as f32 - dmin * m1;
            out[l + 32] = d * sc2 * hi as f32 - dmin * m2;
        }
    }
}

// Q6_K: 6-bit values (4 low bits in `ql`, 2 high bits in `qh`) minus 32, 16 int8
// scales of 16 elements each; laid out in two halves of 128 elements.
fn dequant_q6k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let out = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            out[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

/// Deterministic random-but-valid blocks for tests and benchmarks: scale fields get
/// small finite f16 values so products stay O(1); every other byte is random.
pub fn random_blocks(ty: GgmlType, n_elements: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut v: Vec<u8> = (0..ty.row_bytes(n_elements)).map(|_| next() as u8).collect();
    let scale = |next: &mut dyn FnMut() -> u64, lo: f32, hi: f32| {
        let u = (next() % 10_000) as f32 / 10_000.0;
        f16::from_f32(lo + (hi - lo) * u).to_le_bytes()
    };
    let bb = ty.block_bytes();
    for blk in v.chunks_exact_mut(bb) {
        match ty {
            GgmlType::F32 => blk.copy_from_slice(&((next() % 2000) as f32 / 1000.0 - 1.0).to_le_bytes()),
            GgmlType::F16 => blk.copy_from_slice(&scale(&mut next, -1.0, 1.0)),
            GgmlType::BF16 => blk.copy_from_slice(&bf16::from_f32((next() % 2000) as f32 / 1000.0 - 1.0).to_le_bytes()),
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => blk[0..2].copy_from_slice(&scale(&mut next, -0.02, 0.02)),
            GgmlType::Q4_1 | GgmlType::Q5_1 => {
                blk[0..2].copy_from_slice(&scale(&mut next, 0.0, 0.02));
                blk[2..4].copy_from_slice(&scale(&mut next, -0.15, 0.0));
            }
            GgmlType::Q4K | GgmlType::Q5K => {
                blk[0..2].copy_from_slice(&scale(&mut next, 0.0, 0.001));
                blk[2..4].copy_from_slice(&scale(&mut next, 0.0, 0.001));
            }
            GgmlType::Q6K => blk[208..210].copy_from_slice(&scale(&mut next, -0.0005, 0.0005)),
            GgmlType::Q2K => {
                blk[80..82].copy_from_slice(&scale(&mut next, 0.0, 0.002));
                blk[82..84].copy_from_slice(&scale(&mut next, 0.0, 0.001));
            }
            GgmlType::Q3K => blk[108..110].copy_from_slice(&scale(&mut next, -0.0005, 0.0005)),
            GgmlType::IQ4NL => blk[0..2].copy_from_slice(&scale(&mut next, -0.002, 0.002)),
            GgmlType::IQ4XS => blk[0..2].copy_from_slice(&scale(&mut next, -0.0002, 0.0002)),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_known_block() {
        // d = 2.0, byte j holds (low = j & 15, high = 15 - (j & 15)).
        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend((0..16u8).map(|j| (j & 15) | ((15 - (j & 15)) << 4)));
        let y = dequantize_vec(GgmlType::Q4_0, &b, 32);
        assert_eq!(y[0], -16.0);
        assert_eq!(y[15], 14.0);
        assert_eq!(y[16], 14.0);
        assert_eq!(y[31], -16.0);
    }

    /// gguf-py's `Q5_0.dequantize_blocks` / `Q5_1.dequantize_blocks` written out
    /// independently of `q5_values`: qh as a u32, `qh >> j & 1` for element j
    /// (j = 0..32), the low nibbles for elements 0..16 and the high ones for 16..32.
    fn q5_gguf_py(b: &[u8], has_min: bool) -> Vec<f32> {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let (m, at) = if has_min { (f16::from_le_bytes([b[2], b[3]]).to_f32(), 4) } else { (0.0, 2) };
        let qh = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        (0..32)
            .map(|j| {
                let nib = if j < 16 { b[at + 4 + j] & 15 } else { b[at + 4 + j - 16] >> 4 } as u32;
                let q = (nib | (((qh >> j) & 1) << 4)) as f32;
                if has_min { q * d + m } else { (q - 16.0) * d }
            })
            .collect()
    }

    #[test]
    fn q5_blocks_match_gguf_py_dequantization() {
        for (ty, has_min) in [(GgmlType::Q5_0, false), (GgmlType::Q5_1, true)] {
            let n = 32 * 7;
            let src = random_blocks(ty, n, 3);
            let got = dequantize_vec(ty, &src, n);
            for (bi, b) in src.chunks_exact(ty.block_bytes()).enumerate() {
                let want = q5_gguf_py(b, has_min);
                for (j, w) in want.iter().enumerate() {
                    let g = got[32 * bi + j];
                    assert!(g == *w, "{}: first bad index {} (block {bi}, element {j}): got {g}, want {w}", ty.name(), 32 * bi + j);
                }
            }
        }
    }

    #[test]
    fn q5_0_known_block() {
        // d = 0.5, qh = 0x8000_0001 (elements 0 and 31 get the fifth bit), qs[j] = j | (15 - j) << 4.
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend(0x8000_0001u32.to_le_bytes());
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = dequantize_vec(GgmlType::Q5_0, &b, 32);
        assert_eq!(y[0], (16.0 - 16.0) * 0.5);
        assert_eq!(y[1], (1.0 - 16.0) * 0.5);
        assert_eq!(y[16], (15.0 - 16.0) * 0.5);
        assert_eq!(y[31], (16.0 + 0.0 - 16.0) * 0.5);
        assert_eq!(y[15], (15.0 - 16.0) * 0.5);
    }

    /// Dequantizes `n` elements of `ty` and compares every one with `reference(block)`
    /// bit for bit (the same float operations in the same order), naming the first bad
    /// index.
    fn check_blocks(ty: GgmlType, n: usize, seed: u64, reference: impl Fn(&[u8]) -> Vec<f32>) {
        let src = random_blocks(ty, n, seed);
        let got = dequantize_vec(ty, &src, n);
        let bs = ty.block_size();
        for (bi, b) in src.chunks_exact(ty.block_bytes()).enumerate() {
            let want = reference(b);
            assert_eq!(want.len(), bs);
            for (j, w) in want.iter().enumerate() {
                let g = got[bs * bi + j];
                assert!(g.to_bits() == w.to_bits(), "{}: first bad index {} (block {bi}, element {j}): got {g}, want {w}", ty.name(), bs * bi + j);
            }
        }
    }

    fn f16_le(b: &[u8], at: usize) -> f32 {
        f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
    }

    /// gguf-py's `Q2_K.dequantize_blocks`, element by element: element e sits in half
    /// e / 128, shift group (e % 128) / 32, lane e % 32; group e / 16 gives the scale
    /// byte (scale low nibble, min high nibble).
    fn q2k_gguf_py(b: &[u8]) -> Vec<f32> {
        let (d, dmin) = (f16_le(b, 80), f16_le(b, 82));
        (0..256)
            .map(|e| {
                let (h, j, l) = (e / 128, (e % 128) / 32, e % 32);
                let q = (b[16 + 32 * h + l] >> (2 * j)) & 3;
                let sc = b[e / 16];
                (d * (sc & 15) as f32) * q as f32 - dmin * (sc >> 4) as f32
            })
            .collect()
    }

    /// gguf-py's `Q3_K.dequantize_blocks`: low scale nibbles from bytes 0..8 (k < 8 low,
    /// k ≥ 8 high), high scale bits from byte 8 + k % 4 shifted by 2·(k / 4); the hmask
    /// bit (e / 32) of byte e % 32, inverted, takes 4 off the 2-bit code.
    fn q3k_gguf_py(b: &[u8]) -> Vec<f32> {
        let d = f16_le(b, 108);
        let sc = &b[96..108];
        (0..256)
            .map(|e| {
                let k = e / 16;
                let lo = (sc[k % 8] >> (4 * (k / 8))) & 15;
                let hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
                let scale = (lo | (hi << 4)) as i32 - 32;
                let (h, j, l) = (e / 128, (e % 128) / 32, e % 32);
                let q2 = ((b[32 + 32 * h + l] >> (2 * j)) & 3) as i32;
                let high = ((b[e % 32] >> (e / 32)) & 1) as i32;
                (d * scale as f32) * (q2 - 4 * (high ^ 1)) as f32
            })
            .collect()
    }

    /// gguf-py's `IQ4_NL` / `IQ4_XS.dequantize_blocks`: nibble j of a 16-byte group is
    /// element j (low) or j + 16 (high); IQ4_XS's scale of sub-block s is nibble s % 2
    /// of byte 4 + s / 2 with bits 2s..2s+2 of the u16 at 2 on top.
    fn iq4_gguf_py(b: &[u8], xs: bool) -> Vec<f32> {
        const LEVELS: [f32; 16] = [-127., -104., -83., -65., -49., -35., -22., -10., 1., 13., 25., 38., 53., 69., 89., 113.];
        let d = f16_le(b, 0);
        let subs = if xs { 8 } else { 1 };
        (0..32 * subs)
            .map(|e| {
                let (s, j) = (e / 32, e % 32);
                let (dl, qs) = if xs {
                    let sh = u16::from_le_bytes([b[2], b[3]]);
                    let ls = ((b[4 + s / 2] >> (4 * (s % 2))) & 15) as i32 | ((((sh >> (2 * s)) & 3) as i32) << 4);
                    (d * (ls - 32) as f32, 8 + 16 * s)
                } else {
                    (d, 2)
                };
                let byte = b[qs + j % 16];
                dl * LEVELS[(if j < 16 { byte & 15 } else { byte >> 4 }) as usize]
            })
            .collect()
    }

    #[test]
    fn k_and_iq4_blocks_match_gguf_py_dequantization() {
        // Odd block counts, so no block pairs up by accident.
        check_blocks(GgmlType::Q2K, 256 * 5, 4, q2k_gguf_py);
        check_blocks(GgmlType::Q3K, 256 * 5, 5, q3k_gguf_py);
        check_blocks(GgmlType::IQ4NL, 32 * 9, 6, |b| iq4_gguf_py(b, false));
        check_blocks(GgmlType::IQ4XS, 256 * 3, 7, |b| iq4_gguf_py(b, true));
    }

    #[test]
    fn q2k_known_block() {
        // Scale byte k = (k & 15) | (1 << 4) (scale k, min 1); every code byte 0b11_10_01_00,
        // so group j of each half has code j; d = 0.5, dmin = 0.25.
        let mut b: Vec<u8> = (0..16u8).map(|k| k | (1 << 4)).collect();
        b.extend([0b11_10_01_00u8; 64]);
        b.extend(f16::from_f32(0.5).to_le_bytes());
        b.extend(f16::from_f32(0.25).to_le_bytes());
        let y = dequantize_vec(GgmlType::Q2K, &b, 256);
        assert_eq!(y[0], 0.5 * 0.0 * 0.0 - 0.25); // group 0: scale 0, code 0
        assert_eq!(y[16], 0.5 * 1.0 * 0.0 - 0.25); // group 1: scale 1, code 0
        assert_eq!(y[32], 0.5 * 2.0 * 1.0 - 0.25); // group 2, code 1
        assert_eq!(y[127], 0.5 * 7.0 * 3.0 - 0.25); // group 7, code 3
        assert_eq!(y[128 + 96], 0.5 * 14.0 * 3.0 - 0.25); // second half, group 14, code 3
    }

    #[test]
    fn q3k_known_block() {
        // hmask: only bit 0 of byte 0 and bit 7 of byte 31 set; codes all 0b01 (1);
        // scale bytes: low nibbles 0x21 pattern → scale 0 low 1, scale 8 low 2; byte 8
        // = 0b11 → scale 0 high bits 3: scale 0 = 1 | 48 = 49 → 17 after − 32.
        let mut b = vec![0u8; 110];
        b[0] = 1;
        b[31] = 0x80;
        for q in &mut b[32..96] {
            *q = 0b01_01_01_01;
        }
        b[96] = 0x21;
        b[104] = 0b11;
        b[108..110].copy_from_slice(&f16::from_f32(2.0).to_le_bytes());
        let y = dequantize_vec(GgmlType::Q3K, &b, 256);
        assert_eq!(y[0], 2.0 * 17.0 * 1.0); // high bit set: code 1
        assert_eq!(y[1], 2.0 * 17.0 * (1.0 - 4.0)); // high bit clear: 1 − 4
        assert_eq!(y[16], 2.0 * -32.0 * (1.0 - 4.0)); // scale 1: 0 − 32
        assert_eq!(y[128], 2.0 * (2.0 - 32.0) * (1.0 - 4.0)); // scale 8: low nibble 2
        assert_eq!(y[255], 2.0 * -32.0 * 1.0); // bit 7 of hmask[31]
    }

    #[test]
    fn iq4_known_blocks() {
        // IQ4_NL: d = 0.5, byte j = j | (15 - j) << 4.
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = dequantize_vec(GgmlType::IQ4NL, &b, 32);
        assert_eq!((y[0], y[8], y[15], y[16], y[31]), (-63.5, 0.5, 56.5, 56.5, -63.5));
        // IQ4_XS: d = 0.25; sub-block 0 scale 33 (low 1, high 2 → 1 | 32), sub-block 7
        // scale 0 (− 32); every nibble 8 (level 1).
        let mut b = f16::from_f32(0.25).to_le_bytes().to_vec();
        b.extend(0b10u16.to_le_bytes());
        b.extend([0x01, 0, 0, 0]);
        b.extend([0x88u8; 128]);
        let y = dequantize_vec(GgmlType::IQ4XS, &b, 256);
        assert_eq!((y[0], y[31], y[32], y[255]), (0.25, 0.25, -8.0, -8.0));
    }

    #[test]
    fn q4k_scale_unpacking_uses_high_bits() {
        let mut q = [0u8; 12];
        q[0] = 0b11_000001; // pair 0 scale 1; top bits feed pair 4's scale
        q[4] = 0b10_000010; // pair 0 min 2; top bits feed pair 4's min
        q[8] = 0x35; // pair 4: scale low nibble 5, min low nibble 3
        assert_eq!(scale_min_k4(0, &q), (1.0, 2.0));
        assert_eq!(scale_min_k4(4, &q), ((5 | (3 << 4)) as f32, (3 | (2 << 4)) as f32));
    }

    #[test]
    fn every_supported_type_round_trips_its_id_and_others_are_named() {
        for ty in SUPPORTED {
            assert_eq!(GgmlType::from_u32(ty as u32), Some(ty), "{}", ty.name());
        }
        assert_eq!(ggml_type_name(10), Some("Q2_K"));
        assert_eq!(ggml_type_name(23), Some("IQ4_XS"));
        assert_eq!(ggml_type_name(19), Some("IQ1_S"));
        assert_eq!(GgmlType::from_u32(19), None);
        assert_eq!(ggml_type_name(6), Some("Q5_0"));
        assert_eq!(ggml_type_name(99), None);
        assert!(supported_names().contains("Q5_1"));
        assert!(supported_names().contains("Q2_K, Q3_K, Q4_K") && supported_names().contains("IQ4_NL, IQ4_XS"));
    }

    #[test]
    fn row_bytes_per_type() {
        assert_eq!(GgmlType::Q4K.row_bytes(4096), 16 * 144);
        assert_eq!(GgmlType::Q8_0.row_bytes(64), 68);
        assert_eq!(GgmlType::BF16.row_bytes(3), 6);
        assert_eq!(GgmlType::Q2K.row_bytes(4096), 16 * 84);
        assert_eq!(GgmlType::Q3K.row_bytes(4096), 16 * 110);
        assert_eq!(GgmlType::IQ4NL.row_bytes(4096), 128 * 18);
        assert_eq!(GgmlType::IQ4XS.row_bytes(4096), 16 * 136);
    }
}
