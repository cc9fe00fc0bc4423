//! The WebGPU engine (issue 3): quantized GGUF weights on the device in their own
//! bytes, WGSL kernels (shaders/*.wgsl), a rolling KV cache on the GPU and sampling
//! (greedy, temperature / top-k / top-p) on the GPU. Async throughout so the browser can await buffer mapping;
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
