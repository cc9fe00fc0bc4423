// Rotary embedding (src/cpu/rope.rs): within each head, pair i of row r rotates by
// (pos + r) * inv_freq[i], for i < n_rot / 2. The pair is (2i, 2i+1) in llama.cpp's
// NORM mode (neox = 0) and (i, i + n_rot/2) in its NEOX mode (neox = 1: qwen2).
// cos and sin are multiplied by mscale (rope.scaling.attn_factor times YaRN's correction,
// 1 for most models) and, where temp_len > 0 (mistral3's query temperature, Q only, every
// dim rotated), by 1 + temp_beta * ln(1 + floor((pos + r) / temp_len)): main applies it
// to x (the caller passes it for Q only), main_qk to Q's pairs and never to K's.
//   0 p: uniform Params
//   1 x: [rows, n_heads * head_dim] f32     rotated in place (main; main_qk: Q)
//   2 inv_freq: [n_pairs] f32               n_pairs = n_rot / 2
//   3 xk: [rows, n_heads_k * head_dim] f32  (main_qk only) K, rotated in place
// main_qk: Q's and K's heads in one dispatch (one index space, Q's pairs first), one
// dispatch a layer less than rotating each. (Not yet: writing K into the KV cache here
// as ggml-vulkan's ROPE + SET_ROWS fusion does, ggml-org/llama.cpp#16769.)
struct Params { rows: u32, n_heads: u32, head_dim: u32, n_pairs: u32, pos: u32, neox: u32, mscale: f32, temp_len: u32, temp_beta: f32, n_heads_k: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> xk: array<f32>;

// Where pair `idx` of a tensor of `heads` heads per row sits: (offset of a, offset of
// b, angle, row).
struct Pair { oa: u32, ob: u32, ang: f32, r: u32 }

fn pair(idx: u32, heads: u32) -> Pair {
    let per_row = heads * p.n_pairs;
    let r = idx / per_row;
    let h = (idx % per_row) / p.n_pairs;
    let i = idx % p.n_pairs;
    let head = r * heads * p.head_dim + h * p.head_dim;
    var q: Pair;
    q.oa = head + 2u * i;
    q.ob = q.oa + 1u;
    if (p.neox != 0u) {
        q.oa = head + i;
        q.ob = q.oa + p.n_pairs;
    }
    q.ang = f32(p.pos + r) * inv_freq[i];
    q.r = r;
    return q;
}

// mscale times the query temperature of row r (1 where temp_len is 0).
fn tempered(r: u32) -> f32 {
    var m = p.mscale;
    if (p.temp_len != 0u) {
        m = m * (1.0 + p.temp_beta * log(f32((p.pos + r) / p.temp_len) + 1.0));
    }
    return m;
}

// (a, b) rotated by `ang`, times m.
fn rotate(a: f32, b: f32, ang: f32, m: f32) -> vec2<f32> {
    let c = cos(ang) * m;
    let s = sin(ang) * m;
    return vec2<f32>(a * c - b * s, a * s + b * c);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = gid.x + gid.y * nw.x * 64u;
    if (idx >= p.rows * p.n_heads * p.n_pairs) { return; }
    let q = pair(idx, p.n_heads);
    let v = rotate(x[q.oa], x[q.ob], q.ang, tempered(q.r));
    x[q.oa] = v.x;
    x[q.ob] = v.y;
}

@compute @workgroup_size(64)
fn main_qk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = gid.x + gid.y * nw.x * 64u;
    let nq = p.rows * p.n_heads * p.n_pairs;
    if (idx < nq) {
        let q = pair(idx, p.n_heads);
        let v = rotate(x[q.oa], x[q.ob], q.ang, tempered(q.r));
        x[q.oa] = v.x;
        x[q.ob] = v.y;
    } else if (idx < nq + p.rows * p.n_heads_k * p.n_pairs) {
        let k = pair(idx - nq, p.n_heads_k);
        let v = rotate(xk[k.oa], xk[k.ob], k.ang, p.mscale);
        xk[k.oa] = v.x;
        xk[k.ob] = v.y;
    }
}
