//! Rotary position embedding: within each head the rotated pairs (see
//! [`RopeStyle::pair`]: adjacent elements in llama.cpp's normal mode, the two halves in
//! its NEOX mode) rotate by `pos · base^(-2i/n_rot)` for pair i; elements past `n_rot`
//! are left alone. With `rope_freqs.weight` (Llama 3.1 scaling) each pair's frequency is
//! divided by its factor (`model::rope::inv_freq`). With `rope.scaling.attn_factor`
//! (LongRoPE) the rotation's cos and sin are multiplied by it, as ggml's rope does with
//! its `mscale`, so the rotated elements grow by that factor and the rest do not. Linear
//! rope scaling multiplies every position by 1/`rope.scaling.factor`.

use crate::format::family::RopeStyle;

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

    /// This rotation with positions multiplied by `freq_scale` (linear rope scaling:
    /// 1/`rope.scaling.factor`, `model::rope::scale_positions`).
    pub fn positions_scaled(self, freq_scale: f32) -> Self {
        Rope { inv_freq: crate::model::rope::scale_positions(self.inv_freq, freq_scale), ..self }
    }

    /// This rotation with cos and sin multiplied by `mscale` (`rope.scaling.attn_factor`).
    pub fn scaled(self, mscale: f32) -> Self {
        Rope { mscale, ..self }
    }

    /// Rotates `x` = rows of `n_heads * head_dim`, row `r` at position `pos + r`.
    pub fn apply(&self, x: &mut [f32], n_heads: usize, pos: usize) {
        let row = n_heads * self.head_dim;
        for (r, xr) in x.chunks_exact_mut(row).enumerate() {
            let p = (pos + r) as f32;
            let cs: Vec<(f32, f32)> = self.inv_freq.iter().map(|f| (p * f).sin_cos()).map(|(s, c)| (c * self.mscale, s * self.mscale)).collect();
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
