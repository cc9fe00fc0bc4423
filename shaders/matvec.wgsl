// y[out_row0 + r] = W[r, :] · x[:n_in] for ONE token (decode), the memory-bound case.
// Joined after bytes.wgsl, dequant_<type>.wgsl, matmul_args.wgsl (Params, bindings
// 0-3) and dot_<type>.wgsl (or dot_generic.wgsl), which defines dot4(row, s, i, xo):
// elements 4i..4i+4 of 32-element sub-block s times x, and after
// matvec_sum_workgroup.wgsl or matvec_sum_subgroup.wgsl, which define the thread's
// slot (`Ids`, `slot_of`) and the row sums over its lanes (`row_sum`).
//   0 p: uniform Params (matmul_args.wgsl; n_tok = 1)
//   1 w: [part bytes / 4] u32   GGUF blocks as stored, rows of p.row_bytes from byte p.w_off
//   2 x: [p.n_in] f32           the token's activations
//   3 y: [>= out_row0 + n_out] f32 (main_qkv: the Q rows)
//   4 y_k: [K rows] f32         (main_qkv only) the K rows
//   5 y_v: [V rows] f32         (main_qkv only) the V rows
// Workgroup of ROWS rows × LANES threads. A row is cut into items of 4 elements, dealt
// to its lanes in order, so lane j reads x[4j ..] and the weight word of those 4: each
// load instruction of a warp touches consecutive addresses (one lane per sub-block,
// tried first, made every x load hit 32 different cache lines and ran at ~5% of the
// H100's bandwidth). Thread slot s (0..256; the local index, or its place among the
// subgroups) is lane s % LANES of row s / LANES; `row_sum` gives lane 0 the row's total.

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

// This lane's share of the row at byte `row`.
fn lane_dot(row: u32, lane: u32) -> f32 {
    var acc = 0.0;
    let items = (p.n_in + 3u) / 4u;
    for (var it = lane; it < items; it += LANES) {
        acc += dot4(row, it / 8u, it % 8u, 4u * it);
    }
    return acc;
}

// Row r of this workgroup's slot s: every lane's share, then (`row_sum` needs the whole
// workgroup, so every entry point calls this unconditionally) the total in lane 0
// (other lanes get 0 and write nothing).
fn row_dot(r: u32, s: u32, ids: Ids) -> f32 {
    var acc = 0.0;
    if (r < p.n_out) { acc = lane_dot(p.w_off + r * p.row_bytes, s % LANES); }
    return row_sum(vec2<f32>(acc, 0.0), s, ids).x;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>, ids: Ids) {
    let s = slot_of(ids);
    let r = (wg.x + wg.y * nw.x) * ROWS + s / LANES;
    let t = row_dot(r, s, ids);
    if (s % LANES == 0u && r < p.n_out) { y[p.out_row0 + r] = t; }
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
    var a = vec2<f32>(0.0);
    if (r < p.n_out) {
        let row = p.w_off + r * p.row_bytes;
        a = vec2<f32>(lane_dot(row, s % LANES), lane_dot(row + p.n_out * p.row_bytes, s % LANES));
    }
    let t = row_sum(a, s, ids);
    if (s % LANES == 0u && r < p.n_out) {
        y[p.out_row0 + r] = t.x / (1.0 + exp(-t.x)) * t.y;
    }
}

// *_rows: the same products with one thread per row and no barrier, for CPU
// adapters (SwiftShader, lavapipe; chosen at device creation, GpuContext::
// row_per_thread). They run a workgroup's invocations as SIMD lanes and a barrier as a
// switch between coroutines: the 32-lane layout with its barrier measured ~7x slower
// on SwiftShader than the same loads without it, and a row per thread ~2x faster
// again (row-per-thread is uncoalesced on a real GPU, hence the choice).
const ROWS_WG: u32 = 64u;

fn full_dot(row: u32) -> f32 {
    var acc = 0.0;
    let items = (p.n_in + 3u) / 4u;
    for (var it = 0u; it < items; it++) {
        acc += dot4(row, it >> 3u, it & 7u, 4u * it);
    }
    return acc;
}

@compute @workgroup_size(64)
fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let r = (wg.x + wg.y * nw.x) * ROWS_WG + li;
    if (r < p.n_out) { y[p.out_row0 + r] = full_dot(p.w_off + r * p.row_bytes); }
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
    let g = full_dot(row);
    y[p.out_row0 + r] = g / (1.0 + exp(-g)) * full_dot(row + p.n_out * p.row_bytes);
}
