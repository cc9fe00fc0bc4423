// Tiled causal sliding-window GQA attention of a chunk of queries (prefill) over the
// rolling cache plus the chunk's own keys: the same masks and sums as attention.wgsl
// `main` (src/cpu/attention.rs is the CPU twin), but a key or value row is read from
// global memory once per tile of R query rows instead of once per query row.
// Joined after a prelude that defines kv_t (f32, or f16 with `enable f16;`) and
// attention_args.wgsl (Params, bindings 0-6, k_at / v_at / first_key).
//   0 p: uniform Params (attention_args.wgsl)
//   1 q: [n_tok, n_head * hd] f32
//   2 kc, 3 vc: [n_tok, n_kv * hd] f32      the chunk's keys and values
//   4 ck, 5 cv: [capacity, n_kv * hd] kv_t  the cache before this chunk: position j
//                                           in slot j mod capacity
//   6 o: [n_tok, n_head * hd] f32
//
// Rows: the n_tok · group query rows of KV head g (group = n_head / n_kv) in the order
// row = i · group + (h - g · group), so a tile of R consecutive rows is every head of
// the group at a few consecutive positions (flash-attention 2's blocking, Dao 2023,
// with GQA's shared heads folded into the rows as src/cpu/attention.rs's CPU tiles do).
// Workgroup (tile, g): the tile's queries sit in workgroup
// memory; keys, then values, come through it TK at a time, TK · hd <= KV floats;
// each row folds them into a running max / sum / output (online softmax, Milakov &
// Gimelshein 2018) with its own causal and window mask, as attention.wgsl's `fold`.
// Workgroup memory: (R · HD_MAX + KV + R · TK_MAX) · 4 = 13 312 bytes, under
// WebGPU's default maxComputeWorkgroupStorageSize of 16 384.

// Query rows per workgroup and threads per row (R · LANES = the workgroup size).
const R: u32 = 16u;
const LANES: u32 = 8u;
const THREADS: u32 = 128u;
// Largest head_dim taken (Mistral's 128): a thread owns dims lane + LANES · c.
const HD_MAX: u32 = 128u;
const DIMS: u32 = 16u; // HD_MAX / LANES
// Floats of one key (or value) tile, and most keys per tile (TK = min(TK_MAX, KV / hd):
// 8 at hd 128, 16 at hd 64).
const KV: u32 = 1024u;
const TK_MAX: u32 = 16u;
// Score of a masked key: below any real score, and exp(MASKED - m) is 0.
const MASKED: f32 = -3.0e38;

var<workgroup> qs: array<f32, 2048>; // R · HD_MAX
var<workgroup> kv: array<f32, KV>;
var<workgroup> sc: array<f32, 256>; // R · TK_MAX

// Offset in q / o of tile row `row` (all rows < n_tok · group) of KV head g.
fn q_off(row: u32, g: u32, group: u32) -> u32 {
    return ((row / group) * p.n_head + g * group + row % group) * p.hd;
}

// Keys (values when `val`) t0 .. t0 + n of KV head g into kv, zero past n.
fn load_tile(t0: u32, n: u32, tk: u32, g: u32, val: bool, li: u32) {
    let hd = p.hd;
    for (var e = li; e < tk * hd; e += THREADS) {
        let u = e / hd;
        var x = 0.0;
        if (u < n) {
            if (val) { x = v_at(t0 + u, g * hd + e % hd); } else { x = k_at(t0 + u, g * hd + e % hd); }
        }
        kv[e] = x;
    }
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let group = p.n_head / p.n_kv;
    let rows = p.n_tok * group;
    let row0 = wg.x * R;
    let g = wg.y;
    if (g >= p.n_kv || row0 >= rows) { return; }
    let hd = p.hd;
    let tk = min(TK_MAX, KV / hd);
    let r = li / LANES;
    let lane = li % LANES;
    let row = row0 + r;
    let live = row < rows;

    for (var e = li; e < R * hd; e += THREADS) {
        let rr = row0 + e / hd;
        var x = 0.0;
        if (rr < rows) { x = q[q_off(rr, g, group) + e % hd]; }
        qs[e] = x;
    }
    // Keys any row of the tile sees: from the first row's oldest to the last row's
    // own position; rows past the chunk's end see none.
    let last = min(row0 + R, rows) - 1u;
    let lo = first_key(p.pos + row0 / group);
    let hi = p.pos + last / group + 1u;
    var my_lo = 0u;
    var my_hi = 0u;
    if (live) {
        my_lo = first_key(p.pos + row / group);
        my_hi = p.pos + row / group + 1u;
    }

    var m = MASKED;
    var l = 0.0;
    var acc: array<f32, DIMS>;
    for (var t0 = lo; t0 < hi; t0 += tk) {
        let n = min(tk, hi - t0);
        load_tile(t0, n, tk, g, false, li);
        workgroupBarrier();
        for (var u = lane; u < tk; u += LANES) {
            let j = t0 + u;
            var s = MASKED;
            if (j >= my_lo && j < my_hi) {
                var d = 0.0;
                for (var c = 0u; c < hd; c++) { d += qs[r * hd + c] * kv[u * hd + c]; }
                s = d * p.scale;
            }
            sc[r * TK_MAX + u] = s;
        }
        workgroupBarrier();
        load_tile(t0, n, tk, g, true, li);
        workgroupBarrier();
        var mt = m;
        for (var u = 0u; u < n; u++) { mt = max(mt, sc[r * TK_MAX + u]); }
        let corr = exp(m - mt);
        l *= corr;
        for (var c = 0u; c < DIMS; c++) { acc[c] *= corr; }
        for (var u = 0u; u < n; u++) {
            let s = sc[r * TK_MAX + u];
            // A masked key weighs 0 even while the row has seen no key (mt = MASKED).
            if (s > MASKED) {
                let e = exp(s - mt);
                l += e;
                for (var c = 0u; c < DIMS; c++) {
                    let dd = lane + LANES * c;
                    if (dd < hd) { acc[c] += e * kv[u * hd + dd]; }
                }
            }
        }
        m = mt;
        workgroupBarrier();
    }
    if (live) {
        let qo = q_off(row, g, group);
        for (var c = 0u; c < DIMS; c++) {
            let dd = lane + LANES * c;
            if (dd < hd) { o[qo + dd] = acc[c] / l; }
        }
    }
}
