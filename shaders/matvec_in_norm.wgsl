// matvec.wgsl's input RMS-normalized on the fly: the products take x·g, and the row's
// total is multiplied by 1 / sqrt(mean(x²) + eps) (src/cpu/ops.rs rms_norm, with the
// scale moved past the sum), so the pre-attention, pre-FFN and final RMSNorms need
// no dispatch of their own in decode. The lanes of a row already read all of x for
// the dot product, so the sum of squares costs FMAs on loads the cache holds, not
// memory traffic. (ggml-vulkan fuses RMS_NORM with the MUL by its weight,
// ggml-org/llama.cpp#14366, and with the RoPE after it, #16977; this goes into the
// product instead, which is what a decode step's norms feed.)
//   6 g: [p.n_in] f32   the norm's weight
// p.eps: the norm's epsilon (matmul_args.wgsl).
@group(0) @binding(6) var<storage, read> g: array<f32>;

fn g4(o: u32) -> vec4<f32> {
    if (o + 4u <= p.n_in) { return vec4<f32>(g[o], g[o + 1u], g[o + 2u], g[o + 3u]); }
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (o + k < p.n_in) { v[k] = g[o + k]; } }
    return v;
}
fn xin(o: u32) -> vec4<f32> { return x4(o) * g4(o); }
fn sq(o: u32) -> f32 { let v = x4(o); return dot(v, v); }
fn in_scale(ss: f32) -> f32 { return inverseSqrt(ss / f32(p.n_in) + p.eps); }
