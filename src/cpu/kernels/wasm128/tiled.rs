//! The whole `y = W·x` for Q4_0, Q4_1 and Q8_0 weights on simd128 (the browser's CPU
//! path; jobs on the engine's pool in the threaded build), shaped so that the
//! integer work is nearly all `i32x4.dot_i16x8_s` (x86 `pmaddwd`, Arm
//! `smull`+`sadalp`) and the per-block float work runs four lanes at a time.
//!
//! The kernels of `wasm128.rs` above take one weight row against a few activation
//! rows and finish every 32-element block with a horizontal sum and scalar float
//! arithmetic per activation row. That tail costs more than the block's 32
//! multiply-adds, so prefill ran at twice the decode speed and no better. Here:
//! - activations are quantized once per matmul and widened to i16 into
//!   [`Tile`]s of [`T`] tokens, block by block, so a block's codes are four plain
//!   loads per token (no widening in the inner loop), and scales and sums of four
//!   tokens are one vector load each;
//! - prefill: two weight rows at a time, each block unpacked once per tile and
//!   dotted with its T tokens (each token's codes loaded once for both rows); the
//!   four i32x4 partial sums of four tokens are transposed and added into one
//!   vector (lane = token), and the block's scale arithmetic is done on that vector;
//! - decode (one token): the same, with four weight rows in the lanes;
//! - f16 scales are converted four at a time without branches.
//! Scratch buffers are kept between calls (the wasm heap never shrinks, and a
//! matmul is called ~200 times per token); they only grow, to the largest chunk's
//! tiles (512 tokens of n_in 1536: 1.8 MB).
//!
//! Integer sums are exact, and every lane does per block exactly the float
//! expression of `scalar.rs` in the same order (wasm float ops are IEEE, never
//! fused), so each output is bit for bit the portable kernel's, whatever tile or
//! chunk its token lands in: prefill equals step-by-step decode, and the wasm
//! build's greedy text stays the native scalar binary's (tests/wasm/smoke.cjs).

use super::super::pool;
use super::super::q8::{quantize_row, BlockQ8};
use crate::format::quant::GgmlType;
use core::arch::wasm32::*;
use std::cell::RefCell;

/// Tokens per prefill tile: the per-block work of a weight row (unpacking, scales)
/// is shared by T tokens. 16 was the fastest of 4, 8, 16, 24 and 32 under Node (8%
/// over 8); a tile of the widest matrix here (n_in 1536: 48 blocks × 1152 B) sits in
/// L2.
pub const T: usize = 16;
/// f32x4 vectors per tile.
const V: usize = T / 4;

/// One 32-element block of T tokens' activations.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct Tile {
    /// Per token: the block's scale (`BlockQ8::d`) and value sum (`BlockQ8::s`).
    d: [f32; T],
    s: [f32; T],
    /// Per token: the 32 codes, widened, element `ORDER[p]` at p.
    q: [[i16; 32]; T],
}

impl Tile {
    const ZERO: Tile = Tile { d: [0.0; T], s: [0.0; T], q: [[0; 32]; T] };
}

/// Weight types this module multiplies; others go through `dot_rows`.
pub fn supported(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0)
}

/// The most weight bytes one decode job reads (see `matmul`).
const DECODE_JOB_BYTES: usize = 256 * 1024;

thread_local! {
    /// (one row's quantized blocks, the tiles), reused across calls.
    static SCRATCH: RefCell<(Vec<BlockQ8>, Vec<Tile>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `x`: n rows of `n_in` (n ≥ 1); `w`: `n_out` rows of `ty` (see [`supported`]).
/// Returns n rows of `n_out`.
pub fn matmul(ty: GgmlType, w: &[u8], x: &[f32], n_in: usize, n_out: usize) -> Vec<f32> {
    assert!(supported(ty) && n_in % 32 == 0 && x.len() % n_in == 0 && w.len() == ty.row_bytes(n_in) * n_out);
    let (n, nb) = (x.len() / n_in, n_in / 32);
    let mut out = vec![0f32; n * n_out];
    SCRATCH.with_borrow_mut(|(q8, tiles)| {
        let n_tiles = n.div_ceil(T);
        q8.resize(nb, BlockQ8::ZERO);
        // Grown, never cleared: every lane read below is written first, except the
        // last tile's padding, zeroed by `fill_tile` (its results are dropped either way).
        if tiles.len() < n_tiles * nb {
            tiles.resize(n_tiles * nb, Tile::ZERO);
        }
        if n == 1 {
            fill_tile(&x[..n_in], q8, &mut tiles[..nb], false);
        } else {
            // A job per tile: quantizing and widening a 512-token chunk on the calling
            // thread alone left the other threads waiting (3% of a prefill at two
            // threads). Each job writes its own tile only, and a token's codes do not
            // depend on the job, so the bits are the one-thread loop's.
            let base = TilesOut(tiles.as_mut_ptr());
            pool::global().run(n_tiles, &|k| {
                let mut q8 = vec![BlockQ8::ZERO; nb];
                // SAFETY: job k alone touches tiles k·nb..(k + 1)·nb, inside the vector
                // (resized above), which outlives `run`.
                let tile = unsafe { std::slice::from_raw_parts_mut(base.at(k * nb), nb) };
                fill_tile(&x[k * T * n_in..((k + 1) * T).min(n) * n_in], &mut q8, tile, true);
            });
        }
        let (tiles, q8) = (&tiles[..n_tiles * nb], &q8[..]);
        let threads = pool::global().threads();
        if n == 1 {
            // Decode: consecutive runs of whole quads of rows, a few per thread so a
            // late worker does not stall the step; every quad is the one the
            // one-thread loop computes, so the bits do not depend on the split.
            // Jobs of at most DECODE_JOB_BYTES of weights: the vocabulary head (49,152
            // rows for SmolLM2) in 8 jobs of ~0.8 ms left one thread waiting ~0.3 ms
            // a token for the other's last job (under Node, two threads).
            let cap = (DECODE_JOB_BYTES / ty.row_bytes(n_in)).max(4) / 4 * 4;
            let chunk = (4 * n_out.div_ceil(4 * threads * 4).max(4)).min(cap);
            pool::for_each_chunk_mut(&mut out, chunk, &|c, o| decode(ty, w, &tiles[..nb], q8, n_in, c * chunk, o));
        } else {
            // Prefill: (tile, run of row pairs) jobs, enough of them for every thread
            // even when the prompt is one or two tiles; each output element belongs
            // to exactly one job.
            let per_tile = (threads * 4).div_ceil(n_tiles).min(n_out / 2).max(1);
            let rows = 2 * (n_out / 2).div_ceil(per_tile);
            let parts = n_out.div_ceil(rows);
            let base = pool::SharedOut::new(&mut out);
            pool::global().run(n_tiles * parts, &|j| {
                let (k, r) = (j / parts, j % parts);
                let lanes = (n - k * T).min(T);
                let rows = r * rows..((r + 1) * rows).min(n_out);
                prefill(ty, w, &tiles[k * nb..][..nb], n_in, n_out, rows, lanes, |t, o, v| {
                    // SAFETY: token k*T + t, row o is written by this job only, and
                    // `out` outlives the job (`run` returns when every job is done).
                    unsafe { base.write((k * T + t) * n_out + o, v) }
                })
            });
        }
    });
    out
}

/// The tile pointer shared by the jobs that fill the tiles, each its own.
struct TilesOut(*mut Tile);
// SAFETY: the jobs write disjoint tiles (see `matmul`).
unsafe impl Sync for TilesOut {}
impl TilesOut {
    fn at(&self, i: usize) -> *mut Tile {
        // SAFETY: the callers stay inside the vector the pointer came from.
        unsafe { self.0.add(i) }
    }
}

/// One tile's `x` (1 to T rows) quantized into its blocks (`q8`: one row's scratch,
/// holding the last row's blocks after), with `pad` the lanes past the rows zeroed
/// (prefill reads all T lanes and drops the padding's results; decode reads lane 0).
fn fill_tile(x: &[f32], q8: &mut [BlockQ8], tile: &mut [Tile], pad: bool) {
    let n_in = q8.len() * 32;
    let rows = x.len() / n_in;
    for (lane, row) in x.chunks_exact(n_in).enumerate() {
        quantize_row(row, q8);
        for (tb, xb) in tile.iter_mut().zip(q8.iter()) {
            tb.d[lane] = xb.d;
            tb.s[lane] = xb.s;
            tb.q[lane] = ORDER.map(|e| xb.qs[e] as i16);
        }
    }
    if pad {
        for tb in tile.iter_mut() {
            for lane in rows..T {
                (tb.d[lane], tb.s[lane], tb.q[lane]) = (0.0, 0.0, [0; 32]);
            }
        }
    }
}

/// One tile of `lanes` tokens against rows `rows` (starting even), each result
/// given to `put(token, row, value)`.
/// (Not inlined, here and in `decode`: the two paths stay apart in profiles.)
#[inline(never)]
fn prefill(ty: GgmlType, w: &[u8], tile: &[Tile], n_in: usize, n_out: usize, rows: std::ops::Range<usize>, lanes: usize, put: impl Fn(usize, usize, f32)) {
    debug_assert!(rows.start % 2 == 0 && rows.end <= n_out);
    let rb = ty.row_bytes(n_in);
    let put = |o: usize, v: [v128; V]| {
        let mut vals = [0f32; T];
        for (k, v) in v.iter().enumerate() {
            // SAFETY: 4 floats into 4 floats; unaligned stores are allowed.
            unsafe { v128_store(vals[4 * k..].as_mut_ptr() as *mut v128, *v) };
        }
        for (t, val) in vals.iter().enumerate().take(lanes) {
            put(t, o, *val);
        }
    };
    let mut o = rows.start;
    while o + 2 <= rows.end {
        let wr = &w[o * rb..][..2 * rb];
        let [a, b] = match ty {
            GgmlType::Q4_0 => rows2_tile::<{ Q4_0 }>(wr, rb, tile),
            GgmlType::Q4_1 => rows2_tile::<{ Q4_1 }>(wr, rb, tile),
            _ => rows2_tile::<{ Q8_0 }>(wr, rb, tile),
        };
        put(o, a);
        put(o + 1, b);
        o += 2;
    }
    if o < rows.end {
        let wr = &w[o * rb..][..rb];
        let v = match ty {
            GgmlType::Q4_0 => row_tile::<{ Q4_0 }>(wr, tile),
            GgmlType::Q4_1 => row_tile::<{ Q4_1 }>(wr, tile),
            _ => row_tile::<{ Q8_0 }>(wr, tile),
        };
        put(o, v);
    }
}

/// Two weight rows (`rb` bytes each, all of `w`) against a tile: each token's codes
/// are loaded once for both.
#[inline(always)]
fn rows2_tile<const K: u8>(w: &[u8], rb: usize, tile: &[Tile]) -> [[v128; V]; 2] {
    let bb = block_bytes(K);
    assert!(w.len() == 2 * rb && tile.len() * bb == rb);
    let mut acc = [[f32x4_splat(0.0); V]; 2];
    let (p0, p1) = (w.as_ptr(), w[rb..].as_ptr());
    for (i, tb) in tile.iter().enumerate() {
        // SAFETY: block i of both rows lies inside `w` (asserted above).
        let (c0, c1, (d0, m0), (d1, m1)) = unsafe { (codes::<K>(p0.add(i * bb)), codes::<K>(p1.add(i * bb)), dm_splat(p0.add(i * bb)), dm_splat(p1.add(i * bb))) };
        for v in 0..V {
            let mut s0 = [i32x4_splat(0); 4];
            let mut s1 = [i32x4_splat(0); 4];
            for k in 0..4 {
                let q = tokq(tb, 4 * v + k);
                s0[k] = partial(&c0, &q);
                s1[k] = partial(&c1, &q);
            }
            // SAFETY: 4 floats at 4v of a T-float, 16-byte aligned array.
            let (xd, xs) = unsafe { (v128_load(tb.d[4 * v..].as_ptr() as *const v128), v128_load(tb.s[4 * v..].as_ptr() as *const v128)) };
            acc[0][v] = step::<K>(acc[0][v], d0, m0, xd, xs, hsum4(s0));
            acc[1][v] = step::<K>(acc[1][v], d1, m1, xd, xs, hsum4(s1));
        }
    }
    acc
}

/// One token (lane 0 of `x`; `q8` the same blocks unwidened) against rows
/// `first..first + out.len()` (`first` a multiple of 4), four rows at a time.
#[inline(never)]
fn decode(ty: GgmlType, w: &[u8], x: &[Tile], q8: &[BlockQ8], n_in: usize, first: usize, out: &mut [f32]) {
    debug_assert!(first % 4 == 0);
    let rb = ty.row_bytes(n_in);
    let w = &w[first * rb..];
    let quads = out.len() / 4;
    for (g, o4) in out.chunks_exact_mut(4).enumerate() {
        let rows = &w[g * 4 * rb..][..4 * rb];
        let v = match ty {
            GgmlType::Q4_0 => rows_token::<{ Q4_0 }>(rows, rb, x),
            GgmlType::Q4_1 => rows_token::<{ Q4_1 }>(rows, rb, x),
            _ => rows_token::<{ Q8_0 }>(rows, rb, x),
        };
        // SAFETY: 4 floats into a 4-float chunk.
        unsafe { v128_store(o4.as_mut_ptr() as *mut v128, v) };
    }
    // The last rows when n_out is not a multiple of 4: the per-row kernel (the same bits).
    for o in quads * 4..out.len() {
        out[o] = super::super::dot_rows::<1>(ty, &w[o * rb..][..rb], [q8])[0];
    }
}

// The weight types as const parameters (GgmlType is not a const-generic type).
const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q8_0: u8 = 2;

const fn block_bytes(k: u8) -> usize {
    match k {
        Q4_0 => 18,
        Q4_1 => 20,
        _ => 34,
    }
}

/// A block's 32 codes as four i16x8 in [`ORDER`], straight from the packed bytes
/// read as i16 lanes: lane k holds bytes 2k and 2k+1, so masks and 16-bit shifts
/// give the even and the odd elements without byte widening (which, like byte
/// shifts, takes several x86 instructions where a 16-bit shift takes one).
/// Q4: byte j holds element j (low nibble) and j+16 (high); Q8_0: byte j of each
/// half is element j of that half.
///
/// SAFETY: `b` points at a whole block of type K.
#[inline(always)]
unsafe fn codes<const K: u8>(b: *const u8) -> [v128; 4] {
    match K {
        Q4_0 | Q4_1 => {
            let v = v128_load(b.add(if K == Q4_1 { 4 } else { 2 }) as *const v128);
            let m = u16x8_splat(0x0F);
            [v128_and(v, m), v128_and(u16x8_shr(v, 8), m), v128_and(u16x8_shr(v, 4), m), u16x8_shr(v, 12)]
        }
        _ => {
            let (lo, hi) = (v128_load(b.add(2) as *const v128), v128_load(b.add(18) as *const v128));
            [i16x8_shr(i16x8_shl(lo, 8), 8), i16x8_shr(lo, 8), i16x8_shr(i16x8_shl(hi, 8), 8), i16x8_shr(hi, 8)]
        }
    }
}

/// `ORDER[p]`: the element of a block a tile keeps at position p — the order
/// [`codes`] produces: of each half, the even elements, then the odd.
const ORDER: [usize; 32] = {
    let mut o = [0; 32];
    let mut p = 0;
    while p < 32 {
        let (v, k) = (p / 8, p % 8);
        o[p] = 16 * (v / 2) + 2 * k + v % 2;
        p += 1;
    }
    o
};

/// Σ codes·q over the block as four i32 partial sums (exact).
#[inline(always)]
fn partial(c: &[v128; 4], q: &[v128; 4]) -> v128 {
    i32x4_add(i32x4_add(i32x4_dot_i16x8(c[0], q[0]), i32x4_dot_i16x8(c[1], q[1])), i32x4_add(i32x4_dot_i16x8(c[2], q[2]), i32x4_dot_i16x8(c[3], q[3])))
}

/// Token `t`'s 32 widened codes of a tile block.
#[inline(always)]
fn tokq(tb: &Tile, t: usize) -> [v128; 4] {
    let p = tb.q[t].as_ptr() as *const v128;
    // SAFETY: 32 i16 are four v128; the tile is 16-byte aligned.
    unsafe { [v128_load(p), v128_load(p.add(1)), v128_load(p.add(2)), v128_load(p.add(3))] }
}

/// Four vectors of partial sums → their four totals, in lane order.
#[inline(always)]
fn hsum4(s: [v128; 4]) -> v128 {
    let a = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(s[0], s[1]), i32x4_shuffle::<2, 6, 3, 7>(s[0], s[1]));
    let b = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(s[2], s[3]), i32x4_shuffle::<2, 6, 3, 7>(s[2], s[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(a, b), i32x4_shuffle::<2, 3, 6, 7>(a, b))
}

/// Four f16 (the low halves of u32 lanes) → f32, exactly as `half::f16::to_f32`
/// for every non-NaN input (tested on all 65536), four at a time: the 15 magnitude
/// bits shifted into an f32 and scaled by 2^112 is exact for normals and subnormals
/// alike; exponent 31 (inf/NaN) gets the f32 all-ones exponent instead.
#[inline(always)]
fn f16x4(h: v128) -> v128 {
    let mag = i32x4_shl(v128_and(h, u32x4_splat(0x7fff)), 13);
    let finite = f32x4_mul(mag, f32x4_splat(f32::from_bits((127 + 112) << 23)));
    let special = i32x4_eq(v128_and(h, u32x4_splat(0x7c00)), u32x4_splat(0x7c00));
    let v = v128_bitselect(v128_or(mag, u32x4_splat(0x7f80_0000)), finite, special);
    v128_or(v, i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
}

/// The first two f16 of a block (d and, for Q4_1, m), each in all four lanes.
///
/// SAFETY: `b` points at 4 readable bytes.
#[inline(always)]
unsafe fn dm_splat(b: *const u8) -> (v128, v128) {
    let dm = v128_load32_splat(b as *const u32);
    (f16x4(dm), f16x4(u32x4_shr(dm, 16)))
}

/// The same for four blocks, lane r from `b[r]`.
///
/// SAFETY: each `b[r]` points at 4 readable bytes.
#[inline(always)]
unsafe fn dm_rows(b: [*const u8; 4]) -> (v128, v128) {
    let v = v128_load32_zero(b[0] as *const u32);
    let v = v128_load32_lane::<1>(v, b[1] as *const u32);
    let v = v128_load32_lane::<2>(v, b[2] as *const u32);
    let dm = v128_load32_lane::<3>(v, b[3] as *const u32);
    (f16x4(dm), f16x4(u32x4_shr(dm, 16)))
}

/// The block's float step on four lanes, `scalar.rs`'s expression for the type:
/// `d`, `m`: the weight scale and (Q4_1) min; `xd`, `xs`: activation scale and sum.
#[inline(always)]
fn step<const K: u8>(acc: v128, d: v128, m: v128, xd: v128, xs: v128, isum: v128) -> v128 {
    let i = f32x4_convert_i32x4(isum);
    let term = match K {
        // d * (xd * i - 8 * xs)
        Q4_0 => f32x4_mul(d, f32x4_sub(f32x4_mul(xd, i), f32x4_mul(f32x4_splat(8.0), xs))),
        // d * xd * i + m * xs
        Q4_1 => f32x4_add(f32x4_mul(f32x4_mul(d, xd), i), f32x4_mul(m, xs)),
        // d * xd * i
        _ => f32x4_mul(f32x4_mul(d, xd), i),
    };
    f32x4_add(acc, term)
}

/// One weight row (the last, when `n_out` is odd) against a tile's T tokens: V
/// vectors, lane = token.
#[inline(always)]
fn row_tile<const K: u8>(w: &[u8], tile: &[Tile]) -> [v128; V] {
    let mut acc = [f32x4_splat(0.0); V];
    for (b, tb) in w.chunks_exact(block_bytes(K)).zip(tile) {
        // SAFETY: `b` is one whole block.
        let (c, (d, m)) = unsafe { (codes::<K>(b.as_ptr()), dm_splat(b.as_ptr())) };
        for (v, acc) in acc.iter_mut().enumerate() {
            let isum = hsum4(std::array::from_fn(|k| partial(&c, &tokq(tb, 4 * v + k))));
            // SAFETY: 4 floats at 4v of a T-float, 16-byte aligned array.
            let (xd, xs) = unsafe { (v128_load(tb.d[4 * v..].as_ptr() as *const v128), v128_load(tb.s[4 * v..].as_ptr() as *const v128)) };
            *acc = step::<K>(*acc, d, m, xd, xs, isum);
        }
    }
    acc
}

/// Four consecutive weight rows (`rb` bytes each, all of `w`) against token 0 of
/// the blocks `x`: lane = row. Lane r's float step is `scalar.rs`'s with d, m of
/// row r (the products are the same, operands swapped, which IEEE multiplication
/// ignores).
#[inline(always)]
fn rows_token<const K: u8>(w: &[u8], rb: usize, x: &[Tile]) -> v128 {
    let bb = block_bytes(K);
    assert!(w.len() == 4 * rb && x.len() * bb == rb);
    let mut acc = f32x4_splat(0.0);
    let p: [*const u8; 4] = std::array::from_fn(|r| w[r * rb..].as_ptr());
    for (i, tb) in x.iter().enumerate() {
        let q = tokq(tb, 0);
        // SAFETY: block i of each row lies inside `w` (asserted above).
        let (isum, (d, m)) = unsafe {
            let blk = p.map(|r| r.add(i * bb));
            (hsum4(blk.map(|b| partial(&codes::<K>(b), &q))), dm_rows(blk))
        };
        acc = step::<K>(acc, d, m, f32x4_splat(tb.d[0]), f32x4_splat(tb.s[0]), isum);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::super::super::{dot_scalar, q8::quantize_row_body, tests::random_x, BlockQ8, QMatrix};
    use crate::format::quant::{random_blocks, GgmlType};
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Every f16 bit pattern, in several lanes and in both halves of a u32, splat
    /// and gathered: the vector conversion is half's (NaN stays NaN).
    #[wasm_bindgen_test]
    fn f16_conversion_equals_half() {
        use core::arch::wasm32::*;
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let other = h.wrapping_mul(40503); // a different pattern in the other half
            let word = |lo: u16, hi: u16| [lo.to_le_bytes(), hi.to_le_bytes()].concat();
            let rows = [word(h, other), word(other, other), word(other, h), word(h, h)];
            // SAFETY: every word is 4 bytes.
            let ((d, _), (_, m), (rd, rm)) = unsafe { (super::dm_splat(rows[0].as_ptr()), super::dm_splat(rows[2].as_ptr()), super::dm_rows(rows.each_ref().map(|r| r.as_ptr()))) };
            let lanes = [f32x4_extract_lane::<0>(d), f32x4_extract_lane::<3>(d), f32x4_extract_lane::<2>(m), f32x4_extract_lane::<0>(rd), f32x4_extract_lane::<3>(rd), f32x4_extract_lane::<2>(rm), f32x4_extract_lane::<3>(rm)];
            for (k, got) in lanes.into_iter().enumerate() {
                assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "f16 {h:#06x} (case {k}): got {got:e} ({:#010x}), half {want:e} ({:#010x})", got.to_bits(), want.to_bits());
            }
        }
    }

    /// The tiled matmul against the portable per-row kernel (`dot_scalar` on the
    /// portable quantization), bit for bit, for one token (decode) and token counts
    /// that fill part of a tile, exactly one, a tile and a bit, several; rows odd
    /// and not a multiple of 4; blocks per row odd. Larger calls come first, so
    /// later ones reuse scratch with stale lanes. Through `QMatrix::matmul`, so the
    /// dispatch is tested too.
    #[wasm_bindgen_test]
    fn tiled_matmul_equals_scalar_bit_for_bit() {
        for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            for (n_in, n_out, n_tok) in [(1536, 6, 33), (96, 9, 16), (224, 13, 1), (224, 13, 2), (96, 8, 3), (224, 13, 9), (160, 5, 17), (32, 3, 1), (64, 7, 8), (288, 12, 25)] {
                let w = random_blocks(ty, n_in * n_out, 3 + n_out as u64 + n_in as u64);
                let x = random_x(n_in * n_tok, 17 + n_tok as u64);
                let got = QMatrix::new(ty, &w, n_in, n_out).unwrap().matmul(&x).unwrap();
                let rb = ty.row_bytes(n_in);
                for t in 0..n_tok {
                    let mut q = vec![BlockQ8::ZERO; n_in / 32];
                    quantize_row_body(&x[t * n_in..][..n_in], &mut q);
                    for o in 0..n_out {
                        let want = dot_scalar(ty, &w[o * rb..][..rb], &q);
                        let g = got[t * n_out + o];
                        assert!(
                            g.to_bits() == want.to_bits(),
                            "{}: {n_out}x{n_in}, {n_tok} tokens: first bad index (token {t}, row {o}): tiled {g}, scalar {want}",
                            ty.name()
                        );
                    }
                }
            }
        }
    }
}

