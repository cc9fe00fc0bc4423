//! Picking a token on the GPU (sample.wgsl): [`argmax`] here; the seeded draw's
//! wrapper, [`crate::gpu::sample::sample`], sits with its plain-Rust twin.

use bytemuck::{Pod, Zeroable};
use crate::gpu::context::GpuError;
use super::{shape, Bind, Buf, Recorder};

pub(crate) const SAMPLE: &str = include_str!("../../../shaders/sample.wgsl");

/// The uniform of shaders/sample.wgsl (`Params`, both entry points), field for field:
/// argmax reads `n` and `row_off` only; the draw's settings come from
/// [`crate::gpu::sample::SampleParams`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct SampleKernelParams {
    pub n: u32, pub row_off: u32, pub top_k: u32, pub top_p: u32,
    pub inv_t: f32, pub scale: u32, pub seed_lo: u32, pub seed_hi: u32,
    pub step: u32, pub pad0: u32, pub pad1: u32, pub pad2: u32,
}
const _: () = assert!(std::mem::size_of::<SampleKernelParams>() == 48);

/// Index of the largest of `logits[row_off .. row_off + n]` into `out[0]`.
pub fn argmax(rec: &mut Recorder, logits: &Buf, row_off: usize, n: usize, out: &Buf) -> Result<(), GpuError> {
    shape("argmax", n > 0 && logits.len >= row_off + n && out.len >= 1, || format!("logits {} for {n} from {row_off}", logits.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "sample", "argmax", || SAMPLE.to_string());
    let p = SampleKernelParams { n: n as u32, row_off: row_off as u32, ..Zeroable::zeroed() };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&logits.buffer)), (2, Bind::Whole(&out.buffer))], (1, 1, 1))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn uniforms_mirror_wgsl() {
        super::super::assert_mirrors::<SampleKernelParams>(SAMPLE);
    }
}
