//! Small dense f32 operations of the CPU forward pass: dot, axpy, RMSNorm, softmax,
//! SiLU and a vectorizable exp. The reference (cpu/reference.rs) keeps its own f64
//! versions, so it shares none of these.

/// Dot product with 8 independent accumulators so LLVM vectorizes it (f32 addition
/// is not associative, so a single running sum would stay scalar).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += a * x`
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// RMSNorm over each row of `x` (rows of `w.len()`), scaled by `w`:
/// `x / sqrt(mean(x²) + eps) * w`, the sum in f64 as ggml does.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let n = w.len();
    let mut out = vec![0f32; x.len()];
    for (o, r) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        let ss: f64 = r.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let scale = (1.0 / (ss / n as f64 + eps as f64).sqrt()) as f32;
        for ((o, &v), &g) in o.iter_mut().zip(r).zip(w) {
            *o = v * scale * g;
        }
    }
    out
}

/// `b` added to every row of `x` (rows of `b.len()`): a projection's bias.
pub fn add_rows(x: &mut [f32], b: &[f32]) {
    for row in x.chunks_exact_mut(b.len()) {
        add_assign(row, b);
    }
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `x·σ(x)` through libm's `expf`, kept over the vectorizable [`exp`]: that one (≤ 2
/// ulp) moved SmolLM2's teacher-forced logits up to 0.29 from llama.cpp's where libm's
/// stay within 0.06 (tests/smollm2.rs): the down projection rounds its input to 8-bit
/// codes, which turns an ulp into a code step. The FFN splits it across the pool.
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation (ggml's `ggml_gelu`, Hugging Face's `gelu_pytorch_tanh`):
/// `0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))`, in f32. (ggml's CPU build may read
/// it from an f16 table; here it is computed.)
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// `x` scaled in place by `s`.
pub fn scale(x: &mut [f32], s: f32) {
    x.iter_mut().for_each(|v| *v *= s);
}

/// In-place softmax; returns nothing for an empty slice.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// e^x as a polynomial LLVM can vectorize (libm's `expf` is one call per element):
/// x = n·ln2 + r with |r| ≤ ln2/2 (Cody–Waite split of ln2), e^r by Cephes' `expf`
/// degree-6 polynomial, 2^n through the exponent bits. Within 2 ulp of `f32::exp` on
/// [−87, 88]; 0 below (so −∞ gives exactly 0), and clamped at 88.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let under = x < -87.0;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Adding and removing 1.5·2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    // n is also in t's low mantissa bits; reading it there avoids a saturating
    // `f32 as i32`, which LLVM will not vectorize.
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    let e = y * f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    if under {
        0.0
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    /// f32 GELU against the f64 formula: relative to max(1, |x|).
    const TOL_GELU: f64 = 1e-6;

    #[test]
    fn gelu_tanh_matches_its_f64_formula() {
        let twin = |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
        for i in 0..=40_000 {
            let x = -20.0 + i as f32 / 1000.0;
            let (got, want) = (super::gelu_tanh(x) as f64, twin(x as f64));
            let d = (got - want).abs() / (x.abs() as f64).max(1.0);
            assert!(d <= TOL_GELU, "first bad index {i}: gelu({x}) = {got}, f64 formula {want}, relative diff {d:.2e}");
        }
        // Far out it saturates to x and 0, never NaN.
        assert_eq!((super::gelu_tanh(1e30), super::gelu_tanh(-1e30)), (1e30, 0.0));
        assert_eq!(super::gelu_tanh(0.0), 0.0);
    }

    /// libm's expf and one division.
    const TOL_SILU_REL: f64 = 1e-6;

    #[test]
    fn silu_matches_its_f64_formula() {
        for i in 0..=200_000 {
            let x = -100.0 + i as f32 / 1000.0;
            let (got, want) = (super::silu(x) as f64, x as f64 / (1.0 + (-(x as f64)).exp()));
            let d = (got - want).abs() / want.abs().max(1e-30);
            // Below −87 the true value is under 1e-36: only its sign and size matter.
            let ok = if x < -87.0 { got <= 0.0 && got.abs() < 1e-30 } else { d <= TOL_SILU_REL };
            assert!(ok, "first bad index {i}: silu({x}) = {got}, f64 formula {want}, relative diff {d:.2e}");
        }
        assert_eq!(super::silu(0.0), 0.0);
        assert_eq!(super::silu(1e30), 1e30);
    }

    /// Cephes' bound for its expf polynomial, with a margin for the reduction.
    const TOL_EXP_REL: f32 = 3e-7;

    #[test]
    fn exp_matches_libm() {
        let mut worst = (0f32, 0f32);
        for i in 0..200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (got, want) = (super::exp(x), x.exp());
            let rel = ((got - want) / want).abs();
            if rel > worst.0 {
                worst = (rel, x);
            }
        }
        assert!(worst.0 <= TOL_EXP_REL, "exp({}) off by {:.2e} relative", worst.1, worst.0);
        assert_eq!(super::exp(0.0), 1.0);
        assert_eq!(super::exp(f32::NEG_INFINITY), 0.0);
    }
}
