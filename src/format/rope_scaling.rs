//! Rope frequency scaling and the query temperature, as `<arch>.rope.scaling.*` and
//! `<arch>.attention.temperature_scale` say (llama.cpp key names, `LLM_KV_ROPE_SCALING_*`
//! in src/llama-arch.cpp; read as `llama_model::load_hparams` and `llama_context` use them).
//! `format::hparams` reads the keys into these (and refuses, by key, a form Precis does
//! not run); `model::rope` turns them into the frequencies both passes rotate by.

/// Rope frequency scaling, as llama.cpp reads it (`llama_model::load_hparams`:
/// `rope.scaling.type`, default linear; `rope.scaling.factor` f gives `rope_freq_scale_train`
/// = 1/f, none without it). Every form is a fixed factor per rotated pair, so both passes
/// take it through their frequency table (`model::rope::layer_inv_freq`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    None,
    /// Every frequency times 1/factor (ggml's `theta_interp`).
    Linear { factor: f32 },
    /// YaRN (ggml-cpu ops.cpp `rope_yarn`, with `ext_factor` 1 as `llama_context` sets it for
    /// `LLAMA_ROPE_SCALING_TYPE_YARN`): pair i's frequency is the interpolated one (× 1/factor)
    /// and the original one mixed by a ramp that is 1 below the correction dimension of
    /// `beta_fast` and 0 above that of `beta_slow` (`ggml_rope_yarn_corr_dims`, over
    /// `rope.scaling.original_context_length`). `log_mul` is `rope.scaling.yarn_log_multiplier`
    /// (Hugging Face's `mscale_all_dim`; 0 when absent).
    Yarn { factor: f32, beta_fast: f32, beta_slow: f32, log_mul: f32 },
}

impl RopeScaling {
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
