// Elements 4i .. 4i+4 of Q4_0 block `s` dotted with x from xo: d·Σ(q − 8)·x.
// Layout: dequant_q4_0.wgsl (18-byte blocks, so words are read unaligned).
fn dot4(row: u32, s: u32, i: u32, xo: u32) -> f32 {
    let b = row + s * 18u;
    let v = word_at(b + 2u + 4u * (i % 4u)) >> (4u * (i / 4u));
    let qv = vec4<f32>(f32(v & 15u), f32((v >> 8u) & 15u), f32((v >> 16u) & 15u), f32((v >> 24u) & 15u)) - 8.0;
    return f16_at(b) * dot(qv, xin(xo));
}
