//! The gated feed-forward block: `down(act(gate·x) ⊙ up·x)`, SwiGLU (`act` = SiLU) or
//! GeGLU (tanh GELU, gemma3), as `Family::act` says.

use crate::cpu::kernels::KernelError;
use crate::cpu::linear::{Linear, Projections};
use crate::cpu::vector::{gelu_tanh, silu};
use crate::format::family::Activation;

/// Values per job of the gated activation: a 512-token chunk of SmolLM2 (n_ff 1536) is
/// 48 jobs. A decode step's few thousand values are split between the threads, in
/// pieces of at least ACT_MIN (a job below that costs more to hand out than it saves).
const ACT_CHUNK: usize = 16 * 1024;
const ACT_MIN: usize = 512;

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
        // Elementwise, so splitting it across the pool changes no bit. A decode step's
        // SiLU on the calling thread alone was 3% of a step at two threads in wasm
        // (1,536 libm `expf` per layer, SmolLM2), the other thread idle.
        let threads = crate::cpu::kernels::pool::global().threads();
        let chunk = ACT_CHUNK.min(g.len().div_ceil(threads).max(ACT_MIN));
        crate::cpu::kernels::pool::for_each_chunk_mut(&mut g, chunk, &|c, gc| {
            for (g, u) in gc.iter_mut().zip(&u[c * chunk..]) {
                *g = act(*g) * u;
            }
        });
        self.down.forward(&g)
    }
}
