//! Attention over the rolling KV cache (attention.wgsl: a query per workgroup, and
//! split-K decode; attention_prefill.wgsl: tiled prefill) and the cache writes
//! (kv_store.wgsl).

use bytemuck::{Pod, Zeroable};
use crate::gpu::context::GpuError;
use super::{shape, workgroups_xy, Bind, Buf, Recorder};

const ATTENTION: &str = include_str!("../../../shaders/attention.wgsl");
const ATTENTION_PREFILL: &str = include_str!("../../../shaders/attention_prefill.wgsl");
const ATTENTION_ARGS: &str = include_str!("../../../shaders/attention_args.wgsl");
const KV_STORE: &str = include_str!("../../../shaders/kv_store.wgsl");

/// Attention geometry for one chunk.
pub struct AttnArgs {
    pub n_tok: usize,
    pub n_head: usize,
    pub n_kv: usize,
    pub head_dim: usize,
    /// Position of the chunk's first token.
    pub pos: usize,
    pub capacity: usize,
    /// 0 = full causal.
    pub window: usize,
    /// The cache holds f16 (`shader-f16`), else f32.
    pub half: bool,
}

/// What the attention and cache-store shaders are joined after: the cache's element
/// type (f16 needs the `shader-f16` feature, which the caller checked).
fn kv_prelude(half: bool) -> &'static str {
    if half {
        "enable f16;\nalias kv_t = f16;\n"
    } else {
        "alias kv_t = f32;\n"
    }
}

/// The pipeline name of `base` for the cache's element type ("attention_f16", ...).
fn kv_name(base: &str, half: bool) -> String {
    format!("{base}_{}", if half { "f16" } else { "f32" })
}

/// An attention module: the cache's element type, the shared uniform, bindings and
/// key reads (attention_args.wgsl), then `body`.
fn attention_source(half: bool, body: &str) -> String {
    format!("{}{ATTENTION_ARGS}{body}", kv_prelude(half))
}

/// The uniform of shaders/attention.wgsl and shaders/attention_prefill.wgsl (`Params`
/// in shaders/attention_args.wgsl, which both join), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct AttentionParams {
    pub n_tok: u32, pub n_head: u32, pub n_kv: u32, pub hd: u32,
    pub pos: u32, pub capacity: u32, pub window: u32, pub oldest: u32,
    pub scale: f32, pub n_split: u32, pub chunk: u32, pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<AttentionParams>() == 48);

impl AttentionParams {
    /// `a`'s geometry; `n_split` splits of `chunk` keys for split-K decode (else 0).
    fn new(a: &AttnArgs, n_split: usize, chunk: usize) -> Self {
        AttentionParams {
            n_tok: a.n_tok as u32,
            n_head: a.n_head as u32,
            n_kv: a.n_kv as u32,
            hd: a.head_dim as u32,
            pos: a.pos as u32,
            capacity: a.capacity as u32,
            window: a.window as u32,
            oldest: a.pos.saturating_sub(a.capacity) as u32,
            scale: 1.0 / (a.head_dim as f32).sqrt(),
            n_split: n_split as u32,
            chunk: chunk as u32,
            pad: 0,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn attention_shapes(a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf) -> Result<(), GpuError> {
    let (qd, kvd) = (a.n_head * a.head_dim, a.n_kv * a.head_dim);
    shape("attention", a.head_dim <= 256 && a.n_kv > 0 && a.n_head % a.n_kv == 0, || format!("head_dim {} (max 256), {} heads over {} kv heads", a.head_dim, a.n_head, a.n_kv))?;
    shape("attention", q.len >= a.n_tok * qd && out.len >= a.n_tok * qd && k.len >= a.n_tok * kvd && v.len >= a.n_tok * kvd, || format!("q {} k {} v {} out {} for {} tokens", q.len, k.len, v.len, out.len, a.n_tok))?;
    shape("attention", ck.len >= a.capacity * kvd && cv.len >= a.capacity * kvd && a.capacity > 0, || format!("cache {} floats for {} slots of {kvd}", ck.len, a.capacity))
}

#[allow(clippy::too_many_arguments)]
pub fn attention(rec: &mut Recorder, a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf) -> Result<(), GpuError> {
    attention_shapes(a, q, k, v, ck, cv, out)?;
    let pl = rec.kernels.pipeline(rec.ctx, &kv_name("attention", a.half), "main", || attention_source(a.half, ATTENTION));
    let binds = [(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&k.buffer)), (3, Bind::Whole(&v.buffer)), (4, Bind::Whole(&ck.buffer)), (5, Bind::Whole(&cv.buffer)), (6, Bind::Whole(&out.buffer))];
    rec.dispatch(&pl, &AttentionParams::new(a, 0, 0), &binds, (a.n_head as u32, a.n_tok as u32, 1))
}

/// Largest head_dim [`attention_prefill`] takes (HD_MAX in attention_prefill.wgsl);
/// larger heads go through [`attention`].
pub const PREFILL_MAX_HEAD_DIM: usize = 128;

/// Query rows (positions × the heads sharing a KV head) per workgroup (R in
/// attention_prefill.wgsl).
const PREFILL_ROWS: usize = 16;

/// Chunked-prefill attention, tiled: one workgroup per (tile of PREFILL_ROWS query
/// rows, KV head), each key and value row read once per tile; same masks and
/// arguments as [`attention`].
#[allow(clippy::too_many_arguments)]
pub fn attention_prefill(rec: &mut Recorder, a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf) -> Result<(), GpuError> {
    attention_shapes(a, q, k, v, ck, cv, out)?;
    let tiles = (a.n_tok * (a.n_head / a.n_kv)).div_ceil(PREFILL_ROWS);
    shape("attention_prefill", (1..=PREFILL_MAX_HEAD_DIM).contains(&a.head_dim) && tiles <= 65535, || format!("head_dim {} (1..={PREFILL_MAX_HEAD_DIM}), {} tokens × {} heads per kv head in {tiles} tiles (max 65535)", a.head_dim, a.n_tok, a.n_head / a.n_kv))?;
    let pl = rec.kernels.pipeline(rec.ctx, &kv_name("attention_prefill", a.half), "main", || attention_source(a.half, ATTENTION_PREFILL));
    // Multiply-adds of scores and values, a unit each (about what a quantized
    // weight byte costs a matmul).
    rec.charge(attention_units(a))?;
    let binds = [(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&k.buffer)), (3, Bind::Whole(&v.buffer)), (4, Bind::Whole(&ck.buffer)), (5, Bind::Whole(&cv.buffer)), (6, Bind::Whole(&out.buffer))];
    rec.dispatch(&pl, &AttentionParams::new(a, 0, 0), &binds, (tiles as u32, a.n_kv as u32, 1))
}

/// Work units of a chunk's attention: each query row against every key it can see
/// (the cache's rows and the chunk's, at most the window), scores and values.
pub fn attention_units(a: &AttnArgs) -> u64 {
    let seen = (a.pos + a.n_tok).min(a.capacity + a.n_tok);
    (a.n_tok * seen * a.n_head * a.head_dim) as u64
}

/// Keys one split-K workgroup folds in decode (a multiple of the 64-key tile).
pub const SPLIT_KEYS: usize = 256;

/// Most splits per head (sizes the partials buffer).
pub const MAX_SPLITS: usize = 64;

/// Splits for decode over `keys` visible keys: 1 (use [`attention`]) up to SPLIT_KEYS,
/// then one per SPLIT_KEYS, at most MAX_SPLITS.
pub fn attention_splits(keys: usize) -> usize {
    keys.div_ceil(SPLIT_KEYS).clamp(1, MAX_SPLITS)
}

/// Floats of the partials buffer [`attention_split`] needs.
pub fn attention_partials(n_head: usize, head_dim: usize) -> usize {
    n_head * MAX_SPLITS * (head_dim + 2)
}

/// Decode attention (one query) with the visible keys split over `n_split`
/// workgroups per head (flash-decoding), partial results in `partials`, merged by a
/// second dispatch: a long window no longer runs through one workgroup per head.
#[allow(clippy::too_many_arguments)]
pub fn attention_split(rec: &mut Recorder, a: &AttnArgs, q: &Buf, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, out: &Buf, partials: &Buf, n_split: usize) -> Result<(), GpuError> {
    attention_shapes(a, q, k, v, ck, cv, out)?;
    shape("attention_split", a.n_tok == 1 && (1..=MAX_SPLITS).contains(&n_split) && partials.len >= a.n_head * n_split * (a.head_dim + 2), || format!("{} tokens (decode only), {n_split} splits (1..={MAX_SPLITS}), partials {}", a.n_tok, partials.len))?;
    let oldest = a.pos.saturating_sub(a.capacity);
    let first = if a.window > 0 { oldest.max((a.pos + 1).saturating_sub(a.window)) } else { oldest };
    let keys = a.pos + 1 - first;
    let chunk = keys.div_ceil(n_split).next_multiple_of(64);
    let src = || attention_source(a.half, ATTENTION);
    let name = kv_name("attention", a.half);
    let p = AttentionParams::new(a, n_split, chunk);
    let binds = [(1, Bind::Whole(&q.buffer)), (2, Bind::Whole(&k.buffer)), (3, Bind::Whole(&v.buffer)), (4, Bind::Whole(&ck.buffer)), (5, Bind::Whole(&cv.buffer)), (7, Bind::Whole(&partials.buffer))];
    let pl = rec.kernels.pipeline(rec.ctx, &name, "split", src);
    rec.dispatch(&pl, &p, &binds, (a.n_head as u32, n_split as u32, 1))?;
    let pl = rec.kernels.pipeline(rec.ctx, &name, "combine", src);
    rec.dispatch(&pl, &p, &[(6, Bind::Whole(&out.buffer)), (7, Bind::Whole(&partials.buffer))], (a.n_head as u32, 1, 1))
}

/// The uniform of shaders/kv_store.wgsl (`Params`), field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct KvStoreParams {
    pub n: u32, pub kvd: u32, pub pos: u32, pub capacity: u32,
    pub first: u32, pub pad0: u32, pub pad1: u32, pub pad2: u32,
}
const _: () = assert!(std::mem::size_of::<KvStoreParams>() == 32);

/// Writes rows `first..n` of the chunk's `k`, `v` [n, kvd] into cache slots
/// `(pos + i) mod capacity` of `ck`, `cv` (f16 when `half`), with `first` =
/// n - capacity for a chunk longer than the cache.
#[allow(clippy::too_many_arguments)]
pub fn kv_store(rec: &mut Recorder, k: &Buf, v: &Buf, ck: &Buf, cv: &Buf, n: usize, kvd: usize, pos: usize, capacity: usize, half: bool) -> Result<(), GpuError> {
    shape("kv_store", capacity > 0 && k.len >= n * kvd && v.len >= n * kvd && ck.len >= capacity * kvd && cv.len >= capacity * kvd, || format!("k {} v {} for {n} rows of {kvd}, cache {} {} for {capacity} slots", k.len, v.len, ck.len, cv.len))?;
    let first = n.saturating_sub(capacity);
    let pl = rec.kernels.pipeline(rec.ctx, &kv_name("kv_store", half), "main", || format!("{}{KV_STORE}", kv_prelude(half)));
    let (gx, gy) = workgroups_xy(((n - first) * kvd).div_ceil(64));
    let p = KvStoreParams { n: n as u32, kvd: kvd as u32, pos: pos as u32, capacity: capacity as u32, first: first as u32, ..Zeroable::zeroed() };
    rec.dispatch(&pl, &p, &[(1, Bind::Whole(&k.buffer)), (2, Bind::Whole(&v.buffer)), (3, Bind::Whole(&ck.buffer)), (4, Bind::Whole(&cv.buffer))], (gx, gy, 1))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn uniforms_mirror_wgsl() {
        for half in [false, true] {
            super::super::assert_mirrors::<AttentionParams>(&attention_source(half, ATTENTION));
            super::super::assert_mirrors::<AttentionParams>(&attention_source(half, ATTENTION_PREFILL));
            super::super::assert_mirrors::<KvStoreParams>(&format!("{}{KV_STORE}", kv_prelude(half)));
        }
    }
}
