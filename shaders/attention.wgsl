// Causal sliding-window GQA attention of a chunk of queries over the rolling cache plus
// the chunk's own keys (src/cpu/attention.rs): query i at P = pos + i sees keys
// j in [max(oldest, P + 1 - W), P]; key j >= pos is row j - pos of the chunk, older
// keys sit in cache slot j mod capacity.
// Joined after a prelude that defines kv_t (f32, or f16 with `enable f16;`) and
// attention_args.wgsl (Params, bindings 0-6, k_at / v_at / first_key).
//   0 p: uniform Params (attention_args.wgsl)
//   1 q: [n_tok, n_head * hd] f32
//   2 kc, 3 vc: [n_tok, n_kv * hd] f32      the chunk's keys and values
//   4 ck, 5 cv: [capacity, n_kv * hd] kv_t  the cache before this chunk
//   6 o: [n_tok, n_head * hd] f32           (main, combine)
//   7 part: [n_head, n_split, hd + 2] f32   (split, combine) per split: hd
//                                           unnormalised outputs, max, sum
// Workgroup per (head, query): 64 keys per tile score in parallel, then an online
// softmax (running max and sum) folds the tile into per-thread output dims, so memory
// is O(hd) whatever the window.
// split / combine: per (head, split) the unnormalised output, then max and sum.
@group(0) @binding(7) var<storage, read_write> part: array<f32>;

var<workgroup> sc: array<f32, 64>;

struct Fold { m: f32, l: f32, acc: array<f32, 4> }

// Online softmax of query row qo against keys [start, end): running max m, sum l
// and unnormalised output dims li, li + 64, ... (hd <= 256).
fn fold(qo: u32, kvh: u32, start: u32, end: u32, li: u32) -> Fold {
    var f: Fold;
    f.m = -3.0e38;
    f.l = 0.0;
    for (var t0 = start; t0 < end; t0 += 64u) {
        let j = t0 + li;
        var s = -3.0e38;
        if (j < end) {
            var d = 0.0;
            for (var c = 0u; c < p.hd; c++) { d += q[qo + c] * k_at(j, kvh + c); }
            s = d * p.scale;
        }
        sc[li] = s;
        workgroupBarrier();
        let n = min(64u, end - t0);
        var mt = f.m;
        for (var u = 0u; u < n; u++) { mt = max(mt, sc[u]); }
        let corr = exp(f.m - mt);
        f.l *= corr;
        for (var c = 0u; c < 4u; c++) { f.acc[c] *= corr; }
        for (var u = 0u; u < n; u++) {
            let e = exp(sc[u] - mt);
            f.l += e;
            for (var c = 0u; c < 4u; c++) {
                let dd = li + 64u * c;
                if (dd < p.hd) { f.acc[c] += e * v_at(t0 + u, kvh + dd); }
            }
        }
        f.m = mt;
        workgroupBarrier();
    }
    return f;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    let i = wg.y;
    if (h >= p.n_head || i >= p.n_tok) { return; }
    let P = p.pos + i;
    let kvh = (h / (p.n_head / p.n_kv)) * p.hd;
    let qo = i * p.n_head * p.hd + h * p.hd;
    let f = fold(qo, kvh, first_key(P), P + 1u, li);
    for (var c = 0u; c < 4u; c++) {
        let dd = li + 64u * c;
        if (dd < p.hd) { o[qo + dd] = f.acc[c] / f.l; }
    }
}

// Split-K (flash-decoding) for one query (decode): workgroup (head, split) folds
// keys [first + split·chunk, +chunk) into part[(h·n_split + split)·(hd + 2) ..]:
// hd unnormalised outputs, then its max and sum; `combine` merges the splits.
@compute @workgroup_size(64)
fn split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    let sp = wg.y;
    if (h >= p.n_head || sp >= p.n_split) { return; }
    let P = p.pos;
    let kvh = (h / (p.n_head / p.n_kv)) * p.hd;
    let start = first_key(P) + sp * p.chunk;
    let end = min(P + 1u, start + p.chunk);
    let f = fold(h * p.hd, kvh, start, max(start, end), li);
    let base = (h * p.n_split + sp) * (p.hd + 2u);
    for (var c = 0u; c < 4u; c++) {
        let dd = li + 64u * c;
        if (dd < p.hd) { part[base + dd] = f.acc[c]; }
    }
    if (li == 0u) {
        part[base + p.hd] = f.m;
        part[base + p.hd + 1u] = f.l;
    }
}

// One workgroup per head: rescale every split to the common max and normalise.
@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wg.x;
    if (h >= p.n_head) { return; }
    let stride = p.hd + 2u;
    var mx = -3.0e38;
    for (var sp = 0u; sp < p.n_split; sp++) { mx = max(mx, part[(h * p.n_split + sp) * stride + p.hd]); }
    var l = 0.0;
    for (var sp = 0u; sp < p.n_split; sp++) {
        let b = (h * p.n_split + sp) * stride;
        l += part[b + p.hd + 1u] * exp(part[b + p.hd] - mx);
    }
    for (var dd = li; dd < p.hd; dd += 64u) {
        var a = 0.0;
        for (var sp = 0u; sp < p.n_split; sp++) {
            let b = (h * p.n_split + sp) * stride;
            a += part[b + dd] * exp(part[b + p.hd] - mx);
        }
        o[h * p.hd + dd] = a / l;
    }
}
