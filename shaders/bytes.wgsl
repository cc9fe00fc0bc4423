// Byte access into GGUF blocks held as raw bytes in `w: array<u32>` (little-endian).
// ggml blocks are not 4-byte multiples (Q4_0 18 B, Q8_0 34 B, Q6_K 210 B), so every
// field is read by byte offset. `w` is declared by the body this file is joined to.
fn byte_at(o: u32) -> u32 { return (w[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu; }
fn u16_at(o: u32) -> u32 { return byte_at(o) | (byte_at(o + 1u) << 8u); }
fn f16_at(o: u32) -> f32 { return unpack2x16float(u16_at(o)).x; }
fn i8_of(b: u32) -> f32 { return f32(bitcast<i32>(b << 24u) >> 24u); }
// ggml `get_scale_min_k4`: 6-bit (scale, min) pair j of the 12 scale bytes at o.
fn scale_min_k4(j: u32, o: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(byte_at(o + j) & 63u), f32(byte_at(o + j + 4u) & 63u));
    }
    let sc = (byte_at(o + j + 4u) & 15u) | ((byte_at(o + j - 4u) >> 6u) << 4u);
    let m = (byte_at(o + j + 4u) >> 4u) | ((byte_at(o + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}
// Four bytes from any byte offset: one load when aligned, two otherwise (ggml blocks
// of 18, 34 or 210 bytes leave later blocks unaligned), instead of four byte loads.
// The second word exists: it holds byte o + 3, which is inside the tensor.
fn word_at(o: u32) -> u32 {
    let i = o >> 2u;
    let sh = (o & 3u) * 8u;
    if (sh == 0u) { return w[i]; }
    return (w[i] >> sh) | (w[i + 1u] << (32u - sh));
}
// Byte k (0..4) of a word.
fn byte_of(v: u32, k: u32) -> u32 { return (v >> (8u * k)) & 0xffu; }
