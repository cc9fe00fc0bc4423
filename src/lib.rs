//! Precis: a private, in-browser summarizer running quantized models of the llama
//! lineage (Mistral 7B, Mixtral 8x7B, SmolLM2, Qwen2.5, Qwen3; `format::family`) from GGUF files.
//!
//! The folders are the layers, read top-down (docs/ARCHITECTURE.md draws them):
//! the apps (`bin/`, [`wasm`]) → [`summarize`] → [`engine`] → [`cpu`] | [`gpu`] →
//! [`model`] (the rules both forward passes share) → [`format`] / [`text`] /
//! [`transcript`] / [`platform`]. A module imports only from layers below its own.

pub mod cpu;
pub mod engine;
pub mod format;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod model;
pub mod platform;
pub mod summarize;
pub mod text;
pub mod transcript;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use engine::{Backend, Engine, GenerateOptions, Generation, StopReason};
pub use format::hparams::{Hparams, Overrides};
