//! One Rust function per WGSL shader (named as the file or its entry point): each
//! checks shapes, then records its dispatch into a [`Recorder`]. Pipelines are built
//! once per (shader, weight type, entry point) and cached.

use super::context::{GpuContext, GpuError};
pub use super::submit::StepCounts;
use super::weights::GpuMatrix;
use crate::format::quant::GgmlType;
use std::sync::Mutex;
use std::collections::HashMap;

const BYTES: &str = include_str!("../../shaders/bytes.wgsl");
const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
const MATVEC: &str = include_str!("../../shaders/matvec.wgsl");
const MATVEC_SUM_WORKGROUP: &str = include_str!("../../shaders/matvec_sum_workgroup.wgsl");
const MATVEC_SUM_SUBGROUP: &str = include_str!("../../shaders/matvec_sum_subgroup.wgsl");
const EMBED: &str = include_str!("../../shaders/embed.wgsl");
const RMS_NORM: &str = include_str!("../../shaders/rms_norm.wgsl");
const ROPE: &str = include_str!("../../shaders/rope.wgsl");
const ELEMENTWISE: &str = include_str!("../../shaders/elementwise.wgsl");
const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");
const ATTENTION_PREFILL: &str = include_str!("../../shaders/attention_prefill.wgsl");
const ATTENTION_ARGS: &str = include_str!("../../shaders/attention_args.wgsl");
const KV_STORE: &str = include_str!("../../shaders/kv_store.wgsl");
const MOE: &str = include_str!("../../shaders/moe.wgsl");
pub(crate) const SAMPLE: &str = include_str!("../../shaders/sample.wgsl");

/// Per-type block decoders, joined with a generic body (matmul, embed).
pub fn dequant_source(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => include_str!("../../shaders/dequant_f32.wgsl"),
        GgmlType::F16 => include_str!("../../shaders/dequant_f16.wgsl"),
        GgmlType::BF16 => include_str!("../../shaders/dequant_bf16.wgsl"),
        GgmlType::Q4_0 => include_str!("../../shaders/dequant_q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../../shaders/dequant_q4_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../shaders/dequant_q8_0.wgsl"),
        GgmlType::Q4K => include_str!("../../shaders/dequant_q4k.wgsl"),
        GgmlType::Q5K => include_str!("../../shaders/dequant_q5k.wgsl"),
        GgmlType::Q6K => include_str!("../../shaders/dequant_q6k.wgsl"),
    }
}

/// Fused sub-block dot products for matvec, where a type has one (else the generic
/// expand-then-dot).
fn dot_source(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::Q4K => include_str!("../../shaders/dot_q4k.wgsl"),
        GgmlType::Q6K => include_str!("../../shaders/dot_q6k.wgsl"),
        GgmlType::Q4_1 => include_str!("../../shaders/dot_q4_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../shaders/dot_q8_0.wgsl"),
        GgmlType::Q4_0 => include_str!("../../shaders/dot_q4_0.wgsl"),
        _ => include_str!("../../shaders/dot_generic.wgsl"),
    }
}

/// Bytes per uniform slot: WebGPU's minUniformBufferOffsetAlignment is at most 256.
const SLOT: u64 = 256;
/// Dispatches one command buffer may hold (SmolLM2 needs ~450, Mixtral 8x7B ~700).
pub const MAX_DISPATCHES: u64 = 4096;
/// Tokens per pass over the weights in `matmul` (TT in matmul.wgsl).
pub const MATMUL_TOKENS: usize = 8;
/// Rows per workgroup in `matmul`'s prefill entry (WG in matmul.wgsl).
const MATMUL_ROWS: usize = 64;

/// An f32 (or u32) device buffer with its element count, for shape checks.
pub struct Buf {
    pub buffer: wgpu::Buffer,
    pub len: usize,
}

/// A bind group is fixed by its pipeline, its uniform slot and its buffers; a decode
/// step repeats the previous step's dispatches exactly, so after the first step every
/// bind group comes from here instead of being created again (hundreds per token).
type BindKey = (wgpu::ComputePipeline, u64, Vec<(u32, wgpu::Buffer)>);
/// Bind groups kept before the cache is emptied (prefill chunks of many lengths would
/// otherwise grow it without bound).
const MAX_BIND_GROUPS: usize = 16384;

pub struct Kernels {
    pipelines: Mutex<HashMap<(String, &'static str), wgpu::ComputePipeline>>,
    binds: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    /// The name each pipeline was built under, for the profiler's table.
    names: Mutex<HashMap<wgpu::ComputePipeline, String>>,
    params: wgpu::Buffer,
    /// What the last submitted step held.
    pub last_step: Mutex<StepCounts>,
    /// `PRECIS_GPU_PROFILE=1` and a device with timestamp queries: GPU time per kernel.
    pub profile: Option<super::profile::Profiler>,
    /// The decode matvec sums rows with subgroup operations (else workgroup memory).
    pub subgroups: bool,
}

impl Kernels {
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_subgroups(ctx, ctx.subgroup_matvec)
    }

    /// As [`Kernels::new`] with the matvec's row sums chosen: `subgroups` (taken only
    /// where the device granted them) or workgroup memory; tests compare both.
    pub fn with_subgroups(ctx: &GpuContext, subgroups: bool) -> Self {
        let params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel params"),
            size: SLOT * MAX_DISPATCHES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Kernels { pipelines: Mutex::new(HashMap::new()), binds: Mutex::new(HashMap::new()), names: Mutex::new(HashMap::new()), params, last_step: Mutex::new(StepCounts::default()), profile: super::profile::Profiler::from_env(ctx), subgroups: subgroups && ctx.has_subgroups }
    }

    pub(crate) fn pipeline(&self, ctx: &GpuContext, name: &str, entry: &'static str, source: impl FnOnce() -> String) -> wgpu::ComputePipeline {
        let key = (name.to_string(), entry);
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(source().into()) });
        let p = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.pipelines.lock().unwrap().insert(key, p.clone());
        if self.profile.is_some() {
            self.names.lock().unwrap_or_else(|e| e.into_inner()).insert(p.clone(), format!("{name}:{entry}"));
        }
        p
    }

    /// The name a pipeline was built under ("matvec_Q4_K:main", ...).
    fn label(&self, p: &wgpu::ComputePipeline) -> String {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).get(p).cloned().unwrap_or_else(|| "?".into())
    }
}

/// Records the dispatches of one step into one command encoder, in one compute pass
/// (left only for buffer copies); their parameters go into one uniform buffer. A
/// bounded recorder (prefill) submits what it holds before the work charged to it
/// would pass the context's submission budget, then records on into a new encoder;
/// each dispatch keeps its own uniform slot, written before the submit that uses it.
pub struct Recorder<'a> {
    pub ctx: &'a GpuContext,
    pub k: &'a Kernels,
    /// `None` only while `submit` hands it to the queue.
    enc: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    params: Vec<u8>,
    /// Pipeline label of each dispatch, for the profiler.
    labels: Vec<String>,
    started: f64,
    counts: StepCounts,
    /// Dispatches since the last copy share one compute pass (outside profiling).
    in_pass: bool,
    /// Cut into several submissions by the budget (never while profiling, whose
    /// timestamps are resolved in the one command buffer).
    bounded: bool,
    /// Work units recorded since the last submit.
    work: u64,
    /// Bytes of `params` already written to the uniform buffer.
    written: usize,
}

pub(crate) enum Bind<'b> {
    Whole(&'b wgpu::Buffer),
}

impl<'a> Recorder<'a> {
    pub fn new(ctx: &'a GpuContext, k: &'a Kernels) -> Self {
        Recorder { ctx, k, enc: Some(ctx.device.create_command_encoder(&Default::default())), pass: None, params: vec![], labels: vec![], started: crate::platform::clock::now(), counts: StepCounts::default(), in_pass: false, bounded: false, work: 0, written: 0 }
    }

    /// A recorder whose work is cut into submissions of at most the context's budget.
    pub fn bounded(ctx: &'a GpuContext, k: &'a Kernels) -> Self {
        let mut r = Self::new(ctx, k);
        r.bounded = k.profile.is_none();
        r
    }

    /// Charges `units` of work (weight bytes × tokens) for the dispatch about to be
    /// recorded; what is already recorded is submitted first if both would pass the
    /// budget.
    pub fn charge(&mut self, units: u64) -> Result<(), GpuError> {
        if self.bounded && self.work > 0 && self.work.saturating_add(units) > self.ctx.submits.units() {
            self.flush()?;
        }
        self.work = self.work.saturating_add(units);
        Ok(())
    }

    /// Submits what is recorded and starts a new encoder.
    fn flush(&mut self) -> Result<(), GpuError> {
        self.pass = None;
        let next = self.ctx.device.create_command_encoder(&Default::default());
        let enc = self.enc.replace(next).expect("a recorder holds an encoder until submit");
        self.send(enc)
    }

    fn send(&mut self, enc: wgpu::CommandEncoder) -> Result<(), GpuError> {
        self.pass = None;
        self.in_pass = false;
        if self.params.len() > self.written {
            self.ctx.queue.write_buffer(&self.k.params, self.written as u64, &self.params[self.written..]);
            self.written = self.params.len();
        }
        self.counts.submits += 1;
        let work = std::mem::take(&mut self.work);
        self.ctx.submit_bounded(enc.finish(), work)
    }

    /// The encoder, outside any compute pass (for copies).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.counts.copies += 1;
        self.in_pass = false;
        self.enc.as_mut().expect("a recorder holds an encoder until submit")
    }

    /// Submits everything recorded (what a bounded recorder still holds).
    pub fn submit(mut self) -> Result<(), GpuError> {
        self.pass = None;
        let mut enc = self.enc.take().expect("a recorder holds an encoder until submit");
        if let Some(p) = &self.k.profile {
            p.resolve(&mut enc, self.labels.len());
        }
        let t = crate::platform::clock::now();
        self.send(enc)?;
        *self.k.last_step.lock().unwrap_or_else(|e| e.into_inner()) = self.counts;
        if let Some(p) = &self.k.profile {
            p.add_host(t - self.started, crate::platform::clock::now() - t);
            p.add_counts(self.counts);
            p.collect(self.ctx, &self.labels)?;
        }
        Ok(())
    }

    pub(crate) fn dispatch(&mut self, pipeline: &wgpu::ComputePipeline, params: &[u32], binds: &[(u32, Bind)], groups: (u32, u32, u32)) -> Result<(), GpuError> {
        let slot = self.params.len() as u64;
        if slot / SLOT >= MAX_DISPATCHES {
            return Err(GpuError::Shape { kernel: "recorder", message: format!("more than {MAX_DISPATCHES} dispatches in one step") });
        }
        let mut p = bytemuck::cast_slice::<u32, u8>(params).to_vec();
        p.resize(SLOT as usize, 0);
        self.params.extend(p);
        let key: BindKey = (pipeline.clone(), slot, binds.iter().map(|(b, Bind::Whole(buf))| (*b, (*buf).clone())).collect());
        let bg = {
            let mut cache = self.k.binds.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(bg) = cache.get(&key) {
                bg.clone()
            } else {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: &self.k.params, offset: slot, size: std::num::NonZeroU64::new(SLOT) }),
                }];
                for (b, Bind::Whole(buf)) in binds {
                    entries.push(wgpu::BindGroupEntry { binding: *b, resource: buf.as_entire_binding() });
                }
                let bg = self.ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipeline.get_bind_group_layout(0), entries: &entries });
                if cache.len() >= MAX_BIND_GROUPS {
                    cache.clear();
                }
                cache.insert(key, bg.clone());
                bg
            }
        };
        self.counts.dispatches += 1;
        if !self.in_pass {
            self.counts.passes += 1;
            self.in_pass = true;
        }
        if let Some(prof) = &self.k.profile {
            // One pass per dispatch, timestamped at its start and end.
            self.pass = None;
            self.labels.push(self.k.label(pipeline));
            let mut pass = self.enc.as_mut().expect("a recorder holds an encoder until submit").begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: Some(prof.writes(self.labels.len() - 1)) });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
            return Ok(());
        }
        let enc = self.enc.as_mut().expect("a recorder holds an encoder until submit");
        let pass = self.pass.get_or_insert_with(|| enc.begin_compute_pass(&Default::default()).forget_lifetime());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        Ok(())
    }

    /// Copies `n` floats between buffers (K/V rows into cache slots).
    pub fn copy(&mut self, src: &Buf, src_off: usize, dst: &Buf, dst_off: usize, n: usize) -> Result<(), GpuError> {
        if src_off + n > src.len || dst_off + n > dst.len {
            return Err(GpuError::Shape { kernel: "copy", message: format!("{n} floats from {src_off} of {} to {dst_off} of {}", src.len, dst.len) });
        }
        self.encoder().copy_buffer_to_buffer(&src.buffer, (src_off * 4) as u64, &dst.buffer, (dst_off * 4) as u64, (n * 4) as u64);
        Ok(())
    }
}


fn shape(kernel: &'static str, ok: bool, message: impl FnOnce() -> String) -> Result<(), GpuError> {
    if ok {
        Ok(())
    } else {
        Err(GpuError::Shape { kernel, message: message() })
    }
}

/// Workgroups for `n` items: x up to 65535 (WebGPU's per-dimension default), rest in y.
fn spread(n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    (n.min(65535), n.div_ceil(65535))
}

fn typed_source(ty: GgmlType, body: &str) -> String {
    format!("{BYTES}\n{}\n{body}", dequant_source(ty))
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
    let n_out = rows.len();
    shape("matmul", rows.end <= w.n_out, || format!("`{}`: rows {rows:?} of {}", w.name, w.n_out))?;
    shape("matmul", x_stride >= w.n_in && x.len >= n_tok * x_stride, || format!("x holds {} floats, need {n_tok} rows of {x_stride} >= n_in {}", x.len, w.n_in))?;
    shape("matmul", y_col0 + n_out <= y_stride && y.len >= n_tok * y_stride, || format!("y holds {} floats, need {n_tok} rows of {y_stride} with columns {y_col0}..{}", y.len, y_col0 + n_out))?;
    shape("matmul", w.n_in % w.ty.block_size() == 0, || format!("`{}`: n_in {} is not a multiple of the {} block", w.name, w.n_in, w.ty.name()))?;
    let pl = if n_tok == 1 {
        matvec_pipeline(rec, w.ty, "main")
    } else {
        rec.k.pipeline(rec.ctx, &format!("matmul_{}", w.ty.name()), if rec.ctx.row_per_thread { "main_rows" } else { "main" }, || typed_source(w.ty, MATMUL))
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
            let (gx, gy) = spread(n.div_ceil(matvec_rows(rec.ctx)));
            let p = [w.n_in, n, 1, w.row_bytes(), w_off, col, w.n_in, 0, 1, 0, 0, 0].map(|v| v as u32);
            rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer))], (gx, gy, 1))?;
        } else {
            let (gx, gy) = spread(n.div_ceil(MATMUL_ROWS));
            let p = [w.n_in, n, n_tok, w.row_bytes(), w_off, col, x_stride, y_stride, 1, 0, 0, 0].map(|v| v as u32);
            rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer))], (gx, gy, n_tok.div_ceil(MATMUL_TOKENS) as u32))?;
        }
    }
    Ok(())
}

/// Rows per workgroup in `matvec` (ROWS in matvec.wgsl; ROWS_WG for the *_rows
/// entry points a CPU adapter runs).
fn matvec_rows(ctx: &GpuContext) -> usize {
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
        (true, "main3") => "main3_rows",
        (true, "main_swiglu") => "main_swiglu_rows",
        (true, e) => e,
    }
}

/// The matvec module for `ty`, its rows summed by subgroup operations or through
/// workgroup memory. No `enable subgroups;`: naga 30 rejects the directive ("not yet
/// implemented", gfx-rs/wgpu#5555) and takes subgroup builtins on the device feature
/// alone; wgpu 30 offers the feature natively only, so Tint (which needs it) never
/// sees this module.
fn matvec_source(ty: GgmlType, subgroups: bool) -> String {
    let sum = if subgroups { MATVEC_SUM_SUBGROUP } else { MATVEC_SUM_WORKGROUP };
    typed_source(ty, &format!("{}\n{sum}\n{MATVEC}", dot_source(ty)))
}

/// The matvec pipeline for `ty` and `entry` in this device's layout (a row per thread
/// on CPU adapters) and, for the lanes-per-row layout, the row sums `rec`'s kernels
/// use (the row-per-thread entry points sum nothing across threads).
fn matvec_pipeline(rec: &Recorder, ty: GgmlType, entry: &'static str) -> wgpu::ComputePipeline {
    let sg = rec.k.subgroups && !rec.ctx.row_per_thread;
    let name = format!("matvec_{}{}", if sg { "sg_" } else { "" }, ty.name());
    rec.k.pipeline(rec.ctx, &name, matvec_entry(rec.ctx, entry), || matvec_source(ty, sg))
}

/// `y[y_col0 + r] = W[r, :] · x[:n_in]` for one token (decode).
pub fn matvec(rec: &mut Recorder, w: &GpuMatrix, x: &Buf, y: &Buf, y_col0: usize) -> Result<(), GpuError> {
    shape("matvec", x.len >= w.n_in && y.len >= y_col0 + w.n_out, || format!("x holds {} floats for n_in {}, y {} for columns {y_col0}..{}", x.len, w.n_in, y.len, y_col0 + w.n_out))?;
    matmul_rows(rec, w, 0..w.n_out, x, w.n_in, y, y_col0 + w.n_out, y_col0, 1)
}

/// Decode through a fused Q/K/V matrix `w` (rows: n0 of Q, n1 of K, the rest V) in
/// one dispatch per part: rows into `y0`, `y1`, `y2` from their starts.
#[allow(clippy::too_many_arguments)]
pub fn matvec3(rec: &mut Recorder, w: &GpuMatrix, n0: usize, n1: usize, x: &Buf, y0: &Buf, y1: &Buf, y2: &Buf) -> Result<(), GpuError> {
    shape("matvec3", n0 + n1 <= w.n_out && x.len >= w.n_in && y0.len >= n0 && y1.len >= n1 && y2.len >= w.n_out - n0 - n1, || format!("`{}` rows {} as {n0} + {n1} + rest; x {} y {} {} {}", w.name, w.n_out, x.len, y0.len, y1.len, y2.len))?;
    let pl = matvec_pipeline(rec, w.ty, "main3");
    for part in &w.parts {
        let (gx, gy) = spread(part.rows.div_ceil(matvec_rows(rec.ctx)));
        let p = [w.n_in, part.rows, 1, w.row_bytes(), 0, part.row0, w.n_in, 0, n0, n0 + n1, 0, 0].map(|v| v as u32);
        let binds = [(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y0.buffer)), (4, Bind::Whole(&y1.buffer)), (5, Bind::Whole(&y2.buffer))];
        rec.dispatch(&pl, &p, &binds, (gx, gy, 1))?;
    }
    Ok(())
}

/// Decode through a fused gate/up matrix `w` (gate rows over as many up rows, in one
/// part): `y[r] = silu(gate_r · x) · (up_r · x)` in one dispatch.
pub fn matvec_swiglu(rec: &mut Recorder, w: &GpuMatrix, x: &Buf, y: &Buf) -> Result<(), GpuError> {
    let n_ff = w.n_out / 2;
    shape("matvec_swiglu", w.parts.len() == 1 && w.n_out % 2 == 0 && x.len >= w.n_in && y.len >= n_ff, || format!("`{}`: {} parts of {} rows (one part, even rows); x {} y {}", w.name, w.parts.len(), w.n_out, x.len, y.len))?;
    let pl = matvec_pipeline(rec, w.ty, "main_swiglu");
    let (gx, gy) = spread(n_ff.div_ceil(matvec_rows(rec.ctx)));
    let p = [w.n_in, n_ff, 1, w.row_bytes(), 0, 0, w.n_in, 0, 1, 0, 0, 0].map(|v| v as u32);
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&w.parts[0].buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer))], (gx, gy, 1))
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
    let pl = rec.k.pipeline(rec.ctx, &format!("matmul_{}", w.ty.name()), "main_id", || typed_source(w.ty, MATMUL));
    rec.charge((n_tok * k * w.expert_bytes()) as u64)?;
    let (gx, gy) = spread(w.n_out);
    for part in &w.parts {
        let e = w.experts(part);
        let p = [w.n_in, w.n_out, n_tok, w.row_bytes(), 0, 0, w.n_in, w.n_out, k, w.expert_bytes(), x_per_slot as usize, e.start, e.end, 0, 0, 0].map(|v| v as u32);
        rec.dispatch(&pl, &p, &[(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer)), (4, Bind::Whole(&ids.buffer))], (gx, gy, (n_tok * k) as u32))?;
    }
    Ok(())
}

fn matmul_id_shapes(kernel: &'static str, w: &GpuMatrix, k: usize, x: &Buf, x_per_slot: bool, y: &Buf, n_tok: usize) -> Result<(), GpuError> {
    let x_rows = if x_per_slot { n_tok * k } else { n_tok };
    shape(kernel, w.n_expert > 1, || format!("`{}` is not an expert stack", w.name))?;
    shape(kernel, w.n_in % w.ty.block_size() == 0, || format!("`{}`: n_in {} is not a multiple of the {} block", w.name, w.n_in, w.ty.name()))?;
    shape(kernel, x.len >= x_rows * w.n_in, || format!("x holds {} floats, need {x_rows} rows of {}", x.len, w.n_in))?;
    shape(kernel, y.len >= n_tok * k * w.n_out, || format!("y holds {} floats, need {} rows of {}", y.len, n_tok * k, w.n_out))
}

/// The (token, slot) entries `t·k + s` of `ids` grouped by expert, on the GPU (the
/// CPU never sees the ids): expert e's are `entries[offsets[e] .. offsets[e + 1]]`,
/// ascending. Twin: [`crate::cpu::moe::group_by_expert`].
pub fn moe_group(rec: &mut Recorder, ids: &Buf, offsets: &Buf, entries: &Buf, n_tok: usize, n_expert: usize, k: usize) -> Result<(), GpuError> {
    shape("moe_group", n_expert <= 63 && ids.len >= n_tok * k && entries.len >= n_tok * k && offsets.len > n_expert, || format!("{n_expert} experts (max 63), ids {} entries {} offsets {} for {n_tok} tokens of top {k}", ids.len, entries.len, offsets.len))?;
    let pl = rec.k.pipeline(rec.ctx, "moe", "group", || MOE.to_string());
    let p = [n_tok, n_expert, k, 0].map(|v| v as u32);
    rec.dispatch(&pl, &p, &[(2, Bind::Whole(&ids.buffer)), (6, Bind::Whole(&offsets.buffer)), (7, Bind::Whole(&entries.buffer))], (1, 1, 1))
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
    let pl = rec.k.pipeline(rec.ctx, &format!("matmul_{}", w.ty.name()), "main_grouped", || typed_source(w.ty, MATMUL));
    let (gx, gy) = spread(w.n_out.div_ceil(MATMUL_ROWS));
    for part in &w.parts {
        let e = w.experts(part);
        let gz = e.len() * tiles;
        // The n_tok·k rows spread over the experts; this part's share, as routed evenly.
        rec.charge((n_tok * k * w.expert_bytes() * e.len() / w.n_expert) as u64)?;
        shape("matmul_id_grouped", gz <= 65535, || format!("`{}`: {} experts x {tiles} token tiles = {gz} workgroups in z (max 65535)", w.name, e.len()))?;
        let p = [w.n_in, w.n_out, n_tok, w.row_bytes(), 0, 0, w.n_in, w.n_out, k, w.expert_bytes(), x_per_slot as usize, e.start, e.end, tiles, 0, 0].map(|v| v as u32);
        let binds = [(1, Bind::Whole(&part.buffer)), (2, Bind::Whole(&x.buffer)), (3, Bind::Whole(&y.buffer)), (5, Bind::Whole(&offsets.buffer)), (6, Bind::Whole(&entries.buffer))];
        rec.dispatch(&pl, &p, &binds, (gx, gy, gz as u32))?;
    }
    Ok(())
}

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

/// Attention geometry for one chunk.
pub struct AttnArgs {
    pub n_tok: usize,
    pub n_head: usize,
    pub n_kv: usize,
    pub head_dim: usize,
    /// Position of the chunk's first token.
    pub pos: usize,
    pub capacity: usize,
    /// 0 = full causal.
    pub window: usize,
    /// The cache holds f16 (`shader-f16`), else f32.
    pub half: bool,
}

/// What the attention and cache-store shaders are joined after: the cache's element
/// type (f16 needs the `shader-f16` feature, which the caller checked).
fn kv_prelude(half: bool) -> &'static str {
    if half {
        "enable f16;\nalias kv_t = f16;\n"
    } else {
        "alias kv_t = f32;\n"
    }
}

fn kv_name(base: &str, half: bool) -> String {
    format!("{base}_{}", if half { "f16" } else { "f32" })
}

fn attention_params(a: &AttnArgs, n_split: usize, chunk: usize) -> [u32; 12] {
    let oldest = a.pos.saturating_sub(a.capacity);
    let scale = 1.0 / (a.head_dim as f32).sqrt();
    [a.n_tok as u32, a.n_head as u32, a.n_kv as u32, a.head_dim as u32, a.pos as u32, a.capacity as u32, a.window as u32, oldest as u32, scale.to_bits(), n_split as u32, chunk as u32, 0]
}

#[allow(clippy::too_many_arguments)]
fn attention_shapes(a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf) -> Result<(), GpuError> {
    let (qd, kvd) = (a.n_head * a.head_dim, a.n_kv * a.head_dim);
    shape("attention", a.head_dim <= 256 && a.n_kv > 0 && a.n_head % a.n_kv == 0, || format!("head_dim {} (max 256), {} heads over {} kv heads", a.head_dim, a.n_head, a.n_kv))?;
    shape("attention", q.len >= a.n_tok * qd && out.len >= a.n_tok * qd && k.len >= a.n_tok * kvd && v.len >= a.n_tok * kvd, || format!("q {} k {} v {} out {} for {} tokens", q.len, k.len, v.len, out.len, a.n_tok))?;
    shape("attention", ck.len >= a.capacity * kvd && cv.len >= a.capacity * kvd && a.capacity > 0, || format!("cache {} floats for {} slots of {kvd}", ck.len, a.capacity))
}

#[allow(clippy::too_many_arguments)]
pub fn attention(rec: &mut Recorder, a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf) -> Result<(), GpuError> {
    attention_shapes(a, q, k, v, ck, cv, out)?;
    let pl = rec.k.pipeline(rec.ctx, &kv_name("attention", a.half), "main", || format!("{}{ATTENTION_ARGS}{ATTENTION}", kv_prelude(a.half)));
    let binds = [(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&k.buffer)), (3, Bind::Whole(&v.buffer)), (4, Bind::Whole(&ck.buffer)), (5, Bind::Whole(&cv.buffer)), (6, Bind::Whole(&out.buffer))];
    rec.dispatch(&pl, &attention_params(a, 0, 0), &binds, (a.n_head as u32, a.n_tok as u32, 1))
}

/// Largest head_dim [`attention_prefill`] takes (HD_MAX in attention_prefill.wgsl);
/// larger heads go through [`attention`].
pub const PREFILL_MAX_HEAD_DIM: usize = 128;
/// Query rows (positions × the heads sharing a KV head) per workgroup (R in
/// attention_prefill.wgsl).
const PREFILL_ROWS: usize = 16;

/// Chunked-prefill attention, tiled: one workgroup per (tile of PREFILL_ROWS query
/// rows, KV head), each key and value row read once per tile; same masks and
/// arguments as [`attention`].
#[allow(clippy::too_many_arguments)]
pub fn attention_prefill(rec: &mut Recorder, a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf) -> Result<(), GpuError> {
    attention_shapes(a, q, k, v, ck, cv, out)?;
    let tiles = (a.n_tok * (a.n_head / a.n_kv)).div_ceil(PREFILL_ROWS);
    shape("attention_prefill", (1..=PREFILL_MAX_HEAD_DIM).contains(&a.head_dim) && tiles <= 65535, || format!("head_dim {} (1..={PREFILL_MAX_HEAD_DIM}), {} tokens × {} heads per kv head in {tiles} tiles (max 65535)", a.head_dim, a.n_tok, a.n_head / a.n_kv))?;
    let pl = rec.k.pipeline(rec.ctx, &kv_name("attention_prefill", a.half), "main", || format!("{}{ATTENTION_ARGS}{ATTENTION_PREFILL}", kv_prelude(a.half)));
    // Multiply-adds of scores and values, a unit each (about what a quantized
    // weight byte costs a matmul).
    rec.charge(attention_units(a))?;
    let binds = [(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&k.buffer)), (3, Bind::Whole(&v.buffer)), (4, Bind::Whole(&ck.buffer)), (5, Bind::Whole(&cv.buffer)), (6, Bind::Whole(&out.buffer))];
    rec.dispatch(&pl, &attention_params(a, 0, 0), &binds, (tiles as u32, a.n_kv as u32, 1))
}

/// Work units of a chunk's attention: each query row against every key it can see
/// (the cache's rows and the chunk's, at most the window), scores and values.
pub fn attention_units(a: &AttnArgs) -> u64 {
    let seen = (a.pos + a.n_tok).min(a.capacity + a.n_tok);
    (a.n_tok * seen * a.n_head * a.head_dim) as u64
}

/// Keys one split-K workgroup folds in decode (a multiple of the 64-key tile).
pub const SPLIT_KEYS: usize = 256;
/// Most splits per head (sizes the partials buffer).
pub const MAX_SPLITS: usize = 64;

/// Splits for decode over `keys` visible keys: 1 (use [`attention`]) up to SPLIT_KEYS,
/// then one per SPLIT_KEYS, at most MAX_SPLITS.
pub fn attention_splits(keys: usize) -> usize {
    keys.div_ceil(SPLIT_KEYS).clamp(1, MAX_SPLITS)
}

/// Floats of the partials buffer [`attention_split`] needs.
pub fn attention_partials(n_head: usize, head_dim: usize) -> usize {
    n_head * MAX_SPLITS * (head_dim + 2)
}

/// Decode attention (one query) with the visible keys split over `n_split`
/// workgroups per head (flash-decoding), partial results in `partials`, merged by a
/// second dispatch: a long window no longer runs through one workgroup per head.
#[allow(clippy::too_many_arguments)]
pub fn attention_split(rec: &mut Recorder, a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf, partials: &Buf, n_split: usize) -> Result<(), GpuError> {
    attention_shapes(a, q, k, v, ck, cv, out)?;
    shape("attention_split", a.n_tok == 1 && (1..=MAX_SPLITS).contains(&n_split) && partials.len >= a.n_head * n_split * (a.head_dim + 2), || format!("{} tokens (decode only), {n_split} splits (1..={MAX_SPLITS}), partials {}", a.n_tok, partials.len))?;
    let oldest = a.pos.saturating_sub(a.capacity);
    let first = if a.window > 0 { oldest.max((a.pos + 1).saturating_sub(a.window)) } else { oldest };
    let keys = a.pos + 1 - first;
    let chunk = keys.div_ceil(n_split).next_multiple_of(64);
    let src = || format!("{}{ATTENTION_ARGS}{ATTENTION}", kv_prelude(a.half));
    let name = kv_name("attention", a.half);
    let p = attention_params(a, n_split, chunk);
    let binds = [(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&k.buffer)), (3, Bind::Whole(&v.buffer)), (4, Bind::Whole(&ck.buffer)), (5, Bind::Whole(&cv.buffer)), (7, Bind::Whole(&partials.buffer))];
    let pl = rec.k.pipeline(rec.ctx, &name, "split", src);
    rec.dispatch(&pl, &p, &binds, (a.n_head as u32, n_split as u32, 1))?;
    let pl = rec.k.pipeline(rec.ctx, &name, "combine", src);
    rec.dispatch(&pl, &p, &[(6, Bind::Whole(&out.buffer)), (7, Bind::Whole(&partials.buffer))], (a.n_head as u32, 1, 1))
}

/// Writes rows `first..n` of the chunk's `k`, `v` [n, kvd] into cache slots
/// `(pos + i) mod capacity` of `ck`, `cv` (f16 when `half`), with `first` =
/// n - capacity for a chunk longer than the cache.
#[allow(clippy::too_many_arguments)]
pub fn kv_store(rec: &mut Recorder, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, n: usize, kvd: usize, pos: usize, capacity: usize, half: bool) -> Result<(), GpuError> {
    shape("kv_store", capacity > 0 && k.len >= n * kvd && v.len >= n * kvd && ck.len >= capacity * kvd && cv.len >= capacity * kvd, || format!("k {} v {} for {n} rows of {kvd}, cache {} {} for {capacity} slots", k.len, v.len, ck.len, cv.len))?;
    let first = n.saturating_sub(capacity);
    let pl = rec.k.pipeline(rec.ctx, &kv_name("kv_store", half), "main", || format!("{}{KV_STORE}", kv_prelude(half)));
    let (gx, gy) = spread(((n - first) * kvd).div_ceil(64));
    let p = [n, kvd, pos, capacity, first, 0, 0, 0].map(|v| v as u32);
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&k.buffer)), (2, Bind::Whole(&v.buffer)), (3, Bind::Whole(&ck.buffer)), (4, Bind::Whole(&cv.buffer))], (gx, gy, 1))
}

/// Top-k experts per token and their renormalised weights, into `ids` and `wts`.
pub fn moe_route(rec: &mut Recorder, logits: &Buf, ids: &Buf, wts: &Buf, n_tok: usize, n_expert: usize, k: usize) -> Result<(), GpuError> {
    shape("moe_route", n_expert <= 32 && k >= 1 && k <= n_expert, || format!("{n_expert} experts (max 32), top {k}"))?;
    shape("moe_route", logits.len >= n_tok * n_expert && ids.len >= n_tok * k && wts.len >= n_tok * k, || format!("logits {} ids {} wts {}", logits.len, ids.len, wts.len))?;
    let pl = rec.k.pipeline(rec.ctx, "moe", "route", || MOE.to_string());
    let p = [n_tok, n_expert, k, 0].map(|v| v as u32);
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&logits.buffer)), (2, Bind::Whole(&ids.buffer)), (3, Bind::Whole(&wts.buffer))], (n_tok.div_ceil(64) as u32, 1, 1))
}

/// `y[t] = Σ_s wts[t, s] · down[t·k + s]`, rows of n.
#[allow(clippy::too_many_arguments)]
pub fn moe_combine(rec: &mut Recorder, wts: &Buf, down: &Buf, y: &Buf, n_tok: usize, k: usize, n: usize) -> Result<(), GpuError> {
    shape("moe_combine", wts.len >= n_tok * k && down.len >= n_tok * k * n && y.len >= n_tok * n, || format!("wts {} down {} y {}", wts.len, down.len, y.len))?;
    let pl = rec.k.pipeline(rec.ctx, "moe", "combine", || MOE.to_string());
    let (gx, gy) = spread((n_tok * n).div_ceil(64));
    let p = [n_tok, 0, k, n].map(|v| v as u32);
    rec.dispatch(&pl, &p, &[(3, Bind::Whole(&wts.buffer)), (4, Bind::Whole(&down.buffer)), (5, Bind::Whole(&y.buffer))], (gx, gy, 1))
}

/// Index of the largest of `logits[row_off .. row_off + n]` into `out[0]`.
pub fn argmax(rec: &mut Recorder, logits: &Buf, row_off: usize, n: usize, out: &Buf) -> Result<(), GpuError> {
    shape("argmax", n > 0 && logits.len >= row_off + n && out.len >= 1, || format!("logits {} for {n} from {row_off}", logits.len))?;
    let pl = rec.k.pipeline(rec.ctx, "sample", "argmax", || SAMPLE.to_string());
    rec.dispatch(&pl, &[n as u32, row_off as u32, 0, 0], &[(1, Bind::Whole(&logits.buffer)), (2, Bind::Whole(&out.buffer))], (1, 1, 1))
}

/// A device buffer for `len` f32/u32 elements (storage, copy source and target).
pub fn buf(ctx: &GpuContext, what: &str, len: usize) -> Buf {
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(what),
        size: (len.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    Buf { buffer, len }
}
