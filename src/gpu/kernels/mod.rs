//! One Rust function per WGSL shader (named as the file or its entry point): each
//! checks shapes, then records its dispatch into a [`Recorder`]. Pipelines are built
//! once per (shader, weight type, entry point) and cached.
//!
//! - `recorder.rs`: the [`Recorder`], its uniform slots, and the pipeline and
//!   bind-group caches ([`Kernels`]);
//! - `matmul.rs`: weight products (prefill matmul, decode matvecs, expert products);
//! - `attention.rs`: attention over the KV cache, and the cache writes;
//! - `elementwise.rs`: embedding, RMSNorm, rotary positions, residual add, SwiGLU;
//! - `moe.rs`: expert routing, and the weighted sum of the experts' outputs;
//! - `sample.rs`: argmax over the logits (the seeded draw: [`crate::gpu::sample`]).
//!
//! What they share sits here: the shape check, the grid for n items, and the typed
//! shader sources (bytes.wgsl and a dequant_<type>.wgsl joined before a body).

mod attention;
mod elementwise;
mod matmul;
mod moe;
mod recorder;
mod sample;

pub use super::submit::StepCounts;
pub use attention::{attention, attention_partials, attention_prefill, attention_split, attention_splits, attention_units, kv_store, AttnArgs, MAX_SPLITS, PREFILL_MAX_HEAD_DIM, SPLIT_KEYS};
pub use elementwise::{add, embed, rms_norm, rope, swiglu};
pub use matmul::{matmul, matmul_id, matmul_id_grouped, matmul_rows, matvec, matvec3, matvec_swiglu, MATMUL_TOKENS};
pub use moe::{moe_combine, moe_group, moe_route};
pub(crate) use recorder::Bind;
pub use recorder::{buf, Buf, Kernels, Recorder, MAX_DISPATCHES};
pub(crate) use sample::SAMPLE;
pub use sample::argmax;

use crate::gpu::context::GpuError;
use crate::format::quant::GgmlType;

const BYTES: &str = include_str!("../../../shaders/bytes.wgsl");

/// Per-type block decoders, joined with a generic body (matmul, embed).
pub fn dequant_source(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => include_str!("../../../shaders/dequant_f32.wgsl"),
        GgmlType::F16 => include_str!("../../../shaders/dequant_f16.wgsl"),
        GgmlType::BF16 => include_str!("../../../shaders/dequant_bf16.wgsl"),
        GgmlType::Q4_0 => include_str!("../../../shaders/dequant_q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../../../shaders/dequant_q4_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../../shaders/dequant_q8_0.wgsl"),
        GgmlType::Q4K => include_str!("../../../shaders/dequant_q4k.wgsl"),
        GgmlType::Q5K => include_str!("../../../shaders/dequant_q5k.wgsl"),
        GgmlType::Q6K => include_str!("../../../shaders/dequant_q6k.wgsl"),
    }
}

fn shape(kernel: &'static str, ok: bool, message: impl FnOnce() -> String) -> Result<(), GpuError> {
    if ok {
        Ok(())
    } else {
        Err(GpuError::Shape { kernel, message: message() })
    }
}

/// Workgroups for `n` items: x up to 65535 (WebGPU's per-dimension default), rest in y.
fn spread(n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    (n.min(65535), n.div_ceil(65535))
}

fn typed_source(ty: GgmlType, body: &str) -> String {
    format!("{BYTES}\n{}\n{body}", dequant_source(ty))
}
