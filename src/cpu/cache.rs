//! The KV cache in host memory, shaped by [`CacheShape`] (the rolling-buffer rule
//! and the context rule live in `model::cache`, shared with the GPU's cache).

use crate::model::cache::CacheShape;

#[derive(Clone)]
pub struct LayerCache {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

#[derive(Clone)]
pub struct KvCache {
    pub layers: Vec<LayerCache>,
    /// Next position to be written (= tokens seen so far).
    pub pos: usize,
    pub capacity: usize,
    pub kv_dim: usize,
    /// Whether positions past `capacity` may overwrite old slots (sliding window).
    pub rolling: bool,
}

impl KvCache {
    /// An empty cache; rows are allocated as positions arrive, so short inputs stay small.
    pub fn new(shape: CacheShape) -> Self {
        let layers = (0..shape.n_layer).map(|_| LayerCache { k: vec![], v: vec![] }).collect();
        KvCache { layers, pos: 0, capacity: shape.capacity, kv_dim: shape.kv_dim, rolling: shape.rolling }
    }

    /// Slot of absolute position `p`.
    #[inline]
    pub fn slot(&self, p: usize) -> usize {
        p % self.capacity
    }

    /// Oldest position still held before writing position `self.pos`.
    pub fn oldest(&self) -> usize {
        self.pos.saturating_sub(self.capacity)
    }

    /// Stores the K/V rows of a chunk that starts at `self.pos`. A chunk longer than
    /// the buffer keeps only its last `capacity` rows, all a later query can see.
    pub fn store(&mut self, layer: usize, k: &[f32], v: &[f32]) {
        let d = self.kv_dim;
        let n = k.len() / d;
        let rows = (self.pos + n).min(self.capacity);
        let (pos, cap) = (self.pos, self.capacity);
        let lc = &mut self.layers[layer];
        if lc.k.len() < rows * d {
            lc.k.resize(rows * d, 0.0);
            lc.v.resize(rows * d, 0.0);
        }
        for i in n.saturating_sub(cap)..n {
            let s = (pos + i) % cap;
            lc.k[s * d..(s + 1) * d].copy_from_slice(&k[i * d..(i + 1) * d]);
            lc.v[s * d..(s + 1) * d].copy_from_slice(&v[i * d..(i + 1) * d]);
        }
    }

    pub fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    pub fn clear(&mut self) {
        self.pos = 0;
        for l in &mut self.layers {
            l.k.clear();
            l.v.clear();
        }
    }

    /// This cache's rows in a cache of `shape` (a prompt-prefix snapshot continued by
    /// a generation with another context size), or `None` where they do not carry over:
    /// another model's layout, a rolling buffer of another window, or a dense context
    /// too short for the rows already written.
    pub fn reshaped(&self, shape: CacheShape) -> Option<KvCache> {
        let same = shape.n_layer == self.layers.len() && shape.kv_dim == self.kv_dim && shape.rolling == self.rolling;
        let fits = if self.rolling { shape.capacity == self.capacity } else { shape.capacity >= self.pos };
        (same && fits).then(|| KvCache { capacity: shape.capacity, ..self.clone() })
    }

    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| (l.k.capacity() + l.v.capacity()) * 4).sum()
    }
}

crate::model::cache::impl_cache_pos!(KvCache);
