//! Picking a token on the GPU (sample.wgsl): [`argmax`] here; the seeded draw's
//! wrapper, [`crate::gpu::sample::sample`], sits with its plain-Rust twin.

use crate::gpu::context::GpuError;
use super::{shape, Bind, Buf, Recorder};

pub(crate) const SAMPLE: &str = include_str!("../../../shaders/sample.wgsl");

/// Index of the largest of `logits[row_off .. row_off + n]` into `out[0]`.
pub fn argmax(rec: &mut Recorder, logits: &Buf, row_off: usize, n: usize, out: &Buf) -> Result<(), GpuError> {
    shape("argmax", n > 0 && logits.len >= row_off + n && out.len >= 1, || format!("logits {} for {n} from {row_off}", logits.len))?;
    let pl = rec.k.pipeline(rec.ctx, "sample", "argmax", || SAMPLE.to_string());
    rec.dispatch(&pl, &[n as u32, row_off as u32, 0, 0], &[(1, Bind::Whole(&logits.buffer)), (2, Bind::Whole(&out.buffer))], (1, 1, 1))
}
