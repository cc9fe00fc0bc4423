// ggml block_q8_0 (34 B): f16 d, 32 int8; x = d * q.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 34u;
    let d = f16_at(b);
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(b + 2u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            (*out)[4u * i + k] = i8_of(byte_of(v, k)) * d;
        }
    }
}
