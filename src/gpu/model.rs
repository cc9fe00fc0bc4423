//! The forward pass on the GPU for every family of `format::family`, step for step as
//! src/cpu/model.rs (the optional steps too). A
//! decode step records every dispatch into one command buffer with one submit; a
//! prefill chunk is cut into submissions of bounded work (src/gpu/submit.rs). Nothing
//! is read back inside a call (the caller reads the logits, or just the greedy id).
//!
//! The steps of [`GpuModel::run`] are numbered as `cpu::model::Model::forward`'s. A
//! change to one step comes with the same-numbered change in the other pass and a case
//! in tests/gpu_model.rs that compares them; the rules both obey (input checks,
//! chunking, cache shape, rope frequencies, the tensors) live once in `model/`.

use super::cache::GpuKvCache;
use super::context::{GpuContext, GpuError};
use super::kernels::{self, buf, AttnArgs, Buf, Fuse, Kernels, Recorder, StepCounts};
use super::weights::{check_fits, part_limit, upload_f32, upload_limited, GpuMatrix, MatrixSource};
use crate::format::hparams::Hparams;
use crate::format::gguf::TensorInfo;
use crate::format::quant::dequantize_vec;
use crate::format::source::{read_tensor, ByteSource};
use crate::model::cache::{CachePos, CacheShape};
use crate::model::input::{check_input, prefill_chunk};
use crate::model::spec::{Experts, FfnSpec, ModelSpec, Parts, DOWN, GATE, UP};
use crate::model::Logits;
use std::sync::Mutex;

/// How the GPU chooses the next token when only its id is read back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeviceSampling {
    Greedy,
    /// Temperature / top-k / top-p with the draw for decode step `.1`.
    Sample(super::sample::SampleParams, u32),
}

impl DeviceSampling {
    /// This step's pick; a sampled pick's draw advances for the next step (once per
    /// sampled token, so a seeded run draws the same stream however it is cut).
    pub fn advance(&mut self) -> DeviceSampling {
        let now = *self;
        if let DeviceSampling::Sample(_, step) = self {
            *step += 1;
        }
        now
    }
}

/// Projection `p` of every expert as one source: a merged tensor, or the per-expert
/// tensors stacked in expert order.
/// (By the layout, not the count: a per-expert file may have one expert.)
fn experts_source<'a>(experts: &'a Experts, p: usize) -> MatrixSource<'a> {
    match experts {
        Experts::Merged { .. } => MatrixSource::merged(experts.projection(p)[0]),
        Experts::PerExpert(_) => MatrixSource::stacked(&experts.projection(p)),
    }
}

/// Matrices that read the same input (Q/K/V, gate/up), stacked by rows in one matrix
/// when their types match (one decode dispatch instead of several), else kept
/// separate: the GPU's twin of `cpu::linear::Projections`.
pub enum Projections<const N: usize> {
    /// Rows of each, in order, and the stack.
    Stacked([usize; N], GpuMatrix),
    Separate([GpuMatrix; N]),
}

impl<const N: usize> Projections<N> {
    pub fn bytes(&self) -> u64 {
        match self {
            Projections::Stacked(_, m) => m.bytes(),
            Projections::Separate(ms) => ms.iter().map(|m| m.bytes()).sum(),
        }
    }

    /// Prefill (or a stack the decode kernels cannot take): matrix i into `ys[i]`,
    /// rows of its own n_out.
    fn matmul_each(&self, r: &mut Recorder, x: &Buf, x_stride: usize, ys: [&Buf; N], n: usize) -> Result<(), GpuError> {
        match self {
            Projections::Stacked(rows, m) => {
                let mut at = 0;
                for (i, y) in ys.iter().enumerate() {
                    kernels::matmul_rows(r, m, at..at + rows[i], x, x_stride, y, rows[i], 0, n)?;
                    at += rows[i];
                }
                Ok(())
            }
            Projections::Separate(ms) => {
                for (m, y) in ms.iter().zip(ys) {
                    kernels::matmul(r, m, x, x_stride, y, m.n_out, 0, n)?;
                }
                Ok(())
            }
        }
    }

    /// Decode (a stack the fused entry points cannot take, or separate matrices):
    /// matrix i into `ys[i]`, each with `fuse` (the norm before them) around it.
    fn matvec_each(&self, r: &mut Recorder, fuse: Fuse, x: &Buf, ys: [&Buf; N]) -> Result<(), GpuError> {
        match self {
            Projections::Stacked(rows, m) => {
                let mut at = 0;
                for (i, y) in ys.iter().enumerate() {
                    kernels::matvec_fused(r, m, at..at + rows[i], fuse, x, y, 0)?;
                    at += rows[i];
                }
                Ok(())
            }
            Projections::Separate(ms) => {
                for (m, y) in ms.iter().zip(ys) {
                    kernels::matvec_fused(r, m, 0..m.n_out, fuse, x, y, 0)?;
                }
                Ok(())
            }
        }
    }
}

/// Uploads `parts` (same n_in; separate tensors, or row ranges of one fused tensor)
/// stacked by rows when they share a type, else apart.
async fn upload_stacked<const N: usize>(ctx: &GpuContext, src: &mut dyn ByteSource, parts: &Parts<N>, limit: u64) -> Result<Projections<N>, GpuError> {
    let ss = parts.slices();
    let same = ss.iter().all(|s| s.tensor.ty == ss[0].tensor.ty && s.n_in() == ss[0].n_in());
    if same {
        let mut names: Vec<&str> = ss.iter().map(|s| s.tensor.name.as_str()).collect();
        names.dedup();
        let name = names.join("+");
        let rows: [usize; N] = ss.map(|s| s.n_out());
        let stack = MatrixSource { name: &name, n_out: rows.iter().sum(), ranges: ss.iter().map(|s| s.range()).collect(), ..MatrixSource::plain(ss[0].tensor) };
        return Ok(Projections::Stacked(rows, upload_limited(ctx, src, &stack, limit).await?));
    }
    let mut ms = Vec::with_capacity(N);
    for s in ss {
        ms.push(upload_limited(ctx, src, &MatrixSource::slice(s), limit).await?);
    }
    Ok(Projections::Separate(ms.try_into().unwrap_or_else(|_| unreachable!("N matrices uploaded"))))
}

pub enum GpuFfn {
    /// Gate and up (stacked when their types match), down.
    Dense { gate_up: Projections<2>, down: GpuMatrix },
    /// Expert matrices stacked `n_expert` deep, whole experts per part.
    Moe { router: GpuMatrix, gate: GpuMatrix, up: GpuMatrix, down: GpuMatrix },
}

pub struct GpuLayer {
    pub attn_norm: Buf,
    pub qkv: Projections<3>,
    /// Q, K, V biases where the family has them (qwen2).
    pub qkv_bias: [Option<Buf>; 3],
    /// Per-head RMSNorm weights of Q and K where the family has them (qwen3).
    pub qk_norm: [Option<Buf>; 2],
    pub o: GpuMatrix,
    pub ffn_norm: Buf,
    pub ffn: GpuFfn,
    /// RMSNorm weights of the attention and FFN outputs where the family has them (gemma3).
    pub post_norm: [Option<Buf>; 2],
}

pub struct GpuModel {
    pub ctx: GpuContext,
    pub kernels: Kernels,
    pub hp: Hparams,
    pub embd: GpuMatrix,
    /// `None`: tied to `embd`.
    pub output: Option<GpuMatrix>,
    pub output_norm: Buf,
    /// Rotary frequencies of every layer, or of the global ones where layers alternate.
    pub inv_freq: Buf,
    /// The local layers' frequencies where layers alternate (gemma3: another base).
    pub inv_freq_local: Option<Buf>,
    pub layers: Vec<GpuLayer>,
    /// Bytes of weights on the device.
    pub weight_bytes: u64,
    /// New caches hold f16 rows: the device has `shader-f16` and `PRECIS_GPU_KV=f32`
    /// was not set at load (tests switch it to compare both).
    pub kv_half: bool,
    scratch: Mutex<Option<Scratch>>,
}

/// Activations for a chunk of `n` tokens (reused while `n` repeats, as in decode).
struct Scratch {
    n: usize,
    rows: usize,
    /// Token ids `[n]`.
    tok: Buf,
    /// The residual stream `[n, n_embd]`, which every block adds into.
    resid: Buf,
    /// The RMSNorm of the residual `[n, n_embd]`, a block's input.
    normed: Buf,
    /// Queries `[n, q_dim]`, keys and values `[n, kv_dim]`.
    q: Buf,
    k: Buf,
    v: Buf,
    /// Attention's output `[n, q_dim]`, before the output projection.
    attn: Buf,
    /// A block's output `[n, n_embd]`, added into the residual.
    branch: Buf,
    /// SwiGLU's gate (then the activated product) and up projections `[n, n_ff]`.
    gate: Buf,
    up: Buf,
    /// The last token's residual row, when only its logits are wanted.
    last: Buf,
    /// Split-K attention's per-split results (decode).
    partials: Buf,
    logits: Buf,
    token: Buf,
    readback: wgpu::Buffer,
    moe: Option<MoeScratch>,
}

/// A MoE layer's activations for a chunk of n tokens routed to k experts each.
struct MoeScratch {
    /// [n, n_expert] router logits.
    logits: Buf,
    /// [n, k] chosen experts (written and read on the GPU only) and their weights.
    ids: Buf,
    wts: Buf,
    /// Prefill: the (token, slot) rows grouped by expert ([n_expert + 1], [n·k]).
    offsets: Buf,
    entries: Buf,
    /// [n·k, n_ff_exp] gate (then SwiGLU) and up, [n·k, n_embd] down, per (token, slot).
    gate: Buf,
    up: Buf,
    down: Buf,
}

/// The forward-pass steps of `hp`'s family that `run` does not have yet, in words;
/// `None` when it runs the model (gemma3 27B's attention scale and MoE models of more than
/// 32 experts are the ones left; the CPU runs both).
pub fn unsupported_steps(hp: &Hparams, _spec: &ModelSpec) -> Option<String> {
    let mut missing = vec![];
    if (hp.attn_scale - 1.0 / (hp.head_dim as f32).sqrt()).abs() > f32::EPSILON * hp.attn_scale {
        missing.push("an attention scale other than 1/sqrt(head_dim)");
    }
    if hp.n_expert > 32 {
        // moe.wgsl's top-k keeps the chosen experts in a 32-bit mask (Qwen3-30B-A3B has 128).
        missing.push("more than 32 experts (moe.wgsl's top-k)");
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

impl GpuModel {
    /// Uploads every tensor of `spec` from `src` tensor by tensor (host memory stays
    /// bounded by the staging chunk). Every size is checked before anything is allocated.
    pub async fn load(ctx: GpuContext, src: &mut dyn ByteSource, file: &str, spec: &ModelSpec, hp: Hparams) -> Result<Self, GpuError> {
        Self::load_limited(ctx, src, file, spec, hp, u64::MAX).await
    }

    /// As [`GpuModel::load`] with weight parts of at most `limit` bytes (or the
    /// device's limit if lower): tests split small models as a browser's binding limit
    /// splits big ones.
    pub async fn load_limited(ctx: GpuContext, src: &mut dyn ByteSource, file: &str, spec: &ModelSpec, hp: Hparams, limit: u64) -> Result<Self, GpuError> {
        if let Some(missing) = unsupported_steps(&hp, spec) {
            return Err(GpuError::Load(format!(
                "{file}: the GPU engine does not run `{}` ({}) yet; it lacks {missing}. Use the CPU (--backend cpu)",
                hp.arch, hp.family.name
            )));
        }
        let limit = limit.min(part_limit(&ctx));
        let plan = plan(spec);
        for m in &plan {
            check_fits(m, limit)?;
        }
        let weight_bytes: u64 = spec.total_bytes();
        macro_rules! up {
            ($s:expr, $src:expr) => {
                upload_limited(&ctx, $src, &$s, limit).await?
            };
        }
        let vector = |t: &TensorInfo, src: &mut dyn ByteSource| -> Result<Vec<f32>, GpuError> {
            let b = read_tensor(src, t, file).map_err(|e| GpuError::Load(e.to_string()))?;
            Ok(dequantize_vec(t.ty, &b, t.n_elements() as usize))
        };
        let mut layers = Vec::with_capacity(spec.layers.len());
        for ls in &spec.layers {
            let ffn = match &ls.ffn {
                FfnSpec::Dense { gate_up, down } => GpuFfn::Dense { gate_up: upload_stacked(&ctx, src, gate_up, limit).await?, down: up!(MatrixSource::plain(down), src) },
                FfnSpec::Moe { router, experts } => {
                    let (g, u, d) = (experts_source(experts, GATE), experts_source(experts, UP), experts_source(experts, DOWN));
                    GpuFfn::Moe { router: up!(MatrixSource::plain(router), src), gate: up!(g, src), up: up!(u, src), down: up!(d, src) }
                }
            };
            let attn_norm = vector(&ls.attn_norm, src)?;
            let ffn_norm = vector(&ls.ffn_norm, src)?;
            let mut qkv_bias = [None, None, None];
            for (b, t) in qkv_bias.iter_mut().zip(&ls.qkv_bias) {
                if let Some(t) = t {
                    *b = Some(fbuf(&ctx, "qkv bias", &vector(t, src)?).await?);
                }
            }
            let mut qk_norm = [None, None];
            for (b, t) in qk_norm.iter_mut().zip(&ls.qk_norm) {
                if let Some(t) = t {
                    *b = Some(fbuf(&ctx, "q/k norm", &vector(t, src)?).await?);
                }
            }
            let mut post_norm = [None, None];
            for (b, t) in post_norm.iter_mut().zip(&ls.post_norm) {
                if let Some(t) = t {
                    *b = Some(fbuf(&ctx, "post norm", &vector(t, src)?).await?);
                }
            }
            layers.push(GpuLayer {
                post_norm,
                attn_norm: fbuf(&ctx, "attn_norm", &attn_norm).await?,
                qkv: upload_stacked(&ctx, src, &ls.qkv, limit).await?,
                qkv_bias,
                qk_norm,
                o: up!(MatrixSource::plain(&ls.o), src),
                ffn_norm: fbuf(&ctx, "ffn_norm", &ffn_norm).await?,
                ffn,
            });
        }
        let embd = up!(MatrixSource::plain(&spec.token_embd), src);
        let output = match &spec.output {
            Some(t) => Some(up!(MatrixSource::plain(t), src)),
            None => None,
        };
        let on = vector(&spec.output_norm, src)?;
        let output_norm = fbuf(&ctx, "output_norm", &on).await?;
        // The CPU's frequencies (model::rope), so GPU and CPU rotate identically, with
        // the file's frequency factors where it has them (rope_freqs.weight).
        let factors = match &spec.rope_freqs {
            Some(t) => {
                let f = vector(t, src)?;
                crate::model::rope::check_factors(file, &t.name, &f).map_err(|e| GpuError::Load(e.to_string()))?;
                Some(f)
            }
            None => None,
        };
        // Rope scaling is folded into the frequencies, the global layers' and the local
        // ones' each (gemma3's local layers are unscaled).
        let inv = crate::model::rope::layer_inv_freq(&hp, false, factors.as_deref());
        let inv_freq = fbuf(&ctx, "rope inv_freq", &inv).await?;
        let inv_freq_local = match hp.global_every {
            Some(_) => Some(fbuf(&ctx, "rope inv_freq (local layers)", &crate::model::rope::layer_inv_freq(&hp, true, factors.as_deref())).await?),
            None => None,
        };
        let kv_half = ctx.has_f16 && std::env::var("PRECIS_GPU_KV").map_or(true, |v| v != "f32");
        Ok(GpuModel { kernels: Kernels::new(&ctx), kv_half, ctx, hp, embd, output, output_norm, inv_freq, inv_freq_local, layers, weight_bytes, scratch: Mutex::new(None) })
    }

    /// What the last submitted step held (dispatches, passes, copies).
    pub fn last_step(&self) -> StepCounts {
        *self.kernels.last_step.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A GPU KV cache: W slots for a sliding-window model, else `n_ctx`; f16 rows
    /// when [`GpuModel::kv_half`].
    pub fn new_cache(&self, n_ctx: usize) -> Result<GpuKvCache, GpuError> {
        self.new_cache_with(n_ctx, self.kv_half)
    }

    /// As [`GpuModel::new_cache`] with the element type chosen (`half`: f16).
    pub fn new_cache_with(&self, n_ctx: usize, half: bool) -> Result<GpuKvCache, GpuError> {
        GpuKvCache::new(&self.ctx, CacheShape::for_model(&self.hp, n_ctx), half)
    }

    /// Runs `tokens` (positions `cache.pos..`) and returns logits (last row or all).
    pub async fn forward(&self, tokens: &[u32], cache: &mut GpuKvCache, which: Logits) -> Result<Vec<f32>, GpuError> {
        let rows = self.run(tokens, cache, which, None)?;
        let s = self.scratch.lock().unwrap();
        let s = s.as_ref().expect("run allocates scratch");
        let bytes = self.ctx.read_back(&s.logits.buffer, 0, (rows * self.hp.n_vocab * 4) as u64).await?;
        Ok(bytemuck::cast_slice::<u8, f32>(&bytes).to_vec())
    }

    /// Runs `tokens` and returns only the argmax of the last token's logits (4 bytes
    /// read back; the argmax and the copy are in the same submit as the step).
    pub async fn forward_greedy(&self, tokens: &[u32], cache: &mut GpuKvCache) -> Result<u32, GpuError> {
        self.forward_sampled(tokens, cache, DeviceSampling::Greedy).await
    }

    /// Runs `tokens` and returns only the token `pick` chooses from the last logits
    /// (sampled on the GPU in the same submit; 4 bytes read back).
    pub async fn forward_sampled(&self, tokens: &[u32], cache: &mut GpuKvCache, pick: DeviceSampling) -> Result<u32, GpuError> {
        self.run(tokens, cache, Logits::Last, Some(pick))?;
        let s = self.scratch.lock().unwrap();
        let s = s.as_ref().expect("run allocates scratch");
        let b = self.ctx.map_read(&s.readback, 4).await?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Tokens per prefill chunk: at most `chunk`, the window (as the CPU), and as many
    /// as keep the largest single matrix product within one submission's budget.
    pub fn prefill_chunk(&self, chunk: usize) -> usize {
        let per_token = self.largest_product_bytes().max(1);
        let fits = (self.ctx.submits.units() / per_token).max(1) as usize;
        prefill_chunk(&self.hp, chunk).min(fits)
    }

    /// Bytes of weights the largest single prefill dispatch reads per token: a matrix
    /// (or one of a fused stack's), or a MoE layer's k chosen experts.
    fn largest_product_bytes(&self) -> u64 {
        let k = self.hp.n_expert_used as u64;
        let mut m = 0u64;
        for l in &self.layers {
            m = m.max(l.qkv.bytes()).max(l.o.bytes());
            m = m.max(match &l.ffn {
                GpuFfn::Dense { gate_up, down } => gate_up.bytes().max(down.bytes()),
                GpuFfn::Moe { router, gate, up, down } => router.bytes().max(k * gate.expert_bytes().max(up.expert_bytes()).max(down.expert_bytes()) as u64),
            });
        }
        m
    }

    /// Prefill in chunks of at most [`GpuModel::prefill_chunk`] tokens.
    pub async fn prefill(&self, tokens: &[u32], cache: &mut GpuKvCache, chunk: usize) -> Result<Vec<f32>, GpuError> {
        if tokens.is_empty() {
            return Err(GpuError::Input(crate::model::ModelError::Empty));
        }
        let chunk = self.prefill_chunk(chunk);
        let mut last = vec![];
        let n = tokens.chunks(chunk).count();
        for (i, c) in tokens.chunks(chunk).enumerate() {
            if i + 1 < n {
                self.run(c, cache, Logits::Last, None)?;
            } else {
                last = self.forward(c, cache, Logits::Last).await?;
            }
        }
        Ok(last)
    }

    /// One chunk of a prefill whose logits nobody reads: recorded, submitted, and
    /// awaited until the GPU has finished it (so progress reports work done).
    pub async fn prefill_part(&self, tokens: &[u32], cache: &mut GpuKvCache) -> Result<(), GpuError> {
        self.run(tokens, cache, Logits::Last, None)?;
        self.ctx.settled().await
    }

    /// A cache for a generation of `n_ctx` positions holding `src`'s rows (a kept
    /// prompt prefix); `None` where they do not carry over (another window, or a dense
    /// context too short for them).
    pub fn copy_cache(&self, src: &GpuKvCache, n_ctx: usize) -> Result<Option<GpuKvCache>, GpuError> {
        let shape = CacheShape::for_model(&self.hp, n_ctx.max(src.pos));
        if shape.rolling != src.rolling || (src.rolling && shape.capacity != src.capacity) || shape.kv_dim != src.kv_dim || shape.local != src.local {
            return Ok(None);
        }
        let mut dst = GpuKvCache::new(&self.ctx, shape, src.half)?;
        let elem = if src.half { 2 } else { 4 };
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        for (l, &cap) in src.layer_capacity.iter().enumerate() {
            // A dense layer's rows 0..pos, or a rolling buffer's written slots; copies are whole words.
            let rows = src.pos.min(cap);
            let bytes = ((rows * src.kv_dim * elem) as u64).next_multiple_of(4);
            if bytes > 0 {
                enc.copy_buffer_to_buffer(&src.k[l].buffer, 0, &dst.k[l].buffer, 0, bytes);
                enc.copy_buffer_to_buffer(&src.v[l].buffer, 0, &dst.v[l].buffer, 0, bytes);
            }
        }
        self.ctx.queue.submit([enc.finish()]);
        dst.pos = src.pos;
        Ok(Some(dst))
    }

    /// As [`GpuModel::prefill`], returning the greedy next token only.
    pub async fn prefill_greedy(&self, tokens: &[u32], cache: &mut GpuKvCache, chunk: usize) -> Result<u32, GpuError> {
        self.prefill_sampled(tokens, cache, chunk, DeviceSampling::Greedy).await
    }

    /// As [`GpuModel::prefill`], returning only the token `pick` chooses.
    pub async fn prefill_sampled(&self, tokens: &[u32], cache: &mut GpuKvCache, chunk: usize, pick: DeviceSampling) -> Result<u32, GpuError> {
        let chunk = self.prefill_chunk(chunk);
        let n = tokens.chunks(chunk).count();
        for (i, c) in tokens.chunks(chunk).enumerate() {
            if i + 1 < n {
                self.run(c, cache, Logits::Last, None)?;
            } else {
                return self.forward_sampled(c, cache, pick).await;
            }
        }
        Err(GpuError::Input(crate::model::ModelError::Empty))
    }

    /// The shared input checks (model::input), plus one of the GPU's own: its
    /// attention and KV-store kernels are written for a chunk no longer than a rolling
    /// cache's W slots (prefill cuts longer inputs into such chunks; the CPU's
    /// attention takes any chunk length).
    fn check(&self, tokens: &[u32], cache: &GpuKvCache) -> Result<(), GpuError> {
        check_input(&self.hp, tokens, cache)?;
        let slots = cache.layer_capacity.iter().copied().min().unwrap_or(cache.capacity);
        if (cache.rolling || cache.local.is_some()) && tokens.len() > slots {
            let message = format!("chunk of {} tokens is longer than the window {slots}; use prefill", tokens.len());
            return Err(GpuError::Shape { kernel: "forward", message });
        }
        Ok(())
    }

    /// Records and submits one forward pass; the logits stay in the scratch buffer.
    fn run(&self, tokens: &[u32], cache: &mut GpuKvCache, which: Logits, pick: Option<DeviceSampling>) -> Result<usize, GpuError> {
        self.check(tokens, cache)?;
        self.ctx.check_lost()?;
        let hp = &self.hp;
        let n = tokens.len();
        let rows = if which == Logits::All { n } else { 1 };
        let mut guard = self.scratch.lock().unwrap();
        if guard.as_ref().is_none_or(|s| s.n != n || s.rows != rows) {
            *guard = Some(self.alloc(n, rows));
        }
        let s = guard.as_ref().expect("allocated above");
        self.ctx.queue.write_buffer(&s.tok.buffer, 0, bytemuck::cast_slice(tokens));
        let (d, qd, kvd, ff) = (hp.n_embd, hp.q_dim(), hp.kv_dim(), hp.n_ff);
        // Per layer: its slots, its window (gemma3's local layers and global ones differ).
        let attn_of = |l: usize| AttnArgs { n_tok: n, n_head: hp.n_head, n_kv: hp.n_head_kv, head_dim: hp.head_dim, pos: cache.pos, capacity: cache.layer_capacity[l], window: hp.layer_window(l).unwrap_or(0), half: cache.half };
        // Decode over a long context: the keys split over workgroups (flash-decoding).
        let n_split_of = |l: usize| if n == 1 { kernels::attention_splits(cache.keys_for_next(hp.layer_window(l))) } else { 1 };
        // Prefill is cut into submissions of bounded work; a decode step is one.
        let mut rec = if n > 1 { Recorder::bounded(&self.ctx, &self.kernels) } else { Recorder::new(&self.ctx, &self.kernels) };
        let r = &mut rec;
        kernels::embed(r, &self.embd, &s.tok, &s.resid, n)?;                                              // 1. token embeddings
        if hp.family.embd_scale {
            kernels::scale(r, &s.resid, n * d, (d as f32).sqrt())?;                                      //    × sqrt(n_embd) (gemma3)
        }
        // Decode fuses what sits between its products (issue 18: a 7B step spent more
        // GPU time between its ~550 dispatches than in them): each RMSNorm into the
        // matvec after it, each residual add into the matvec before it, RoPE of Q and
        // K into one dispatch. Prefill runs the steps apart (its products are compute-
        // bound; the dispatches are few against them). `decode_dispatches` counts them.
        let decode = n == 1;
        let eps = hp.rms_eps;
        for (l, ly) in self.layers.iter().enumerate() {
            let (attn, n_split) = (attn_of(l), n_split_of(l));
            let inv_freq = match &self.inv_freq_local {
                Some(local) if !hp.is_global(l) => local,
                _ => &self.inv_freq,
            };
            let attn_in = Fuse::norm(&ly.attn_norm, eps);                                                 // 2. pre-attention RMSNorm
            if !decode {                                                                                  //    (decode: fused into Q/K/V)
                kernels::rms_norm(r, &s.resid, &ly.attn_norm, &s.normed, d, n, eps)?;
            }
            match &ly.qkv {                                                                               // 3. Q/K/V
                Projections::Stacked([nq, nk, _], m) if decode => kernels::matvec_qkv_fused(r, m, *nq, *nk, attn_in, &s.resid, &s.q, &s.k, &s.v)?,
                qkv if decode => qkv.matvec_each(r, attn_in, &s.resid, [&s.q, &s.k, &s.v])?,
                qkv => qkv.matmul_each(r, &s.normed, d, [&s.q, &s.k, &s.v], n)?,
            }
            for ((y, b), w) in [&s.q, &s.k, &s.v].into_iter().zip(&ly.qkv_bias).zip([qd, kvd, kvd]) {
                b.as_ref().map(|b| kernels::add_rows(r, y, b, n, w)).transpose()?;                       // + biases (qwen2)
            }
            for ((y, g), heads) in [&s.q, &s.k].into_iter().zip(&ly.qk_norm).zip([hp.n_head, hp.n_head_kv]) {
                if let Some(g) = g {                                                                      // + RMSNorm per head, in place
                    kernels::rms_norm_inplace(r, y, g, hp.head_dim, n * heads, eps)?;                     //   (qwen3, gemma3)
                }
            }
            if hp.layer_rotates(l) {                                                                      // 4. rotary positions of Q and K in one
                let (pos, style, mscale) = (cache.pos, hp.family.rope, hp.rope_attn_factor);             //    dispatch (normal or NEOX pairs, this
                kernels::rope_qk(r, &s.q, &s.k, inv_freq, n, hp.n_head, hp.n_head_kv, hp.head_dim, pos, style, mscale, hp.attn_temp)?; // layer's base, × attn
            }                                                                                             //    factor, Q × query temperature: mistral3;
                                                                                                          //    none on smollm3's NoPE layers)
            match n_split {                                                                               // 5. GQA in this layer's window:
                _ if n > 1 && hp.head_dim <= kernels::PREFILL_MAX_HEAD_DIM => kernels::attention_prefill(r, &attn, &s.q, &s.k, &s.v, &cache.k[l], &cache.v[l], &s.attn)?, // tiled prefill,
                1 => kernels::attention(r, &attn, &s.q, &s.k, &s.v, &cache.k[l], &cache.v[l], &s.attn)?,  // a query per workgroup,
                ns => kernels::attention_split(r, &attn, &s.q, &s.k, &s.v, &cache.k[l], &cache.v[l], &s.attn, &s.partials, ns)?, // or split-K decode
            }
            cache.store(r, l, &s.k, &s.v, n)?;                                                            // 6. rolling-buffer write
            match &ly.post_norm[0] {                                                                      // 7. output projection
                None if decode => kernels::matvec_fused(r, &ly.o, 0..d, Fuse::add(), &s.attn, &s.resid, 0)?, //  + residual, fused in decode
                post => {
                    kernels::matmul(r, &ly.o, &s.attn, qd, &s.branch, d, 0, n)?;
                    residual(r, post, &s.branch, &s.resid, d, n, eps)?;                                   //  (+ post-attention RMSNorm: gemma3) + residual
                }
            }
            let ffn_in = Fuse::norm(&ly.ffn_norm, eps);                                                   // 8. pre-FFN RMSNorm
            let dense_decode = decode && matches!(ly.ffn, GpuFfn::Dense { .. });                          //    (dense decode: fused into gate/up)
            if !dense_decode {
                kernels::rms_norm(r, &s.resid, &ly.ffn_norm, &s.normed, d, n, eps)?;
            }
            match &ly.ffn {
                GpuFfn::Dense { gate_up, down } => {
                    let silu = hp.family.act == crate::format::family::Activation::Silu;
                    match gate_up {                                                                       // 9. SwiGLU or GeGLU
                        Projections::Stacked(_, m) if silu && decode && m.parts.len() == 1 => kernels::matvec_swiglu_fused(r, m, ffn_in, &s.resid, &s.gate)?,
                        gu => {
                            if decode {
                                gu.matvec_each(r, ffn_in, &s.resid, [&s.gate, &s.up])?;
                            } else {
                                gu.matmul_each(r, &s.normed, d, [&s.gate, &s.up], n)?;
                            }
                            if silu {
                                kernels::swiglu(r, &s.gate, &s.up, n * ff)?;
                            } else {
                                kernels::geglu(r, &s.gate, &s.up, n * ff)?;
                            }
                        }
                    }
                    match &ly.post_norm[1] {                                                              // 10. down projection
                        None if decode => kernels::matvec_fused(r, down, 0..d, Fuse::add(), &s.gate, &s.resid, 0)?, // + residual, fused in decode
                        post => {
                            kernels::matmul(r, down, &s.gate, ff, &s.branch, d, 0, n)?;
                            residual(r, post, &s.branch, &s.resid, d, n, eps)?;                           //  (+ post-FFN RMSNorm: gemma3) + residual
                        }
                    }
                }
                GpuFfn::Moe { router, gate, up, down } => {
                    let m = s.moe.as_ref().expect("MoE scratch");
                    let k = hp.n_expert_used;
                    kernels::matmul(r, router, &s.normed, d, &m.logits, hp.n_expert, 0, n)?;              // 9. or router,
                    kernels::moe_route(r, &m.logits, &m.ids, &m.wts, n, hp.n_expert, k)?;                 // top-k on the GPU,
                    chosen_experts(r, [gate, up, down], m, &s.normed, n, hp.n_expert, k, hp.n_ff_exp)?;   // chosen experts only,
                    kernels::moe_combine(r, &m.wts, &m.down, &s.branch, n, k, d)?;                        // weighted sum
                    residual(r, &ly.post_norm[1], &s.branch, &s.resid, d, n, eps)?;                       // 10. residual
                }
            }
        }
        let x_out = if rows == 1 && n > 1 {
            r.copy(&s.resid, (n - 1) * d, &s.last, 0, d)?;
            &s.last
        } else {
            &s.resid
        };
        let head = self.output.as_ref().unwrap_or(&self.embd);
        if rows == 1 {                                                                                    // 11. final RMSNorm, fused into
            kernels::matvec_fused(r, head, 0..hp.n_vocab, Fuse::norm(&self.output_norm, eps), x_out, &s.logits, 0)?; // 12. the vocabulary head
        } else {
            kernels::rms_norm(r, x_out, &self.output_norm, &s.normed, d, rows, eps)?;
            kernels::matmul(r, head, &s.normed, d, &s.logits, hp.n_vocab, 0, rows)?;
        }
        if let Some(pick) = pick {
            match pick {                                                                                  // 13. the token on the GPU
                DeviceSampling::Greedy => super::sample::greedy(r, &s.logits, rows - 1, hp.n_vocab, &s.token)?,
                DeviceSampling::Sample(sp, step) => super::sample::sample(r, &s.logits, rows - 1, hp.n_vocab, &sp, step, &s.token)?,
            }
            r.encoder().copy_buffer_to_buffer(&s.token.buffer, 0, &s.readback, 0, 4);
        }
        // One command buffer, one submit for the whole step.
        rec.submit()?;
        cache.pos += n;
        Ok(rows)
    }

    fn alloc(&self, n: usize, rows: usize) -> Scratch {
        let hp = &self.hp;
        let c = &self.ctx;
        let (d, qd, kvd, ff) = (hp.n_embd, hp.q_dim(), hp.kv_dim(), hp.n_ff);
        let k = hp.n_expert_used;
        let moe = hp.is_moe().then(|| MoeScratch {
            logits: buf(c, "router logits", n * hp.n_expert),
            ids: buf(c, "expert ids", n * k),
            wts: buf(c, "expert weights", n * k),
            offsets: buf(c, "expert offsets", hp.n_expert + 1),
            entries: buf(c, "expert entries", n * k),
            gate: buf(c, "expert gate", n * k * hp.n_ff_exp),
            up: buf(c, "expert up", n * k * hp.n_ff_exp),
            down: buf(c, "expert down", n * k * d),
        });
        Scratch {
            n,
            rows,
            tok: buf(c, "tokens", n),
            resid: buf(c, "residual", n * d),
            normed: buf(c, "normed", n * d),
            q: buf(c, "q", n * qd),
            k: buf(c, "k", n * kvd),
            v: buf(c, "v", n * kvd),
            attn: buf(c, "attention", n * qd),
            branch: buf(c, "branch", n * d),
            gate: buf(c, "gate", n * ff),
            up: buf(c, "up", n * ff),
            last: buf(c, "last row", d),
            partials: buf(c, "attention partials", if n == 1 { kernels::attention_partials(hp.n_head, hp.head_dim) } else { 1 }),
            logits: buf(c, "logits", rows * hp.n_vocab),
            token: buf(c, "token", 1),
            readback: c.device.create_buffer(&wgpu::BufferDescriptor { label: Some("token readback"), size: 4, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false }),
            moe,
        }
    }

    /// Bytes of weights one decode step reads: every matrix once, except that a MoE
    /// layer reads only k of its experts (the router picks them).
    pub fn weight_bytes_per_token(&self) -> u64 {
        let hp = &self.hp;
        let mut b = 0u64;
        for l in &self.layers {
            b += l.qkv.bytes() + l.o.bytes() + (2 * hp.n_embd * 4) as u64;
            b += match &l.ffn {
                GpuFfn::Dense { gate_up, down } => gate_up.bytes() + down.bytes(),
                GpuFfn::Moe { router, gate, up, down } => router.bytes() + (gate.expert_bytes() + up.expert_bytes() + down.expert_bytes()) as u64 * hp.n_expert_used as u64,
            };
        }
        let head = self.output.as_ref().unwrap_or(&self.embd);
        b + head.bytes() + self.embd.row_bytes() as u64
    }
}

/// A block's output `branch` into the residual stream: `resid += branch`, or with the
/// layer's post-norm (gemma3) `resid += rms_norm(branch) · g` in one dispatch.
fn residual(r: &mut Recorder, post: &Option<Buf>, branch: &Buf, resid: &Buf, d: usize, n: usize, eps: f32) -> Result<(), GpuError> {
    match post {
        Some(g) => kernels::rms_norm_add(r, branch, g, resid, d, n, eps),
        None => kernels::add(r, resid, branch, n * d),
    }
}

/// SwiGLU of the chosen experts for every (token, slot) of `h` into `m.down`: decode
/// by (token, slot); prefill by expert, the rows grouped on the GPU first so each
/// expert's weights are read once per tile of its tokens.
#[allow(clippy::too_many_arguments)]
fn chosen_experts(r: &mut Recorder, [gate, up, down]: [&GpuMatrix; 3], m: &MoeScratch, h: &Buf, n: usize, n_expert: usize, k: usize, ff: usize) -> Result<(), GpuError> {
    if n == 1 {
        kernels::matmul_id(r, gate, &m.ids, k, h, false, &m.gate, n)?;
        kernels::matmul_id(r, up, &m.ids, k, h, false, &m.up, n)?;
        kernels::swiglu(r, &m.gate, &m.up, k * ff)?;
        return kernels::matmul_id(r, down, &m.ids, k, &m.gate, true, &m.down, n);
    }
    kernels::moe_group(r, &m.ids, &m.offsets, &m.entries, n, n_expert, k)?;
    kernels::matmul_id_grouped(r, gate, &m.offsets, &m.entries, k, h, false, &m.gate, n)?;
    kernels::matmul_id_grouped(r, up, &m.offsets, &m.entries, k, h, false, &m.up, n)?;
    kernels::swiglu(r, &m.gate, &m.up, n * k * ff)?;
    kernels::matmul_id_grouped(r, down, &m.offsets, &m.entries, k, &m.gate, true, &m.down, n)
}

async fn fbuf(ctx: &GpuContext, what: &str, v: &[f32]) -> Result<Buf, GpuError> {
    Ok(Buf { buffer: upload_f32(ctx, what, v).await?, len: v.len() })
}

/// Every matrix the model will upload, for the size check before any allocation.
fn plan(spec: &ModelSpec) -> Vec<MatrixSource<'_>> {
    let mut v = vec![MatrixSource::plain(&spec.token_embd)];
    v.extend(spec.output.as_ref().map(MatrixSource::plain));
    for l in &spec.layers {
        v.extend(l.qkv.slices().map(MatrixSource::slice));
        v.push(MatrixSource::plain(&l.o));
        match &l.ffn {
            FfnSpec::Dense { gate_up, down } => {
                v.extend(gate_up.slices().map(MatrixSource::slice));
                v.push(MatrixSource::plain(down));
            }
            FfnSpec::Moe { router, experts } => {
                v.push(MatrixSource::plain(router));
                v.extend([GATE, UP, DOWN].map(|p| experts_source(experts, p)));
            }
        }
    }
    v
}
