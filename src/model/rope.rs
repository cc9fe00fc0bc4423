//! Rotary position embedding's frequencies, shared by the CPU's `cpu::rope::Rope` and
//! the GPU's `rope.wgsl` (uploaded once), so both rotate by the same f32 angles.
//! Pair i of a head (which two elements: `format::family::RopeStyle::pair`) rotates by
//! `pos · base^(-2i/n_rot)`, in llama.cpp's normal and NEOX modes alike.

//!
//! Llama 3.1-style scaling comes as `rope_freqs.weight`, one factor per pair: llama.cpp's
//! `ggml_rope_ext` (ggml-cpu ops.cpp, `rope_yarn` callers) divides pair i's angle by
//! `freq_factors[i]`, so the frequency becomes `base^(-2i/n_rot) / factor[i]`.

/// `base^(-2i/n_rot)` for each of the `n_rot / 2` rotated pairs, divided by the pair's
/// factor where `factors` (from `rope_freqs.weight`) are given.
pub fn inv_freq(n_rot: usize, base: f32, factors: Option<&[f32]>) -> Vec<f32> {
    (0..n_rot / 2).map(|i| base.powf(-2.0 * i as f32 / n_rot as f32) / factors.map_or(1.0, |f| f[i])).collect()
}

/// `inv` with every position multiplied by `freq_scale` (linear rope scaling, 1/factor:
/// `format::rope_scaling`): ggml's rope (`rope_yarn` with extrapolation off) rotates by
/// `freq_scale · pos · freq`, the same angle as `pos · (freq · freq_scale)` up to f32 rounding.
pub fn scale_positions(inv: Vec<f32>, freq_scale: f32) -> Vec<f32> {
    if freq_scale == 1.0 { inv } else { inv.into_iter().map(|f| f * freq_scale).collect() }
}

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
    fn linear_scaling_divides_every_angle_by_the_factor() {
        let plain = super::inv_freq(8, 10_000.0, None);
        let scaled = super::scale_positions(plain.clone(), 1.0 / 8.0);
        // Position 8p scaled by 1/8 turns as far as position p unscaled.
        for (i, (p, s)) in plain.iter().zip(&scaled).enumerate() {
            assert_eq!(8.0 * 5.0 * s, 5.0 * p, "pair {i}");
        }
        assert_eq!(super::scale_positions(plain.clone(), 1.0), plain);
    }
}
