//! GPU time per kernel from timestamp queries, for finding what a decode step spends
//! its time on (`PRECIS_GPU_PROFILE=1`, native only, where the adapter offers
//! TIMESTAMP_QUERY). Each dispatch then gets its own compute pass, timestamped at its
//! start and end; the totals are printed by `precis generate` at the end.

use super::context::{GpuContext, GpuError};
use super::submit::StepCounts;
use std::collections::HashMap;
use std::sync::Mutex;

/// Dispatches timed per step (two queries each; wgpu caps a query set at 4096).
const MAX_TIMED: usize = 2048;

pub struct Profiler {
    set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    read: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period: f64,
    /// Per pipeline label: (total ns, dispatches).
    totals: Mutex<HashMap<String, (f64, u64)>>,
    /// Host seconds spent recording and submitting steps, and the steps.
    host: Mutex<Vec<(f64, f64)>>,
    /// Per step: GPU ns from the first dispatch's start to the last one's end, and the
    /// sum of the dispatches' own times (the difference is time between dispatches).
    spans: Mutex<Vec<(f64, f64)>>,
    /// Per step: dispatches, compute passes (outside profiling) and buffer copies.
    counts: Mutex<Vec<StepCounts>>,
}

impl Profiler {
    pub fn from_env(ctx: &GpuContext) -> Option<Self> {
        if cfg!(target_arch = "wasm32") || std::env::var_os("PRECIS_GPU_PROFILE").is_none() || !ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let n = (2 * MAX_TIMED) as u64;
        let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: n as u32 });
        let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor { label: Some("profile resolve"), size: n * 8, usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC, mapped_at_creation: false });
        let read = ctx.device.create_buffer(&wgpu::BufferDescriptor { label: Some("profile read"), size: n * 8, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
        Some(Profiler { set, resolved, read, period: ctx.queue.get_timestamp_period() as f64, totals: Mutex::new(HashMap::new()), host: Mutex::new(vec![]), spans: Mutex::new(vec![]), counts: Mutex::new(vec![]) })
    }

    /// Timestamp slots for dispatch `i` of the step (none past MAX_TIMED).
    pub fn writes(&self, i: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        let (b, e) = if i < MAX_TIMED { (Some(2 * i as u32), Some(2 * i as u32 + 1)) } else { (None, None) };
        wgpu::ComputePassTimestampWrites { query_set: &self.set, beginning_of_pass_write_index: b, end_of_pass_write_index: e }
    }

    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder, n: usize) {
        let n = n.min(MAX_TIMED) as u32;
        if n > 0 {
            enc.resolve_query_set(&self.set, 0..2 * n, &self.resolved, 0);
            enc.copy_buffer_to_buffer(&self.resolved, 0, &self.read, 0, 16 * n as u64);
        }
    }

    /// Waits for the step and adds each dispatch's time to its kernel's total.
    pub fn collect(&self, ctx: &GpuContext, labels: &[String]) -> Result<(), GpuError> {
        let n = labels.len().min(MAX_TIMED);
        if n == 0 {
            return Ok(());
        }
        // Native only (from_env is None in the browser, where nothing may block).
        let Some(bytes) = crate::platform::exec::block_on(ctx.map_read(&self.read, 16 * n as u64)) else {
            return Ok(());
        };
        let bytes = bytes?;
        let ts: &[u64] = bytemuck::cast_slice(&bytes);
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let mut busy = 0.0;
        for (i, l) in labels.iter().take(n).enumerate() {
            let e = t.entry(l.clone()).or_default();
            let d = ts[2 * i + 1].saturating_sub(ts[2 * i]) as f64 * self.period;
            e.0 += d;
            e.1 += 1;
            busy += d;
        }
        let span = ts[2 * n - 1].saturating_sub(ts[0]) as f64 * self.period;
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).push((span, busy));
        Ok(())
    }

    /// One step's host time: recording its dispatches, and the submit call.
    pub fn add_host(&self, record_s: f64, submit_s: f64) {
        self.host.lock().unwrap_or_else(|e| e.into_inner()).push((record_s, submit_s));
    }

    pub fn add_counts(&self, c: StepCounts) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }

    /// A table of kernels by total GPU time.
    pub fn report(&self) -> String {
        let t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = t.iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let all: f64 = rows.iter().map(|r| r.1 .0).sum();
        // Medians: the first step also compiles every pipeline.
        let mut h = self.host.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        let (mut rec, mut sub): (Vec<f64>, Vec<f64>) = h.drain(..).unzip();
        let n = rec.len();
        let mut s = format!("host per step (median of {n}): recording {:.2} ms, submit {:.2} ms\n", 1e3 * median(&mut rec), 1e3 * median(&mut sub));
        let (mut span, mut busy): (Vec<f64>, Vec<f64>) = self.spans.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().unzip();
        s += &format!("GPU per step (median): {:.2} ms first start to last end, {:.2} ms inside dispatches\n", median(&mut span) / 1e6, median(&mut busy) / 1e6);
        // The last step is a decode step whenever anything was decoded.
        if let Some(c) = self.counts.lock().unwrap_or_else(|e| e.into_inner()).last() {
            s += &format!("last step: {} dispatches, {} buffer copies ({} compute passes outside profiling)\n", c.dispatches, c.copies, c.passes);
        }
        s += &format!("GPU time by kernel (timestamp queries), total {:.1} ms\n", all / 1e6);
        for (name, (ns, n)) in rows {
            s += &format!("{:>8.1} ms {:>5.1}% {:>7} calls {:>9.1} us/call  {name}\n", ns / 1e6, 100.0 * ns / all.max(1.0), n, ns / 1e3 / *n as f64);
        }
        s
    }
}
