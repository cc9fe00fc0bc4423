//! Every WGSL kernel against its plain-Rust twin on seeded random input with awkward
//! sizes (not multiples of the workgroup size or of the matmul token tile). Runs on
//! whatever adapter wgpu finds — lavapipe in CI; no adapter is a failure, not a skip.
#![cfg(feature = "gpu")]

use precis::cpu::attention::{attention_naive, AttnShape};
use precis::cpu::cache::KvCache;
use precis::model::cache::CacheShape;
use precis::gpu::kernels::{self as kn, buf, AttnArgs, Buf, Kernels, Recorder};
use precis::gpu::weights::{upload_limited, MatrixSource};
use precis::gpu::{block_on, GpuContext, GpuError, Requirements};
use precis::format::quant::{dequantize_vec, random_blocks, GgmlType};
use precis::format::family::RopeStyle;
use precis::format::hparams::AttnTemp;

/// Products of exactly-dequantized weights in f32 against an f64 sum: bound on
/// |gpu - cpu| relative to Σ|w·x| (the scale of the rounding error).
const TOL_F32_DOT: f64 = 1e-5;
/// Quantized types: GPU and CPU dequantizers may round `d·scale·q - dmin·m` differently.
const TOL_QUANT_DOT: f64 = 2e-5;
/// Elementwise ops with transcendental functions (exp, sin/cos, rsqrt) on the GPU.
const TOL_ELEMENTWISE: f32 = 2e-5;
/// Fused gate/up + SwiGLU: the dot products' rounding (TOL_QUANT_DOT of their
/// magnitude) carried through silu(g)·u.
const TOL_FUSED_SWIGLU: f32 = 1e-4;
/// The two matvec variants: the same 32 lane sums per row added in another order
/// (relative to 1 + |y|; rows of ~3000 products can cancel to near 0).
const TOL_MATVEC_VARIANTS: f32 = 1e-4;
/// A matvec with the RMSNorm fused, against the norm and product in f64: on top of
/// the product's own rounding (tol_for), the f32 sum of squares and the scale applied
/// after the sum instead of to each element (relative to Σ|w·norm(x)|).
const TOL_FUSED_NORM: f64 = 1e-5;
/// Kernels whose fused form does the same f32 operations in the same order as their
/// unfused twin (residual add folded into the matvec, in-place and added RMSNorm,
/// RoPE of Q and K in one dispatch): bit for bit.
const TOL_SAME_OPS: f32 = 0.0;
/// Attention: softmax in a different order (online, per tile of 64 keys).
const TOL_ATTENTION: f32 = 2e-5;

fn ctx() -> GpuContext {
    block_on(GpuContext::new(&Requirements::default())).expect("a GPU adapter is required (lavapipe in CI)")
}

/// The device twice: the 32-lanes-per-row decode matvec and barrier-tiled prefill
/// matmul real GPUs take, and the one-thread-per-row entry points CPU adapters take
/// (GpuContext::row_per_thread). Both are held to the same twins.
fn both_layouts() -> [GpuContext; 2] {
    [false, true].map(|rows| {
        let mut c = ctx();
        c.row_per_thread = rows;
        c
    })
}

fn layout(c: &GpuContext) -> &'static str {
    if c.row_per_thread {
        "row per thread"
    } else {
        "lanes per row"
    }
}

fn rnd(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 20001) as f32 / 10000.0 - 1.0
        })
        .collect()
}

fn up(c: &GpuContext, what: &str, v: &[f32]) -> Buf {
    let b = buf(c, what, v.len());
    c.queue.write_buffer(&b.buffer, 0, bytemuck::cast_slice(v));
    b
}

fn up_u32(c: &GpuContext, what: &str, v: &[u32]) -> Buf {
    let b = buf(c, what, v.len());
    c.queue.write_buffer(&b.buffer, 0, bytemuck::cast_slice(v));
    b
}

fn read(c: &GpuContext, b: &Buf) -> Vec<f32> {
    let bytes = block_on(c.read_back(&b.buffer, 0, (b.len * 4) as u64)).unwrap();
    bytemuck::cast_slice::<u8, f32>(&bytes).to_vec()
}

fn read_u32(c: &GpuContext, b: &Buf) -> Vec<u32> {
    let bytes = block_on(c.read_back(&b.buffer, 0, (b.len * 4) as u64)).unwrap();
    bytemuck::cast_slice::<u8, u32>(&bytes).to_vec()
}

fn run(c: &GpuContext, k: &Kernels, f: impl FnOnce(&mut Recorder) -> Result<(), GpuError>) {
    let mut r = Recorder::new(c, k);
    f(&mut r).unwrap();
    r.submit().unwrap();
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: first bad index {i}: gpu {g}, cpu {w} (tol {tol:e})");
    }
}

fn tol_for(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => TOL_F32_DOT,
        _ => TOL_QUANT_DOT,
    }
}

/// The decode matvec's row sums to test in `c`'s layout: workgroup memory always,
/// subgroup operations too where the device granted them (lanes per row only).
fn matvec_variants(c: &GpuContext) -> Vec<bool> {
    if c.row_per_thread {
        vec![false] // its entry points sum nothing across threads
    } else if c.has_subgroups {
        vec![false, true]
    } else {
        eprintln!("{}: no subgroups, the subgroup matvec is not tested here", c.adapter_name);
        vec![false]
    }
}

/// `matmul` for `ty` with [n_out, n_in] weights on n_tok tokens, against
/// dequantize-then-dot in f64; `limit` forces the matrix into several row parts;
/// `subgroups`: the decode matvec sums rows with subgroup operations.
#[allow(clippy::too_many_arguments)]
fn check_matmul_with(c: &GpuContext, subgroups: bool, ty: GgmlType, n_in: usize, n_out: usize, n_tok: usize, limit: u64) {
    let k = Kernels::with_subgroups(c, subgroups);
    assert_eq!(k.subgroups, subgroups && c.has_subgroups, "the variant asked for");
    let bytes = random_blocks(ty, n_in * n_out, 7 + n_in as u64);
    let w = dequantize_vec(ty, &bytes, n_in * n_out);
    let src = MatrixSource { name: "w", ty, n_in, n_out, n_expert: 1, ranges: vec![0..bytes.len() as u64] };
    let m = block_on(upload_limited(c, &mut &bytes[..], &src, limit)).unwrap();
    let x = rnd(n_tok * n_in, 3);
    let xb = up(c, "x", &x);
    // Output columns start at 3 of a wider row, as the stacked Q/K/V outputs would.
    let stride = n_out + 5;
    let y = buf(c, "y", n_tok * stride);
    run(c, &k, |r| kn::matmul(r, &m, &xb, n_in, &y, stride, 3, n_tok));
    let got = read(c, &y);
    for t in 0..n_tok {
        for o in 0..n_out {
            let (mut s, mut mag) = (0f64, 0f64);
            for i in 0..n_in {
                let p = w[o * n_in + i] as f64 * x[t * n_in + i] as f64;
                s += p;
                mag += p.abs();
            }
            let g = got[t * stride + 3 + o] as f64;
            let tol = tol_for(ty) * mag.max(1e-3);
            assert!((g - s).abs() <= tol, "matmul {} {n_out}x{n_in} x {n_tok} tokens ({} parts, {}, subgroups {subgroups}): first bad index token {t} row {o}: gpu {g}, cpu {s} (tol {tol:e})", ty.name(), m.parts.len(), layout(c));
        }
    }
}

/// Decode (one token) with every matvec variant; prefill once.
fn check_matmul(c: &GpuContext, ty: GgmlType, n_in: usize, n_out: usize, n_tok: usize, limit: u64) {
    let variants = if n_tok == 1 { matvec_variants(c) } else { vec![false] };
    for sg in variants {
        check_matmul_with(c, sg, ty, n_in, n_out, n_tok, limit);
    }
}

/// The quantized types Precis reads: `quant::SUPPORTED` without the float ones.
const QUANT: [GgmlType; 12] = {
    let mut out = [GgmlType::F32; 12];
    let (mut i, mut n) = (0, 0);
    while i < precis::format::quant::SUPPORTED.len() {
        let t = precis::format::quant::SUPPORTED[i];
        if !matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            out[n] = t;
            n += 1;
        }
        i += 1;
    }
    assert!(n == 12, "SUPPORTED has 12 quantized types");
    out
};

#[test]
fn matmul_every_type_decode_and_prefill() {
    for c in both_layouts() {
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            check_matmul(&c, ty, 75, 67, 1, u64::MAX);
            check_matmul(&c, ty, 75, 67, 11, u64::MAX);
        }
        for ty in QUANT {
            let n_in = ty.block_size() * 3;
            check_matmul(&c, ty, n_in, 67, 1, u64::MAX);
            check_matmul(&c, ty, n_in, 130, 11, u64::MAX);
        }
    }
}

#[test]
fn matmul_split_into_row_parts() {
    for c in both_layouts() {
        // Q4_0 rows of 96 elements are 54 bytes (not a 4-byte multiple); 1000-byte parts
        // hold 18 rows, so 67 rows take 4 parts with ragged byte tails.
        check_matmul(&c, GgmlType::Q4_0, 96, 67, 9, 1000);
        check_matmul(&c, GgmlType::Q6K, 256, 13, 2, 900);
        check_matmul(&c, GgmlType::Q6K, 256, 13, 1, 900);
        check_matmul(&c, GgmlType::Q4_0, 96, 67, 1, 1000);
        // Q3_K rows of 512 are 220 bytes, IQ4_NL rows of 96 are 54: parts end mid-word.
        check_matmul(&c, GgmlType::Q3K, 512, 13, 3, 900);
        check_matmul(&c, GgmlType::IQ4NL, 96, 67, 1, 1000);
    }
}

#[test]
fn embed_rows_every_type() {
    let c = ctx();
    let k = Kernels::new(&c);
    for ty in [GgmlType::F32, GgmlType::F16].into_iter().chain(QUANT) {
        let (d, rows) = (ty.block_size().max(32) * 2, 37);
        let bytes = random_blocks(ty, d * rows, 11);
        let table = dequantize_vec(ty, &bytes, d * rows);
        let src = MatrixSource { name: "embd", ty, n_in: d, n_out: rows, n_expert: 1, ranges: vec![0..bytes.len() as u64] };
        // Parts of ~10 rows so lookups cross parts.
        let m = block_on(upload_limited(&c, &mut &bytes[..], &src, (ty.row_bytes(d) * 10) as u64)).unwrap();
        let ids = [36u32, 0, 5, 19, 19, 10];
        let tok = up_u32(&c, "tok", &ids);
        let y = buf(&c, "y", ids.len() * d);
        run(&c, &k, |r| kn::embed(r, &m, &tok, &y, ids.len()));
        let want: Vec<f32> = ids.iter().flat_map(|&i| table[i as usize * d..][..d].to_vec()).collect();
        close(&format!("embed {}", ty.name()), &read(&c, &y), &want, 0.0);
    }
}

#[test]
fn rms_norm_rope_swiglu_add() {
    let c = ctx();
    let k = Kernels::new(&c);
    let (n, rows) = (93, 5);
    let x = rnd(n * rows, 1);
    let g = rnd(n, 2);
    let (xb, gb, yb) = (up(&c, "x", &x), up(&c, "g", &g), buf(&c, "y", n * rows));
    run(&c, &k, |r| kn::rms_norm(r, &xb, &gb, &yb, n, rows, 1e-5));
    close("rms_norm", &read(&c, &yb), &precis::cpu::vector::rms_norm(&x, &g, 1e-5), TOL_ELEMENTWISE);

    // RoPE with n_rot < head_dim (the tail of each head is left alone), 7 rows at pos 1000,
    // in both pairings (normal: llama; NEOX: qwen2).
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        let (heads, hd, n_rot, pos) = (3, 12, 8, 1000);
        let rope = precis::cpu::rope::Rope::new(hd, n_rot, 10000.0, style);
        let mut want = rnd(7 * heads * hd, 4);
        let qb = up(&c, "q", &want);
        let inv: Vec<f32> = (0..n_rot / 2).map(|i| 10000f32.powf(-2.0 * i as f32 / n_rot as f32)).collect();
        let ib = up(&c, "inv", &inv);
        run(&c, &k, |r| kn::rope(r, &qb, &ib, 7, heads, hd, pos, style));
        rope.apply(&mut want, heads, pos);
        // Angles up to ~1000 rad: f32 sin/cos argument reduction differs by ~1e-4.
        close(&format!("rope {style:?}"), &read(&c, &qb), &want, 3e-4);
    }

    // A bias on each of 7 rows of 93.
    let (a, bias) = (rnd(7 * 93, 7), rnd(93, 8));
    let (ab, bb) = (up(&c, "a", &a), up(&c, "bias", &bias));
    run(&c, &k, |r| kn::add_rows(r, &ab, &bb, 7, 93));
    let mut want = a.clone();
    precis::cpu::vector::add_rows(&mut want, &bias);
    close("add_rows", &read(&c, &ab), &want, TOL_ELEMENTWISE);

    let (a, b) = (rnd(1001, 5), rnd(1001, 6));
    let (ab, bb) = (up(&c, "a", &a), up(&c, "b", &b));
    run(&c, &k, |r| kn::swiglu(r, &ab, &bb, 1001));
    let want: Vec<f32> = a.iter().zip(&b).map(|(&g, &u)| precis::cpu::vector::silu(g) * u).collect();
    close("swiglu", &read(&c, &ab), &want, TOL_ELEMENTWISE);
    run(&c, &k, |r| kn::add(r, &ab, &bb, 1001));
    let want: Vec<f32> = want.iter().zip(&b).map(|(x, y)| x + y).collect();
    close("add", &read(&c, &ab), &want, TOL_ELEMENTWISE);
}

/// A cache buffer for `v` as the GPU cache holds it: f32, or f16 pairs per word.
fn up_cache(c: &GpuContext, what: &str, v: &[f32], half: bool) -> Buf {
    if !half {
        return up(c, what, v);
    }
    let h: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
    let b = Buf { len: v.len(), ..buf(c, what, v.len().div_ceil(2)) };
    let mut bytes = bytemuck::cast_slice::<half::f16, u8>(&h).to_vec();
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    c.queue.write_buffer(&b.buffer, 0, &bytes);
    b
}

/// Reads a cache buffer back as f32.
fn read_cache(c: &GpuContext, b: &Buf, half: bool) -> Vec<f32> {
    if !half {
        return read(c, b);
    }
    let bytes = block_on(c.read_back(&b.buffer, 0, (b.len.div_ceil(2) * 4) as u64)).unwrap();
    bytes.chunks(2).take(b.len).map(|p| half::f16::from_le_bytes([p[0], p[1]]).to_f32()).collect()
}

/// The cache element types this adapter can test: f32 always, f16 with `shader-f16`.
fn kv_types(c: &GpuContext) -> Vec<bool> {
    if c.has_f16 {
        vec![false, true]
    } else {
        eprintln!("{}: no shader-f16, the f16 KV cache is not tested here", c.adapter_name);
        vec![false]
    }
}

/// GPU attention against src/cpu/attention.rs over a cache filled with random rows; with
/// an f16 cache the CPU reads the same f16-rounded rows.
fn check_attention(c: &GpuContext, n_tok: usize, pos: usize, capacity: usize, window: Option<usize>, half: bool) {
    check_attention_with(c, n_tok, pos, capacity, window, half, None)
}

/// As check_attention; `Some(n)`: decode through split-K with n splits.
fn check_attention_with(c: &GpuContext, n_tok: usize, pos: usize, capacity: usize, window: Option<usize>, half: bool, split: Option<usize>) {
    let path = match split {
        None => AttnPath::PerQuery,
        Some(n) => AttnPath::Split(n),
    };
    check_attention_on(c, (6, 2, 20), n_tok, pos, capacity, window, half, path)
}

/// Which GPU attention kernel a check runs.
#[derive(Debug, Clone, Copy)]
enum AttnPath {
    /// attention.wgsl `main`: a workgroup per (head, query).
    PerQuery,
    /// Split-K decode over n splits.
    Split(usize),
    /// attention_prefill.wgsl: tiles of query rows per KV head.
    Prefill,
}

/// GPU attention with `heads` = (n_head, n_kv, head_dim) against the slow twin
/// `attention_naive` (any head_dim) over a cache of `capacity` random rows; with an
/// f16 cache the CPU reads the same f16-rounded rows.
#[allow(clippy::too_many_arguments)]
fn check_attention_on(c: &GpuContext, heads: (usize, usize, usize), n_tok: usize, pos: usize, capacity: usize, window: Option<usize>, half: bool, path: AttnPath) {
    let k = Kernels::new(c);
    let (n_head, n_kv, hd) = heads;
    let kvd = n_kv * hd;
    let mut cache = KvCache::new(CacheShape { n_layer: 1, kv_dim: kvd, capacity, rolling: window.is_some(), local: None });
    cache.pos = pos;
    let round = |v: Vec<f32>| if half { v.into_iter().map(|x| half::f16::from_f32(x).to_f32()).collect() } else { v };
    cache.layers[0].k = round(rnd(capacity * kvd, 10 + pos as u64));
    cache.layers[0].v = round(rnd(capacity * kvd, 20 + pos as u64));
    let q = rnd(n_tok * n_head * hd, 30);
    let kc = rnd(n_tok * kvd, 31);
    let vc = rnd(n_tok * kvd, 32);
    let shape = AttnShape { n_head, n_head_kv: n_kv, head_dim: hd, window, scale: 1.0 / (hd as f32).sqrt() };
    let want = attention_naive(&shape, &q, &kc, &vc, &cache, 0);
    let (qb, kb, vb) = (up(c, "q", &q), up(c, "k", &kc), up(c, "v", &vc));
    let (ckb, cvb) = (up_cache(c, "ck", &cache.layers[0].k, half), up_cache(c, "cv", &cache.layers[0].v, half));
    let out = buf(c, "out", n_tok * n_head * hd);
    let a = AttnArgs { n_tok, n_head, n_kv, head_dim: hd, pos, capacity, window: window.unwrap_or(0), half };
    let partials = buf(c, "partials", kn::attention_partials(n_head, hd));
    run(c, &k, |r| match path {
        AttnPath::PerQuery => kn::attention(r, &a, &qb, &kb, &vb, &ckb, &cvb, &out),
        AttnPath::Split(n) => kn::attention_split(r, &a, &qb, &kb, &vb, &ckb, &cvb, &out, &partials, n),
        AttnPath::Prefill => kn::attention_prefill(r, &a, &qb, &kb, &vb, &ckb, &cvb, &out),
    });
    let what = format!("attention {path:?} heads {n_head}/{n_kv} hd {hd} n_tok {n_tok} pos {pos} capacity {capacity} window {window:?} f16 cache {half}");
    let got = read(c, &out);
    assert_eq!(got.len(), want.len(), "{what}: output length");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let (t, h, d) = (i / (n_head * hd), i / hd % n_head, i % hd);
        assert!((g - w).abs() <= TOL_ATTENTION * (1.0 + w.abs()), "{what}: first bad index {i} (token {t} head {h} dim {d}): gpu {g}, cpu {w} (tol {TOL_ATTENTION:e})");
    }
}

/// The tiled prefill kernel against the slow twin: chunks of awkward lengths (not
/// multiples of the 16-row tile) at position 0 and later, over a wrapped rolling
/// cache, a window shorter than the chunk, a dense cache; GQA groups of 1, 3 and 4;
/// head_dim 64 and 128 (SmolLM2's, Mistral's) and odd ones (33, 20).
#[test]
fn attention_prefill_tiled_matches_naive() {
    let c = ctx();
    // (n_tok, pos, capacity, window)
    let cases = [
        (1, 0, 8, Some(8)),       // one query, empty cache
        (5, 0, 64, None),         // first chunk, dense
        (37, 100, 64, Some(64)),  // rolling cache wrapped once (slots 36..64 then 0..36)
        (37, 50, 16, Some(16)),   // window shorter than the chunk: early rows see the cache
        (70, 200, 80, Some(80)),  // wrapped 2.5 times, > 1 tile of keys per row
        (70, 30, 128, None),      // dense with 30 cached positions
    ];
    for half in kv_types(&c) {
        for heads in [(9, 3, 64), (8, 2, 128), (6, 2, 33), (3, 3, 20)] {
            for &(n_tok, pos, cap, window) in &cases {
                check_attention_on(&c, heads, n_tok, pos, cap, window, half, AttnPath::Prefill);
            }
        }
    }
    let k = Kernels::new(&c);
    let b = buf(&c, "b", 1 << 16);
    let a = AttnArgs { n_tok: 2, n_head: 2, n_kv: 1, head_dim: 136, pos: 0, capacity: 8, window: 0, half: false };
    let e = kn::attention_prefill(&mut Recorder::new(&c, &k), &a, &b, &b, &b, &b, &b, &b).unwrap_err();
    assert!(e.to_string().contains("head_dim 136 (1..=128)"), "{e}");
}

#[test]
fn attention_decode_prefill_window_and_dense() {
    let c = ctx();
    for half in kv_types(&c) {
        check_attention(&c, 1, 0, 8, Some(8), half); //      first token
        check_attention(&c, 1, 29, 8, Some(8), half); //     decode, cache wrapped
        check_attention(&c, 5, 13, 8, Some(8), half); //     chunk attends to cache + chunk
        check_attention(&c, 8, 3, 8, Some(8), half); //      chunk = W, partly filled cache
        check_attention(&c, 7, 150, 150, None, half); //     dense, > 2 tiles of 64 keys
    }
}

/// Split-K decode attention against src/cpu/attention.rs on long windows: 1000 keys of a
/// wrapped rolling buffer, 1100 dense keys, uneven and empty splits.
#[test]
fn attention_split_k_long_windows() {
    let c = ctx();
    for half in kv_types(&c) {
        for n in [1, kn::attention_splits(1000), 7, 16] {
            check_attention_with(&c, 1, 2500, 1000, Some(1000), half, Some(n)); // wrapped 2.5 times
        }
        check_attention_with(&c, 1, 1099, 1100, None, half, Some(kn::attention_splits(1100)));
        check_attention_with(&c, 1, 3, 8, Some(8), half, Some(2)); // 4 keys: the second split is empty
    }
    let k = Kernels::new(&c);
    let (b, p) = (buf(&c, "b", 64), buf(&c, "p", 8));
    let a = AttnArgs { n_tok: 2, n_head: 2, n_kv: 1, head_dim: 4, pos: 0, capacity: 8, window: 0, half: false };
    let e = kn::attention_split(&mut Recorder::new(&c, &k), &a, &b, &b, &b, &b, &b, &b, &p, 1).unwrap_err();
    assert!(e.to_string().contains("2 tokens (decode only)"), "{e}");
}

/// The cache-store kernel against src/cpu/cache.rs's store: chunks that wrap the rolling
/// buffer, one longer than the buffer, a dense cache; f16 rows are the f32 rows rounded.
#[test]
fn kv_store_matches_cpu_cache() {
    let c = ctx();
    let k = Kernels::new(&c);
    let kvd = 24;
    for half in kv_types(&c) {
        for (n, pos, cap, rolling) in [(1, 0, 8, true), (1, 29, 8, true), (5, 13, 8, true), (11, 3, 8, true), (7, 2, 20, false)] {
            let mut cpu = KvCache::new(CacheShape { n_layer: 1, kv_dim: kvd, capacity: cap, rolling, local: None });
            cpu.pos = pos;
            cpu.layers[0].k = rnd(cap * kvd, 80);
            cpu.layers[0].v = rnd(cap * kvd, 81);
            let (ck, cv) = (up_cache(&c, "ck", &cpu.layers[0].k, half), up_cache(&c, "cv", &cpu.layers[0].v, half));
            let (kc, vc) = (rnd(n * kvd, 82), rnd(n * kvd, 83));
            let (kb, vb) = (up(&c, "k", &kc), up(&c, "v", &vc));
            run(&c, &k, |r| kn::kv_store(r, &kb, &vb, &ck, &cv, n, kvd, pos, cap, half));
            cpu.store(0, &kc, &vc);
            let round = |v: &[f32]| -> Vec<f32> { v.iter().map(|&x| if half { half::f16::from_f32(x).to_f32() } else { x }).collect() };
            let what = format!("kv_store n {n} pos {pos} capacity {cap} f16 {half}");
            close(&format!("{what} K"), &read_cache(&c, &ck, half), &round(&cpu.layers[0].k), 0.0);
            close(&format!("{what} V"), &read_cache(&c, &cv, half), &round(&cpu.layers[0].v), 0.0);
        }
    }
}

#[test]
fn moe_route_matmul_id_and_combine() {
    let c = ctx();
    let k = Kernels::new(&c);
    let (n_tok, ne, topk, n_in, n_out) = (5, 6, 2, 64, 37);
    let mut logits = rnd(n_tok * ne, 40);
    logits[3] = logits[1]; // a tie: the lower expert id must win, as the CPU's stable sort
    let (lb, ids, wts) = (up(&c, "logits", &logits), buf(&c, "ids", n_tok * topk), buf(&c, "wts", n_tok * topk));
    run(&c, &k, |r| kn::moe_route(r, &lb, &ids, &wts, n_tok, ne, topk));
    let (gi, gw) = (read_u32(&c, &ids), read(&c, &wts));
    for t in 0..n_tok {
        let want = precis::cpu::moe::route(&logits[t * ne..][..ne], topk);
        for (s, &(e, w)) in want.iter().enumerate() {
            assert_eq!(gi[t * topk + s] as usize, e, "moe_route token {t} slot {s}: expert");
            assert!((gw[t * topk + s] - w).abs() <= TOL_ELEMENTWISE, "moe_route token {t} slot {s}: weight {} vs {w}", gw[t * topk + s]);
        }
    }
    // Stacked Q8_0 experts; each (token, slot) row multiplies by its expert.
    let ty = GgmlType::Q8_0;
    let bytes = random_blocks(ty, n_in * n_out * ne, 41);
    let w = dequantize_vec(ty, &bytes, n_in * n_out * ne);
    let src = MatrixSource { name: "exps", ty, n_in, n_out, n_expert: ne, ranges: vec![0..bytes.len() as u64] };
    let m = block_on(upload_limited(&c, &mut &bytes[..], &src, u64::MAX)).unwrap();
    let x = rnd(n_tok * n_in, 42);
    let xb = up(&c, "x", &x);
    let y = buf(&c, "y", n_tok * topk * n_out);
    run(&c, &k, |r| kn::matmul_id(r, &m, &ids, topk, &xb, false, &y, n_tok));
    let got = read(&c, &y);
    for z in 0..n_tok * topk {
        let e = gi[z] as usize;
        for o in 0..n_out {
            let row = &w[(e * n_out + o) * n_in..][..n_in];
            let want: f32 = row.iter().zip(&x[(z / topk) * n_in..][..n_in]).map(|(a, b)| a * b).sum();
            assert!((got[z * n_out + o] - want).abs() <= 1e-4 * (1.0 + want.abs()), "matmul_id row {z} out {o}: gpu {} cpu {want}", got[z * n_out + o]);
        }
    }
    let out = buf(&c, "combined", n_tok * n_out);
    run(&c, &k, |r| kn::moe_combine(r, &wts, &y, &out, n_tok, topk, n_out));
    let want: Vec<f32> = (0..n_tok * n_out).map(|i| (0..topk).map(|s| gw[(i / n_out) * topk + s] * got[((i / n_out) * topk + s) * n_out + i % n_out]).sum()).collect();
    close("moe_combine", &read(&c, &out), &want, TOL_ELEMENTWISE);
}

#[test]
fn argmax_first_of_ties() {
    let c = ctx();
    let k = Kernels::new(&c);
    let mut x = rnd(49_999, 50);
    x[777] = 5.0;
    x[40_001] = 5.0;
    let (xb, out) = (up(&c, "x", &x), buf(&c, "out", 1));
    run(&c, &k, |r| kn::argmax(r, &xb, 0, x.len(), &out));
    assert_eq!(read_u32(&c, &out)[0], precis::model::sampling::argmax(&x));
    assert_eq!(read_u32(&c, &out)[0], 777);
}

#[test]
fn shape_errors_are_errors() {
    let c = ctx();
    let k = Kernels::new(&c);
    let (a, b) = (buf(&c, "a", 10), buf(&c, "b", 5));
    let mut r = Recorder::new(&c, &k);
    let e = kn::add(&mut r, &a, &b, 10).unwrap_err();
    assert!(e.to_string().contains("a 10 b 5 for 10"), "{e}");
}

/// The seeded GPU sampler against its sort-based twin: same token for every step,
/// vocabularies of awkward sizes, flat and peaked logits (many exact ties: the random
/// logits are multiples of 1e-4), masked (-inf) entries, top-k alone, top-p alone
/// (a nucleus over most of the vocabulary), both, and neither.
#[test]
fn sample_temperature_top_k_top_p_matches_twin() {
    use precis::gpu::sample::{sample, sample_twin, SampleParams};
    use precis::model::sampling::SamplerConfig;
    let c = ctx();
    let k = Kernels::new(&c);
    let configs = [(0.8, 40, 0.95), (1.0, 0, 0.9), (1.5, 0, 1.0), (0.7, 50, 1.0), (1.0, 1, 1.0), (0.5, 1000, 0.5)];
    for (vi, n) in [49152 + 7, 1000, 32000].into_iter().enumerate() {
        for (peak, mul) in [(false, 1.0f32), (true, 12.0)] {
            let mut x: Vec<f32> = rnd(n, 60 + vi as u64).iter().map(|v| v * mul).collect();
            for i in (0..n).step_by(97) {
                x[i] = f32::NEG_INFINITY; // a grammar mask's forbidden tokens
            }
            let xb = up(&c, "logits", &x);
            let out = buf(&c, "token", 1);
            for (ci, &(t, top_k, top_p)) in configs.iter().enumerate() {
                let cfg = SamplerConfig { temperature: t, top_k, top_p, seed: 0x1234_5678_9abc_def0 + ci as u64, ..Default::default() };
                let sp = SampleParams::from_config(&cfg).unwrap();
                let mut seen = std::collections::HashSet::new();
                for step in [0u32, 1, 2, 3, 7, 100, 12345] {
                    run(&c, &k, |r| sample(r, &xb, 0, n, &sp, step, &out));
                    let got = read_u32(&c, &out)[0];
                    let want = sample_twin(&x, &sp, step);
                    assert_eq!(got, want, "sample n {n} peaked {peak} T {t} top_k {top_k} top_p {top_p} step {step}: gpu token {got}, twin {want}");
                    assert!(x[got as usize].is_finite(), "sampled a masked token {got}");
                    seen.insert(got);
                }
                if top_k == 1 {
                    assert_eq!(seen.len(), 1, "top_k 1 is argmax: {seen:?}");
                    assert_eq!(*seen.iter().next().unwrap(), precis::model::sampling::argmax(&x), "top_k 1 vs argmax");
                } else if !peak {
                    assert!(seen.len() > 1, "n {n} T {t} top_k {top_k} top_p {top_p}: seven draws from a flat distribution gave one token");
                }
            }
        }
    }
}

/// The draw over the second row of a two-row logits buffer (as after a prefill that
/// kept all rows) reads that row only; a vocabulary the kernel cannot index is an error.
#[test]
fn sample_row_offset_and_bad_shapes() {
    use precis::gpu::sample::{sample, sample_twin, SampleParams};
    let c = ctx();
    let k = Kernels::new(&c);
    let n = 777;
    let x = rnd(2 * n, 70);
    let (xb, out) = (up(&c, "logits", &x), buf(&c, "token", 1));
    let sp = SampleParams { top_k: 20, top_p: u32::MAX / 10 * 9, inv_t: 1.0, seed: 9 };
    for step in 0..5 {
        run(&c, &k, |r| sample(r, &xb, 1, n, &sp, step, &out));
        assert_eq!(read_u32(&c, &out)[0], sample_twin(&x[n..], &sp, step), "row 1 step {step}");
    }
    let mut r = Recorder::new(&c, &k);
    let e = sample(&mut r, &xb, 2, n, &sp, 0, &out).unwrap_err();
    assert!(e.to_string().contains("logits 1554 for a row of 777 from 1554"), "{e}");
}

/// f64 dot of row `o` of `w` [.., n_in] with x, and Σ|w·x| (the rounding scale).
fn dot_ref(w: &[f32], o: usize, n_in: usize, x: &[f32]) -> (f64, f64) {
    let (mut s, mut mag) = (0f64, 0f64);
    for i in 0..n_in {
        let p = w[o * n_in + i] as f64 * x[i] as f64;
        s += p;
        mag += p.abs();
    }
    (s, mag)
}

/// Fused decode kernels against their twins: Q/K/V stacked in one matrix (also cut
/// into row parts that straddle the Q/K and K/V borders) into three outputs, and
/// gate/up stacked with SwiGLU applied. Also equal to the unfused kernels. With each
/// matvec variant (workgroup-memory and, where granted, subgroup row sums).
#[test]
fn fused_qkv_and_gate_up_swiglu_decode() {
    for c in both_layouts() {
        for sg in matvec_variants(&c) {
            check_fused_decode(&c, &Kernels::with_subgroups(&c, sg));
        }
    }
}

fn check_fused_decode(c: &GpuContext, k: &Kernels) {
    let sg = k.subgroups;
    for ty in [GgmlType::F16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q6K] {
        let n_in = if ty.block_size() == 1 { 75 } else { ty.block_size() * 3 };
        let (nq, nk, nv) = (40, 13, 13);
        let rows = nq + nk + nv;
        let bytes = random_blocks(ty, n_in * rows, 90 + n_in as u64);
        let w = dequantize_vec(ty, &bytes, n_in * rows);
        let x = rnd(n_in, 91);
        let xb = up(c, "x", &x);
        let src = MatrixSource { name: "qkv", ty, n_in, n_out: rows, n_expert: 1, ranges: vec![0..bytes.len() as u64] };
        for limit in [u64::MAX, (ty.row_bytes(n_in) * 17) as u64] {
            let m = block_on(upload_limited(c, &mut &bytes[..], &src, limit)).unwrap();
            let (y0, y1, y2) = (buf(c, "q", nq), buf(c, "k", nk), buf(c, "v", nv));
            run(c, k, |r| kn::matvec_qkv(r, &m, nq, nk, &xb, &y0, &y1, &y2));
            let got: Vec<f32> = [read(c, &y0), read(c, &y1), read(c, &y2)].concat();
            for (o, &g) in got.iter().enumerate() {
                let (s, mag) = dot_ref(&w, o, n_in, &x);
                let tol = tol_for(ty) * mag.max(1e-3);
                assert!((g as f64 - s).abs() <= tol, "matvec_qkv {} ({} parts, {}, subgroups {sg}): first bad index row {o}: gpu {g}, cpu {s} (tol {tol:e})", ty.name(), m.parts.len(), layout(c));
            }
            let all = buf(c, "all", rows);
            run(c, k, |r| kn::matvec(r, &m, &xb, &all, 0));
            // Bit-equal where the row sums' order is fixed; with subgroups a driver may
            // pick another width for the other pipeline (Intel, AMD), which reorders
            // the partial sums.
            let tol = if sg { TOL_MATVEC_VARIANTS } else { 0.0 };
            close(&format!("matvec_qkv {} vs matvec ({}, subgroups {sg})", ty.name(), layout(c)), &got, &read(c, &all), tol);
        }
        // Gate rows 0..nf over up rows nf..2nf.
        let nf = rows / 2;
        let src = MatrixSource { name: "gate_up", ty, n_in, n_out: 2 * nf, n_expert: 1, ranges: vec![0..(ty.row_bytes(n_in) * 2 * nf) as u64] };
        let m = block_on(upload_limited(c, &mut &bytes[..], &src, u64::MAX)).unwrap();
        let y = buf(c, "y", nf);
        run(c, k, |r| kn::matvec_swiglu(r, &m, &xb, &y));
        let got = read(c, &y);
        let want: Vec<f32> = (0..nf).map(|o| precis::cpu::vector::silu(dot_ref(&w, o, n_in, &x).0 as f32) * dot_ref(&w, nf + o, n_in, &x).0 as f32).collect();
        close(&format!("matvec_swiglu {} ({}, subgroups {sg})", ty.name(), layout(c)), &got, &want, TOL_FUSED_SWIGLU);
        let (g, u) = (buf(c, "g", nf), buf(c, "u", nf));
        run(c, k, |r| {
            kn::matmul_rows(r, &m, 0..nf, &xb, n_in, &g, nf, 0, 1)?;
            kn::matmul_rows(r, &m, nf..2 * nf, &xb, n_in, &u, nf, 0, 1)?;
            kn::swiglu(r, &g, &u, nf)
        });
        close(&format!("matvec_swiglu {} vs matvec + swiglu ({}, subgroups {sg})", ty.name(), layout(c)), &got, &read(c, &g), TOL_ELEMENTWISE);
    }
}

/// Row `o` of `w` [.., n_in] times x RMS-normalized by g in f64, and Σ|w·norm(x)|.
fn norm_dot_ref(w: &[f32], o: usize, n_in: usize, x: &[f32], g: &[f32], eps: f64) -> (f64, f64) {
    let ms = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n_in as f64;
    let scale = 1.0 / (ms + eps).sqrt();
    let (mut s, mut mag) = (0f64, 0f64);
    for i in 0..n_in {
        let p = w[o * n_in + i] as f64 * x[i] as f64 * scale * g[i] as f64;
        s += p;
        mag += p.abs();
    }
    (s, mag)
}

/// Each output against the f64 reference of its row; names the first bad index.
fn check_rows(what: &str, got: &[f32], want: impl Fn(usize) -> (f64, f64), tol: f64) {
    for (o, &g) in got.iter().enumerate() {
        let (s, mag) = want(o);
        let t = tol * mag.max(1e-3);
        assert!((g as f64 - s).abs() <= t, "{what}: first bad index {o}: gpu {g}, f64 {s} (tol {t:e})");
    }
}

/// The decode fusions of issue 18 against their twins, on seeded random input, in
/// both layouts and each matvec variant, whole matrices and matrices cut into row
/// parts: the RMSNorm fused into matvec / matvec_qkv / matvec_swiglu (against the
/// f64 norm-then-product and against rms_norm followed by the unfused kernel), and the
/// residual add folded into the matvec (bit for bit the matvec followed by `add`).
#[test]
fn fused_norm_and_residual_matvec_decode() {
    for c in both_layouts() {
        for sg in matvec_variants(&c) {
            check_fused_norm_add(&c, &Kernels::with_subgroups(&c, sg));
        }
    }
}

fn check_fused_norm_add(c: &GpuContext, k: &Kernels) {
    let sg = k.subgroups;
    let eps = 1e-5f32;
    for ty in [GgmlType::F16, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q6K] {
        let n_in = if ty.block_size() == 1 { 75 } else { ty.block_size() * 3 };
        let (nq, nk, nv) = (40, 13, 13);
        let rows = nq + nk + nv;
        let bytes = random_blocks(ty, n_in * rows, 190 + n_in as u64);
        let w = dequantize_vec(ty, &bytes, n_in * rows);
        // Activations of a residual stream's size (not ~1): the norm's scale matters.
        let x: Vec<f32> = rnd(n_in, 191).iter().map(|v| v * 7.0).collect();
        let g = rnd(n_in, 192);
        let (xb, gb) = (up(c, "x", &x), up(c, "g", &g));
        let tol = tol_for(ty) + TOL_FUSED_NORM;
        let what = |k: &str, m: &precis::gpu::weights::GpuMatrix| format!("{k} {} ({} parts, {}, subgroups {sg})", ty.name(), m.parts.len(), layout(c));
        let src = MatrixSource { name: "w", ty, n_in, n_out: rows, n_expert: 1, ranges: vec![0..bytes.len() as u64] };
        for limit in [u64::MAX, (ty.row_bytes(n_in) * 17) as u64] {
            let m = block_on(upload_limited(c, &mut &bytes[..], &src, limit)).unwrap();
            // RMSNorm fused into the matvec; its twin: rms_norm, then the matvec.
            let y = buf(c, "y", rows);
            run(c, k, |r| kn::matvec_fused(r, &m, 0..rows, kn::Fuse::norm(&gb, eps), &xb, &y, 0));
            let fused = read(c, &y);
            check_rows(&what("matvec with fused RMSNorm vs f64", &m), &fused, |o| norm_dot_ref(&w, o, n_in, &x, &g, eps as f64), tol);
            let (nb, y2) = (buf(c, "normed", n_in), buf(c, "y2", rows));
            run(c, k, |r| {
                kn::rms_norm(r, &xb, &gb, &nb, n_in, 1, eps)?;
                kn::matvec(r, &m, &nb, &y2, 0)
            });
            let unfused = read(c, &y2);
            check_rows(&what("matvec with fused RMSNorm vs rms_norm + matvec", &m), &fused, |o| (unfused[o] as f64, norm_dot_ref(&w, o, n_in, &x, &g, eps as f64).1), tol);

            // Rows 20..rows only (a stacked projection's slice), fused norm.
            let ys = buf(c, "ys", rows - 20);
            run(c, k, |r| kn::matvec_fused(r, &m, 20..rows, kn::Fuse::norm(&gb, eps), &xb, &ys, 0));
            close(&what("matvec rows 20.. with fused RMSNorm vs all rows", &m), &read(c, &ys), &fused[20..], TOL_SAME_OPS);

            // The residual add folded in: y0 + W·x, bit for bit the matvec then `add`.
            let y0 = rnd(rows, 193);
            let (ya, tmp, yb) = (up(c, "ya", &y0), buf(c, "tmp", rows), up(c, "yb", &y0));
            run(c, k, |r| kn::matvec_fused(r, &m, 0..rows, kn::Fuse::add(), &xb, &ya, 0));
            run(c, k, |r| {
                kn::matvec(r, &m, &xb, &tmp, 0)?;
                kn::add(r, &yb, &tmp, rows)
            });
            close(&what("matvec + residual (fused) vs matvec then add", &m), &read(c, &ya), &read(c, &yb), TOL_SAME_OPS);

            // Q/K/V with the norm fused, against the fused matvec's rows (the same sums).
            let (q, kk, v) = (buf(c, "q", nq), buf(c, "k", nk), buf(c, "v", nv));
            run(c, k, |r| kn::matvec_qkv_fused(r, &m, nq, nk, kn::Fuse::norm(&gb, eps), &xb, &q, &kk, &v));
            let got = [read(c, &q), read(c, &kk), read(c, &v)].concat();
            check_rows(&what("matvec_qkv with fused RMSNorm vs f64", &m), &got, |o| norm_dot_ref(&w, o, n_in, &x, &g, eps as f64), tol);
            let vt = if sg { TOL_MATVEC_VARIANTS } else { TOL_SAME_OPS };
            close(&what("matvec_qkv with fused RMSNorm vs matvec with it", &m), &got, &fused, vt);
        }
        // Gate/up + SwiGLU with the norm fused; twin: rms_norm, then matvec_swiglu.
        let nf = rows / 2;
        let src = MatrixSource { name: "gate_up", ty, n_in, n_out: 2 * nf, n_expert: 1, ranges: vec![0..(ty.row_bytes(n_in) * 2 * nf) as u64] };
        let m = block_on(upload_limited(c, &mut &bytes[..], &src, u64::MAX)).unwrap();
        let y = buf(c, "y", nf);
        run(c, k, |r| kn::matvec_swiglu_fused(r, &m, kn::Fuse::norm(&gb, eps), &xb, &y));
        let got = read(c, &y);
        let want: Vec<f32> = (0..nf).map(|o| precis::cpu::vector::silu(norm_dot_ref(&w, o, n_in, &x, &g, eps as f64).0 as f32) * norm_dot_ref(&w, nf + o, n_in, &x, &g, eps as f64).0 as f32).collect();
        close(&what("matvec_swiglu with fused RMSNorm vs f64", &m), &got, &want, TOL_FUSED_SWIGLU);
        let (nb, y2) = (buf(c, "normed", n_in), buf(c, "y2", nf));
        run(c, k, |r| {
            kn::rms_norm(r, &xb, &gb, &nb, n_in, 1, eps)?;
            kn::matvec_swiglu(r, &m, &nb, &y2)
        });
        close(&what("matvec_swiglu with fused RMSNorm vs rms_norm + matvec_swiglu", &m), &got, &read(c, &y2), TOL_FUSED_SWIGLU);
    }
    // Bad shapes are errors, not panics: a norm weight shorter than the input, an add
    // into Q/K/V (it writes them), a fused matvec over more rows than the matrix has.
    let ty = GgmlType::Q8_0;
    let bytes = random_blocks(ty, 64 * 4, 9);
    let m = block_on(upload_limited(c, &mut &bytes[..], &MatrixSource { name: "w", ty, n_in: 64, n_out: 4, n_expert: 1, ranges: vec![0..bytes.len() as u64] }, u64::MAX)).unwrap();
    let (x, short, y) = (buf(c, "x", 64), buf(c, "g", 63), buf(c, "y", 4));
    let mut r = Recorder::new(c, k);
    assert!(kn::matvec_fused(&mut r, &m, 0..4, kn::Fuse::norm(&short, 1e-5), &x, &y, 0).is_err(), "a norm weight of 63 for n_in 64");
    assert!(kn::matvec_qkv_fused(&mut r, &m, 1, 1, kn::Fuse::add(), &x, &y, &y, &y).is_err(), "an add into Q/K/V");
    assert!(kn::matvec_fused(&mut r, &m, 0..5, kn::Fuse::add(), &x, &buf(c, "y5", 5), 0).is_err(), "rows past the matrix");
}

/// rms_norm's fused entry points and RoPE of Q and K in one dispatch, against their
/// unfused twins (the same f32 operations, so bit for bit): `rms_norm_add` (gemma3's
/// post-norm and the residual add) = rms_norm then add, `rms_norm_inplace` (the
/// per-head Q/K norms) = rms_norm into another buffer, `rope_qk` = rope of Q then of K,
/// in both pairings, and with mistral3's query temperature = `rope_tempered` of Q then
/// the untempered rope of K (the temperature on Q's pairs only).
#[test]
fn rms_norm_add_inplace_and_rope_qk_match_twins() {
    let c = ctx();
    let k = Kernels::new(&c);
    let (n, rows, eps) = (300, 3, 1e-6);
    let (x, g, y0) = (rnd(n * rows, 11), rnd(n, 12), rnd(n * rows, 13));
    let (xb, gb) = (up(&c, "x", &x), up(&c, "g", &g));
    let (ya, yb, tmp) = (up(&c, "ya", &y0), up(&c, "yb", &y0), buf(&c, "tmp", n * rows));
    run(&c, &k, |r| kn::rms_norm_add(r, &xb, &gb, &ya, n, rows, eps));
    run(&c, &k, |r| {
        kn::rms_norm(r, &xb, &gb, &tmp, n, rows, eps)?;
        kn::add(r, &yb, &tmp, n * rows)
    });
    close("rms_norm_add vs rms_norm then add", &read(&c, &ya), &read(&c, &yb), TOL_SAME_OPS);
    let want: Vec<f32> = y0.iter().zip(precis::cpu::vector::rms_norm(&x, &g, eps)).map(|(a, b)| a + b).collect();
    close("rms_norm_add vs CPU", &read(&c, &ya), &want, TOL_ELEMENTWISE);

    let xi = up(&c, "xi", &x);
    run(&c, &k, |r| kn::rms_norm_inplace(r, &xi, &gb, n, rows, eps));
    close("rms_norm_inplace vs rms_norm", &read(&c, &xi), &read(&c, &tmp), TOL_SAME_OPS);

    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        let (nh, nkv, hd, n_rot, pos, t) = (6, 2, 12, 8, 77, 3);
        let inv: Vec<f32> = (0..n_rot / 2).map(|i| 10000f32.powf(-2.0 * i as f32 / n_rot as f32)).collect();
        let ib = up(&c, "inv", &inv);
        let (q0, k0) = (rnd(t * nh * hd, 14), rnd(t * nkv * hd, 15));
        let (qa, ka, qb, kb) = (up(&c, "qa", &q0), up(&c, "ka", &k0), up(&c, "qb", &q0), up(&c, "kb", &k0));
        run(&c, &k, |r| kn::rope_qk(r, &qa, &ka, &ib, t, nh, nkv, hd, pos, style, 0.9, None));
        run(&c, &k, |r| {
            kn::rope_scaled(r, &qb, &ib, t, nh, hd, pos, style, 0.9)?;
            kn::rope_scaled(r, &kb, &ib, t, nkv, hd, pos, style, 0.9)
        });
        close(&format!("rope_qk Q vs rope {style:?}"), &read(&c, &qa), &read(&c, &qb), TOL_SAME_OPS);
        close(&format!("rope_qk K vs rope {style:?}"), &read(&c, &ka), &read(&c, &kb), TOL_SAME_OPS);
        let mut r = Recorder::new(&c, &k);
        assert!(kn::rope_qk(&mut r, &qa, &ka, &ib, t, nh, nkv + 1, hd, pos, style, 1.0, None).is_err(), "K shorter than its heads");
        // The query temperature needs every dim rotated (here 8 of 12): refused.
        let temp = Some(AttnTemp { beta: 0.1, len: 26 });
        assert!(kn::rope_qk(&mut r, &qa, &ka, &ib, t, nh, nkv, hd, pos, style, 1.0, temp).is_err(), "temperature with unrotated dims");

        // Every dim rotated, rows 77..80 across a temperature step (floor(pos / 26): 2, 3).
        let inv: Vec<f32> = (0..hd / 2).map(|i| 10000f32.powf(-2.0 * i as f32 / hd as f32)).collect();
        let ib = up(&c, "inv full", &inv);
        let (qa, ka, qb, kb) = (up(&c, "qa", &q0), up(&c, "ka", &k0), up(&c, "qb", &q0), up(&c, "kb", &k0));
        run(&c, &k, |r| kn::rope_qk(r, &qa, &ka, &ib, t, nh, nkv, hd, pos, style, 0.9, temp));
        run(&c, &k, |r| {
            kn::rope_tempered(r, &qb, &ib, t, nh, hd, pos, style, 0.9, temp)?;
            kn::rope_scaled(r, &kb, &ib, t, nkv, hd, pos, style, 0.9)
        });
        close(&format!("rope_qk tempered Q vs rope_tempered {style:?}"), &read(&c, &qa), &read(&c, &qb), TOL_SAME_OPS);
        close(&format!("rope_qk K (never tempered) vs rope {style:?}"), &read(&c, &ka), &read(&c, &kb), TOL_SAME_OPS);
        let mut want = q0.clone();
        precis::cpu::rope::Rope::from_freqs(inv.clone(), hd, hd, style).scaled(0.9).apply_tempered(&mut want, nh, pos, temp);
        close(&format!("rope_qk tempered Q vs CPU {style:?}"), &read(&c, &qa), &want, 3e-4); // angles to ~80 rad: f32 sin/cos differ
        let plain = up(&c, "qp", &q0);
        run(&c, &k, |r| kn::rope_scaled(r, &plain, &ib, t, nh, hd, pos, style, 0.9));
        assert!(read(&c, &qa).iter().zip(read(&c, &plain)).any(|(a, b)| (a - b).abs() > 1e-3), "the temperature changes Q");
    }
}

/// The device asks for subgroups whenever the adapter offers them (wgpu 30's
/// `Features::SUBGROUP`), records the grant, and the matvec uses them unless
/// `PRECIS_GPU_SUBGROUPS=0`; with them, the subgroup matvec equals the
/// workgroup-memory one on a row long enough for many items per lane.
#[test]
fn subgroups_requested_granted_and_used() {
    let [c, _] = both_layouts(); // lanes per row: the layout the subgroup sums serve
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() })).unwrap();
    let offered = adapter.features().contains(wgpu::Features::SUBGROUP);
    eprintln!("{}: subgroups offered {offered}, granted {}, sizes {:?}, matvec uses them {}", c.adapter_name, c.has_subgroups, c.subgroup_sizes, c.subgroup_matvec);
    // GpuContext::new retries with no optional features when a driver refuses one it
    // advertised; only then may an offered feature be missing.
    assert!(c.has_subgroups == offered || (!c.has_subgroups && !c.has_f16), "an offered SUBGROUP feature is requested and granted");
    let forced_off = std::env::var("PRECIS_GPU_SUBGROUPS").is_ok_and(|v| v == "0");
    assert_eq!(c.subgroup_matvec, c.has_subgroups && !forced_off, "PRECIS_GPU_SUBGROUPS={forced_off}");
    assert_eq!(Kernels::new(&c).subgroups, c.subgroup_matvec);
    if !c.has_subgroups {
        return;
    }
    let (lo, hi) = c.subgroup_sizes;
    assert!(lo >= 1 && lo <= hi && hi <= 128 && lo.is_power_of_two() && hi.is_power_of_two(), "subgroup sizes {lo}..{hi}");
    let ty = GgmlType::Q8_0;
    let (n_in, n_out) = (32 * 91, 29);
    let bytes = random_blocks(ty, n_in * n_out, 5);
    let src = MatrixSource { name: "w", ty, n_in, n_out, n_expert: 1, ranges: vec![0..bytes.len() as u64] };
    let m = block_on(upload_limited(&c, &mut &bytes[..], &src, u64::MAX)).unwrap();
    let xb = up(&c, "x", &rnd(n_in, 6));
    let ys: Vec<Vec<f32>> = [false, true]
        .into_iter()
        .map(|sg| {
            let y = buf(&c, "y", n_out);
            run(&c, &Kernels::with_subgroups(&c, sg), |r| kn::matvec(r, &m, &xb, &y, 0));
            read(&c, &y)
        })
        .collect();
    close("matvec: subgroup vs workgroup-memory row sums", &ys[1], &ys[0], TOL_MATVEC_VARIANTS);
}

/// llvmpipe's subgroup size follows its vector width (`LP_NATIVE_VECTOR_WIDTH`): the
/// decode matvec tests rerun in child processes at 128 … 2048 bits, subgroups of 4, 16,
/// 32 and 64 (at 1024 bits llvmpipe reports 32 but runs 16 invocations, a partial
/// subgroup), on top of the default 8 this process tests. Other adapters test their
/// own size in the tests above.
#[test]
fn matvec_subgroups_every_llvmpipe_width() {
    if std::env::var_os("PRECIS_TEST_LP_WIDTH").is_some() {
        return; // a child: it runs the named tests only
    }
    let c = ctx();
    if !c.adapter_name.contains("llvmpipe") || !c.has_subgroups {
        eprintln!("{}: not llvmpipe with subgroups, its vector width cannot be changed", c.adapter_name);
        return;
    }
    for (bits, size) in [(128, 4), (512, 16), (1024, 32), (2048, 64)] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--nocapture", "--test-threads=2", "matmul_every_type", "matmul_split", "fused_qkv", "subgroups_requested"])
            .env("LP_NATIVE_VECTOR_WIDTH", bits.to_string())
            .env("PRECIS_TEST_LP_WIDTH", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "LP_NATIVE_VECTOR_WIDTH={bits}: the matvec tests failed:\n{text}");
        assert!(text.contains(&format!("sizes ({size}, {size})")), "LP_NATIVE_VECTOR_WIDTH={bits}: expected subgroup size {size}:\n{text}");
        assert!(text.contains("4 passed"), "LP_NATIVE_VECTOR_WIDTH={bits}: expected 4 tests to run:\n{text}");
    }
}

/// Grouped (by expert, tiled) against per-(token, slot) expert matmul: the same products,
/// summed in another order (a tile accumulates per 32-element sub-block, the per-row
/// kernel over 64 strided lanes); bound relative to Σ|w·x| as TOL_QUANT_DOT.
const TOL_GROUPED_VS_PER_ROW: f64 = 2e-5;

/// Top-k expert ids per token, distinct within a token as moe_route's, drawn from
/// `pool` only (the other experts get no tokens); `every` is each token's first pick.
fn expert_ids(n_tok: usize, k: usize, pool: &[u32], every: Option<u32>, seed: u64) -> Vec<u32> {
    let r = rnd(n_tok * pool.len(), seed);
    let mut ids = vec![];
    for t in 0..n_tok {
        let mut cand: Vec<(f32, u32)> = pool.iter().enumerate().map(|(i, &e)| (r[t * pool.len() + i], e)).collect();
        cand.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut picks: Vec<u32> = every.into_iter().collect();
        picks.extend(cand.iter().map(|c| c.1).filter(|e| Some(*e) != every));
        ids.extend(&picks[..k]);
    }
    ids
}

/// Uploads a random stack of `ne` experts [n_out, n_in] of `ty` in parts of at most
/// `limit` bytes; returns it with its dequantized weights.
fn expert_stack(c: &GpuContext, ty: GgmlType, n_in: usize, n_out: usize, ne: usize, limit: u64) -> (precis::gpu::weights::GpuMatrix, Vec<f32>) {
    let bytes = random_blocks(ty, n_in * n_out * ne, 41 + n_in as u64);
    let w = dequantize_vec(ty, &bytes, n_in * n_out * ne);
    let src = MatrixSource { name: "exps", ty, n_in, n_out, n_expert: ne, ranges: vec![0..bytes.len() as u64] };
    (block_on(upload_limited(c, &mut &bytes[..], &src, limit)).unwrap(), w)
}

/// `matmul_id` (per (token, slot)) and, for n_tok > 1, `moe_group` + `matmul_id_grouped`
/// on `ids` against dequantize-then-dot in f64, and against each other; x per token
/// (gate/up) or per slot (down). Returns the stack's parts' expert ranges.
#[allow(clippy::too_many_arguments)]
fn check_matmul_id(c: &GpuContext, ty: GgmlType, n_in: usize, n_out: usize, ne: usize, k: usize, ids: &[u32], limit: u64, x_per_slot: bool) -> Vec<std::ops::Range<usize>> {
    let kn_ = Kernels::new(c);
    let n_tok = ids.len() / k;
    let (m, w) = expert_stack(c, ty, n_in, n_out, ne, limit);
    let x_rows = if x_per_slot { n_tok * k } else { n_tok };
    let x = rnd(x_rows * n_in, 42 + n_tok as u64);
    let (xb, idb) = (up(c, "x", &x), up_u32(c, "ids", ids));
    let what = format!("{} {ne} experts {n_out}x{n_in}, {n_tok} tokens top {k}, x per slot {x_per_slot}, {} parts", ty.name(), m.parts.len());
    let per_row = buf(c, "y per row", n_tok * k * n_out);
    run(c, &kn_, |r| kn::matmul_id(r, &m, &idb, k, &xb, x_per_slot, &per_row, n_tok));
    let per_row = read(c, &per_row);
    let grouped = (n_tok > 1).then(|| {
        let (offsets, entries) = (buf(c, "offsets", ne + 1), buf(c, "entries", n_tok * k));
        let y = buf(c, "y grouped", n_tok * k * n_out);
        run(c, &kn_, |r| {
            kn::moe_group(r, &idb, &offsets, &entries, n_tok, ne, k)?;
            kn::matmul_id_grouped(r, &m, &offsets, &entries, k, &xb, x_per_slot, &y, n_tok)
        });
        read(c, &y)
    });
    for z in 0..n_tok * k {
        let e = ids[z] as usize;
        let xr = if x_per_slot { z } else { z / k };
        for o in 0..n_out {
            let (s, mag) = dot_ref(&w, e * n_out + o, n_in, &x[xr * n_in..][..n_in]);
            let tol = tol_for(ty) * mag.max(1e-3);
            let g = per_row[z * n_out + o] as f64;
            assert!((g - s).abs() <= tol, "matmul_id {what}: first bad index row {z} (expert {e}) out {o}: gpu {g}, cpu {s} (tol {tol:e})");
            if let Some(gr) = &grouped {
                let gg = gr[z * n_out + o] as f64;
                assert!((gg - s).abs() <= tol, "matmul_id_grouped {what}: first bad index row {z} (expert {e}) out {o}: gpu {gg}, cpu {s} (tol {tol:e})");
                let tg = TOL_GROUPED_VS_PER_ROW * mag.max(1e-3);
                assert!((gg - g).abs() <= tg, "matmul_id_grouped vs matmul_id {what}: first bad index row {z} out {o}: {gg} vs {g} (tol {tg:e})");
            }
        }
    }
    m.parts.iter().map(|p| m.experts(p)).collect()
}

/// The grouping kernel against its twin, exactly: random picks, experts with no
/// tokens, one expert picked by every token, a single token.
#[test]
fn moe_group_matches_twin() {
    let c = ctx();
    let k = Kernels::new(&c);
    let cases: [(usize, usize, usize, Vec<u32>, Option<u32>); 4] = [(13, 6, 2, (0..6).collect(), None), (21, 8, 2, vec![1, 4, 6], None), (19, 5, 3, (0..5).collect(), Some(2)), (1, 4, 2, (0..4).collect(), None)];
    for (n_tok, ne, topk, pool, every) in cases {
        let ids = expert_ids(n_tok, topk, &pool, every, 100 + n_tok as u64);
        let (want_off, want_ent) = precis::model::routing::group_by_expert(&ids, ne);
        let idb = up_u32(&c, "ids", &ids);
        let (offsets, entries) = (buf(&c, "offsets", ne + 1), buf(&c, "entries", n_tok * topk));
        run(&c, &k, |r| kn::moe_group(r, &idb, &offsets, &entries, n_tok, ne, topk));
        let (got_off, got_ent) = (read_u32(&c, &offsets), read_u32(&c, &entries));
        let what = format!("moe_group {n_tok} tokens, {ne} experts, top {topk}, pool {pool:?}, every {every:?}");
        if let Some(i) = (0..=ne).find(|&i| got_off[i] != want_off[i]) {
            panic!("{what}: first bad offset index {i}: gpu {}, twin {} (gpu {got_off:?}, twin {want_off:?})", got_off[i], want_off[i]);
        }
        if let Some(i) = (0..n_tok * topk).find(|&i| got_ent[i] != want_ent[i]) {
            panic!("{what}: first bad entry index {i}: gpu {}, twin {}", got_ent[i], want_ent[i]);
        }
        if every.is_some() {
            let e = every.unwrap() as usize;
            assert_eq!(want_off[e + 1] - want_off[e], n_tok as u32, "{what}: expert {e} holds every token");
        }
    }
}

/// Grouped prefill expert matmuls against the per-row kernel and the CPU: token counts
/// that are not multiples of the 8-token tile, rows not a multiple of the 64-row
/// workgroup, experts with no tokens, one expert with every token, x per token and
/// per slot.
#[test]
fn matmul_id_grouped_matches_per_row() {
    let c = ctx();
    for (ty, n_in) in [(GgmlType::Q8_0, 96), (GgmlType::Q4K, 256), (GgmlType::Q5K, 256)] {
        for x_per_slot in [false, true] {
            check_matmul_id(&c, ty, n_in, 67, 6, 2, &expert_ids(13, 2, &[0, 2, 3, 5], None, 7), u64::MAX, x_per_slot);
            check_matmul_id(&c, ty, n_in, 67, 6, 2, &expert_ids(21, 2, &(0..6).collect::<Vec<_>>(), Some(4), 8), u64::MAX, x_per_slot);
        }
    }
    // Top 1 with every one of 17 tokens on one expert: two full tiles and one token.
    check_matmul_id(&c, GgmlType::Q4_0, 64, 37, 4, 1, &[3; 17], u64::MAX, false);
}

/// An expert stack split by whole experts into parts of 3, 3 and 1 (odd counts; the
/// limit is not a multiple of an expert): each dispatch computes only its part's
/// experts, decode and prefill (grouped), against the CPU.
#[test]
fn matmul_id_split_by_whole_experts() {
    let c = ctx();
    for (ty, n_in, n_out) in [(GgmlType::Q8_0, 64, 37), (GgmlType::Q4K, 256, 13)] {
        let eb = (ty.row_bytes(n_in) * n_out) as u64;
        let limit = 3 * eb + eb / 2;
        let all: Vec<u32> = (0..7).collect();
        for (n_tok, seed) in [(1, 1), (2, 2), (11, 3)] {
            let parts = check_matmul_id(&c, ty, n_in, n_out, 7, 2, &expert_ids(n_tok, 2, &all, None, seed), limit, false);
            assert_eq!(parts, [0..3, 3..6, 6..7], "{} stack of 7 experts of {eb} bytes under {limit}", ty.name());
            check_matmul_id(&c, ty, n_in, n_out, 7, 2, &expert_ids(n_tok, 2, &all, Some(6), seed), limit, true);
        }
    }
    // Two parts of 3 with one expert taking every token.
    let eb = (GgmlType::Q8_0.row_bytes(64) * 37) as u64;
    let parts = check_matmul_id(&c, GgmlType::Q8_0, 64, 37, 6, 2, &expert_ids(9, 2, &(0..6).collect::<Vec<_>>(), Some(2), 5), 3 * eb, false);
    assert_eq!(parts, [0..3, 3..6]);
}

/// A single expert over the part limit cannot be split: the upload names the tensor,
/// one expert's bytes and the limit, before allocating anything.
#[test]
fn one_expert_over_the_limit_is_a_clear_error() {
    let c = ctx();
    let (ty, n_in, n_out, ne) = (GgmlType::Q8_0, 64, 37, 5);
    let eb = (ty.row_bytes(n_in) * n_out) as u64;
    let bytes = random_blocks(ty, n_in * n_out * ne, 3);
    let src = MatrixSource { name: "blk.0.ffn_up_exps.weight", ty, n_in, n_out, n_expert: ne, ranges: vec![0..bytes.len() as u64] };
    let e = block_on(upload_limited(&c, &mut &bytes[..], &src, eb - 1)).err().expect("an expert over the limit must not upload");
    match &e {
        GpuError::TooLarge { tensor, bytes, limit } => {
            assert!(tensor.contains("blk.0.ffn_up_exps.weight"), "{e}");
            assert_eq!((*bytes, *limit), (eb, eb - 1), "{e}");
        }
        e => panic!("expected TooLarge, got {e}"),
    }
    assert!(e.to_string().contains(&format!("needs {eb} bytes")) && e.to_string().contains(&format!("limit of {} bytes", eb - 1)), "{e}");
    assert_eq!(precis::gpu::weights::check_fits(&src, eb - 1), Err(e));
    // Exactly one expert per part fits.
    assert!(precis::gpu::weights::check_fits(&src, eb).is_ok());
    let m = block_on(upload_limited(&c, &mut &bytes[..], &src, eb)).unwrap();
    assert_eq!(m.parts.len(), ne, "one expert per part");
}
