//! ggml tensor types and their block layouts, with plain-Rust dequantization.
//!
//! Layouts follow ggml's `ggml-common.h` (`block_q4_0`, `block_q4_1`, `block_q5_0`,
//! `block_q5_1`, `block_q8_0`,
//! `block_q4_K`, `block_q5_K`, `block_q6_K`); sizes are pinned below at compile time.
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

const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ6K>() == 210);

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
    Q4K = 12,
    Q5K = 13,
    Q6K = 14,
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
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            30 => BF16,
            _ => return None,
        })
    }
    /// Elements per block.
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 => 32,
            Q4K | Q5K | Q6K => QK_K,
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
            Q4K => size_of::<BlockQ4K>(),
            Q5K => size_of::<BlockQ5K>(),
            Q6K => size_of::<BlockQ6K>(),
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
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
        }
    }
}

/// Every type Precis reads, in ggml id order.
pub const SUPPORTED: [GgmlType; 11] = {
    use GgmlType::*;
    [F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4K, Q5K, Q6K, BF16]
};

/// "F32, F16, Q4_0, …": the types Precis reads, for messages.
pub fn supported_names() -> String {
    SUPPORTED.map(GgmlType::name).join(", ")
}

/// ggml's name for a type id Precis does not read (`enum ggml_type` in ggml.h), so a
/// refusal names it: Q2_K and Q3_K files are common.
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
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
                    GgmlType::Q4K => dequant_q4k(b, y),
                    GgmlType::Q5K => dequant_q5k(b, y),
                    GgmlType::Q6K => dequant_q6k(b, y),
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
        assert_eq!(ggml_type_name(6), Some("Q5_0"));
        assert_eq!(ggml_type_name(99), None);
        assert!(supported_names().contains("Q5_1"));
    }

    #[test]
    fn row_bytes_per_type() {
        assert_eq!(GgmlType::Q4K.row_bytes(4096), 16 * 144);
        assert_eq!(GgmlType::Q8_0.row_bytes(64), 68);
        assert_eq!(GgmlType::BF16.row_bytes(3), 6);
    }
}
