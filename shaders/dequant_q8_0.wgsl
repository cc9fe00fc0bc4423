// ggml block_q8_0 (34 B): f16 d, 32 int8; x = d * q.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 34u;
    let d = f16_at(b);
    for (var j = 0u; j < 32u; j++) {
        (*out)[j] = i8_of(byte_at(b + 2u + j)) * d;
    }
}
