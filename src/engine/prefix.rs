//! The prompt-prefix cache: the KV state after a prompt's fixed opening (the
//! structured format's instruction and worked examples are ~2,000 tokens, the same
//! for every transcript), kept after one generation so the next one that opens with
//! the same tokens starts from it instead of reading them again (llama.cpp's server
//! keeps its slot's cache for the same reason).
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
}

/// One kept prefix per engine. A longer prefix is worth more than a shorter one (a
/// long transcript's map passes share only a one-line system turn, its final
/// structured pass ~2,000 tokens), so a shorter one never evicts it; a prefix of
/// the same or greater length replaces it (another format's instruction).
#[derive(Default)]
pub struct PrefixCache {
    kept: Mutex<Option<Kept>>,
}

impl PrefixCache {
    /// Runs `f` on the kept state when it is exactly `prompt[..keep]`.
    pub(crate) fn with_match<R>(&self, prompt: &[u32], keep: usize, f: impl FnOnce(&Snapshot) -> R) -> Option<R> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let k = kept.as_ref()?;
        (keep > 0 && k.tokens.len() == keep && prompt.len() > keep && prompt[..keep] == k.tokens[..]).then(|| f(&k.state))
    }

    /// Whether a prefix of `len` tokens would be kept (the snapshot is only made then).
    pub(crate) fn wants(&self, prefix: &[u32]) -> bool {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref().is_none_or(|k| prefix.len() >= k.tokens.len() && k.tokens[..] != *prefix)
    }

    pub(crate) fn put(&self, prefix: &[u32], state: Snapshot) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(Kept { tokens: prefix.to_vec(), state });
    }

    /// Runs `f` on the kept prefix's tokens and state, if any.
    pub(crate) fn with_kept<R>(&self, f: impl FnOnce(&[u32], &Snapshot) -> R) -> Option<R> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref().map(|k| f(&k.tokens, &k.state))
    }

    /// Tokens of the kept prefix and the bytes its state holds (0, 0: none).
    pub fn kept(&self) -> (usize, u64) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref().map_or((0, 0), |k| (k.tokens.len(), k.state.bytes()))
    }

    /// Forgets the kept prefix (its memory is freed).
    pub fn clear(&self) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
