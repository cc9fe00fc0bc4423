// RMSNorm per row: y = x / sqrt(mean(x^2) + eps) * g (src/cpu/ops.rs rms_norm).
//   0 p: uniform Params { n, rows, eps }
//   1 x: [rows, n] f32            (main, main_add)
//   2 g: [n] f32
//   3 y: [rows, n] f32            (main: written; main_add: added into)
//   4 xy: [rows, n] f32           (main_inplace: normalized in place)
// main_add: y += norm(x) * g, gemma3's post-attention / post-FFN norm and the residual
// add in one dispatch (was rms_norm into a scratch buffer, a copy back, then add).
// main_inplace: qwen3/gemma3's per-head Q/K norm without a scratch buffer and a copy
// back (a copy ends the compute pass). In place is safe: each thread reads in the
// second loop exactly the elements it writes, and every read of the first loop is
// before the barrier.
struct Params { n: u32, rows: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> xy: array<f32>;
// 256 threads: a decode step normalizes one row, and with 64 threads each looped 64
// times over a 4096-wide row, waiting on every load (48 us on an H100).
const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// 1 / sqrt(mean(v^2) + eps) of the row's sum of squares `ss`, this thread's share:
// summed over the workgroup (all 256 threads call it).
fn inv_rms(ss: f32, li: u32) -> f32 {
    red[li] = ss;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (li < h) { red[li] += red[li + h]; }
        workgroupBarrier();
    }
    return inverseSqrt(red[0] / f32(p.n) + p.eps);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x;
    if (r >= p.rows) { return; }
    let o = r * p.n;
    var ss = 0.0;
    for (var i = li; i < p.n; i += WG) { ss += x[o + i] * x[o + i]; }
    let scale = inv_rms(ss, li);
    for (var i = li; i < p.n; i += WG) { y[o + i] = x[o + i] * scale * g[i]; }
}

@compute @workgroup_size(256)
fn main_add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x;
    if (r >= p.rows) { return; }
    let o = r * p.n;
    var ss = 0.0;
    for (var i = li; i < p.n; i += WG) { ss += x[o + i] * x[o + i]; }
    let scale = inv_rms(ss, li);
    for (var i = li; i < p.n; i += WG) { y[o + i] = y[o + i] + x[o + i] * scale * g[i]; }
}

@compute @workgroup_size(256)
fn main_inplace(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x;
    if (r >= p.rows) { return; }
    let o = r * p.n;
    var ss = 0.0;
    for (var i = li; i < p.n; i += WG) { ss += xy[o + i] * xy[o + i]; }
    let scale = inv_rms(ss, li);
    for (var i = li; i < p.n; i += WG) { xy[o + i] = xy[o + i] * scale * g[i]; }
}
