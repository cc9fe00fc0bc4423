//! The model families Precis runs, and what each changes in the one forward pass —
//! as data: which rotary pairing it uses and which optional tensors it must have. The
//! CPU `Model::forward` and the GPU `GpuModel::run` read these flags (and the tensors
//! `model::spec` found); neither has a per-family branch of its own. Here, not in
//! `model/`, because `format::hparams` names the family while reading the metadata.
//!
//! The values follow llama.cpp's `llama_model_rope_type` (src/llama-model.cpp: `LLM_ARCH_LLAMA`
//! is `LLAMA_ROPE_TYPE_NORM`, `LLM_ARCH_QWEN2` is `LLAMA_ROPE_TYPE_NEOX`) and its tensor
//! lists per architecture (`LLM_ARCH_QWEN2` creates `attn_q.bias`, `attn_k.bias` and
//! `attn_v.bias` as required tensors; `LLM_ARCH_QWEN3`, also NEOX, has no biases but
//! requires `attn_q_norm` and `attn_k_norm`, an RMSNorm over each head of Q and K
//! before the rotation).
//!
//! `gemma3` follows llama.cpp's `llm_build_gemma3` (src/models/gemma3.cpp) and its
//! hyperparameter loading for `LLM_ARCH_GEMMA3` (src/llama-model.cpp,
//! `llama_load_hparams_gemma3`): the token embeddings are multiplied by sqrt(n_embd),
//! every layer has RMSNorms after attention (`post_attention_norm`) and after the FFN
//! (`post_ffw_norm`) as well as before them, the FFN is GeGLU (`LLM_FFN_GELU`, tanh
//! GELU of the gate times up), Q and K have per-head norms, rope is NEOX, and the layers
//! attend locally with the sliding window except every 6th (`set_swa_pattern(6)`: layer
//! l is global when l % 6 == 5), whose rope base is `rope.freq_base`; local layers rotate
//! with base 10000 (`rope_freq_base_train_swa`). The GGUF converter already adds 1 to
//! Gemma's norm weights (Hugging Face's `Gemma3RMSNorm` multiplies by 1 + w), so the
//! stored weights are used as every other family's.
//!
//! `phi3` (Phi-3, Phi-3.5, Phi-4-mini) follows llama.cpp's `llama_model_phi3`
//! (src/models/phi3.cpp: `load_arch_hparams`, `load_arch_tensors` and its graph): NEOX
//! rope (`llama_model_rope_type` lists `LLM_ARCH_PHI3` with the NEOX archs), Q/K/V as one
//! fused `attn_qkv` where the file has it (`create_tensor_qkv`: Q's rows, then K's, then
//! V's), the FFN's gate and up fused in `ffn_up` ([n_embd, 2 n_ff], no `ffn_gate`: the
//! graph's `build_ffn(.., LLM_FFN_SWIGLU, ..)` on the one product, whose first half is
//! the gate), and no sliding window: the loader reads `attention.sliding_window` and then
//! turns it off ("Phi SWA is currently disabled"). Its LongRoPE factors and attention
//! factor are rope data (`format::hparams`, `model::spec`), not a family step.
//!
//! `mistral3` (Ministral 3) is built by llama.cpp's `llm_build_mistral3`
//! (src/models/mistral3.cpp): the llama graph with NORM rope (`llama_model_rope_type`
//! lists `LLM_ARCH_MISTRAL3` with the NORM archs), YaRN rope scaling read as rope data
//! (`format::hparams::RopeScaling`), and Llama 4's query temperature: Q times
//! 1 + beta·ln(1 + floor(pos / n)) after the rotation, beta from
//! `attention.temperature_scale` and n the YaRN original context (its hyperparameter
//! loading sets `n_attn_temp_floor_scale = n_ctx_orig_yarn`; `f_attn_temp_offset` 0, as
//! Hugging Face's `Ministral3` `_get_llama_4_attn_scale`).
//!
//! `smollm3` follows `llm_build_smollm3` (src/models/smollm3.cpp): the llama graph with
//! no rotary step on every 4th layer (`use_rope = (il + 1) % n_no_rope_layer_step != 0`,
//! the step fixed at 4 by its hyperparameter loading, not read from the file).
//!
//! `qwen3moe` (Qwen3-30B-A3B, Qwen3-235B-A22B) follows llama.cpp's `llama_model_qwen3moe`
//! (src/models/qwen3moe.cpp): qwen3's attention (NEOX rope, per-head Q/K RMSNorms, no
//! biases) and in every layer a mixture of experts in merged `ffn_{gate,up,down}_exps`
//! tensors, `expert_feed_forward_length` wide (optional; else n_ff / expert_used_count),
//! with no shared expert. Its `build_moe_ffn` call asks for softmax gating with `norm_w`
//! true and no weight scale (`expert_weights_scale` is never read for it): the softmax over
//! all experts, the top k kept and renormalised to sum 1 — the softmax over the k chosen
//! logits, which is Mixtral's routing (llama.cpp's llama graph passes the same), so the
//! existing MoE path serves it unchanged. Hugging Face's `norm_topk_prob` is not in the GGUF
//! (`Qwen3MoeModel` in convert_hf_to_gguf.py writes no such key) and llama.cpp assumes true,
//! as every released Qwen3 MoE config sets it.

/// How the rotated dimensions of a head are paired (llama.cpp `ggml_rope` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// `GGML_ROPE_TYPE_NORMAL`: adjacent pairs (2i, 2i+1). GGUF converters permute the
    /// Q/K rows of Llama checkpoints so this reproduces Hugging Face's half-split.
    Normal,
    /// `GGML_ROPE_TYPE_NEOX`: the halves pair up, (i, i + n_rot/2), as Hugging Face's
    /// `rotate_half`; the converter leaves Q/K as trained.
    Neox,
}

impl RopeStyle {
    /// Element indices (within a head) of rotated pair `i` of `n_rot / 2`.
    pub fn pair(self, i: usize, n_rot: usize) -> (usize, usize) {
        match self {
            RopeStyle::Normal => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + n_rot / 2),
        }
    }
}

/// One supported `general.architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The `general.architecture` value, also the prefix of its hyperparameter keys.
    pub arch: &'static str,
    /// For messages and `precis info`.
    pub name: &'static str,
    pub rope: RopeStyle,
    /// `blk.N.attn_{q,k,v}.bias` must be present (added after the projections). Other
    /// families take them where a file has them, as llama.cpp's llama loader does.
    pub qkv_bias: bool,
    /// `blk.N.attn_{q,k}_norm.weight` ([head_dim]) must be present: each head of Q and K
    /// is RMS-normalized with them before the rotary step.
    pub qk_norm: bool,
    /// The token embeddings are multiplied by sqrt(n_embd) before the first layer (gemma3).
    pub embd_scale: bool,
    /// `blk.N.post_attention_norm.weight` and `blk.N.post_ffw_norm.weight` ([n_embd]) must be
    /// present: the attention output and the FFN output are RMS-normalized with them before
    /// each is added to the residual (gemma3).
    pub post_norms: bool,
    /// The FFN's gate activation.
    pub act: Activation,
    /// Interleaved local/global attention: with `Some(n)`, layer l is global (full
    /// context, `rope.freq_base`) when `l % n == n - 1`, and the others are local (the
    /// sliding window, `LOCAL_ROPE_BASE` unless `rope.freq_base_swa` says otherwise).
    /// `None`: every layer is alike (windowed when the model has a window).
    pub global_every: Option<usize>,
    /// The FFN's gate and up projections are one tensor, `blk.N.ffn_up.weight` of
    /// [n_embd, 2 n_ff]: the gate's n_ff rows, then up's (phi3). No `ffn_gate`.
    pub gate_up_fused: bool,
    /// `attention.sliding_window` is read (the --window override applies either way).
    /// phi3's converter writes one that llama.cpp ignores.
    pub reads_window: bool,
    /// With `Some(n)`, layer l skips the rotary step when `(l + 1) % n == 0` (smollm3: 4,
    /// "NoPE" layers). `None`: every layer rotates.
    pub no_rope_every: Option<usize>,
    /// `attention.temperature_scale` is read: where it is non-zero, Q is scaled by Llama 4's
    /// position-dependent temperature after the rotation (mistral3).
    pub attn_temperature: bool,
    /// Every layer's FFN is a mixture of experts (qwen3moe): `expert_count` is required
    /// (llama.cpp refuses 0), and without `expert_feed_forward_length` an expert is
    /// feed_forward_length / expert_used_count wide, as llama.cpp's qwen3moe loader sizes it.
    pub moe: bool,
}

/// The gated FFN's activation of the gate projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: `silu(gate) * up`.
    Silu,
    /// GeGLU with GELU's tanh approximation, as ggml's `ggml_gelu`: `gelu(gate) * up`.
    GeluTanh,
}

/// The rope base of gemma3's local layers (llama.cpp: `rope_freq_base_train_swa = 10000`
/// for `LLM_ARCH_GEMMA3`).
pub const LOCAL_ROPE_BASE: f32 = 10_000.0;

/// The llama lineage's defaults: no family step beyond the plain pre-norm transformer.
const PLAIN: Family = Family {
    arch: "",
    name: "",
    rope: RopeStyle::Normal,
    qkv_bias: false,
    qk_norm: false,
    embd_scale: false,
    post_norms: false,
    act: Activation::Silu,
    global_every: None,
    gate_up_fused: false,
    reads_window: true,
    no_rope_every: None,
    attn_temperature: false,
    moe: false,
};

pub const FAMILIES: &[Family] = &[
    Family { arch: "llama", name: "Llama (Llama 2/3, Mixtral, SmolLM)", ..PLAIN },
    Family { arch: "mistral", name: "Mistral", ..PLAIN },
    Family { arch: "qwen2", name: "Qwen2 / Qwen2.5", rope: RopeStyle::Neox, qkv_bias: true, ..PLAIN },
    Family { arch: "qwen3", name: "Qwen3 (dense)", rope: RopeStyle::Neox, qk_norm: true, ..PLAIN },
    Family { arch: "qwen3moe", name: "Qwen3 MoE", rope: RopeStyle::Neox, qk_norm: true, moe: true, ..PLAIN },
    Family {
        arch: "gemma3",
        name: "Gemma 3",
        rope: RopeStyle::Neox,
        qk_norm: true,
        embd_scale: true,
        post_norms: true,
        act: Activation::GeluTanh,
        global_every: Some(6),
        ..PLAIN
    },
    Family { arch: "phi3", name: "Phi-3 (Phi-3/3.5, Phi-4-mini)", rope: RopeStyle::Neox, gate_up_fused: true, reads_window: false, ..PLAIN },
    Family { arch: "mistral3", name: "Ministral 3", attn_temperature: true, ..PLAIN },
    Family { arch: "smollm3", name: "SmolLM3", no_rope_every: Some(4), ..PLAIN },
];

/// The family of `arch`, if Precis runs it.
pub fn family(arch: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.arch == arch)
}

/// The supported architectures, for messages: "`llama`, `mistral`, `qwen2`".
pub fn supported() -> String {
    FAMILIES.iter().map(|f| format!("`{}`", f.arch)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neox_pairs_the_halves_and_normal_the_neighbours() {
        assert_eq!(RopeStyle::Normal.pair(3, 64), (6, 7));
        assert_eq!(RopeStyle::Neox.pair(3, 64), (3, 35));
        assert_eq!(RopeStyle::Neox.pair(31, 64), (31, 63));
    }

    #[test]
    fn qwen2_is_neox_with_biases() {
        let f = family("qwen2").expect("qwen2 is supported");
        assert_eq!((f.rope, f.qkv_bias), (RopeStyle::Neox, true));
        assert_eq!(family("llama").map(|f| f.rope), Some(RopeStyle::Normal));
        assert!(family("gemma2").is_none());
        let q3 = family("qwen3").expect("qwen3 is supported");
        assert_eq!((q3.rope, q3.qkv_bias, q3.qk_norm), (RopeStyle::Neox, false, true));
        assert!(supported().contains("`qwen2`"));
    }

    #[test]
    fn gemma3_has_every_gemma_step() {
        let g = family("gemma3").expect("gemma3 is supported");
        assert_eq!((g.rope, g.qk_norm, g.embd_scale, g.post_norms, g.act, g.global_every), (RopeStyle::Neox, true, true, true, Activation::GeluTanh, Some(6)));
        assert!(FAMILIES.iter().filter(|f| f.arch != "gemma3").all(|f| !f.embd_scale && !f.post_norms && f.act == Activation::Silu && f.global_every.is_none()));
    }

    #[test]
    fn qwen3moe_is_qwen3_attention_with_experts() {
        let m = family("qwen3moe").expect("qwen3moe is supported");
        let q3 = family("qwen3").expect("qwen3 is supported");
        assert_eq!((m.rope, m.qk_norm, m.qkv_bias, m.act, m.moe), (q3.rope, q3.qk_norm, q3.qkv_bias, q3.act, true));
        assert!(FAMILIES.iter().filter(|f| f.arch != "qwen3moe").all(|f| !f.moe));
    }

    #[test]
    fn phi3_is_neox_with_fused_gate_up_and_no_window() {
        let p = family("phi3").expect("phi3 is supported");
        assert_eq!((p.rope, p.gate_up_fused, p.reads_window, p.qkv_bias, p.qk_norm), (RopeStyle::Neox, true, false, false, false));
        assert!(FAMILIES.iter().filter(|f| f.arch != "phi3").all(|f| !f.gate_up_fused && f.reads_window));
    }

    #[test]
    fn mistral3_reads_the_temperature_and_smollm3_skips_rope_every_4th_layer() {
        let m = family("mistral3").expect("mistral3 is supported");
        assert_eq!((m.rope, m.attn_temperature, m.no_rope_every, m.qkv_bias), (RopeStyle::Normal, true, None, false));
        let s = family("smollm3").expect("smollm3 is supported");
        assert_eq!((s.rope, s.attn_temperature, s.no_rope_every), (RopeStyle::Normal, false, Some(4)));
        assert!(FAMILIES.iter().filter(|f| !["mistral3", "smollm3"].contains(&f.arch)).all(|f| !f.attn_temperature && f.no_rope_every.is_none()));
    }
}
