// Writes a chunk's K and V rows into their rolling-cache slots (src/cpu/cache.rs): row i
// of the chunk is position pos + i, slot (pos + i) mod capacity; a chunk longer than
// the cache keeps only its last `capacity` rows (from row `first`). A kernel rather
// than buffer copies so the step stays one compute pass and an f16 cache can convert.
// Joined after a prelude that defines kv_t (f32, or f16 with `enable f16;`).
//   0 p: uniform Params
//   1 k, 2 v: [n, kvd] f32             the chunk's keys and values
//   3 ck, 4 cv: [capacity, kvd] kv_t   the cache, read_write
struct Params { n: u32, kvd: u32, pos: u32, capacity: u32, first: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> ck: array<kv_t>;
@group(0) @binding(4) var<storage, read_write> cv: array<kv_t>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let e = gid.x + gid.y * nw.x * 64u;
    if (e >= (p.n - p.first) * p.kvd) { return; }
    let i = p.first + e / p.kvd;
    let c = e % p.kvd;
    let dst = ((p.pos + i) % p.capacity) * p.kvd + c;
    ck[dst] = kv_t(k[i * p.kvd + c]);
    cv[dst] = kv_t(v[i * p.kvd + c]);
}
