// ggml block_q5_K (176 B per 256): as Q4_K plus 32 bytes `qh` at 16 whose bit `sub`
// is the fifth bit of element l of sub-block `sub`; nibbles at 48.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 176u;
    let sub = s % 8u;
    let dd = unpack2x16float(word_at(b));
    let sm = scale_min_k4(sub, b + 4u);
    let scale = dd.x * sm.x;
    let mn = dd.y * sm.y;
    let q = b + 48u + 32u * (sub / 2u);
    let shift = 4u * (sub % 2u);
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(q + 4u * i) >> shift;
        let h = word_at(b + 16u + 4u * i) >> sub;
        for (var k = 0u; k < 4u; k++) {
            let lo = (v >> (8u * k)) & 15u;
            let hi = ((h >> (8u * k)) & 1u) << 4u;
            (*out)[4u * i + k] = scale * f32(lo | hi) - mn;
        }
    }
}
