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
}

pub const FAMILIES: &[Family] = &[
    Family { arch: "llama", name: "Llama (Llama 2, Mixtral, SmolLM)", rope: RopeStyle::Normal, qkv_bias: false, qk_norm: false },
    Family { arch: "mistral", name: "Mistral", rope: RopeStyle::Normal, qkv_bias: false, qk_norm: false },
    Family { arch: "qwen2", name: "Qwen2 / Qwen2.5", rope: RopeStyle::Neox, qkv_bias: true, qk_norm: false },
    Family { arch: "qwen3", name: "Qwen3 (dense)", rope: RopeStyle::Neox, qkv_bias: false, qk_norm: true },
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
        assert!(family("gemma3").is_none());
        let q3 = family("qwen3").expect("qwen3 is supported");
        assert_eq!((q3.rope, q3.qkv_bias, q3.qk_norm), (RopeStyle::Neox, false, true));
        assert!(supported().contains("`qwen2`"));
    }
}
