//! Causal, optionally sliding-window, grouped-query attention of a chunk of queries
//! over the cached keys plus the chunk's own keys (Mistral's chunked prefill).
//! Query at position P sees key j iff `j <= P` and `P - j < W` — llama.cpp's and
//! Hugging Face's window convention; W slots of the rolling cache hold exactly that.

use crate::cache::KvCache;
use crate::ops::{axpy, dot, softmax};

pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub window: Option<usize>,
}

/// `q`: [L, n_head·hd]; `k`, `v`: the chunk's [L, n_kv·hd]; the cache holds positions
/// before `cache.pos`, where the chunk starts. Returns [L, n_head·hd].
pub fn attention(s: &AttnShape, q: &[f32], k: &[f32], v: &[f32], cache: &KvCache, layer: usize) -> Vec<f32> {
    let (hd, kvd) = (s.head_dim, s.n_head_kv * s.head_dim);
    let group = s.n_head / s.n_head_kv;
    let pos = cache.pos;
    let oldest = cache.oldest();
    let lc = &cache.layers[layer];
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; q.len()];

    let one = |idx: usize, o: &mut [f32]| {
        let (i, h) = (idx / s.n_head, idx % s.n_head);
        let p = pos + i;
        let lo = match s.window {
            Some(w) => oldest.max((p + 1).saturating_sub(w)),
            None => oldest,
        };
        let kvh = (h / group) * hd;
        let qh = &q[i * s.n_head * hd + h * hd..][..hd];
        // Where key/value row j lives: the chunk for j >= pos, else its cache slot.
        let row = |j: usize| -> std::ops::Range<usize> {
            if j >= pos {
                (j - pos) * kvd + kvh..(j - pos) * kvd + kvh + hd
            } else {
                let sl = cache.slot(j);
                sl * kvd + kvh..sl * kvd + kvh + hd
            }
        };
        let mut scores: Vec<f32> = (lo..=p)
            .map(|j| {
                let r = row(j);
                dot(qh, if j >= pos { &k[r] } else { &lc.k[r] }) * scale
            })
            .collect();
        softmax(&mut scores);
        for (j, &w) in (lo..=p).zip(&scores) {
            let r = row(j);
            axpy(w, if j >= pos { &v[r] } else { &lc.v[r] }, o);
        }
    };

    crate::kernels::pool::for_each_chunk_mut(&mut out, hd, &|idx, o| one(idx, o));
    out
}
