// matvec.wgsl's input as it is: x itself, no norm (joined with matvec.wgsl; the
// other choice is matvec_in_norm.wgsl). No bindings of its own.
fn xin(o: u32) -> vec4<f32> { return x4(o); }
// Nothing to square: the sum of squares stays 0 and the compiler drops it.
fn sq(o: u32) -> f32 { return 0.0; }
fn in_scale(ss: f32) -> f32 { return 1.0; }
