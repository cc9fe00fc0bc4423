//! Sampling on the GPU, so a decode step reads back one token id (4 bytes): greedy
//! argmax, and temperature + top-k + top-p with a seeded draw (`sample` in
//! shaders/sample.wgsl). [`sample_twin`] is the same definition in plain Rust, by
//! sorting, for the test.
//!
//! What the GPU sampler draws from: the CPU sampler's distribution (src/model/sampling.rs:
//! top-k of the logits in (logit desc, index asc) order, softmax at temperature T,
//! nucleus of mass >= top_p) with every weight rounded down to a multiple of
//! 1/`scale` of the top token's, `scale` ~ 2^32 / n_vocab (87k for SmolLM2): a token
//! below that is never drawn. Integers make the choice independent of summation
//! order. The random number is a hash of (seed, step), not the CPU's SplitMix stream,
//! so a seeded GPU run and a seeded CPU run pick different tokens. Repetition penalty
//! and LogitsProcessors (grammar masks) stay on the CPU, over read-back logits.

use super::context::GpuError;
use super::kernels::{argmax, Bind, Buf, Recorder, SampleKernelParams, SAMPLE};
use crate::model::sampling::SamplerConfig;

/// Records the argmax of row `row` of `logits` [rows, n_vocab] into `out[0]`.
pub fn greedy(rec: &mut Recorder, logits: &Buf, row: usize, n_vocab: usize, out: &Buf) -> Result<(), GpuError> {
    argmax(rec, logits, row * n_vocab, n_vocab, out)
}

/// The sampler settings in the kernel's terms (they fill [`SampleKernelParams`], the
/// uniform of shaders/sample.wgsl).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleParams {
    /// 0 = no top-k.
    pub top_k: u32,
    /// top_p · 2^32; `u32::MAX` = no nucleus cut.
    pub top_p: u32,
    pub inv_t: f32,
    pub seed: u64,
}

/// Vocabularies the kernel can index (its tie-break passes read 24 index bits).
pub const MAX_VOCAB: usize = 1 << 24;

impl SampleParams {
    /// `None` when the GPU cannot sample for `cfg` (greedy or a repetition penalty:
    /// the caller uses argmax or the CPU sampler).
    pub fn from_config(cfg: &SamplerConfig) -> Option<Self> {
        if cfg.temperature <= 0.0 || cfg.repeat_penalty != 1.0 || !cfg.temperature.is_finite() {
            return None;
        }
        let top_p = if cfg.top_p >= 1.0 || cfg.top_p.is_nan() { u32::MAX } else { (cfg.top_p.max(0.0) as f64 * 4294967296.0) as u32 };
        Some(SampleParams { top_k: cfg.top_k.min(u32::MAX as usize) as u32, top_p, inv_t: 1.0 / cfg.temperature, seed: cfg.seed })
    }
}

/// Weight of the largest logit: every sum of at most n + 1 weights fits in a u32
/// (and the scale is exact in f32).
pub fn scale_for(n: usize) -> u32 {
    ((u32::MAX as u64 / (n as u64 + 1)).saturating_sub(1)).min(1 << 24) as u32
}

/// The kernel's random number for `step`: PCG's output permutation chained over the
/// step and the two halves of the seed.
pub fn draw(seed: u64, step: u32) -> u32 {
    fn pcg(v: u32) -> u32 {
        let s = v.wrapping_mul(747796405).wrapping_add(2891336453);
        let w = ((s >> ((s >> 28) + 4)) ^ s).wrapping_mul(277803737);
        (w >> 22) ^ w
    }
    pcg(pcg(pcg(step) ^ seed as u32) ^ (seed >> 32) as u32)
}

/// The kernel's order key: larger float, larger key; 0 for non-finite.
fn key_of(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x7f80_0000 == 0x7f80_0000 {
        0
    } else if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Records the seeded draw from row `row` of `logits` into `out[0]`, for decode step
/// `step` (the number of tokens sampled before it in this generation).
#[allow(clippy::too_many_arguments)]
pub fn sample(rec: &mut Recorder, logits: &Buf, row: usize, n_vocab: usize, sp: &SampleParams, step: u32, out: &Buf) -> Result<(), GpuError> {
    let off = row * n_vocab;
    if n_vocab == 0 || n_vocab >= MAX_VOCAB || logits.len < off + n_vocab || out.len < 1 {
        return Err(GpuError::Shape { kernel: "sample", message: format!("logits {} for a row of {n_vocab} from {off} (vocabulary at most {MAX_VOCAB})", logits.len) });
    }
    let pl = rec.kernels.pipeline(rec.ctx, "sample", "sample", || SAMPLE.to_string());
    let p = SampleKernelParams { n: n_vocab as u32, row_off: off as u32, top_k: sp.top_k, top_p: sp.top_p, inv_t: sp.inv_t, scale: scale_for(n_vocab), seed_lo: sp.seed as u32, seed_hi: (sp.seed >> 32) as u32, step, pad0: 0, pad1: 0, pad2: 0 };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&logits.buffer)), (2, Bind::Whole(&out.buffer))], (1, 1, 1))
}

/// The plain-Rust twin of `sample`: the same weights and the same draw, by sorting.
pub fn sample_twin(logits: &[f32], sp: &SampleParams, step: u32) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).filter(|&i| key_of(logits[i]) != 0).collect();
    if order.is_empty() {
        return 0;
    }
    // Logit descending, index ascending (sort_by is stable).
    order.sort_by(|&a, &b| key_of(logits[b]).cmp(&key_of(logits[a])));
    let mx = logits[order[0]];
    if sp.top_k > 0 && (sp.top_k as usize) < order.len() {
        order.truncate(sp.top_k as usize);
    }
    let scale = scale_for(logits.len()) as f32;
    let q: Vec<u64> = order.iter().map(|&i| (((logits[i] - mx) * sp.inv_t).exp() * scale).floor() as u32 as u64).collect();
    let mut n = q.len();
    if sp.top_p != u32::MAX {
        let m1: u64 = q.iter().sum();
        let need = ((sp.top_p as u64 * m1).div_ceil(1 << 32)).max(1);
        let mut acc = 0;
        n = q.iter().position(|&w| {
            acc += w;
            acc >= need
        }).map_or(n, |i| i + 1);
    }
    let m2: u64 = q[..n].iter().sum();
    let r = (draw(sp.seed, step) as u64 * m2) >> 32;
    let mut acc = 0;
    for (j, &w) in q[..n].iter().enumerate() {
        acc += w;
        if acc > r {
            return order[j] as u32;
        }
    }
    order[n - 1] as u32
}
