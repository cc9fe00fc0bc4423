//! The per-token kernels around the products: embedding rows (embed.wgsl), RMSNorm
//! (rms_norm.wgsl), rotary positions (rope.wgsl), and the residual add and SwiGLU
//! (elementwise.wgsl).

use crate::gpu::context::GpuError;
use crate::gpu::weights::GpuMatrix;
use super::{shape, spread, typed_source, Bind, Buf, Recorder};

const EMBED: &str = include_str!("../../../shaders/embed.wgsl");
const RMS_NORM: &str = include_str!("../../../shaders/rms_norm.wgsl");
const ROPE: &str = include_str!("../../../shaders/rope.wgsl");
const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");

/// Rows of the quantized table `w` for the token ids in `tok` into `y` [n_tok, n_in].
pub fn embed(rec: &mut Recorder, w: &GpuMatrix, tok: &Buf, y: &Buf, n_tok: usize) -> Result<(), GpuError> {
    shape("embed", tok.len >= n_tok && y.len >= n_tok * w.n_in, || format!("{} ids, {} outputs for {n_tok} tokens of {}", tok.len, y.len, w.n_in))?;
    let pl = rec.k.pipeline(rec.ctx, &format!("embed_{}", w.ty.name()), "main", || typed_source(w.ty, EMBED));
    for part in &w.parts {
        let p = [w.n_in, n_tok, w.row_bytes(), part.row0, part.rows, 0, 0, 0].map(|v| v as u32);
        rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&tok.buffer)), (3, Bind::Whole(&y.buffer))], (n_tok as u32, 1, 1))?;
    }
    Ok(())
}

pub fn rms_norm(rec: &mut Recorder, x: &Buf, g: &Buf, y: &Buf, n: usize, rows: usize, eps: f32) -> Result<(), GpuError> {
    shape("rms_norm", g.len >= n && x.len >= n * rows && y.len >= n * rows, || format!("x {} g {} y {} for {rows} rows of {n}", x.len, g.len, y.len))?;
    let pl = rec.k.pipeline(rec.ctx, "rms_norm", "main", || RMS_NORM.to_string());
    rec.dispatch(&pl, &[n as u32, rows as u32, eps.to_bits(), 0], &[(1, Bind::Whole(&x.buffer)), (2, Bind::Whole(&g.buffer)), (3, Bind::Whole(&y.buffer))], (rows as u32, 1, 1))
}

/// Rotates `x` [rows, n_heads·head_dim] in place, row r at position pos + r.
#[allow(clippy::too_many_arguments)]
pub fn rope(rec: &mut Recorder, x: &Buf, inv_freq: &Buf, rows: usize, n_heads: usize, head_dim: usize, pos: usize) -> Result<(), GpuError> {
    let n_pairs = inv_freq.len;
    shape("rope", x.len >= rows * n_heads * head_dim && 2 * n_pairs <= head_dim, || format!("x {} for {rows}x{n_heads}x{head_dim}, {n_pairs} pairs", x.len))?;
    let pl = rec.k.pipeline(rec.ctx, "rope", "main", || ROPE.to_string());
    let (gx, gy) = spread((rows * n_heads * n_pairs).div_ceil(64));
    let p = [rows, n_heads, head_dim, n_pairs, pos, 0, 0, 0].map(|v| v as u32);
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&x.buffer)), (2, Bind::Whole(&inv_freq.buffer))], (gx, gy, 1))
}

/// `a[..n] += b[..n]` (residual).
pub fn add(rec: &mut Recorder, a: &Buf, b: &Buf, n: usize) -> Result<(), GpuError> {
    shape("add", a.len >= n && b.len >= n, || format!("a {} b {} for {n}", a.len, b.len))?;
    let pl = rec.k.pipeline(rec.ctx, "elementwise", "add", || ELEMENTWISE.to_string());
    let (gx, gy) = spread(n.div_ceil(64));
    rec.dispatch(&pl, &[n as u32, 0, 0, 0], &[(1, Bind::Whole(&a.buffer)), (2, Bind::Whole(&b.buffer))], (gx, gy, 1))
}

/// `g = silu(g) · u` over n floats, in place (a buffer may not be bound both
/// read-only and read-write in one dispatch).
pub fn swiglu(rec: &mut Recorder, g: &Buf, u: &Buf, n: usize) -> Result<(), GpuError> {
    shape("swiglu", g.len >= n && u.len >= n, || format!("g {} u {} for {n}", g.len, u.len))?;
    let pl = rec.k.pipeline(rec.ctx, "elementwise", "swiglu", || ELEMENTWISE.to_string());
    let (gx, gy) = spread(n.div_ceil(64));
    rec.dispatch(&pl, &[n as u32, 0, 0, 0], &[(1, Bind::Whole(&g.buffer)), (2, Bind::Whole(&u.buffer))], (gx, gy, 1))
}
