//! Quantized matmul throughput on SmolLM2's shapes: decode (1 row) and prefill
//! (512 rows), ours vs candle's `QMatMul`. `cargo bench --bench matmul`.

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use precis::cpu::kernels::QMatrix;
use precis::format::quant::{random_blocks, GgmlType};
use std::time::Instant;

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < 0.5 {
        f();
        n += 1;
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn main() {
    for (ty, cty) in [(GgmlType::Q4_1, GgmlDType::Q4_1), (GgmlType::Q8_0, GgmlDType::Q8_0), (GgmlType::Q4K, GgmlDType::Q4K), (GgmlType::Q6K, GgmlDType::Q6K)] {
        for (n_in, n_out, rows) in [(576, 1536, 1), (1536, 576, 1), (576, 49152, 1), (576, 196608, 1), (576, 1536, 512)] {
            if n_in % ty.block_size() != 0 {
                continue;
            }
            let w = random_blocks(ty, n_in * n_out, 1);
            let x: Vec<f32> = (0..n_in * rows).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
            let ours = QMatrix::new(ty, &w, n_in, n_out).unwrap();
            let t_ours = time(|| {
                std::hint::black_box(ours.matmul(&x).unwrap());
            });
            let qt = qtensor_from_ggml(cty, &w, vec![n_out, n_in], &Device::Cpu).unwrap();
            let mm = QMatMul::from_qtensor(qt).unwrap();
            let xt = Tensor::from_slice(&x, (rows, n_in), &Device::Cpu).unwrap();
            let t_candle = time(|| {
                std::hint::black_box(mm.forward(&xt).unwrap());
            });
            let gops = |t: f64| 2.0 * (n_in * n_out * rows) as f64 / t / 1e9;
            let gbs = |t: f64| w.len() as f64 / t / 1e9;
            println!(
                "{:5} {rows:4}x{n_in:5} -> {n_out:5}: ours {:8.3} ms ({:6.1} GOP/s, {:5.1} GB/s weights) | candle {:8.3} ms ({:6.1} GOP/s) | {:5.1}x",
                ty.name(),
                t_ours * 1e3,
                gops(t_ours),
                gbs(t_ours),
                t_candle * 1e3,
                gops(t_candle),
                t_candle / t_ours
            );
        }
    }
}
