//! Hyperparameters from `<arch>.*` GGUF metadata (llama.cpp's `LLM_KV_*` key names,
//! the same suffixes for every family in `format::family`: `llama.block_count`,
//! `qwen2.block_count`, ...).

use crate::format::gguf::Gguf;
use crate::format::family::{family, supported, Family, LOCAL_ROPE_BASE};
pub use crate::format::rope_scaling::{AttnTemp, RopeScaling};
use crate::format::rope_scaling::ScalingError;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HparamsError {
    #[error("unsupported architecture `{arch}` (general.architecture); Precis runs {supported}")]
    Architecture { arch: String, supported: String },
    #[error("metadata key `{key}` is {found}; expected {expected}")]
    Key { key: String, found: String, expected: &'static str },
    #[error("metadata key `{key}` is {value}, more than any model has (at most {max})")]
    Range { key: String, value: u64, max: u64 },
    #[error("metadata key `{key}` is `{value}`: {why}")]
    Unsupported { key: String, value: String, why: &'static str },
    #[error("inconsistent hyperparameters: {0}")]
    Inconsistent(String),
}

impl From<ScalingError> for HparamsError {
    fn from(e: ScalingError) -> Self {
        match e {
            ScalingError::Key { key, found, expected } => HparamsError::Key { key, found, expected },
            ScalingError::Unsupported { key, value, why } => HparamsError::Unsupported { key, value, why },
        }
    }
}

/// The largest value each size may take. The biggest published models sit well inside
/// these (Llama 3.1 405B: 126 layers, embedding 16384, ffn 53248, 128 heads of 128;
/// Gemma 3: a 262144-token vocabulary; Mixtral and Qwen MoE: up to 128 experts). With
/// them the head and row sizes (q_dim, kv_dim, a row's elements) fit a wasm32 usize; a
/// whole matrix's bytes may not, so those are counted in u64 (`TensorInfo::n_bytes`).
fn limit(key: &str) -> u64 {
    match key {
        "block_count" => 1024,
        "embedding_length" => 1 << 16,
        "feed_forward_length" | "expert_feed_forward_length" => 1 << 18,
        "attention.head_count" | "attention.head_count_kv" => 1024,
        "attention.key_length" | "attention.value_length" | "rope.dimension_count" => 1024,
        "context_length" | "attention.sliding_window" => 1 << 24,
        "vocab_size" => 1 << 20,
        "expert_count" | "expert_used_count" => 256,
        _ => u32::MAX as u64,
    }
}

/// Elements of the query projection's output (heads × head size) at most: twice the
/// largest published model's.
const MAX_Q_DIM: usize = 1 << 15;

#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    pub arch: String,
    /// What the family changes in the forward pass (rope pairing, required biases).
    pub family: Family,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    /// Each expert's FFN width in a MoE model: `expert_feed_forward_length` where the file
    /// has it (qwen3moe: Qwen3-30B-A3B's 768 beside a dense `feed_forward_length` of 6144
    /// that no tensor uses), else llama.cpp's default for the family
    /// (`Family::moe`). Equal to `n_ff` for dense models.
    pub n_ff_exp: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Rotated dimensions per head (`rope.dimension_count`), usually `head_dim`.
    pub n_rot: usize,
    pub rope_base: f32,
    /// The rope base of local (sliding-window) layers in a model whose layers alternate
    /// (`Family::global_every`): `rope.freq_base_swa`, else `LOCAL_ROPE_BASE`. Equal to
    /// `rope_base` for every other model.
    pub rope_base_local: f32,
    pub rms_eps: f32,
    pub n_ctx_train: usize,
    pub n_vocab: usize,
    /// 0 for dense models.
    pub n_expert: usize,
    pub n_expert_used: usize,
    /// Attention window W: a query at position p sees keys p-W+1..=p. `None` = full causal.
    pub sliding_window: Option<usize>,
    /// Every `n`-th layer (`l % n == n - 1`) attends globally and the rest use the window
    /// (gemma3: 6). `None`: every layer attends alike.
    pub global_every: Option<usize>,
    /// Multiplies Q·K before the softmax: 1/sqrt(head_dim), except gemma3 27B's
    /// 1/sqrt(n_embd / n_head) (llama.cpp `llama_load_hparams_gemma3`, `f_attention_scale`,
    /// after gemma_pytorch's `query_pre_attn_scalar`).
    pub attn_scale: f32,
    /// What multiplies the rotation's cos and sin, so the rotated dimensions of Q and K grow
    /// by it: `rope.scaling.attn_factor` (default 1; Phi-3.5/Phi-4-mini's LongRoPE
    /// converters write it) times YaRN's magnitude correction where the file scales rope
    /// by YaRN ([`RopeScaling::yarn_mscale`]). llama.cpp: `llama_context` sets
    /// `yarn_attn_factor` and multiplies it by `hparams.rope_attn_factor`; ggml's rope
    /// scales cos/sin by that `mscale`.
    pub rope_attn_factor: f32,
    /// How the rotation frequencies are scaled (`rope.scaling.type` / `.factor`,
    /// `format::rope_scaling`): linear scaling multiplies positions by 1/factor, YaRN mixes
    /// that with the unscaled frequencies per pair; on every layer but an alternating
    /// model's local ones ([`Hparams::layer_rope_scaling`]).
    pub rope_scaling: RopeScaling,
    /// Llama 4's query temperature (mistral3's `attention.temperature_scale`), where non-zero.
    pub attn_temp: Option<AttnTemp>,
    /// `rope.scaling.original_context_length`, else the training context: the context
    /// LongRoPE's short factors serve (llama.cpp `n_ctx_orig_yarn`).
    pub rope_orig_ctx: usize,
    /// The context this model is run at, for what depends on it at load (which LongRoPE
    /// factors): `Overrides::context`, else [`DEFAULT_CONTEXT`], capped at the training
    /// context as the engine caps a generation's.
    pub n_ctx_run: usize,
}

/// The context a generation runs at unless asked otherwise (capped at the training
/// context): `engine::GenerateOptions`' default, and what picks LongRoPE's factors.
pub const DEFAULT_CONTEXT: usize = 8192;

/// Values the caller may force (CLI flags / API options).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Mistral 7B v0.1 GGUFs lack `llama.attention.sliding_window` but need W = 4096.
    pub sliding_window: Option<usize>,
    /// The context the model will be run at, where the model depends on it: phi3's
    /// LongRoPE uses its long factors when this exceeds `rope.scaling.original_context_length`
    /// (llama.cpp `llama_model::get_rope_factors`, by the context it was created with).
    /// Chosen once at load, so every cache and kept prefix of the model rotates alike.
    /// `None`: [`DEFAULT_CONTEXT`] capped at the training context.
    pub context: Option<usize>,
}

impl Hparams {
    pub fn from_gguf(g: &Gguf, ov: &Overrides) -> Result<Self, HparamsError> {
        let arch = g.get("general.architecture").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let Some(fam) = family(&arch) else {
            return Err(HparamsError::Architecture { arch: if arch.is_empty() { "(missing)".into() } else { arch }, supported: supported() });
        };
        let key = |k: &str| format!("{arch}.{k}");
        // Integers are read as u64 and bounded before they become usize: on wasm32 a
        // usize is 32 bits, and `2^32 + 64 as usize` would silently be 64.
        let int = |k: &str| -> Result<Option<usize>, HparamsError> {
            match g.get(&key(k)) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    None => Err(HparamsError::Key { key: key(k), found: g.describe(&key(k)), expected: "an unsigned integer" }),
                    Some(v) => {
                        let max = limit(k);
                        if v > max {
                            return Err(HparamsError::Range { key: key(k), value: v, max });
                        }
                        Ok(Some(v as usize))
                    }
                },
            }
        };
        let need = |k: &str| -> Result<usize, HparamsError> {
            int(k)?.filter(|&v| v > 0).ok_or_else(|| HparamsError::Key {
                key: key(k),
                found: g.describe(&key(k)),
                expected: "a positive integer",
            })
        };
        let float = |k: &str, default: f32| -> Result<f32, HparamsError> {
            match g.get(&key(k)) {
                None => Ok(default),
                Some(v) => v.as_f64().map(|v| v as f32).filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| {
                    HparamsError::Key { key: key(k), found: g.describe(&key(k)), expected: "a positive number" }
                }),
            }
        };

        let n_embd = need("embedding_length")?;
        let n_head = need("attention.head_count")?;
        let n_head_kv = int("attention.head_count_kv")?.unwrap_or(n_head);
        let head_dim = int("attention.key_length")?.unwrap_or(n_embd / n_head);
        let n_vocab = match int("vocab_size")? {
            Some(v) => v,
            None => {
                let rows = g.tensor("token_embd.weight").map(|t| t.dims.get(1).copied().unwrap_or(0)).unwrap_or(0);
                if rows > limit("vocab_size") {
                    return Err(HparamsError::Range { key: "token_embd.weight rows (the vocabulary)".into(), value: rows, max: limit("vocab_size") });
                }
                rows as usize
            }
        };
        let n_layer = need("block_count")?;
        let rope_base = float("rope.freq_base", 10_000.0)?;
        // phi3's converter writes a window that llama.cpp then turns off (`Family::reads_window`).
        let file_window = if fam.reads_window { int("attention.sliding_window")? } else { None };
        let sliding_window = ov.sliding_window.or(file_window).filter(|&w| w > 0);
        if fam.global_every.is_some() && sliding_window.is_none() {
            // llama.cpp reads the key as required for gemma3 (`llama_load_hparams_gemma3`).
            return Err(HparamsError::Key { key: key("attention.sliding_window"), found: g.describe(&key("attention.sliding_window")), expected: "a positive integer (the local layers' window)" });
        }
        // gemma3 27B (62 layers) scales queries by 1/sqrt(n_embd / n_head), the others by
        // 1/sqrt(head_dim) (llama.cpp `llama_load_hparams_gemma3`, by the layer count as there).
        let scale_dim = if fam.arch == "gemma3" && n_layer == 62 { n_embd / n_head } else { head_dim };
        let n_ctx_train = match int("context_length")? {
            Some(0) => return Err(HparamsError::Key { key: key("context_length"), found: "0".into(), expected: "a positive integer (the training context)" }),
            c => c.unwrap_or(4096),
        };
        // llama.cpp: n_ctx_orig_yarn is the key where the file has it, else n_ctx_train.
        let rope_orig_ctx = match int("rope.scaling.original_context_length")? {
            Some(0) | None => n_ctx_train,
            Some(c) => c,
        };
        let rope_scaling = RopeScaling::from_gguf(g, &arch)?;
        // mistral3's loader reads the temperature and takes its step length from the YaRN
        // original context (llama.cpp `LLM_ARCH_MISTRAL3`: `n_attn_temp_floor_scale =
        // n_ctx_orig_yarn`); 0 or absent: no temperature.
        let attn_temp = if fam.attn_temperature {
            let k = key("attention.temperature_scale");
            match g.get(&k) {
                None => None,
                Some(v) => match v.as_f64().filter(|v| v.is_finite() && *v >= 0.0) {
                    Some(b) if b > 0.0 => Some(AttnTemp { beta: b as f32, len: rope_orig_ctx }),
                    Some(_) => None,
                    None => return Err(HparamsError::Key { found: g.describe(&k), key: k, expected: "a non-negative number" }),
                },
            }
        } else {
            None
        };
        if ov.context == Some(0) {
            return Err(HparamsError::Inconsistent("the context asked for is 0 tokens".into()));
        }
        let n_ff = need("feed_forward_length")?;
        let n_expert_used = int("expert_used_count")?.unwrap_or(0);
        // llama.cpp reads `expert_feed_forward_length` for qwen3moe (`load_arch_hparams`,
        // optional) and otherwise sizes its experts n_ff / expert_used_count; Mixtral's
        // `llama` experts are n_ff wide.
        let n_ff_exp = match int("expert_feed_forward_length")? {
            Some(w) if w > 0 => w,
            _ if fam.moe && n_expert_used > 0 => n_ff / n_expert_used,
            _ => n_ff,
        };
        let hp = Hparams {
            n_layer,
            n_embd,
            n_ff,
            n_ff_exp,
            n_head,
            n_head_kv,
            head_dim,
            n_rot: int("rope.dimension_count")?.unwrap_or(head_dim),
            rope_base,
            rope_base_local: if fam.global_every.is_some() { float("rope.freq_base_swa", LOCAL_ROPE_BASE)? } else { rope_base },
            rms_eps: float("attention.layer_norm_rms_epsilon", 1e-5)?,
            n_ctx_train,
            n_vocab,
            n_expert: int("expert_count")?.unwrap_or(0),
            n_expert_used,
            sliding_window,
            global_every: fam.global_every,
            attn_scale: 1.0 / (scale_dim.max(1) as f32).sqrt(),
            rope_attn_factor: float("rope.scaling.attn_factor", 1.0)? * rope_scaling.yarn_mscale(),
            rope_scaling,
            attn_temp,
            rope_orig_ctx,
            n_ctx_run: ov.context.unwrap_or(DEFAULT_CONTEXT).min(n_ctx_train),
            arch,
            family: *fam,
        };
        hp.check()?;
        Ok(hp)
    }

    fn check(&self) -> Result<(), HparamsError> {
        let bad = |m: String| Err(HparamsError::Inconsistent(m));
        if self.head_dim == 0 {
            return bad("attention.key_length (head dim) is 0".into());
        }
        if self.n_head * self.head_dim > MAX_Q_DIM {
            return bad(format!("{} heads of {} make a query of {}, over {MAX_Q_DIM}", self.n_head, self.head_dim, self.n_head * self.head_dim));
        }
        if self.n_head_kv == 0 || self.n_head % self.n_head_kv != 0 {
            return bad(format!("head_count {} is not a multiple of head_count_kv {}", self.n_head, self.n_head_kv));
        }
        if self.n_rot > self.head_dim || self.n_rot % 2 != 0 {
            return bad(format!("rope.dimension_count {} must be even and <= head dim {}", self.n_rot, self.head_dim));
        }
        if self.attn_temp.is_some() && self.n_rot != self.head_dim {
            // Both passes fold the temperature into the query's rotation, which leaves the
            // dims past n_rot alone; llama.cpp's llm_build_mistral3 asserts n_rot == head dim.
            return bad(format!("{}.attention.temperature_scale needs every head dim rotated; rope.dimension_count is {} of {}", self.arch, self.n_rot, self.head_dim));
        }
        if self.n_vocab == 0 {
            return bad("vocabulary size is 0".into());
        }
        if self.family.moe && self.n_expert == 0 {
            // llama.cpp: "n_expert must be > 0 for QWEN3MOE".
            return bad(format!("{}.expert_count is missing or 0; the {} family is a mixture of experts", self.arch, self.family.name));
        }
        if self.n_ff_exp == 0 {
            return bad(format!("the experts' FFN width is 0 ({}.expert_feed_forward_length, or feed_forward_length {} / expert_used_count {})", self.arch, self.n_ff, self.n_expert_used));
        }
        if self.n_expert > 0 && (self.n_expert_used == 0 || self.n_expert_used > self.n_expert) {
            return bad(format!("expert_used_count {} must be in 1..={}", self.n_expert_used, self.n_expert));
        }
        Ok(())
    }

    pub fn is_moe(&self) -> bool {
        self.n_expert > 0
    }
    /// Query heads per KV head.
    pub fn gqa_group(&self) -> usize {
        self.n_head / self.n_head_kv
    }
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    /// Whether layer `l` attends globally in a model whose layers alternate.
    pub fn is_global(&self, l: usize) -> bool {
        self.global_every.is_some_and(|n| l % n == n - 1)
    }
    /// The window layer `l` attends through (`None`: the whole context).
    pub fn layer_window(&self, l: usize) -> Option<usize> {
        if self.is_global(l) { None } else { self.sliding_window }
    }
    /// The rope base of layer `l`.
    pub fn layer_rope_base(&self, l: usize) -> f32 {
        if self.global_every.is_none() || self.is_global(l) { self.rope_base } else { self.rope_base_local }
    }
    /// Whether layer `l` has the rotary step (smollm3 skips it on every 4th layer).
    pub fn layer_rotates(&self, l: usize) -> bool {
        self.family.no_rope_every.is_none_or(|n| (l + 1) % n != 0)
    }
    /// The rope scaling of an alternating model's local layers (`local`) or of every other
    /// layer: the file's, except that local layers rotate unscaled (llama.cpp
    /// `llama_load_hparams_gemma3`: `rope_freq_scale_train_swa = 1`, used by
    /// `get_rope_freq_scale` for the SWA layers).
    pub fn rope_scaling_of(&self, local: bool) -> RopeScaling {
        if local { RopeScaling::None } else { self.rope_scaling }
    }
    /// The rope scaling layer `l` rotates with ([`Hparams::rope_scaling_of`]).
    pub fn layer_rope_scaling(&self, l: usize) -> RopeScaling {
        self.rope_scaling_of(self.global_every.is_some() && !self.is_global(l))
    }
    /// What layer `l`'s positions are multiplied by (llama.cpp's freq_scale): 1/factor,
    /// 1 unscaled and on an alternating model's local layers.
    pub fn layer_rope_scale(&self, l: usize) -> f32 {
        self.layer_rope_scaling(l).freq_scale()
    }
    /// The positions' multiplier of every layer but an alternating model's local ones.
    pub fn rope_scale(&self) -> f32 {
        self.rope_scaling.freq_scale()
    }
    /// Whether LongRoPE's long factors (`rope_factors_long.weight`) apply rather than the
    /// short ones: the context the model runs at exceeds the one the short factors serve
    /// (llama.cpp `llama_model::get_rope_factors`: `n_ctx_seq > n_ctx_orig_yarn`).
    pub fn long_rope(&self) -> bool {
        self.n_ctx_run > self.rope_orig_ctx
    }
    /// Whether some layers use the window and others the whole context (gemma3): the
    /// cache then holds the context for the global layers and W slots for the local ones.
    pub fn mixed_windows(&self) -> bool {
        self.sliding_window.is_some() && self.global_every.is_some_and(|n| n <= self.n_layer)
    }
}
