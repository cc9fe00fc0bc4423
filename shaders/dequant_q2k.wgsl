// ggml block_q2_K (84 B per 256): scales[16] at 0 (one byte per 16 elements: low nibble
// the scale, high nibble the min), qs[64] at 16 (2-bit codes), f16 d at 80, f16 dmin at
// 82. Sub-block `sub` = 4h + j (32 elements) takes bits 2j..2j+2 of bytes 16 + 32h + l
// and the scale bytes 2sub (elements 0..16) and 2sub+1 (16..32); x = d*sc*q - dmin*m.
// Layout and order: ggml `dequantize_row_q2_K`; CPU twin: format/quant.rs.
// In: w (the body's binding 1, [bytes / 4] u32, GGUF blocks as stored), the row at byte
// `row`; out: the 32 elements of sub-block s.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 84u;
    let sub = s % 8u;
    let dd = unpack2x16float(word_at(b + 80u));
    let sc = word_at(b + 2u * sub);
    let d0 = dd.x * f32(sc & 15u);
    let m0 = dd.y * f32((sc >> 4u) & 15u);
    let d1 = dd.x * f32((sc >> 8u) & 15u);
    let m1 = dd.y * f32((sc >> 12u) & 15u);
    let q = b + 16u + 32u * (sub / 4u);
    let shift = 2u * (sub % 4u);
    for (var i = 0u; i < 8u; i++) {
        let v = word_at(q + 4u * i) >> shift;
        let dl = select(d0, d1, i >= 4u);
        let ml = select(m0, m1, i >= 4u);
        for (var k = 0u; k < 4u; k++) {
            (*out)[4u * i + k] = dl * f32((v >> (8u * k)) & 3u) - ml;
        }
    }
}
