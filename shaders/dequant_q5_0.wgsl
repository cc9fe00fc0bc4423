// ggml block_q5_0 (22 B): f16 d, 4 bytes qh (a little-endian u32, bit j the fifth bit of
// element j), 16 bytes of nibbles (low: elements 0..16, high: 16..32); x = d * (q - 16).
// Layout and bit order: ggml `dequantize_row_q5_0`; CPU twin: format/quant.rs.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 22u;
    let d = f16_at(b);
    let qh = word_at(b + 2u);
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(b + 6u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let j = 4u * i + k;
            let q = byte_of(v, k);
            let lo = (q & 15u) | (((qh >> j) & 1u) << 4u);
            let hi = (q >> 4u) | (((qh >> (j + 16u)) & 1u) << 4u);
            (*out)[j] = (f32(lo) - 16.0) * d;
            (*out)[16u + j] = (f32(hi) - 16.0) * d;
        }
    }
}
