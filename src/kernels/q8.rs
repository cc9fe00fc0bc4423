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
/// symmetric, scale = max|x| / 127, round to nearest.
pub fn quantize_row(x: &[f32], out: &mut [BlockQ8]) {
    for (b, xs) in out.iter_mut().zip(x.chunks_exact(32)) {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in b.qs.iter_mut().zip(xs) {
            *q = (v * id).round() as i8;
            sum += *q as i32;
        }
        b.d = d;
        b.s = d * sum as f32;
    }
}
