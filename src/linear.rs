//! Quantized `y = W·x` on the CPU through candle's ggml kernels (activations are
//! quantized to the weight type's dot-product partner, Q8_0/Q8_1/Q8_K, as in ggml).

use crate::quant::GgmlType;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Tensor};

pub struct Linear {
    mm: QMatMul,
    pub n_in: usize,
    pub n_out: usize,
    pub ty: GgmlType,
}

fn candle_dtype(ty: GgmlType) -> GgmlDType {
    match ty {
        GgmlType::F32 => GgmlDType::F32,
        GgmlType::F16 => GgmlDType::F16,
        GgmlType::BF16 => GgmlDType::BF16,
        GgmlType::Q4_0 => GgmlDType::Q4_0,
        GgmlType::Q4_1 => GgmlDType::Q4_1,
        GgmlType::Q8_0 => GgmlDType::Q8_0,
        GgmlType::Q4K => GgmlDType::Q4K,
        GgmlType::Q5K => GgmlDType::Q5K,
        GgmlType::Q6K => GgmlDType::Q6K,
    }
}

impl Linear {
    /// `bytes` hold `n_out` rows of `n_in` elements of type `ty`, as GGUF stores them.
    pub fn new(ty: GgmlType, bytes: &[u8], n_in: usize, n_out: usize) -> candle_core::Result<Self> {
        if bytes.len() != ty.row_bytes(n_in) * n_out {
            candle_core::bail!("{} bytes for a {n_out}x{n_in} {} matrix", bytes.len(), ty.name());
        }
        let qt = qtensor_from_ggml(candle_dtype(ty), bytes, vec![n_out, n_in], &Device::Cpu)?;
        Ok(Linear { mm: QMatMul::from_qtensor(qt)?, n_in, n_out, ty })
    }

    /// `x`: `n` rows of `n_in`; returns `n` rows of `n_out`.
    pub fn forward(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
        let n = x.len() / self.n_in;
        let xt = Tensor::from_slice(x, (n, self.n_in), &Device::Cpu)?;
        candle_core::Module::forward(&self.mm, &xt)?.flatten_all()?.to_vec1::<f32>()
    }
}

impl candle_core::Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        candle_core::Module::forward(&self.mm, xs)
    }
}
