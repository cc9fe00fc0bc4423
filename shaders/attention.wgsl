// Causal sliding-window GQA attention of a chunk of queries over the rolling cache plus
// the chunk's own keys (src/attention.rs): query i at P = pos + i sees keys
// j in [max(oldest, P + 1 - W), P]; key j >= pos is row j - pos of the chunk, older
// keys sit in cache slot j mod capacity.
//   p: uniform; q: [n_tok, n_head * hd] f32; kc, vc: [n_tok, n_kv * hd] f32 (chunk)
//   ck, cv: [capacity, n_kv * hd] kv_t (cache, before this chunk); o: [n_tok, n_head * hd]
// Joined after a prelude that defines kv_t (f32, or f16 with `enable f16;`).
// Workgroup per (head, query): 64 keys per tile score in parallel, then an online
// softmax (running max and sum) folds the tile into per-thread output dims, so memory
// is O(hd) whatever the window.
struct Params {
    n_tok: u32, n_head: u32, n_kv: u32, hd: u32,
    pos: u32, capacity: u32, window: u32, oldest: u32,
    scale: f32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read> ck: array<kv_t>;
@group(0) @binding(5) var<storage, read> cv: array<kv_t>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;

var<workgroup> sc: array<f32, 64>;

fn k_at(j: u32, off: u32) -> f32 {
    let kvd = p.n_kv * p.hd;
    if (j >= p.pos) { return kc[(j - p.pos) * kvd + off]; }
    return f32(ck[(j % p.capacity) * kvd + off]);
}
fn v_at(j: u32, off: u32) -> f32 {
    let kvd = p.n_kv * p.hd;
    if (j >= p.pos) { return vc[(j - p.pos) * kvd + off]; }
    return f32(cv[(j % p.capacity) * kvd + off]);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    let i = wg.y;
    if (h >= p.n_head || i >= p.n_tok) { return; }
    let P = p.pos + i;
    var lo = p.oldest;
    if (p.window > 0u && P + 1u > p.window) { lo = max(lo, P + 1u - p.window); }
    let kvh = (h / (p.n_head / p.n_kv)) * p.hd;
    let qo = i * p.n_head * p.hd + h * p.hd;
    var m = -3.0e38;
    var l = 0.0;
    var acc: array<f32, 4>; // output dims li, li + 64, ... (hd <= 256)
    for (var t0 = lo; t0 <= P; t0 += 64u) {
        let j = t0 + li;
        var s = -3.0e38;
        if (j <= P) {
            var d = 0.0;
            for (var c = 0u; c < p.hd; c++) { d += q[qo + c] * k_at(j, kvh + c); }
            s = d * p.scale;
        }
        sc[li] = s;
        workgroupBarrier();
        let n = min(64u, P + 1u - t0);
        var mt = m;
        for (var u = 0u; u < n; u++) { mt = max(mt, sc[u]); }
        let corr = exp(m - mt);
        l *= corr;
        for (var c = 0u; c < 4u; c++) { acc[c] *= corr; }
        for (var u = 0u; u < n; u++) {
            let e = exp(sc[u] - mt);
            l += e;
            for (var c = 0u; c < 4u; c++) {
                let dd = li + 64u * c;
                if (dd < p.hd) { acc[c] += e * v_at(t0 + u, kvh + dd); }
            }
        }
        m = mt;
        workgroupBarrier();
    }
    for (var c = 0u; c < 4u; c++) {
        let dd = li + 64u * c;
        if (dd < p.hd) { o[qo + dd] = acc[c] / l; }
    }
}
