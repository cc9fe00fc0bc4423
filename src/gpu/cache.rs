//! The rolling KV cache on the GPU (as src/cache.rs): position p lives in slot
//! p mod capacity; a sliding-window model needs W slots however long the input.
//! Rows are f32 (an f16 cache when `shader-f16` is granted is not done yet).

use super::context::{GpuContext, GpuError};
use super::kernels::{buf, Buf, Recorder};

pub struct GpuKvCache {
    pub k: Vec<Buf>,
    pub v: Vec<Buf>,
    /// Next position to be written (= tokens seen so far).
    pub pos: usize,
    pub capacity: usize,
    pub kv_dim: usize,
    /// Whether positions past `capacity` overwrite old slots (sliding window).
    pub rolling: bool,
}

impl GpuKvCache {
    pub fn new(ctx: &GpuContext, n_layer: usize, kv_dim: usize, capacity: usize, rolling: bool) -> Result<Self, GpuError> {
        let bytes = (capacity * kv_dim * 4) as u64;
        let limit = (ctx.limits.max_storage_buffer_binding_size as u64).min(ctx.limits.max_buffer_size);
        if bytes > limit {
            return Err(GpuError::TooLarge { tensor: "KV cache layer".into(), bytes, limit });
        }
        let mk = |what: &str| (0..n_layer).map(|l| buf(ctx, &format!("{what} cache {l}"), capacity * kv_dim)).collect();
        Ok(GpuKvCache { k: mk("K"), v: mk("V"), pos: 0, capacity, kv_dim, rolling })
    }

    pub fn bytes(&self) -> u64 {
        (self.k.len() * 2 * self.capacity * self.kv_dim * 4) as u64
    }

    /// Records the copy of a chunk's K/V rows (positions pos..pos+n) into their slots;
    /// a chunk longer than the buffer keeps only its last `capacity` rows. At most two
    /// contiguous runs per buffer (before and after the wrap).
    pub fn store(&self, rec: &mut Recorder, layer: usize, k: &Buf, v: &Buf, n: usize) -> Result<(), GpuError> {
        let (d, cap) = (self.kv_dim, self.capacity);
        let mut i = n.saturating_sub(cap);
        while i < n {
            let s = (self.pos + i) % cap;
            let run = (cap - s).min(n - i);
            rec.copy(k, i * d, &self.k[layer], s * d, run * d)?;
            rec.copy(v, i * d, &self.v[layer], s * d, run * d)?;
            i += run;
        }
        Ok(())
    }
}
