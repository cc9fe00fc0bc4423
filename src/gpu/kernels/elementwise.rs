//! The per-token kernels around the products: embedding rows (embed.wgsl), RMSNorm
//! (rms_norm.wgsl), rotary positions (rope.wgsl), and the residual add, the bias add,
//! SwiGLU, GeGLU and a scale (elementwise.wgsl).

use bytemuck::{Pod, Zeroable};
use crate::format::family::RopeStyle;
use crate::format::hparams::AttnTemp;
use crate::gpu::context::GpuError;
use crate::gpu::weights::GpuMatrix;
use super::{shape, typed_source, workgroups_xy, Bind, Buf, Recorder};

const EMBED: &str = include_str!("../../../shaders/embed.wgsl");
const RMS_NORM: &str = include_str!("../../../shaders/rms_norm.wgsl");
const ROPE: &str = include_str!("../../../shaders/rope.wgsl");
const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");

/// The uniform of shaders/embed.wgsl (`Params`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct EmbedParams {
    pub n_in: u32, pub n_tok: u32, pub row_bytes: u32, pub row0: u32,
    pub rows: u32, pub pad0: u32, pub pad1: u32, pub pad2: u32,
}
const _: () = assert!(std::mem::size_of::<EmbedParams>() == 32);

/// Rows of the quantized table `w` for the token ids in `tok` into `y` [n_tok, n_in].
pub fn embed(rec: &mut Recorder, w: &GpuMatrix, tok: &Buf, y: &Buf, n_tok: usize) -> Result<(), GpuError> {
    shape("embed", tok.len >= n_tok && y.len >= n_tok * w.n_in, || format!("{} ids, {} outputs for {n_tok} tokens of {}", tok.len, y.len, w.n_in))?;
    let pl = rec.kernels.pipeline(rec.ctx, &format!("embed_{}", w.ty.name()), "main", || typed_source(w.ty, EMBED));
    for part in &w.parts {
        let p = EmbedParams { n_in: w.n_in as u32, n_tok: n_tok as u32, row_bytes: w.row_bytes() as u32, row0: part.row0 as u32, rows: part.rows as u32, ..Zeroable::zeroed() };
        rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&tok.buffer)), (3, Bind::Whole(&y.buffer))], (n_tok as u32, 1, 1))?;
    }
    Ok(())
}

/// The uniform of shaders/rms_norm.wgsl (`Params`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct RmsNormParams {
    pub n: u32, pub rows: u32, pub eps: f32, pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<RmsNormParams>() == 16);

/// `y = x / sqrt(mean(x²) + eps) · g` per row of n, `rows` rows.
pub fn rms_norm(rec: &mut Recorder, x: &Buf, g: &Buf, y: &Buf, n: usize, rows: usize, eps: f32) -> Result<(), GpuError> {
    shape("rms_norm", g.len >= n && x.len >= n * rows && y.len >= n * rows, || format!("x {} g {} y {} for {rows} rows of {n}", x.len, g.len, y.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "rms_norm", "main", || RMS_NORM.to_string());
    let p = RmsNormParams { n: n as u32, rows: rows as u32, eps, pad: 0 };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&x.buffer)), (2, Bind::Whole(&g.buffer)), (3, Bind::Whole(&y.buffer))], (rows as u32, 1, 1))
}

/// `y += x / sqrt(mean(x²) + eps) · g` per row (gemma3's post-norm and the residual add
/// after it, one dispatch).
pub fn rms_norm_add(rec: &mut Recorder, x: &Buf, g: &Buf, y: &Buf, n: usize, rows: usize, eps: f32) -> Result<(), GpuError> {
    shape("rms_norm_add", g.len >= n && x.len >= n * rows && y.len >= n * rows, || format!("x {} g {} y {} for {rows} rows of {n}", x.len, g.len, y.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "rms_norm", "main_add", || RMS_NORM.to_string());
    let p = RmsNormParams { n: n as u32, rows: rows as u32, eps, pad: 0 };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&x.buffer)), (2, Bind::Whole(&g.buffer)), (3, Bind::Whole(&y.buffer))], (rows as u32, 1, 1))
}

/// `x = x / sqrt(mean(x²) + eps) · g` per row, in place (the per-head Q/K norms).
pub fn rms_norm_inplace(rec: &mut Recorder, x: &Buf, g: &Buf, n: usize, rows: usize, eps: f32) -> Result<(), GpuError> {
    shape("rms_norm_inplace", g.len >= n && x.len >= n * rows, || format!("x {} g {} for {rows} rows of {n}", x.len, g.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "rms_norm", "main_inplace", || RMS_NORM.to_string());
    let p = RmsNormParams { n: n as u32, rows: rows as u32, eps, pad: 0 };
    rec.dispatch(&pl, &p, &[(2, Bind::Whole(&g.buffer)), (4, Bind::Whole(&x.buffer))], (rows as u32, 1, 1))
}

/// The uniform of shaders/rope.wgsl (`Params`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct RopeParams {
    pub rows: u32, pub n_heads: u32, pub head_dim: u32, pub n_pairs: u32,
    pub pos: u32, pub neox: u32, pub mscale: f32, pub temp_len: u32,
    pub temp_beta: f32, pub n_heads_k: u32, pub pad1: u32, pub pad2: u32,
}
const _: () = assert!(std::mem::size_of::<RopeParams>() == 48);

/// Rotates `x` [rows, n_heads·head_dim] in place, row r at position pos + r, pairing
/// elements as `style` says.
#[allow(clippy::too_many_arguments)]
pub fn rope(rec: &mut Recorder, x: &Buf, inv_freq: &Buf, rows: usize, n_heads: usize, head_dim: usize, pos: usize, style: RopeStyle) -> Result<(), GpuError> {
    rope_scaled(rec, x, inv_freq, rows, n_heads, head_dim, pos, style, 1.0)
}

/// As [`rope`], cos and sin multiplied by `mscale` (`rope.scaling.attn_factor`, as
/// ggml's rope scales them; `cpu::rope::Rope::scaled`).
#[allow(clippy::too_many_arguments)]
pub fn rope_scaled(rec: &mut Recorder, x: &Buf, inv_freq: &Buf, rows: usize, n_heads: usize, head_dim: usize, pos: usize, style: RopeStyle, mscale: f32) -> Result<(), GpuError> {
    rope_tempered(rec, x, inv_freq, rows, n_heads, head_dim, pos, style, mscale, None)
}

/// As [`rope_scaled`], row r's cos and sin also multiplied by `temp.at(pos + r)` (mistral3's
/// query temperature; `cpu::rope::Rope::apply_tempered`). Every dim must be rotated for
/// that to scale the whole query, which `format::hparams` checks.
#[allow(clippy::too_many_arguments)]
pub fn rope_tempered(rec: &mut Recorder, x: &Buf, inv_freq: &Buf, rows: usize, n_heads: usize, head_dim: usize, pos: usize, style: RopeStyle, mscale: f32, temp: Option<AttnTemp>) -> Result<(), GpuError> {
    let n_pairs = inv_freq.len;
    shape("rope", temp.is_none_or(|t| t.len > 0 && 2 * n_pairs == head_dim), || format!("query temperature needs every one of {head_dim} dims rotated, {n_pairs} pairs"))?;
    shape("rope", x.len >= rows * n_heads * head_dim && 2 * n_pairs <= head_dim, || format!("x {} for {rows}x{n_heads}x{head_dim}, {n_pairs} pairs", x.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "rope", "main", || ROPE.to_string());
    let (gx, gy) = workgroups_xy((rows * n_heads * n_pairs).div_ceil(64));
    let p = RopeParams { rows: rows as u32, n_heads: n_heads as u32, head_dim: head_dim as u32, n_pairs: n_pairs as u32, pos: pos as u32, neox: (style == RopeStyle::Neox) as u32, mscale,
        temp_len: temp.map_or(0, |t| t.len as u32), temp_beta: temp.map_or(0.0, |t| t.beta), ..Zeroable::zeroed() };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&x.buffer)), (2, Bind::Whole(&inv_freq.buffer))], (gx, gy, 1))
}

/// [`rope_tempered`] of `q` [rows, n_head·head_dim] (with the query temperature `temp`)
/// and [`rope_scaled`] of `k` [rows, n_head_k·head_dim] (never tempered) in one dispatch
/// (rope.wgsl `main_qk`).
#[allow(clippy::too_many_arguments)]
pub fn rope_qk(rec: &mut Recorder, q: &Buf, k: &Buf, inv_freq: &Buf, rows: usize, n_head: usize, n_head_k: usize, head_dim: usize, pos: usize, style: RopeStyle, mscale: f32, temp: Option<AttnTemp>) -> Result<(), GpuError> {
    let n_pairs = inv_freq.len;
    shape("rope_qk", temp.is_none_or(|t| t.len > 0 && 2 * n_pairs == head_dim), || format!("query temperature needs every one of {head_dim} dims rotated, {n_pairs} pairs"))?;
    shape("rope_qk", q.len >= rows * n_head * head_dim && k.len >= rows * n_head_k * head_dim && 2 * n_pairs <= head_dim, || format!("q {} k {} for {rows} rows of {n_head} and {n_head_k} heads of {head_dim}, {n_pairs} pairs", q.len, k.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "rope", "main_qk", || ROPE.to_string());
    let (gx, gy) = workgroups_xy((rows * (n_head + n_head_k) * n_pairs).div_ceil(64));
    let p = RopeParams { rows: rows as u32, n_heads: n_head as u32, head_dim: head_dim as u32, n_pairs: n_pairs as u32, pos: pos as u32, neox: (style == RopeStyle::Neox) as u32, mscale,
        temp_len: temp.map_or(0, |t| t.len as u32), temp_beta: temp.map_or(0.0, |t| t.beta), n_heads_k: n_head_k as u32, ..Zeroable::zeroed() };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&inv_freq.buffer)), (3, Bind::Whole(&k.buffer))], (gx, gy, 1))
}

/// The uniform of shaders/elementwise.wgsl (`Params`, both entry points), field for
/// field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct ElementwiseParams {
    pub n: u32, pub cols: u32, pub s: f32, pub pad2: u32,
}
const _: () = assert!(std::mem::size_of::<ElementwiseParams>() == 16);

/// `a[r, :] += b` for each of `rows` rows of `cols` (a projection's bias).
pub fn add_rows(rec: &mut Recorder, a: &Buf, b: &Buf, rows: usize, cols: usize) -> Result<(), GpuError> {
    shape("add_rows", cols > 0 && a.len >= rows * cols && b.len >= cols, || format!("a {} b {} for {rows} rows of {cols}", a.len, b.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "elementwise", "add_rows", || ELEMENTWISE.to_string());
    let n = rows * cols;
    let (gx, gy) = workgroups_xy(n.div_ceil(64));
    rec.dispatch(&pl, &ElementwiseParams { n: n as u32, cols: cols as u32, ..Zeroable::zeroed() }, &[(1, Bind::Whole(&a.buffer)), (2, Bind::Whole(&b.buffer))], (gx, gy, 1))
}

/// `a[..n] += b[..n]` (residual).
pub fn add(rec: &mut Recorder, a: &Buf, b: &Buf, n: usize) -> Result<(), GpuError> {
    shape("add", a.len >= n && b.len >= n, || format!("a {} b {} for {n}", a.len, b.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "elementwise", "add", || ELEMENTWISE.to_string());
    let (gx, gy) = workgroups_xy(n.div_ceil(64));
    rec.dispatch(&pl, &ElementwiseParams { n: n as u32, ..Zeroable::zeroed() }, &[(1, Bind::Whole(&a.buffer)), (2, Bind::Whole(&b.buffer))], (gx, gy, 1))
}

/// `g = silu(g) · u` over n floats, in place (a buffer may not be bound both
/// read-only and read-write in one dispatch).
pub fn swiglu(rec: &mut Recorder, g: &Buf, u: &Buf, n: usize) -> Result<(), GpuError> {
    shape("swiglu", g.len >= n && u.len >= n, || format!("g {} u {} for {n}", g.len, u.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "elementwise", "swiglu", || ELEMENTWISE.to_string());
    let (gx, gy) = workgroups_xy(n.div_ceil(64));
    rec.dispatch(&pl, &ElementwiseParams { n: n as u32, ..Zeroable::zeroed() }, &[(1, Bind::Whole(&g.buffer)), (2, Bind::Whole(&u.buffer))], (gx, gy, 1))
}

/// `g = gelu_tanh(g) · u` over n floats, in place (GeGLU: gemma3's FFN).
pub fn geglu(rec: &mut Recorder, g: &Buf, u: &Buf, n: usize) -> Result<(), GpuError> {
    shape("geglu", g.len >= n && u.len >= n, || format!("g {} u {} for {n}", g.len, u.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "elementwise", "geglu", || ELEMENTWISE.to_string());
    let (gx, gy) = workgroups_xy(n.div_ceil(64));
    rec.dispatch(&pl, &ElementwiseParams { n: n as u32, ..Zeroable::zeroed() }, &[(1, Bind::Whole(&g.buffer)), (2, Bind::Whole(&u.buffer))], (gx, gy, 1))
}

/// `a[..n] *= s` (gemma3's embedding scale; the entry point binds only `a`).
pub fn scale(rec: &mut Recorder, a: &Buf, n: usize, s: f32) -> Result<(), GpuError> {
    shape("scale", a.len >= n, || format!("a {} for {n}", a.len))?;
    let pl = rec.kernels.pipeline(rec.ctx, "elementwise", "scale", || ELEMENTWISE.to_string());
    let (gx, gy) = workgroups_xy(n.div_ceil(64));
    rec.dispatch(&pl, &ElementwiseParams { n: n as u32, s, ..Zeroable::zeroed() }, &[(1, Bind::Whole(&a.buffer))], (gx, gy, 1))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::format::quant::GgmlType;

    #[test]
    fn uniforms_mirror_wgsl() {
        super::super::assert_mirrors::<EmbedParams>(&typed_source(GgmlType::Q4_0, EMBED));
        super::super::assert_mirrors::<RmsNormParams>(RMS_NORM);
        super::super::assert_mirrors::<RopeParams>(ROPE);
        super::super::assert_mirrors::<ElementwiseParams>(ELEMENTWISE);
    }
}
