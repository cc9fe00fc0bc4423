//! A fork-join pool for the matmuls of a decode step: ~150 products of 10–100 µs
//! each per token, back to back. Workers spin briefly between jobs (as ggml's
//! threadpool does) instead of parking at once, so a job starts in well under a
//! microsecond; then they yield, then park on a condvar and cost nothing. The caller
//! takes part in every job, so `threads` = 1 means no worker at all.
//!
//! In the threaded wasm build (`+atomics`: shared memory, `make wasm-mt`) std cannot
//! spawn threads; the workers are Web Workers instantiated on the same module and
//! memory, which the engine's worker starts (www/threads.js) and which each call
//! [`serve`] and never return. A job needs no worker to finish (the caller takes
//! every index nobody else took), so a Web Worker that is slow to start only makes
//! the first products slower, never wrong or stuck.

use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// One job: `f(i)` for every `i < n`, indices handed out by `next`.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
    done: AtomicUsize,
}

struct Shared {
    /// Bumped for every job; workers run a job when they see a new value.
    epoch: AtomicUsize,
    /// Pointer to the current `Job` on the caller's stack (0 when none).
    job: AtomicUsize,
    /// Workers currently inside a job; the caller waits for 0 before returning so no
    /// worker still reads the `Job` after it is gone.
    inside: AtomicUsize,
    /// Workers parked (or about to park) on `wake`; the caller locks and notifies only
    /// when there is one. In wasm a notify is a call into the engine's runtime, and a
    /// decode step runs ~200 jobs while the workers spin.
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
    /// Workers that have entered their loop (natively soon after `new`; in wasm when
    /// each Web Worker has instantiated the module), so the page can report it.
    joined: Arc<AtomicUsize>,
    /// Serializes callers: one job at a time.
    busy: Mutex<()>,
}

/// Idle workers spin this many rounds (tens of µs natively: the gap between two
/// products of a decode step), then keep checking while yielding the core (so a busy
/// machine is not made busier), then park.
/// In wasm `spin_loop` is no instruction at all (x86's PAUSE alone is tens of cycles)
/// and `yield_now` does nothing, so the native count gave up after a few µs: the Web
/// Worker parked in `memory.atomic.wait` between the products of one decode step (after
/// SwiGLU's 1536 exponentials, say) and each wake-up cost more than the gap. Fifty
/// times the rounds keeps a wasm worker spinning about as long as a native one.
const SPIN_ROUNDS: usize = if cfg!(target_arch = "wasm32") { 1_000_000 } else { 20_000 };
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "atomics")), allow(dead_code))]
const YIELD_ROUNDS: usize = 2_000;

/// Waits for `done()` the same way: spin briefly, then yield.
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0;
    while !done() {
        if spins < SPIN_ROUNDS {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

impl Pool {
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared { epoch: AtomicUsize::new(0), job: AtomicUsize::new(0), inside: AtomicUsize::new(0), sleepers: AtomicUsize::new(0), sleep: Mutex::new(()), wake: Condvar::new() });
        let workers = threads.saturating_sub(1);
        let joined = Arc::new(AtomicUsize::new(0));
        #[cfg(not(target_arch = "wasm32"))]
        for _ in 0..workers {
            let (s, j) = (shared.clone(), joined.clone());
            std::thread::spawn(move || {
                j.fetch_add(1, AcqRel);
                worker(&s)
            });
        }
        Pool { shared, workers, joined, busy: Mutex::new(()) }
    }

    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Workers running now (at most `threads() - 1`).
    pub fn joined(&self) -> usize {
        self.joined.load(Acquire)
    }

    /// Runs `f(0..n)` across the pool and the calling thread; returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.workers == 0 || n <= 1 {
            (0..n).for_each(f);
            return;
        }
        let _guard = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the job and `f` outlive every worker's use of them: we wait below
        // until all indices are done and no worker is inside the job.
        let f: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
        let job = Job { f, n, next: AtomicUsize::new(0), done: AtomicUsize::new(0) };
        let s = &self.shared;
        s.job.store(&job as *const Job as usize, Release);
        // SeqCst pairs with the worker's: it counts itself a sleeper, then checks the
        // epoch; we bump the epoch, then check for sleepers. One of us sees the other.
        s.epoch.fetch_add(1, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _l = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        run_job(&job);
        wait_until(|| job.done.load(Acquire) >= n);
        s.job.store(0, Release);
        wait_until(|| s.inside.load(Acquire) == 0);
    }
}

fn run_job(job: &Job) {
    loop {
        let i = job.next.fetch_add(1, AcqRel);
        if i >= job.n {
            return;
        }
        // SAFETY: `f` is alive while the job is published (see `Pool::run`).
        unsafe { (*job.f)(i) };
        job.done.fetch_add(1, AcqRel);
    }
}

// Unused in the single-threaded wasm build, which has no workers.
#[cfg_attr(all(target_arch = "wasm32", not(target_feature = "atomics")), allow(dead_code))]
fn worker(s: &Shared) -> ! {
    let mut seen = s.epoch.load(Acquire);
    loop {
        let mut spins = 0;
        while s.epoch.load(Acquire) == seen {
            if spins < SPIN_ROUNDS {
                spins += 1;
                std::hint::spin_loop();
            } else if spins < SPIN_ROUNDS + YIELD_ROUNDS {
                spins += 1;
                std::thread::yield_now();
            } else {
                let l = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                s.sleepers.fetch_add(1, SeqCst);
                if s.epoch.load(SeqCst) == seen {
                    drop(s.wake.wait(l));
                } else {
                    drop(l);
                }
                s.sleepers.fetch_sub(1, SeqCst);
            }
        }
        seen = s.epoch.load(Acquire);
        s.inside.fetch_add(1, AcqRel);
        let p = s.job.load(Acquire);
        if p != 0 {
            // SAFETY: a non-zero pointer is a live job until `inside` drops to 0.
            run_job(unsafe { &*(p as *const Job) });
        }
        s.inside.fetch_sub(1, AcqRel);
    }
}

/// The body of one of the threaded wasm build's Web Workers: joins the global pool
/// as a worker and never returns. Called once per Web Worker (through
/// `precis::wasm::threads`); a worker past `threads() - 1` is refused, so the count
/// the page shows stays true.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub fn serve() -> Result<std::convert::Infallible, usize> {
    let p = global();
    let n = p.joined.fetch_add(1, AcqRel);
    if n >= p.workers {
        p.joined.fetch_sub(1, AcqRel);
        return Err(p.workers);
    }
    worker(&p.shared)
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Sets the number of threads (caller included) before first use; false if the pool
/// already exists.
pub fn init(threads: usize) -> bool {
    POOL.set(Pool::new(threads.max(1))).is_ok()
}

/// The process-wide pool: `PRECIS_THREADS` or all cores, unless [`init`] ran first.
pub fn global() -> &'static Pool {
    POOL.get_or_init(|| {
        let env = std::env::var("PRECIS_THREADS").ok().and_then(|v| v.parse().ok());
        Pool::new(env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_exactly_once() {
        let p = Pool::new(3);
        for n in [0, 1, 2, 7, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            p.run(n, &|i| {
                hits[i].fetch_add(1, Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "n = {n}");
        }
    }
}

/// An output buffer that a job's indices write into at the same time, each its own
/// elements: the one place the CPU kernels share a `*mut f32` across threads.
/// Borrowing the slice mutably keeps anyone else from reading it while it lives.
pub struct SharedOut<'a> {
    ptr: *mut f32,
    len: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: a `SharedOut` is only written through `write`/`ptr`, whose callers promise
// that no two threads touch the same element; the buffer outlives it by the borrow.
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    pub fn new(out: &'a mut [f32]) -> Self {
        SharedOut { ptr: out.as_mut_ptr(), len: out.len(), _out: std::marker::PhantomData }
    }

    /// Stores `v` at `i` (bounds-checked in debug builds).
    ///
    /// # Safety
    /// No other thread reads or writes element `i` while this job runs.
    #[inline(always)]
    pub unsafe fn write(&self, i: usize, v: f32) {
        debug_assert!(i < self.len, "SharedOut index {i} of {}", self.len);
        *self.ptr.add(i) = v
    }

    /// The buffer's start, for kernels that write runs of it through raw pointers.
    ///
    /// # Safety
    /// As for `write`, for every element written through it.
    pub unsafe fn ptr(&self) -> *mut f32 {
        self.ptr
    }

    /// Elements `start..start + len` as a slice of their own.
    ///
    /// # Safety
    /// No other thread touches those elements while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn piece(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "SharedOut piece {start}..{} of {}", start + len, self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}

/// `f(i, chunk_i)` for the consecutive `chunk`-sized pieces of `out`, in parallel.
pub fn for_each_chunk_mut(out: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let (len, chunk) = (out.len(), chunk.max(1));
    let out = SharedOut::new(out);
    global().run(len.div_ceil(chunk), &|i| {
        let start = i * chunk;
        // SAFETY: index i gets the i-th chunk only.
        f(i, unsafe { out.piece(start, chunk.min(len - start)) })
    });
}
