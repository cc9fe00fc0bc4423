// ggml block_q4_0 (18 B): f16 d, 16 bytes of nibbles; x = d * (q - 8), low nibbles are
// elements 0..16, high nibbles 16..32.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 18u;
    let d = f16_at(b);
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(b + 2u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let q = byte_of(v, k);
            (*out)[4u * i + k] = (f32(q & 15u) - 8.0) * d;
            (*out)[16u + 4u * i + k] = (f32(q >> 4u) - 8.0) * d;
        }
    }
}
