//! Products with a weight matrix in its GGUF bytes: [`matmul`] (prefill, matmul.wgsl),
//! the decode matvecs (matvec.wgsl), and the expert products of a stack
//! ([`matmul_id`], [`matmul_id_grouped`]).

use bytemuck::{Pod, Zeroable};
use crate::format::quant::GgmlType;
use crate::gpu::context::{GpuContext, GpuError};
use crate::gpu::weights::GpuMatrix;
use super::{shape, typed_source, workgroups_xy, Bind, Buf, Recorder};

const MATMUL_ARGS: &str = include_str!("../../../shaders/matmul_args.wgsl");
const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
const MATVEC: &str = include_str!("../../../shaders/matvec.wgsl");
const MATVEC_SUM_WORKGROUP: &str = include_str!("../../../shaders/matvec_sum_workgroup.wgsl");
const MATVEC_SUM_SUBGROUP: &str = include_str!("../../../shaders/matvec_sum_subgroup.wgsl");
const MATVEC_IN_PLAIN: &str = include_str!("../../../shaders/matvec_in_plain.wgsl");
const MATVEC_IN_NORM: &str = include_str!("../../../shaders/matvec_in_norm.wgsl");

/// What a decode matvec fuses around its product (issue 18: a 7B decode step spent
/// more GPU time between its ~550 dispatches than in them). `norm`: the input is
/// RMS-normalized on the fly by this weight and epsilon (matvec_in_norm.wgsl) instead
/// of by an `rms_norm` dispatch before; `add`: the product is added into y (the
/// residual stream) instead of an `add` dispatch after. The default fuses nothing.
#[derive(Clone, Copy, Default)]
pub struct Fuse<'b> {
    pub norm: Option<(&'b Buf, f32)>,
    pub add: bool,
}

impl<'b> Fuse<'b> {
    /// The input RMS-normalized by `g` (epsilon `eps`).
    pub fn norm(g: &'b Buf, eps: f32) -> Self {
        Fuse { norm: Some((g, eps)), add: false }
    }

    /// The product added into y.
    pub fn add() -> Self {
        Fuse { norm: None, add: true }
    }

    /// The norm weight covers the input; `add` only where the entry point adds.
    fn check(&self, kernel: &'static str, n_in: usize, can_add: bool) -> Result<(), GpuError> {
        let g_len = self.norm.map(|(g, _)| g.len);
        shape(kernel, g_len.is_none_or(|l| l >= n_in) && (can_add || !self.add), || format!("norm weight of {g_len:?} floats for n_in {n_in}; add {} (allowed: {can_add})", self.add))
    }

    fn params(&self, p: MatmulParams) -> MatmulParams {
        MatmulParams { eps: self.norm.map_or(0.0, |(_, e)| e), add: self.add as u32, ..p }
    }

    /// The norm weight at binding 6, where it is fused.
    fn bind(&self) -> Option<(u32, Bind<'b>)> {
        self.norm.map(|(g, _)| (6, Bind::Whole(&g.buffer)))
    }
}

/// The uniform of shaders/matmul.wgsl and shaders/matvec.wgsl (`Params` in
/// shaders/matmul_args.wgsl, which both join), field for field. The fields an entry
/// point does not read are 0; matvec's `main_qkv` takes its Q/K/V split in two fields
/// a matvec has no other use for: `k` = the first K row, `expert_bytes` = the first V
/// row ([`matvec_qkv`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct MatmulParams {
    pub n_in: u32, pub n_out: u32, pub n_tok: u32, pub row_bytes: u32,
    pub w_off: u32, pub out_row0: u32, pub x_stride: u32, pub y_stride: u32,
    pub k: u32, pub expert_bytes: u32, pub x_per_slot: u32, pub e0: u32,
    pub e1: u32, pub tiles: u32, pub eps: f32, pub add: u32,
}
const _: () = assert!(std::mem::size_of::<MatmulParams>() == 64);

/// Tokens per pass over the weights in `matmul` (TT in matmul.wgsl).
pub const MATMUL_TOKENS: usize = 8;

/// Rows per workgroup in `matmul`'s prefill entry (WG in matmul.wgsl).
const MATMUL_ROWS: usize = 64;

/// Fused sub-block dot products for matvec, where a type has one (else the generic
/// expand-then-dot).
fn dot_source(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::Q4K => include_str!("../../../shaders/dot_q4k.wgsl"),
        GgmlType::Q6K => include_str!("../../../shaders/dot_q6k.wgsl"),
        GgmlType::Q4_1 => include_str!("../../../shaders/dot_q4_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../../shaders/dot_q8_0.wgsl"),
        GgmlType::Q4_0 => include_str!("../../../shaders/dot_q4_0.wgsl"),
        _ => include_str!("../../../shaders/dot_generic.wgsl"),
    }
}

/// `y[t, y_col0 + r] = W[r, :] · x[t, :n_in]` for the rows of every part of `w`
/// (expert 0 of a stack), `n_tok` tokens; `x` rows are `x_stride`, `y` rows `y_stride`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(rec: &mut Recorder, w: &GpuMatrix, x: &Buf, x_stride: usize, y: &Buf, y_stride: usize, y_col0: usize, n_tok: usize) -> Result<(), GpuError> {
    matmul_rows(rec, w, 0..w.n_out, x, x_stride, y, y_stride, y_col0, n_tok)
}

/// As [`matmul`] for rows `rows` of `w` only (into columns y_col0.. of y): one of the
/// matrices stacked in a fused one (Q/K/V, gate/up) in prefill.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows(rec: &mut Recorder, w: &GpuMatrix, rows: std::ops::Range<usize>, x: &Buf, x_stride: usize, y: &Buf, y_stride: usize, y_col0: usize, n_tok: usize) -> Result<(), GpuError> {
    matmul_rows_fused(rec, w, rows, Fuse::default(), x, x_stride, y, y_stride, y_col0, n_tok)
}

/// As [`matmul_rows`] with `fuse` around the product: decode only (one token).
#[allow(clippy::too_many_arguments)]
fn matmul_rows_fused(rec: &mut Recorder, w: &GpuMatrix, rows: std::ops::Range<usize>, fuse: Fuse, x: &Buf, x_stride: usize, y: &Buf, y_stride: usize, y_col0: usize, n_tok: usize) -> Result<(), GpuError> {
    let n_out = rows.len();
    let fused = fuse.norm.is_some() || fuse.add;
    shape("matmul", !fused || n_tok == 1, || format!("`{}`: a fused norm or residual add is decode only, not {n_tok} tokens", w.name))?;
    fuse.check("matmul", w.n_in, true)?;
    shape("matmul", rows.end <= w.n_out, || format!("`{}`: rows {rows:?} of {}", w.name, w.n_out))?;
    shape("matmul", x_stride >= w.n_in && x.len >= n_tok * x_stride, || format!("x holds {} floats, need {n_tok} rows of {x_stride} >= n_in {}", x.len, w.n_in))?;
    shape("matmul", y_col0 + n_out <= y_stride && y.len >= n_tok * y_stride, || format!("y holds {} floats, need {n_tok} rows of {y_stride} with columns {y_col0}..{}", y.len, y_col0 + n_out))?;
    shape("matmul", w.n_in % w.ty.block_size() == 0, || format!("`{}`: n_in {} is not a multiple of the {} block", w.name, w.n_in, w.ty.name()))?;
    let pl = if n_tok == 1 {
        matvec_pipeline(rec, w.ty, "main", fuse.norm.is_some())
    } else {
        rec.kernels.pipeline(rec.ctx, &format!("matmul_{}", w.ty.name()), if rec.ctx.row_per_thread { "main_rows" } else { "main" }, || matmul_source(w.ty))
    };
    for part in &w.parts {
        let (a, b) = (rows.start.max(part.row0), rows.end.min(part.row0 + part.rows));
        if a >= b {
            continue;
        }
        let (n, w_off, col) = (b - a, (a - part.row0) * w.row_bytes(), y_col0 + a - rows.start);
        rec.charge((n * w.row_bytes() * n_tok) as u64)?;
        if n_tok == 1 {
            // Decode: the memory-bound matvec (one token, the row's items over 32 lanes).
            let (gx, gy) = workgroups_xy(n.div_ceil(matvec_rows_per_workgroup(rec.ctx)));
            let p = fuse.params(MatmulParams { n_in: w.n_in as u32, n_out: n as u32, n_tok: 1, row_bytes: w.row_bytes() as u32, w_off: w_off as u32, out_row0: col as u32, x_stride: w.n_in as u32, k: 1, ..Zeroable::zeroed() });
            let mut binds = vec![(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer))];
            binds.extend(fuse.bind());
            rec.dispatch(&pl, &p, &binds, (gx, gy, 1))?;
        } else {
            let (gx, gy) = workgroups_xy(n.div_ceil(MATMUL_ROWS));
            let p = MatmulParams { n_in: w.n_in as u32, n_out: n as u32, n_tok: n_tok as u32, row_bytes: w.row_bytes() as u32, w_off: w_off as u32, out_row0: col as u32, x_stride: x_stride as u32, y_stride: y_stride as u32, k: 1, ..Zeroable::zeroed() };
            rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer))], (gx, gy, n_tok.div_ceil(MATMUL_TOKENS) as u32))?;
        }
    }
    Ok(())
}

/// Rows per workgroup in `matvec` (ROWS in matvec.wgsl; ROWS_WG for the *_rows
/// entry points a CPU adapter runs).
fn matvec_rows_per_workgroup(ctx: &GpuContext) -> usize {
    if ctx.row_per_thread {
        64
    } else {
        8
    }
}

/// The matvec entry point for this device: one thread per row on CPU adapters.
fn matvec_entry(ctx: &GpuContext, entry: &'static str) -> &'static str {
    match (ctx.row_per_thread, entry) {
        (false, e) => e,
        (true, "main") => "main_rows",
        (true, "main_qkv") => "main_qkv_rows",
        (true, "main_swiglu") => "main_swiglu_rows",
        (true, e) => e,
    }
}

/// The matvec module for `ty`, its rows summed by subgroup operations or through
/// workgroup memory, its input RMS-normalized on the fly (`norm`) or taken as it is.
/// No `enable subgroups;`: naga 30 rejects the directive ("not yet implemented",
/// gfx-rs/wgpu#5555) and takes subgroup builtins on the device feature alone; wgpu
/// 30 (30.0.2 too) offers the feature natively only — its WebGPU backend's feature
/// table has no `Subgroups` entry (gfx-rs/wgpu#10146, fix open in #10220) — so Tint
/// (which needs the directive) never sees this module.
fn matvec_source(ty: GgmlType, subgroups: bool, norm: bool) -> String {
    let sum = if subgroups { MATVEC_SUM_SUBGROUP } else { MATVEC_SUM_WORKGROUP };
    let input = if norm { MATVEC_IN_NORM } else { MATVEC_IN_PLAIN };
    typed_source(ty, &format!("{MATMUL_ARGS}\n{input}\n{}\n{sum}\n{MATVEC}", dot_source(ty)))
}

/// The matmul module for `ty`: its uniform and bindings, then the body.
fn matmul_source(ty: GgmlType) -> String {
    typed_source(ty, &format!("{MATMUL_ARGS}\n{MATMUL}"))
}

/// The matvec pipeline for `ty` and `entry` in this device's layout (a row per thread
/// on CPU adapters) and, for the lanes-per-row layout, the row sums `rec`'s kernels
/// use (the row-per-thread entry points sum nothing across threads).
fn matvec_pipeline(rec: &Recorder, ty: GgmlType, entry: &'static str, norm: bool) -> wgpu::ComputePipeline {
    let sg = rec.kernels.subgroups && !rec.ctx.row_per_thread;
    let name = format!("matvec_{}{}{}", if norm { "norm_" } else { "" }, if sg { "sg_" } else { "" }, ty.name());
    rec.kernels.pipeline(rec.ctx, &name, matvec_entry(rec.ctx, entry), || matvec_source(ty, sg, norm))
}

/// `y[y_col0 + r] = W[r, :] · x[:n_in]` for one token (decode).
pub fn matvec(rec: &mut Recorder, w: &GpuMatrix, x: &Buf, y: &Buf, y_col0: usize) -> Result<(), GpuError> {
    matvec_fused(rec, w, 0..w.n_out, Fuse::default(), x, y, y_col0)
}

/// `y[y_col0 + r] (+)= W[r, :] · norm(x)` for rows `rows` of `w` (one token), with
/// what `fuse` says around the product: the unfused `rms_norm` → [`matvec`] → `add`
/// in one dispatch per part.
pub fn matvec_fused(rec: &mut Recorder, w: &GpuMatrix, rows: std::ops::Range<usize>, fuse: Fuse, x: &Buf, y: &Buf, y_col0: usize) -> Result<(), GpuError> {
    let n = rows.len();
    shape("matvec", x.len >= w.n_in && y.len >= y_col0 + n, || format!("x holds {} floats for n_in {}, y {} for columns {y_col0}..{}", x.len, w.n_in, y.len, y_col0 + n))?;
    matmul_rows_fused(rec, w, rows, fuse, x, w.n_in, y, y_col0 + n, y_col0, 1)
}

/// Decode through a fused Q/K/V matrix `w` (rows: nq of Q, nk of K, the rest V) in
/// one dispatch per part: rows into `q`, `k`, `v` from their starts.
#[allow(clippy::too_many_arguments)]
pub fn matvec_qkv(rec: &mut Recorder, w: &GpuMatrix, nq: usize, nk: usize, x: &Buf, q: &Buf, k: &Buf, v: &Buf) -> Result<(), GpuError> {
    matvec_qkv_fused(rec, w, nq, nk, Fuse::default(), x, q, k, v)
}

/// As [`matvec_qkv`] with the pre-attention RMSNorm fused (`fuse.norm`; no add: Q/K/V
/// are written, not accumulated).
#[allow(clippy::too_many_arguments)]
pub fn matvec_qkv_fused(rec: &mut Recorder, w: &GpuMatrix, nq: usize, nk: usize, fuse: Fuse, x: &Buf, q: &Buf, k: &Buf, v: &Buf) -> Result<(), GpuError> {
    fuse.check("matvec_qkv", w.n_in, false)?;
    shape("matvec_qkv", nq + nk <= w.n_out && x.len >= w.n_in && q.len >= nq && k.len >= nk && v.len >= w.n_out - nq - nk, || format!("`{}` rows {} as {nq} + {nk} + rest; x {} q {} k {} v {}", w.name, w.n_out, x.len, q.len, k.len, v.len))?;
    let pl = matvec_pipeline(rec, w.ty, "main_qkv", fuse.norm.is_some());
    for part in &w.parts {
        let (gx, gy) = workgroups_xy(part.rows.div_ceil(matvec_rows_per_workgroup(rec.ctx)));
        // Rows count from the matrix's first (out_row0: the part's first row); k and
        // expert_bytes carry where K and V start.
        let p = fuse.params(MatmulParams { n_in: w.n_in as u32, n_out: part.rows as u32, n_tok: 1, row_bytes: w.row_bytes() as u32, out_row0: part.row0 as u32, x_stride: w.n_in as u32, k: nq as u32, expert_bytes: (nq + nk) as u32, ..Zeroable::zeroed() });
        let mut binds = vec![(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&q.buffer)), (4, Bind::Whole(&k.buffer)), (5, Bind::Whole(&v.buffer))];
        binds.extend(fuse.bind());
        rec.dispatch(&pl, &p, &binds, (gx, gy, 1))?;
    }
    Ok(())
}

/// Decode through a fused gate/up matrix `w` (gate rows over as many up rows, in one
/// part): `y[r] = silu(gate_r · x) · (up_r · x)` in one dispatch.
pub fn matvec_swiglu(rec: &mut Recorder, w: &GpuMatrix, x: &Buf, y: &Buf) -> Result<(), GpuError> {
    matvec_swiglu_fused(rec, w, Fuse::default(), x, y)
}

/// As [`matvec_swiglu`] with the pre-FFN RMSNorm fused (`fuse.norm`) and/or the
/// result added into y (`fuse.add`).
pub fn matvec_swiglu_fused(rec: &mut Recorder, w: &GpuMatrix, fuse: Fuse, x: &Buf, y: &Buf) -> Result<(), GpuError> {
    fuse.check("matvec_swiglu", w.n_in, true)?;
    let n_ff = w.n_out / 2;
    shape("matvec_swiglu", w.parts.len() == 1 && w.n_out % 2 == 0 && x.len >= w.n_in && y.len >= n_ff, || format!("`{}`: {} parts of {} rows (one part, even rows); x {} y {}", w.name, w.parts.len(), w.n_out, x.len, y.len))?;
    let pl = matvec_pipeline(rec, w.ty, "main_swiglu", fuse.norm.is_some());
    let (gx, gy) = workgroups_xy(n_ff.div_ceil(matvec_rows_per_workgroup(rec.ctx)));
    let p = fuse.params(MatmulParams { n_in: w.n_in as u32, n_out: n_ff as u32, n_tok: 1, row_bytes: w.row_bytes() as u32, x_stride: w.n_in as u32, k: 1, ..Zeroable::zeroed() });
    let mut binds = vec![(1, Bind::Whole(&w.parts[0].buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer))];
    binds.extend(fuse.bind());
    rec.dispatch(&pl, &p, &binds, (gx, gy, 1))
}

/// Expert matvec (ggml `mul_mat_id`): for each (token t, slot s) the expert
/// `ids[t·k + s]` of the stacked matrix `w` multiplies x row t (or row t·k + s when
/// `x_per_slot`), into y row t·k + s. The ids stay on the GPU: one dispatch per part,
/// each computing the rows whose expert that part holds (decode; prefill groups the
/// rows by expert, [`matmul_id_grouped`]).
#[allow(clippy::too_many_arguments)]
pub fn matmul_id(rec: &mut Recorder, w: &GpuMatrix, ids: &Buf, k: usize, x: &Buf, x_per_slot: bool, y: &Buf, n_tok: usize) -> Result<(), GpuError> {
    matmul_id_shapes("matmul_id", w, k, x, x_per_slot, y, n_tok)?;
    shape("matmul_id", ids.len >= n_tok * k, || format!("ids holds {}, need {}", ids.len, n_tok * k))?;
    let pl = rec.kernels.pipeline(rec.ctx, &format!("matmul_{}", w.ty.name()), "main_id", || matmul_source(w.ty));
    rec.charge((n_tok * k * w.expert_bytes()) as u64)?;
    let (gx, gy) = workgroups_xy(w.n_out);
    for part in &w.parts {
        let e = w.experts(part);
        let p = expert_params(w, k, x_per_slot, n_tok, e);
        rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer)), (4, Bind::Whole(&ids.buffer))], (gx, gy, (n_tok * k) as u32))?;
    }
    Ok(())
}

/// The uniform of an expert product over the experts `e` one part of `w` holds.
fn expert_params(w: &GpuMatrix, k: usize, x_per_slot: bool, n_tok: usize, e: std::ops::Range<usize>) -> MatmulParams {
    MatmulParams {
        n_in: w.n_in as u32,
        n_out: w.n_out as u32,
        n_tok: n_tok as u32,
        row_bytes: w.row_bytes() as u32,
        x_stride: w.n_in as u32,
        y_stride: w.n_out as u32,
        k: k as u32,
        expert_bytes: w.expert_bytes() as u32,
        x_per_slot: x_per_slot as u32,
        e0: e.start as u32,
        e1: e.end as u32,
        ..Zeroable::zeroed()
    }
}

fn matmul_id_shapes(kernel: &'static str, w: &GpuMatrix, k: usize, x: &Buf, x_per_slot: bool, y: &Buf, n_tok: usize) -> Result<(), GpuError> {
    let x_rows = if x_per_slot { n_tok * k } else { n_tok };
    // Any stack of at least k experts (a one-expert MoE is degenerate but valid).
    shape(kernel, w.n_expert >= k.max(1), || format!("`{}` holds {} experts, fewer than the {k} chosen per token", w.name, w.n_expert))?;
    shape(kernel, w.n_in % w.ty.block_size() == 0, || format!("`{}`: n_in {} is not a multiple of the {} block", w.name, w.n_in, w.ty.name()))?;
    shape(kernel, x.len >= x_rows * w.n_in, || format!("x holds {} floats, need {x_rows} rows of {}", x.len, w.n_in))?;
    shape(kernel, y.len >= n_tok * k * w.n_out, || format!("y holds {} floats, need {} rows of {}", y.len, n_tok * k, w.n_out))
}

/// [`matmul_id`] for prefill, the rows grouped by expert ([`moe_group`]'s `offsets`
/// and `entries`): each workgroup multiplies up to MATMUL_TOKENS rows routed to one
/// expert, so an expert's weights are read once per tile of its tokens, not once per
/// token. The grid assumes each token lists an expert at most once (moe_route's top-k
/// are distinct), so an expert has at most n_tok entries.
#[allow(clippy::too_many_arguments)]
pub fn matmul_id_grouped(rec: &mut Recorder, w: &GpuMatrix, offsets: &Buf, entries: &Buf, k: usize, x: &Buf, x_per_slot: bool, y: &Buf, n_tok: usize) -> Result<(), GpuError> {
    matmul_id_shapes("matmul_id_grouped", w, k, x, x_per_slot, y, n_tok)?;
    shape("matmul_id_grouped", offsets.len > w.n_expert && entries.len >= n_tok * k, || format!("offsets {} (need {}), entries {} (need {})", offsets.len, w.n_expert + 1, entries.len, n_tok * k))?;
    let tiles = n_tok.div_ceil(MATMUL_TOKENS);
    let pl = rec.kernels.pipeline(rec.ctx, &format!("matmul_{}", w.ty.name()), "main_grouped", || matmul_source(w.ty));
    let (gx, gy) = workgroups_xy(w.n_out.div_ceil(MATMUL_ROWS));
    for part in &w.parts {
        let e = w.experts(part);
        let gz = e.len() * tiles;
        // The n_tok·k rows spread over the experts; this part's share, as routed evenly.
        rec.charge((n_tok * k * w.expert_bytes() * e.len() / w.n_expert) as u64)?;
        shape("matmul_id_grouped", gz <= 65535, || format!("`{}`: {} experts x {tiles} token tiles = {gz} workgroups in z (max 65535)", w.name, e.len()))?;
        let p = MatmulParams { tiles: tiles as u32, ..expert_params(w, k, x_per_slot, n_tok, e) };
        let binds = [(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer)), (5, Bind::Whole(&offsets.buffer)), (6, Bind::Whole(&entries.buffer))];
        rec.dispatch(&pl, &p, &binds, (gx, gy, gz as u32))?;
    }
    Ok(())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn uniforms_mirror_wgsl() {
        for ty in [GgmlType::F32, GgmlType::Q4K] {
            super::super::assert_mirrors::<MatmulParams>(&matmul_source(ty));
            for (sg, norm) in [(false, false), (false, true), (true, true)] {
                super::super::assert_mirrors::<MatmulParams>(&matvec_source(ty, sg, norm));
            }
        }
    }
}
