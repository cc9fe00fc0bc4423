//! Mixture-of-experts routing around the expert products (moe.wgsl): top-k experts
//! per token, the (token, slot) entries grouped by expert, and the weighted sum of the
//! experts' outputs.

use bytemuck::{Pod, Zeroable};
use crate::gpu::context::GpuError;
use super::{shape, workgroups_xy, Bind, Buf, Recorder};

const MOE: &str = include_str!("../../../shaders/moe.wgsl");

/// The uniform of shaders/moe.wgsl (`Params`, all three entry points), field for
/// field: `n_expert` is route's and group's, `n` (the row length) combine's.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct MoeParams {
    pub n_tok: u32, pub n_expert: u32, pub k: u32, pub n: u32,
}
const _: () = assert!(std::mem::size_of::<MoeParams>() == 16);

/// Top-k experts per token and their renormalised weights, into `ids` and `wts`.
pub fn moe_route(rec: &mut Recorder, logits: &Buf, ids: &Buf, wts: &Buf, n_tok: usize, n_expert: usize, k: usize) -> Result<(), GpuError> {
    shape("moe_route", n_expert <= 32 && k >= 1 && k <= n_expert, || format!("{n_expert} experts (max 32), top {k}"))?;
    shape("moe_route", logits.len >= n_tok * n_expert && ids.len >= n_tok * k && wts.len >= n_tok * k, || format!("logits {} ids {} wts {}", logits.len, ids.len, wts.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "moe", "route", || MOE.to_string());
    let p = MoeParams { n_tok: n_tok as u32, n_expert: n_expert as u32, k: k as u32, n: 0 };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&logits.buffer)), (2, Bind::Whole(&ids.buffer)), (3, Bind::Whole(&wts.buffer))], (n_tok.div_ceil(64) as u32, 1, 1))
}

/// The (token, slot) entries `t·k + s` of `ids` grouped by expert, on the GPU (the
/// CPU never sees the ids): expert e's are `entries[offsets[e] .. offsets[e + 1]]`,
/// ascending. Twin: [`crate::model::routing::group_by_expert`].
pub fn moe_group(rec: &mut Recorder, ids: &Buf, offsets: &Buf, entries: &Buf, n_tok: usize, n_expert: usize, k: usize) -> Result<(), GpuError> {
    shape("moe_group", n_expert <= 63 && ids.len >= n_tok * k && entries.len >= n_tok * k && offsets.len > n_expert, || format!("{n_expert} experts (max 63), ids {} entries {} offsets {} for {n_tok} tokens of top {k}", ids.len, entries.len, offsets.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "moe", "group", || MOE.to_string());
    let p = MoeParams { n_tok: n_tok as u32, n_expert: n_expert as u32, k: k as u32, n: 0 };
    rec.dispatch(&pl, &p, &[(2, Bind::Whole(&ids.buffer)), (6, Bind::Whole(&offsets.buffer)), (7, Bind::Whole(&entries.buffer))], (1, 1, 1))
}

/// `y[t] = Σ_s wts[t, s] · down[t·k + s]`, rows of n.
#[allow(clippy::too_many_arguments)]
pub fn moe_combine(rec: &mut Recorder, wts: &Buf, down: &Buf, y: &Buf, n_tok: usize, k: usize, n: usize) -> Result<(), GpuError> {
    shape("moe_combine", wts.len >= n_tok * k && down.len >= n_tok * k * n && y.len >= n_tok * n, || format!("wts {} down {} y {}", wts.len, down.len, y.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "moe", "combine", || MOE.to_string());
    let (gx, gy) = workgroups_xy((n_tok * n).div_ceil(64));
    let p = MoeParams { n_tok: n_tok as u32, n_expert: 0, k: k as u32, n: n as u32 };
    rec.dispatch(&pl, &p, &[(3, Bind::Whole(&wts.buffer)), (4, Bind::Whole(&down.buffer)), (5, Bind::Whole(&y.buffer))], (gx, gy, 1))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn uniforms_mirror_wgsl() {
        super::super::assert_mirrors::<MoeParams>(MOE);
    }
}
