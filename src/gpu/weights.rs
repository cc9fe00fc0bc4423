//! Weights on the GPU in their GGUF bytes (never expanded to f32), streamed from the
//! byte source through a bounded staging chunk so host memory stays O(chunk).

use super::context::{GpuContext, GpuError};
use crate::format::gguf::TensorInfo;
use crate::format::quant::GgmlType;
use crate::format::source::ByteSource;

/// Host bytes held at once while uploading (one read + one write slice).
pub const STAGING_BYTES: u64 = 16 << 20;

/// One buffer holding whole rows `row0 .. row0 + rows` of a matrix (whole experts of
/// an expert stack: see [`GpuMatrix::experts`]).
pub struct Part {
    pub buffer: wgpu::Buffer,
    pub row0: usize,
    pub rows: usize,
}

/// A weight matrix `[n_out, n_in]` (GGUF dims `[n_in, n_out]`), possibly a stack of
/// `n_expert` equal expert matrices, split into parts that each fit one storage
/// binding: by whole rows, or for a stack by whole experts (a kernel addresses an
/// expert inside one binding).
pub struct GpuMatrix {
    pub name: String,
    pub ty: GgmlType,
    pub n_in: usize,
    pub n_out: usize,
    /// 1 for a plain matrix; experts are stacked back to back, whole ones per part.
    pub n_expert: usize,
    pub parts: Vec<Part>,
}

impl GpuMatrix {
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.n_in)
    }
    pub fn expert_bytes(&self) -> usize {
        self.row_bytes() * self.n_out
    }
    pub fn bytes(&self) -> u64 {
        (self.expert_bytes() * self.n_expert) as u64
    }
    /// The experts `part` holds (`0..1` for a part of a plain matrix).
    pub fn experts(&self, part: &Part) -> std::ops::Range<usize> {
        if self.n_expert == 1 {
            return 0..1;
        }
        part.row0 / self.n_out..(part.row0 + part.rows) / self.n_out
    }
}

/// Where a matrix's bytes come from: one or more file ranges concatenated in order
/// (several for Mixtral's legacy per-expert tensors, stacked into one buffer).
pub struct MatrixSource<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    pub n_in: usize,
    pub n_out: usize,
    pub n_expert: usize,
    pub ranges: Vec<std::ops::Range<u64>>,
}

impl<'a> MatrixSource<'a> {
    pub fn plain(t: &'a TensorInfo) -> Self {
        MatrixSource { name: &t.name, ty: t.ty, n_in: t.dims[0] as usize, n_out: t.dims.get(1).copied().unwrap_or(1) as usize, n_expert: 1, ranges: vec![t.range()] }
    }
    /// Rows of a tensor (Q, K or V of a fused `attn_qkv`; gate or up of a fused `ffn_up`).
    pub fn slice(s: crate::model::spec::Slice<'a>) -> Self {
        MatrixSource { n_out: s.n_out(), ranges: vec![s.range()], ..Self::plain(s.tensor) }
    }
    /// A merged `[n_in, n_out, n_expert]` expert tensor.
    pub fn merged(t: &'a TensorInfo) -> Self {
        MatrixSource { n_expert: t.dims[2] as usize, ..Self::plain(t) }
    }
    /// Per-expert 2-D tensors, stacked in expert order.
    pub fn stacked(ts: &[&'a TensorInfo]) -> Self {
        MatrixSource { n_expert: ts.len(), ranges: ts.iter().map(|t| t.range()).collect(), ..Self::plain(ts[0]) }
    }
    pub fn bytes(&self) -> u64 {
        (self.ty.row_bytes(self.n_in) * self.n_out * self.n_expert) as u64
    }
}

/// The largest buffer one part may be: the binding limit (and the buffer limit).
pub fn part_limit(ctx: &GpuContext) -> u64 {
    (ctx.limits.max_storage_buffer_binding_size as u64).min(ctx.limits.max_buffer_size) & !3
}

/// Checks that `src` can be split into parts under the limit (errors name tensor and
/// limit before anything is allocated).
pub fn check_fits(src: &MatrixSource, limit: u64) -> Result<(), GpuError> {
    // A part holds whole rows, and of a stack whole experts (kernels address an expert
    // inside one binding): one row, or one expert, must fit.
    let need = unit_bytes(src);
    if need > limit {
        let tensor = if src.n_expert > 1 { format!("{} (one of its {} experts)", src.name, src.n_expert) } else { src.name.into() };
        return Err(GpuError::TooLarge { tensor, bytes: need, limit });
    }
    Ok(())
}

/// Bytes of the smallest piece a part may hold: one row, or one expert of a stack.
fn unit_bytes(src: &MatrixSource) -> u64 {
    let rb = src.ty.row_bytes(src.n_in) as u64;
    if src.n_expert > 1 { rb * src.n_out as u64 } else { rb }
}

pub async fn upload(ctx: &GpuContext, bytes_src: &mut dyn ByteSource, src: &MatrixSource<'_>) -> Result<GpuMatrix, GpuError> {
    upload_limited(ctx, bytes_src, src, part_limit(ctx)).await
}

/// As [`upload`] with parts of at most `limit` bytes (tests force row splits with it).
pub async fn upload_limited(ctx: &GpuContext, bytes_src: &mut dyn ByteSource, src: &MatrixSource<'_>, limit: u64) -> Result<GpuMatrix, GpuError> {
    let limit = limit.min(part_limit(ctx));
    check_fits(src, limit)?;
    let rb = src.ty.row_bytes(src.n_in) as u64;
    let total_rows = src.n_out * src.n_expert;
    // Rows per part: as many whole units (rows, or experts of n_out rows) as fit.
    let unit_rows = if src.n_expert > 1 { src.n_out } else { 1 };
    let rows_per_part = ((limit / unit_bytes(src).max(1)) as usize * unit_rows).min(total_rows).max(unit_rows);
    let mut parts = vec![];
    let mut reader = RangeReader { src: bytes_src, ranges: src.ranges.clone(), idx: 0, at: src.ranges.first().map(|r| r.start).unwrap_or(0), name: src.name };
    let mut row0 = 0;
    while row0 < total_rows {
        let rows = rows_per_part.min(total_rows - row0);
        let bytes = rows as u64 * rb;
        let label = match (rows == total_rows, src.n_expert > 1) {
            (true, _) => src.name.to_string(),
            (false, true) => format!("{} experts {}..{}", src.name, row0 / src.n_out, (row0 + rows) / src.n_out),
            (false, false) => format!("{} rows {row0}..{}", src.name, row0 + rows),
        };
        let buffer = ctx.buffer(&label, bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST).await?;
        stream_into(ctx, &mut reader, &buffer, bytes)?;
        parts.push(Part { buffer, row0, rows });
        row0 += rows;
    }
    Ok(GpuMatrix { name: src.name.into(), ty: src.ty, n_in: src.n_in, n_out: src.n_out, n_expert: src.n_expert, parts })
}

/// Uploads an f32 vector (norm weights, after the CPU has dequantized them).
pub async fn upload_f32(ctx: &GpuContext, what: &str, v: &[f32]) -> Result<wgpu::Buffer, GpuError> {
    let b = ctx.buffer(what, (v.len() * 4) as u64, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST).await?;
    ctx.queue.write_buffer(&b, 0, bytemuck::cast_slice(v));
    Ok(b)
}

/// Reads the concatenation of several file ranges front to back.
struct RangeReader<'a> {
    src: &'a mut dyn ByteSource,
    ranges: Vec<std::ops::Range<u64>>,
    idx: usize,
    at: u64,
    name: &'a str,
}

impl RangeReader<'_> {
    fn read(&mut self, max: u64) -> Result<Vec<u8>, GpuError> {
        while self.idx < self.ranges.len() && self.at >= self.ranges[self.idx].end {
            self.idx += 1;
            if let Some(r) = self.ranges.get(self.idx) {
                self.at = r.start;
            }
        }
        let Some(r) = self.ranges.get(self.idx) else {
            return Err(GpuError::Load(format!("tensor `{}`: ran out of bytes while uploading", self.name)));
        };
        let end = r.end.min(self.at + max);
        let b = self.src.read_range(self.at..end).map_err(|e| GpuError::Load(format!("tensor `{}`: {e}", self.name)))?;
        if b.len() as u64 != end - self.at {
            return Err(GpuError::Load(format!("tensor `{}`: short read at offset {}", self.name, self.at)));
        }
        self.at = end;
        Ok(b)
    }
}

/// Writes `bytes` bytes from `reader` into `buf` in slices of at most STAGING_BYTES,
/// submitting after each so wgpu's own staging copy is released (host memory stays
/// bounded). Writes are 4-byte aligned; a ragged tail carries over to the next slice.
fn stream_into(ctx: &GpuContext, reader: &mut RangeReader, buf: &wgpu::Buffer, bytes: u64) -> Result<(), GpuError> {
    let mut off = 0u64;
    let mut carry: Vec<u8> = vec![];
    while off + (carry.len() as u64) < bytes {
        let want = (bytes - off - carry.len() as u64).min(STAGING_BYTES);
        // Without a carry the read is the chunk (no second slice-sized copy: in the
        // browser this bounds the wasm heap's peak during loading).
        let mut chunk = if carry.is_empty() {
            reader.read(want)?
        } else {
            let mut c = std::mem::take(&mut carry);
            c.extend(reader.read(want)?);
            c
        };
        let done = off + chunk.len() as u64 == bytes;
        if done {
            chunk.resize(chunk.len().next_multiple_of(4), 0);
        } else {
            let keep = chunk.len() & !3;
            carry = chunk.split_off(keep);
        }
        if !chunk.is_empty() {
            ctx.queue.write_buffer(buf, off, &chunk);
            off += chunk.len() as u64;
            ctx.queue.submit([]);
            ctx.wait()?;
        }
        if done {
            break;
        }
    }
    Ok(())
}
