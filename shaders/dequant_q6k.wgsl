// ggml block_q6_K (210 B per 256): ql[128] low nibbles, qh[64] 2-bit highs, int8
// scales[16] (one per 16 elements), f16 d at 208. Two halves of 128; within a half,
// group g (0..4) of 32 takes ql[l + 32(g&1)] (low nibble for g<2, high for g>=2),
// bits 2g..2g+2 of qh[l], and scale 2g + l/16; x = d * scale * (q - 32).
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    let b = row + (s / 8u) * 210u;
    let sub = s % 8u;
    let half = sub / 4u;
    let g = sub % 4u;
    let d = f16_at(b + 208u);
    let ql = b + 64u * half + 32u * (g & 1u);
    let qh = b + 128u + 32u * half;
    let sc = b + 192u + 8u * half + 2u * g;
    let s0 = d * i8_of(byte_at(sc));
    let s1 = d * i8_of(byte_at(sc + 1u));
    let shift = 4u * (g / 2u);
    for (var i = 0u; i < 8u; i++) {
        let lo = word_at(ql + 4u * i) >> shift;
        let hi = word_at(qh + 4u * i) >> (2u * g);
        let scale = select(s0, s1, i >= 4u);
        for (var k = 0u; k < 4u; k++) {
            let q = ((lo >> (8u * k)) & 15u) | (((hi >> (8u * k)) & 3u) << 4u);
            (*out)[4u * i + k] = scale * (f32(q) - 32.0);
        }
    }
}
