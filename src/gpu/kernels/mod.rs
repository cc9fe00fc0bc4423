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
//!
//! Uniforms: each shader's `struct Params` has a `#[repr(C)]` twin beside the function
//! that dispatches it, with the same fields in the same order under the same names.
//! Every field is a u32 or f32, of size and alignment 4 in WGSL's uniform layout
//! (<https://www.w3.org/TR/WGSL/#memory-layouts>), so `repr(C)` places each where
//! WGSL does; each struct ends in explicit padding to a multiple of 16 bytes (the
//! uniform address space rounds a struct's alignment up to 16), and a compile-time
//! assertion pins its size. A test parses every shader with naga and checks its
//! `Params` against the twin: names, scalar types, offsets and size.

mod attention;
mod elementwise;
mod matmul;
mod moe;
mod recorder;
mod sample;

pub use super::submit::StepCounts;
pub use attention::{attention, attention_partials, attention_prefill, attention_split, attention_splits, attention_units, kv_store, AttnArgs, MAX_SPLITS, PREFILL_MAX_HEAD_DIM, SPLIT_KEYS};
pub use elementwise::{add, add_rows, embed, geglu, rms_norm, rms_norm_add, rms_norm_inplace, rope, rope_qk, rope_scaled, rope_tempered, scale, swiglu};
pub use matmul::{matmul, matmul_id, matmul_id_grouped, matmul_rows, matvec, matvec_fused, matvec_qkv, matvec_qkv_fused, matvec_swiglu, matvec_swiglu_fused, Fuse, MATMUL_TOKENS};
pub use moe::{moe_combine, moe_group, moe_route};
pub(crate) use recorder::Bind;
pub use recorder::{buf, Buf, Kernels, Recorder, MAX_DISPATCHES};
pub(crate) use sample::{SampleKernelParams, SAMPLE};
pub use sample::argmax;

use crate::format::quant::GgmlType;
use crate::gpu::context::GpuError;

const BYTES: &str = include_str!("../../../shaders/bytes.wgsl");

/// Per-type block decoders, joined with a generic body (matmul, embed).
pub fn dequant_source(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => include_str!("../../../shaders/dequant_f32.wgsl"),
        GgmlType::F16 => include_str!("../../../shaders/dequant_f16.wgsl"),
        GgmlType::BF16 => include_str!("../../../shaders/dequant_bf16.wgsl"),
        GgmlType::Q4_0 => include_str!("../../../shaders/dequant_q4_0.wgsl"),
        GgmlType::Q4_1 => include_str!("../../../shaders/dequant_q4_1.wgsl"),
        GgmlType::Q5_0 => include_str!("../../../shaders/dequant_q5_0.wgsl"),
        GgmlType::Q5_1 => include_str!("../../../shaders/dequant_q5_1.wgsl"),
        GgmlType::Q8_0 => include_str!("../../../shaders/dequant_q8_0.wgsl"),
        GgmlType::Q2K => include_str!("../../../shaders/dequant_q2k.wgsl"),
        GgmlType::Q3K => include_str!("../../../shaders/dequant_q3k.wgsl"),
        GgmlType::Q4K => include_str!("../../../shaders/dequant_q4k.wgsl"),
        GgmlType::Q5K => include_str!("../../../shaders/dequant_q5k.wgsl"),
        GgmlType::Q6K => include_str!("../../../shaders/dequant_q6k.wgsl"),
        GgmlType::IQ4NL => include_str!("../../../shaders/dequant_iq4nl.wgsl"),
        GgmlType::IQ4XS => include_str!("../../../shaders/dequant_iq4xs.wgsl"),
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
fn workgroups_xy(n: usize) -> (u32, u32) {
    let n = n.max(1) as u32;
    (n.min(65535), n.div_ceil(65535))
}

fn typed_source(ty: GgmlType, body: &str) -> String {
    format!("{BYTES}\n{}\n{body}", dequant_source(ty))
}

/// Checks that `P` mirrors `struct Params` of the WGSL module `source`: the same
/// fields in the same order, each a 4-byte u32 or f32 at offset 4·i, and the same
/// size. `P`'s field names and types are read from its `Debug` form
/// (`X { n: 0, eps: 0.0 }`: a `.` marks an f32).
#[cfg(all(test, not(target_arch = "wasm32")))]
fn assert_mirrors<P: bytemuck::Pod + std::fmt::Debug>(source: &str) {
    use wgpu::naga::{ScalarKind, TypeInner};
    let rust = format!("{:?}", P::zeroed());
    let body = &rust[rust.find('{').expect("a struct with named fields") + 1..rust.rfind('}').unwrap()];
    let fields: Vec<(&str, ScalarKind)> = body
        .split(',')
        .map(|f| {
            let (name, value) = f.split_once(':').unwrap();
            (name.trim(), if value.contains('.') { ScalarKind::Float } else { ScalarKind::Uint })
        })
        .collect();
    let module = wgpu::naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, t)| match (&t.name, &t.inner) {
            (Some(n), TypeInner::Struct { members, span }) if n == "Params" => Some((members, *span)),
            _ => None,
        })
        .expect("the module declares struct Params");
    let wgsl: Vec<(&str, ScalarKind, u32)> = members
        .iter()
        .map(|m| match module.types[m.ty].inner {
            TypeInner::Scalar(s) if s.width == 4 => (m.name.as_deref().unwrap_or("?"), s.kind, m.offset),
            ref other => panic!("Params.{:?} is a {other:?}, not a 4-byte scalar", m.name),
        })
        .collect();
    let name = std::any::type_name::<P>();
    assert_eq!(fields.len(), wgsl.len(), "{name}: {fields:?} against WGSL's {wgsl:?}");
    for (i, ((rn, rk), (wn, wk, off))) in fields.iter().zip(&wgsl).enumerate() {
        assert_eq!((rn, rk, 4 * i as u32), (wn, wk, *off), "{name}: field {i}");
    }
    assert_eq!(std::mem::size_of::<P>(), span as usize, "{name}: size against WGSL's");
}
