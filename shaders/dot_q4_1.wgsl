// Q4_1 block `s` dotted with x[xo .. xo + 32]: d·Σ q·x + m·Σ x. Layout: dequant_q4_1.wgsl.
fn dot_sub(row: u32, s: u32, n: u32, xo: u32) -> f32 {
    let b = row + s * 20u;
    let dm = unpack2x16float(word_at(b));
    var acc = 0.0;
    var xs = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(b + 4u + 4u * i);
        let lo = vec4<f32>(f32(v & 15u), f32((v >> 8u) & 15u), f32((v >> 16u) & 15u), f32((v >> 24u) & 15u));
        let hi = vec4<f32>(f32((v >> 4u) & 15u), f32((v >> 12u) & 15u), f32((v >> 20u) & 15u), f32(v >> 28u));
        let xa = x4(xo + 4u * i);
        let xb = x4(xo + 16u + 4u * i);
        acc += dot(lo, xa) + dot(hi, xb);
        xs += xa.x + xa.y + xa.z + xa.w + xb.x + xb.y + xb.z + xb.w;
    }
    return dm.x * acc + dm.y * xs;
}
