// Elements 4i .. 4i+4 of Q6_K sub-block `s` dotted with x from xo: four low nibbles
// and four 2-bit highs make four 6-bit codes; elements 0..16 and 16..32 of a sub-block
// have their own int8 scales. Layout: dequant_q6k.wgsl.
fn dot4(row: u32, s: u32, i: u32, xo: u32) -> f32 {
    let b = row + (s / 8u) * 210u;
    let sub = s % 8u;
    let half = sub / 4u;
    let g = sub % 4u;
    let lo = word_at(b + 64u * half + 32u * (g & 1u) + 4u * i) >> (4u * (g / 2u));
    let hi = word_at(b + 128u + 32u * half + 4u * i) >> (2u * g);
    let q = (lo & 0x0f0f0f0fu) | ((hi & 0x03030303u) << 4u);
    let qv = vec4<f32>(f32(q & 63u), f32((q >> 8u) & 63u), f32((q >> 16u) & 63u), f32(q >> 24u)) - 32.0;
    let sc = i8_of(byte_at(b + 192u + 8u * half + 2u * g + i / 4u));
    return f16_at(b + 208u) * sc * dot(qv, xin(xo));
}
