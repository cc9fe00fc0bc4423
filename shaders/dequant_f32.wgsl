// F32 rows: 32-element "sub-block" s of the row starting at byte `row`; `n` = elements
// left in the row from s*32 (rows need not be a multiple of 32 for float types).
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    for (var j = 0u; j < 32u; j++) {
        (*out)[j] = select(0.0, bitcast<f32>(w[(row >> 2u) + s * 32u + j]), j < n);
    }
}
