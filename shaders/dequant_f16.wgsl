// F16 rows (IEEE half, 2 bytes each).
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    for (var j = 0u; j < 32u; j++) {
        (*out)[j] = select(0.0, f16_at(row + (s * 32u + j) * 2u), j < n);
    }
}
