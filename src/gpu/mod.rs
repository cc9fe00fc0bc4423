//! The WebGPU engine: quantized GGUF weights on the device in their own bytes (never
//! expanded to f32, so a model fits where its file does), WGSL kernels
//! (shaders/*.wgsl, one Rust function each in [`kernels`]), a rolling KV cache on the
//! GPU and sampling (greedy, temperature / top-k / top-p) on the GPU, so a decode step
//! reads back one token id. Async throughout so the browser can await buffer mapping;
//! natively [`block_on`] drives the futures.

pub mod cache;
pub mod context;
pub mod kernels;
pub mod model;
pub mod profile;
pub mod sample;
pub mod submit;
pub mod weights;

pub use cache::GpuKvCache;
pub use context::{GpuContext, GpuError, Requirements};
pub use model::{GpuModel, DeviceSampling};

/// Runs a future to completion natively (wgpu's futures resolve once the device is
/// polled, which `GpuContext::wait` does); the mechanism is [`crate::platform::exec::block_on`].
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    crate::platform::exec::block_on(f).expect("natively block_on waits for the future")
}
