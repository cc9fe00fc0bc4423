//! Which tensors a model of the llama lineage needs (the optional ones a family adds
//! are listed here too, see `format::family`) (GGUF names as llama.cpp's
//! `LLM_TENSOR_*`), checked against the metadata before any byte is read, and the
//! walks over them that every loader shares (the CPU model, the GPU model, the
//! reference), so a new optional tensor is listed here once.

use crate::format::gguf::{Gguf, TensorInfo};
use crate::format::hparams::Hparams;
use crate::model::error::LoadError;

/// Mixtral experts come either as one 3-D tensor per projection (current llama.cpp)
/// or as one 2-D tensor per expert (`blk.N.ffn_gate.E.weight`, older conversions).
#[derive(Debug, Clone)]
pub enum Experts {
    Merged { gate: TensorInfo, up: TensorInfo, down: TensorInfo },
    PerExpert(Vec<[TensorInfo; 3]>),
}

/// Matrices that read the same input (Q/K/V; gate/up): a tensor each, or one fused
/// tensor whose rows are theirs back to back (phi3's `attn_qkv`, its `ffn_up` holding
/// gate and up). Either way each is a row range of a tensor ([`Parts::slices`]), so the
/// loaders stack them as they stack separate tensors of one type.
#[derive(Debug, Clone)]
pub enum Parts<const N: usize> {
    Separate([TensorInfo; N]),
    /// `rows[i]` rows of matrix i, in order, from `tensor`.
    Fused { tensor: TensorInfo, rows: [usize; N] },
}

impl<const N: usize> Parts<N> {
    /// Matrix i as a row range of its tensor.
    pub fn slices(&self) -> [Slice<'_>; N] {
        match self {
            Parts::Separate(ts) => ts.each_ref().map(Slice::whole),
            Parts::Fused { tensor, rows } => {
                let mut at = 0;
                (*rows).map(|r| {
                    at += r;
                    Slice { tensor, row0: at - r, rows: r }
                })
            }
        }
    }

    /// The tensor of matrix i (for messages).
    pub fn tensor(&self, i: usize) -> &TensorInfo {
        match self {
            Parts::Separate(ts) => &ts[i],
            Parts::Fused { tensor, .. } => tensor,
        }
    }

    fn tensors(&self) -> Vec<&TensorInfo> {
        match self {
            Parts::Separate(ts) => ts.iter().collect(),
            Parts::Fused { tensor, .. } => vec![tensor],
        }
    }
}

#[derive(Debug, Clone)]
pub enum FfnSpec {
    /// Gate and up (in that order), down.
    Dense { gate_up: Parts<2>, down: TensorInfo },
    Moe { router: TensorInfo, experts: Experts },
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub attn_norm: TensorInfo,
    /// Q, K, V: `blk.N.attn_{q,k,v}.weight`, or the fused `blk.N.attn_qkv.weight`.
    pub qkv: Parts<3>,
    /// `blk.N.attn_{q,k,v}.bias`, added after each projection where present (qwen2
    /// has all three; `Family::qkv_bias` makes them required).
    pub qkv_bias: [Option<TensorInfo>; 3],
    /// `blk.N.attn_{q,k}_norm.weight` ([head_dim]): per-head RMSNorm of Q and K before
    /// the rotary step, where present (`Family::qk_norm` makes them required: qwen3).
    pub qk_norm: [Option<TensorInfo>; 2],
    pub o: TensorInfo,
    pub ffn_norm: TensorInfo,
    pub ffn: FfnSpec,
    /// `blk.N.post_attention_norm.weight` and `blk.N.post_ffw_norm.weight` ([n_embd]):
    /// RMSNorms of the attention and FFN outputs before each residual add, where present
    /// (`Family::post_norms` makes them required: gemma3).
    pub post_norm: [Option<TensorInfo>; 2],
}

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub token_embd: TensorInfo,
    pub output_norm: TensorInfo,
    /// `None`: the head is tied to `token_embd`.
    pub output: Option<TensorInfo>,
    /// Per-pair rope frequency factors ([n_rot / 2]; each pair's frequency divided by its
    /// factor), where present: `rope_freqs.weight` (Llama 3.1-style scaling), else
    /// LongRoPE's (phi3) `rope_factors_long.weight` when `Hparams::long_rope`, or
    /// `rope_factors_short.weight` when not — the one llama.cpp's
    /// `llama_model::get_rope_factors` picks, none if that one is absent.
    pub rope_freqs: Option<TensorInfo>,
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// Finds every tensor and checks its shape against the hyperparameters.
    pub fn resolve(g: &Gguf, hp: &Hparams, file: &str) -> Result<Self, LoadError> {
        let get = |name: String, expected: &[usize]| -> Result<TensorInfo, LoadError> {
            let t = g.tensor(&name).ok_or_else(|| LoadError::Missing { file: file.into(), name: name.clone() })?;
            let expected: Vec<u64> = expected.iter().map(|&d| d as u64).collect();
            if t.dims != expected {
                return Err(LoadError::Shape { file: file.into(), name, offset: t.info_offset, found: t.dims.clone(), expected });
            }
            Ok(t.clone())
        };
        let (d, ff, nv) = (hp.n_embd, hp.n_ff, hp.n_vocab);
        let mut layers = Vec::with_capacity(hp.n_layer);
        for l in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            let attn_norm = get(n("attn_norm"), &[d])?;
            // One fused Q/K/V tensor where the file has it (llama.cpp `create_tensor_qkv`).
            let qkv = if g.tensor(&n("attn_qkv")).is_some() {
                if g.tensor(&format!("blk.{l}.attn_qkv.bias")).is_some() {
                    return Err(LoadError::Tensor { file: file.into(), name: format!("blk.{l}.attn_qkv.bias"), message: "a fused Q/K/V bias is not supported".into() });
                }
                let rows = [hp.q_dim(), hp.kv_dim(), hp.kv_dim()];
                Parts::Fused { tensor: get(n("attn_qkv"), &[d, rows.iter().sum()])?, rows }
            } else {
                Parts::Separate([get(n("attn_q"), &[d, hp.q_dim()])?, get(n("attn_k"), &[d, hp.kv_dim()])?, get(n("attn_v"), &[d, hp.kv_dim()])?])
            };
            let qkv_bias = [("attn_q", hp.q_dim()), ("attn_k", hp.kv_dim()), ("attn_v", hp.kv_dim())].map(|(t, len)| {
                let name = format!("blk.{l}.{t}.bias");
                if hp.family.qkv_bias || g.tensor(&name).is_some() { get(name, &[len]).map(Some) } else { Ok(None) }
            });
            let [bq, bk, bv] = qkv_bias;
            let qkv_bias = [bq?, bk?, bv?];
            let [nq, nk] = ["attn_q_norm", "attn_k_norm"].map(|t| {
                let name = n(t);
                if hp.family.qk_norm || g.tensor(&name).is_some() { get(name, &[hp.head_dim]).map(Some) } else { Ok(None) }
            });
            let qk_norm = [nq?, nk?];
            let o = get(n("attn_output"), &[hp.q_dim(), d])?;
            let ffn_norm = get(n("ffn_norm"), &[d])?;
            let [pa, pf] = ["post_attention_norm", "post_ffw_norm"].map(|t| {
                let name = n(t);
                if hp.family.post_norms || g.tensor(&name).is_some() { get(name, &[d]).map(Some) } else { Ok(None) }
            });
            let post_norm = [pa?, pf?];
            let ffn = if hp.is_moe() {
                // Each expert is `n_ff_exp` wide (qwen3moe's `expert_feed_forward_length`).
                let (ne, ff) = (hp.n_expert, hp.n_ff_exp);
                let experts = if g.tensor(&n("ffn_gate_exps")).is_some() {
                    Experts::Merged {
                        gate: get(n("ffn_gate_exps"), &[d, ff, ne])?,
                        up: get(n("ffn_up_exps"), &[d, ff, ne])?,
                        down: get(n("ffn_down_exps"), &[ff, d, ne])?,
                    }
                } else {
                    Experts::PerExpert(
                        (0..ne)
                            .map(|e| {
                                Ok([
                                    get(n(&format!("ffn_gate.{e}")), &[d, ff])?,
                                    get(n(&format!("ffn_up.{e}")), &[d, ff])?,
                                    get(n(&format!("ffn_down.{e}")), &[ff, d])?,
                                ])
                            })
                            .collect::<Result<_, LoadError>>()?,
                    )
                };
                FfnSpec::Moe { router: get(n("ffn_gate_inp"), &[d, ne])?, experts }
            } else {
                let gate_up = if hp.family.gate_up_fused {
                    Parts::Fused { tensor: get(n("ffn_up"), &[d, 2 * ff])?, rows: [ff, ff] }
                } else {
                    Parts::Separate([get(n("ffn_gate"), &[d, ff])?, get(n("ffn_up"), &[d, ff])?])
                };
                FfnSpec::Dense { gate_up, down: get(n("ffn_down"), &[ff, d])? }
            };
            layers.push(LayerSpec { attn_norm, qkv, qkv_bias, qk_norm, o, ffn_norm, ffn, post_norm });
        }
        Ok(ModelSpec {
            token_embd: get("token_embd.weight".into(), &[d, nv])?,
            output_norm: get("output_norm.weight".into(), &[d])?,
            output: match g.tensor("output.weight") {
                Some(_) => Some(get("output.weight".into(), &[d, nv])?),
                None => None,
            },
            rope_freqs: {
                let longrope = if hp.long_rope() { "rope_factors_long.weight" } else { "rope_factors_short.weight" };
                match ["rope_freqs.weight", longrope].into_iter().find(|t| g.tensor(t).is_some()) {
                    Some(t) => Some(get(t.into(), &[hp.n_rot / 2])?),
                    None => None,
                }
            },
            layers,
        })
    }

    /// Every tensor in file order, so a streaming reader moves forward only.
    pub fn tensors(&self) -> Vec<&TensorInfo> {
        let mut v = vec![&self.token_embd, &self.output_norm];
        v.extend(self.output.as_ref());
        v.extend(self.rope_freqs.as_ref());
        v.extend(self.layers.iter().flat_map(LayerSpec::tensors));
        v.sort_by_key(|t| t.offset);
        v
    }

    /// Refuses a model whose tensors (and `extra` bytes: the CPU's copy of a tied
    /// vocabulary head) would not fit in `available` bytes, where that is known, before
    /// any of them is read.
    pub fn check_fits(&self, file: &str, extra: u64, available: Option<u64>) -> Result<(), LoadError> {
        let total = self.total_bytes() + extra;
        match available {
            Some(available) if total > available => {
                let largest = self.tensors().into_iter().max_by_key(|t| t.n_bytes()).expect("a model has tensors");
                Err(LoadError::TooLarge { file: file.into(), total, largest: largest.name.clone(), largest_bytes: largest.n_bytes(), available })
            }
            _ => Ok(()),
        }
    }

    /// Bytes the CPU holds beyond the file's tensors: a tied head keeps its own copy of
    /// the token table.
    pub fn cpu_extra_bytes(&self) -> u64 {
        if self.output.is_none() { self.token_embd.n_bytes() } else { 0 }
    }

    pub fn total_bytes(&self) -> u64 {
        self.tensors().iter().map(|t| t.n_bytes()).sum()
    }
}

/// The projections of a SwiGLU block, in the order every loader reads them.
pub const GATE: usize = 0;
pub const UP: usize = 1;
pub const DOWN: usize = 2;

/// One matrix inside a tensor: rows `row0 .. row0 + rows` of it, every slower dimension
/// flattened into rows (an expert of a merged `[n_in, n_out, n_expert]` tensor is n_out
/// rows; Q of a fused `attn_qkv` its first q_dim rows; a plain matrix all of them).
/// Quantized blocks never straddle rows, so a row range is a byte range.
#[derive(Debug, Clone, Copy)]
pub struct Slice<'a> {
    pub tensor: &'a TensorInfo,
    pub row0: usize,
    pub rows: usize,
}

impl<'a> Slice<'a> {
    pub fn whole(tensor: &'a TensorInfo) -> Self {
        Slice { tensor, row0: 0, rows: (tensor.n_elements() / tensor.dims[0].max(1)) as usize }
    }
    /// Inputs per row (GGUF `dims[0]`).
    pub fn n_in(&self) -> usize {
        self.tensor.dims[0] as usize
    }
    /// Rows (outputs) of this slice.
    pub fn n_out(&self) -> usize {
        self.rows
    }
    /// The slice's bytes in the file.
    pub fn range(&self) -> std::ops::Range<u64> {
        let rb = self.tensor.ty.row_bytes(self.n_in()) as u64;
        let start = self.tensor.offset + rb * self.row0 as u64;
        start..start + rb * self.rows as u64
    }
}

impl Experts {
    /// Expert `e`'s gate, up and down matrices.
    pub fn expert(&self, e: usize) -> [Slice<'_>; 3] {
        match self {
            Experts::Merged { gate, up, down } => [gate, up, down].map(|t| Slice { tensor: t, row0: e * t.dims[1] as usize, rows: t.dims[1] as usize }),
            Experts::PerExpert(es) => es[e].each_ref().map(Slice::whole),
        }
    }

    /// The tensors holding projection `p` ([`GATE`], [`UP`], [`DOWN`]) of every expert:
    /// one merged tensor, or one per expert in expert order.
    pub fn projection(&self, p: usize) -> Vec<&TensorInfo> {
        match self {
            Experts::Merged { gate, up, down } => vec![[gate, up, down][p]],
            Experts::PerExpert(es) => es.iter().map(|e| &e[p]).collect(),
        }
    }

    fn tensors(&self) -> Vec<&TensorInfo> {
        (0..3).flat_map(|p| self.projection(p)).collect()
    }
}

impl LayerSpec {
    /// Every tensor of the layer: attention's, then the FFN's.
    pub fn tensors(&self) -> Vec<&TensorInfo> {
        let mut v = vec![&self.attn_norm, &self.o, &self.ffn_norm];
        v.extend(self.qkv.tensors());
        v.extend(self.qkv_bias.iter().flatten());
        v.extend(self.qk_norm.iter().flatten());
        v.extend(self.post_norm.iter().flatten());
        match &self.ffn {
            FfnSpec::Dense { gate_up, down } => {
                v.extend(gate_up.tensors());
                v.push(down);
            }
            FfnSpec::Moe { router, experts } => {
                v.push(router);
                v.extend(experts.tensors());
            }
        }
        v
    }
}
