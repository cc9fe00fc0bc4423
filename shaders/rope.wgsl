// Rotary embedding (src/cpu/rope.rs): within each head, pair i of row r rotates by
// (pos + r) * inv_freq[i], for i < n_rot / 2. The pair is (2i, 2i+1) in llama.cpp's
// NORM mode (neox = 0) and (i, i + n_rot/2) in its NEOX mode (neox = 1: qwen2).
// cos and sin are multiplied by mscale (rope.scaling.attn_factor times YaRN's correction,
// 1 for most models) and, where temp_len > 0 (mistral3's query temperature, Q only, every
// dim rotated), by 1 + temp_beta * ln(1 + floor((pos + r) / temp_len)).
//   0 p: uniform Params
//   1 x: [rows, n_heads * head_dim] f32   rotated in place
//   2 inv_freq: [n_pairs] f32             n_pairs = n_rot / 2
struct Params { rows: u32, n_heads: u32, head_dim: u32, n_pairs: u32, pos: u32, neox: u32, mscale: f32, temp_len: u32, temp_beta: f32, pad0: u32, pad1: u32, pad2: u32 }
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
    let head = r * p.n_heads * p.head_dim + h * p.head_dim;
    var oa = head + 2u * i;
    var ob = oa + 1u;
    if (p.neox != 0u) {
        oa = head + i;
        ob = oa + p.n_pairs;
    }
    let ang = f32(p.pos + r) * inv_freq[i];
    var m = p.mscale;
    if (p.temp_len != 0u) {
        m = m * (1.0 + p.temp_beta * log(f32((p.pos + r) / p.temp_len) + 1.0));
    }
    let c = cos(ang) * m;
    let s = sin(ang) * m;
    let a = x[oa];
    let b = x[ob];
    x[oa] = a * c - b * s;
    x[ob] = a * s + b * c;
}
