//! Sampling on the GPU: greedy argmax, so a decode step reads back one token id.
//! Temperature / top-k / top-p run on the CPU over read-back logits (not on the GPU
//! yet), as does any LogitsProcessor (grammar masks).

use super::context::GpuError;
use super::kernels::{argmax, Buf, Recorder};

/// Records the argmax of row `row` of `logits` [rows, n_vocab] into `out[0]`.
pub fn greedy(rec: &mut Recorder, logits: &Buf, row: usize, n_vocab: usize, out: &Buf) -> Result<(), GpuError> {
    argmax(rec, logits, row * n_vocab, n_vocab, out)
}
