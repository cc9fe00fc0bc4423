//! Quantized `y = W·x` on the CPU: a named wrapper over [`crate::cpu::kernels::QMatrix`].

use crate::cpu::kernels::{KernelError, QMatrix};
use crate::format::quant::GgmlType;

pub struct Linear {
    m: QMatrix,
    pub n_in: usize,
    pub n_out: usize,
    pub ty: GgmlType,
}

impl Linear {
    /// `bytes` hold `n_out` rows of `n_in` elements of type `ty`, as GGUF stores them.
    pub fn new(ty: GgmlType, bytes: &[u8], n_in: usize, n_out: usize) -> Result<Self, KernelError> {
        Ok(Linear { m: QMatrix::new(ty, bytes, n_in, n_out)?, n_in, n_out, ty })
    }

    /// As [`Linear::new`], taking ownership of the bytes (no copy).
    pub fn from_vec(ty: GgmlType, bytes: Vec<u8>, n_in: usize, n_out: usize) -> Result<Self, KernelError> {
        Ok(Linear { m: QMatrix::from_vec(ty, bytes, n_in, n_out)?, n_in, n_out, ty })
    }

    /// `x`: `n` rows of `n_in`; returns `n` rows of `n_out`.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, KernelError> {
        self.m.matmul(x)
    }

    pub fn weight_bytes(&self) -> usize {
        self.m.weight_bytes()
    }
}

/// Projections that read the same input (Q/K/V, gate/up): stacked into one matrix when
/// their types match, so the input is quantized once and the work is one parallel
/// pass instead of several small ones; kept apart otherwise (Mistral Q4_K_M mixes
/// Q4_K and Q6_K).
pub enum Projections {
    Stacked { m: Linear, widths: Vec<usize> },
    Separate(Vec<Linear>),
}

impl Projections {
    /// `parts`: (type, bytes, n_out) of matrices sharing `n_in`.
    pub fn new(parts: Vec<(GgmlType, Vec<u8>, usize)>, n_in: usize) -> Result<Self, KernelError> {
        if parts.windows(2).all(|p| p[0].0 == p[1].0) {
            let widths: Vec<usize> = parts.iter().map(|p| p.2).collect();
            let ty = parts[0].0;
            let mut bytes: Vec<u8> = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
            for p in parts {
                bytes.extend_from_slice(&p.1);
            }
            Ok(Projections::Stacked { m: Linear::from_vec(ty, bytes, n_in, widths.iter().sum())?, widths })
        } else {
            Ok(Projections::Separate(parts.into_iter().map(|(ty, b, n_out)| Linear::from_vec(ty, b, n_in, n_out)).collect::<Result<_, _>>()?))
        }
    }

    /// One output per projection, each `n` rows of its width.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<Vec<f32>>, KernelError> {
        match self {
            Projections::Separate(ms) => ms.iter().map(|m| m.forward(x)).collect(),
            Projections::Stacked { m, widths } => {
                let y = m.forward(x)?;
                let mut outs: Vec<Vec<f32>> = widths.iter().map(|w| Vec::with_capacity(w * y.len() / m.n_out)).collect();
                for row in y.chunks_exact(m.n_out) {
                    let mut at = 0;
                    for (o, w) in outs.iter_mut().zip(widths) {
                        o.extend_from_slice(&row[at..at + w]);
                        at += w;
                    }
                }
                Ok(outs)
            }
        }
    }
}
