//! The prompt-prefix cache: the KV state after a prompt's fixed opening (the
//! structured format's instruction and worked examples are ~2,000 tokens, the same
//! for every transcript), kept after one generation so the next one that opens with
//! the same tokens starts from it instead of reading them again (llama.cpp's server
//! keeps its slot's cache for the same reason). A few prefixes are kept at once: the
//! passes of one summary open differently (see [`MAX_KEPT`]).
//!
//! Results must not depend on whether the prefix came from here: a generation asked
//! to keep `n` tokens always cuts its prefill at `n`, cached or not, so the chunks
//! after the prefix are the same either way, and a snapshot is reused only by a
//! generation that asks for exactly its length (a different cut would change how
//! the prefix's own chunks were formed).

use crate::cpu::cache::KvCache;
use std::sync::Mutex;

/// The KV state after a prefix, on the backend that computed it.
pub(crate) enum Snapshot {
    Cpu(KvCache),
    #[cfg(feature = "gpu")]
    Gpu(crate::gpu::GpuKvCache),
}

impl Snapshot {
    /// Bytes the snapshot holds (host or GPU memory).
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            Snapshot::Cpu(c) => c.bytes() as u64,
            #[cfg(feature = "gpu")]
            Snapshot::Gpu(c) => c.bytes(),
        }
    }
}

struct Kept {
    tokens: Vec<u32>,
    state: Snapshot,
    /// When it was last put or used (a counter), for eviction.
    used: u64,
}

/// Prefixes kept at once. A structured summary alone uses two (its section passes
/// share one system turn, its overview pass another with the worked examples), and a
/// long transcript's map passes a third; one slot made each evict the other, so the
/// second summary read the section prefix again five times.
pub const MAX_KEPT: usize = 4;

/// The kept prefixes of one engine, at most [`MAX_KEPT`]; the least recently used
/// goes first. Each is a prompt's fixed opening, so they are small next to the model
/// (SmolLM2's ~1,300-token overview prefix: 60 MB of f32 cache rows).
#[derive(Default)]
pub struct PrefixCache {
    kept: Mutex<(Vec<Kept>, u64)>,
}

impl PrefixCache {
    /// Runs `f` on the kept state that is exactly `prompt[..keep]`, if any.
    pub(crate) fn with_match<R>(&self, prompt: &[u32], keep: usize, f: impl FnOnce(&Snapshot) -> R) -> Option<R> {
        let mut guard = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, clock) = &mut *guard;
        if keep == 0 || prompt.len() <= keep {
            return None;
        }
        let k = kept.iter_mut().find(|k| k.tokens.len() == keep && prompt[..keep] == k.tokens[..])?;
        *clock += 1;
        k.used = *clock;
        Some(f(&k.state))
    }

    /// Whether `prefix` is not kept yet (the snapshot is only made then).
    pub(crate) fn wants(&self, prefix: &[u32]) -> bool {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        !kept.0.iter().any(|k| k.tokens[..] == *prefix)
    }

    /// Keeps `state` as the state after `prefix`, evicting the least recently used
    /// prefix when [`MAX_KEPT`] are kept.
    pub(crate) fn put(&self, prefix: &[u32], state: Snapshot) {
        let mut guard = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, clock) = &mut *guard;
        *clock += 1;
        kept.retain(|k| k.tokens[..] != *prefix);
        if kept.len() >= MAX_KEPT {
            let oldest = (0..kept.len()).min_by_key(|&i| kept[i].used).expect("MAX_KEPT is at least 1");
            kept.remove(oldest);
        }
        kept.push(Kept { tokens: prefix.to_vec(), state, used: *clock });
    }

    /// Runs `f` on the longest kept prefix's tokens and state, if any (the one worth
    /// saving across reloads: a format's instruction and worked examples).
    pub(crate) fn with_kept<R>(&self, f: impl FnOnce(&[u32], &Snapshot) -> R) -> Option<R> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.0.iter().max_by_key(|k| k.tokens.len()).map(|k| f(&k.tokens, &k.state))
    }

    /// Tokens of the longest kept prefix and the bytes all kept states hold (0, 0: none).
    pub fn kept(&self) -> (usize, u64) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.0.iter().map(|k| k.tokens.len()).max().unwrap_or(0), kept.0.iter().map(|k| k.state.bytes()).sum())
    }

    /// Forgets every kept prefix (their memory is freed).
    pub fn clear(&self) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cache::CacheShape;

    fn snapshot() -> Snapshot {
        Snapshot::Cpu(KvCache::new(CacheShape { n_layer: 1, kv_dim: 2, capacity: 4, rolling: false, local: None }))
    }

    #[test]
    fn prefixes_are_found_exactly_and_the_least_recently_used_goes_first() {
        let c = PrefixCache::default();
        let prompt: Vec<u32> = (0..100).collect();
        for n in 1..=MAX_KEPT {
            c.put(&prompt[..n * 10], snapshot());
        }
        // Only an exact length matches, and only a prompt that goes on past it.
        assert!(c.with_match(&prompt, 20, |_| ()).is_some() && c.with_match(&prompt, 25, |_| ()).is_none() && c.with_match(&prompt[..20], 20, |_| ()).is_none());
        assert!(!c.wants(&prompt[..10]) && c.wants(&prompt[..15]));
        // 10 is now the least recently used (20 was just used): a fifth prefix evicts it.
        c.put(&prompt[..50], snapshot());
        assert!(c.with_match(&prompt, 10, |_| ()).is_none() && c.with_match(&prompt, 20, |_| ()).is_some());
        assert_eq!(c.kept().0, 50);
        c.clear();
        assert_eq!(c.kept(), (0, 0));
    }
}
