// Greedy sampling on the GPU: index of the largest logit of one row (first index on
// ties, as src/sampling.rs argmax), so a decode step reads back 4 bytes.
//   p: uniform { n, row_off }; logits: [.., n] f32; out: [1] u32
struct Params { n: u32, row_off: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;

@compute @workgroup_size(256)
fn argmax(@builtin(local_invocation_index) li: u32) {
    var v = -3.4e38;
    var idx = 0xffffffffu;
    for (var i = li; i < p.n; i += 256u) {
        let x = logits[p.row_off + i];
        if (idx == 0xffffffffu || x > v) { v = x; idx = i; }
    }
    bv[li] = v;
    bi[li] = idx;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h >>= 1u) {
        if (li < h) {
            let ov = bv[li + h];
            let oi = bi[li + h];
            if (oi != 0xffffffffu && (bi[li] == 0xffffffffu || ov > bv[li] || (ov == bv[li] && oi < bi[li]))) {
                bv[li] = ov;
                bi[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) { out[0] = bi[0]; }
}
