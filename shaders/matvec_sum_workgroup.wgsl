// matvec.wgsl's row sums through workgroup memory (any device; the fallback when
// subgroups are not granted or PRECIS_GPU_SUBGROUPS=0).
//   part: [256] vec4<f32> workgroup   each thread's share (x; y: the up row of swiglu;
//                                     z: the input's sum of squares where the norm is
//                                     fused)
// Slot = local index: lanes of a row are 32 consecutive threads.
struct Ids {
    @builtin(local_invocation_index) li: u32,
}

fn slot_of(ids: Ids) -> u32 {
    return ids.li;
}

var<workgroup> part: array<vec4<f32>, 256>;

// Every thread's share into `part`, one barrier, then lane 0 of each row adds its
// LANES shares in lane order. Called once per entry point, by all 256 threads.
fn row_sum(v: vec4<f32>, s: u32, ids: Ids) -> vec4<f32> {
    part[s] = v;
    workgroupBarrier();
    var t = vec4<f32>(0.0);
    if (s % LANES == 0u) {
        for (var i = 0u; i < LANES; i++) { t += part[s + i]; }
    }
    return t;
}
