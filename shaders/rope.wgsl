// Rotary embedding, llama.cpp NORM mode (src/cpu/rope.rs): within each head, pair
// (2i, 2i+1) of row r rotates by (pos + r) * inv_freq[i], for i < n_rot / 2.
//   0 p: uniform Params
//   1 x: [rows, n_heads * head_dim] f32   rotated in place
//   2 inv_freq: [n_pairs] f32             n_pairs = n_rot / 2
struct Params { rows: u32, n_heads: u32, head_dim: u32, n_pairs: u32, pos: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = gid.x + gid.y * nw.x * 64u;
    let per_row = p.n_heads * p.n_pairs;
    if (idx >= p.rows * per_row) { return; }
    let r = idx / per_row;
    let h = (idx % per_row) / p.n_pairs;
    let i = idx % p.n_pairs;
    let o = r * p.n_heads * p.head_dim + h * p.head_dim + 2u * i;
    let ang = f32(p.pos + r) * inv_freq[i];
    let c = cos(ang);
    let s = sin(ang);
    let a = x[o];
    let b = x[o + 1u];
    x[o] = a * c - b * s;
    x[o + 1u] = a * s + b * c;
}
