// Mixtral routing on the GPU (src/cpu/moe.rs): per token, the k largest router logits
// (ties: lower expert id first, as a stable sort) and the softmax over those k.
// combine: y[t, :] = sum_s wts[t, s] * down[t * k + s, :].
// group (prefill, for matmul.wgsl main_grouped): the (token, slot) entries z = t*k + s
//   by expert, z ascending within one (src/cpu/moe.rs group_by_expert is the twin).
//   0 p: uniform Params { n_tok, n_expert, k, n }
//   1 logits: [n_tok, n_expert] f32   (route)
//   2 ids: [n_tok, k] u32             (route writes, group reads; matmul main_id reads
//                                     them too, the CPU never does)
//   3 wts: [n_tok, k] f32             (route writes, combine reads)
//   4 down: [n_tok * k, n] f32        (combine) the experts' outputs
//   5 y: [n_tok, n] f32               (combine)
//   6 offsets: [n_expert + 1] u32     (group) offsets[e] = #entries with id < e
//   7 entries: [n_tok * k] u32        (group) expert e's z in entries[offsets[e] .. offsets[e + 1]]
struct Params { n_tok: u32, n_expert: u32, k: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> wts: array<f32>;
@group(0) @binding(4) var<storage, read> down: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(7) var<storage, read_write> entries: array<u32>;

@compute @workgroup_size(64)
fn route(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= p.n_tok) { return; }
    let base = t * p.n_expert;
    var taken = 0u; // bitmask of chosen experts (n_expert <= 32, checked on the CPU)
    for (var s = 0u; s < p.k; s++) {
        var best = 0u;
        var bv = -3.4e38;
        var found = false;
        for (var e = 0u; e < p.n_expert; e++) {
            let v = logits[base + e];
            if (((taken >> e) & 1u) == 0u && (!found || v > bv)) { best = e; bv = v; found = true; }
        }
        taken |= 1u << best;
        ids[t * p.k + s] = best;
        wts[t * p.k + s] = bv;
    }
    // The first pick is the max, so exp(v - max) never overflows.
    let mx = wts[t * p.k];
    var sum = 0.0;
    for (var s = 0u; s < p.k; s++) { let e = exp(wts[t * p.k + s] - mx); wts[t * p.k + s] = e; sum += e; }
    for (var s = 0u; s < p.k; s++) { wts[t * p.k + s] /= sum; }
}

@compute @workgroup_size(64)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= p.n_tok * p.n) { return; }
    let t = i / p.n;
    let c = i % p.n;
    var a = 0.0;
    for (var s = 0u; s < p.k; s++) { a += wts[t * p.k + s] * down[(t * p.k + s) * p.n + c]; }
    y[i] = a;
}

// One invocation per expert (and one more for the end offset), each scanning all
// n_tok * k ids twice: a prefill chunk's few thousand ids cost less than one
// dispatch's launch, and every invocation writes only its own expert's slice, so
// there are no atomics and the order within an expert is fixed.
@compute @workgroup_size(64)
fn group(@builtin(local_invocation_index) e: u32) {
    if (e > p.n_expert) { return; }
    let n = p.n_tok * p.k;
    var at = 0u;
    for (var z = 0u; z < n; z++) { if (ids[z] < e) { at++; } }
    offsets[e] = at;
    if (e == p.n_expert) { return; }
    for (var z = 0u; z < n; z++) {
        if (ids[z] == e) { entries[at] = z; at++; }
    }
}
