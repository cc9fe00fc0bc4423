//! The [`Recorder`] every kernel records into, and the [`Kernels`] it draws on: the
//! pipelines (built once per shader, weight type and entry point), the bind groups a
//! decode step repeats, and the uniform buffer each dispatch takes a slot of.

use std::collections::HashMap;
use std::sync::Mutex;
use bytemuck::Pod;
use crate::gpu::context::{GpuContext, GpuError};
use super::StepCounts;

/// Bytes per uniform slot: WebGPU's minUniformBufferOffsetAlignment is at most 256.
const SLOT: u64 = 256;

/// Dispatches one recorder (one step) may hold, each in a uniform slot of its own
/// (SmolLM2 needs ~450, Mixtral 8x7B ~700).
pub const MAX_DISPATCHES: u64 = 4096;

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

/// What every [`Recorder`] draws on: the pipelines and bind groups built so far, and
/// the uniform buffer.
pub struct Kernels {
    pipelines: Mutex<HashMap<(String, &'static str), wgpu::ComputePipeline>>,
    binds: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    /// The name each pipeline was built under, for the profiler's table.
    names: Mutex<HashMap<wgpu::ComputePipeline, String>>,
    /// MAX_DISPATCHES slots of SLOT bytes, a step's dispatches' uniforms.
    uniforms: wgpu::Buffer,
    /// What the last submitted step held.
    pub last_step: Mutex<StepCounts>,
    /// `PRECIS_GPU_PROFILE=1` and a device with timestamp queries: GPU time per kernel.
    pub profile: Option<crate::gpu::profile::Profiler>,
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
        let uniforms = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel uniforms"),
            size: SLOT * MAX_DISPATCHES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Kernels { pipelines: Mutex::new(HashMap::new()), binds: Mutex::new(HashMap::new()), names: Mutex::new(HashMap::new()), uniforms, last_step: Mutex::new(StepCounts::default()), profile: crate::gpu::profile::Profiler::from_env(ctx), subgroups: subgroups && ctx.has_subgroups }
    }

    /// The pipeline of `entry` in the module `source` builds, cached under (`name`,
    /// `entry`): `source` runs only the first time.
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
    pub kernels: &'a Kernels,
    /// `None` only while `submit` hands it to the queue.
    enc: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    /// The step's uniform slots so far, as they go into the uniform buffer.
    uniforms: Vec<u8>,
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
    /// Bytes of `uniforms` already written to the uniform buffer.
    written: usize,
}

/// A storage buffer at a binding number of a dispatch (the whole buffer).
pub(crate) enum Bind<'b> {
    Whole(&'b wgpu::Buffer),
}

impl<'a> Recorder<'a> {
    pub fn new(ctx: &'a GpuContext, kernels: &'a Kernels) -> Self {
        Recorder { ctx, kernels, enc: Some(ctx.device.create_command_encoder(&Default::default())), pass: None, uniforms: vec![], labels: vec![], started: crate::platform::clock::now(), counts: StepCounts::default(), in_pass: false, bounded: false, work: 0, written: 0 }
    }

    /// A recorder whose work is cut into submissions of at most the context's budget.
    pub fn bounded(ctx: &'a GpuContext, kernels: &'a Kernels) -> Self {
        let mut r = Self::new(ctx, kernels);
        r.bounded = kernels.profile.is_none();
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
        if self.uniforms.len() > self.written {
            self.ctx.queue.write_buffer(&self.kernels.uniforms, self.written as u64, &self.uniforms[self.written..]);
            self.written = self.uniforms.len();
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
        if let Some(p) = &self.kernels.profile {
            p.resolve(&mut enc, self.labels.len());
        }
        let t = crate::platform::clock::now();
        self.send(enc)?;
        *self.kernels.last_step.lock().unwrap_or_else(|e| e.into_inner()) = self.counts;
        if let Some(p) = &self.kernels.profile {
            p.add_host(t - self.started, crate::platform::clock::now() - t);
            p.add_counts(self.counts);
            p.collect(self.ctx, &self.labels)?;
        }
        Ok(())
    }

    /// Records a dispatch of `groups` workgroups of `pipeline` with `binds` at their
    /// binding numbers and, at binding 0, `params` in a slot of its own: the
    /// `#[repr(C)]` twin of the shader's `struct Params` (kernels/mod.rs has the layout
    /// rules), zero-filled to the slot's end.
    pub(crate) fn dispatch<P: Pod>(&mut self, pipeline: &wgpu::ComputePipeline, params: &P, binds: &[(u32, Bind)], groups: (u32, u32, u32)) -> Result<(), GpuError> {
        const { assert!(std::mem::size_of::<P>() as u64 <= SLOT && std::mem::size_of::<P>() % 16 == 0, "a uniform block fills whole 16-byte rows of one slot") };
        let slot = self.uniforms.len() as u64;
        if slot / SLOT >= MAX_DISPATCHES {
            return Err(GpuError::Shape { kernel: "recorder", message: format!("more than {MAX_DISPATCHES} dispatches in one step") });
        }
        let mut p = bytemuck::bytes_of(params).to_vec();
        p.resize(SLOT as usize, 0);
        self.uniforms.extend(p);
        let key: BindKey = (pipeline.clone(), slot, binds.iter().map(|(b, Bind::Whole(buf))| (*b, (*buf).clone())).collect());
        let bg = {
            let mut cache = self.kernels.binds.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(bg) = cache.get(&key) {
                bg.clone()
            } else {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: &self.kernels.uniforms, offset: slot, size: std::num::NonZeroU64::new(SLOT) }),
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
        if let Some(prof) = &self.kernels.profile {
            // One pass per dispatch, timestamped at its start and end.
            self.pass = None;
            self.labels.push(self.kernels.label(pipeline));
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
