//! Rotary position embedding in llama.cpp's "normal" mode: within each head the
//! adjacent pairs (2i, 2i+1) rotate by `pos · base^(-2i/n_rot)`. GGUF converters
//! permute Q/K weights so this matches the Hugging Face half-split layout.

pub struct Rope {
    inv_freq: Vec<f32>,
    head_dim: usize,
}

impl Rope {
    pub fn new(head_dim: usize, n_rot: usize, base: f32) -> Self {
        Rope { inv_freq: crate::model::rope::inv_freq(n_rot, base), head_dim }
    }

    /// Rotates `x` = rows of `n_heads * head_dim`, row `r` at position `pos + r`.
    pub fn apply(&self, x: &mut [f32], n_heads: usize, pos: usize) {
        let row = n_heads * self.head_dim;
        for (r, xr) in x.chunks_exact_mut(row).enumerate() {
            let p = (pos + r) as f32;
            let cs: Vec<(f32, f32)> = self.inv_freq.iter().map(|f| (p * f).sin_cos()).map(|(s, c)| (c, s)).collect();
            for head in xr.chunks_exact_mut(self.head_dim) {
                for (pair, &(c, s)) in head.chunks_exact_mut(2).zip(&cs) {
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = a * c - b * s;
                    pair[1] = a * s + b * c;
                }
            }
        }
    }
}
