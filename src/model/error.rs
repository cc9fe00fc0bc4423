//! The two ways a model can fail, the same for the CPU and the GPU pass: loading it
//! ([`LoadError`], naming the file and the tensor) and running it ([`ModelError`]).

use crate::format::gguf::GgufError;
use crate::format::hparams::HparamsError;
use crate::format::source::ReadError;
use crate::text::tokenizer::TokenizerError;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: {source}")]
    Gguf { file: String, source: GgufError },
    #[error("{file}: {source}")]
    Hparams { file: String, source: HparamsError },
    #[error("{file}: tokenizer: {source}")]
    Tokenizer { file: String, source: TokenizerError },
    #[error("{file}: tensor `{name}` is missing")]
    Missing { file: String, name: String },
    #[error("{file}: tensor `{name}` (info at offset {offset}) has shape {found:?}, but the metadata implies {expected:?}")]
    Shape { file: String, name: String, offset: u64, found: Vec<u64>, expected: Vec<u64> },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{file}: tensor `{name}`: {message}")]
    Tensor { file: String, name: String, message: String },
    #[error("{file}: the model's tensors take {total} bytes (the largest, `{largest}`, {largest_bytes}), but only {available} bytes of memory are available")]
    TooLarge { file: String, total: u64, largest: String, largest_bytes: u64, available: u64 },
    #[error("{file}: the tokenizer has {tokens} tokens but the model's vocabulary (token_embd.weight) has {n_vocab} rows; ids past the tokenizer would print as nothing")]
    Vocabulary { file: String, tokens: usize, n_vocab: usize },
    /// The backend refused the weights (the GPU: a binding limit, out of memory, a
    /// lost device); the source is the backend's own error.
    #[error("{file}: {source}")]
    Backend { file: String, source: Box<dyn std::error::Error + Send + Sync> },
}

impl LoadError {
    pub fn io(file: &str, source: std::io::Error) -> Self {
        LoadError::Read(ReadError::Io { file: file.into(), source })
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ModelError {
    #[error("token id {id} is outside the vocabulary of {n_vocab}")]
    BadToken { id: u32, n_vocab: usize },
    #[error("context is full: position {pos} + {n} tokens exceeds the {n_ctx}-token context of this dense-attention model")]
    ContextFull { pos: usize, n: usize, n_ctx: usize },
    #[error("compute error: {0}")]
    Compute(String),
    #[error("empty input: forward needs at least one token")]
    Empty,
    /// The caller asked to stop between two layers of a chunk; the cache is left
    /// half-written and must be dropped.
    #[error("stopped by the caller in the middle of a forward pass")]
    Stopped,
}
