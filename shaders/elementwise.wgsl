// Elementwise ops over n floats.
//   0 p: uniform Params { n, cols, s }
//   1 a: [n] f32   read_write
//   2 b: [n] f32 (add_rows: [cols])
// add:      a += b                       (residual)
// add_rows: a[i] += b[i % cols]          (a projection's bias on every row)
// swiglu: a = silu(a) * b   (gate in place, up; SiLU(x) = x / (1 + e^-x))
// geglu:  a = gelu(a) * b   (GELU's tanh form, as ggml_gelu: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))))
// scale:  a *= s            (gemma3's embedding scale; b unused, so not bound)
struct Params { n: u32, cols: u32, s: f32, pad2: u32 }
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

@compute @workgroup_size(64)
fn geglu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = index(gid, nw);
    if (i < p.n) {
        let g = a[i];
        // tanh saturates to +-1 in f32 long before 15; clamped so no driver's tanh overflows.
        let t = tanh(clamp(0.7978846 * g * (1.0 + 0.044715 * g * g), -15.0, 15.0));
        a[i] = 0.5 * g * (1.0 + t) * b[i];
    }
}

@compute @workgroup_size(64)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = index(gid, nw);
    if (i < p.n) { a[i] *= p.s; }
}
