//! How much work one command buffer may hold.
//!
//! A prefill chunk recorded as one submission is minutes of work on a software
//! adapter (lavapipe, SwiftShader) and seconds on a small GPU; a browser's GPU
//! watchdog loses the device when one submission runs for seconds (Chrome's
//! hang detection, Windows' TDR at 2 s), and natively a wait that long looks like a
//! hung device. So prefill work is cut into submissions of bounded *units*: the
//! bytes of weights a dispatch reads times the tokens it applies them to (plus
//! attention's multiply-adds at the same rate), a measure of work that does not
//! depend on the model. Decode steps are one submission each, as before.
//!
//! The budget starts from the adapter's kind and, natively, follows the measured
//! time of each submission towards [`TARGET_S`]; in the browser it stays at its
//! start (a submission's end cannot be awaited inside a step there).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The time one submission should take once the rate is known.
pub const TARGET_S: f64 = 0.5;
/// Budget bounds: below MIN a submission is mostly overhead; above MAX nothing is split.
pub const MIN_UNITS: u64 = 1 << 22;
pub const MAX_UNITS: u64 = 1 << 42;
/// Starting budgets. A CPU adapter: lavapipe ran SmolLM2 prefill at 2-3e8 units/s on
/// the 2-core dev VM and SwiftShader at about 1e8 (830 tokens in 656 s), so 0.3-0.7 s.
/// Other adapters are unknown until measured; 64 Gi units is about 0.2 s of a laptop's
/// integrated GPU at 3e11/s (a 7B Q4 model's 512-token chunk is then ~30 submissions).
pub const CPU_ADAPTER_UNITS: u64 = 64 << 20;
pub const GPU_ADAPTER_UNITS: u64 = 64 << 30;

pub struct SubmitBudget {
    units: AtomicU64,
    adaptive: AtomicBool,
    /// Natively: the last submission not yet waited for.
    pub(super) pending: Mutex<Option<Pending>>,
    /// When the last waited-for submission was seen complete.
    pub(super) last_done: Mutex<f64>,
    pub(super) stats: Mutex<SubmitStats>,
}

/// Submissions since the last [`SubmitBudget::take_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmitStats {
    pub submits: usize,
    /// Units in all of them, and in the largest.
    pub units: u64,
    pub max_units: u64,
}

/// Commands in one step a [`super::kernels::Recorder`] submitted (the profiler's
/// per-dispatch passes aside). Here, below both the recorder that counts them and the
/// profiler that keeps them per step, so neither of those imports the other's types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    pub dispatches: usize,
    /// Compute passes (a buffer copy ends one).
    pub passes: usize,
    pub copies: usize,
    /// Command buffers submitted (prefill is cut by the submission budget; its units
    /// are counted by [`SubmitBudget::take_stats`]).
    pub submits: usize,
}

// In the browser nothing is waited for, so only the index is kept.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(super) struct Pending {
    pub(super) index: wgpu::SubmissionIndex,
    pub(super) units: u64,
    pub(super) at: f64,
}

impl SubmitBudget {
    /// `PRECIS_GPU_SUBMIT_UNITS=N` fixes the budget (no adaptation).
    pub fn new(cpu_adapter: bool) -> Self {
        let fixed = std::env::var("PRECIS_GPU_SUBMIT_UNITS").ok().and_then(|v| v.parse::<u64>().ok());
        let start = fixed.unwrap_or(if cpu_adapter { CPU_ADAPTER_UNITS } else { GPU_ADAPTER_UNITS });
        SubmitBudget { units: AtomicU64::new(start.max(1)), adaptive: AtomicBool::new(fixed.is_none()), pending: Mutex::new(None), last_done: Mutex::new(0.0), stats: Mutex::new(SubmitStats::default()) }
    }

    /// Units one submission may hold now.
    pub fn units(&self) -> u64 {
        self.units.load(Ordering::Relaxed)
    }

    /// Fixes the budget at `units` (tests; no adaptation afterwards).
    pub fn fix(&self, units: u64) {
        self.adaptive.store(false, Ordering::Relaxed);
        self.units.store(units.max(1), Ordering::Relaxed);
    }

    /// The submissions counted since the last call, and a new count.
    pub fn take_stats(&self) -> SubmitStats {
        std::mem::take(&mut *self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Everything submitted is complete (a full wait returned).
    pub(crate) fn all_done(&self) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
        *self.last_done.lock().unwrap_or_else(|e| e.into_inner()) = crate::platform::clock::now();
    }

    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    /// After the submission of `units` units that started at `start` ended at `now`.
    pub(super) fn observe(&self, units: u64, start: f64, now: f64) {
        let secs = now - start;
        if !self.adaptive.load(Ordering::Relaxed) || units < MIN_UNITS || secs <= 1e-3 {
            return;
        }
        let want = (units as f64 / secs * TARGET_S).clamp(MIN_UNITS as f64, MAX_UNITS as f64);
        // Geometric mean with the old budget: one odd reading moves it only halfway.
        let old = self.units() as f64;
        self.units.store((old * want).sqrt() as u64, Ordering::Relaxed);
    }
}

