// ggml block_q3_K (110 B per 256): hmask[32] at 0 (bit b of byte l: the high bit of
// element 32b + l), qs[64] at 32 (Q2_K's 2-bit codes and order), scales[12] at 96
// (sixteen 6-bit scales, one per 16 elements), f16 d at 108; x = d*(sc - 32)*q, q the
// 2-bit code less 4 where the high bit is clear. Scale k: low 4 bits the low nibble of
// byte 96 + k (k < 8) or the high nibble of byte 88 + k; high 2 bits at 2(k / 4) of byte
// 104 + k % 4. Layout and order: ggml `dequantize_row_q3_K`; CPU twin: format/quant.rs.
// In: w (the body's binding 1, [bytes / 4] u32, GGUF blocks as stored), the row at byte
// `row`; out: the 32 elements of sub-block s.
fn q3k_scale(b: u32, k: u32) -> f32 {
    let lo = (byte_at(b + 96u + k % 8u) >> (4u * (k / 8u))) & 15u;
    let hi = (byte_at(b + 104u + k % 4u) >> (2u * (k / 4u))) & 3u;
    return f32(lo | (hi << 4u)) - 32.0;
}
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 110u;
    let sub = s % 8u;
    let d = f16_at(b + 108u);
    let d0 = d * q3k_scale(b, 2u * sub);
    let d1 = d * q3k_scale(b, 2u * sub + 1u);
    let q = b + 32u + 32u * (sub / 4u);
    let shift = 2u * (sub % 4u);
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(q + 4u * i) >> shift;
        let h = word_at(b + 4u * i) >> sub;
        let dl = select(d0, d1, i >= 4u);
        for (var k = 0u; k < 4u; k++) {
            let code = ((v >> (8u * k)) & 3u) | (((h >> (8u * k)) & 1u) << 2u);
            (*out)[4u * i + k] = dl * (f32(code) - 4.0);
        }
    }
}
