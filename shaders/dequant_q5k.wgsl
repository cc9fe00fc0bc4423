// ggml block_q5_K (176 B per 256): as Q4_K plus 32 bytes `qh` at 16 whose bit `sub`
// is the fifth bit of element l of sub-block `sub`; nibbles at 48.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 176u;
    let sub = s % 8u;
    let d = f16_at(b);
    let dmin = f16_at(b + 2u);
    let sm = scale_min_k4(sub, b + 4u);
    let scale = d * sm.x;
    let mn = dmin * sm.y;
    let q = b + 48u + 32u * (sub / 2u);
    let shift = 4u * (sub % 2u);
    for (var l = 0u; l < 32u; l++) {
        let hi = select(0u, 16u, ((byte_at(b + 16u + l) >> sub) & 1u) != 0u);
        (*out)[l] = scale * f32(((byte_at(q + l) >> shift) & 15u) + hi) - mn;
    }
}
