//! What the CPU and GPU forward passes share, written once: the errors, the input
//! checks and prefill chunking, the cache's shape and context rule, the rotary
//! frequencies, the tensors a model has and the walks over them, MoE grouping and the
//! sampler's settings. `cpu::model::Model::forward` and `gpu::model::GpuModel::run`
//! are the two passes; their steps are numbered alike.

pub mod cache;
pub mod error;
pub mod input;
pub mod rope;
pub mod routing;
pub mod sampling;
pub mod spec;

pub use error::{LoadError, ModelError};
pub use input::Logits;
