// F16 rows (IEEE half, 2 bytes each); `n` = elements left in the row from s*32.
// Pairs are read as one word; a lone last element by itself (its pair may lie past
// the buffer's end).
fn dequant_sub(row: u32, s: u32, n: u32, out: ptr<function, array<f32, 32>>) {
    for (var j = 0u; j < 16u; j++) {
        let o = row + (s * 32u + 2u * j) * 2u;
        var v = vec2<f32>(0.0, 0.0);
        if (2u * j + 1u < n) { v = unpack2x16float(word_at(o)); }
        else if (2u * j < n) { v.x = f16_at(o); }
        (*out)[2u * j] = v.x;
        (*out)[2u * j + 1u] = v.y;
    }
}
