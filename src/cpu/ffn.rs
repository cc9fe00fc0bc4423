//! The gated feed-forward block: `down(act(gate·x) ⊙ up·x)`, SwiGLU (`act` = SiLU) or
//! GeGLU (tanh GELU, gemma3), as `Family::act` says.

use crate::cpu::kernels::KernelError;
use crate::cpu::linear::{Linear, Projections};
use crate::cpu::vector::{gelu_tanh, silu};
use crate::format::family::Activation;

pub struct GatedFfn {
    /// gate and up, in that order.
    pub gate_up: Projections,
    pub down: Linear,
    pub act: Activation,
}

impl GatedFfn {
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, KernelError> {
        let mut gu = self.gate_up.forward(x)?;
        let u = gu.pop().expect("up");
        let mut g = gu.pop().expect("gate");
        let act: fn(f32) -> f32 = match self.act {
            Activation::Silu => silu,
            Activation::GeluTanh => gelu_tanh,
        };
        for (g, u) in g.iter_mut().zip(&u) {
            *g = act(*g) * u;
        }
        self.down.forward(&g)
    }
}
