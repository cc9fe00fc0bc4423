// Elements 4i .. 4i+4 of Q4_1 block `s` dotted with x from xo: d·Σq·x + m·Σx. Elements
// 0..16 are the low nibbles of the 16 bytes, 16..32 the high. Layout: dequant_q4_1.wgsl.
fn dot4(row: u32, s: u32, i: u32, xo: u32) -> f32 {
    let b = row + s * 20u;
    let dm = unpack2x16float(w[b >> 2u]);
    let v = w[(b + 4u + 4u * (i % 4u)) >> 2u] >> (4u * (i / 4u));
    let qv = vec4<f32>(f32(v & 15u), f32((v >> 8u) & 15u), f32((v >> 16u) & 15u), f32((v >> 24u) & 15u));
    let xv = xin(xo);
    return dm.x * dot(qv, xv) + dm.y * (xv.x + xv.y + xv.z + xv.w);
}
