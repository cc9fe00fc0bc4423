//! The KV cache in host memory, shaped by [`CacheShape`] (the rolling-buffer rule
//! and the context rule live in `model::cache`, shared with the GPU's cache). Each
//! layer has its own slot count: the cache's `capacity`, or the window for a local layer
//! of a model whose layers alternate (gemma3).

use crate::model::cache::{CacheShape, LocalLayers};

#[derive(Clone)]
pub struct LayerCache {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// Slots of this layer: position p lives in slot p mod `capacity`.
    pub capacity: usize,
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
    /// The local layers of a mixed model (their `LayerCache::capacity` is the window).
    pub local: Option<LocalLayers>,
}

impl KvCache {
    /// An empty cache; rows are allocated as positions arrive, so short inputs stay small.
    pub fn new(shape: CacheShape) -> Self {
        let layers = (0..shape.n_layer).map(|l| LayerCache { k: vec![], v: vec![], capacity: shape.layer_capacity(l) }).collect();
        KvCache { layers, pos: 0, capacity: shape.capacity, kv_dim: shape.kv_dim, rolling: shape.rolling, local: shape.local }
    }

    /// The shape this cache was made with (at its current capacity).
    pub fn shape(&self) -> CacheShape {
        CacheShape { n_layer: self.layers.len(), kv_dim: self.kv_dim, capacity: self.capacity, rolling: self.rolling, local: self.local }
    }

    /// Slot of absolute position `p` in layer `layer`.
    #[inline]
    pub fn slot(&self, layer: usize, p: usize) -> usize {
        p % self.layers[layer].capacity
    }

    /// Oldest position layer `layer` still holds before writing position `self.pos`.
    pub fn oldest(&self, layer: usize) -> usize {
        self.pos.saturating_sub(self.layers[layer].capacity)
    }

    /// Stores the K/V rows of a chunk that starts at `self.pos`. A chunk longer than
    /// the buffer keeps only its last `capacity` rows, all a later query can see.
    pub fn store(&mut self, layer: usize, k: &[f32], v: &[f32]) {
        let d = self.kv_dim;
        let n = k.len() / d;
        let lc = &mut self.layers[layer];
        let (pos, cap) = (self.pos, lc.capacity);
        let rows = (pos + n).min(cap);
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
    /// another model's layout, a rolling buffer of another window (or local layers of
    /// another window), or a dense context too short for the rows already written. The
    /// local layers of a mixed model keep their window; the others take the new context.
    pub fn reshaped(&self, shape: CacheShape) -> Option<KvCache> {
        let same = shape.n_layer == self.layers.len() && shape.kv_dim == self.kv_dim && shape.rolling == self.rolling && shape.local == self.local;
        let fits = if self.rolling { shape.capacity == self.capacity } else { shape.capacity >= self.pos };
        (same && fits).then(|| {
            let mut c = KvCache { capacity: shape.capacity, ..self.clone() };
            c.layers.iter_mut().enumerate().for_each(|(l, lc)| lc.capacity = shape.layer_capacity(l));
            c
        })
    }

    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| (l.k.capacity() + l.v.capacity()) * 4).sum()
    }
}

crate::model::cache::impl_cache_pos!(KvCache);
