// Q4_K sub-block `s` of the row at byte `row` dotted with x[xo .. xo + 32], without
// expanding it: d·sc·Σ q·x − dmin·m·Σ x (the min factors out). Layout: dequant_q4k.wgsl.
fn dot_sub(row: u32, s: u32, n: u32, xo: u32) -> f32 {
    let b = row + (s / 8u) * 144u;
    let sub = s % 8u;
    let dd = unpack2x16float(word_at(b));
    let sm = scale_min_k4(sub, b + 4u);
    let q = b + 16u + 32u * (sub / 2u);
    let shift = 4u * (sub % 2u);
    var acc = 0.0;
    var xs = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(q + 4u * i) >> shift;
        let qv = vec4<f32>(f32(v & 15u), f32((v >> 8u) & 15u), f32((v >> 16u) & 15u), f32((v >> 24u) & 15u));
        let xv = x4(xo + 4u * i);
        acc += dot(qv, xv);
        xs += xv.x + xv.y + xv.z + xv.w;
    }
    return dd.x * sm.x * acc - dd.y * sm.y * xs;
}
