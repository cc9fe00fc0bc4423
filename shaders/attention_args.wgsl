// The uniform, bindings 0-6 and key / value reads that attention.wgsl and
// attention_prefill.wgsl share (src/gpu/kernels/attention.rs: AttentionParams mirrors
// Params, filled from AttnArgs). Joined after the kv_t prelude, before either body.
//   0 p: uniform Params
//   1 q: [n_tok, n_head * hd] f32
//   2 kc, 3 vc: [n_tok, n_kv * hd] f32   the chunk's keys and values
//   4 ck, 5 cv: [capacity, n_kv * hd] kv_t  the cache before this chunk: position j
//                                        in slot j mod capacity
//   6 o: [n_tok, n_head * hd] f32
// Keys a query at position P sees: [max(oldest, P + 1 - window), P] (window 0: no
// window); n_split, chunk: split-K decode's splits and keys per split.
struct Params {
    n_tok: u32, n_head: u32, n_kv: u32, hd: u32,
    pos: u32, capacity: u32, window: u32, oldest: u32,
    scale: f32, n_split: u32, chunk: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read> ck: array<kv_t>;
@group(0) @binding(5) var<storage, read> cv: array<kv_t>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;

// Key (value) element `off` of position j: row j - pos of the chunk, or an older
// position's cache slot.
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

// Oldest key the query at position P sees.
fn first_key(P: u32) -> u32 {
    var lo = p.oldest;
    if (p.window > 0u && P + 1u > p.window) { lo = max(lo, P + 1u - p.window); }
    return lo;
}
