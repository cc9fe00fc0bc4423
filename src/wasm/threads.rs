//! The CPU engine's threads in the browser. The threaded build (`make wasm-mt`:
//! `+atomics,+bulk-memory,+simd128`, std rebuilt with a pinned nightly, shared
//! memory) runs the native engine's pool ([`crate::cpu::kernels::pool`]): rows of
//! each product split across threads, the caller taking part. std cannot spawn a
//! thread in wasm32, so the engine's worker (www/worker.js, through www/threads.js)
//! starts `startPool(n)`'s `n - 1` Web Workers itself, each instantiating this
//! module on the same memory and calling `poolWorker()`, which never returns.
//! The single-threaded build exports the same functions and runs one thread.
//!
//! Why not wasm-bindgen-rayon: the kernels already split their work on this pool
//! (natively tested: results equal at every thread count, decode = prefill bit for
//! bit); a second scheduler in the browser only would be a second engine to test.

use crate::cpu::kernels::pool;
use wasm_bindgen::prelude::*;

/// Whether this module was built with threads (shared memory and atomics).
#[wasm_bindgen(js_name = threadsBuilt)]
pub fn threads_built() -> bool {
    cfg!(target_feature = "atomics")
}

/// Sets the engine's thread count (itself included) before the first product and
/// returns how many Web Workers the caller must start: `threads - 1`, or 0 in the
/// single-threaded build. Fails once the pool exists with another count.
#[wasm_bindgen(js_name = startPool)]
pub fn start_pool(threads: usize) -> Result<usize, JsError> {
    let threads = if threads_built() { threads.max(1) } else { 1 };
    if !pool::init(threads) && pool::global().threads() != threads {
        return Err(JsError::new(&format!("the engine already runs {} threads; {threads} were asked for", pool::global().threads())));
    }
    Ok(threads - 1)
}

/// The threads the engine computes with (its own included), and how many of the
/// workers have started.
#[wasm_bindgen(js_name = poolThreads)]
pub fn pool_threads() -> usize {
    pool::global().threads()
}

#[wasm_bindgen(js_name = poolJoined)]
pub fn pool_joined() -> usize {
    pool::global().joined()
}

/// The body of a pool Web Worker: never returns while the page lives. An error only
/// when more workers were started than `startPool` asked for, or in the
/// single-threaded build.
#[wasm_bindgen(js_name = poolWorker)]
pub fn pool_worker() -> Result<(), JsError> {
    #[cfg(target_feature = "atomics")]
    {
        match pool::serve() {
            Ok(never) => match never {},
            Err(n) => Err(JsError::new(&format!("the engine's pool has all of its {n} workers already"))),
        }
    }
    #[cfg(not(target_feature = "atomics"))]
    Err(JsError::new("this is the single-threaded build of the engine: it has no pool workers"))
}
