// matvec.wgsl's row sums by subgroup operations, for any subgroup size (4 or 8 on
// software rasterizers, 16 or 32 Intel, 32 NVIDIA, 32 or 64 AMD, up to WebGPU's 128)
// and any number of active invocations in a subgroup (llvmpipe with
// LP_NATIVE_VECTOR_WIDTH=1024 reports subgroup_size 32 but runs 16).
// Needs the device's subgroup feature (no `enable subgroups;`: see matvec_source in
// src/gpu/kernels/matmul.rs).
//   next_slot: atomic<u32> workgroup      slots handed out so far
//   part: [256] vec4<f32> workgroup       a subgroup's share of a row it holds in part
//   part_len: [256] u32 workgroup         how many of the row's slots that share covers
//
// Slots: how subgroups map onto local_invocation_index is implementation-defined
// (WGSL and Vulkan promise nothing), so each subgroup takes the next `cnt` free slots
// (cnt = its active invocations) from a workgroup counter, in lane-rank order: a
// subgroup's slots are contiguous and the 256 slots dense, so a row (LANES slots)
// lies inside one subgroup or is cut into a few runs, one per subgroup.
struct Ids {
    @builtin(subgroup_size) size: u32,
}

var<workgroup> next_slot: atomic<u32>;
var<workgroup> part: array<vec4<f32>, 256>;
var<workgroup> part_len: array<u32, 256>;
// This invocation's subgroup: its first slot and active invocations.
var<private> sg_base: u32;
var<private> sg_cnt: u32;

fn slot_of(ids: Ids) -> u32 {
    let cnt = subgroupAdd(1u);
    let rank = subgroupExclusiveAdd(1u);
    var b = 0u;
    if (rank == 0u) { b = atomicAdd(&next_slot, cnt); }
    // Only rank 0 holds the base; the sum hands it to the whole subgroup.
    sg_base = subgroupAdd(b);
    sg_cnt = cnt;
    return sg_base + rank;
}

// The row's total in its lane 0 (slot s % LANES == 0). One masked subgroupAdd per row
// the subgroup may touch (its cnt <= size slots start anywhere, so at most
// (size + 30) / LANES + 1 rows); a row wholly inside the subgroup is then summed. A row
// cut into runs: each run's first slot leaves its sum and length in `part`, and lane 0
// walks the runs in slot order. Called once per entry point, by all 256 threads
// (subgroup_size is uniform in a compute shader, so the loop is too).
fn row_sum(v: vec4<f32>, s: u32, ids: Ids) -> vec4<f32> {
    let row = s / LANES;
    let first_row = sg_base / LANES;
    let end = sg_base + sg_cnt;
    var t = vec4<f32>(0.0);
    for (var j = 0u; j <= (ids.size + 30u) / LANES; j++) {
        let sum = subgroupAdd(select(vec4<f32>(0.0), v, row == first_row + j));
        if (row == first_row + j) { t = sum; }
    }
    let row0 = row * LANES;
    let whole = sg_base <= row0 && row0 + LANES <= end;
    if (!whole && s == max(sg_base, row0)) {
        part[s] = t;
        part_len[s] = min(end, row0 + LANES) - s;
    }
    workgroupBarrier();
    if (!whole && s == row0) {
        t = vec4<f32>(0.0);
        for (var i = s; i < row0 + LANES; i += max(part_len[i], 1u)) { t += part[i]; }
    }
    return t;
}
