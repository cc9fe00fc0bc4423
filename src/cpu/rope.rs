//! Rotary position embedding: within each head the rotated pairs (see
//! [`RopeStyle::pair`]: adjacent elements in llama.cpp's normal mode, the two halves in
//! its NEOX mode) rotate by `pos · base^(-2i/n_rot)` for pair i; elements past `n_rot`
//! are left alone. With `rope_freqs.weight` (Llama 3.1 scaling) each pair's frequency is
//! divided by its factor (`model::rope::inv_freq`). With `rope.scaling.attn_factor`
//! (LongRoPE) the rotation's cos and sin are multiplied by it, as ggml's rope does with
//! its `mscale`, so the rotated elements grow by that factor and the rest do not.
//! Rope scaling (linear, YaRN; none on gemma3's local layers) comes in through the
//! frequencies (`model::rope::layer_inv_freq`: linear multiplies every position by
//! 1/`rope.scaling.factor`); mistral3's query temperature, a factor per position, through
//! the queries' cos and sin ([`Rope::apply_tempered`]; `format::hparams` makes sure every
//! dim is rotated then).

use crate::format::family::RopeStyle;
use crate::format::hparams::AttnTemp;

pub struct Rope {
    inv_freq: Vec<f32>,
    head_dim: usize,
    n_rot: usize,
    style: RopeStyle,
    /// Multiplies cos and sin (`Hparams::rope_attn_factor`; 1 for most models).
    mscale: f32,
}

impl Rope {
    pub fn new(head_dim: usize, n_rot: usize, base: f32, style: RopeStyle) -> Self {
        Self::with_factors(head_dim, n_rot, base, style, None)
    }

    /// As [`Rope::new`], each pair's frequency divided by its factor (`rope_freqs.weight`).
    pub fn with_factors(head_dim: usize, n_rot: usize, base: f32, style: RopeStyle, factors: Option<&[f32]>) -> Self {
        Rope { inv_freq: crate::model::rope::inv_freq(n_rot, base, factors), head_dim, n_rot, style, mscale: 1.0 }
    }

    /// A rotation by the given per-pair frequencies (`model::rope::layer_inv_freq`).
    pub fn from_freqs(inv_freq: Vec<f32>, head_dim: usize, n_rot: usize, style: RopeStyle) -> Self {
        Rope { inv_freq, head_dim, n_rot, style, mscale: 1.0 }
    }

    /// This rotation with cos and sin multiplied by `mscale` (`rope.scaling.attn_factor`).
    pub fn scaled(self, mscale: f32) -> Self {
        Rope { mscale, ..self }
    }

    /// Rotates `x` = rows of `n_heads * head_dim`, row `r` at position `pos + r`.
    pub fn apply(&self, x: &mut [f32], n_heads: usize, pos: usize) {
        self.apply_tempered(x, n_heads, pos, None)
    }

    /// As [`Rope::apply`], row r's cos and sin also multiplied by `temp.at(pos + r)` (the
    /// query temperature: with every dim rotated, the same as scaling the rotated row).
    pub fn apply_tempered(&self, x: &mut [f32], n_heads: usize, pos: usize, temp: Option<AttnTemp>) {
        let row = n_heads * self.head_dim;
        for (r, xr) in x.chunks_exact_mut(row).enumerate() {
            let p = (pos + r) as f32;
            let m = self.mscale * temp.map_or(1.0, |t| t.at(pos + r));
            let cs: Vec<(f32, f32)> = self.inv_freq.iter().map(|f| (p * f).sin_cos()).map(|(s, c)| (c * m, s * m)).collect();
            for head in xr.chunks_exact_mut(self.head_dim) {
                for (i, &(c, s)) in cs.iter().enumerate() {
                    let (ia, ib) = self.style.pair(i, self.n_rot);
                    let (a, b) = (head[ia], head[ib]);
                    head[ia] = a * c - b * s;
                    head[ib] = a * s + b * c;
                }
            }
        }
    }
}
