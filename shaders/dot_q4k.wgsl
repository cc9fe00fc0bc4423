// Elements 4i .. 4i+4 of Q4_K sub-block `s` (row at byte `row`) dotted with x from xo:
// d·sc·Σq·x − dmin·m·Σx. Word i of the sub-block's 32 nibble bytes holds them (low
// nibbles for even sub-blocks, high for odd). Layout: dequant_q4k.wgsl.
fn dot4(row: u32, s: u32, i: u32, xo: u32) -> f32 {
    let b = row + (s / 8u) * 144u;
    let sub = s % 8u;
    let dd = unpack2x16float(w[b >> 2u]);
    let sm = scale_min_k4(sub, b + 4u);
    let v = w[(b + 16u + 32u * (sub / 2u) + 4u * i) >> 2u] >> (4u * (sub % 2u));
    let qv = vec4<f32>(f32(v & 15u), f32((v >> 8u) & 15u), f32((v >> 16u) & 15u), f32((v >> 24u) & 15u));
    let xv = xin(xo);
    return dd.x * sm.x * dot(qv, xv) - dd.y * sm.y * (xv.x + xv.y + xv.z + xv.w);
}
