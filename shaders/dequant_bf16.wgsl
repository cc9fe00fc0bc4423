// BF16 rows: the top 16 bits of an f32.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    for (var j = 0u; j < 32u; j++) {
        (*out)[j] = select(0.0, bitcast<f32>(u16_at(row + (s * 32u + j) * 2u) << 16u), j < n);
    }
}
