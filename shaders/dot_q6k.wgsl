// Q6_K sub-block `s` dotted with x[xo .. xo + 32]; its two 16-element halves have their
// own int8 scales. Layout: dequant_q6k.wgsl.
fn dot_sub(row: u32, s: u32, n: u32, xo: u32) -> f32 {
    let b = row + (s / 8u) * 210u;
    let sub = s % 8u;
    let half = sub / 4u;
    let g = sub % 4u;
    let ql = b + 64u * half + 32u * (g & 1u);
    let qh = b + 128u + 32u * half;
    let sc = b + 192u + 8u * half + 2u * g;
    let shift = 4u * (g / 2u);
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < 8u; i++) {
        let lo = word_at(ql + 4u * i) >> shift;
        let hi = word_at(qh + 4u * i) >> (2u * g);
        let q = (lo & 0x0f0f0f0fu) | ((hi & 0x03030303u) << 4u);
        let qv = vec4<f32>(f32(q & 63u), f32((q >> 8u) & 63u), f32((q >> 16u) & 63u), f32(q >> 24u)) - 32.0;
        let a = dot(qv, x4(xo + 4u * i));
        if (i < 4u) { acc.x += a; } else { acc.y += a; }
    }
    return f16_at(b + 208u) * (i8_of(byte_at(sc)) * acc.x + i8_of(byte_at(sc + 1u)) * acc.y);
}
