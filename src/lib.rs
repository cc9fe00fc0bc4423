//! Precis: a private, in-browser summarizer running quantized llama-architecture
//! models (Mistral 7B, Mixtral 8x7B, SmolLM2) from GGUF files.

pub mod attention;
pub mod cache;
pub mod chat;
pub mod clock;
pub mod exec;
pub mod ffn;
pub mod generate;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod gguf;
pub mod hparams;
pub mod kernels;
pub mod linear;
pub mod model;
pub mod moe;
pub mod ops;
pub mod quant;
pub mod reference;
pub mod rope;
pub mod sampling;
pub mod summarize;
pub mod transcript;
pub mod tokenizer;
pub mod weights;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use generate::{Backend, Engine, GenerateOptions, Generation, StopReason};
pub use hparams::{Hparams, Overrides};
