//! What a forward call may be given, checked the same way by both passes before any
//! weight is touched, and how a prefill is cut into chunks.

use crate::format::hparams::Hparams;
use crate::model::cache::CachePos;
use crate::model::error::ModelError;

/// Which logits a forward call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    Last,
    All,
}

/// At least one token, every id inside the vocabulary, and room for all of them in a
/// dense model's context.
pub fn check_input(hp: &Hparams, tokens: &[u32], cache: &impl CachePos) -> Result<(), ModelError> {
    if tokens.is_empty() {
        return Err(ModelError::Empty);
    }
    if let Some(&id) = tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
        return Err(ModelError::BadToken { id, n_vocab: hp.n_vocab });
    }
    if cache.full_after(tokens.len()) {
        return Err(ModelError::ContextFull { pos: cache.pos(), n: tokens.len(), n_ctx: cache.capacity() });
    }
    Ok(())
}

/// Tokens per prefill chunk: at least one, at most `requested`, and never more than
/// the sliding window (a chunk's own keys must fit the W slots it is written into,
/// and attention scratch stays O(chunk · (W + chunk))).
pub fn prefill_chunk(hp: &Hparams, requested: usize) -> usize {
    requested.max(1).min(hp.sliding_window.unwrap_or(usize::MAX))
}
