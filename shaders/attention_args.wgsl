// The uniform and bindings 0-6 that attention.wgsl and attention_prefill.wgsl share
// (src/gpu/kernels.rs AttnArgs fills Params). Joined after the kv_t prelude.
//   p: uniform Params; q: [n_tok, n_head * hd] f32; kc, vc: [n_tok, n_kv * hd] f32 (the
//   chunk); ck, cv: [capacity, n_kv * hd] kv_t (the cache before this chunk: position j
//   in slot j mod capacity); o: [n_tok, n_head * hd] f32
struct Params {
    n_tok: u32, n_head: u32, n_kv: u32, hd: u32,
    pos: u32, capacity: u32, window: u32, oldest: u32,
    scale: f32, n_split: u32, chunk: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read> ck: array<kv_t>;
@group(0) @binding(5) var<storage, read> cv: array<kv_t>;
@group(0) @binding(6) var<storage, read_write> o: array<f32>;
