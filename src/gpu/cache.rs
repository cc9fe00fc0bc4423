//! The rolling KV cache on the GPU (as src/cpu/cache.rs): position p lives in slot
//! p mod capacity; a sliding-window model needs W slots however long the input. Each
//! layer has its own slot count (`layer_capacity`): the window for a local layer of a
//! model whose layers alternate (gemma3), else `capacity`.
//! Rows are f16 when the device granted `shader-f16` (half the memory and the
//! attention's reads), else f32; chosen when the cache is made.

use super::context::{GpuContext, GpuError};
use super::kernels::{buf, kv_store, Buf, Recorder};
use crate::model::cache::{CacheShape, LocalLayers};

pub struct GpuKvCache {
    pub k: Vec<Buf>,
    pub v: Vec<Buf>,
    /// Next position to be written (= tokens seen so far).
    pub pos: usize,
    pub capacity: usize,
    pub kv_dim: usize,
    /// Whether positions past `capacity` overwrite old slots (sliding window).
    pub rolling: bool,
    /// Elements are f16 (else f32).
    pub half: bool,
    /// Slots of each layer (`CacheShape::layer_capacity`).
    pub layer_capacity: Vec<usize>,
    /// The local layers of a mixed model.
    pub local: Option<LocalLayers>,
}

impl GpuKvCache {
    pub fn new(ctx: &GpuContext, shape: CacheShape, half: bool) -> Result<Self, GpuError> {
        let CacheShape { n_layer, kv_dim, capacity, rolling, local } = shape;
        if half && !ctx.has_f16 {
            return Err(GpuError::Device(format!("an f16 KV cache needs the shader-f16 feature, which {} did not grant", ctx.adapter_name)));
        }
        let elem: u64 = if half { 2 } else { 4 };
        // In u64: on wasm32 the product of a 2^24-slot window and a wide KV row would
        // wrap a usize and pass the limit check.
        let bytes = (capacity as u64).saturating_mul(kv_dim as u64).saturating_mul(elem);
        let limit = (ctx.limits.max_storage_buffer_binding_size as u64).min(ctx.limits.max_buffer_size);
        if bytes > limit {
            return Err(GpuError::TooLarge { tensor: "KV cache layer".into(), bytes, limit });
        }
        let layer_capacity: Vec<usize> = (0..n_layer).map(|l| shape.layer_capacity(l)).collect();
        // `buf` counts 4-byte words; an f16 buffer holds two elements per word.
        let mk = |what: &str| {
            (0..n_layer)
                .map(|l| {
                    let n = layer_capacity[l] * kv_dim;
                    Buf { len: n, ..buf(ctx, &format!("{what} cache {l}"), if half { n.div_ceil(2) } else { n }) }
                })
                .collect()
        };
        Ok(GpuKvCache { k: mk("K"), v: mk("V"), pos: 0, capacity, kv_dim, rolling, half, layer_capacity, local })
    }

    pub fn bytes(&self) -> u64 {
        (self.layer_capacity.iter().sum::<usize>() * 2 * self.kv_dim * if self.half { 2 } else { 4 }) as u64
    }

    /// Records the write of a chunk's K/V rows (positions pos..pos+n) into their
    /// slots, one dispatch for both; a chunk longer than the buffer keeps only its
    /// last `capacity` rows.
    pub fn store(&self, rec: &mut Recorder, layer: usize, k: &Buf, v: &Buf, n: usize) -> Result<(), GpuError> {
        kv_store(rec, k, v, &self.k[layer], &self.v[layer], n, self.kv_dim, self.pos, self.layer_capacity[layer], self.half)
    }
}

crate::model::cache::impl_cache_pos!(GpuKvCache);
