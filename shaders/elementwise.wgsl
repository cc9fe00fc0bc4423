// Elementwise ops over n floats.
//   0 p: uniform Params { n, cols }
//   1 a: [n] f32   read_write
//   2 b: [n] f32 (add_rows: [cols])
// add:      a += b                       (residual)
// add_rows: a[i] += b[i % cols]          (a projection's bias on every row)
// swiglu: a = silu(a) * b   (gate in place, up; SiLU(x) = x / (1 + e^-x))
struct Params { n: u32, cols: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

fn index(gid: vec3<u32>, nw: vec3<u32>) -> u32 { return gid.x + gid.y * nw.x * 64u; }

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = index(gid, nw);
    if (i < p.n) { a[i] += b[i]; }
}

@compute @workgroup_size(64)
fn add_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = index(gid, nw);
    if (i < p.n) { a[i] += b[i % p.cols]; }
}

@compute @workgroup_size(64)
fn swiglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = index(gid, nw);
    if (i < p.n) {
        let g = a[i];
        a[i] = g / (1.0 + exp(-g)) * b[i];
    }
}
