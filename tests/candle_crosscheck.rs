//! Our quantized matmul against candle's independent ggml-style kernels on the same
//! random weights: both quantize activations to 8 bits, differently (candle: Q8_0 /
//! Q8_1 / Q8_K), so they agree to within that rounding.

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use precis::cpu::kernels::QMatrix;
use precis::format::quant::{random_blocks, GgmlType};

/// |ours − candle| relative to Σ|w·x| of the row (two independent 8-bit roundings).
const TOL: f32 = 2e-2;

#[test]
fn agrees_with_candle() {
    let types = [
        (GgmlType::Q4_0, GgmlDType::Q4_0),
        (GgmlType::Q4_1, GgmlDType::Q4_1),
        (GgmlType::Q8_0, GgmlDType::Q8_0),
        (GgmlType::Q2K, GgmlDType::Q2K),
        (GgmlType::Q3K, GgmlDType::Q3K),
        (GgmlType::Q4K, GgmlDType::Q4K),
        (GgmlType::Q5K, GgmlDType::Q5K),
        (GgmlType::Q6K, GgmlDType::Q6K),
        (GgmlType::F16, GgmlDType::F16),
    ];
    for (ty, cty) in types {
        let (n_in, n_out, rows) = (512, 67, 5);
        let w = random_blocks(ty, n_in * n_out, 3);
        let x: Vec<f32> = (0..n_in * rows).map(|i| (((i * 7919) % 2000) as f32 / 1000.0 - 1.0) * 0.5).collect();
        let ours = QMatrix::new(ty, &w, n_in, n_out).unwrap().matmul(&x).unwrap();
        let qt = qtensor_from_ggml(cty, &w, vec![n_out, n_in], &Device::Cpu).unwrap();
        let xt = Tensor::from_slice(&x, (rows, n_in), &Device::Cpu).unwrap();
        let theirs = QMatMul::from_qtensor(qt).unwrap().forward(&xt).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let wf = precis::format::quant::dequantize_vec(ty, &w, n_in * n_out);
        for t in 0..rows {
            for o in 0..n_out {
                let scale: f32 = (0..n_in).map(|i| (wf[o * n_in + i] * x[t * n_in + i]).abs()).sum::<f32>().max(1e-6);
                let (a, b) = (ours[t * n_out + o], theirs[t * n_out + o]);
                assert!((a - b).abs() / scale < TOL, "{}: first bad index (row {t}, col {o}): ours {a}, candle {b}", ty.name());
            }
        }
    }
}
