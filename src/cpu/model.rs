//! The transformer on the CPU for every family of `format::family` (Llama, Mistral,
//! Mixtral, SmolLM, Qwen2, Qwen3, Gemma 3): their differences are the optional steps
//! below, taken where the model has the tensors or the flag.
//!
//! The steps of [`Model::forward`] are numbered as `gpu::model::GpuModel::run`'s. A
//! change to one step comes with the same-numbered change in the other pass and a case
//! in tests/gpu_model.rs that compares them; the rules both obey (input checks,
//! chunking, cache shape, rope frequencies, the tensors) live once in `model/`.

use crate::cpu::attention::{attention, AttnShape};
use crate::cpu::cache::KvCache;
use crate::cpu::ffn::GatedFfn;
use crate::format::gguf::TensorInfo;
use crate::format::hparams::Hparams;
use crate::cpu::kernels::KernelError;
use crate::cpu::linear::{Linear, Projections};
use crate::cpu::moe::Moe;
use crate::cpu::vector::{add_assign, add_rows, rms_norm, scale};
use crate::format::quant::{dequantize_vec, GgmlType};
use crate::cpu::rope::Rope;
use crate::format::source::{read_part, read_tensor, ByteSource};
use crate::model::cache::CacheShape;
use crate::model::input::{check_input, prefill_chunk};
use crate::model::spec::{FfnSpec, ModelSpec, Slice};
use crate::model::{LoadError, Logits, ModelError};

impl From<crate::cpu::kernels::KernelError> for ModelError {
    fn from(e: crate::cpu::kernels::KernelError) -> Self {
        ModelError::Compute(e.to_string())
    }
}

pub enum Ffn {
    Dense(GatedFfn),
    Moe(Moe),
}

pub struct Layer {
    pub attn_norm: Vec<f32>,
    /// Q, K, V in that order.
    pub qkv: Projections,
    /// Their biases, where the family has them (qwen2).
    pub qkv_bias: [Option<Vec<f32>>; 3],
    /// Per-head RMSNorm weights of Q and K, where the family has them (qwen3).
    pub qk_norm: [Option<Vec<f32>>; 2],
    pub o: Linear,
    pub ffn_norm: Vec<f32>,
    pub ffn: Ffn,
    /// RMSNorm weights of the attention output and the FFN output before their residual
    /// adds, where the family has them (gemma3).
    pub post_norm: [Option<Vec<f32>>; 2],
}

/// The token table stays quantized; rows are dequantized on lookup.
pub struct Embedding {
    pub info: TensorInfo,
    pub bytes: Vec<u8>,
}

impl Embedding {
    pub fn rows(&self, ids: &[u32]) -> Vec<f32> {
        let d = self.info.dims[0] as usize;
        let rb = self.info.ty.row_bytes(d);
        let mut out = vec![0f32; ids.len() * d];
        for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
            crate::format::quant::dequantize(self.info.ty, &self.bytes[id as usize * rb..][..rb], o);
        }
        out
    }
}

/// How matrices are held on the CPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Weights {
    /// As the file stores them (the product).
    Quantized,
    /// Expanded to f32 (exact matmuls, 4-8x the memory; for tests).
    Dequantized,
}

pub struct Model {
    pub hp: Hparams,
    pub embd: Embedding,
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f32>,
    pub output: Linear,
    /// The rotation of every layer, or of the global layers where layers alternate.
    pub rope: Rope,
    /// The local layers' rotation where layers alternate (gemma3: another base).
    pub rope_local: Option<Rope>,
}

impl Model {
    /// Runs `tokens` (positions `cache.pos..`) through the model and stores their K/V.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: Logits) -> Result<Vec<f32>, ModelError> {
        self.forward_until(tokens, cache, which, &mut || true)
    }

    /// As [`Model::forward`], asking `go_on` before every layer after the first: a
    /// 512-token chunk of a 30-layer model takes seconds on one wasm thread, and Stop
    /// must act within a second. `false` ends it with [`ModelError::Stopped`] and a
    /// half-written cache (a rolling buffer may have lost slots), which the caller drops.
    pub fn forward_until(&self, tokens: &[u32], cache: &mut KvCache, which: Logits, go_on: &mut dyn FnMut() -> bool) -> Result<Vec<f32>, ModelError> {
        check_input(&self.hp, tokens, cache)?;
        let hp = &self.hp;
        let mut x = self.embd.rows(tokens); //                        1. token embeddings
        if hp.family.embd_scale {
            scale(&mut x, (hp.n_embd as f32).sqrt()); //                 × sqrt(n_embd) (gemma3)
        }
        for (l, layer) in self.layers.iter().enumerate() {
            if l > 0 && !go_on() {
                return Err(ModelError::Stopped); //                     the caller's Stop
            }
            let h = rms_norm(&x, &layer.attn_norm, hp.rms_eps); //    2. pre-attention RMSNorm
            let [mut q, mut k, mut v]: [Vec<f32>; 3] = layer.qkv.forward(&h)?.try_into().expect("three projections"); // 3. Q/K/V
            for (y, b) in [&mut q, &mut k, &mut v].into_iter().zip(&layer.qkv_bias) {
                if let Some(b) = b {
                    add_rows(y, b); //                                    + biases (qwen2)
                }
            }
            for (y, g) in [&mut q, &mut k].into_iter().zip(&layer.qk_norm) {
                if let Some(g) = g {
                    *y = rms_norm(y, g, hp.rms_eps); //                   + RMSNorm per head (qwen3, gemma3)
                }
            }
            if hp.layer_rotates(l) {
                let rope = self.rope_of(l); //                        4. rotary positions (normal or NEOX pairs, this
                rope.apply_tempered(&mut q, hp.n_head, cache.pos, hp.attn_temp); // layer's base; none on smollm3's NoPE
                rope.apply(&mut k, hp.n_head_kv, cache.pos); //          layers), × query temperature (mistral3)
            }
            let shape = AttnShape { n_head: hp.n_head, n_head_kv: hp.n_head_kv, head_dim: hp.head_dim, window: hp.layer_window(l), scale: hp.attn_scale };
            let a = attention(&shape, &q, &k, &v, cache, l); //       5. GQA over cache + chunk, this layer's window
            cache.store(l, &k, &v); //                                6. rolling-buffer write (slot = pos mod this layer's slots)
            let mut o = layer.o.forward(&a)?; //                      7. output projection
            if let Some(g) = &layer.post_norm[0] {
                o = rms_norm(&o, g, hp.rms_eps); //                      + post-attention RMSNorm (gemma3)
            }
            add_assign(&mut x, &o); //                                   + residual
            let h = rms_norm(&x, &layer.ffn_norm, hp.rms_eps); //     8. pre-FFN RMSNorm
            let mut f = match &layer.ffn {
                Ffn::Dense(mlp) => mlp.forward(&h)?, //               9. SwiGLU or GeGLU (`Family::act`), or
                Ffn::Moe(moe) => moe.forward(&h)?, //                    top-k experts
            };
            if let Some(g) = &layer.post_norm[1] {
                f = rms_norm(&f, g, hp.rms_eps); //                      + post-FFN RMSNorm (gemma3)
            }
            add_assign(&mut x, &f); //                               10. residual
        }
        cache.advance(tokens.len());
        if which == Logits::Last {
            x.drain(..(tokens.len() - 1) * hp.n_embd);
        }
        let h = rms_norm(&x, &self.output_norm, hp.rms_eps); //      11. final RMSNorm
        Ok(self.output.forward(&h)?) //                              12. vocabulary head
    }

    /// The rotation of layer `l`: the local one for a local layer where layers alternate.
    pub fn rope_of(&self, l: usize) -> &Rope {
        match &self.rope_local {
            Some(local) if !self.hp.is_global(l) => local,
            _ => &self.rope,
        }
    }

    /// Prefill in chunks of at most `chunk` tokens (capped at the sliding window), so
    /// attention scratch stays O(chunk · (W + chunk)). Returns the last token's logits.
    pub fn prefill(&self, tokens: &[u32], cache: &mut KvCache, chunk: usize) -> Result<Vec<f32>, ModelError> {
        let chunk = prefill_chunk(&self.hp, chunk);
        let mut logits = Err(ModelError::Empty);
        for c in tokens.chunks(chunk) {
            logits = self.forward(c, cache, Logits::Last);
            logits.as_ref().map_err(|e| e.clone())?;
        }
        logits
    }

    /// A KV cache sized for this model: W slots for a sliding-window model, else
    /// `n_ctx` slots (grown on demand, so short inputs stay small); where layers
    /// alternate, W slots for the local layers and `n_ctx` for the global ones.
    pub fn new_cache(&self, n_ctx: usize) -> KvCache {
        KvCache::new(CacheShape::for_model(&self.hp, n_ctx))
    }

    /// Loads every tensor of `spec` from `src` and builds the CPU model.
    pub fn load(src: &mut dyn ByteSource, file: &str, spec: &ModelSpec, hp: Hparams) -> Result<Self, LoadError> {
        Self::load_with(src, file, spec, hp, Weights::Quantized)
    }

    /// As [`Model::load`]; `Weights::Dequantized` expands every matrix to f32 so the
    /// matmuls are exact — tests use it to pin the rest of the forward pass tightly.
    pub fn load_with(src: &mut dyn ByteSource, file: &str, spec: &ModelSpec, hp: Hparams, w: Weights) -> Result<Self, LoadError> {
        let mut r = Reader { src, file, w };
        let mut layers = Vec::with_capacity(spec.layers.len());
        for ls in &spec.layers {
            let ffn = match &ls.ffn {
                FfnSpec::Dense { gate_up, down } => {
                    let [g, u] = gate_up.slices();
                    Ffn::Dense(r.gated([g, u, Slice::whole(down)], &hp)?)
                }
                FfnSpec::Moe { router, experts } => {
                    let experts = (0..hp.n_expert).map(|e| r.gated(experts.expert(e), &hp)).collect::<Result<Vec<_>, LoadError>>()?;
                    Ffn::Moe(Moe { router: r.linear(router, hp.n_embd)?, experts, k: hp.n_expert_used })
                }
            };
            // Separate Q/K/V tensors or a fused one: three row ranges, stacked again when
            // their types match (a fused tensor's always do).
            let [q, k, v] = ls.qkv.slices();
            let parts = vec![r.part(q)?, r.part(k)?, r.part(v)?];
            layers.push(Layer {
                attn_norm: r.vector(&ls.attn_norm)?,
                qkv: Projections::new(parts, hp.n_embd).map_err(|e| r.err(ls.qkv.tensor(0), e))?,
                qkv_bias: [r.bias(&ls.qkv_bias[0])?, r.bias(&ls.qkv_bias[1])?, r.bias(&ls.qkv_bias[2])?],
                qk_norm: [r.bias(&ls.qk_norm[0])?, r.bias(&ls.qk_norm[1])?],
                o: r.linear(&ls.o, hp.q_dim())?,
                ffn_norm: r.vector(&ls.ffn_norm)?,
                ffn,
                post_norm: [r.bias(&ls.post_norm[0])?, r.bias(&ls.post_norm[1])?],
            });
        }
        let embd_bytes = read_tensor(r.src, &spec.token_embd, file)?;
        let output = match &spec.output {
            Some(t) => r.linear(t, hp.n_embd)?,
            None => {
                let (ty, b, n_out) = widen(spec.token_embd.ty, embd_bytes.clone(), hp.n_vocab, hp.n_embd, w);
                Linear::from_vec(ty, b, hp.n_embd, n_out).map_err(|e| r.err(&spec.token_embd, e))?
            }
        };
        let factors = r.bias(&spec.rope_freqs)?;
        if let (Some(f), Some(t)) = (&factors, &spec.rope_freqs) {
            crate::model::rope::check_factors(file, &t.name, f)?;
        }
        // Each layer kind's frequencies with its rope scaling (gemma3's local layers unscaled).
        let rope_at = |local| Rope::from_freqs(crate::model::rope::layer_inv_freq(&hp, local, factors.as_deref()), hp.head_dim, hp.n_rot, hp.family.rope).scaled(hp.rope_attn_factor);
        Ok(Model {
            rope: rope_at(false),
            rope_local: hp.global_every.map(|_| rope_at(true)),
            embd: Embedding { info: spec.token_embd.clone(), bytes: embd_bytes },
            output_norm: r.vector(&spec.output_norm)?,
            output,
            layers,
            hp,
        })
    }
}

/// Reads tensors for [`Model::load_with`], naming file and tensor in every error.
struct Reader<'a> {
    src: &'a mut dyn ByteSource,
    file: &'a str,
    w: Weights,
}

impl Reader<'_> {
    fn err(&self, t: &TensorInfo, e: KernelError) -> LoadError {
        LoadError::Tensor { file: self.file.into(), name: t.name.clone(), message: e.to_string() }
    }

    fn vector(&mut self, t: &TensorInfo) -> Result<Vec<f32>, LoadError> {
        let b = read_tensor(self.src, t, self.file)?;
        Ok(dequantize_vec(t.ty, &b, t.n_elements() as usize))
    }

    /// An optional vector (a bias, a per-head norm's weights).
    fn bias(&mut self, t: &Option<TensorInfo>) -> Result<Option<Vec<f32>>, LoadError> {
        t.as_ref().map(|t| self.vector(t)).transpose()
    }

    /// One matrix (a whole tensor, or an expert's slice of a merged one) as (type,
    /// bytes, rows), widened to f32 for `Weights::Dequantized`.
    fn part(&mut self, m: Slice) -> Result<(GgmlType, Vec<u8>, usize), LoadError> {
        let b = read_part(self.src, m.range(), &m.tensor.name, self.file)?;
        Ok(widen(m.tensor.ty, b, m.n_out(), m.n_in(), self.w))
    }

    fn linear(&mut self, t: &TensorInfo, n_in: usize) -> Result<Linear, LoadError> {
        let (ty, b, n_out) = self.part(Slice::whole(t))?;
        Linear::from_vec(ty, b, n_in, n_out).map_err(|e| self.err(t, e))
    }

    fn gated(&mut self, [g, u, d]: [Slice; 3], hp: &Hparams) -> Result<GatedFfn, LoadError> {
        let gate_up = Projections::new(vec![self.part(g)?, self.part(u)?], hp.n_embd).map_err(|er| self.err(g.tensor, er))?;
        let (ty, b, n_out) = self.part(d)?;
        Ok(GatedFfn { gate_up, down: Linear::from_vec(ty, b, d.n_in(), n_out).map_err(|er| self.err(d.tensor, er))?, act: hp.family.act })
    }
}

fn widen(ty: GgmlType, b: Vec<u8>, n_out: usize, n_in: usize, w: Weights) -> (GgmlType, Vec<u8>, usize) {
    match w {
        Weights::Quantized => (ty, b, n_out),
        Weights::Dequantized => (GgmlType::F32, dequantize_vec(ty, &b, n_in * n_out).iter().flat_map(|v| v.to_le_bytes()).collect(), n_out),
    }
}
