// BF16 rows: the top 16 bits of an f32; `n` = elements left in the row from s*32.
// Pairs are read as one word; a lone last element by itself.
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    for (var j = 0u; j < 16u; j++) {
        let o = row + (s * 32u + 2u * j) * 2u;
        var v = 0u;
        if (2u * j + 1u < n) { v = word_at(o); }
        else if (2u * j < n) { v = u16_at(o); }
        (*out)[2u * j] = bitcast<f32>(v << 16u);
        (*out)[2u * j + 1u] = bitcast<f32>(v & 0xffff0000u);
    }
}
