// Sampling on the GPU, so a decode step reads back 4 bytes (the token id).
//   argmax: index of the largest logit of one row (first index on ties, as
//           src/model/sampling.rs argmax).
//   sample: temperature + top-k + top-p (nucleus) with a seeded draw, one workgroup.
//   0 p: uniform Params (argmax reads n and row_off only)
//   1 logits: [.., n] f32   the row at row_off
//   2 out: [1] u32          the token id
//
// `sample` works in integers after one exp per logit, so its choice does not depend
// on the order of any float sum (atomics add in any order): each finite logit l gets
// the weight q = floor(exp((l - max) * inv_t) * scale), with scale < 2^32 / (n + 1) so
// every sum fits in a u32. Tokens are ordered by logit descending, then by index
// ascending (the CPU's stable sort). Top-k, top-p and the draw are three searches of
// the same kind: the position in that order where the running weight first reaches a
// goal. A search is a radix select: four passes over the logits' order-preserving
// u32 keys, 8 bits at a time (histograms in workgroup atomics, walked by one thread),
// then, only when it lands inside a run of equal logits, three passes over the 24-bit
// token index to find which of them. The random number is a counter-based hash of
// (seed, step): src/gpu/sample.rs has the identical hash and a sort-based twin.
struct Params {
    n: u32, row_off: u32,
    // sample only:
    top_k: u32,       // 0 = all
    top_p: u32,       // top_p · 2^32 (0xffffffff = off)
    inv_t: f32,       // 1 / temperature
    scale: u32,       // weight of the largest logit
    seed_lo: u32, seed_hi: u32,
    step: u32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;

@compute @workgroup_size(256)
fn argmax(@builtin(local_invocation_index) li: u32) {
    var v = -3.4e38;
    var idx = 0xffffffffu;
    for (var i = li; i < p.n; i += 256u) {
        let x = logits[p.row_off + i];
        if (idx == 0xffffffffu || x > v) { v = x; idx = i; }
    }
    bv[li] = v;
    bi[li] = idx;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h >>= 1u) {
        if (li < h) {
            let ov = bv[li + h];
            let oi = bi[li + h];
            if (oi != 0xffffffffu && (bi[li] == 0xffffffffu || ov > bv[li] || (ov == bv[li] && oi < bi[li]))) {
                bv[li] = ov;
                bi[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) { out[0] = bi[0]; }
}

// ---- sample ----

var<workgroup> hw: array<atomic<u32>, 256>; // weight per bin
var<workgroup> hc: array<atomic<u32>, 256>; // tokens per bin
var<workgroup> a_max: atomic<u32>;          // key of the largest finite logit
var<workgroup> a_sum: atomic<u32>;          // finite logits / total weight
// Thread 0's results, read back by all through workgroupUniformLoad (which keeps the
// control flow around the barriers uniform).
var<workgroup> r_a: u32;
var<workgroup> r_b: u32;
var<workgroup> r_c: u32;
var<workgroup> r_d: u32;

// PCG's output permutation as a hash (same constants in src/gpu/sample.rs).
fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

// High 32 bits of the 64-bit product a · b (WGSL has no u64).
fn mulhi(a: u32, b: u32) -> u32 {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let m1 = a1 * b0;
    let m2 = a0 * b1;
    let mid = ((a0 * b0) >> 16u) + (m1 & 0xffffu) + (m2 & 0xffffu);
    return a1 * b1 + (m1 >> 16u) + (m2 >> 16u) + (mid >> 16u);
}

// Order-preserving key of a float (larger float, larger key; -0 below +0 as Rust's
// total_cmp); 0 for a non-finite logit, which is never a candidate (the CPU sampler
// drops those too).
fn key_of(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if ((b & 0x7f800000u) == 0x7f800000u) { return 0u; }
    if ((b & 0x80000000u) != 0u) { return ~b; }
    return b | 0x80000000u;
}
fn float_of(k: u32) -> f32 {
    if ((k & 0x80000000u) != 0u) { return bitcast<f32>(k & 0x7fffffffu); }
    return bitcast<f32>(~k);
}

fn weight_of(x: f32, mx: f32) -> u32 {
    return u32(floor(exp((x - mx) * p.inv_t) * f32(p.scale)));
}

// Whether token (k, i) is finite and at or before the boundary (bk, bi) of the order
// (bk = 0: every finite token).
fn inside(k: u32, i: u32, bk: u32, bi_: u32) -> bool {
    return k != 0u && (k > bk || (k == bk && i <= bi_));
}

// Total weight of the tokens inside (bk, bi).
fn total(li: u32, mx: f32, bk: u32, bi_: u32) -> u32 {
    if (li == 0u) { atomicStore(&a_sum, 0u); }
    workgroupBarrier();
    var s = 0u;
    for (var i = li; i < p.n; i += 256u) {
        let x = logits[p.row_off + i];
        if (inside(key_of(x), i, bk, bi_)) { s += weight_of(x, mx); }
    }
    atomicAdd(&a_sum, s);
    workgroupBarrier();
    if (li == 0u) { r_a = atomicLoad(&a_sum); }
    return workgroupUniformLoad(&r_a);
}

// The first token, in the order, among those inside (bk, bi), at which the running
// weight (1 per token, or q when `mass`) reaches `goal` (>= 1, <= the total).
// Returns its (key, index); the index is 0xffffffff ("the whole run of that key")
// when the token is the last of its run of equal logits and `exact` is false.
fn locate(li: u32, mx: f32, bk: u32, bi_: u32, mass: bool, goal: u32, exact: bool) -> vec2<u32> {
    var prefix = 0u;
    var mask = 0u;
    var before = 0u; // weight of the tokens before the current prefix's range
    var bin_w = 0u;
    var bin_c = 0u;
    for (var ps = 0u; ps < 4u; ps++) {
        let shift = 24u - 8u * ps;
        atomicStore(&hw[li], 0u);
        atomicStore(&hc[li], 0u);
        workgroupBarrier();
        for (var i = li; i < p.n; i += 256u) {
            let x = logits[p.row_off + i];
            let k = key_of(x);
            if (inside(k, i, bk, bi_) && (k & mask) == prefix) {
                let b = (k >> shift) & 255u;
                var w = 1u;
                if (mass) { w = weight_of(x, mx); }
                atomicAdd(&hw[b], w);
                atomicAdd(&hc[b], 1u);
            }
        }
        workgroupBarrier();
        if (li == 0u) {
            // Descending keys: bin 255 first.
            var acc = before;
            var chosen = 0u;
            for (var bb = 0u; bb < 256u; bb++) {
                let b = 255u - bb;
                let h = atomicLoad(&hw[b]);
                if (h > 0u && acc + h >= goal) { chosen = b; break; }
                acc += h;
            }
            r_a = chosen;
            r_b = acc;
            r_c = atomicLoad(&hw[chosen]);
            r_d = atomicLoad(&hc[chosen]);
        }
        let chosen = workgroupUniformLoad(&r_a);
        before = workgroupUniformLoad(&r_b);
        bin_w = workgroupUniformLoad(&r_c);
        bin_c = workgroupUniformLoad(&r_d);
        prefix |= chosen << shift;
        mask |= 255u << shift;
    }
    // Equal logits have equal weights: how many of the run are needed.
    let each = bin_w / max(bin_c, 1u);
    let need = (goal - before + each - 1u) / max(each, 1u);
    if (need >= bin_c && !exact) { return vec2<u32>(prefix, 0xffffffffu); }
    // Which of the run: the need-th smallest index among those with this key.
    var iprefix = 0u;
    var imask = 0u;
    var ibefore = 0u;
    for (var ps = 0u; ps < 3u; ps++) {
        let shift = 16u - 8u * ps;
        atomicStore(&hc[li], 0u);
        workgroupBarrier();
        for (var i = li; i < p.n; i += 256u) {
            let k = key_of(logits[p.row_off + i]);
            if (k == prefix && inside(k, i, bk, bi_) && (i & imask) == iprefix) {
                atomicAdd(&hc[(i >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (li == 0u) {
            var acc = ibefore;
            var chosen = 0u;
            for (var b = 0u; b < 256u; b++) {
                let h = atomicLoad(&hc[b]);
                if (h > 0u && acc + h >= need) { chosen = b; break; }
                acc += h;
            }
            r_a = chosen;
            r_b = acc;
        }
        let chosen = workgroupUniformLoad(&r_a);
        ibefore = workgroupUniformLoad(&r_b);
        iprefix |= chosen << shift;
        imask |= 255u << shift;
    }
    return vec2<u32>(prefix, iprefix);
}

@compute @workgroup_size(256)
fn sample(@builtin(local_invocation_index) li: u32) {
    if (li == 0u) {
        atomicStore(&a_max, 0u);
        atomicStore(&a_sum, 0u);
    }
    workgroupBarrier();
    var mk = 0u;
    var cnt = 0u;
    for (var i = li; i < p.n; i += 256u) {
        let k = key_of(logits[p.row_off + i]);
        mk = max(mk, k);
        if (k != 0u) { cnt += 1u; }
    }
    atomicMax(&a_max, mk);
    atomicAdd(&a_sum, cnt);
    workgroupBarrier();
    if (li == 0u) {
        r_a = atomicLoad(&a_max);
        r_b = atomicLoad(&a_sum);
    }
    let max_key = workgroupUniformLoad(&r_a);
    let n_fin = workgroupUniformLoad(&r_b);
    if (n_fin == 0u) {
        // No finite logit: token 0, as the CPU's argmax of such a row.
        if (li == 0u) { out[0] = 0u; }
        return;
    }
    let mx = float_of(max_key);
    var bk = 0u;
    var bi_ = 0u;
    if (p.top_k > 0u && p.top_k < n_fin) {
        let b = locate(li, mx, 0u, 0u, false, p.top_k, false);
        bk = b.x;
        bi_ = b.y;
    }
    if (p.top_p != 0xffffffffu) {
        let m1 = total(li, mx, bk, bi_);
        // ceil(top_p · m1): the nucleus is the shortest prefix holding that much.
        var need = mulhi(p.top_p, m1);
        if (p.top_p * m1 != 0u) { need += 1u; }
        let b = locate(li, mx, bk, bi_, true, max(need, 1u), false);
        bk = b.x;
        bi_ = b.y;
    }
    let m2 = total(li, mx, bk, bi_);
    let h = pcg(pcg(pcg(p.step) ^ p.seed_lo) ^ p.seed_hi);
    // The token whose weight interval [before, before + q) holds h · m2 / 2^32.
    let b = locate(li, mx, bk, bi_, true, mulhi(h, m2) + 1u, true);
    if (li == 0u) { out[0] = b.y; }
}
