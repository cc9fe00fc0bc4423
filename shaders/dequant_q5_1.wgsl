// ggml block_q5_1 (24 B): f16 d, f16 m, then Q5_0's 4 bytes qh and 16 bytes of nibbles
// (dequant_q5_0.wgsl); x = d * q + m. CPU twin: format/quant.rs.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 24u;
    let dm = unpack2x16float(word_at(b));
    let qh = word_at(b + 4u);
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(b + 8u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let j = 4u * i + k;
            let q = byte_of(v, k);
            let lo = (q & 15u) | (((qh >> j) & 1u) << 4u);
            let hi = (q >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
            (*out)[j] = f32(lo) * dm.x + dm.y;
            (*out)[16u + j] = f32(hi) * dm.x + dm.y;
        }
    }
}
