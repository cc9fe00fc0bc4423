//! Rope frequency scaling and the query temperature, as `<arch>.rope.scaling.*` and
//! `<arch>.attention.temperature_scale` say (llama.cpp key names, `LLM_KV_ROPE_SCALING_*`
//! in src/llama-arch.cpp), read for every architecture as llama.cpp's
//! `llama_model::load_hparams` (src/llama-model.cpp) and `llama_context`
//! (src/llama-context.cpp) use them: the type defaults to linear; the factor (or the older
//! `{arch}.rope.scale_linear`) becomes `rope_freq_scale_train = 1/factor`, a missing or zero
//! factor meaning 1; the context never scales when the type is none and turns YaRN's
//! extrapolation on only for yarn. With that extrapolation off, ggml's rope (`rope_yarn`)
//! rotates pair i by `freq_scale · pos · base^(-2i/n_rot) / factor_i`: linear scaling is
//! positions × 1/factor. Gemma 3 4B+ carry linear 8, which llama.cpp applies to the global
//! layers only (`llama_load_hparams_gemma3`: `rope_freq_scale_train_swa = 1`;
//! `Hparams::layer_rope_scaling`).
//!
//! [`RopeScaling::from_gguf`] reads the keys (and refuses, by key and value, a form Precis
//! does not run); `format::hparams` (which names this module, so this module does not name
//! it) keeps the result and turns a [`ScalingError`] into its `HparamsError` of the same
//! name; `model::rope::layer_inv_freq` turns it into the frequencies both passes rotate by.

use crate::format::gguf::Gguf;

/// Why a file's rope scaling is refused; `format::hparams` turns it into the
/// `HparamsError` of the same name.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalingError {
    /// The key holds the wrong kind of value.
    Key { key: String, found: String, expected: &'static str },
    /// A well-formed value Precis does not run.
    Unsupported { key: String, value: String, why: &'static str },
}

/// Rope frequency scaling, as llama.cpp reads it (`llama_model::load_hparams`:
/// `rope.scaling.type`, default linear; `rope.scaling.factor` f gives `rope_freq_scale_train`
/// = 1/f, none without it). Every form is a fixed factor per rotated pair, so both passes
/// take it through their frequency table (`model::rope::layer_inv_freq`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Type `none`, or no factor (absent, 0 or 1): the factor is ignored (llama.cpp: "never
    /// scale if scaling type is none").
    None,
    /// `linear` (also a file with a factor and no type): every frequency times 1/factor
    /// (ggml's `theta_interp`), the same as positions × 1/factor.
    Linear { factor: f32 },
    /// YaRN (ggml-cpu ops.cpp `rope_yarn`, with `ext_factor` 1 as `llama_context` sets it for
    /// `LLAMA_ROPE_SCALING_TYPE_YARN`): pair i's frequency is the interpolated one (× 1/factor)
    /// and the original one mixed by a ramp that is 1 below the correction dimension of
    /// `beta_fast` and 0 above that of `beta_slow` (`ggml_rope_yarn_corr_dims`, over
    /// `rope.scaling.original_context_length`). `log_mul` is `rope.scaling.yarn_log_multiplier`
    /// (Hugging Face's `mscale_all_dim`; 0 when absent).
    Yarn { factor: f32, beta_fast: f32, beta_slow: f32, log_mul: f32 },
    /// `longrope` with a factor (Phi-3.5, Phi-4-mini): the per-pair factors are tensors
    /// (`rope_factors_long`/`short`, see `model::spec`); the factor key, where present,
    /// scales positions as for linear, since llama.cpp's freq_scale applies to every type
    /// but none. Without a factor, longrope reads as [`RopeScaling::None`].
    LongRope { factor: f32 },
}

impl RopeScaling {
    /// Reads `{arch}.rope.scaling.type`, `.factor` (or `{arch}.rope.scale_linear`) and, for
    /// YaRN, its `yarn_*` keys; an unknown type, or a YaRN setting llama.cpp's context would
    /// use differently from what Precis computes, is refused naming the key and value.
    pub fn from_gguf(g: &Gguf, arch: &str) -> Result<Self, ScalingError> {
        let key = |k: &str| format!("{arch}.rope.scaling.{k}");
        let num = |k: &str| -> Result<Option<f32>, ScalingError> {
            match g.get(&key(k)) {
                None => Ok(None),
                Some(v) => v.as_f64().map(|v| v as f32).filter(|v| v.is_finite()).map(Some).ok_or_else(|| ScalingError::Key { key: key(k), found: g.describe(&key(k)), expected: "a number" }),
            }
        };
        let type_key = key("type");
        let kind = match g.get(&type_key) {
            None => None,
            Some(v) => Some(v.as_str().map(str::to_string).ok_or_else(|| ScalingError::Key { key: type_key.clone(), found: g.describe(&type_key), expected: "a string (none, linear, yarn or longrope)" })?),
        };
        // llama.cpp: a factor of 0 (or none) means no scaling; so does 1.
        let factor = factor(g, arch)?;
        let scaled = (factor != 1.0).then_some(factor);
        match kind.as_deref() {
            Some("none") => Ok(RopeScaling::None),
            None | Some("linear") => Ok(scaled.map_or(RopeScaling::None, |factor| RopeScaling::Linear { factor })),
            Some("longrope") => Ok(scaled.map_or(RopeScaling::None, |factor| RopeScaling::LongRope { factor })),
            Some("yarn") => {
                // Values other than llama.cpp's defaults that its context would use differently.
                if let Some(e) = num("yarn_ext_factor")?.filter(|&e| e != 1.0) {
                    return Err(ScalingError::Key { key: key("yarn_ext_factor"), found: e.to_string(), expected: "1 (other YaRN extrapolation mixes are not supported)" });
                }
                if g.get(&key("yarn_attn_factor")).is_some() {
                    return Err(ScalingError::Key { key: key("yarn_attn_factor"), found: g.describe(&key("yarn_attn_factor")), expected: "absent (a file-given YaRN attention factor is not supported)" });
                }
                let beta = |k: &str, d: f32| -> Result<f32, ScalingError> {
                    match num(k)? {
                        Some(b) if b <= 0.0 => Err(ScalingError::Key { key: key(k), found: b.to_string(), expected: "a positive number" }),
                        b => Ok(b.unwrap_or(d)),
                    }
                };
                Ok(RopeScaling::Yarn { factor, beta_fast: beta("yarn_beta_fast", 32.0)?, beta_slow: beta("yarn_beta_slow", 1.0)?, log_mul: num("yarn_log_multiplier")?.unwrap_or(0.0) })
            }
            Some(other) => Err(ScalingError::Unsupported { key: type_key, value: other.to_string(), why: "not a rope scaling type llama.cpp knows (none, linear, yarn, longrope)" }),
        }
    }

    /// What multiplies every position (llama.cpp's `freq_scale`): 1/factor, 1 for none.
    /// YaRN's is its interpolated frequencies' factor, which its ramp mixes with 1 per
    /// pair (`model::rope::layer_inv_freq`).
    pub fn freq_scale(self) -> f32 {
        match self {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor } | RopeScaling::LongRope { factor } | RopeScaling::Yarn { factor, .. } => 1.0 / factor,
        }
    }

    /// YaRN's magnitude correction of cos and sin: llama.cpp's `llama_context` takes
    /// get_mscale(f, 1) / get_mscale(f, log_mul) (or get_mscale(f, 1) without a log multiplier),
    /// get_mscale(s, m) = 1 + 0.1·m·ln(s) for s > 1, else 1, and cancels the factor
    /// ggml's rope multiplies in itself, so this is what reaches cos and sin. As Hugging
    /// Face's `_compute_yarn_parameters` attention factor. 1 for every other scaling.
    pub fn yarn_mscale(&self) -> f32 {
        let get = |s: f32, m: f32| if s <= 1.0 { 1.0 } else { 1.0 + 0.1 * m * s.ln() };
        match *self {
            RopeScaling::Yarn { factor, log_mul, .. } if log_mul != 0.0 => get(factor, 1.0) / get(factor, log_mul),
            RopeScaling::Yarn { factor, .. } => get(factor, 1.0),
            _ => 1.0,
        }
    }
}

/// `{arch}.rope.scaling.factor`, else the older `{arch}.rope.scale_linear`; absent or 0: 1.
fn factor(g: &Gguf, arch: &str) -> Result<f32, ScalingError> {
    for k in ["rope.scaling.factor", "rope.scale_linear"] {
        let key = format!("{arch}.{k}");
        if let Some(v) = g.get(&key) {
            return match v.as_f64() {
                Some(f) if f == 0.0 => Ok(1.0),
                // A factor below 1 would compress positions past the training range; llama.cpp
                // accepts any, but no published model has one, so only the nonsensical are refused.
                Some(f) if f.is_finite() && f > 0.0 => Ok(f as f32),
                _ => Err(ScalingError::Key { key: key.clone(), found: g.describe(&key), expected: "a positive number (or 0 for none)" }),
            };
        }
    }
    Ok(1.0)
}

/// Llama 4's query temperature (llama.cpp `llm_graph_input_attn_temp`): the queries at
/// position p are multiplied by 1 + beta·ln(1 + floor(p / len)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnTemp {
    /// `attention.temperature_scale` (Hugging Face's `llama_4_scaling_beta`).
    pub beta: f32,
    /// Positions per step: mistral3's loader uses the YaRN original context.
    pub len: usize,
}

impl AttnTemp {
    /// The factor on the queries at position `pos`.
    pub fn at(&self, pos: usize) -> f32 {
        1.0 + self.beta * ((pos / self.len) as f32 + 1.0).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yarn_mscale_is_the_ratio_of_get_mscale() {
        // Ministral 3: mscale = mscale_all_dim = 1, so the correction cancels.
        let y = |log_mul| RopeScaling::Yarn { factor: 16.0, beta_fast: 32.0, beta_slow: 1.0, log_mul };
        assert_eq!(y(1.0).yarn_mscale(), 1.0);
        // Without a log multiplier: 1 + 0.1 ln 16.
        assert!((y(0.0).yarn_mscale() - (1.0 + 0.1 * 16f32.ln())).abs() < 1e-6);
        // mscale_all_dim 0.5: (1 + 0.1 ln 16) / (1 + 0.05 ln 16).
        assert!((y(0.5).yarn_mscale() - (1.0 + 0.1 * 16f32.ln()) / (1.0 + 0.05 * 16f32.ln())).abs() < 1e-6);
        assert_eq!(RopeScaling::Linear { factor: 4.0 }.yarn_mscale(), 1.0);
    }

    #[test]
    fn temperature_steps_every_len_positions() {
        let t = AttnTemp { beta: 0.1, len: 16 };
        assert_eq!(t.at(0), 1.0);
        assert_eq!(t.at(15), 1.0);
        assert!((t.at(16) - (1.0 + 0.1 * 2f32.ln())).abs() < 1e-7);
        assert!((t.at(47) - (1.0 + 0.1 * 3f32.ln())).abs() < 1e-7);
    }
}
