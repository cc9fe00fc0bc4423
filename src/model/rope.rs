//! Rotary position embedding's frequencies, shared by the CPU's `cpu::rope::Rope` and
//! the GPU's `rope.wgsl` (uploaded once), so both rotate by the same f32 angles.
//! Pair i of a head (which two elements: `format::family::RopeStyle::pair`) rotates by
//! `pos · base^(-2i/n_rot)`, in llama.cpp's normal and NEOX modes alike.

//!
//! Llama 3.1-style scaling comes as `rope_freqs.weight`, one factor per pair: llama.cpp's
//! `ggml_rope_ext` (ggml-cpu ops.cpp, `rope_yarn` callers) divides pair i's angle by
//! `freq_factors[i]`, so the frequency becomes `base^(-2i/n_rot) / factor[i]`.

/// The frequencies `hp`'s layers rotate by: its global layers' (`local` false: every layer
/// of a model whose layers do not alternate) or an alternating model's local ones', each
/// at its rope base. [`inv_freq`] with the file's per-pair `factors`, then that layer
/// kind's scaling ([`Hparams::rope_scaling_of`]: the file's `rope.scaling.*`, none on
/// gemma3's local layers). Linear scaling (and longrope's factor) multiplies every
/// frequency by 1/factor: ggml's rope (`rope_yarn` with extrapolation off) rotates by
/// `freq_scale · pos · freq`, the same angle as `pos · (freq / factor)` up to f32 rounding.
/// YaRN (ggml-cpu ops.cpp `rope_yarn`, with
/// `ext_factor` 1) mixes the interpolated frequency (× 1/factor) with the original by a ramp
/// over the pair index i: 1 up to the correction dimension of `beta_fast`, 0 from that of
/// `beta_slow` (`ggml_rope_yarn_corr_dims`: n_rot·ln(n_ctx_orig / (2π·beta)) / (2 ln base),
/// floored and ceiled, clamped to [0, n_rot - 1]). ggml mixes the angles per position; the
/// angle is linear in the position, so mixing the frequencies once is the same rotation.
pub fn layer_inv_freq(hp: &Hparams, local: bool, factors: Option<&[f32]>) -> Vec<f32> {
    let base = if local { hp.rope_base_local } else { hp.rope_base };
    let mut inv = inv_freq(hp.n_rot, base, factors);
    match hp.rope_scaling_of(local) {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } | RopeScaling::LongRope { factor } => inv.iter_mut().for_each(|f| *f /= factor),
        RopeScaling::Yarn { factor, beta_fast, beta_slow, .. } => {
            let n_rot = hp.n_rot as f32;
            let corr = |beta: f32| n_rot * (hp.rope_orig_ctx as f32 / (beta * 2.0 * std::f32::consts::PI)).ln() / (2.0 * base.ln());
            let low = corr(beta_fast).floor().max(0.0);
            let high = corr(beta_slow).ceil().min(n_rot - 1.0);
            for (i, f) in inv.iter_mut().enumerate() {
                let mix = 1.0 - ((i as f32 - low) / (high - low).max(0.001)).clamp(0.0, 1.0);
                *f *= (1.0 - mix) / factor + mix;
            }
        }
    }
    inv
}

/// `base^(-2i/n_rot)` for each of the `n_rot / 2` rotated pairs, divided by the pair's
/// factor where `factors` (from `rope_freqs.weight`) are given.
pub fn inv_freq(n_rot: usize, base: f32, factors: Option<&[f32]>) -> Vec<f32> {
    (0..n_rot / 2).map(|i| base.powf(-2.0 * i as f32 / n_rot as f32) / factors.map_or(1.0, |f| f[i])).collect()
}

use crate::format::hparams::{Hparams, RopeScaling};

/// Refuses frequency factors a file cannot mean: each must be a positive finite number
/// (a zero would give an infinite frequency, a NaN a NaN model).
pub fn check_factors(file: &str, name: &str, factors: &[f32]) -> Result<(), crate::model::error::LoadError> {
    match factors.iter().position(|f| !(f.is_finite() && *f > 0.0)) {
        None => Ok(()),
        Some(i) => Err(crate::model::error::LoadError::Tensor { file: file.into(), name: name.into(), message: format!("frequency factor {i} is {}; each must be a positive finite number", factors[i]) }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn yarn_keeps_fast_pairs_and_interpolates_slow_ones() {
        use crate::format::hparams::RopeScaling;
        // n_rot 64, base 10000, original context 16: corr dims floor(-8.8) -> 0 (beta_fast 32)
        // and ceil(3.25) = 4 (beta_slow 1), so pair 0 keeps its frequency, pairs 1..3 mix and
        // pairs from 4 on are divided by the factor.
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-mistral.gguf")).unwrap();
        let g = crate::format::gguf::Gguf::parse(&bytes, bytes.len() as u64).unwrap();
        let mut hp = crate::format::hparams::Hparams::from_gguf(&g, &Default::default()).unwrap();
        hp.n_rot = 64;
        hp.rope_base = 10_000.0;
        hp.rope_orig_ctx = 16;
        hp.rope_scaling = RopeScaling::Yarn { factor: 4.0, beta_fast: 32.0, beta_slow: 1.0, log_mul: 1.0 };
        let plain = super::inv_freq(64, 10_000.0, None);
        let yarn = super::layer_inv_freq(&hp, false, None);
        assert_eq!(yarn[0], plain[0]);
        for i in 1..4 {
            let mix = 1.0 - i as f32 / 4.0;
            assert!((yarn[i] / plain[i] - ((1.0 - mix) / 4.0 + mix)).abs() < 1e-6, "pair {i}");
        }
        assert!(yarn[4..].iter().zip(&plain[4..]).all(|(y, p)| (y * 4.0 / p - 1.0).abs() < 1e-6));
        hp.rope_scaling = RopeScaling::Linear { factor: 2.0 };
        assert!(super::layer_inv_freq(&hp, false, None).iter().zip(&plain).all(|(l, p)| *l == p / 2.0));
    }

    #[test]
    fn factors_divide_the_frequencies() {
        let plain = super::inv_freq(8, 10_000.0, None);
        let scaled = super::inv_freq(8, 10_000.0, Some(&[1.0, 2.0, 4.0, 8.0]));
        for (i, (p, s)) in plain.iter().zip(&scaled).enumerate() {
            assert_eq!(*s, p / [1.0, 2.0, 4.0, 8.0][i], "pair {i}");
        }
        assert_eq!(plain[0], 1.0);
        assert!(super::check_factors("f", "rope_freqs.weight", &[1.0, 0.0]).unwrap_err().to_string().contains("factor 1 is 0"));
        assert!(super::check_factors("f", "rope_freqs.weight", &[f32::NAN]).is_err());
    }

    #[test]
    fn linear_scaling_divides_every_angle_by_the_factor_on_global_layers_only() {
        // tiny-gemma3-linear: linear 8, the global layer at base 1e6 scaled, the local ones
        // (base 1e4) not (rope_freq_scale_train_swa = 1).
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-gemma3-linear.gguf")).unwrap();
        let g = crate::format::gguf::Gguf::parse(&bytes, bytes.len() as u64).unwrap();
        let hp = crate::format::hparams::Hparams::from_gguf(&g, &Default::default()).unwrap();
        assert_eq!(hp.rope_scaling, crate::format::hparams::RopeScaling::Linear { factor: 8.0 });
        let global = super::layer_inv_freq(&hp, false, None);
        // Position 8p scaled by 1/8 turns as far as position p unscaled.
        for (i, (p, s)) in super::inv_freq(hp.n_rot, hp.rope_base, None).iter().zip(&global).enumerate() {
            assert_eq!(8.0 * 5.0 * s, 5.0 * p, "pair {i}");
        }
        assert_eq!(super::layer_inv_freq(&hp, true, None), super::inv_freq(hp.n_rot, hp.rope_base_local, None));
    }
}
