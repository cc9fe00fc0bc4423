// Elements 4i .. 4i+4 of Q8_0 block `s` dotted with x from xo. Layout: dequant_q8_0.wgsl.
fn dot4(row: u32, s: u32, i: u32, xo: u32) -> f32 {
    let b = row + s * 34u;
    let v = word_at(b + 2u + 4u * i);
    let qv = vec4<f32>(i8_of(v & 255u), i8_of((v >> 8u) & 255u), i8_of((v >> 16u) & 255u), i8_of(v >> 24u));
    return f16_at(b) * dot(qv, xin(xo));
}
