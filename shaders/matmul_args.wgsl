// The uniform and bindings 0-3 that matmul.wgsl and matvec.wgsl share
// (src/gpu/kernels/matmul.rs: MatmulParams mirrors Params). Joined after bytes.wgsl
// and one dequant_<type>.wgsl, before either body.
//   0 p: uniform Params
//   1 w: [part bytes / 4] u32     GGUF blocks as stored, rows of p.row_bytes from byte p.w_off
//   2 x: [n_tok, p.x_stride] f32  activations (the first p.n_in of each row are used)
//   3 y: [n_tok, p.y_stride] f32  output, columns out_row0 .. out_row0 + n_out
// n_out rows of this part from byte w_off; k, expert_bytes, x_per_slot, e0, e1: an
// expert stack's (matmul.wgsl main_id, main_grouped); tiles: main_grouped's token
// tiles per expert; eps, add: matvec.wgsl's fused RMSNorm epsilon and residual add
// (0 elsewhere).
struct Params {
    n_in: u32, n_out: u32, n_tok: u32, row_bytes: u32,
    w_off: u32, out_row0: u32, x_stride: u32, y_stride: u32,
    k: u32, expert_bytes: u32, x_per_slot: u32, e0: u32,
    e1: u32, tiles: u32, eps: f32, add: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
