// ggml block_q4_K (144 B per 256): f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes.
// Sub-block `sub` (32 elements) uses pair `sub` of 6-bit (scale, min); sub-blocks 2c and
// 2c+1 share the 32 bytes at 16 + 32c (low nibbles, then high nibbles).
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 144u;
    let sub = s % 8u;
    let dd = unpack2x16float(word_at(b));
    let sm = scale_min_k4(sub, b + 4u);
    let scale = dd.x * sm.x;
    let mn = dd.y * sm.y;
    let q = b + 16u + 32u * (sub / 2u);
    let shift = 4u * (sub % 2u);
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(q + 4u * i) >> shift;
        for (var k = 0u; k < 4u; k++) {
            (*out)[4u * i + k] = scale * f32((v >> (8u * k)) & 15u) - mn;
        }
    }
}
