//! Mixtral's sparse mixture of experts: a router scores every expert, each token
//! keeps its top-k, their weights are the softmax over those k logits (the same as
//! renormalising the full softmax), and only the chosen experts run — each on the
//! batch of tokens routed to it.

use crate::cpu::ffn::GatedFfn;
use crate::cpu::linear::Linear;
use crate::cpu::vector::softmax;

pub struct Moe {
    pub router: Linear,
    pub experts: Vec<GatedFfn>,
    pub k: usize,
}

/// The experts chosen for one token and their weights, best first.
pub fn route(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    // Stable sort: equal logits keep the lower expert id first, as ggml's argsort.
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.truncate(k);
    let mut w: Vec<f32> = idx.iter().map(|&e| logits[e]).collect();
    softmax(&mut w);
    idx.into_iter().zip(w).collect()
}

impl Moe {
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, crate::cpu::kernels::KernelError> {
        let d = self.router.n_in;
        let n = x.len() / d;
        let logits = self.router.forward(x)?;
        let ne = self.experts.len();
        // tokens[e] = (token index, weight) for every token routed to expert e.
        let mut tokens: Vec<Vec<(usize, f32)>> = vec![vec![]; ne];
        for t in 0..n {
            for (e, w) in route(&logits[t * ne..(t + 1) * ne], self.k) {
                tokens[e].push((t, w));
            }
        }
        let mut out = vec![0f32; x.len()];
        for (e, routed) in tokens.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let batch: Vec<f32> = routed.iter().flat_map(|&(t, _)| x[t * d..(t + 1) * d].iter().copied()).collect();
            let y = self.experts[e].forward(&batch)?;
            for (r, &(t, w)) in routed.iter().enumerate() {
                crate::cpu::vector::axpy(w, &y[r * d..(r + 1) * d], &mut out[t * d..(t + 1) * d]);
            }
        }
        Ok(out)
    }
}
