// Token embedding rows dequantized from the quantized table (one weight part).
//   0 p: uniform Params
//   1 w: [part bytes / 4] u32   the table's part: rows p.row0 .. p.row0 + p.rows, p.row_bytes each
//   2 tok: [n_tok] u32          token ids
//   3 y: [n_tok, p.n_in] f32
// Workgroup per token; tokens whose row lives in another part are skipped.
struct Params { n_in: u32, n_tok: u32, row_bytes: u32, row0: u32, rows: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> tok: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = wg.x;
    if (t >= p.n_tok) { return; }
    let id = tok[t];
    if (id < p.row0 || id >= p.row0 + p.rows) { return; }
    let row = (id - p.row0) * p.row_bytes;
    var v: array<f32, 32>;
    let n_sub = (p.n_in + 31u) / 32u;
    for (var s = li; s < n_sub; s += 64u) {
        let n = min(32u, p.n_in - s * 32u);
        dequant_sub(row, s, n, &v);
        for (var j = 0u; j < n; j++) { y[t * p.n_in + s * 32u + j] = v[j]; }
    }
}
