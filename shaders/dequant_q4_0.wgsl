// ggml block_q4_0 (18 B): f16 d, 16 bytes of nibbles; x = d * (q - 8), low nibbles are
// elements 0..16, high nibbles 16..32.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 18u;
    let d = f16_at(b);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(b + 2u + j);
        (*out)[j] = (f32(q & 15u) - 8.0) * d;
        (*out)[j + 16u] = (f32(q >> 4u) - 8.0) * d;
    }
}
