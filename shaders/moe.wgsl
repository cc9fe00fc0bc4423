// Mixtral routing on the GPU (src/moe.rs): per token, the k largest router logits
// (ties: lower expert id first, as a stable sort) and the softmax over those k.
//   p: uniform { n_tok, n_expert, k }; logits: [n_tok, n_expert] f32
//   ids: [n_tok, k] u32 (read by matmul main_id, never by the CPU); wts: [n_tok, k] f32
// combine: y[t, :] = sum_s wts[t, s] * down[t * k + s, :]    (down: [n_tok * k, n])
struct Params { n_tok: u32, n_expert: u32, k: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> wts: array<f32>;
@group(0) @binding(4) var<storage, read> down: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

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
