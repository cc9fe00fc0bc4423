// y[t, out_row0 + r] = sum_k W[r, k] * x[t, k] for the rows of one weight part.
// Joined after bytes.wgsl, one dequant_<type>.wgsl (which defines dequant_sub) and
// matmul_args.wgsl (Params, bindings 0-3).
//   0 p: uniform Params (matmul_args.wgsl)
//   1 w: [part bytes / 4] u32      GGUF blocks as stored, rows of p.row_bytes from byte p.w_off
//   2 x: [n_tok, p.x_stride] f32   activations (the first p.n_in of each row are used)
//   3 y: [n_tok, p.y_stride] f32   output, columns out_row0 .. out_row0 + n_out
//   4 ids: [n_tok * k] u32         (main_id only) expert chosen per (token, slot)
//   5 offsets: [n_expert + 1] u32  (main_grouped only) expert e's entries are
//                                  entries[offsets[e] .. offsets[e + 1]] (moe.wgsl group)
//   6 entries: [n_tok * k] u32     (main_grouped only) token * k + slot, grouped by expert
// main (prefill): workgroup of WG rows × TT tokens, one row per thread. The tokens'
// activations come through workgroup memory in chunks of KC; each weight sub-block is
// dequantized once and used for all TT tokens, so prefill reads the weights
// ceil(n_tok / TT) times, and no cross-thread reduction is needed.
// main_id (decode): workgroup (row, token·k + slot); the part holds experts
// [p.e0, p.e1) from byte p.w_off, p.expert_bytes each; ids outside it are left to the
// dispatch of the part that holds them, so every output row is written once.
// main_grouped (prefill, ggml's mul_mat_id idea of batching each expert's rows): as
// main, but a workgroup's TT tokens are up to TT of one expert's (token, slot)
// entries, gathered through `entries`: each expert's weights are read once per TT
// tokens routed to it rather than once per token. The grid is sized for the worst
// case the CPU can know without reading ids (every token picks the expert): z =
// (expert - e0) * p.tiles + tile; tiles past the expert's count return at once.
@group(0) @binding(4) var<storage, read> ids: array<u32>;
@group(0) @binding(5) var<storage, read> offsets: array<u32>;
@group(0) @binding(6) var<storage, read> entries: array<u32>;

const WG: u32 = 64u;
const TT: u32 = 8u;
const KC: u32 = 256u;
var<workgroup> red: array<f32, 64>;
var<workgroup> xs: array<f32, 2048>; // TT * KC
var<workgroup> xbase: array<u32, 8>; // TT: index in x of each tile token's row
var<workgroup> zs: array<u32, 8>; //    TT: main_grouped's token * k + slot per tile token

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

// acc[t] = (row at byte `row`) · x[xbase[t] ..][.. n_in] for the tile's nt tokens; every
// thread loads activations, only `live` ones (rows < n_out) multiply.
fn tile_dots(row: u32, live: bool, nt: u32, li: u32) -> array<f32, 8> {
    var acc: array<f32, 8>;
    var wv: array<f32, 32>;
    for (var k0 = 0u; k0 < p.n_in; k0 += KC) {
        for (var i = li; i < TT * KC; i += WG) {
            let t = i / KC;
            let k = k0 + i % KC;
            var v = 0.0;
            if (t < nt && k < p.n_in) { v = x[xbase[t] + k]; }
            xs[i] = v;
        }
        workgroupBarrier();
        if (live) {
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
    return acc;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * WG + li;
    let t0 = wg.z * TT;
    let nt = min(TT, p.n_tok - t0);
    if (li < TT) { xbase[li] = (t0 + li) * p.x_stride; }
    workgroupBarrier();
    let acc = tile_dots(p.w_off + r * p.row_bytes, r < p.n_out, nt, li);
    if (r < p.n_out) {
        for (var t = 0u; t < nt; t++) { y[(t0 + t) * p.y_stride + p.out_row0 + r] = acc[t]; }
    }
}

@compute @workgroup_size(64)
fn main_grouped(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
                @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * WG + li;
    let e = p.e0 + wg.z / p.tiles;
    let t0 = (wg.z % p.tiles) * TT;
    let first = offsets[e];
    let count = offsets[e + 1u] - first;
    // Uniform per workgroup (a read-only load at a uniform index), so the barriers
    // below stay in uniform control flow.
    if (t0 >= count) { return; }
    let nt = min(TT, count - t0);
    if (li < nt) {
        let z = entries[first + t0 + li];
        zs[li] = z;
        xbase[li] = select(z / p.k, z, p.x_per_slot == 1u) * p.x_stride;
    }
    workgroupBarrier();
    let acc = tile_dots(p.w_off + (e - p.e0) * p.expert_bytes + r * p.row_bytes, r < p.n_out, nt, li);
    if (r < p.n_out) {
        for (var t = 0u; t < nt; t++) { y[zs[t] * p.y_stride + p.out_row0 + r] = acc[t]; }
    }
}

@compute @workgroup_size(64)
fn main_id(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let r = wg.x + wg.y * nw.x;
    if (r >= p.n_out) { return; }
    let z = wg.z; // token * k + slot
    let e = ids[z];
    if (e < p.e0 || e >= p.e1) { return; }
    let row = p.w_off + (e - p.e0) * p.expert_bytes + r * p.row_bytes;
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
