//! Rope scaling as a GGUF file states it: `{arch}.rope.scaling.type` (none, linear, yarn,
//! longrope) and `{arch}.rope.scaling.factor`, read as llama.cpp's `llama_model::load_hparams`
//! (src/llama-model.cpp) reads them for every architecture: the type defaults to linear, the
//! factor (or the older `{arch}.rope.scale_linear`) becomes `rope_freq_scale_train = 1/factor`,
//! a missing or zero factor meaning 1; and `llama_context` (src/llama-context.cpp) never
//! scales when the type is none and turns YaRN's extrapolation on only for yarn. With that
//! extrapolation off, ggml's rope (`rope_yarn`) rotates pair i by
//! `freq_scale · pos · base^(-2i/n_rot) / factor_i`: linear scaling is positions × 1/factor
//! (`model::rope::inv_freq_scaled`). Gemma 3 4B+ carry linear 8, which llama.cpp applies to
//! the global layers only (`llama_load_hparams_gemma3`: `rope_freq_scale_train_swa = 1`).
//!
//! YaRN is not implemented: a file asking for it is refused by the key and value rather than
//! run with the wrong rotation.

use crate::format::gguf::Gguf;

/// Why a file's rope scaling is refused; `format::hparams` (which reads this module, so
/// this module does not name it) turns it into the `HparamsError` of the same name.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalingError {
    /// The key holds the wrong kind of value.
    Key { key: String, found: String, expected: &'static str },
    /// A well-formed value Precis does not run.
    Unsupported { key: String, value: String, why: &'static str },
}

/// The scaling a file asks for, after llama.cpp's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// `none`: the factor is ignored (llama.cpp: "never scale if scaling type is none").
    None,
    /// `linear` (also a file with no type): positions × 1/factor.
    Linear { factor: f32 },
    /// `longrope` (Phi-3.5, Phi-4-mini): the per-pair factors are tensors
    /// (`rope_factors_long`/`short`, see `model::spec`); a factor key, where present,
    /// scales positions as for linear, since llama.cpp's freq_scale applies to every type
    /// but none.
    LongRope { factor: f32 },
}

impl RopeScaling {
    /// Reads `{arch}.rope.scaling.type` and `.factor` (or `.scale_linear`).
    pub fn from_gguf(g: &Gguf, arch: &str) -> Result<Self, ScalingError> {
        let type_key = format!("{arch}.rope.scaling.type");
        let kind = match g.get(&type_key) {
            None => "linear".to_string(),
            Some(v) => v.as_str().map(str::to_string).ok_or_else(|| ScalingError::Key { key: type_key.clone(), found: g.describe(&type_key), expected: "a string (none, linear, yarn or longrope)" })?,
        };
        let factor = factor(g, arch)?;
        match kind.as_str() {
            "none" => Ok(RopeScaling::None),
            "linear" => Ok(RopeScaling::Linear { factor }),
            "longrope" => Ok(RopeScaling::LongRope { factor }),
            "yarn" => Err(ScalingError::Unsupported { key: type_key, value: kind, why: "Precis does not implement YaRN rope scaling (it runs none, linear and longrope)" }),
            _ => Err(ScalingError::Unsupported { key: type_key, value: kind, why: "not a rope scaling type llama.cpp knows (none, linear, yarn, longrope)" }),
        }
    }

    /// What multiplies every position (llama.cpp's `freq_scale`): 1/factor, 1 for none.
    pub fn freq_scale(self) -> f32 {
        match self {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor } | RopeScaling::LongRope { factor } => 1.0 / factor,
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
