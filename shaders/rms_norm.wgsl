// RMSNorm per row: y = x / sqrt(mean(x^2) + eps) * g (src/cpu/ops.rs rms_norm).
//   0 p: uniform Params { n, rows, eps }
//   1 x: [rows, n] f32
//   2 g: [n] f32
//   3 y: [rows, n] f32
struct Params { n: u32, rows: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// 256 threads: a decode step normalizes one row, and with 64 threads each looped 64
// times over a 4096-wide row, waiting on every load (48 us on an H100).
const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = wg.x;
    if (r >= p.rows) { return; }
    let o = r * p.n;
    var ss = 0.0;
    for (var i = li; i < p.n; i += WG) { ss += x[o + i] * x[o + i]; }
    red[li] = ss;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (li < h) { red[li] += red[li + h]; }
        workgroupBarrier();
    }
    let scale = inverseSqrt(red[0] / f32(p.n) + p.eps);
    for (var i = li; i < p.n; i += WG) { y[o + i] = x[o + i] * scale * g[i]; }
}
