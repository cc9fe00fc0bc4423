// y[t, out_row0 + r] = sum_k W[r, k] * x[t, k] for the rows of one weight part.
// Joined after bytes.wgsl and one dequant_<type>.wgsl, which defines dequant_sub.
//   p                 uniform Params
//   w: [part bytes / 4] u32    GGUF blocks as stored, rows of p.row_bytes from byte p.w_off
//   x: [n_tok, p.x_stride] f32 activations (the first p.n_in of each row are used)
//   y: [n_tok, p.y_stride] f32 output, columns out_row0 .. out_row0 + n_out
//   ids: [n_tok * k] u32       (main_id only) expert chosen per (token, slot)
// main (prefill): workgroup of WG rows × TT tokens, one row per thread. The tokens'
// activations come through workgroup memory in chunks of KC; each weight sub-block is
// dequantized once and used for all TT tokens, so prefill reads the weights
// ceil(n_tok / TT) times, and no cross-thread reduction is needed.
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
const KC: u32 = 256u;
var<workgroup> red: array<f32, 64>;
var<workgroup> xs: array<f32, 2048>; // TT * KC

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
    let r = (wg.x + wg.y * nw.x) * WG + li;
    let t0 = wg.z * TT;
    let nt = min(TT, p.n_tok - t0);
    let row = p.w_off + r * p.row_bytes;
    var acc: array<f32, 8>;
    var wv: array<f32, 32>;
    for (var k0 = 0u; k0 < p.n_in; k0 += KC) {
        for (var i = li; i < TT * KC; i += WG) {
            let t = i / KC;
            let k = k0 + i % KC;
            var v = 0.0;
            if (t < nt && k < p.n_in) { v = x[(t0 + t) * p.x_stride + k]; }
            xs[i] = v;
        }
        workgroupBarrier();
        if (r < p.n_out) {
            let kn = min(KC, p.n_in - k0);
            for (var s = 0u; s * 32u < kn; s++) {
                let gs = k0 / 32u + s;
                dequant_sub(row, gs, min(32u, p.n_in - gs * 32u), &wv);
                for (var t = 0u; t < TT; t++) {
                    let xo = t * KC + s * 32u;
                    var a = 0.0;
                    for (var j = 0u; j < 32u; j += 4u) {
                        a += dot(vec4<f32>(wv[j], wv[j + 1u], wv[j + 2u], wv[j + 3u]),
                                 vec4<f32>(xs[xo + j], xs[xo + j + 1u], xs[xo + j + 2u], xs[xo + j + 3u]));
                    }
                    acc[t] += a;
                }
            }
        }
        workgroupBarrier();
    }
    if (r < p.n_out) {
        for (var t = 0u; t < nt; t++) { y[(t0 + t) * p.y_stride + p.out_row0 + r] = acc[t]; }
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
    red[li] = a;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (li < h) { red[li] += red[li + h]; }
        workgroupBarrier();
    }
    if (li == 0u) { y[z * p.y_stride + p.out_row0 + r] = red[0]; }
}

// main_rows: main's products without workgroup memory or barriers, for CPU adapters
// (GpuContext::row_per_thread; see matvec.wgsl's *_rows for why): a thread takes one
// row × TT tokens and reads the activations straight from x (on a CPU they are in
// cache after the first row). Each weight sub-block is still dequantized once per
// TT tokens.
@compute @workgroup_size(64)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * WG + li;
    if (r >= p.n_out) { return; }
    let t0 = wg.z * TT;
    let nt = min(TT, p.n_tok - t0);
    let row = p.w_off + r * p.row_bytes;
    var acc: array<f32, 8>;
    var wv: array<f32, 32>;
    let n_sub = (p.n_in + 31u) / 32u;
    for (var s = 0u; s < n_sub; s++) {
        let n = min(32u, p.n_in - s * 32u);
        dequant_sub(row, s, n, &wv);
        for (var t = 0u; t < nt; t++) {
            let xo = (t0 + t) * p.x_stride + s * 32u;
            var a = 0.0;
            for (var j = 0u; j < n; j++) { a += wv[j] * x[xo + j]; }
            acc[t] += a;
        }
    }
    for (var t = 0u; t < nt; t++) { y[(t0 + t) * p.y_stride + p.out_row0 + r] = acc[t]; }
}
