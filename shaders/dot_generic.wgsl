// Any type: expand sub-block `s` with its dequant_sub, then dot with x[xo .. xo + n].
fn dot_sub(row: u32, s: u32, n: u32, xo: u32) -> f32 {
    var wv: array<f32, 32>;
    dequant_sub(row, s, n, &wv);
    var acc = 0.0;
    for (var j = 0u; j < n; j++) { acc += wv[j] * x[xo + j]; }
    return acc;
}
