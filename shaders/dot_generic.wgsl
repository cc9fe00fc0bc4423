// Any type: expand sub-block `s` with its dequant_sub and dot elements 4i .. 4i+4
// (those below n) with the matvec's input from xo (`xin`: x, or x·g where the RMSNorm
// is fused). Eight times the decoding work of a fused dot4, so
// only the rarer types (F32/F16/BF16 rows, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL,
// IQ4_XS) come here.
fn dot4(row: u32, s: u32, i: u32, xo: u32) -> f32 {
    let n = min(32u, p.n_in - s * 32u);
    var wv: array<f32, 32>;
    dequant_sub(row, s, n, &wv);
    let xv = xin(xo);
    var acc = 0.0;
    for (var k = 0u; k < 4u; k++) {
        if (4u * i + k < n) { acc += wv[4u * i + k] * xv[k]; }
    }
    return acc;
}
