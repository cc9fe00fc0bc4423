// ggml block_q4_1 (20 B): f16 d, f16 m, 16 bytes of nibbles; x = d * q + m.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 20u;
    let d = f16_at(b);
    let m = f16_at(b + 2u);
    for (var j = 0u; j < 16u; j++) {
        let q = byte_at(b + 4u + j);
        (*out)[j] = f32(q & 15u) * d + m;
        (*out)[j + 16u] = f32(q >> 4u) * d + m;
    }
}
