// y[out_row0 + r] = W[r, :] · x[:n_in] for ONE token (decode), the memory-bound case.
// Joined after bytes.wgsl, dequant_<type>.wgsl, matmul_args.wgsl (Params, bindings
// 0-3), matvec_in_plain.wgsl or matvec_in_norm.wgsl (the input: x, or x RMS-normalized
// on the fly: `xin`, `sq`, `in_scale`), and dot_<type>.wgsl (or dot_generic.wgsl),
// which defines dot4(row, s, i, xo): elements 4i..4i+4 of 32-element sub-block s times
// xin(xo), and after matvec_sum_workgroup.wgsl or matvec_sum_subgroup.wgsl, which
// define the thread's slot (`Ids`, `slot_of`) and the row sums over its lanes
// (`row_sum`).
//   0 p: uniform Params (matmul_args.wgsl; n_tok = 1; eps: the fused norm's; add: 1 to
//        add into y instead of overwriting it)
//   1 w: [part bytes / 4] u32   GGUF blocks as stored, rows of p.row_bytes from byte p.w_off
//   2 x: [p.n_in] f32           the token's activations
//   3 y: [>= out_row0 + n_out] f32 (main_qkv: the Q rows); read too when p.add = 1
//   4 y_k: [K rows] f32         (main_qkv only) the K rows
//   5 y_v: [V rows] f32         (main_qkv only) the V rows
//   6 g: [p.n_in] f32           (matvec_in_norm.wgsl only) the RMSNorm weight
// Workgroup of ROWS rows × LANES threads. A row is cut into items of 4 elements, dealt
// to its lanes in order, so lane j reads x[4j ..] and the weight word of those 4: each
// load instruction of a warp touches consecutive addresses (one lane per sub-block,
// tried first, made every x load hit 32 different cache lines and ran at ~5% of the
// H100's bandwidth). Thread slot s (0..256; the local index, or its place among the
// subgroups) is lane s % LANES of row s / LANES; `row_sum` gives lane 0 the row's total
// (a vec4: x the row, y swiglu's up row, z the input's sum of squares).
//
// p.add = 1 folds the residual add into the product (y = W·x + y: the output and FFN
// down projections write into the residual stream), one dispatch less each; the sum is
// the same IEEE addition as elementwise.wgsl's add, so the result is bit for bit the
// unfused one. (llama.cpp's ggml-vulkan fuses MUL_MAT + ADD on its mat-vec paths the
// same way, ggml-org/llama.cpp#16868.)

// Four activations from o; those past n_in read as 0 (float rows need not be a
// multiple of 4).
fn x4(o: u32) -> vec4<f32> {
    if (o + 4u <= p.n_in) { return vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]); }
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (o + k < p.n_in) { v[k] = x[o + k]; } }
    return v;
}

const LANES: u32 = 32u;
const ROWS: u32 = 8u;

// This lane's share of the row at byte `row` (x) and of the input's sum of squares (y;
// 0 unless the norm is fused).
fn lane_dot(row: u32, lane: u32) -> vec2<f32> {
    var acc = vec2<f32>(0.0);
    let items = (p.n_in + 3u) / 4u;
    for (var it = lane; it < items; it += LANES) {
        acc += vec2<f32>(dot4(row, it / 8u, it % 8u, 4u * it), sq(4u * it));
    }
    return acc;
}

// Row r of this workgroup's slot s: every lane's share, then (`row_sum` needs the whole
// workgroup, so every entry point calls this unconditionally) the total in lane 0
// (other lanes get 0 and write nothing), times the fused norm's scale.
fn row_dot(r: u32, s: u32, ids: Ids) -> f32 {
    var a = vec2<f32>(0.0);
    if (r < p.n_out) { a = lane_dot(p.w_off + r * p.row_bytes, s % LANES); }
    let t = row_sum(vec4<f32>(a.x, 0.0, a.y, 0.0), s, ids);
    return t.x * in_scale(t.z);
}

// Row i's result into y, or added to it (p.add: the residual stream).
fn put(i: u32, v: f32) {
    if (p.add != 0u) { y[i] = y[i] + v; } else { y[i] = v; }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, ids: Ids) {
    let s = slot_of(ids);
    let r = (wg.x + wg.y * nw.x) * ROWS + s / LANES;
    let t = row_dot(r, s, ids);
    if (s % LANES == 0u && r < p.n_out) { put(p.out_row0 + r, t); }
}

// main_qkv: Q, K and V stacked in one matrix, one dispatch (decode). Row g (counted
// from the matrix's first row: out_row0 is this part's first row) goes to y[g] below
// the first K row, to y_k below the first V row, else to y_v. The two split rows ride
// in fields of matmul_args.wgsl's Params that a matvec has no other use for.
@group(0) @binding(4) var<storage, read_write> y_k: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_v: array<f32>;

fn k_row0() -> u32 { return p.k; }
fn v_row0() -> u32 { return p.expert_bytes; }

// Row g of the fused matrix into its output.
fn store_qkv(g: u32, t: f32) {
    if (g < k_row0()) { y[g] = t; } else if (g < v_row0()) { y_k[g - k_row0()] = t; } else { y_v[g - v_row0()] = t; }
}

@compute @workgroup_size(256)
fn main_qkv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, ids: Ids) {
    let s = slot_of(ids);
    let r = (wg.x + wg.y * nw.x) * ROWS + s / LANES;
    let t = row_dot(r, s, ids);
    if (s % LANES == 0u && r < p.n_out) { store_qkv(p.out_row0 + r, t); }
}

// main_swiglu: gate rows 0..n_out stacked over up rows n_out..2·n_out in one part;
// y[r] = silu(gate_r · x) · (up_r · x), the FFN's first half in one dispatch (decode).
// The same sums in the same order as main (both rows in one `row_sum`), then
// elementwise.wgsl's swiglu.
@compute @workgroup_size(256)
fn main_swiglu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, ids: Ids) {
    let s = slot_of(ids);
    let r = (wg.x + wg.y * nw.x) * ROWS + s / LANES;
    var a = vec4<f32>(0.0);
    if (r < p.n_out) {
        let row = p.w_off + r * p.row_bytes;
        let gt = lane_dot(row, s % LANES);
        a = vec4<f32>(gt.x, lane_dot(row + p.n_out * p.row_bytes, s % LANES).x, gt.y, 0.0);
    }
    let t = row_sum(a, s, ids);
    let sc = in_scale(t.z);
    let gate = t.x * sc;
    if (s % LANES == 0u && r < p.n_out) {
        put(p.out_row0 + r, gate / (1.0 + exp(-gate)) * (t.y * sc));
    }
}

// *_rows: the same products with one thread per row and no barrier, for CPU
// adapters (SwiftShader, lavapipe; chosen at device creation, GpuContext::
// row_per_thread). They run a workgroup's invocations as SIMD lanes and a barrier as a
// switch between coroutines: the 32-lane layout with its barrier measured ~7x slower
// on SwiftShader than the same loads without it, and a row per thread ~2x faster
// again (row-per-thread is uncoalesced on a real GPU, hence the choice).
const ROWS_WG: u32 = 64u;

// The row's product times the fused norm's scale (1 without one).
fn full_dot(row: u32) -> f32 {
    var acc = vec2<f32>(0.0);
    let items = (p.n_in + 3u) / 4u;
    for (var it = 0u; it < items; it++) {
        acc += vec2<f32>(dot4(row, it >> 3u, it & 7u, 4u * it), sq(4u * it));
    }
    return acc.x * in_scale(acc.y);
}

@compute @workgroup_size(64)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * ROWS_WG + li;
    if (r < p.n_out) { put(p.out_row0 + r, full_dot(p.w_off + r * p.row_bytes)); }
}

@compute @workgroup_size(64)
fn main_qkv_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * ROWS_WG + li;
    if (r >= p.n_out) { return; }
    store_qkv(p.out_row0 + r, full_dot(p.w_off + r * p.row_bytes));
}

@compute @workgroup_size(64)
fn main_swiglu_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
                    @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * ROWS_WG + li;
    if (r >= p.n_out) { return; }
    let row = p.w_off + r * p.row_bytes;
    let gate = full_dot(row);
    put(p.out_row0 + r, gate / (1.0 + exp(-gate)) * full_dot(row + p.n_out * p.row_bytes));
}
