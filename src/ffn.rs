//! SwiGLU feed-forward: `down(silu(gate·x) ⊙ up·x)`.

use crate::linear::Linear;
use crate::ops::silu;

pub struct SwiGlu {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

impl SwiGlu {
    pub fn forward(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
        let mut g = self.gate.forward(x)?;
        let u = self.up.forward(x)?;
        for (g, u) in g.iter_mut().zip(&u) {
            *g = silu(*g) * u;
        }
        self.down.forward(&g)
    }
}
