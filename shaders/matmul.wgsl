// y[t, out_row0 + r] = sum_k W[r, k] * x[t, k] for the rows of one weight part.
// Joined after bytes.wgsl and one dequant_<type>.wgsl, which defines dequant_sub.
//   p                 uniform Params
//   w: [part bytes / 4] u32    GGUF blocks as stored, rows of p.row_bytes from byte p.w_off
//   x: [n_tok, p.x_stride] f32 activations (the first p.n_in of each row are used)
//   y: [n_tok, p.y_stride] f32 output, columns out_row0 .. out_row0 + n_out
//   ids: [n_tok * k] u32       (main_id only) expert chosen per (token, slot)
// main: workgroup (row, tile of TT tokens): each weight sub-block is dequantized once
// and used for TT tokens, so prefill reads the weights ceil(n_tok / TT) times.
// main_id: workgroup (row, token·k + slot), expert rows at p.w_off + id * p.expert_bytes.
struct Params {
    n_in: u32, n_out: u32, n_tok: u32, row_bytes: u32,
    w_off: u32, out_row0: u32, x_stride: u32, y_stride: u32,
    k: u32, expert_bytes: u32, x_per_slot: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> ids: array<u32>;

const WG: u32 = 64u;
const TT: u32 = 8u;
var<workgroup> red: array<array<f32, 8>, 64>;

fn row_dot(row: u32, xrow: u32, li: u32) -> f32 {
    var wv: array<f32, 32>;
    var acc = 0.0;
    let n_sub = (p.n_in + 31u) / 32u;
    for (var s = li; s < n_sub; s += WG) {
        let n = min(32u, p.n_in - s * 32u);
        dequant_sub(row, s, n, &wv);
        let xo = xrow + s * 32u;
        for (var j = 0u; j < n; j++) { acc += wv[j] * x[xo + j]; }
    }
    return acc;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let r = wg.x + wg.y * nw.x;
    if (r >= p.n_out) { return; }
    let t0 = wg.z * TT;
    let row = p.w_off + r * p.row_bytes;
    var acc: array<f32, 8>;
    var wv: array<f32, 32>;
    let n_sub = (p.n_in + 31u) / 32u;
    for (var s = li; s < n_sub; s += WG) {
        let n = min(32u, p.n_in - s * 32u);
        dequant_sub(row, s, n, &wv);
        for (var t = 0u; t < TT; t++) {
            if (t0 + t < p.n_tok) {
                let xo = (t0 + t) * p.x_stride + s * 32u;
                var a = 0.0;
                for (var j = 0u; j < n; j++) { a += wv[j] * x[xo + j]; }
                acc[t] += a;
            }
        }
    }
    for (var t = 0u; t < TT; t++) { red[li][t] = acc[t]; }
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (li < h) {
            for (var t = 0u; t < TT; t++) { red[li][t] += red[li + h][t]; }
        }
        workgroupBarrier();
    }
    if (li < TT && t0 + li < p.n_tok) {
        y[(t0 + li) * p.y_stride + p.out_row0 + r] = red[0][li];
    }
}

@compute @workgroup_size(64)
fn main_id(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let r = wg.x + wg.y * nw.x;
    if (r >= p.n_out) { return; }
    let z = wg.z; // token * k + slot
    let e = ids[z];
    let row = p.w_off + e * p.expert_bytes + r * p.row_bytes;
    let xr = select(z / p.k, z, p.x_per_slot == 1u);
    let a = row_dot(row, xr * p.x_stride, li);
    red[li][0] = a;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (li < h) { red[li][0] += red[li + h][0]; }
        workgroupBarrier();
    }
    if (li == 0u) { y[z * p.y_stride + p.out_row0 + r] = red[0][0]; }
}
