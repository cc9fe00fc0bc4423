//! The KV cache's shape and the context rule, the same for the CPU's
//! `cpu::cache::KvCache` and the GPU's `gpu::cache::GpuKvCache` (Mistral's reference
//! `RotatingBufferCache`): position p lives in slot `p mod capacity`, so a
//! sliding-window model needs only W slots however long the input, while a dense
//! model gets `n_ctx` slots and never wraps. A model whose layers alternate between the
//! window and the whole context (gemma3) gets `n_ctx` slots for its global layers and W
//! rolling slots for its local ones: since a dense layer never reaches its last slot,
//! `p mod capacity` is the slot rule for both, each with its own capacity.

use crate::format::hparams::Hparams;

/// How many rows a model's cache holds, per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheShape {
    pub n_layer: usize,
    pub kv_dim: usize,
    /// Slots per layer: the window W, or the context.
    pub capacity: usize,
    /// Whether positions past `capacity` overwrite old slots (sliding window).
    pub rolling: bool,
    /// The local layers of a model whose layers alternate (gemma3): they hold `window`
    /// rolling slots while the others hold `capacity`.
    pub local: Option<LocalLayers>,
}

/// Which layers of a cache hold only the window: every layer but each `global_every`-th
/// (`l % global_every == global_every - 1`), as `Hparams::is_global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLayers {
    pub window: usize,
    pub global_every: usize,
}

impl CacheShape {
    /// W slots for a sliding-window model, else `n_ctx` (at least one).
    /// A model with local and global layers: `n_ctx` (dense) with W slots for the local layers.
    pub fn for_model(hp: &Hparams, n_ctx: usize) -> Self {
        let local = match (hp.sliding_window, hp.global_every) {
            (Some(window), Some(global_every)) if hp.mixed_windows() => Some(LocalLayers { window, global_every }),
            _ => None,
        };
        let (capacity, rolling) = match hp.sliding_window {
            Some(w) if local.is_none() => (w, true),
            _ => (n_ctx.max(1), false),
        };
        CacheShape { n_layer: hp.n_layer, kv_dim: hp.kv_dim(), capacity, rolling, local }
    }

    /// Slots of layer `l`: the window for a local layer of a mixed model, else `capacity`.
    pub fn layer_capacity(&self, l: usize) -> usize {
        match self.local {
            Some(LocalLayers { window, global_every }) if l % global_every != global_every - 1 => window,
            _ => self.capacity,
        }
    }
}

/// Where a cache stands: both caches implement it, so the rules below are written once.
pub trait CachePos {
    /// Next position to be written (= tokens seen so far).
    fn pos(&self) -> usize;
    fn capacity(&self) -> usize;
    fn rolling(&self) -> bool;

    /// Whether `n` more tokens would overflow a dense model's context (a rolling cache
    /// is never full: it forgets what slid out of the window).
    fn full_after(&self, n: usize) -> bool {
        !self.rolling() && self.pos() + n > self.capacity()
    }

    /// Keys the next single query attends to: itself and every earlier position the
    /// cache still holds and the window (`window`, if any) reaches.
    fn keys_for_next(&self, window: Option<usize>) -> usize {
        let pos = self.pos();
        let oldest = pos.saturating_sub(self.capacity()).max(match window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        });
        pos + 1 - oldest
    }
}

/// Implements [`CachePos`] for a cache with `pos`, `capacity` and `rolling` fields
/// (the CPU's and the GPU's), so the rule's inputs are read the same way in both.
macro_rules! impl_cache_pos {
    ($t:ty) => {
        impl $crate::model::cache::CachePos for $t {
            fn pos(&self) -> usize {
                self.pos
            }
            fn capacity(&self) -> usize {
                self.capacity
            }
            fn rolling(&self) -> bool {
                self.rolling
            }
        }
    };
}
pub(crate) use impl_cache_pos;
