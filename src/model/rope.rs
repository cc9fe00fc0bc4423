//! Rotary position embedding's frequencies, shared by the CPU's `cpu::rope::Rope` and
//! the GPU's `rope.wgsl` (uploaded once), so both rotate by the same f32 angles.
//! Pair i of a head (which two elements: `format::family::RopeStyle::pair`) rotates by
//! `pos · base^(-2i/n_rot)`, in llama.cpp's normal and NEOX modes alike.

/// `base^(-2i/n_rot)` for each of the `n_rot / 2` rotated pairs.
pub fn inv_freq(n_rot: usize, base: f32) -> Vec<f32> {
    (0..n_rot / 2).map(|i| base.powf(-2.0 * i as f32 / n_rot as f32)).collect()
}
