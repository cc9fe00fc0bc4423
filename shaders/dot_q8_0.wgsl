// Q8_0 block `s` dotted with x[xo .. xo + 32]. Layout: dequant_q8_0.wgsl.
fn dot_sub(row: u32, s: u32, n: u32, xo: u32) -> f32 {
    let b = row + s * 34u;
    var acc = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(b + 2u + 4u * i);
        let qv = vec4<f32>(i8_of(v & 255u), i8_of((v >> 8u) & 255u), i8_of((v >> 16u) & 255u), i8_of(v >> 24u));
        acc += dot(qv, x4(xo + 4u * i));
    }
    return f16_at(b) * acc;
}
