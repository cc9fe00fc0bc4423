// ggml block_iq4_xs (136 B per 256): f16 d at 0, u16 scales_h at 2 (bits 2s..2s+2: the
// high bits of sub-block s's scale), scales_l[4] at 4 (nibble s % 2 of byte s / 2: the
// low bits), then per 32-element sub-block 16 bytes of IQ4_NL nibbles at 8 + 16s (low:
// elements 0..16, high: 16..32); x = d * (ls - 32) * kvalues_iq4nl[q].
// Layout and order: ggml `dequantize_row_iq4_xs`; CPU twin: format/quant.rs.
// In: w (the body's binding 1, [bytes / 4] u32, GGUF blocks as stored), the row at byte
// `row`; out: the 32 elements of sub-block s.
var<private> IQ4NL_LEVELS: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 136u;
    let sub = s % 8u;
    let d = f16_at(b);
    let lo = (byte_at(b + 4u + sub / 2u) >> (4u * (sub % 2u))) & 15u;
    let hi = (u16_at(b + 2u) >> (2u * sub)) & 3u;
    let dl = d * (f32(lo | (hi << 4u)) - 32.0);
    let q = b + 8u + 16u * sub;
    for (var i = 0u; i < 4u; i++) {
        let v = word_at(q + 4u * i);
        for (var k = 0u; k < 4u; k++) {
            let c = byte_of(v, k);
            (*out)[4u * i + k] = dl * IQ4NL_LEVELS[c & 15u];
            (*out)[16u + 4u * i + k] = dl * IQ4NL_LEVELS[c >> 4u];
        }
    }
}
