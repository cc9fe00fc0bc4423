// ggml block_q4_1 (20 B): f16 d, f16 m, 16 bytes of nibbles; x = d * q + m.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 20u;
    let dm = unpack2x16float(word_at(b));
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(b + 4u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let q = byte_of(v, k);
            (*out)[4u * i + k] = f32(q & 15u) * dm.x + dm.y;
            (*out)[16u + 4u * i + k] = f32(q >> 4u) * dm.x + dm.y;
        }
    }
}
