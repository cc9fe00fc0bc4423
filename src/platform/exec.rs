//! Driving the engine's futures without an async runtime. The only futures that can
//! be pending are GPU readbacks: natively the device is polled while we block; in the
//! browser they resolve from the event loop, so there a future must be awaited
//! (wasm-bindgen-futures) and blocking works only when nothing is pending (the CPU path).

use std::future::Future;

/// Runs `f` to completion, or `None` where it would have to wait and cannot
/// (wasm32, or a build without the `gpu` feature's pollster, on a pending future).
pub fn block_on<F: Future>(f: F) -> Option<F::Output> {
    #[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
    {
        Some(pollster::block_on(f))
    }
    #[cfg(not(all(feature = "gpu", not(target_arch = "wasm32"))))]
    {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
