// ggml block_iq4_nl (18 B per 32): f16 d, 16 bytes of nibbles (low: elements 0..16,
// high: 16..32), each an index into ggml's `kvalues_iq4nl`; x = d * kvalues[q].
// Layout and order: ggml `dequantize_row_iq4_nl`; CPU twin: format/quant.rs.
// In: w (the body's binding 1, [bytes / 4] u32, GGUF blocks as stored), the row at byte
// `row`; out: the 32 elements of block s.
var<private> IQ4NL_LEVELS: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + s * 18u;
    let d = f16_at(b);
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(b + 2u + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let q = byte_of(v, k);
            (*out)[4u * i + k] = d * IQ4NL_LEVELS[q & 15u];
            (*out)[16u + 4u * i + k] = d * IQ4NL_LEVELS[q >> 4u];
        }
    }
}
