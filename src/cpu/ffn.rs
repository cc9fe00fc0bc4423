//! SwiGLU feed-forward: `down(silu(gate·x) ⊙ up·x)`.

use crate::cpu::kernels::KernelError;
use crate::cpu::linear::{Linear, Projections};
use crate::cpu::vector::silu;

pub struct SwiGlu {
    /// gate and up, in that order.
    pub gate_up: Projections,
    pub down: Linear,
}

impl SwiGlu {
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, KernelError> {
        let mut gu = self.gate_up.forward(x)?;
        let u = gu.pop().expect("up");
        let mut g = gu.pop().expect("gate");
        for (g, u) in g.iter_mut().zip(&u) {
            *g = silu(*g) * u;
        }
        self.down.forward(&g)
    }
}
